//! The server state machines: [`Server`] (the front door) and [`Session`] (one client).
//!
//! # Shape
//!
//! Like quinn-proto's `Endpoint` and `Connection`, the work is split in two levels:
//!
//! - [`Server`] reads a request's head, applies the policy (path, transport, origin,
//!   protocol version, method), answers what no session owns (the protocol's JSON errors,
//!   CORS preflights) and says where the request goes: [`Routed`]. It holds no session
//!   and needs only `&self`, so a binding can share it between tasks without a lock.
//! - A handshake becomes a [`HandshakeRequest`]; the application looks at it (headers,
//!   query, peer address) and the binding calls [`Server::accept`] (with per-session data)
//!   or [`Server::reject`], at once or later.
//! - [`Session`] is one client: transport, upgrade, heartbeat and outgoing queue. Sessions
//!   are independent, so a binding may drive each on its own task. A session reports its
//!   own end ([`Event::Closed`] with a [`CloseReason`](crate::CloseReason)), after which
//!   the binding drops it: nothing else holds session state, so nothing can leak.
//!
//! # Driving a session
//!
//! After every input (`handle_*`, `send`, `close`), drain [`Session::poll_action`] until it
//! returns `None` — always, also while a WebSocket is not taking writes: answers, closes
//! and events never wait for the peer. Then sleep until [`Session::poll_timeout`] and call
//! [`Session::handle_timeout`]. Time never goes backwards between calls; calling
//! `handle_timeout` early or twice does nothing. Give every request the instant its head
//! arrived ([`Server::handle_request`]'s `now`): the session judges it by its state then,
//! whatever order two threads hand requests over in.
//!
//! A session reports its end with [`Event::Closed`]; keep it until [`Action::Release`]
//! (`write_timeout` later), which is when its last sockets must be dropped. Meanwhile it
//! answers requests that name it as a closed session would.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use http::{HeaderMap, Method, Uri};
//! use engineio_proto::server::{
//!     Action, Event, RequestInfo, Routed, SeededSidGenerator, Server, ServerConfig,
//! };
//! use engineio_proto::{CloseReason, RequestId};
//!
//! # #[allow(clippy::disallowed_methods)]
//! let start = Instant::now(); // a binding reads its clock; tests use a virtual one
//! let server = Server::new(ServerConfig::default(), SeededSidGenerator::new(7))?;
//!
//! // A client's handshake arrives.
//! let uri: Uri = "/engine.io/?EIO=4&transport=polling".parse()?;
//! let headers = HeaderMap::new();
//! let info = RequestInfo::new(&Method::GET, &uri, &headers);
//! let Routed::Handshake(handshake) = server.handle_request(start, RequestId(1), &info) else {
//!     unreachable!("a valid handshake")
//! };
//! // The application may inspect `handshake.headers()`, `handshake.sid()` etc., then
//! // accept it: the session gets the id the application saw.
//! let sid = handshake.sid();
//! let mut session = server.accept(start, handshake).expect("not shutting down");
//! assert_eq!(session.sid(), sid);
//!
//! // The driving loop: drain actions after every input, then wait for the deadline.
//! let mut now = start;
//! let mut closed = None;
//! loop {
//!     while let Some(action) = session.poll_action() {
//!         match action {
//!             Action::Respond { request, response } => {
//!                 // Write `response` as the answer to `request`.
//!                 assert_eq!(request, RequestId(1));
//!                 assert!(response.body.starts_with(b"0{\"sid\":"));
//!             }
//!             Action::AcceptWebSocket { .. } => { /* complete the 101 and read frames */ }
//!             Action::WsSend { .. } | Action::WsClose { .. } | Action::WsDrop { .. } => {
//!                 /* write to, close or drop the socket */
//!             }
//!             Action::ReadWebSocket { .. } => { /* read the socket, then handle_ws_drained */ }
//!             Action::Event(Event::Message(msg)) => { /* hand to the application */ }
//!             Action::Event(Event::Closed(reason)) => closed = Some((reason, now)),
//!             Action::Event(_) => {}
//!             Action::Release => { /* drop the session and its sockets */ }
//!         }
//!     }
//!     match session.poll_timeout() {
//!         Some(deadline) => {
//!             now = deadline; // a binding sleeps until then (or until the next input)
//!             session.handle_timeout(now);
//!         }
//!         None => break,
//!     }
//! }
//! // Nobody polled or answered the ping: the session timed out at 25 s + 20 s, and was
//! // released `write_timeout` (5 s) later.
//! assert_eq!(closed, Some((CloseReason::PingTimeout, start + Duration::from_secs(45))));
//! assert!(session.is_released());
//! assert_eq!(now - start, Duration::from_secs(50));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod config;
mod error;
pub(crate) mod request;
mod session;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};

