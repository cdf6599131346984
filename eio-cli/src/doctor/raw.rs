//! The doctor's lower-level access: single HTTP requests and WebSockets, with every
//! status, header and byte visible (our `Client` hides them, as it should).
//!
//! Requests go over hyper's HTTP/1 client on the binding's connections (TCP, or TLS for
//! https), WebSockets through the binding; nothing here parses HTTP or
//! frames WebSocket by hand.

use engineio_tokio::engineio_hyper::ws::Frame;
use engineio_tokio::proto::client::WsConnectError;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use engineio_hyper::Runtime;
use engineio_proto::{Handshake, Packet, PayloadLimits};
use engineio_tokio::Tokio;
use futures_util::{SinkExt, StreamExt};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};

use crate::endpoint::Endpoint;
use crate::output::human_duration;

/// The largest answer read.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// An HTTP answer.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    /// The status.
    pub(crate) status: StatusCode,
    /// The headers.
    pub(crate) headers: HeaderMap,
    /// The body.
    pub(crate) body: Bytes,
    /// From sending the request to the end of the body.
    pub(crate) took: Duration,
}

impl Answer {
    /// A header's value as text (empty when absent or not text).
    pub(crate) fn header(&self, name: impl http::header::AsHeaderName) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The body as text, shortened for a report line.
    pub(crate) fn body_snippet(&self) -> String {
        snippet(&String::from_utf8_lossy(&self.body), 160)
    }

    /// The Engine.IO error code of a JSON error body (`{"code":1,"message":...}`).
    pub(crate) fn error_code(&self) -> Option<i64> {
        let v: serde_json::Value = serde_json::from_slice(&self.body).ok()?;
        v.get("code")?.as_i64()
    }

    /// Whether this answer says the session is unknown here: engine.io's and ours
    /// `400 {"code":1,"message":"Session ID unknown"}`, python-engineio's
    /// `400 "Invalid session ..."`.
    pub(crate) fn is_unknown_sid(&self) -> bool {
        if self.status != StatusCode::BAD_REQUEST {
            return false;
        }
        let text = String::from_utf8_lossy(&self.body);
        self.error_code() == Some(1)
            || text.contains("Session ID unknown")
            || text.contains("Invalid session")
    }

    /// The packets of a polling body (empty when it does not decode).
    pub(crate) fn packets(&self) -> Vec<Packet> {
        match engineio_proto::decode_payload(self.body.clone(), PayloadLimits::default()) {
            Ok(p) => p.filter_map(Result::ok).collect(),
            Err(_) => Vec::new(),
        }
    }

    /// The `name=value` part of each `Set-Cookie`.
    pub(crate) fn cookies(&self) -> Vec<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .map(|c| c.trim().to_owned())
            .filter(|c| c.contains('='))
            .collect()
    }

    /// A short description for a report: `HTTP 400 Bad Request: {"code":3,...}`; an
    /// unknown session is `HTTP 400 Bad Request "Session ID unknown"` whatever the server's
    /// wording, and an HTML error page is given by its title.
    pub(crate) fn describe(&self) -> String {
        if self.is_unknown_sid() {
            return format!("HTTP {} \"Session ID unknown\"", self.status);
        }
        if self.header(header::CONTENT_TYPE).contains("text/html") {
            let text = String::from_utf8_lossy(&self.body);
            let title = text
                .split_once("<title>")
                .and_then(|(_, rest)| rest.split_once("</title>"))
                .map(|(t, _)| snippet(t, 80));
            return match title {
                Some(t) if !t.is_empty() => format!("HTTP {} (an HTML page: {t})", self.status),
                _ => format!("HTTP {} (an HTML page)", self.status),
            };
        }
        let body = self.body_snippet();
        if body.is_empty() {
            format!("HTTP {}", self.status)
        } else {
            format!("HTTP {}: {body}", self.status)
        }
    }
}

