//! A blocking client for code that is not async (python-engineio's threaded `Client`),
//! on tokio: scripts, tests, plain threads.
//!
//! Each client runs its connection on a small tokio runtime of its own (one worker
//! thread), so the calling thread needs no runtime; every method blocks until it is
//! done, with explicit timeouts where waiting could be long. Do not call it from inside
//! an async task (tokio refuses to block a runtime thread): there, use the async
//! [`Client`](crate::Client).
//!
//! ```no_run
//! use std::time::Duration;
//! use engineio_tokio::blocking::Client;
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

use std::io;
use std::time::Duration;

use engineio_hyper::client::{ClientHandler, ClientSender};
use engineio_proto::client::ClientEvent;
use engineio_proto::{CloseReason, Handshake, Message, SendError, Sid, Transport};

use crate::{ClientConfig, ClientError};

/// A blocking Engine.IO client; see the [module documentation](self).
#[derive(Debug)]
pub struct Client {
    // Dropped before the runtime (fields drop in order): the connection closes first.
    inner: Option<crate::Client>,
    runtime: tokio::runtime::Runtime,
}

/// Why a blocking client could not be made.
fn runtime() -> Result<tokio::runtime::Runtime, ClientError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("engineio-client")
        .enable_all()
        .build()
        .map_err(|e: io::Error| {
            ClientError::Connect(engineio_proto::client::ConnectError::Transport(
                engineio_proto::TransportError::Io(e.into()),
            ))
        })
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
        let runtime = runtime()?;
        let inner = runtime.block_on(crate::connect_with(config))?;
        Ok(Client {
            inner: Some(inner),
            runtime,
        })
    }

    fn inner(&self) -> &crate::Client {
        self.inner.as_ref().expect("present until dropped")
    }

    /// The handshake of the session that `connect` opened.
    pub fn handshake(&self) -> &Handshake {
        self.inner().handshake()
    }

    /// The current session's id.
    pub fn sid(&self) -> Option<Sid> {
        self.inner().sid()
    }

    /// The transport in use.
    pub fn transport(&self) -> Option<Transport> {
        self.inner().transport()
    }

    /// A handle that sends from any thread (see [`ClientSender`]).
    pub fn sender(&self) -> ClientSender {
        self.inner().sender()
    }

    /// Queues a message; never blocks (see [`crate::Client::send`]): when the queue is
    /// full ([`SendError::QueueFull`]) the message is handed back; retry later.
    pub fn send(&self, message: impl Into<Message>) -> Result<(), SendError> {
        self.inner().send(message)
    }

    /// Queues a value serialised as JSON.
    pub fn send_json<V: serde::Serialize + ?Sized>(&self, value: &V) -> Result<(), SendError> {
        self.inner().send_json(value)
    }

    /// How many messages wait to be sent.
    pub fn queued(&self) -> usize {
        self.inner().queued()
    }

    /// Blocks until the next message, for at most `timeout`. `None` on timeout or once the
    /// client has ended (see [`is_closed`](Self::is_closed) to tell them apart).
    pub fn recv_timeout(&mut self, timeout: Duration) -> Option<Message> {
        let Client { inner, runtime } = self;
        let inner = inner.as_mut().expect("present until dropped");
        runtime
            .block_on(async { tokio::time::timeout(timeout, inner.recv()).await })
            .ok()
            .flatten()
    }

    /// Blocks until the next event, for at most `timeout`.
    pub fn next_event_timeout(&mut self, timeout: Duration) -> Option<ClientEvent> {
        let Client { inner, runtime } = self;
        let inner = inner.as_mut().expect("present until dropped");
        runtime
            .block_on(async { tokio::time::timeout(timeout, inner.next_event()).await })
            .ok()
            .flatten()
    }

    /// Whether the client has ended for good.
    pub fn is_closed(&self) -> bool {
        self.inner().is_closed()
    }

    /// Blocks, calling `handler` for every event, until the client has ended for good
    /// (python-engineio's event handlers plus `wait()`); see [`crate::Client::run`].
    pub fn run(&mut self, handler: impl ClientHandler) -> Option<CloseReason> {
        let Client { inner, runtime } = self;
        let inner = inner.as_mut().expect("present until dropped");
        runtime.block_on(inner.run(handler))
    }

    /// Closes (queued messages first) and blocks until the connection has ended; returns
    /// why it ended.
    pub fn disconnect(mut self) -> Option<CloseReason> {
        let inner = self.inner.take().expect("present until dropped");
        self.runtime.block_on(inner.disconnect())
    }

    /// Blocks until the client has ended for good (the server closed, or reconnection
    /// gave up); returns why the last session ended. Messages that arrive meanwhile are
    /// kept for [`recv_timeout`](Self::recv_timeout).
    pub fn wait(&mut self) -> Option<CloseReason> {
        let Client { inner, runtime } = self;
        let inner = inner.as_mut().expect("present until dropped");
        runtime.block_on(inner.wait())
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let Some(inner) = self.inner.take() else {
            return;
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            // Dropped inside an async task, where blocking is not allowed: the close is
            // queued and the runtime's thread lets it go out as the runtime stops.
            drop(inner);
            return;
        }
        // The close goes out before the runtime stops (bounded: a dead server does not
        // hold the drop).
        let _ = self.runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(2), inner.disconnect()).await
        });
    }
}
