//! The WebSocket layer under the Autobahn testsuite's cases (run by `scripts/autobahn.sh`
//! with the `kosoku` runner): an echo server and a client of the fuzzing server, built
//! from what the Engine.IO server and client use: hyper for the opening handshake,
//! `engineio_proto::websocket` for the accept key and the permessage-deflate decision,
//! and `engineio_hyper::ws::WebSocket` (the framing library behind our seam) for frames.
//!
//! ```text
//! autobahn server --port 9002 [--deflate]     echo every message back (fuzzingclient)
//! autobahn client --port 9001 [--deflate]     run every case of a fuzzingserver
//! ```
//!
//! `--parallel N` runs N of the fuzzing server's cases at a time (client; default 1).
//! `--deflate-threshold BYTES` sets the size under which messages go uncompressed
//! (`DeflateConfig::threshold`, default 1024); `scripts/autobahn.sh` passes 0 so that the
//! 12.* and 13.* cases, which send 16 B to 128 KiB messages, get every echo compressed.
//!
//! Listens and connects on 127.0.0.1 only; the server stops after `--seconds` (default
//! 900), the client after the last case or `--seconds`.
#![allow(missing_docs)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use engineio_hyper::ws::{Frame, WebSocket, WsConfig, WsError};
use engineio_proto::websocket::{DeflateConfig, accept_key, negotiate_deflate};
use futures_util::{SinkExt, StreamExt};
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

/// The largest message the cases send (9.1.6 and 9.2.6: 16 MiB).
const MAX_MESSAGE: usize = 64 << 20;

fn usage() -> ! {
    eprintln!(
        "usage: autobahn server|client --port PORT [--deflate [--deflate-threshold BYTES]] [--parallel N] [--seconds N]"
    );
    std::process::exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().cloned().unwrap_or_else(|| usage());
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let port: u16 = value("--port")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| usage());
    let seconds: u64 = value("--seconds")
        .and_then(|s| s.parse().ok())
        .unwrap_or(900);
    let parallel: usize = value("--parallel")
        .map(|n| n.parse().unwrap_or_else(|_| usage()))
        .unwrap_or(1);
    let threshold: Option<usize> =
        value("--deflate-threshold").map(|t| t.parse().unwrap_or_else(|_| usage()));
    let deflate = args.iter().any(|a| a == "--deflate").then(|| {
        let mut d = DeflateConfig::default();
        if let Some(t) = threshold {
            d.threshold = t;
        }
        d
    });
    if deflate.is_some() && !engineio_hyper::ws::SUPPORTS_DEFLATE {
        // As the Engine.IO server and client do: no agreement this build cannot honour.
        eprintln!("--deflate ignored: this build's WebSocket backend has no permessage-deflate");
    }
    let deflate = deflate.filter(|_| engineio_hyper::ws::SUPPORTS_DEFLATE);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let run = async move {
        match mode.as_str() {
            "server" => server(port, deflate).await,
            "client" => client(port, deflate, parallel).await,
            _ => usage(),
        }
    };
    match runtime.block_on(async { tokio::time::timeout(Duration::from_secs(seconds), run).await })
    {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            eprintln!("autobahn {}: {e}", args[0]);
            std::process::exit(1);
        }
        Err(_) => {
            eprintln!("autobahn {}: stopped after {seconds} s", args[0]);
            std::process::exit(if args[0] == "server" { 0 } else { 1 });
        }
    }
}

fn ws_config(deflate: Option<DeflateConfig>) -> WsConfig {
    let mut config = WsConfig::new(MAX_MESSAGE);
    config.deflate_config = deflate;
    config
}

/// Echoes every message until the peer closes; pings are answered by the framing
/// library, with the next flush.
async fn echo(mut ws: WebSocket) -> Result<(), WsError> {
    while let Some(frame) = ws.next().await {
        match frame? {
            f @ (Frame::Text(_) | Frame::Binary(_)) => ws.send(f).await?,
            Frame::Close(_) => break,
            _ => ws.flush().await?,
        }
    }
    // The close reply (queued by the library) goes out, then the connection ends.
    ws.close().await
}