/// `s` cut to `max` characters, one line.
pub(crate) fn snippet(s: &str, max: usize) -> String {
    let one_line: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let one_line = one_line.trim();
    if one_line.chars().count() <= max {
        one_line.to_owned()
    } else {
        let head: String = one_line.chars().take(max).collect();
        format!("{head}…")
    }
}

/// A keep-alive HTTP connection to the server.
pub(crate) struct Conn {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

/// Builds and sends the doctor's requests.
#[derive(Debug)]
pub(crate) struct Raw {
    /// The server.
    pub(crate) endpoint: Endpoint,
    /// How long one request (or connect) may take, unless told otherwise.
    pub(crate) timeout: Duration,
    counter: AtomicU64,
}

impl Raw {
    /// Requests to `endpoint`, each bounded by `timeout`.
    pub(crate) fn new(endpoint: Endpoint, timeout: Duration) -> Raw {
        Raw {
            endpoint,
            timeout,
            counter: AtomicU64::new(0),
        }
    }

    /// A fresh cache-busting value.
    fn t(&self) -> u64 {
        self.counter.fetch_add(1, Ordering::Relaxed)
    }

    /// The request target of a polling request (the handshake when `sid` is `None`).
    pub(crate) fn polling_target(&self, sid: Option<&str>) -> String {
        self.endpoint.target(false, sid, self.t())
    }

