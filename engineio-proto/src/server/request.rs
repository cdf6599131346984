//! Reading a request: query parameters, WebSocket upgrade detection, origin policy.

use std::borrow::Cow;
use std::net::SocketAddr;

use http::{HeaderMap, HeaderValue, Method, Uri, header};

use super::config::{AllowedOrigins, CorsConfig};

/// A borrowed view of an HTTP request's head, as the binding received it.
///
/// hyper's `http::request::Parts` converts with [`RequestInfo::from_parts`]; nothing is
/// copied.
#[derive(Debug, Clone, Copy)]
pub struct RequestInfo<'a> {
    /// The method.
    pub method: &'a Method,
    /// The request target (path and query).
    pub uri: &'a Uri,
    /// The headers.
    pub headers: &'a HeaderMap,
    /// The peer's address, when the binding knows it.
    pub peer_addr: Option<SocketAddr>,
    /// Whether the connection is secure (TLS), which makes the request's own origin
    /// `https://...` for the same-origin check.
    pub secure: bool,
    /// Whether the connection can be upgraded to a WebSocket (HTTP/1.1 with upgrade
    /// support). Default true; a binding that cannot upgrade this connection says so,
    /// and WebSocket requests are then refused before any session is made.
    pub upgradable: bool,
}

impl<'a> RequestInfo<'a> {
    /// A view of a request head with no peer address, not secure.
    pub fn new(method: &'a Method, uri: &'a Uri, headers: &'a HeaderMap) -> Self {
        RequestInfo {
            method,
            uri,
            headers,
            peer_addr: None,
            secure: false,
            upgradable: true,
        }
    }

    /// A view of hyper's request head.
    pub fn from_parts(parts: &'a http::request::Parts) -> Self {
        RequestInfo::new(&parts.method, &parts.uri, &parts.headers)
    }

    /// Sets the peer address.
    pub fn with_peer_addr(mut self, addr: SocketAddr) -> Self {
        self.peer_addr = Some(addr);
        self
    }

    /// Marks the connection as secure (TLS).
    pub fn with_secure(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// Says whether the connection can be upgraded to a WebSocket.
    pub fn with_upgradable(mut self, upgradable: bool) -> Self {
        self.upgradable = upgradable;
        self
    }

    /// Why a WebSocket upgrade request cannot be completed, if it cannot: the WebSocket
    /// handshake headers (RFC 6455, 4.2.1) and the connection's upgrade support.
    pub(crate) fn websocket_refusal(&self) -> Option<super::RequestError> {
        use super::RequestError::{BadWebSocketHandshake, CannotUpgrade};
        let version = self.headers.get(header::SEC_WEBSOCKET_VERSION);
        if version.is_none_or(|v| v.as_bytes().trim_ascii() != b"13") {
            return Some(BadWebSocketHandshake(
                "Sec-WebSocket-Version must be 13 (the only version RFC 6455 defines)",
            ));
        }
        let key = self.headers.get(header::SEC_WEBSOCKET_KEY);
        if key.is_none_or(|k| k.as_bytes().trim_ascii().is_empty()) {
            return Some(BadWebSocketHandshake(
                "the Sec-WebSocket-Key header is missing",
            ));
        }
        if !self.upgradable {
            return Some(CannotUpgrade);
        }
        None
    }

    /// The value of a query parameter, percent-decoded (`+` is a space, as in HTML forms
    /// and in both peers). The first occurrence wins.
    pub fn query(&self, name: &str) -> Option<Cow<'a, str>> {
        query_param(self.uri.query().unwrap_or(""), name)
    }

    /// Whether this is a WebSocket upgrade request (`GET` with `Upgrade: websocket`).
    pub fn is_websocket_upgrade(&self) -> bool {
        *self.method == Method::GET
            && self
                .headers
                .get_all(header::UPGRADE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .any(|p| p.trim().eq_ignore_ascii_case("websocket"))
    }

    /// The `Origin` header, if present and readable.
    pub fn origin(&self) -> Option<&'a str> {
        self.headers
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok())
    }
}