pub use config::{
    AllowedOrigins, CookieConfig, CorsConfig, OriginPredicate, SameSite, ServerConfig, Transports,
};
pub use error::{ErrorCode, RequestError};
pub use request::RequestInfo;
pub use session::{Action, CLOSE_HEADER, EndedSession, Event, Session};

use crate::exchange::{RequestId, Response};
use crate::websocket::DeflateParams;
use crate::{ProtocolVersion, Sid, Transport};
use request::{Cors, check_origin};

/// Makes session ids. The binding supplies one backed by a cryptographically secure
/// random source (the id is the session's only credential: at least 120 bits); tests use
/// [`SeededSidGenerator`] so that every run replays.
pub trait SidGenerator: Send + Sync + 'static {
    /// A new, unguessable session id.
    fn generate(&self) -> Sid;
}

/// A deterministic [`SidGenerator`] for tests and fuzzing (splitmix64 over a counter).
/// **Not for production**: its ids are predictable.
#[derive(Debug)]
pub struct SeededSidGenerator {
    state: AtomicU64,
}

impl SeededSidGenerator {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        SeededSidGenerator {
            state: AtomicU64::new(seed),
        }
    }
}

impl SidGenerator for SeededSidGenerator {
    fn generate(&self) -> Sid {
        let n = self
            .state
            .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
            .wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mix = |mut z: u64| {
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        let a = mix(n).to_le_bytes();
        let b = mix(n ^ 0x5555_5555_5555_5555).to_le_bytes();
        let mut bytes = [0u8; 15];
        for (dst, src) in bytes.iter_mut().zip(a.iter().chain(b.iter())) {
            *dst = *src;
        }
        Sid::from_entropy(bytes)
    }
}

/// The configuration cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `path` must start with `/`.
    #[error("path {0:?} must start with '/'")]
    InvalidPath(String),
    /// A time that must be positive is zero.
    #[error("{0} must be greater than zero")]
    ZeroDuration(&'static str),
    /// No transport is enabled.
    #[error("at least one transport must be enabled")]
    NoTransport,
    /// The cookie would not be a valid `Set-Cookie` header.
    #[error("cookie configuration gives an invalid Set-Cookie header: {0:?}")]
    InvalidCookie(String),
    /// A limit is zero.
    #[error("{0} must be at least 1")]
    ZeroLimit(&'static str),
    /// A limit is below the smallest value that still serves every valid request.
    #[error("{name} must be at least {min}")]
    LimitTooSmall {
        /// The option.
        name: &'static str,
        /// Its smallest value.
        min: usize,
    },
    /// A permessage-deflate setting is out of range.
    #[error("{0} is out of range")]
    InvalidDeflate(&'static str),
}

/// The smallest [`ServerConfig::max_head_size`]: RFC 9112 section 3 recommends accepting
/// request lines of at least 8000 octets.
pub const MIN_HEAD_SIZE: usize = 8192;

/// The front door of an Engine.IO server; see the [module documentation](self).
pub struct Server {
    config: Arc<ServerConfig>,
    sids: Box<dyn SidGenerator>,
    path_without_slash: String,
    shutting_down: AtomicBool,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Where a request goes, as decided by [`Server::handle_request`].
#[derive(Debug)]
#[must_use]
pub enum Routed {
    /// Answer with this response; no session is involved (errors, CORS preflight).
    Respond(Response),
    /// A client asks for a new session: let the application decide, then call
    /// [`Server::accept`] or [`Server::reject`].
    Handshake(HandshakeRequest),
    /// For the session [`SessionRequest::sid`]: give it to that session's
    /// [`Session::handle_request`], or, if there is no such session, answer with
    /// [`SessionRequest::unknown_session`].
    Session(SessionRequest),
}

/// A handshake waiting for the application's decision. Dropping it is fine (for example
/// when the client went away).
#[derive(Debug)]
pub struct HandshakeRequest {
    id: RequestId,
    sid: Sid,
    transport: Transport,
    version: ProtocolVersion,
    b64: bool,
    cors: Cors,
    method: Method,
    /// Boxed: handshakes are rare, and this keeps [`Routed`] small for the common case.
    uri: Box<Uri>,
    headers: HeaderMap,
    peer_addr: Option<SocketAddr>,
    secure: bool,
    /// For a WebSocket: the permessage-deflate parameters agreed with its offer.
    deflate: Option<DeflateParams>,
}

impl HandshakeRequest {
    /// The request's id.
    pub fn id(&self) -> RequestId {
        self.id
    }

    /// The id the session will have if the handshake is accepted (python-engineio's
    /// `sid` argument of `connect`): chosen before the application decides, so that it
    /// can record it or log it; a rejected handshake's id is never used.
    pub fn sid(&self) -> Sid {
        self.sid
    }

    /// The transport the client opens the session with.
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// The protocol revision the client speaks (`EIO=3` only reaches here with
    /// [`ServerConfig::allow_eio3`] on).
    pub fn protocol_version(&self) -> ProtocolVersion {
        self.version
    }

    /// Whether the client asked for `b64=1` (it takes no binary frames or payloads).
    pub fn base64(&self) -> bool {
        self.b64
    }

    /// The request's headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The request target.
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// A query parameter, percent-decoded (for example an auth token the client added).
    pub fn query(&self, name: &str) -> Option<String> {
        request::query_param(self.uri.query().unwrap_or(""), name).map(|v| v.into_owned())
    }

    /// The peer's address, when the binding knows it.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer_addr
    }

    /// A borrowed view of the request, the same the CORS predicate sees.
    pub fn info(&self) -> RequestInfo<'_> {
        RequestInfo {
            method: &self.method,
            uri: &self.uri,
            headers: &self.headers,
            peer_addr: self.peer_addr,
            secure: self.secure,
            upgradable: true,
        }
    }
}

/// The application refuses a handshake: the client gets `status` (403 by default) and
/// `{"code":4,"message":<message>}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The status code.
    pub status: StatusCode,
    /// The message in the JSON body.
    pub message: String,
}

impl Rejection {
    /// A 403 with Node's message, `Forbidden` (what Node's `allowRequest` refusal
    /// answers).
    pub fn forbidden() -> Self {
        Rejection::new(StatusCode::FORBIDDEN, "Forbidden")
    }

