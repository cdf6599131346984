//! The Engine.IO client over hyper and the WebSocket seam ([`crate::ws`]): [`Client`], driving the protocol's
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
mod handler;
mod http;
mod ws;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use engineio_proto::client::{Client as Machine, ClientEvent};
use engineio_proto::websocket::DeflateParams;
use engineio_proto::{CloseReason, Handshake, Message, SendError, Sid, Transport};
use tokio::sync::mpsc;

pub use engineio_proto::client::{
    ClientConfig, ConfigError, ConnectError, OfflinePolicy, Proxy, ProxyUrl, ReconnectConfig,
};

use crate::log::Msg;
use crate::runtime::{Runtime, Wakeup};

pub use handler::ClientHandler;

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
    /// The permessage-deflate parameters of the last WebSocket that connected (the
    /// protocol's check of the server's answer; see [`Client::websocket_deflate`]).
    websocket_deflate: Mutex<Option<DeflateParams>>,
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
/// [`send`](Self::send)), receiving is async. To send from other tasks while one task
/// receives, take [`sender`](Self::sender)s: cheap, cloneable handles. Dropping the
/// `Client` closes the connection.
pub struct Client<R: Runtime> {
    shared: Arc<Shared>,
    runtime: R,
    events: mpsc::UnboundedReceiver<ClientEvent>,
    /// Events [`wait`](Client::wait) read and kept for `next_event`.
    kept: VecDeque<ClientEvent>,
    handshake: Handshake,
    last_reason: Option<CloseReason>,
}

/// A handle that sends on a [`Client`]'s connection from any task or thread, while
/// another task receives with the `Client` (python-engineio's `send` from a background
/// task). Cheap to clone; made by [`Client::sender`].
///
/// It does not keep the connection open: once the `Client` is dropped or closed, sends
/// fail with [`SendError::Closed`], handing the message back.
///
/// ```no_run
/// # async fn run(mut client: engineio_hyper::client::Client<impl engineio_hyper::Runtime>)
/// # -> Result<(), Box<dyn std::error::Error>> {
/// let sender = client.sender();
/// std::thread::spawn(move || {
///     for i in 0..3 {
///         let _ = sender.send(format!("tick {i}"));
///     }
/// });
/// while let Some(message) = client.recv().await {
///     println!("got {message:?}");
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ClientSender {
    shared: Arc<Shared>,
    clock: Arc<dyn Fn() -> Instant + Send + Sync>,
}

impl std::fmt::Debug for ClientSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSender")
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

impl ClientSender {
    /// Queues a message; see [`Client::send`].
    pub fn send(&self, message: impl Into<Message>) -> Result<(), SendError> {
        send(&self.shared, message.into())
    }

    /// Queues a value serialised as JSON, as a text message; see [`Client::send_json`].
    pub fn send_json<V: serde::Serialize + ?Sized>(&self, value: &V) -> Result<(), SendError> {
        send_json(&self.shared, value)
    }

    /// Closes the connection (queued messages are sent first) without waiting; the
    /// receiving `Client` then sees its end.
    pub fn close(&self) {
        self.shared.close((self.clock)());
    }

    /// Whether the client has ended for good.
    pub fn is_closed(&self) -> bool {
        self.shared.lock().is_closed()
    }

    /// The current session's id (`None` while reconnecting or once closed).
    pub fn sid(&self) -> Option<Sid> {
        self.shared.lock().sid()
    }

    /// How many messages wait to be sent.
    pub fn queued(&self) -> usize {
        self.shared.lock().queued()
    }
}

fn send(shared: &Shared, message: Message) -> Result<(), SendError> {
    if tracing::enabled!(tracing::Level::TRACE) {
        tracing::trace!(message = %Msg(&message), "client message queued");
    }
    let result = shared.metrics.send(&mut shared.lock(), message);
    match &result {
        Ok(()) => shared.wakeup.wake(),
        Err(e) => tracing::debug!(error = %e, "client send refused"),
    }
    result
}

