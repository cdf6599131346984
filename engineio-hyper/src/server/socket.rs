//! The application's side of a session: [`Handler`] callbacks and the [`Socket`] handle.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use engineio_proto::server::{HandshakeRequest, Rejection, Session, SessionRequest};
use engineio_proto::websocket::DeflateParams;
use engineio_proto::{
    CloseReason, Message, RequestId, Response, SendError, Sid, Transport, TransportEnd,
    TransportError, UpgradeFailure,
};
use http::HeaderMap;
use tokio::sync::oneshot;

/// The application's callbacks for the sessions of one server.
///
/// In order, for each session: `on_connect` (decides; may await), `on_open` (the session
/// exists), then `on_message`, `on_upgrade`, `on_upgrade_failed` as they happen, and
/// `on_disconnect` exactly once. The notifications after `on_open` run on the session's
/// own task, one at a time per session and in order; keep them short (queue work
/// elsewhere for anything slow). Sending from inside them is fine.
///
/// ```
/// use engineio_hyper::server::{ConnectRequest, Handler, Socket};
/// use engineio_hyper::proto::{Message, server::Rejection};
///
/// struct Echo;
///
/// impl Handler for Echo {
///     type Data = ();
///
///     async fn on_connect(&self, request: &ConnectRequest<'_>) -> Result<(), Rejection> {
///         match request.query("token").as_deref() {
///             Some("let-me-in") | None => Ok(()),
///             Some(_) => Err(Rejection::forbidden()),
///         }
///     }
///
///     fn on_message(&self, socket: &Socket<()>, message: Message) {
///         let _ = socket.send(message);
///     }
/// }
/// ```
pub trait Handler: Send + Sync + 'static {
    /// Per-session data, made by `on_connect` and reachable from every [`Socket`] handle
    /// (python-engineio's `session()`). Use interior mutability (a `Mutex`) to change it.
    type Data: Send + Sync + 'static;

    /// Decides whether a handshake becomes a session. It sees the request (headers, query,
    /// peer address) and may take its time; returning `Err` refuses the client with the
    /// rejection's status and message.
    fn on_connect(
        &self,
        request: &ConnectRequest<'_>,
    ) -> impl Future<Output = Result<Self::Data, Rejection>> + Send;

    /// The session exists: called once, right after [`on_connect`](Self::on_connect)
    /// accepted it and before any message, upgrade or disconnect of the session. The
    /// socket can send already (a welcome message goes out right after the open packet)
    /// and its [`sid`](Socket::sid) can be recorded. This is the second half of
    /// python-engineio's `connect(sid, environ)` handler, and Node's `connection` event.
    ///
    /// It runs on the task that answers the handshake, before the session's own task
    /// starts: keep it short.
    fn on_open(&self, socket: &Socket<Self::Data>) {
        let _ = socket;
    }

    /// A message from the client.
    fn on_message(&self, socket: &Socket<Self::Data>, message: Message);

    /// The session moved from polling to WebSocket.
    fn on_upgrade(&self, socket: &Socket<Self::Data>) {
        let _ = socket;
    }

    /// An upgrade to WebSocket failed (timeout, socket closed during the probe, bad
    /// probe); the session goes on over polling.
    fn on_upgrade_failed(&self, socket: &Socket<Self::Data>, failure: &UpgradeFailure) {
        let _ = (socket, failure);
    }

    /// The session ended; the socket can no longer send. Called exactly once per session.
    fn on_disconnect(&self, socket: &Socket<Self::Data>, reason: &CloseReason) {
        let _ = (socket, reason);
    }
}

/// A handshake waiting for [`Handler::on_connect`]'s decision.
#[derive(Debug)]
pub struct ConnectRequest<'a> {
    pub(crate) inner: &'a HandshakeRequest,
}

impl ConnectRequest<'_> {
    /// The request's headers.
    pub fn headers(&self) -> &HeaderMap {
        self.inner.headers()
    }

    /// A query parameter, percent-decoded.
    pub fn query(&self, name: &str) -> Option<String> {
        self.inner.query(name)
    }

    /// The request target (path and query).
    pub fn uri(&self) -> &http::Uri {
        self.inner.uri()
    }

    /// The client's address, when known.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.inner.peer_addr()
    }

    /// The id the session will have if this handshake is accepted (python-engineio's
    /// `sid` argument of `connect`); the [`Socket`] given to [`Handler::on_open`] has it.
    pub fn sid(&self) -> Sid {
        self.inner.sid()
    }

    /// The transport the client opens the session with.
    pub fn transport(&self) -> Transport {
        self.inner.transport()
    }

    /// The protocol revision the client speaks: [`ProtocolVersion::V3`](engineio_proto::ProtocolVersion::V3) only when the
    /// server allows it ([`ServerConfig::allow_eio3`](engineio_proto::server::ServerConfig::allow_eio3)).
    pub fn protocol_version(&self) -> engineio_proto::ProtocolVersion {
        self.inner.protocol_version()
    }
}

