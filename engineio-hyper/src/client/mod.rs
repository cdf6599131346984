//! The Engine.IO client over hyper and tungstenite: [`Client`], driving the protocol's
//! [`engineio_proto::client::Client`] on any [`Runtime`].
//!
//! Every decision (what to request, when to ping back, when to upgrade, batching,
//! reconnecting, every size limit) is the protocol's; the driver performs HTTP requests on
//! a small pool of keep-alive connections, opens WebSockets, moves frames, keeps one timer,
//! and hands events to the application.
//!
//! The code is cut by concept: this module is the application's handle; `driver` is the
//! task that drives the state machine; `ws` moves frames on the client's WebSockets; `http`
//! performs requests on the connection pool.

mod driver;
mod http;
mod ws;

use std::sync::{Arc, Mutex, MutexGuard};

use engineio_proto::client::{Client as Machine, ClientEvent};
use engineio_proto::{CloseReason, Handshake, Message, SendError, Sid, Transport};
use tokio::sync::mpsc;

pub use engineio_proto::client::{
    ClientConfig, ConfigError, ConnectError, OfflinePolicy, Proxy, ProxyUrl, ReconnectConfig,
};

use crate::runtime::{Runtime, Wakeup};

/// Why [`Client::connect`] failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The configuration cannot be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The connection attempt failed (and no reconnection was configured).
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// Reconnection gave up after this many retries.
    #[error("gave up after {attempts} connection retries; last error: {last}")]
    GaveUp {
        /// The retries made.
        attempts: u32,
        /// The last attempt's error.
        last: ConnectError,
    },
    /// The client ended before it connected.
    #[error("the client closed before it connected")]
    Closed,
}

/// What the handle and the driver share: the state machine, and how to wake the driver.
struct Shared {
    machine: Mutex<Machine>,
    wakeup: Wakeup,
    /// The metrics' handles (nothing without the `metrics` feature).
    metrics: crate::metrics::ClientMetrics,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Machine> {
        self.machine.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Closes the machine (if it is not closed yet) and wakes the driver to act on it.
    fn close(&self, now: std::time::Instant) {
        let mut machine = self.lock();
        if !machine.is_closed() {
            machine.close(now);
        }
        drop(machine);
        self.wakeup.wake();
    }
}

/// An Engine.IO client connection (with its reconnections, when configured).
///
/// Created by [`Client::connect`]; sending is synchronous and never blocks (messages
/// queue in the protocol client, bounded in messages and bytes: see
/// [`send`](Self::send)), receiving is async. Dropping the `Client` closes the
/// connection.
pub struct Client<R: Runtime> {
    shared: Arc<Shared>,
    runtime: R,
    events: mpsc::UnboundedReceiver<ClientEvent>,
    handshake: Handshake,
    last_reason: Option<CloseReason>,
}

impl<R: Runtime> std::fmt::Debug for Client<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("handshake", &self.handshake)
            .finish_non_exhaustive()
    }
}

/// Closes the connection attempt when [`Client::connect`]'s future is dropped before it
/// returned (a timeout around it, a `select!`): the driver then stops its requests,
/// closes its sockets and ends, instead of retrying for ever.
struct AbandonOnDrop<'a, R: Runtime> {
    shared: &'a Shared,
    runtime: &'a R,
    armed: bool,
}

impl<R: Runtime> Drop for AbandonOnDrop<'_, R> {
    fn drop(&mut self) {
        if self.armed {
            self.shared.close(self.runtime.now());
        }
    }
}

impl<R: Runtime> Client<R> {
    /// Connects: performs the handshake (by polling or WebSocket, as configured) and
    /// returns once the session is open. With reconnection configured, failed attempts are
    /// retried (with backoff) until one succeeds or the attempts run out.
    ///
    /// Dropping the returned future before it completes (for example with a timeout
    /// around it) abandons the attempt: its requests and sockets are closed and nothing
    /// is retried.
    ///
    /// With the `metrics` feature, the client's metrics are registered when this starts,
    /// under the recorder in force (see [`crate::metrics`]). Each session's driver runs in
    /// an `engineio_client_session` span (INFO, with the `sid` field).
    pub async fn connect(runtime: R, config: ClientConfig) -> Result<Client<R>, ClientError> {
        Self::connect_with_tls(runtime, config, R::TlsConfig::default()).await
    }

