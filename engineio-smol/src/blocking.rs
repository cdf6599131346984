//! A blocking client that needs no async runtime from its caller (python-engineio's
//! threaded `Client`, for scripts, tests and plain threads).
//!
//! The connection is driven on smol's global executor, whose threads start on first use;
//! every method here blocks the calling thread until it is done, with explicit timeouts
//! where waiting could be long.
//!
//! ```no_run
//! use std::time::Duration;
//! use engineio_smol::blocking::Client;
//!
//! let mut client = Client::connect("http://127.0.0.1:3000")?;
//! client.send("hello")?;
//! match client.recv_timeout(Duration::from_secs(5)) {
//!     Some(message) => println!("got {message:?}"),
//!     None => println!("nothing within 5 s"),
//! }
//! let reason = client.disconnect();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::time::Duration;

use engineio_proto::client::ClientEvent;
use engineio_proto::{CloseReason, Handshake, Message, SendError, Sid, Transport};

use crate::{ClientConfig, ClientError, ClientHandler, ClientSender, Smol};

/// A blocking Engine.IO client; see the [module documentation](self).
#[derive(Debug)]
pub struct Client {
    inner: engineio_hyper::client::Client<Smol>,
}

impl Client {
    /// Connects with the default options (polling, then upgrade to WebSocket), blocking
    /// until the session is open.
    pub fn connect(url: &str) -> Result<Client, ClientError> {
        Client::connect_with(ClientConfig::new(url)?)
    }

    /// Connects with explicit options, blocking until the session is open (or the
    /// attempts configured for reconnection ran out).
    pub fn connect_with(config: ClientConfig) -> Result<Client, ClientError> {
        let inner = smol::block_on(engineio_hyper::client::Client::connect(Smol, config))?;
        Ok(Client { inner })
    }

    /// The handshake of the session that `connect` opened.
    pub fn handshake(&self) -> &Handshake {
        self.inner.handshake()
    }

    /// The current session's id.
    pub fn sid(&self) -> Option<Sid> {
        self.inner.sid()
    }

    /// The transport in use.
    pub fn transport(&self) -> Option<Transport> {
        self.inner.transport()
    }

    /// Queues a message; never blocks (see [`engineio_hyper::client::Client::send`]): when
    /// the queue is full ([`SendError::QueueFull`], the server is not taking messages as
    /// fast as they are sent) the message is handed back; retry later.
    pub fn send(&self, message: impl Into<Message>) -> Result<(), SendError> {
        self.inner.send(message)
    }

    /// How many messages wait to be sent.
    pub fn queued(&self) -> usize {
        self.inner.queued()
    }

    /// How many bytes of messages wait to be sent.
    pub fn queued_bytes(&self) -> usize {
        self.inner.queued_bytes()
    }

    /// Queues a value serialised as JSON.
    pub fn send_json<V: serde::Serialize + ?Sized>(&self, value: &V) -> Result<(), SendError> {
        self.inner.send_json(value)
    }

    /// Blocks until the next message, for at most `timeout`. `None` on timeout or once the
    /// client has ended (see [`is_closed`](Self::is_closed) to tell them apart).
    pub fn recv_timeout(&mut self, timeout: Duration) -> Option<Message> {
        let inner = &mut self.inner;
        smol::block_on(smol::future::or(inner.recv(), async {
            async_io::Timer::after(timeout).await;
            None
        }))
    }

    /// Blocks until the next event, for at most `timeout`.
    pub fn next_event_timeout(&mut self, timeout: Duration) -> Option<ClientEvent> {
        let inner = &mut self.inner;
        smol::block_on(smol::future::or(inner.next_event(), async {
            async_io::Timer::after(timeout).await;
            None
        }))
    }

    /// Whether the client has ended for good.
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// A handle that sends from any thread (see [`ClientSender`]).
    pub fn sender(&self) -> ClientSender {
        self.inner.sender()
    }

    /// Blocks, calling `handler` for every event, until the client has ended for good
    /// (python-engineio's event handlers plus `wait()`); see
    /// [`engineio_hyper::client::Client::run`].
    pub fn run(&mut self, handler: impl ClientHandler) -> Option<CloseReason> {
        smol::block_on(self.inner.run(handler))
    }

    /// Closes (queued messages first) and blocks until the connection has ended; returns
    /// why it ended.
    pub fn disconnect(self) -> Option<CloseReason> {
        smol::block_on(self.inner.disconnect())
    }

    /// Blocks until the client has ended for good (the server closed, or reconnection
    /// gave up); returns why the last session ended. Messages that arrive meanwhile are
    /// kept for [`recv_timeout`](Self::recv_timeout).
    pub fn wait(&mut self) -> Option<CloseReason> {
        smol::block_on(self.inner.wait())
    }
}