/// The query parameters the protocol reads, found in one pass over the query string
/// (keys compared without decoding unless they hold escapes).
#[derive(Debug, Default)]
pub(crate) struct ProtocolQuery<'q> {
    pub(crate) eio: Option<Cow<'q, str>>,
    pub(crate) transport: Option<Cow<'q, str>>,
    pub(crate) sid: Option<Cow<'q, str>>,
    pub(crate) jsonp: bool,
    pub(crate) b64: bool,
}

impl<'q> ProtocolQuery<'q> {
    pub(crate) fn parse(query: &'q str) -> Self {
        let mut q = ProtocolQuery::default();
        // Byte-level splitting: `&` and `=` are ASCII, so every split point is a char
        // boundary, and short queries do not pay for a general string searcher.
        let mut rest = query;
        while !rest.is_empty() {
            let (pair, tail) = match rest.bytes().position(|b| b == b'&') {
                Some(i) => (rest.get(..i).unwrap_or(""), rest.get(i + 1..).unwrap_or("")),
                None => (rest, ""),
            };
            rest = tail;
            let (raw_key, raw_value) = match pair.bytes().position(|b| b == b'=') {
                Some(i) => (pair.get(..i).unwrap_or(""), pair.get(i + 1..).unwrap_or("")),
                None => (pair, ""),
            };
            let key = if raw_key.bytes().any(|b| b == b'%' || b == b'+') {
                match percent_decode(raw_key) {
                    Some(k) => k,
                    None => continue,
                }
            } else {
                Cow::Borrowed(raw_key)
            };
            // The first occurrence wins, as in `query_param`.
            let slot = match key.as_ref() {
                "EIO" => &mut q.eio,
                "transport" => &mut q.transport,
                "sid" => &mut q.sid,
                "j" => {
                    q.jsonp = true;
                    continue;
                }
                "b64" => {
                    if !q.b64 {
                        q.b64 = matches!(percent_decode(raw_value).as_deref(), Some("1" | "true"));
                    }
                    continue;
                }
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(percent_decode(raw_value).unwrap_or(Cow::Borrowed("")));
            }
        }
        q
    }
}

/// Finds and percent-decodes a query parameter.
pub(crate) fn query_param<'q>(query: &'q str, name: &str) -> Option<Cow<'q, str>> {
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if percent_decode(k).as_deref() == Some(name) {
            return percent_decode(v);
        }
    }
    None
}

/// Decodes `%XX` escapes and `+` (query strings). Returns `None` when the result is not
/// UTF-8 or an escape is malformed.
pub(crate) fn percent_decode(s: &str) -> Option<Cow<'_, str>> {
    decode(s, true)
}

/// Decodes `%XX` escapes of a URL path (`+` stays `+`).
pub(crate) fn percent_decode_path(s: &str) -> Option<Cow<'_, str>> {
    decode(s, false)
}

fn decode(s: &str, plus_is_space: bool) -> Option<Cow<'_, str>> {
    if !s.bytes().any(|b| b == b'%' || (plus_is_space && b == b'+')) {
        return Some(Cow::Borrowed(s));
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let hi = bytes.get(i + 1).and_then(|c| (*c as char).to_digit(16))?;
                let lo = bytes.get(i + 2).and_then(|c| (*c as char).to_digit(16))?;
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

/// The CORS outcome of one request: the origin to echo in `Access-Control-Allow-Origin`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Cors {
    allow_origin: Option<HeaderValue>,
    credentials: bool,
}

impl Cors {
    /// Adds the CORS headers (if any) to a response's headers.
    pub(crate) fn apply(&self, headers: &mut HeaderMap) {
        if let Some(origin) = &self.allow_origin {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            if self.credentials {
                headers.insert(
                    header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                    HeaderValue::from_static("true"),
                );
            }
            headers.append(header::VARY, HeaderValue::from_static("Origin"));
        }
    }
}

/// The origin was refused by the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OriginRefused(pub(crate) String);