/// What an HTTP request waiting on a session gets back.
#[derive(Debug)]
pub(crate) enum Reply {
    Response(Response),
    /// The 101's extra headers, and the permessage-deflate parameters agreed.
    AcceptWebSocket(HeaderMap, Option<DeflateParams>),
}

pub(crate) struct SessionState {
    pub(crate) session: Session,
    pub(crate) replies: Vec<(RequestId, oneshot::Sender<Reply>)>,
    /// WebSocket streams waiting for the driver (the runtime's type, boxed).
    pub(crate) new_ws: Vec<(RequestId, Box<dyn Any + Send>)>,
    /// The driver is gone (the session was released): nothing will answer a request.
    pub(crate) released: bool,
    /// What the application queued, for the metrics (nothing without the feature).
    pub(crate) sent: crate::metrics::SendTally,
}

impl SessionState {
    pub(crate) fn new(session: Session) -> Self {
        SessionState {
            session,
            replies: Vec::new(),
            new_ws: Vec::new(),
            released: false,
            sent: Default::default(),
        }
    }
}

pub(crate) struct SocketShared<D> {
    pub(crate) sid: Sid,
    pub(crate) peer_addr: Option<SocketAddr>,
    pub(crate) state: Mutex<SessionState>,
    pub(crate) wakeup: crate::runtime::Wakeup,
    pub(crate) data: D,
    pub(crate) now: Box<dyn Fn() -> std::time::Instant + Send + Sync>,
    /// The session's span: its driver runs in it, so every log line of the session
    /// (the handler's included) carries the sid.
    pub(crate) span: tracing::Span,
    /// The server's metrics (nothing without the `metrics` feature).
    pub(crate) metrics: crate::metrics::ServerMetrics,
}

/// A handle to one session: send, close, read its data. Cheap to clone; it can be kept
/// anywhere and used from any task or thread. Once the session has ended, sends fail with
/// [`SendError::Closed`].
pub struct Socket<D> {
    pub(crate) shared: Arc<SocketShared<D>>,
}

impl<D> Clone for Socket<D> {
    fn clone(&self) -> Self {
        Socket {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<D> fmt::Debug for Socket<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Socket")
            .field("sid", &self.shared.sid)
            .field("peer_addr", &self.shared.peer_addr)
            .finish_non_exhaustive()
    }
}

impl<D> Socket<D> {
    pub(crate) fn lock(&self) -> MutexGuard<'_, SessionState> {
        // A poisoned lock means a panic in our own code while holding it; the session
        // state is still consistent enough to close, so keep going.
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wake(&self) {
        self.shared.wakeup.wake();
    }

    /// The session id.
    pub fn sid(&self) -> Sid {
        self.shared.sid
    }

    /// The client's address, when known.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.shared.peer_addr
    }

    /// The application's data for this session (from [`Handler::on_connect`]).
    pub fn data(&self) -> &D {
        &self.shared.data
    }

    /// The session's `tracing` span (`engineio_session`, at level INFO, with the `sid`
    /// field). The session's driver runs in it, so everything logged from the
    /// [`Handler`] callbacks already carries the sid; enter it (or `.instrument()` a
    /// future with a clone) to give the same context to work done elsewhere for this
    /// session.
    ///
    /// ```
    /// use engineio_hyper::server::Socket;
    ///
    /// fn on_slow_job_done(socket: &Socket<()>) {
    ///     let _in_session = socket.span().enter();
    ///     tracing::info!("report ready"); // logged with sid=...
    /// }
    /// ```
    pub fn span(&self) -> &tracing::Span {
        &self.shared.span
    }

    /// The transport in use.
    pub fn transport(&self) -> Transport {
        self.lock().session.transport()
    }

    /// The permessage-deflate (RFC 7692) parameters the session's WebSocket agreed in its
    /// opening handshake, as the server answered them (`DeflateParams::to_header`):
    /// `None` while the session is on polling (an upgrade in progress included), when
    /// the server does not compress
    /// ([`ServerConfig::websocket_deflate`](engineio_proto::server::ServerConfig::websocket_deflate)
    /// is `None`), or when the client offered nothing acceptable. Once the session has
    /// ended it still reports its last WebSocket.
    ///
    /// It reports what `engineio-proto` decided
    /// ([`Session::websocket_deflate`](engineio_proto::server::Session::websocket_deflate)):
    /// known in [`Handler::on_open`] of a session opened over WebSocket, and from
    /// [`Handler::on_upgrade`] on for an upgraded one.
    ///
    /// ```
    /// use engineio_hyper::server::Socket;
    ///
    /// fn compression_note(socket: &Socket<()>) -> String {
    ///     match socket.websocket_deflate() {
    ///         Some(params) => format!("compressed: {}", params.to_header()),
    ///         None => format!("uncompressed ({})", socket.transport()),
    ///     }
    /// }
    /// ```
    pub fn websocket_deflate(&self) -> Option<DeflateParams> {
        self.lock().session.websocket_deflate()
    }

