//! What the two example binaries of this crate share: `src/bin/mio_server.rs` (an Engine.IO
//! server on mio) and `src/bin/plain_client.rs` (a client on a plain loop) drive
//! engineio-proto's state machines with no async runtime. This library is their glue:
//!
//! - [`ws`]: tungstenite's messages and errors as the protocol's [`WsMessage`] and
//!   [`TransportEnd`];
//! - [`http1`]: HTTP/1.1 requests and responses over httparse (heads, `Content-Length`
//!   and chunked bodies, keep-alive), bounded by the limits the state machines give;
//! - [`e2e`]: the interop echo server's and client's settings and command-line options.
//!
//! None of it decides anything about Engine.IO. docs/embedding.md describes the driving
//! contract and walks through the examples.
//!
//! [`WsMessage`]: engineio_proto::WsMessage
//! [`TransportEnd`]: engineio_proto::TransportEnd

pub mod e2e;
pub mod http1;
pub mod ws;

use std::io::{self, Read, Write};

use engineio_proto::Sid;
use engineio_proto::server::SidGenerator;

/// Session ids from the operating system's CSPRNG (`getrandom`), 120 bits each: the id
/// is the session's only credential. Exits the process if there is no random source
/// (weak ids would be worse).
#[derive(Debug, Clone, Copy, Default)]
pub struct OsSids;

impl SidGenerator for OsSids {
    fn generate(&self) -> Sid {
        let mut bytes = [0u8; 15];
        if let Err(e) = getrandom::fill(&mut bytes) {
            eprintln!("no random source for session ids: {e}");
            std::process::exit(1);
        }
        Sid::from_entropy(bytes)
    }
}

/// A non-blocking stream and the bytes not written to it yet, which go out before
/// anything else written through it. A server writes its HTTP answers here, and keeps
/// the stream when a WebSocket (tungstenite) takes it over: the 101 precedes the first
/// frame however slowly the peer reads.
#[derive(Debug)]
pub struct Prefixed<S> {
    /// The stream.
    pub stream: S,
    /// Bytes waiting to be written before anything else.
    pub pending: Vec<u8>,
}

impl<S: Write> Prefixed<S> {
    /// A stream with nothing pending.
    pub fn new(stream: S) -> Self {
        Prefixed {
            stream,
            pending: Vec::new(),
        }
    }

    /// Writes what is pending, until it is all written or the stream would block
    /// (`ErrorKind::WouldBlock`).
    pub fn write_pending(&mut self) -> io::Result<()> {
        while !self.pending.is_empty() {
            match self.stream.write(&self.pending)? {
                0 => return Err(io::ErrorKind::WriteZero.into()),
                n => drop(self.pending.drain(..n)),
            }
        }
        Ok(())
    }
}

impl<S: Read> Read for Prefixed<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.read(buf)
    }
}

impl<S: Write> Write for Prefixed<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_pending()?;
        self.stream.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.write_pending()?;
        self.stream.flush()
    }
}

/// The Rust blocks of docs/embedding.md, compiled and run as this crate's doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/embedding.md")]
pub struct EmbeddingDocs;