async fn server(port: u16, deflate: Option<DeflateConfig>) -> Result<(), String> {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .map_err(|e| format!("bind: {e}"))?;
    // The port actually bound (`--port 0` takes a free one): scripts/autobahn.sh reads it.
    let addr = listener.local_addr().map_err(|e| format!("bind: {e}"))?;
    eprintln!("autobahn echo server listening on ws://{addr}/ (deflate: {deflate:?})");
    loop {
        let (stream, _) = listener.accept().await.map_err(|e| e.to_string())?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| upgrade(req, deflate));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await;
        });
    }
}

/// The opening handshake as the Engine.IO server answers it: the accept key and the
/// permessage-deflate decision from `engineio_proto::websocket`.
async fn upgrade(
    mut req: http::Request<Incoming>,
    deflate: Option<DeflateConfig>,
) -> Result<Response<Empty<Bytes>>, Infallible> {
    let Some(key) = req.headers().get(header::SEC_WEBSOCKET_KEY).cloned() else {
        let mut r = Response::new(Empty::new());
        *r.status_mut() = StatusCode::BAD_REQUEST;
        return Ok(r);
    };
    let agreed = deflate.as_ref().and_then(|d| {
        let offers = req
            .headers()
            .get_all(header::SEC_WEBSOCKET_EXTENSIONS)
            .iter()
            .filter_map(|v| v.to_str().ok());
        negotiate_deflate(offers, d)
    });
    let mut config = ws_config(deflate);
    config.deflate = agreed;
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        if let Ok(upgraded) = on_upgrade.await {
            let _ = echo(WebSocket::from_upgraded(upgraded, &config)).await;
        }
    });
    let mut r = Response::new(Empty::new());
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(v) = HeaderValue::from_str(&accept_key(key.as_bytes())) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    if let Some(a) = agreed
        && let Ok(v) = HeaderValue::from_str(&a.to_header())
    {
        h.insert(header::SEC_WEBSOCKET_EXTENSIONS, v);
    }
    Ok(r)
}

/// Opens `path` on the fuzzing server with our client's handshake.
async fn open(port: u16, path: &str, config: &WsConfig) -> Result<WebSocket, String> {
    let stream = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    let mut request = http::Request::new(());
    *request.uri_mut() = format!("ws://127.0.0.1:{port}{path}")
        .parse()
        .map_err(|e| format!("{e}"))?;
    if let Some(d) = &config.deflate_config {
        let offer = engineio_proto::websocket::deflate_offer(d);
        if let Ok(v) = HeaderValue::from_str(&offer) {
            request
                .headers_mut()
                .insert(header::SEC_WEBSOCKET_EXTENSIONS, v);
        }
    }
    engineio_hyper::ws::connect(TokioIo::new(stream), request, config)
        .await
        .map_err(|e| format!("{path}: {e:?}"))
}

async fn client(port: u16, deflate: Option<DeflateConfig>, parallel: usize) -> Result<(), String> {
    let config = ws_config(deflate);
    let agent = if deflate.is_some() {
        "engineio-rs-deflate"
    } else {
        "engineio-rs"
    };
    let mut ws = open(port, "/getCaseCount", &config).await?;
    let count: usize = match ws.next().await {
        Some(Ok(Frame::Text(t))) => t.as_str().trim().parse().map_err(|e| format!("{e}"))?,
        other => return Err(format!("getCaseCount: {other:?}")),
    };
    let _ = ws.close().await;
    eprintln!("autobahn client: {count} cases");
    // Cases run `parallel` at a time, each on its own connection.
    futures_util::stream::iter(1..=count)
        .for_each_concurrent(parallel.max(1), |case| {
            let config = &config;
            async move {
                let path = format!("/runCase?case={case}&agent={agent}");
                match open(port, &path, config).await {
                    Ok(ws) => {
                        let _ = echo(ws).await;
                    }
                    // A case may refuse the handshake on purpose; the report says.
                    Err(e) => eprintln!("case {case}: {e}"),
                }
            }
        })
        .await;
    let mut ws = open(port, &format!("/updateReports?agent={agent}"), &config).await?;
    while let Some(Ok(_)) = ws.next().await {}
    Ok(())
}
