//! The client's configuration and the URLs built from it.

use std::time::Duration;

use http::uri::{Authority, Scheme};
use http::{HeaderMap, Uri};

use super::proxy::Proxy;
use crate::{ProtocolVersion, Sid, Transport};

/// How a [`Client`](super::Client) connects, and its limits.
///
/// Build it from a URL with [`ClientConfig::new`], then change the public fields. The
/// values are checked again by [`Client::new`](super::Client::new).
///
/// Defaults, next to the two reference clients (engine.io-client 6.6 and python-engineio
/// 4.x; reconnection comes from the layer above them, socket.io-client's `Manager` and
/// python-socketio's `Client`, since neither Engine.IO client reconnects):
///
/// | field | default | engine.io-client 6.6 | python-engineio 4.x |
/// |---|---|---|---|
/// | [`path`](Self::path) | `/engine.io/` (or the URL's path) | `path: "/engine.io"` + `addTrailingSlash` | `engineio_path="engine.io"` |
/// | [`query`](Self::query) | the URL's query | `query: {}` (and the URL's) | the URL's query |
/// | [`headers`](Self::headers) | none | `extraHeaders: {}` | `headers={}` |
/// | [`transports`](Self::transports) | `[Polling, WebSocket]` | `["polling", "websocket", "webtransport"]` | `['polling', 'websocket']` |
/// | [`upgrade`](Self::upgrade) | `true` | `upgrade: true` | always (when `websocket` is listed) |
/// | [`request_timeout`](Self::request_timeout) | 20 s | `requestTimeout`: none | `request_timeout=5` s |
/// | [`write_timeout`](Self::write_timeout) | 5 s | none (a socket is dropped at once) | none |
/// | [`upgrade_timeout`](Self::upgrade_timeout) | 10 s | none (the server's `upgradeTimeout`, 10 s) | none |
/// | [`timestamp_requests`](Self::timestamp_requests) | `true` | `timestampRequests: true` | `timestamp_requests=True` |
/// | [`timestamp_param`](Self::timestamp_param) | `t` | `timestampParam: "t"` | `t` (fixed) |
/// | [`max_queued_messages`](Self::max_queued_messages) | 1024 | unbounded `writeBuffer` | unbounded queue |
/// | [`max_queued_bytes`](Self::max_queued_bytes) | 16 MiB | unbounded | unbounded |
/// | [`max_payload`](Self::max_payload) | 16 MiB | unbounded (polling) | unbounded |
/// | [`max_handshake_size`](Self::max_handshake_size) | 64 KiB | unbounded | unbounded |
/// | [`max_ws_message_size`](Self::max_ws_message_size) | 16 MiB | `ws` `maxPayload` 100 MiB (Node); none (browsers) | unbounded (`websocket-client`); 4 MiB (`aiohttp`) |
/// | [`max_ws_frame_size`](Self::max_ws_frame_size) | 16 MiB | as the message | as the message |
/// | [`websocket_deflate`](Self::websocket_deflate) | off | `perMessageDeflate` `{ threshold: 1024 }` (Node) | off (`aiohttp` `compress=15` through `websocket_extra_options`) |
/// | [`reconnect`](Self::reconnect) | `None` (off) | none; socket.io-client: on | none; python-socketio: on |
/// | [`offline`](Self::offline) | `Queue { max: 1024 }` | socket.io-client: unbounded `sendBuffer` | python-socketio: refused |
/// | [`protocol_version`](Self::protocol_version) | `V4` | v4 (engine.io-client 3.x speaks v3) | v4 (python-engineio 3.x speaks v3) |
/// | [`proxy`](Self::proxy) | [`Proxy::None`] | none (an `agent` such as https-proxy-agent) | requests reads `HTTP(S)_PROXY` (`http_session` to change it) |
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientConfig {
    /// Whether the connection uses TLS: `https://` for polling and `wss://` for WebSocket.
    /// Set from the URL's scheme (`https` and `wss` are secure).
    pub secure: bool,
    /// The server's `host[:port]`, from the URL.
    pub authority: Authority,
    /// The Engine.IO path on the server. Default `/engine.io/`; a URL with a path other
    /// than `/` (for example `http://host/socket.io/`) sets it, with a trailing `/` added.
    /// Used as given when set directly. Must start with `/`.
    pub path: String,
    /// Extra query parameters sent on every request and WebSocket connect (for example an
    /// authentication token), unencoded. The URL's query is decoded into this list. The
    /// names the protocol uses (`EIO`, `transport`, `sid`, `j`, `b64` and the timestamp
    /// parameter) are refused.
    pub query: Vec<(String, String)>,
    /// Extra headers sent on every HTTP request and on the WebSocket connect. Default none.
    /// Cookies the server sets (kept for the rest of the session) are appended to the
    /// `Cookie` header given here, or sent in one of their own.
    pub headers: HeaderMap,
    /// The transports to use, in order: the first opens the session and the later ones
    /// are candidates for an upgrade. Default `[Polling, WebSocket]` (open by long-polling,
    /// then upgrade to WebSocket); `[WebSocket]` opens the session directly over
    /// WebSocket; `[Polling]` never upgrades.
    pub transports: Vec<Transport>,
    /// Whether to upgrade from polling to WebSocket when the server offers it and
    /// [`transports`](Self::transports) lists WebSocket after polling. Default `true`.
    pub upgrade: bool,
    /// How long the handshake (a polling GET, or a WebSocket connect up to its open
    /// packet) and each polling POST may take before the connection is declared failed.
    /// Default 20 s. Long-poll GETs have no timeout of their own: they are bounded by the
    /// heartbeat (no ping within `pingInterval + pingTimeout` ends the connection).
    pub request_timeout: Duration,
    /// How long an upgrade to WebSocket may take, from the WebSocket connect to sending
    /// the upgrade packet (`5`). When it runs out the probe WebSocket is closed and the
    /// connection stays on polling. Default 10 s (the server side's default).
    pub upgrade_timeout: Duration,
    /// How long a WebSocket the client closed may take to take its close frame before it
    /// is dropped ([`ClientAction::WsDrop`](super::ClientAction::WsDrop)): a server that
    /// stops reading never holds a closed socket longer. Default 5 s (the server's
    /// `write_timeout`).
    pub write_timeout: Duration,
    /// Whether to add a cache-busting parameter to every request and WebSocket connect.
    /// Default `true`. Its value comes from the client's seeded generator, never the
    /// clock.
    pub timestamp_requests: bool,
    /// The name of the cache-busting parameter. Default `t`.
    pub timestamp_param: String,
    /// The most messages the client holds while connected and waiting to send them: while
    /// a POST is in flight, during an upgrade, or while the WebSocket does not take more
    /// (the binding pulls messages only as fast as the socket accepts them).
    /// [`Client::send`] then refuses with [`SendError::QueueFull`](crate::SendError::QueueFull),
    /// handing the message back: the server is not taking data fast enough. Default 1024.
    ///
    /// [`Client::send`]: super::Client::send
    pub max_queued_messages: usize,
    /// The most bytes of messages (text in UTF-8, binary as is) the client holds waiting,
    /// on every transport and while offline; beyond it [`Client::send`] refuses with
    /// [`SendError::QueueFull`](crate::SendError::QueueFull) too. A message larger than
    /// this is still taken when nothing else waits. Default 16 MiB.
    ///
    /// [`Client::send`]: super::Client::send
    pub max_queued_bytes: usize,
    /// The largest polling response body (a long-poll GET's payload, which may batch many
    /// packets) the client reads, in bytes. A larger one ends the session with
    /// [`CloseReason::PayloadTooLarge`](crate::CloseReason::PayloadTooLarge), refused from
    /// its `Content-Length` without reading it when the header says so. Default 16 MiB.
    ///
    /// The server's `maxPayload` is not used for this: it is what the *server* accepts
    /// (the client sizes its POSTs by it), and servers (Node's and ours) batch every queued
    /// packet into one long-poll answer, which may be larger.
    pub max_payload: usize,
    /// The largest handshake answer (the open packet, by polling or as the first
    /// WebSocket message) and the largest answer to a POST (`ok`) the client reads, in
    /// bytes. A larger handshake fails with
    /// [`ConnectError::ResponseTooLarge`](super::ConnectError::ResponseTooLarge). Default
    /// 64 KiB (an open packet is about 120 bytes).
    pub max_handshake_size: usize,
    /// The largest WebSocket message the client reads, in bytes (one Engine.IO packet).
    /// A larger one ends the session with
    /// [`CloseReason::PayloadTooLarge`](crate::CloseReason::PayloadTooLarge). Default
    /// 16 MiB.
    pub max_ws_message_size: usize,
    /// The largest WebSocket frame the client reads, in bytes (a message may come in
    /// several frames). Default 16 MiB.
    pub max_ws_frame_size: usize,
    /// permessage-deflate (RFC 7692) offered on the client's WebSockets; off by default.
    /// See [`DeflateConfig`](crate::websocket::DeflateConfig): by default the offer asks
    /// the server to keep no compression context either, and a server that does not
    /// grant that is refused.
    pub websocket_deflate: Option<crate::websocket::DeflateConfig>,
    /// Automatic reconnection: `None` (the default) to stay disconnected after a
    /// connection is lost or cannot be made.
    pub reconnect: Option<ReconnectConfig>,
    /// What [`Client::send`](super::Client::send) does while there is no session (before
    /// the first handshake completes, or while reconnecting). Default
    /// `Queue { max: 1024 }`.
    pub offline: OfflinePolicy,
    /// The protocol revision to speak. Default [`ProtocolVersion::V4`];
    /// [`ProtocolVersion::V3`] talks to Engine.IO v3 servers (Node `engine.io` 3.x,
    /// Socket.IO 2.x servers, or 4.x+ with `allowEIO3`): `EIO=3`, v3's payload framing
    /// (POSTs as text payloads, binary in base64; binary payloads from the server are
    /// read too), binary WebSocket frames led by their type byte, and v3's heartbeat: the
    /// client pings every `pingInterval` and declares the server gone when no packet
    /// follows within `pingTimeout` (or nothing at all for `pingInterval +
    /// pingTimeout`).
    pub protocol_version: ProtocolVersion,
    /// The HTTP proxy to go through: none (the default), a URL
    /// ([`Proxy::url`]`("http://user:pass@proxy:3128")`), or the `HTTP_PROXY`/`HTTPS_PROXY`/
    /// `NO_PROXY` environment ([`Proxy::Environment`], read when the client connects).
    /// Polling over `http://` sends absolute-form requests to the proxy; `https://`,
    /// `ws://` and `wss://` go through a `CONNECT` tunnel (TLS to the server inside it).
    /// A proxy that refuses is reported as
    /// [`TransportError::Proxy`](crate::TransportError::Proxy), with its status.
    pub proxy: Proxy,
}

