//! Server configuration: every option, its default, and the peers' defaults.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::RequestInfo;

/// Every option of the server state machine.
///
/// Build it from [`ServerConfig::default()`] and change fields:
///
/// ```
/// use std::time::Duration;
/// use engineio_proto::server::{AllowedOrigins, ServerConfig};
///
/// let mut config = ServerConfig::default();
/// config.ping_interval = Duration::from_millis(300);
/// config.ping_timeout = Duration::from_millis(200);
/// config.cors.origins = AllowedOrigins::list(["https://example.com"]);
/// assert_eq!(config.max_payload, 1_000_000);
/// ```
///
/// | option | default | Node `engine.io` 6.6 | python-engineio 4.x |
/// |---|---|---|---|
/// | [`path`](Self::path) | `/engine.io/` | `path` `/engine.io` + `addTrailingSlash` | `engineio_path` `engine.io` |
/// | [`ping_interval`](Self::ping_interval) | 25 s | `pingInterval` 25000 ms | `ping_interval` 25 s |
/// | [`ping_timeout`](Self::ping_timeout) | 20 s | `pingTimeout` 20000 ms | `ping_timeout` 20 s |
/// | [`upgrade_timeout`](Self::upgrade_timeout) | 10 s | `upgradeTimeout` 10000 ms | none |
/// | [`close_timeout`](Self::close_timeout) | 30 s | polling `closeTimeout` 30000 ms | none |
/// | [`write_timeout`](Self::write_timeout) | 5 s | none (a peer that never reads holds its socket) | none |
/// | [`client_close_grace`](Self::client_close_grace) | 100 ms | none (one thread: requests are usually read in the order they were sent) | none |
/// | [`head_timeout`](Self::head_timeout) | 30 s | `http.Server` `headersTimeout` 60000 ms | none (the hosting HTTP server's) |
/// | [`max_head_size`](Self::max_head_size) | 16 KiB | `maxHeaderSize` 16 KiB (431) | none of its own (uvicorn/h11 16 KiB) |
/// | [`max_payload`](Self::max_payload) | 1,000,000 B | `maxHttpBufferSize` 1e6 | `max_http_buffer_size` 1,000,000 |
/// | [`max_packets_per_payload`](Self::max_packets_per_payload) | unlimited | unlimited | 16 |
/// | [`max_buffered_packets`](Self::max_buffered_packets) | 1024 | unbounded | unbounded |
/// | [`transports`](Self::transports) | polling + websocket | `transports` both | `transports` both |
/// | [`allow_upgrades`](Self::allow_upgrades) | true | `allowUpgrades` true | `allow_upgrades` true |
/// | [`cors`](Self::cors) | same origin, credentials | no CORS (`cors` off) | same origin, credentials on |
/// | [`cookie`](Self::cookie) | none | `cookie` false | `cookie` None |
/// | [`trust_forwarded_headers`](Self::trust_forwarded_headers) | false | – | always trusted |
/// | [`allow_eio3`](Self::allow_eio3) | false | `allowEIO3` false | – (v4 only since 4.0) |
/// | [`websocket_deflate`](Self::websocket_deflate) | off | `perMessageDeflate` false | off (its WebSocket servers decide) |
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// The URL path Engine.IO answers on. Requests on this path with or without the
    /// trailing slash (`/engine.io` and `/engine.io/`) belong to Engine.IO; see
    /// [`Server::matches_path`](super::Server::matches_path).
    pub path: String,
    /// Time between two pings. Sent to clients in the open packet (in milliseconds).
    pub ping_interval: Duration,
    /// How long a ping may wait for its pong before the session is closed with
    /// [`CloseReason::PingTimeout`](crate::CloseReason::PingTimeout).
    pub ping_timeout: Duration,
    /// How long a WebSocket opened for an upgrade may take to complete it (probe then
    /// `5`). When it runs out the WebSocket is closed and the session stays on polling.
    pub upgrade_timeout: Duration,
    /// After the server closes a polling session, how long the close packet waits for a
    /// GET to carry it before the session is dropped anyway.
    pub close_timeout: Duration,
    /// How long a peer may leave what the server writes unread. A WebSocket that takes
    /// nothing for this long ends its session
    /// ([`CloseReason::WriteTimeout`](crate::CloseReason::WriteTimeout)); once a session
    /// has ended, its sockets get this long to take their last frames, and late requests
    /// naming it are still judged by how it ended, then everything is dropped
    /// ([`Action::Release`](super::Action::Release)). So a peer that stops reading never
    /// holds a socket longer than the heartbeat (or this timeout) plus this timeout.
    pub write_timeout: Duration,
    /// How long after a client closes its session over polling (a POST with `1`) a GET
    /// it sent at the same moment, on another connection, still gets the noop (`6`)
    /// that releases it, rather than 400: two requests sent together can reach the
    /// server in either order (the kernel and the runtime both reorder them), and the
    /// protocol expects the GET to be released. Only the first such GET; later ones get
    /// 400. Zero judges strictly by arrival.
    pub client_close_grace: Duration,
    /// How long a request's head (request line and headers) may take to arrive, from the
    /// connection's start or from the end of the previous exchange on a kept-alive
    /// connection. When it runs out on a request that has started to arrive, the binding
    /// answers [`Server::head_timeout_response`](super::Server::head_timeout_response)
    /// (`408 Request Timeout`, `Connection: close`) if the socket takes it at once, and
    /// closes the connection; a connection that sent nothing is closed without an answer.
    /// This is what ends slowloris connections.
    pub head_timeout: Duration,
    /// The largest request head (request line and headers) accepted, in bytes; a larger one
    /// gets `431 Request Header Fields Too Large`. It is also what a connection whose head
    /// has not arrived yet may hold in memory, so it bounds what slow clients sending huge
    /// heads cost (hyper's own default is about 400 KB a connection). At least 8192
    /// (RFC 9112 section 3 recommends accepting request lines of 8000 octets).
    pub max_head_size: usize,
    /// The largest polling POST body and the largest WebSocket message accepted, in bytes;
    /// also advertised to clients as `maxPayload`. A larger POST gets `413` and a larger
    /// WebSocket message the close code 1009; both end the session with
    /// [`CloseReason::PayloadTooLarge`](crate::CloseReason::PayloadTooLarge).
    pub max_payload: usize,
    /// The largest number of packets accepted in one POST body.
    pub max_packets_per_payload: usize,
    /// The largest number of packets waiting in a session's outgoing queue. When it is
    /// full, `send` returns [`SendError::QueueFull`](crate::SendError::QueueFull) with the
    /// message: back-pressure the application sees, never a silent drop.
    pub max_buffered_packets: usize,
    /// Which transports clients may use.
    pub transports: Transports,
    /// Whether a polling session may upgrade to WebSocket.
    pub allow_upgrades: bool,
    /// Cross-origin policy.
    pub cors: CorsConfig,
    /// The session-id cookie for sticky load balancers, off by default.
    pub cookie: Option<CookieConfig>,
    /// Whether `X-Forwarded-Proto` and `X-Forwarded-Host` are believed when checking
    /// that a request is same-origin. Turn it on only behind a proxy that sets them.
    pub trust_forwarded_headers: bool,
    /// Whether clients speaking Engine.IO v3 (`EIO=3`: socket.io-client 1.x/2.x,
    /// engine.io-client 3.x) may open sessions, beside v4 ones. A v3 session gets v3's
    /// polling framing (length-prefixed records, binary payloads for XHR2 clients),
    /// binary frames led by a type byte, and v3's heartbeat: the client pings, the server
    /// answers, and a session whose client sends no ping for `ping_interval +
    /// ping_timeout` ends with [`CloseReason::PingTimeout`](crate::CloseReason::PingTimeout).
    /// Off by default, as in Node; when off, `EIO=3` gets the error code 5. Exactly `3`
    /// and `4` are accepted (Node with `allowEIO3` takes any value but `4` as v3). JSONP
    /// (`j=`) stays refused either way.
    pub allow_eio3: bool,
    /// permessage-deflate (RFC 7692) on WebSockets whose client offers it; off by
    /// default. See [`DeflateConfig`](crate::websocket::DeflateConfig) for its settings,
    /// their defaults beside Node's and python-engineio's, and what it costs.
    pub websocket_deflate: Option<crate::websocket::DeflateConfig>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            path: "/engine.io/".to_owned(),
            ping_interval: Duration::from_secs(25),
            ping_timeout: Duration::from_secs(20),
            upgrade_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(5),
            client_close_grace: Duration::from_millis(100),
            head_timeout: Duration::from_secs(30),
            max_head_size: 16 * 1024,
            max_payload: 1_000_000,
            max_packets_per_payload: usize::MAX,
            max_buffered_packets: 1024,
            transports: Transports::default(),
            allow_upgrades: true,
            cors: CorsConfig::default(),
            cookie: None,
            trust_forwarded_headers: false,
            allow_eio3: false,
            websocket_deflate: None,
        }
    }
}