    /// A 401 with `message` (python-engineio answers 401 when its `connect` handler
    /// returns `False`, with the message `Unauthorized`, or with the value it returned).
    ///
    /// ```
    /// use engineio_proto::server::Rejection;
    ///
    /// let r = Rejection::unauthorized("missing token");
    /// assert_eq!(r.status, http::StatusCode::UNAUTHORIZED);
    /// assert_eq!(r.message, "missing token");
    /// ```
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Rejection::new(StatusCode::UNAUTHORIZED, message)
    }

    /// A rejection with a status and message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Rejection {
            status,
            message: message.into(),
        }
    }
}

/// What a request asks of an existing session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionRequestKind {
    /// A long-polling GET (answered with packets, possibly later).
    Poll,
    /// A long-polling POST. The binding reads the body (at most
    /// [`Server::body_read_limit`] bytes) and hands it to [`Session::handle_post_body`].
    Post {
        /// Whether the request said `Content-Type: application/octet-stream`: a v3 binary
        /// payload (refused by v4 sessions, which end with
        /// [`ProtocolError::BinaryPayload`](crate::ProtocolError::BinaryPayload)).
        octet_stream: bool,
    },
    /// A WebSocket upgrade request for this session (the upgrade from polling).
    WebSocket,
}

/// A request routed to an existing session.
#[derive(Debug, Clone)]
pub struct SessionRequest {
    pub(crate) id: RequestId,
    pub(crate) sid: Sid,
    pub(crate) kind: SessionRequestKind,
    pub(crate) cors: Cors,
    pub(crate) arrived: Instant,
    /// For a WebSocket: the permessage-deflate parameters agreed with its offer.
    pub(crate) deflate: Option<DeflateParams>,
}