    /// Opens a connection.
    pub(crate) async fn connect(&self) -> Result<Conn, String> {
        let e = &self.endpoint;
        let connect = Tokio.connect_http(e.host().to_owned(), e.port(), e.config.secure, &e.tls);
        let io = tokio::time::timeout(self.timeout, connect)
            .await
            .map_err(|_| {
                format!(
                    "cannot connect to {}: no answer within {}",
                    e.authority(),
                    human_duration(self.timeout)
                )
            })?
            .map_err(|err| format!("cannot connect to {}: {err}", e.authority()))?;
        let (sender, connection) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|err| format!("HTTP handshake with {} failed: {err}", e.authority()))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Conn { sender })
    }

    /// Sends one request on `conn` (a new connection when `None`) and reads the whole
    /// answer within `timeout` (the default one when `None`). `headers` come after the
    /// endpoint's own (`-H`).
    pub(crate) async fn request(
        &self,
        conn: Option<&mut Conn>,
        method: Method,
        target: &str,
        headers: &[(HeaderName, HeaderValue)],
        body: &[u8],
        timeout: Option<Duration>,
    ) -> Result<Answer, String> {
        let timeout = timeout.unwrap_or(self.timeout);
        let started = Instant::now();
        let work = async {
            let mut fresh;
            let conn = match conn {
                Some(c) => c,
                None => {
                    fresh = self.connect().await?;
                    &mut fresh
                }
            };
            // A kept-alive connection the server closed while idle (Node closes them after
            // 5 s) is replaced, as a browser would; nothing was sent on it.
            if std::future::poll_fn(|cx| conn.sender.poll_ready(cx))
                .await
                .is_err()
            {
                *conn = self.connect().await?;
                std::future::poll_fn(|cx| conn.sender.poll_ready(cx))
                    .await
                    .map_err(|e| format!("the connection closed: {e}"))?;
            }
            let mut builder = http::Request::builder().method(method.clone()).uri(target);
            if let Some(h) = builder.headers_mut() {
                h.extend(self.endpoint.config.headers.clone());
                if let Ok(v) = HeaderValue::from_str(self.endpoint.authority()) {
                    h.insert(header::HOST, v);
                }
                if method == Method::POST {
                    h.insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("text/plain;charset=UTF-8"),
                    );
                }
                for (name, value) in headers {
                    h.insert(name.clone(), value.clone());
                }
            }
            let request = builder
                .body(Full::new(Bytes::copy_from_slice(body)))
                .map_err(|e| format!("cannot build the request: {e}"))?;
            let response = conn
                .sender
                .send_request(request)
                .await
                .map_err(|e| describe_hyper_error(&e))?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_BODY)
                .collect()
                .await
                .map_err(|e| format!("reading the answer failed: {e}"))?
                .to_bytes();
            Ok::<_, String>(Answer {
                status: parts.status,
                headers: parts.headers,
                body,
                took: started.elapsed(),
            })
        };
        match tokio::time::timeout(timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(format!("no answer within {}", human_duration(timeout))),
        }
    }

    /// A GET of `target`.
    pub(crate) async fn get(
        &self,
        conn: Option<&mut Conn>,
        target: &str,
        headers: &[(HeaderName, HeaderValue)],
        timeout: Option<Duration>,
    ) -> Result<Answer, String> {
        self.request(conn, Method::GET, target, headers, b"", timeout)
            .await
    }

    /// A POST of `body` to session `sid`.
    pub(crate) async fn post(
        &self,
        conn: Option<&mut Conn>,
        sid: &str,
        headers: &[(HeaderName, HeaderValue)],
        body: &[u8],
    ) -> Result<Answer, String> {
        let target = self.polling_target(Some(sid));
        self.request(conn, Method::POST, &target, headers, body, None)
            .await
    }

    /// Opens a session by polling. The error is a sentence for the report.
    pub(crate) async fn open_polling(
        &self,
        conn: Option<&mut Conn>,
        headers: &[(HeaderName, HeaderValue)],
    ) -> Result<(Handshake, Answer), OpenError> {
        let target = self.polling_target(None);
        let answer = self
            .get(conn, &target, headers, None)
            .await
            .map_err(OpenError::Unreachable)?;
        match parse_open(&answer) {
            Ok(hs) => Ok((hs, answer)),
            Err(e) => Err(OpenError::Refused(e, Box::new(answer))),
        }
    }

    /// Closes a polling session (best effort, bounded).
    pub(crate) async fn close_polling(&self, sid: &str, headers: &[(HeaderName, HeaderValue)]) {
        let _ = self.post(None, sid, headers, b"1").await;
    }

    /// Opens a WebSocket (an upgrade of `sid` when given) with the endpoint's headers and
    /// `headers`.
    pub(crate) async fn websocket(
        &self,
        sid: Option<&str>,
        headers: &[(HeaderName, HeaderValue)],
    ) -> Result<Ws, WsError> {
        let uri = self.endpoint.ws_uri(sid, self.t());
        let mut request = http::Request::new(());
        *request.uri_mut() = uri
            .as_str()
            .parse()
            .map_err(|e| WsError::Io(format!("invalid WebSocket URI {uri}: {e}")))?;
        for (name, value) in self.endpoint.config.headers.iter() {
            request.headers_mut().append(name.clone(), value.clone());
        }
        for (name, value) in headers {
            request.headers_mut().insert(name.clone(), value.clone());
        }
        let config = engineio_tokio::engineio_hyper::ws::WsConfig::new(64 << 20);
        let connect = Tokio.connect_websocket(request, config, &self.endpoint.tls);
        match tokio::time::timeout(self.timeout, connect).await {
            Err(_) => Err(WsError::Io(format!(
                "no WebSocket handshake within {}",
                human_duration(self.timeout)
            ))),
            Ok(Ok(stream)) => Ok(Ws {
                stream,
                timeout: self.timeout,
            }),
            Ok(Err(WsConnectError::Rejected(response))) => {
                Err(WsError::Refused(Box::new(Answer {
                    status: response.status,
                    headers: response.headers,
                    body: response.body,
                    took: Duration::ZERO,
                })))
            }
            Ok(Err(WsConnectError::Transport(e))) => Err(WsError::Io(e.to_string())),
            Ok(Err(e)) => Err(WsError::Io(format!("{e:?}"))),
        }
    }
}

fn describe_hyper_error(e: &hyper::Error) -> String {
    if e.is_incomplete_message() {
        "the connection closed before an answer (something between closed it)".to_owned()
    } else {
        format!("the request failed: {e}")
    }
}