/// The transports a server accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transports {
    /// HTTP long-polling.
    pub polling: bool,
    /// WebSocket.
    pub websocket: bool,
}

impl Default for Transports {
    fn default() -> Self {
        Transports {
            polling: true,
            websocket: true,
        }
    }
}

impl Transports {
    /// Whether `transport` is enabled.
    pub fn allows(&self, transport: crate::Transport) -> bool {
        match transport {
            crate::Transport::Polling => self.polling,
            crate::Transport::WebSocket => self.websocket,
        }
    }
}

/// Cross-origin policy: which `Origin`s may talk to the server, and whether browsers may
/// send credentials (cookies).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CorsConfig {
    /// Which origins are accepted. Default: [`AllowedOrigins::SameOrigin`].
    pub origins: AllowedOrigins,
    /// Whether `Access-Control-Allow-Credentials: true` is sent. Default: true (as
    /// python-engineio). The allowed origin is always echoed, never `*`, so credentials
    /// work with every policy.
    pub credentials: bool,
}

impl Default for CorsConfig {
    fn default() -> Self {
        CorsConfig {
            origins: AllowedOrigins::SameOrigin,
            credentials: true,
        }
    }
}

/// A predicate deciding whether an origin is accepted.
pub type OriginPredicate = Arc<dyn Fn(&str, &RequestInfo<'_>) -> bool + Send + Sync>;

/// Which `Origin` header values are accepted.
///
/// Requests without an `Origin` header (non-browser clients) are always accepted; a
/// rejected origin gets `400` with code 3 and no CORS headers, on every request including
/// WebSocket upgrades.
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum AllowedOrigins {
    /// Only the server's own origin: `Origin` must equal `scheme://host` of the request
    /// (python-engineio's default). The scheme is `https` when the binding says the
    /// connection is secure; with
    /// [`trust_forwarded_headers`](ServerConfig::trust_forwarded_headers), the
    /// `X-Forwarded-*` headers are used.
    #[default]
    SameOrigin,
    /// Any origin (echoed back).
    Any,
    /// Exactly these origins (`scheme://host[:port]`, compared case-insensitively).
    List(Vec<String>),
    /// A function of the origin and the request.
    Predicate(OriginPredicate),
    /// No origin check and no CORS headers at all (python's `cors_allowed_origins=[]`),
    /// for servers behind a proxy or middleware that handles CORS itself.
    Disabled,
}

impl AllowedOrigins {
    /// An allow-list.
    pub fn list<I, S>(origins: I) -> AllowedOrigins
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        AllowedOrigins::List(origins.into_iter().map(Into::into).collect())
    }

    /// A predicate.
    pub fn predicate(f: impl Fn(&str, &RequestInfo<'_>) -> bool + Send + Sync + 'static) -> Self {
        AllowedOrigins::Predicate(Arc::new(f))
    }
}

/// `"*"` is [`AllowedOrigins::Any`]; any other string is a one-origin list
/// (python-engineio's `cors_allowed_origins='*'` and `cors_allowed_origins='https://a'`).
impl From<&str> for AllowedOrigins {
    fn from(origin: &str) -> Self {
        if origin == "*" {
            AllowedOrigins::Any
        } else {
            AllowedOrigins::List(vec![origin.to_owned()])
        }
    }
}

/// As for `&str`.
impl From<String> for AllowedOrigins {
    fn from(origin: String) -> Self {
        AllowedOrigins::from(origin.as_str())
    }
}

/// A list of origins; one of them `"*"` makes it [`AllowedOrigins::Any`] (as
/// python-engineio). An empty list accepts only requests without an `Origin` header:
/// unlike python-engineio's `[]`, it does not turn the checks off (that is
/// [`AllowedOrigins::Disabled`]).
impl<S: Into<String>> From<Vec<S>> for AllowedOrigins {
    fn from(origins: Vec<S>) -> Self {
        let origins: Vec<String> = origins.into_iter().map(Into::into).collect();
        if origins.iter().any(|o| o == "*") {
            AllowedOrigins::Any
        } else {
            AllowedOrigins::List(origins)
        }
    }
}

/// As for `Vec`.
impl<S: Into<String>, const N: usize> From<[S; N]> for AllowedOrigins {
    fn from(origins: [S; N]) -> Self {
        AllowedOrigins::from(Vec::from(origins))
    }
}

impl fmt::Debug for AllowedOrigins {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AllowedOrigins::SameOrigin => f.write_str("SameOrigin"),
            AllowedOrigins::Any => f.write_str("Any"),
            AllowedOrigins::List(l) => f.debug_tuple("List").field(l).finish(),
            AllowedOrigins::Predicate(_) => f.write_str("Predicate(..)"),
            AllowedOrigins::Disabled => f.write_str("Disabled"),
        }
    }
}