    /// Whether the session has ended.
    pub fn is_closed(&self) -> bool {
        self.lock().session.is_closed()
    }

    /// Queues a message (text from `String`/`&str`, binary from `Vec<u8>`/`Bytes`).
    ///
    /// Errors hand the message back: the session is closed, its outgoing queue is full
    /// (the client is not reading: back-pressure), or a text message holds `U+001E` while
    /// the session may still use polling.
    pub fn send(&self, message: impl Into<Message>) -> Result<(), SendError> {
        let result = {
            let mut state = self.lock();
            let state = &mut *state;
            state.sent.send(&mut state.session, message.into())
        };
        match &result {
            Ok(()) => self.wake(),
            Err(e) => self.shared.metrics.send_refused(e),
        }
        result
    }

    /// Queues a binary message.
    pub fn send_binary(&self, data: impl Into<Bytes>) -> Result<(), SendError> {
        self.send(Message::Binary(data.into()))
    }

    /// Queues a value serialised as JSON, as a text message.
    pub fn send_json<V: serde::Serialize + ?Sized>(&self, value: &V) -> Result<(), SendError> {
        let result = {
            let mut state = self.lock();
            let state = &mut *state;
            state.sent.send_json(&mut state.session, value)
        };
        match &result {
            Ok(()) => self.wake(),
            Err(e) => self.shared.metrics.send_refused(e),
        }
        result
    }

    /// Closes the session: queued messages are delivered first, then the client is told.
    /// [`Handler::on_disconnect`] follows with [`CloseReason::ServerClose`].
    pub fn close(&self) {
        let now = (self.shared.now)();
        self.lock().session.close(now);
        self.wake();
    }

    pub(crate) fn shutdown(&self) {
        let now = (self.shared.now)();
        self.lock().session.shutdown(now);
        self.wake();
    }

    /// Registers where the reply to request `id` goes (the session answers it later).
    pub(crate) fn expect_reply(&self, id: RequestId) -> oneshot::Receiver<Reply> {
        let (tx, rx) = oneshot::channel();
        self.lock().replies.push((id, tx));
        rx
    }

    /// Hands a request to the session and registers where its reply goes; `None` when
    /// the session is already released (nothing would answer).
    pub(crate) fn request(
        &self,
        now: std::time::Instant,
        request: SessionRequest,
    ) -> Option<oneshot::Receiver<Reply>> {
        let (tx, rx) = oneshot::channel();
        {
            let mut state = self.lock();
            if state.released {
                return None;
            }
            state.replies.push((request.id(), tx));
            state.session.handle_request(now, request);
        }
        self.wake();
        Some(rx)
    }

    pub(crate) fn with_session(&self, f: impl FnOnce(&mut Session)) {
        f(&mut self.lock().session);
        self.wake();
    }

    /// Hands over a POST's body; what it says (a close, for one) takes effect now, when
    /// the session handles it: a request that reached the server before then came
    /// before it.
    pub(crate) fn post_body(&self, id: RequestId, body: Bytes) {
        let now = (self.shared.now)();
        self.with_session(|s| s.handle_post_body(now, id, body));
    }

    pub(crate) fn post_body_failed(&self, id: RequestId, detail: &str) {
        let now = (self.shared.now)();
        self.with_session(|s| s.handle_post_body_failed(now, id, detail));
    }

    pub(crate) fn request_dropped(&self, id: RequestId) {
        let now = (self.shared.now)();
        let mut state = self.lock();
        state.replies.retain(|(r, _)| *r != id);
        state.session.handle_request_dropped(now, id);
        drop(state);
        self.wake();
    }

    pub(crate) fn attach_websocket(&self, id: RequestId, ws: Box<dyn Any + Send>) {
        self.lock().new_ws.push((id, ws));
        self.wake();
    }

    pub(crate) fn websocket_failed(&self, id: RequestId, error: String) {
        let now = (self.shared.now)();
        let error = TransportError::Io(engineio_proto::IoError::other(error));
        self.with_session(|s| s.handle_ws_closed(now, id, TransportEnd::Error(error)));
    }
}
