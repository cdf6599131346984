//! The client's opening handshake (RFC 6455 section 4.1), over hyper's HTTP/1 client: the
//! upgrade request, the check of the server's 101, and the WebSocket over the upgraded
//! connection.

use std::future::Future;
use std::pin::Pin;
use std::task::Context;

use base64::Engine as _;
use bytes::Bytes;
use engineio_proto::client::WsConnectError;
use engineio_proto::{IoError, Response, TransportError};
use http::{HeaderValue, header};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;

use super::{Role, WebSocket, WsConfig};

/// The most of a refusal's body that is kept (the server's error message).
const MAX_REFUSAL_BODY: usize = 64 * 1024;

/// Opens a WebSocket over `io` (a connection to the request's host, TLS already done):
/// sends `request` (its URI and headers; the handshake's own headers are added) as an
/// upgrade request and checks the server's answer. A server that answers anything but a
/// valid `101` is [`WsConnectError::Rejected`] with its answer (Engine.IO servers say
/// why in the body).
pub async fn connect<I>(
    io: I,
    request: http::Request<()>,
    config: &WsConfig,
) -> Result<WebSocket, WsConnectError>
where
    I: hyper::rt::Read + hyper::rt::Write + Send + Unpin + 'static,
{
    let mut nonce = [0u8; 16];
    getrandom::fill(&mut nonce)
        .map_err(|e| connect_error(std::io::ErrorKind::Other, format!("no random source: {e}")))
        .map_err(WsConnectError::Transport)?;
    let key = base64::engine::general_purpose::STANDARD.encode(nonce);
    let request = upgrade_request(request, &key).map_err(WsConnectError::Transport)?;

    let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(io)
        .await
        .map_err(http_error)?;
    let mut conn = Some(conn.with_upgrades());
    let mut response = drive(&mut conn, sender.send_request(request))
        .await
        .map_err(http_error)?;

    if response.status() != http::StatusCode::SWITCHING_PROTOCOLS {
        let status = response.status();
        let headers = response.headers().clone();
        let body = drive(
            &mut conn,
            Limited::new(response.into_body(), MAX_REFUSAL_BODY).collect(),
        )
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
        return Err(WsConnectError::Rejected(Response {
            status,
            headers,
            body,
        }));
    }
    check_upgrade(response.headers(), &key).map_err(WsConnectError::Transport)?;
    // The protocol's check of the extensions the server answered against our offer.
    let answer = response
        .headers()
        .get_all(header::SEC_WEBSOCKET_EXTENSIONS)
        .iter()
        .map(|v| v.to_str().unwrap_or("\u{0}invalid"))
        .collect::<Vec<_>>();
    let deflate = engineio_proto::websocket::accept_deflate_answer(
        answer.iter().copied(),
        config.deflate_config.as_ref(),
    )
    .map_err(|e| connect_error(std::io::ErrorKind::InvalidData, e.to_string()))
    .map_err(WsConnectError::Transport)?;
    let mut config = *config;
    config.deflate = deflate;
    let upgraded = drive(&mut conn, hyper::upgrade::on(&mut response))
        .await
        .map_err(http_error)?;
    Ok(WebSocket::new(
        TokioIo::new(upgraded),
        Role::Client,
        &config,
    ))
}

/// The upgrade request: origin-form URI, `Host`, and the handshake's headers after the
/// caller's.
fn upgrade_request(
    request: http::Request<()>,
    key: &str,
) -> Result<http::Request<Empty<Bytes>>, TransportError> {
    let (parts, ()) = request.into_parts();
    let uri = &parts.uri;
    let Some(host) = uri.host() else {
        return Err(connect_error(
            std::io::ErrorKind::InvalidInput,
            format!("the WebSocket URL {uri} has no host"),
        ));
    };
    let authority = match uri.port_u16() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut builder = http::Request::get(path);
    if let Some(headers) = builder.headers_mut() {
        *headers = parts.headers;
        if !headers.contains_key(header::HOST)
            && let Ok(v) = HeaderValue::from_str(&authority)
        {
            headers.insert(header::HOST, v);
        }
        headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        if let Ok(v) = HeaderValue::from_str(key) {
            headers.insert(header::SEC_WEBSOCKET_KEY, v);
        }
    }
    builder
        .body(Empty::new())
        .map_err(|e| connect_error(std::io::ErrorKind::InvalidInput, e.to_string()))
}