/// Automatic reconnection with exponential backoff and jitter, after a connection is lost
/// unexpectedly (not after [`Client::close`](super::Client::close) nor after the server
/// closed the session) or a connection attempt fails.
///
/// The delay before retry `n` (1-based) is `initial_delay * 2^(n-1)`, moved up or down by
/// a random fraction (at most `randomization_factor`) of itself, then capped at
/// `max_delay`: socket.io-client's `Backoff`. The randomness comes from the seed given to
/// [`Client::new`](super::Client::new).
///
/// | field | default | socket.io-client `Manager` | python-socketio `Client` |
/// |---|---|---|---|
/// | [`initial_delay`](Self::initial_delay) | 1 s | `reconnectionDelay: 1000` | `reconnection_delay=1` |
/// | [`max_delay`](Self::max_delay) | 5 s | `reconnectionDelayMax: 5000` | `reconnection_delay_max=5` |
/// | [`randomization_factor`](Self::randomization_factor) | 0.5 | `randomizationFactor: 0.5` | `randomization_factor=0.5` |
/// | [`max_attempts`](Self::max_attempts) | `None` (unlimited) | `reconnectionAttempts: Infinity` | `reconnection_attempts=0` (unlimited) |
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ReconnectConfig {
    /// The delay before the first retry. Default 1 s.
    pub initial_delay: Duration,
    /// The longest delay between two retries. Default 5 s.
    pub max_delay: Duration,
    /// How much of each delay is random, between 0 (none) and 1. Default 0.5: a delay of
    /// 2 s becomes anything between 1 s and 3 s.
    pub randomization_factor: f64,
    /// How many retries in a row before giving up with
    /// [`ClientEvent::ReconnectFailed`](super::ClientEvent::ReconnectFailed); `None` for
    /// no limit. Default `None`.
    pub max_attempts: Option<u32>,
}