fn send_json<V: serde::Serialize + ?Sized>(shared: &Shared, value: &V) -> Result<(), SendError> {
    let result = shared.metrics.send_json(&mut shared.lock(), value);
    match &result {
        Ok(()) => {
            tracing::trace!("client JSON message queued");
            shared.wakeup.wake();
        }
        Err(e) => tracing::debug!(error = %e, "client send refused"),
    }
    result
}

/// Logs an event as the application receives it: lifecycle at debug, messages at trace.
fn log_event(event: &ClientEvent) {
    match event {
        ClientEvent::Message(m) => tracing::trace!(message = %Msg(m), "client message received"),
        ClientEvent::Connected(hs) | ClientEvent::Reconnected(hs) => tracing::debug!(
            sid = %hs.sid,
            ping_interval = ?hs.ping_interval,
            ping_timeout = ?hs.ping_timeout,
            max_payload = hs.max_payload,
            reconnected = matches!(event, ClientEvent::Reconnected(_)),
            "client connected"
        ),
        ClientEvent::Upgraded => tracing::debug!("client upgraded to websocket"),
        ClientEvent::Disconnected(reason) => tracing::debug!(%reason, "client disconnected"),
        ClientEvent::ConnectFailed { error } => {
            tracing::debug!(%error, "client connection attempt failed")
        }
        ClientEvent::Reconnecting { attempt, delay } => {
            tracing::debug!(attempt, ?delay, "client reconnecting")
        }
        ClientEvent::ReconnectFailed { attempts } => {
            tracing::debug!(attempts, "client gave up reconnecting")
        }
        ClientEvent::SendFailed(e) => tracing::debug!(error = %e, "client message dropped"),
        other => tracing::debug!(event = ?other, "client event"),
    }
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
        let mut config = config;
        config.websocket_deflate = crate::ws::supported_deflate(config.websocket_deflate);
        let now = runtime.now();
        tracing::debug!(
            server = %config.authority,
            path = %config.path,
            transports = ?config.transports,
            "client connecting"
        );
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
            websocket_deflate: Mutex::new(None),
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
            let event = events.recv().await;
            if let Some(event) = &event {
                log_event(event);
            }
            match event {
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
            kept: VecDeque::new(),
            handshake,
            last_reason: None,
        })
    }

    /// A handle that sends on this connection from any task or thread (see
    /// [`ClientSender`]).
    pub fn sender(&self) -> ClientSender {
        let runtime = self.runtime.clone();
        ClientSender {
            shared: Arc::clone(&self.shared),
            clock: Arc::new(move || runtime.now()),
        }
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

    /// The permessage-deflate (RFC 7692) parameters the current session's WebSocket
    /// agreed with the server, as `engineio-proto` accepted the server's answer:
    /// `None` while the session is on polling (an upgrade in progress included), while
    /// reconnecting or once closed, when
    /// [`ClientConfig::websocket_deflate`] offered nothing, or when the server declined.
    ///
    /// ```no_run
    /// use engineio_hyper::client::{Client, ClientConfig};
    /// use engineio_hyper::proto::websocket::DeflateConfig;
    /// use engineio_hyper::proto::Transport;
    ///
    /// async fn connect<R: engineio_hyper::Runtime>(runtime: R) -> Result<(), Box<dyn std::error::Error>> {
    ///     let mut config = ClientConfig::new("http://127.0.0.1:3000")?;
    ///     config.transports = vec![Transport::WebSocket];
    ///     config.websocket_deflate = Some(DeflateConfig::default());
    ///     let client = Client::connect(runtime, config).await?;
    ///     match client.websocket_deflate() {
    ///         Some(agreed) => println!("compressed: {}", agreed.to_header()),
    ///         None => println!("the server declined permessage-deflate"),
    ///     }
    ///     Ok(())
    /// }
    /// ```
    pub fn websocket_deflate(&self) -> Option<DeflateParams> {
        if self.shared.lock().transport() != Some(Transport::WebSocket) {
            return None;
        }
        *self
            .shared
            .websocket_deflate
            .lock()
            .unwrap_or_else(|e| e.into_inner())
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
        send(&self.shared, message.into())
    }

    /// Queues a value serialised as JSON, as a text message.
    pub fn send_json<V: serde::Serialize + ?Sized>(&self, value: &V) -> Result<(), SendError> {
        send_json(&self.shared, value)
    }

    /// The next event (messages, upgrades, disconnections, reconnections...). `None` once
    /// the client has ended and every event was read.
    pub async fn next_event(&mut self) -> Option<ClientEvent> {
        if let Some(kept) = self.kept.pop_front() {
            return Some(kept);
        }
        let event = self.events.recv().await;
        if let Some(event) = &event {
            log_event(event);
            match event {
                ClientEvent::Disconnected(reason) => self.last_reason = Some(reason.clone()),
                ClientEvent::Reconnected(hs) => self.handshake = hs.clone(),
                _ => {}
            }
        }
        event
    }

    /// The next message from the server. `None` once the client has ended (other events
    /// are skipped; see [`next_event`](Self::next_event) to see them).
    pub async fn recv(&mut self) -> Option<Message> {
        loop {
            if let ClientEvent::Message(m) = self.next_event().await? {
                return Some(m);
            }
        }
    }

    /// Closes the connection (queued messages are sent first) without waiting.
    pub fn close(&self) {
        self.shared.close(self.runtime.now());
    }

    /// Closes the connection and waits until it has ended; returns why it ended. Messages
    /// not read yet are dropped with the client.
    pub async fn disconnect(mut self) -> Option<CloseReason> {
        self.close();
        self.wait().await
    }

    /// Waits until the client has ended for good (python-engineio's `wait()`); returns
    /// why the last session ended.
    ///
    /// Nothing is lost: the messages and events that arrive meanwhile are kept, and
    /// [`recv`](Self::recv) and [`next_event`](Self::next_event) return them afterwards.
    /// To handle messages *while* waiting, as python's event handlers do, use
    /// [`run`](Self::run) with a [`ClientHandler`], or a loop over `recv`.
    pub async fn wait(&mut self) -> Option<CloseReason> {
        let mut kept = std::mem::take(&mut self.kept);
        while let Some(event) = self.next_event().await {
            kept.push_back(event);
        }
        self.kept = kept;
        self.last_reason()
    }

    /// Why the last session ended (`None` while it is open).
    fn last_reason(&self) -> Option<CloseReason> {
        self.last_reason
            .clone()
            .or_else(|| self.shared.lock().last_close_reason().cloned())
    }

    /// Calls `handler` for every event until the client has ended for good, and returns
    /// why the last session ended: the callback style of python-engineio's
    /// `@eio.on('message')` handlers. `on_open` is called first for the session already
    /// open, then again after each reconnection.
    ///
    /// ```no_run
    /// use engineio_hyper::client::{ClientHandler, ClientSender};
    /// use engineio_hyper::proto::{CloseReason, Handshake, Message};
    ///
    /// struct Printer;
    ///
    /// impl ClientHandler for Printer {
    ///     fn on_open(&mut self, sender: &ClientSender, handshake: &Handshake) {
    ///         println!("connected as {}", handshake.sid);
    ///         let _ = sender.send("hello");
    ///     }
    ///     fn on_message(&mut self, sender: &ClientSender, message: Message) {
    ///         println!("got {message:?}");
    ///         sender.close();
    ///     }
    ///     fn on_disconnect(&mut self, reason: &CloseReason) {
    ///         println!("disconnected: {reason}");
    ///     }
    /// }
    ///
    /// # async fn run(mut client: engineio_hyper::client::Client<impl engineio_hyper::Runtime>) {
    /// let reason = client.run(Printer).await;
    /// # }
    /// ```
    pub async fn run(&mut self, mut handler: impl ClientHandler) -> Option<CloseReason> {
        let sender = self.sender();
        if !self.is_closed() && self.kept.is_empty() && self.sid().is_some() {
            handler.on_open(&sender, &self.handshake);
        }
        while let Some(event) = self.next_event().await {
            handler::dispatch(&mut handler, &sender, event);
        }
        self.last_reason()
    }
}

impl<R: Runtime> Drop for Client<R> {
    fn drop(&mut self) {
        self.shared.close(self.runtime.now());
    }
}