/// Applies the origin policy to a request.
pub(crate) fn check_origin(
    cors: &CorsConfig,
    trust_forwarded: bool,
    req: &RequestInfo<'_>,
) -> Result<Cors, OriginRefused> {
    if matches!(cors.origins, AllowedOrigins::Disabled) {
        return Ok(Cors::default());
    }
    let Some(value) = req.headers.get(header::ORIGIN) else {
        // Not a browser cross-origin request: nothing to check, nothing to echo.
        return Ok(Cors::default());
    };
    let origin = value.to_str().unwrap_or("");
    let allowed = !origin.is_empty()
        && match &cors.origins {
            AllowedOrigins::SameOrigin => same_origin(origin, trust_forwarded, req),
            AllowedOrigins::Any => true,
            AllowedOrigins::List(list) => list.iter().any(|o| o.eq_ignore_ascii_case(origin)),
            AllowedOrigins::Predicate(f) => f(origin, req),
            AllowedOrigins::Disabled => true,
        };
    if !allowed {
        return Err(OriginRefused(
            String::from_utf8_lossy(value.as_bytes()).into_owned(),
        ));
    }
    Ok(Cors {
        allow_origin: Some(value.clone()),
        credentials: cors.credentials,
    })
}

fn same_origin(origin: &str, trust_forwarded: bool, req: &RequestInfo<'_>) -> bool {
    let header_str = |name: &str| {
        req.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            // A proxy chain appends: the first value is the client-facing one.
            .map(|v| v.split(',').next().unwrap_or("").trim())
            .filter(|v| !v.is_empty())
    };
    let forwarded = |name| {
        if trust_forwarded {
            header_str(name)
        } else {
            None
        }
    };
    let scheme =
        forwarded("x-forwarded-proto").unwrap_or(if req.secure { "https" } else { "http" });
    let Some(host) = forwarded("x-forwarded-host")
        .or_else(|| header_str("host"))
        .or_else(|| req.uri.authority().map(|a| a.as_str()))
    else {
        return false;
    };
    let Some((o_scheme, o_host)) = origin.split_once("://") else {
        return false;
    };
    o_scheme.eq_ignore_ascii_case(scheme)
        && strip_default_port(o_host, o_scheme)
            .eq_ignore_ascii_case(strip_default_port(host, scheme))
}