impl SessionRequest {
    /// The request's id.
    pub fn id(&self) -> RequestId {
        self.id
    }

    /// The session the request names.
    pub fn sid(&self) -> Sid {
        self.sid
    }

    /// What it asks for.
    pub fn kind(&self) -> SessionRequestKind {
        self.kind
    }

    /// The instant its head arrived (the `now` given to
    /// [`Server::handle_request`]): the session judges it by its state then.
    pub fn arrived(&self) -> Instant {
        self.arrived
    }

    /// The answer when no live session has this sid: 400 with code 1.
    pub fn unknown_session(&self) -> Response {
        let mut r = RequestError::UnknownSid(self.sid.to_string()).to_response();
        self.cors.apply(&mut r.headers);
        r
    }
}

/// A request [`Server::route_request`] refused before any session took it: the answer to
/// send, and why, for metrics and logs.
#[derive(Debug)]
pub struct Refused {
    error: RequestError,
    handshake: bool,
    transport: Option<Transport>,
    response: Response,
}

impl Refused {
    /// Why it was refused.
    pub fn error(&self) -> &RequestError {
        &self.error
    }

    /// Whether the request asked for a new session (it named no `sid`): a refused
    /// handshake, rather than a refused request of an existing session.
    pub fn is_handshake(&self) -> bool {
        self.handshake
    }

    /// The transport the request named, when it named a valid one.
    pub fn transport(&self) -> Option<Transport> {
        self.transport
    }

    /// The answer to send: the protocol's JSON error with CORS headers.
    pub fn response(&self) -> &Response {
        &self.response
    }

    /// The answer to send.
    pub fn into_response(self) -> Response {
        self.response
    }
}