/// Why a session could not be opened.
#[derive(Debug)]
pub(crate) enum OpenError {
    /// No answer at all.
    Unreachable(String),
    /// An answer that is not an open packet: the reason and the answer.
    Refused(String, Box<Answer>),
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Unreachable(e) => f.write_str(e),
            OpenError::Refused(e, _) => f.write_str(e),
        }
    }
}

/// The handshake in a polling answer, or why it is not one.
pub(crate) fn parse_open(answer: &Answer) -> Result<Handshake, String> {
    if answer.status != StatusCode::OK {
        return Err(explain_refusal(answer));
    }
    let body = &answer.body[..];
    if let Some(json) = body.strip_prefix(b"0") {
        return Handshake::from_json(json).map_err(|e| {
            format!(
                "the open packet does not decode: {e} ({})",
                answer.body_snippet()
            )
        });
    }
    if looks_like_v3(body) {
        return Err(
            "the server answered in Engine.IO v3 framing (`<length>:0{...}`): it is an \
                    engine.io 3.x / Socket.IO 2.x server, and eio speaks v4 only"
                .to_owned(),
        );
    }
    if answer.header(header::CONTENT_TYPE).contains("text/html") {
        return Err(format!(
            "the path answers with a web page (text/html), not an open packet: something else \
             (a static site, an SPA fallback, a proxy's default page) serves {}",
            answer_path_hint()
        ));
    }
    Err(format!("not an open packet: {}", answer.body_snippet()))
}

fn answer_path_hint() -> &'static str {
    "this path; route it to the Engine.IO server (or give the right path: Socket.IO uses /socket.io/)"
}

/// `96:0{"sid":...` (v3's length-prefixed polling framing).
fn looks_like_v3(body: &[u8]) -> bool {
    let digits = body.iter().take_while(|b| b.is_ascii_digit()).count();
    digits > 0 && body.get(digits..digits + 3) == Some(b":0{")
}

/// What an error answer means, in a sentence with the likely cause.
pub(crate) fn explain_refusal(a: &Answer) -> String {
    let what = a.describe();
    let cause = match (a.status.as_u16(), a.error_code()) {
        (400, Some(0)) => "the server does not allow this transport (\"Transport unknown\")",
        (400, Some(1)) => {
            "the session is unknown to the server that answered (another server of a \
             non-sticky load balancer, or it closed)"
        }
        (400, Some(2)) => "the server refused the handshake method (\"Bad handshake method\")",
        (400, Some(5)) => {
            "the server does not speak Engine.IO v4 (\"Unsupported protocol version\")"
        }
        (400, _) if a.is_unknown_sid() => {
            "the session is unknown to the server that answered (another server of a \
             non-sticky load balancer, or it closed)"
        }
        (400, _) => "the server refused the request as malformed or from a refused origin",
        (401, _) => "authentication is required: pass credentials with -H or -q",
        (403, Some(4)) | (403, _) => {
            "the server (its connect hook, an authentication layer or the origin check) refused \
             the connection: pass credentials with -H or -q, or an accepted Origin"
        }
        (404, _) => {
            "nothing answers at this path: check the Engine.IO path (Socket.IO servers use \
             /socket.io/) and the proxy's location/route"
        }
        (405, _) => "the method is not allowed here: a proxy or framework route takes this path",
        (413, _) => "the request is over a size limit (the server's maxPayload or a proxy's)",
        (426, _) => "a proxy insists on an upgrade it cannot do",
        (429, _) => "rate limited by the server or a proxy",
        (502, _) => "a proxy could not reach the server behind it (is the backend up?)",
        (503, _) => "the server or a proxy is unavailable or overloaded",
        (504, _) => "a proxy gave up waiting for the server behind it",
        _ => "",
    };
    if cause.is_empty() {
        what
    } else {
        format!("{what} — {cause}")
    }
}

/// Why a WebSocket could not be opened.
#[derive(Debug)]
pub(crate) enum WsError {
    /// The server (or a proxy) answered with a status other than 101.
    Refused(Box<Answer>),
    /// No connection, TLS failure, handshake timeout...
    Io(String),
}