fn strip_default_port<'s>(host: &'s str, scheme: &str) -> &'s str {
    let default = if scheme.eq_ignore_ascii_case("https") {
        ":443"
    } else {
        ":80"
    };
    host.strip_suffix(default).unwrap_or(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info<'a>(uri: &'a Uri, headers: &'a HeaderMap) -> RequestInfo<'a> {
        RequestInfo::new(&Method::GET, uri, headers)
    }

    #[test]
    fn query_parameters_are_decoded() {
        let q = "EIO=4&transport=polling&sid=a%2Bb%2F&t=x+y&empty=&flag&%65nc=1";
        assert_eq!(query_param(q, "EIO").as_deref(), Some("4"));
        assert_eq!(query_param(q, "sid").as_deref(), Some("a+b/"));
        assert_eq!(query_param(q, "t").as_deref(), Some("x y"));
        assert_eq!(query_param(q, "empty").as_deref(), Some(""));
        assert_eq!(query_param(q, "flag").as_deref(), Some(""));
        assert_eq!(query_param(q, "enc").as_deref(), Some("1"));
        assert_eq!(query_param(q, "missing"), None);
        assert_eq!(query_param("a=%zz", "a"), None);
        assert_eq!(query_param("a=%f0%9f%98%80", "a").as_deref(), Some("😀"));
        assert_eq!(query_param("a=%ff", "a"), None);
        assert_eq!(query_param("a=%4", "a"), None);
        assert_eq!(query_param("a=1&a=2", "a").as_deref(), Some("1"));
    }

    #[test]
    fn protocol_query_in_one_pass() {
        let q = ProtocolQuery::parse("EIO=4&transport=polling&t=x&sid=a%2Bb&b64=1&j=0");
        assert_eq!(q.eio.as_deref(), Some("4"));
        assert_eq!(q.transport.as_deref(), Some("polling"));
        assert_eq!(q.sid.as_deref(), Some("a+b"));
        assert!(q.b64 && q.jsonp);
        let q = ProtocolQuery::parse("%45IO=4&transport=a&transport=b&b64=0");
        assert_eq!(q.eio.as_deref(), Some("4"));
        assert_eq!(q.transport.as_deref(), Some("a"));
        assert!(!q.b64 && !q.jsonp && q.sid.is_none());
        let q = ProtocolQuery::parse("");
        assert!(q.eio.is_none() && q.transport.is_none());
    }

    #[test]
    fn websocket_upgrade_detection() {
        let uri: Uri = "/engine.io/?EIO=4".parse().unwrap();
        let mut h = HeaderMap::new();
        assert!(!info(&uri, &h).is_websocket_upgrade());
        h.insert(header::UPGRADE, HeaderValue::from_static("WebSocket"));
        assert!(info(&uri, &h).is_websocket_upgrade());
        h.insert(header::UPGRADE, HeaderValue::from_static("h2c, websocket"));
        assert!(info(&uri, &h).is_websocket_upgrade());
        assert!(!RequestInfo::new(&Method::POST, &uri, &h).is_websocket_upgrade());
    }

    fn check(
        cfg: &CorsConfig,
        trust: bool,
        headers: &[(&str, &str)],
        secure: bool,
    ) -> Result<Cors, OriginRefused> {
        let uri: Uri = "/engine.io/?EIO=4".parse().unwrap();
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        check_origin(cfg, trust, &info(&uri, &h).with_secure(secure))
    }

    #[test]
    fn same_origin_policy() {
        let cfg = CorsConfig::default();
        // No Origin: accepted, no CORS headers.
        assert_eq!(
            check(&cfg, false, &[("host", "a.com")], false),
            Ok(Cors::default())
        );
        let ok = check(
            &cfg,
            false,
            &[("host", "a.com:8080"), ("origin", "http://a.com:8080")],
            false,
        )
        .unwrap();
        let mut h = HeaderMap::new();
        ok.apply(&mut h);
        assert_eq!(h["access-control-allow-origin"], "http://a.com:8080");
        assert_eq!(h["access-control-allow-credentials"], "true");
        assert!(
            check(
                &cfg,
                false,
                &[("host", "a.com"), ("origin", "https://a.com")],
                false
            )
            .is_err()
        );
        assert!(
            check(
                &cfg,
                false,
                &[("host", "a.com"), ("origin", "https://a.com")],
                true
            )
            .is_ok()
        );
        assert!(
            check(
                &cfg,
                false,
                &[("host", "a.com"), ("origin", "http://evil.com")],
                false
            )
            .is_err()
        );
        assert!(check(&cfg, false, &[("host", "a.com"), ("origin", "null")], false).is_err());
        // Default ports are equivalent.
        assert!(
            check(
                &cfg,
                false,
                &[("host", "a.com"), ("origin", "http://a.com:80")],
                false
            )
            .is_ok()
        );
        // Forwarded headers only when trusted.
        let fwd = [
            ("host", "internal:3000"),
            ("x-forwarded-host", "a.com"),
            ("x-forwarded-proto", "https"),
            ("origin", "https://a.com"),
        ];
        assert!(check(&cfg, false, &fwd, false).is_err());
        assert!(check(&cfg, true, &fwd, false).is_ok());
    }

    #[test]
    fn other_policies() {
        let mut cfg = CorsConfig {
            origins: AllowedOrigins::list(["https://A.com"]),
            ..CorsConfig::default()
        };
        assert!(check(&cfg, false, &[("origin", "https://a.com")], false).is_ok());
        assert!(check(&cfg, false, &[("origin", "https://b.com")], false).is_err());
        cfg.origins = AllowedOrigins::Any;
        cfg.credentials = false;
        let any = check(&cfg, false, &[("origin", "https://b.com")], false).unwrap();
        let mut h = HeaderMap::new();
        any.apply(&mut h);
        assert_eq!(h["access-control-allow-origin"], "https://b.com");
        assert!(h.get("access-control-allow-credentials").is_none());
        cfg.origins = AllowedOrigins::predicate(|o, _| o.ends_with(".example.com"));
        assert!(check(&cfg, false, &[("origin", "https://x.example.com")], false).is_ok());
        assert!(check(&cfg, false, &[("origin", "https://example.org")], false).is_err());
        cfg.origins = AllowedOrigins::Disabled;
        assert_eq!(
            check(&cfg, false, &[("origin", "https://evil")], false),
            Ok(Cors::default())
        );
    }
}