    /// Like [`connect`](Self::connect), with the runtime's TLS settings for `https` and
    /// `wss` (custom trusted roots, client certificates).
    pub async fn connect_with_tls(
        runtime: R,
        config: ClientConfig,
        tls: R::TlsConfig,
    ) -> Result<Client<R>, ClientError> {
        let now = runtime.now();
        let seed = getrandom::u64().unwrap_or(0x5eed_5eed_5eed_5eed);
        // The proxy is decided once (the environment read now, when asked for): one client
        // always takes the same route.
        let port = config
            .authority
            .port_u16()
            .unwrap_or(if config.secure { 443 } else { 80 });
        let proxy = config
            .proxy
            .resolve(config.secure, config.authority.host(), port, |name| {
                std::env::var(name).ok()
            })?;
        let mut machine = Machine::new(config, now, seed)?;
        machine.connect(now);
        let shared = Arc::new(Shared {
            machine: Mutex::new(machine),
            wakeup: Wakeup::default(),
            metrics: crate::metrics::ClientMetrics::new(),
        });
        let (events_tx, mut events) = mpsc::unbounded_channel();
        runtime.spawn(driver::Driver::new(
            runtime.clone(),
            Arc::clone(&shared),
            events_tx,
            tls,
            proxy,
        ));
        let mut guard = AbandonOnDrop {
            shared: &shared,
            runtime: &runtime,
            armed: true,
        };
        // The machine's own events say what it decided: an open session, a failed
        // attempt (then `Reconnecting`, or nothing and the end of the events), giving up.
        let mut last_error = None;
        let mut gave_up = None;
        let handshake = loop {
            match events.recv().await {
                Some(ClientEvent::Connected(hs) | ClientEvent::Reconnected(hs)) => break hs,
                Some(ClientEvent::ConnectFailed { error }) => last_error = Some(error),
                Some(ClientEvent::ReconnectFailed { attempts }) => gave_up = Some(attempts),
                Some(_) => {}
                None => {
                    guard.armed = false;
                    return Err(match (last_error, gave_up) {
                        (Some(last), Some(attempts)) => ClientError::GaveUp { attempts, last },
                        (Some(error), None) => ClientError::Connect(error),
                        (None, _) => ClientError::Closed,
                    });
                }
            }
        };
        guard.armed = false;
        drop(guard);
        Ok(Client {
            shared,
            runtime,
            events,
            handshake,
            last_reason: None,
        })
    }

    /// The handshake of the session that [`connect`](Self::connect) opened.
    pub fn handshake(&self) -> &Handshake {
        &self.handshake
    }

    /// The current session's id (`None` while reconnecting or once closed).
    pub fn sid(&self) -> Option<Sid> {
        self.shared.lock().sid()
    }

    /// The transport in use (`None` while reconnecting or once closed).
    pub fn transport(&self) -> Option<Transport> {
        self.shared.lock().transport()
    }

    /// Whether the client has ended for good.
    pub fn is_closed(&self) -> bool {
        self.shared.lock().is_closed()
    }

    /// How many messages wait to be sent (see [`send`](Self::send)).
    pub fn queued(&self) -> usize {
        self.shared.lock().queued()
    }

    /// How many bytes of messages wait to be sent.
    pub fn queued_bytes(&self) -> usize {
        self.shared.lock().queued_bytes()
    }

    /// Queues a message (text from `String`/`&str`, binary from `Vec<u8>`/`Bytes`).
    ///
    /// Errors hand the message back: closed, over the server's `maxPayload`, text holding
    /// `U+001E` on polling, or [`SendError::QueueFull`] when
    /// [`max_queued_messages`](ClientConfig::max_queued_messages) messages or
    /// [`max_queued_bytes`](ClientConfig::max_queued_bytes) bytes already wait: the server
    /// (or the network) is not taking them as fast as they are sent. Messages leave the
    /// queue only as fast as the socket takes them, on every transport; retry later.
    pub fn send(&self, message: impl Into<Message>) -> Result<(), SendError> {
        let result = self
            .shared
            .metrics
            .send(&mut self.shared.lock(), message.into());
        if result.is_ok() {
            self.shared.wakeup.wake();
        }
        result
    }

    /// Queues a value serialised as JSON, as a text message.
    pub fn send_json<V: serde::Serialize + ?Sized>(&self, value: &V) -> Result<(), SendError> {
        let result = self
            .shared
            .metrics
            .send_json(&mut self.shared.lock(), value);
        if result.is_ok() {
            self.shared.wakeup.wake();
        }
        result
    }

    /// The next event (messages, upgrades, disconnections, reconnections...). `None` once
    /// the client has ended and every event was read.
    pub async fn next_event(&mut self) -> Option<ClientEvent> {
        let event = self.events.recv().await;
        if let Some(ClientEvent::Disconnected(reason)) = &event {
            self.last_reason = Some(reason.clone());
        }
        event
    }

    /// The next message from the server. `None` once the client has ended (other events
    /// are skipped; see [`next_event`](Self::next_event) to see them).
    pub async fn recv(&mut self) -> Option<Message> {
        loop {
            match self.next_event().await? {
                ClientEvent::Message(m) => return Some(m),
                ClientEvent::Reconnected(hs) => self.handshake = hs,
                _ => {}
            }
        }
    }

    /// Closes the connection (queued messages are sent first) without waiting.
    pub fn close(&self) {
        self.shared.close(self.runtime.now());
    }

    /// Closes the connection and waits until it has ended; returns why it ended.
    pub async fn disconnect(mut self) -> Option<CloseReason> {
        self.close();
        self.wait().await
    }

    /// Waits until the client has ended for good (skipping the events not yet read);
    /// returns why the last session ended.
    pub async fn wait(&mut self) -> Option<CloseReason> {
        while self.next_event().await.is_some() {}
        self.last_reason
            .clone()
            .or_else(|| self.shared.lock().last_close_reason().cloned())
    }
}

impl<R: Runtime> Drop for Client<R> {
    fn drop(&mut self) {
        self.shared.close(self.runtime.now());
    }
}