impl WsError {
    /// A sentence for the report, with the likely cause.
    pub(crate) fn explain(&self) -> String {
        match self {
            WsError::Io(e) => format!("cannot open a WebSocket: {e}"),
            WsError::Refused(a) => {
                let status = a.status.as_u16();
                if a.is_unknown_sid() {
                    return format!(
                        "the WebSocket was refused: {} — it reached a server that does not \
                         know the session (a non-sticky load balancer)",
                        a.describe()
                    );
                }
                if matches!(status, 200 | 404 | 405 | 426)
                    || (status == 400 && a.error_code().is_none())
                {
                    return format!(
                        "the WebSocket handshake was answered {} instead of 101 Switching \
                         Protocols: the Upgrade did not get through (a proxy that does not \
                         forward WebSocket, or a route that is not the Engine.IO server)",
                        a.describe()
                    );
                }
                format!("the WebSocket was refused: {}", explain_refusal(a))
            }
        }
    }

    /// The answer, when there was one.
    pub(crate) fn answer(&self) -> Option<&Answer> {
        match self {
            WsError::Refused(a) => Some(a),
            WsError::Io(_) => None,
        }
    }
}

/// An open WebSocket.
pub(crate) struct Ws {
    stream: <Tokio as Runtime>::ClientWebSocket,
    timeout: Duration,
}

/// What reading a WebSocket gave instead of a text frame.
#[derive(Debug)]
pub(crate) enum WsEnd {
    /// Nothing within the time.
    Timeout(Duration),
    /// The WebSocket closed (code and reason when given).
    Closed(String),
    /// It failed.
    Error(String),
}

impl std::fmt::Display for WsEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WsEnd::Timeout(d) => write!(f, "nothing arrived within {}", human_duration(*d)),
            WsEnd::Closed(c) => write!(f, "the WebSocket closed ({c})"),
            WsEnd::Error(e) => write!(f, "the WebSocket failed: {e}"),
        }
    }
}

impl Ws {
    /// Sends a text frame.
    pub(crate) async fn send(&mut self, text: &str) -> Result<(), String> {
        tokio::time::timeout(
            self.timeout,
            self.stream.send(Frame::Text(text.to_owned().into())),
        )
        .await
        .map_err(|_| "the WebSocket did not take a frame in time".to_owned())?
        .map_err(|e| format!("the WebSocket failed: {e}"))
    }

    /// The next text frame (binary frames are given as `<binary N bytes>`), within
    /// `timeout` (the default when `None`).
    pub(crate) async fn recv(&mut self, timeout: Option<Duration>) -> Result<String, WsEnd> {
        let timeout = timeout.unwrap_or(self.timeout);
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let next = tokio::time::timeout_at(deadline, self.stream.next()).await;
            match next {
                Err(_) => return Err(WsEnd::Timeout(timeout)),
                Ok(None) => return Err(WsEnd::Closed("no close frame".into())),
                Ok(Some(Err(e))) => return Err(WsEnd::Error(e.to_string())),
                Ok(Some(Ok(m))) => match m {
                    Frame::Text(t) => return Ok(t.as_str().to_owned()),
                    Frame::Binary(b) => {
                        return Ok(format!("<binary {} bytes>", b.len()));
                    }
                    Frame::Close(c) => {
                        return Err(WsEnd::Closed(
                            c.map(|c| format!("code {} {}", c.code, c.reason))
                                .unwrap_or_else(|| "no code".into()),
                        ));
                    }
                    _ => {} // WebSocket ping/pong: the framing library answers pings itself
                },
            }
        }
    }

    /// The next frame that is not an Engine.IO ping (pings are answered), within
    /// `timeout`.
    pub(crate) async fn recv_skipping_pings(
        &mut self,
        timeout: Option<Duration>,
    ) -> Result<String, WsEnd> {
        let timeout = timeout.unwrap_or(self.timeout);
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let frame = self.recv(Some(left)).await.map_err(|e| match e {
                WsEnd::Timeout(_) => WsEnd::Timeout(timeout),
                other => other,
            })?;
            if frame == "2" {
                self.send("3").await.map_err(WsEnd::Error)?;
                continue;
            }
            return Ok(frame);
        }
    }

    /// Sends the close packet and closes (best effort, bounded).
    pub(crate) async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            let _ = self.stream.send(Frame::Text("1".into())).await;
            let _ = self.stream.close().await;
        })
        .await;
    }

    /// Closes without the close packet (an abandoned probe).
    pub(crate) async fn drop_socket(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(1), self.stream.close()).await;
    }
}