impl Default for ReconnectConfig {
    fn default() -> Self {
        ReconnectConfig {
            initial_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(5),
            randomization_factor: 0.5,
            max_attempts: None,
        }
    }
}

/// What [`Client::send`](super::Client::send) does while there is no session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfflinePolicy {
    /// Keep up to `max` messages and send them, in order, once a session is open; beyond
    /// that, refuse with [`SendError::QueueFull`](crate::SendError::QueueFull). The
    /// default, with `max` 1024.
    Queue {
        /// The most messages kept.
        max: usize,
    },
    /// Refuse with [`SendError::Offline`](crate::SendError::Offline): the application
    /// decides what to do with messages sent while disconnected.
    Refuse,
}

impl Default for OfflinePolicy {
    fn default() -> Self {
        OfflinePolicy::Queue { max: 1024 }
    }
}

/// A [`ClientConfig`] cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The URL could not be parsed.
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The URL's scheme is not `http`, `https`, `ws` or `wss`.
    #[error("unsupported URL scheme {0:?}: use http://, https://, ws:// or wss://")]
    UnsupportedScheme(String),
    /// The path does not start with `/` or holds characters a URL path cannot.
    #[error("invalid path {0:?}: it must start with '/' and be a valid URL path")]
    InvalidPath(String),
    /// No transport is listed, or one is listed twice.
    #[error("transports must list polling and/or websocket, each at most once")]
    InvalidTransports,
    /// A query parameter uses a name the protocol reserves.
    #[error("query parameter {0:?} is reserved by the Engine.IO protocol")]
    ReservedQueryParam(String),
    /// The timestamp parameter's name is empty or not a plain token.
    #[error("timestamp parameter name {0:?} must be non-empty letters, digits, '-', '_' or '.'")]
    InvalidTimestampParam(String),
    /// A time that must be positive is zero.
    #[error("{0} must be greater than zero")]
    ZeroDuration(&'static str),
    /// A limit is zero.
    #[error("{0} must be at least 1")]
    ZeroLimit(&'static str),
    /// The reconnection's randomization factor is not between 0 and 1.
    #[error("randomization_factor must be between 0 and 1, not {0}")]
    InvalidRandomizationFactor(String),
    /// The proxy URL (given, or read from the environment) cannot be used.
    #[error("invalid proxy {url}: {reason}")]
    InvalidProxy {
        /// The URL (or `VARIABLE=value`), its password masked.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A permessage-deflate setting is out of range.
    #[error("{0} is out of range")]
    InvalidDeflate(&'static str),
}

/// Query parameter names the protocol uses.
const RESERVED: [&str; 5] = ["EIO", "transport", "sid", "j", "b64"];

impl ClientConfig {
    /// A configuration for the server at `url`, every other option at its default.
    ///
    /// `http://` and `ws://` connect in clear, `https://` and `wss://` with TLS; either
    /// scheme works with every transport. The URL's path, when not `/`, becomes
    /// [`path`](Self::path) (with a trailing `/`), and its query becomes
    /// [`query`](Self::query).
    ///
    /// ```
    /// use engineio_proto::client::ClientConfig;
    ///
    /// let config = ClientConfig::new("wss://example.com:8443/socket.io?token=abc")?;
    /// assert!(config.secure);
    /// assert_eq!(config.authority.as_str(), "example.com:8443");
    /// assert_eq!(config.path, "/socket.io/");
    /// assert_eq!(config.query, [("token".to_owned(), "abc".to_owned())]);
    /// # Ok::<(), engineio_proto::client::ConfigError>(())
    /// ```
    pub fn new(url: &str) -> Result<ClientConfig, ConfigError> {
        let invalid = |reason: &str| ConfigError::InvalidUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let uri: Uri = url
            .parse()
            .map_err(|e: http::uri::InvalidUri| ConfigError::InvalidUrl {
                url: url.to_owned(),
                reason: e.to_string(),
            })?;
        let scheme = uri
            .scheme_str()
            .ok_or_else(|| invalid("no scheme (expected http://, https://, ws:// or wss://)"))?;
        let secure = match scheme.to_ascii_lowercase().as_str() {
            "http" | "ws" => false,
            "https" | "wss" => true,
            other => return Err(ConfigError::UnsupportedScheme(other.to_owned())),
        };
        let authority = uri.authority().cloned().ok_or_else(|| invalid("no host"))?;
        if authority.as_str().contains('@') {
            return Err(invalid(
                "user information in the URL is not sent; use an Authorization header",
            ));
        }
        if authority.host().is_empty() {
            return Err(invalid("no host"));
        }
        let path = match uri.path() {
            "" | "/" => "/engine.io/".to_owned(),
            p if p.ends_with('/') => p.to_owned(),
            p => format!("{p}/"),
        };
        let mut query = Vec::new();
        for pair in uri.query().unwrap_or("").split('&') {
            if pair.is_empty() {
                continue;
            }
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let (Some(k), Some(v)) = (percent_decode(k), percent_decode(v)) else {
                return Err(invalid("the query holds an invalid percent-encoding"));
            };
            query.push((k, v));
        }
        let config = ClientConfig {
            secure,
            authority,
            path,
            query,
            headers: HeaderMap::new(),
            transports: vec![Transport::Polling, Transport::WebSocket],
            upgrade: true,
            request_timeout: Duration::from_secs(20),
            upgrade_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(5),
            timestamp_requests: true,
            timestamp_param: "t".to_owned(),
            max_queued_messages: 1024,
            max_queued_bytes: 16 << 20,
            max_payload: 16 << 20,
            max_handshake_size: 64 << 10,
            max_ws_message_size: 16 << 20,
            max_ws_frame_size: 16 << 20,
            websocket_deflate: None,
            reconnect: None,
            offline: OfflinePolicy::default(),
            protocol_version: ProtocolVersion::V4,
            proxy: Proxy::None,
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks every option; [`Client::new`](super::Client::new) calls it.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.path.starts_with('/')
            || !self
                .path
                .bytes()
                .all(|b| b.is_ascii_graphic() && !matches!(b, b'?' | b'#'))
            || format!("http://h{}", self.path).parse::<Uri>().is_err()
        {
            return Err(ConfigError::InvalidPath(self.path.clone()));
        }
        let mut seen = Vec::new();
        for t in &self.transports {
            if seen.contains(t) {
                return Err(ConfigError::InvalidTransports);
            }
            seen.push(*t);
        }
        if seen.is_empty() {
            return Err(ConfigError::InvalidTransports);
        }
        let param_ok = !self.timestamp_param.is_empty()
            && self
                .timestamp_param
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !param_ok || RESERVED.contains(&self.timestamp_param.as_str()) {
            return Err(ConfigError::InvalidTimestampParam(
                self.timestamp_param.clone(),
            ));
        }
        for (name, _) in &self.query {
            if RESERVED.contains(&name.as_str())
                || (self.timestamp_requests && *name == self.timestamp_param)
            {
                return Err(ConfigError::ReservedQueryParam(name.clone()));
            }
        }
        for (name, d) in [
            ("request_timeout", self.request_timeout),
            ("write_timeout", self.write_timeout),
            ("upgrade_timeout", self.upgrade_timeout),
        ] {
            if d.is_zero() {
                return Err(ConfigError::ZeroDuration(name));
            }
        }
        for (name, limit) in [
            ("max_queued_messages", self.max_queued_messages),
            ("max_queued_bytes", self.max_queued_bytes),
            ("max_payload", self.max_payload),
            ("max_handshake_size", self.max_handshake_size),
            ("max_ws_message_size", self.max_ws_message_size),
            ("max_ws_frame_size", self.max_ws_frame_size),
        ] {
            if limit == 0 {
                return Err(ConfigError::ZeroLimit(name));
            }
        }
        if let Some(d) = &self.websocket_deflate {
            d.validate().map_err(ConfigError::InvalidDeflate)?;
        }
        if let Some(r) = &self.reconnect
            && !(0.0..=1.0).contains(&r.randomization_factor)
        {
            return Err(ConfigError::InvalidRandomizationFactor(
                r.randomization_factor.to_string(),
            ));
        }
        Ok(())
    }

    /// The transport a new session opens with.
    pub(crate) fn first_transport(&self) -> Transport {
        self.transports
            .first()
            .copied()
            .unwrap_or(Transport::Polling)
    }

    /// Whether a session opened by polling may upgrade to WebSocket (the server must offer
    /// it too).
    pub(crate) fn wants_upgrade(&self) -> bool {
        self.upgrade
            && self.first_transport() == Transport::Polling
            && self.transports.contains(&Transport::WebSocket)
    }

    /// The absolute URI of a request: `http(s)://` for polling, `ws(s)://` for WebSocket.
    pub(crate) fn uri(
        &self,
        transport: Transport,
        sid: Option<&Sid>,
        timestamp: Option<&str>,
    ) -> Result<Uri, http::Error> {
        let scheme = match (transport, self.secure) {
            (Transport::Polling, false) => Scheme::HTTP,
            (Transport::Polling, true) => Scheme::HTTPS,
            (Transport::WebSocket, false) => "ws".parse()?,
            (Transport::WebSocket, true) => "wss".parse()?,
        };
        let mut q = String::with_capacity(64);
        q.push_str("EIO=");
        q.push_str(self.protocol_version.as_str());
        q.push_str("&transport=");
        q.push_str(transport.as_str());
        if let Some(sid) = sid {
            q.push_str("&sid=");
            percent_encode_into(&mut q, sid.as_str());
        }
        if let Some(t) = timestamp {
            q.push('&');
            q.push_str(&self.timestamp_param);
            q.push('=');
            percent_encode_into(&mut q, t);
        }
        for (k, v) in &self.query {
            q.push('&');
            percent_encode_into(&mut q, k);
            q.push('=');
            percent_encode_into(&mut q, v);
        }
        let path_and_query = format!("{}?{q}", self.path);
        Uri::builder()
            .scheme(scheme)
            .authority(self.authority.clone())
            .path_and_query(path_and_query)
            .build()
    }
}

/// Appends `s` percent-encoded: everything but RFC 3986's unreserved characters.
fn percent_encode_into(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(
                HEX.get(usize::from(b >> 4)).copied().unwrap_or(b'0'),
            ));
            out.push(char::from(
                HEX.get(usize::from(b & 15)).copied().unwrap_or(b'0'),
            ));
        }
    }
}

/// Decodes `%XX` escapes and `+` (a space, as servers read it). `None` when an escape is
/// malformed or the result is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let hex = |at: usize| bytes.get(at).and_then(|c| char::from(*c).to_digit(16));
                let (hi, lo) = (hex(i + 1)?, hex(i + 2)?);
                out.push(u8::try_from(hi * 16 + lo).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_and_defaults() {
        let c = ClientConfig::new("http://localhost:3000").unwrap();
        assert!(!c.secure);
        assert_eq!(c.authority.as_str(), "localhost:3000");
        assert_eq!(c.path, "/engine.io/");
        assert!(c.query.is_empty());
        assert_eq!(c.transports, [Transport::Polling, Transport::WebSocket]);
        assert!(c.upgrade && c.timestamp_requests);
        assert_eq!(c.request_timeout, Duration::from_secs(20));
        assert_eq!(c.upgrade_timeout, Duration::from_secs(10));
        assert_eq!(c.timestamp_param, "t");
        assert_eq!(c.reconnect, None);
        assert_eq!(c.offline, OfflinePolicy::Queue { max: 1024 });
        assert_eq!(c.max_queued_messages, 1024);
        assert_eq!(c.max_queued_bytes, 16 * 1024 * 1024);
        assert_eq!(c.max_payload, 16 * 1024 * 1024);
        assert_eq!(c.max_handshake_size, 64 * 1024);
        assert_eq!(c.max_ws_message_size, 16 * 1024 * 1024);
        assert_eq!(c.max_ws_frame_size, 16 * 1024 * 1024);
        assert!(ClientConfig::new("HTTPS://a.b").unwrap().secure);
        assert!(ClientConfig::new("wss://a.b").unwrap().secure);
        assert!(!ClientConfig::new("ws://a.b/").unwrap().secure);
        let r = ReconnectConfig::default();
        assert_eq!(r.initial_delay, Duration::from_secs(1));
        assert_eq!(r.max_delay, Duration::from_secs(5));
        assert_eq!(r.randomization_factor, 0.5);
        assert_eq!(r.max_attempts, None);
    }

    #[test]
    fn bad_urls_are_refused_with_reasons() {
        assert!(matches!(
            ClientConfig::new("ftp://a.b"),
            Err(ConfigError::UnsupportedScheme(s)) if s == "ftp"
        ));
        for url in [
            "",
            "localhost:3000/x",
            "/engine.io/",
            "http://",
            "http://u:p@h/",
        ] {
            let err = ClientConfig::new(url).unwrap_err();
            assert!(
                matches!(
                    err,
                    ConfigError::InvalidUrl { .. } | ConfigError::UnsupportedScheme(_)
                ),
                "{url}: {err:?}"
            );
        }
        assert!(matches!(
            ClientConfig::new("http://h/?sid=abc"),
            Err(ConfigError::ReservedQueryParam(p)) if p == "sid"
        ));
        assert!(matches!(
            ClientConfig::new("http://h/?t=1"),
            Err(ConfigError::ReservedQueryParam(p)) if p == "t"
        ));
        assert!(ClientConfig::new("http://h/?a=%zz").is_err());
    }

    #[test]
    fn url_path_and_query_are_taken() {
        let c = ClientConfig::new("http://h/socket.io?token=a%20b+c&flag&x=%E2%82%AC").unwrap();
        assert_eq!(c.path, "/socket.io/");
        assert_eq!(
            c.query,
            [
                ("token".to_owned(), "a b c".to_owned()),
                ("flag".to_owned(), String::new()),
                ("x".to_owned(), "€".to_owned()),
            ]
        );
        let uri = c.uri(Transport::Polling, None, None).unwrap().to_string();
        assert_eq!(
            uri,
            "http://h/socket.io/?EIO=4&transport=polling&token=a%20b%20c&flag=&x=%E2%82%AC"
        );
    }

    #[test]
    fn request_uris() {
        let mut c = ClientConfig::new("https://example.com").unwrap();
        let sid = Sid::new("a+b/c=").unwrap();
        assert_eq!(
            c.uri(Transport::Polling, Some(&sid), Some("XyZ"))
                .unwrap()
                .to_string(),
            "https://example.com/engine.io/?EIO=4&transport=polling&sid=a%2Bb%2Fc%3D&t=XyZ"
        );
        assert_eq!(
            c.uri(Transport::WebSocket, Some(&sid), None)
                .unwrap()
                .to_string(),
            "wss://example.com/engine.io/?EIO=4&transport=websocket&sid=a%2Bb%2Fc%3D"
        );
        c.secure = false;
        c.timestamp_param = "ts".into();
        c.query.push(("k".into(), "&=?".into()));
        assert_eq!(
            c.uri(Transport::WebSocket, None, Some("1"))
                .unwrap()
                .to_string(),
            "ws://example.com/engine.io/?EIO=4&transport=websocket&ts=1&k=%26%3D%3F"
        );
    }

    #[test]
    fn validation() {
        let ok = ClientConfig::new("http://h").unwrap();
        let check = |f: &dyn Fn(&mut ClientConfig)| {
            let mut c = ok.clone();
            f(&mut c);
            c.validate()
        };
        assert_eq!(check(&|_| {}), Ok(()));
        assert!(matches!(
            check(&|c| c.path = "engine.io".into()),
            Err(ConfigError::InvalidPath(_))
        ));
        assert!(matches!(
            check(&|c| c.path = "/a b/".into()),
            Err(ConfigError::InvalidPath(_))
        ));
        assert!(matches!(
            check(&|c| c.path = "/a?b".into()),
            Err(ConfigError::InvalidPath(_))
        ));
        assert_eq!(
            check(&|c| c.transports.clear()),
            Err(ConfigError::InvalidTransports)
        );
        assert_eq!(
            check(&|c| c.transports = vec![Transport::WebSocket, Transport::WebSocket]),
            Err(ConfigError::InvalidTransports)
        );
        assert!(matches!(
            check(&|c| c.timestamp_param = "a b".into()),
            Err(ConfigError::InvalidTimestampParam(_))
        ));
        assert!(matches!(
            check(&|c| c.timestamp_param = "sid".into()),
            Err(ConfigError::InvalidTimestampParam(_))
        ));
        assert_eq!(
            check(&|c| c.request_timeout = Duration::ZERO),
            Err(ConfigError::ZeroDuration("request_timeout"))
        );
        assert_eq!(
            check(&|c| c.max_queued_messages = 0),
            Err(ConfigError::ZeroLimit("max_queued_messages"))
        );
        assert_eq!(
            check(&|c| c.max_queued_bytes = 0),
            Err(ConfigError::ZeroLimit("max_queued_bytes"))
        );
        assert_eq!(
            check(&|c| c.max_ws_frame_size = 0),
            Err(ConfigError::ZeroLimit("max_ws_frame_size"))
        );
        assert!(matches!(
            check(&|c| {
                c.reconnect = Some(ReconnectConfig {
                    randomization_factor: 1.5,
                    ..ReconnectConfig::default()
                })
            }),
            Err(ConfigError::InvalidRandomizationFactor(_))
        ));
        // The timestamp name is free when timestamps are off.
        assert_eq!(
            check(&|c| {
                c.timestamp_requests = false;
                c.query.push(("t".into(), "1".into()));
            }),
            Ok(())
        );
    }

    #[test]
    fn upgrade_wishes() {
        let mut c = ClientConfig::new("http://h").unwrap();
        assert!(c.wants_upgrade());
        c.upgrade = false;
        assert!(!c.wants_upgrade());
        c.upgrade = true;
        c.transports = vec![Transport::WebSocket, Transport::Polling];
        assert!(!c.wants_upgrade());
        assert_eq!(c.first_transport(), Transport::WebSocket);
        c.transports = vec![Transport::Polling];
        assert!(!c.wants_upgrade());
    }
}
