//! Minimal Engine.IO-speaking test clients over real sockets (tokio-tungstenite and a
//! hyper HTTP/1 client). Every wait is bounded by [`WAIT`].

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use tokio::net::TcpStream;
use tokio::time::timeout;
pub use tokio_tungstenite::tungstenite::Message as WsMessage;

/// The longest any single wait may take.
pub const WAIT: Duration = Duration::from_secs(5);

/// A client WebSocket.
pub type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

/// Opens `ws://addr/engine.io/?EIO=4&transport=websocket{query}`.
pub async fn ws_connect(addr: SocketAddr, query: &str) -> Ws {
    let url = format!("ws://{addr}/engine.io/?EIO=4&transport=websocket{query}");
    let (ws, _) = timeout(WAIT, tokio_tungstenite::connect_async(url))
        .await
        .expect("connect in time")
        .expect("websocket handshake");
    ws
}

/// The next data or close frame (WebSocket pings and pongs skipped); `None` when the
/// stream ended.
pub async fn next(ws: &mut Ws) -> Option<WsMessage> {
    loop {
        match timeout(WAIT, ws.next()).await.expect("a frame in time") {
            Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => continue,
            Some(Ok(m)) => return Some(m),
            _ => return None,
        }
    }
}

/// The next frame that is not an Engine.IO heartbeat ping (pings are answered).
pub async fn next_data(ws: &mut Ws) -> Option<WsMessage> {
    loop {
        let m = next(ws).await?;
        if m == WsMessage::text("2") {
            ws.send(WsMessage::text("3")).await.expect("pong");
            continue;
        }
        return Some(m);
    }
}

/// One HTTP/1 request on a fresh connection; the whole response.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> http::Response<Bytes> {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .expect("http handshake");
    tokio::spawn(conn);
    let mut req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req
        .body(Full::new(Bytes::copy_from_slice(body)))
        .expect("request");
    let resp = timeout(WAIT, sender.send_request(req))
        .await
        .expect("answer in time")
        .expect("response");
    let (parts, body) = resp.into_parts();
    let body = timeout(WAIT, body.collect())
        .await
        .expect("body in time")
        .expect("body")
        .to_bytes();
    http::Response::from_parts(parts, body)
}

/// The sid in a polling handshake body.
pub fn sid_of(open: &[u8]) -> String {
    let text = std::str::from_utf8(open).expect("utf-8");
    let end = text.find('\u{1e}').unwrap_or(text.len());
    let v: serde_json::Value =
        serde_json::from_str(text.get(1..end).expect("open packet")).expect("json");
    v["sid"].as_str().expect("sid").to_owned()
}

/// Polls `f` every 10 ms until it holds; panics after 5 s.
pub async fn wait_until(mut f: impl FnMut() -> bool) {
    for _ in 0..500 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not met in time");
}

/// The kernel's TCP state (as in `/proc/net/tcp`: 1 is ESTABLISHED) of the IPv4 socket
/// whose local end is `local` and remote end is `remote`, or `None` when there is none
/// (closed and gone). Lets a test watch the server's end of a connection without reading
/// from the client's end.
pub fn tcp_state(local: SocketAddr, remote: SocketAddr) -> Option<u8> {
    fn hex(addr: SocketAddr) -> Option<String> {
        match addr {
            SocketAddr::V4(a) => Some(format!(
                "{:08X}:{:04X}",
                u32::from_ne_bytes(a.ip().octets()),
                a.port()
            )),
            SocketAddr::V6(_) => None,
        }
    }
    let (local, remote) = (hex(local)?, hex(remote)?);
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    table.lines().skip(1).find_map(|line| {
        let mut fields = line.split_whitespace().skip(1);
        let (l, r, st) = (fields.next()?, fields.next()?, fields.next()?);
        (l == local && r == remote)
            .then(|| u8::from_str_radix(st, 16).ok())
            .flatten()
    })
}