/// The `SameSite` attribute of a cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    /// `SameSite=Strict`.
    Strict,
    /// `SameSite=Lax`.
    Lax,
    /// `SameSite=None` (browsers then require `Secure`).
    None,
}

/// The sid cookie, set on the handshake response so that a load balancer can route every
/// request of a session to the same server process.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CookieConfig {
    /// Cookie name. Default `io` (as Node and python-engineio).
    pub name: String,
    /// `Path` attribute. Default `/`.
    pub path: Option<String>,
    /// `HttpOnly`. Default true.
    pub http_only: bool,
    /// `SameSite`. Default `Lax`.
    pub same_site: Option<SameSite>,
    /// `Secure`. Default false.
    pub secure: bool,
    /// `Max-Age`. Default none (a session cookie).
    pub max_age: Option<Duration>,
    /// `Domain`. Default none.
    pub domain: Option<String>,
}

impl Default for CookieConfig {
    fn default() -> Self {
        CookieConfig {
            name: "io".to_owned(),
            path: Some("/".to_owned()),
            http_only: true,
            same_site: Some(SameSite::Lax),
            secure: false,
            max_age: None,
            domain: None,
        }
    }
}

impl CookieConfig {
    /// A cookie with this name and the other attributes at their defaults.
    pub fn named(name: impl Into<String>) -> Self {
        CookieConfig {
            name: name.into(),
            ..CookieConfig::default()
        }
    }

    /// The `Set-Cookie` header value for a session id.
    pub fn header_value(&self, sid: &crate::Sid) -> String {
        let mut v = format!("{}={}", self.name, sid);
        if let Some(path) = &self.path {
            v.push_str("; Path=");
            v.push_str(path);
        }
        if let Some(domain) = &self.domain {
            v.push_str("; Domain=");
            v.push_str(domain);
        }
        if let Some(age) = self.max_age {
            v.push_str(&format!("; Max-Age={}", age.as_secs()));
        }
        if self.http_only {
            v.push_str("; HttpOnly");
        }
        if self.secure {
            v.push_str("; Secure");
        }
        match self.same_site {
            Some(SameSite::Strict) => v.push_str("; SameSite=Strict"),
            Some(SameSite::Lax) => v.push_str("; SameSite=Lax"),
            Some(SameSite::None) => v.push_str("; SameSite=None"),
            None => {}
        }
        v
    }
}