/// The handshake of a WebSocket's first frame, or why it is not one.
pub(crate) fn parse_ws_open(frame: &str) -> Result<Handshake, String> {
    match frame.strip_prefix('0') {
        Some(json) => Handshake::from_json(json.as_bytes()).map_err(|e| {
            format!(
                "the open packet does not decode: {e} ({})",
                snippet(frame, 120)
            )
        }),
        None => Err(format!(
            "the first frame is not an open packet: {}",
            snippet(frame, 120)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &'static str, content_type: &'static str) -> Answer {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        Answer {
            status: StatusCode::from_u16(status).unwrap(),
            headers,
            body: Bytes::from_static(body.as_bytes()),
            took: Duration::ZERO,
        }
    }

    #[test]
    fn open_packets_and_what_is_not_one() {
        let ok = answer(
            200,
            r#"0{"sid":"abc","upgrades":["websocket"],"pingInterval":300,"pingTimeout":200,"maxPayload":1000}"#,
            "text/plain",
        );
        let hs = parse_open(&ok).unwrap();
        assert_eq!(hs.sid.as_str(), "abc");
        let v3 = answer(200, r#"96:0{"sid":"abc"}"#, "text/plain");
        assert!(parse_open(&v3).unwrap_err().contains("v3"));
        let html = answer(200, "<!doctype html><html>", "text/html; charset=utf-8");
        assert!(parse_open(&html).unwrap_err().contains("web page"));
        let e404 = answer(404, "Not Found", "text/plain");
        assert!(parse_open(&e404).unwrap_err().contains("/socket.io/"));
        let e502 = answer(
            502,
            "<html><title>502 Bad Gateway</title></html>",
            "text/html",
        );
        let why = parse_open(&e502).unwrap_err();
        assert!(
            why.contains("backend") && why.contains("(an HTML page: 502 Bad Gateway)"),
            "{why}"
        );
    }

    #[test]
    fn unknown_sessions_of_every_server() {
        let node = answer(
            400,
            r#"{"code":1,"message":"Session ID unknown"}"#,
            "application/json",
        );
        let python = answer(400, "\"Invalid session abc\"", "text/plain");
        let other = answer(
            400,
            r#"{"code":3,"message":"Bad request"}"#,
            "application/json",
        );
        assert!(node.is_unknown_sid() && python.is_unknown_sid());
        assert!(!other.is_unknown_sid());
        assert!(explain_refusal(&node).contains("non-sticky"));
        assert_eq!(
            python.describe(),
            "HTTP 400 Bad Request \"Session ID unknown\""
        );
        let ws = WsError::Refused(Box::new(python));
        assert!(ws.explain().contains("non-sticky"));
        let proxy = WsError::Refused(Box::new(answer(200, "ok", "text/plain")));
        assert!(proxy.explain().contains("Upgrade did not get through"));
    }

    #[test]
    fn cookies_and_packets() {
        let mut a = answer(200, "2\x1e6", "text/plain");
        a.headers.append(
            header::SET_COOKIE,
            HeaderValue::from_static("io=abc; Path=/; HttpOnly"),
        );
        a.headers
            .append(header::SET_COOKIE, HeaderValue::from_static("SERVERID=s1"));
        assert_eq!(a.cookies(), ["io=abc", "SERVERID=s1"]);
        assert_eq!(a.packets(), [Packet::Ping { probe: false }, Packet::Noop]);
    }
}