impl Server {
    /// A server with this configuration, taking session ids from `sids`.
    pub fn new(config: ServerConfig, sids: impl SidGenerator) -> Result<Server, ConfigError> {
        if !config.path.starts_with('/') {
            return Err(ConfigError::InvalidPath(config.path.clone()));
        }
        for (name, d) in [
            ("ping_interval", config.ping_interval),
            ("ping_timeout", config.ping_timeout),
            ("upgrade_timeout", config.upgrade_timeout),
            ("head_timeout", config.head_timeout),
        ] {
            if d.is_zero() {
                return Err(ConfigError::ZeroDuration(name));
            }
        }
        if !config.transports.polling && !config.transports.websocket {
            return Err(ConfigError::NoTransport);
        }
        for (name, n) in [
            ("max_payload", config.max_payload),
            ("max_packets_per_payload", config.max_packets_per_payload),
            ("max_buffered_packets", config.max_buffered_packets),
        ] {
            if n == 0 {
                return Err(ConfigError::ZeroLimit(name));
            }
        }
        if config.max_head_size < MIN_HEAD_SIZE {
            return Err(ConfigError::LimitTooSmall {
                name: "max_head_size",
                min: MIN_HEAD_SIZE,
            });
        }
        if let Some(deflate) = &config.websocket_deflate {
            deflate.validate().map_err(ConfigError::InvalidDeflate)?;
        }
        if let Some(cookie) = &config.cookie {
            let value = cookie.header_value(&Sid::from_entropy([0; 15]));
            let name_ok = !cookie.name.is_empty()
                && cookie
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b));
            if !name_ok || HeaderValue::from_str(&value).is_err() {
                return Err(ConfigError::InvalidCookie(value));
            }
        }
        let path_without_slash = config.path.trim_end_matches('/').to_owned();
        Ok(Server {
            config: Arc::new(config),
            sids: Box::new(sids),
            path_without_slash,
            shutting_down: AtomicBool::new(false),
        })
    }

    /// Starts shutting down: from now on handshakes are refused (503, "the server is
    /// shutting down"), including those the application is still deciding on. Existing
    /// sessions go on until they are closed ([`Session::shutdown`] closes one with
    /// [`CloseReason::ServerShutdown`](crate::CloseReason::ServerShutdown)).
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    /// Whether [`begin_shutdown`](Self::begin_shutdown) was called.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// The answer to a request whose head did not arrive within
    /// [`head_timeout`](ServerConfig::head_timeout): `408 Request Timeout` with
    /// `Connection: close` (RFC 9110 15.5.9: the server closes the connection rather than
    /// wait longer) and a body that says what happened and which option to change.
    ///
    /// ```
    /// use engineio_proto::server::{SeededSidGenerator, Server, ServerConfig};
    ///
    /// let server = Server::new(ServerConfig::default(), SeededSidGenerator::new(1))?;
    /// let response = server.head_timeout_response();
    /// assert_eq!(response.status, http::StatusCode::REQUEST_TIMEOUT);
    /// assert_eq!(response.headers["connection"], "close");
    /// # Ok::<(), engineio_proto::server::ConfigError>(())
    /// ```
    pub fn head_timeout_response(&self) -> Response {
        let body = format!(
            "the request head (request line and headers) did not arrive within {} ms \
             (ServerConfig::head_timeout); the connection is closed\n",
            self.config.head_timeout.as_millis()
        );
        let mut response = Response::new(
            StatusCode::REQUEST_TIMEOUT,
            crate::exchange::TEXT_PLAIN,
            Bytes::from(body),
        );
        response
            .headers
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        response
    }

    /// The configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// Whether a request path belongs to Engine.IO: the configured path with or without its
    /// trailing slash. Bindings send everything else to the application's other routes.
    pub fn matches_path(&self, path: &str) -> bool {
        path.strip_prefix(self.path_without_slash.as_str())
            .is_some_and(|rest| rest.is_empty() || rest == "/")
    }

    /// How many body bytes a binding should read at most before handing a POST body to
    /// the session: one more than `max_payload`, enough to tell that a body is too large
    /// without buffering the rest.
    pub fn body_read_limit(&self) -> usize {
        self.config.max_payload.saturating_add(1)
    }

    /// Reads a request's head and says where it goes; see [`Routed`]. `now` is the
    /// instant the head arrived: a session judges the request by its state then.
    ///
    /// Checks run in Node's order: path, CORS preflight, transport (code 0), origin
    /// (code 3), JSONP (code 3), then for a session request the method and transport
    /// (code 3) and the protocol version (code 5), and for a handshake the method (code 2),
    /// the WebSocket headers (code 3), the protocol version (code 5) and shutdown (503).
    pub fn handle_request(&self, now: Instant, id: RequestId, req: &RequestInfo<'_>) -> Routed {
        match self.route_request(now, id, req) {
            Ok(routed) => routed,
            Err(refused) => Routed::Respond(refused.into_response()),
        }
    }

    /// Like [`handle_request`](Self::handle_request), with the requests the protocol
    /// refuses (its JSON errors) apart, saying why: [`Refused`] holds the error, whether
    /// the request was a handshake, and the answer to send. Bindings that count refusals
    /// (metrics) use this; `Ok` holds everything else, including CORS preflights and the
    /// 404 for a path that is not Engine.IO's. (The refusal is boxed: it is the rare path,
    /// and it keeps the common one small.)
    pub fn route_request(
        &self,
        now: Instant,
        id: RequestId,
        req: &RequestInfo<'_>,
    ) -> Result<Routed, Box<Refused>> {
        if !self.matches_path(req.uri.path()) {
            let mut r = Response::empty(StatusCode::NOT_FOUND);
            r.body = Bytes::from_static(b"Not Found");
            return Ok(Routed::Respond(r));
        }
        let trust = self.config.trust_forwarded_headers;
        let cors_result = check_origin(&self.config.cors, trust, req);
        let query = request::ProtocolQuery::parse(req.uri.query().unwrap_or(""));
        if *req.method == Method::OPTIONS
            && !matches!(self.config.cors.origins, AllowedOrigins::Disabled)
        {
            return match cors_result {
                Ok(cors) => Ok(Routed::Respond(preflight(&cors, req))),
                Err(refused) => Err(refusal(
                    RequestError::OriginNotAllowed(refused.0),
                    &Cors::default(),
                    &query,
                )),
            };
        }
        self.route(now, id, req, &query, cors_result)
            .map_err(|(error, cors)| refusal(error, &cors, &query))
    }

    fn route(
        &self,
        now: Instant,
        id: RequestId,
        req: &RequestInfo<'_>,
        query: &request::ProtocolQuery<'_>,
        cors_result: Result<Cors, request::OriginRefused>,
    ) -> Result<Routed, (RequestError, Cors)> {
        let transport = match &query.transport {
            Some(t) => match t.parse::<Transport>() {
                Ok(t) if self.config.transports.allows(t) => t,
                Ok(t) => return Err((RequestError::TransportDisabled(t), Cors::default())),
                Err(_) => {
                    return Err((
                        RequestError::UnknownTransport(Some(t.to_string())),
                        Cors::default(),
                    ));
                }
            },
            None => return Err((RequestError::UnknownTransport(None), Cors::default())),
        };
        let cors = cors_result
            .map_err(|refused| (RequestError::OriginNotAllowed(refused.0), Cors::default()))?;
        let fail = |e: RequestError| Err((e, cors.clone()));
        if query.jsonp {
            return fail(RequestError::JsonpNotSupported);
        }
        let upgrade = req.is_websocket_upgrade();
        let eio = &query.eio;
        if let Some(sid) = &query.sid {
            let kind = match (transport, upgrade) {
                (Transport::WebSocket, true) => SessionRequestKind::WebSocket,
                (Transport::WebSocket, false) => {
                    return fail(RequestError::WebSocketWithoutUpgrade);
                }
                (Transport::Polling, true) => return fail(RequestError::UpgradeOnPolling),
                (Transport::Polling, false) => match *req.method {
                    Method::GET => SessionRequestKind::Poll,
                    Method::POST => SessionRequestKind::Post {
                        octet_stream: req
                            .headers
                            .get(header::CONTENT_TYPE)
                            .and_then(|v| v.to_str().ok())
                            .is_some_and(|v| {
                                const OCTET: &str = "application/octet-stream";
                                v.trim_start()
                                    .get(..OCTET.len())
                                    .is_some_and(|p| p.eq_ignore_ascii_case(OCTET))
                            }),
                    },
                    ref m => {
                        return fail(RequestError::MethodNotAllowed {
                            method: m.clone(),
                            transport,
                        });
                    }
                },
            };
            if let Err(e) = ProtocolVersion::from_query(eio.as_deref(), self.config.allow_eio3) {
                return fail(e.into());
            }
            let Ok(sid) = Sid::new(sid) else {
                return fail(RequestError::UnknownSid(sid.to_string()));
            };
            if kind == SessionRequestKind::WebSocket
                && let Some(e) = req.websocket_refusal()
            {
                return fail(e);
            }
            let deflate = match kind {
                SessionRequestKind::WebSocket => self.negotiate_deflate(req),
                _ => None,
            };
            return Ok(Routed::Session(SessionRequest {
                id,
                sid,
                kind,
                cors,
                arrived: now,
                deflate,
            }));
        }
        if *req.method != Method::GET {
            return fail(RequestError::BadHandshakeMethod(req.method.clone()));
        }
        match (transport, upgrade) {
            (Transport::WebSocket, false) => return fail(RequestError::WebSocketWithoutUpgrade),
            (Transport::Polling, true) => return fail(RequestError::UpgradeOnPolling),
            _ => {}
        }
        if transport == Transport::WebSocket
            && let Some(e) = req.websocket_refusal()
        {
            return fail(e);
        }
        let version = match ProtocolVersion::from_query(eio.as_deref(), self.config.allow_eio3) {
            Ok(v) => v,
            Err(e) => return fail(e.into()),
        };
        if self.is_shutting_down() {
            return fail(RequestError::ShuttingDown);
        }
        let deflate = match transport {
            Transport::WebSocket => self.negotiate_deflate(req),
            Transport::Polling => None,
        };
        Ok(Routed::Handshake(HandshakeRequest {
            deflate,
            id,
            sid: self.sids.generate(),
            transport,
            version,
            b64: query.b64,
            cors,
            method: req.method.clone(),
            uri: Box::new(req.uri.clone()),
            headers: req.headers.clone(),
            peer_addr: req.peer_addr,
            secure: req.secure,
        }))
    }

    /// Opens the session a handshake asked for.
    ///
    /// The session's first actions answer the handshake: for polling a `200` whose body is
    /// the open packet, for WebSocket an [`Action::AcceptWebSocket`] followed by the open
    /// packet as the first message. The first ping is due `ping_interval` after `now`.
    ///
    /// If the server began shutting down while the application was deciding, there is no
    /// session: the error is the response to send (503).
    pub fn accept(
        &self,
        now: Instant,
        handshake: HandshakeRequest,
    ) -> Result<Session, Box<Response>> {
        if self.is_shutting_down() {
            let mut r = RequestError::ShuttingDown.to_response();
            handshake.cors.apply(&mut r.headers);
            return Err(Box::new(r));
        }
        let sid = handshake.sid;
        let mut headers = HeaderMap::new();
        if let Some(cookie) = &self.config.cookie
            && let Ok(v) = HeaderValue::from_str(&cookie.header_value(&sid))
        {
            headers.insert(header::SET_COOKIE, v);
        }
        Ok(Session::open(
            now,
            Arc::clone(&self.config),
            sid,
            handshake.id,
            handshake.transport,
            handshake.version,
            handshake.b64,
            &handshake.cors,
            headers,
            handshake.deflate,
        ))
    }

    /// The permessage-deflate parameters to accept for a WebSocket request's offer
    /// (`Sec-WebSocket-Extensions`), when the server has it enabled.
    fn negotiate_deflate(&self, req: &RequestInfo<'_>) -> Option<DeflateParams> {
        let config = self.config.websocket_deflate.as_ref()?;
        let offers = req
            .headers
            .get_all(header::SEC_WEBSOCKET_EXTENSIONS)
            .iter()
            .filter_map(|v| v.to_str().ok());
        crate::websocket::negotiate_deflate(offers, config)
    }

    /// Refuses a handshake: the response to send (`{"code":4,...}` with the rejection's
    /// status and message, plus CORS headers).
    pub fn reject(&self, handshake: HandshakeRequest, rejection: Rejection) -> Response {
        let mut r = RequestError::Rejected {
            status: rejection.status,
            message: rejection.message,
        }
        .to_response();
        handshake.cors.apply(&mut r.headers);
        r
    }
}

/// The answer to a refused request, with why and what it asked for.
fn refusal(error: RequestError, cors: &Cors, query: &request::ProtocolQuery<'_>) -> Box<Refused> {
    let mut response = error.to_response();
    cors.apply(&mut response.headers);
    Box::new(Refused {
        error,
        handshake: query.sid.is_none(),
        transport: query.transport.as_deref().and_then(|t| t.parse().ok()),
        response,
    })
}

fn preflight(cors: &Cors, req: &RequestInfo<'_>) -> Response {
    let mut r = Response::empty(StatusCode::NO_CONTENT);
    cors.apply(&mut r.headers);
    r.headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("OPTIONS, GET, POST"),
    );
    if let Some(h) = req.headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
        r.headers
            .insert(header::ACCESS_CONTROL_ALLOW_HEADERS, h.clone());
    }
    r
}