/// RFC 6455 section 4.1's checks of a 101: `Upgrade: websocket`, `Connection: upgrade`
/// and the accept key of our key.
fn check_upgrade(headers: &http::HeaderMap, key: &str) -> Result<(), TransportError> {
    let has_token = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    if !has_token(header::UPGRADE, "websocket") || !has_token(header::CONNECTION, "upgrade") {
        return Err(connect_error(
            std::io::ErrorKind::InvalidData,
            "the server answered 101 without upgrading to WebSocket",
        ));
    }
    let expected = engineio_proto::websocket::accept_key(key.as_bytes());
    match headers.get(header::SEC_WEBSOCKET_ACCEPT) {
        Some(v) if v.as_bytes() == expected.as_bytes() => Ok(()),
        _ => Err(connect_error(
            std::io::ErrorKind::InvalidData,
            "the server's Sec-WebSocket-Accept does not match the key sent",
        )),
    }
}

/// Polls `future` while driving the connection (until the connection finishes).
async fn drive<C, F>(conn: &mut Option<C>, future: F) -> F::Output
where
    C: Future<Output = hyper::Result<()>> + Unpin,
    F: Future,
{
    let mut future = std::pin::pin!(future);
    std::future::poll_fn(|cx: &mut Context<'_>| {
        if let Some(c) = conn.as_mut()
            && Pin::new(c).poll(cx).is_ready()
        {
            // Finished (upgraded, or failed: the request's future says how).
            *conn = None;
        }
        future.as_mut().poll(cx)
    })
    .await
}

fn http_error(e: hyper::Error) -> WsConnectError {
    use std::error::Error as _;
    let io = e
        .source()
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .map(|io| io.kind());
    match io {
        Some(kind) if super::is_reset(kind) => {
            WsConnectError::Transport(TransportError::Reset(IoError::new(kind, e)))
        }
        _ if e.is_incomplete_message() => WsConnectError::Transport(TransportError::Reset(
            IoError::new(std::io::ErrorKind::UnexpectedEof, e),
        )),
        Some(kind) => WsConnectError::Transport(TransportError::Connect(IoError::new(kind, e))),
        None if e.is_parse() => WsConnectError::Transport(TransportError::Io(IoError::new(
            std::io::ErrorKind::InvalidData,
            e,
        ))),
        None => WsConnectError::Transport(TransportError::Connect(IoError::new(
            std::io::ErrorKind::Other,
            e,
        ))),
    }
}

fn connect_error(kind: std::io::ErrorKind, message: impl Into<String>) -> TransportError {
    let message: String = message.into();
    TransportError::Io(IoError::new(kind, message))
}

/// Opens a WebSocket to `request`'s URI over the connection `open` makes to its host,
/// port and scheme ([`target`]): what a binding's
/// [`Runtime::connect_websocket`](crate::Runtime::connect_websocket) (with `open` its
/// `connect_http`) and `connect_websocket_via` (with `connect_http_tunnel`) do. A failure
/// to open the connection is reported as [`connect_io_error`] says.
pub async fn connect_over<I, F, Fut>(
    request: http::Request<()>,
    config: &WsConfig,
    open: F,
) -> Result<WebSocket, WsConnectError>
where
    F: FnOnce(String, u16, bool) -> Fut,
    Fut: Future<Output = std::io::Result<I>>,
    I: hyper::rt::Read + hyper::rt::Write + Send + Unpin + 'static,
{
    let (host, port, secure) = target(request.uri());
    let io = open(host, port, secure).await.map_err(connect_io_error)?;
    connect(io, request, config).await
}

/// Where a WebSocket URL leads: host (without IPv6 brackets), port (the scheme's default
/// when none is given) and whether it is `wss`.
pub fn target(uri: &http::Uri) -> (String, u16, bool) {
    let secure = matches!(uri.scheme_str(), Some("wss" | "https"));
    let host = uri
        .host()
        .unwrap_or("localhost")
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
    (host, port, secure)
}

/// A failure to open the connection a WebSocket runs over, as the client machine hears it.
pub fn connect_io_error(e: std::io::Error) -> WsConnectError {
    if let Some(refusal) = crate::proxy::proxy_refusal(&e) {
        WsConnectError::Transport(TransportError::Proxy(refusal.clone()))
    } else if super::is_reset(e.kind()) {
        WsConnectError::Transport(TransportError::Reset(e.into()))
    } else {
        WsConnectError::Transport(TransportError::Connect(e.into()))
    }
}
