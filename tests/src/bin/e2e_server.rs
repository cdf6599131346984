//! The conformance and interop server: an echo server on 127.0.0.1 with the official test
//! suite's settings (ping interval 300 ms, ping timeout 200 ms, max payload 1,000,000),
//! polling and WebSocket with upgrades, any origin accepted, on either binding.
//!
//! Every message is sent back unchanged, except the text `__close__`, which makes the
//! server close that session. It also serves the demo page at `/` (with the
//! engine.io-client bundle at `/engine.io.min.js`, from `demo/node_modules` after
//! `demo/install.sh`).
//!
//! ```sh
//! cargo run -p engineio-tests --bin e2e_server -- --runtime tokio --port 3000
//! cargo run -p engineio-tests --bin e2e_server -- --runtime smol --port 3000
//! ```
//!
//! For the `eio` CLI tests (scripts/cli.sh), a few settings can change:
//! `--ping-interval MS` and `--ping-timeout MS` (the heartbeat), and `--allow-origin
//! ORIGIN` (repeatable: only these origins instead of any, to play a CORS-refusing
//! server).
//!
//! For the fault tests (`tests/tests/listen.rs`, the reliability suite): `--backlog N` (the
//! listen backlog, default the binding's 1024) and `--head-timeout-ms N` (default 30000).
//!
//! For the interop matrix's v3 and proxy rows: `--allow-eio3` (Engine.IO v3 clients too),
//! and `--tls-cert PEM --tls-key PEM` (https and wss, with tests/interop/tls/server.pem).
//!
//! For the deflate rows: `--deflate` turns on permessage-deflate with the default
//! [`DeflateConfig`] (threshold 1024 B, level 1, no context takeover, 15-bit windows), and
//! the text `__deflate__` is answered (not echoed) with what the session's WebSocket
//! agreed: the `Sec-WebSocket-Extensions` value the server answered, or `off` (polling,
//! deflate not configured, or nothing acceptable offered). Clients check the negotiation
//! from our side with it.
#![allow(clippy::print_stderr)]

use std::time::Duration;

use engineio_hyper::server::{Config, ConnectRequest, Handler, Rejection, Socket};
use engineio_proto::Message;
use engineio_proto::server::AllowedOrigins;
use engineio_proto::static_files::StaticFiles;
use engineio_proto::websocket::DeflateConfig;

struct Echo;

impl Handler for Echo {
    type Data = ();

    async fn on_connect(&self, _request: &ConnectRequest<'_>) -> Result<(), Rejection> {
        Ok(())
    }

    fn on_message(&self, socket: &Socket<()>, message: Message) {
        if message.as_text() == Some("__close__") {
            socket.close();
        } else if message.as_text() == Some("__deflate__") {
            let agreed = socket
                .websocket_deflate()
                .map_or_else(|| "off".to_owned(), |d| d.to_header());
            if let Err(e) = socket.send(agreed) {
                eprintln!("answer to {} failed: {e}", socket.sid());
            }
        } else if let Err(e) = socket.send(message) {
            eprintln!("echo to {} failed: {e}", socket.sid());
        }
    }
}

fn config() -> Config {
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/../demo");
    let millis = |name: &str, default: u64| match arg(name) {
        None => Duration::from_millis(default),
        Some(v) => match v.parse::<u64>() {
            Ok(ms) if ms > 0 => Duration::from_millis(ms),
            _ => {
                eprintln!("{name} {v:?}: expected a positive number of milliseconds");
                std::process::exit(2)
            }
        },
    };
    let mut config = Config::default();
    config.engine.allow_eio3 = flag("--allow-eio3");
    config.engine.ping_interval = millis("--ping-interval", 300);
    config.engine.ping_timeout = millis("--ping-timeout", 200);
    config.engine.head_timeout = millis("--head-timeout-ms", 30_000);
    if let Some(backlog) = arg("--backlog").and_then(|v| v.parse().ok()) {
        config.listen_backlog = backlog;
    }
    config.engine.max_payload = 1_000_000;
    if flag("--deflate") {
        config.engine.websocket_deflate = Some(DeflateConfig::default());
    }
    let origins = args("--allow-origin");
    config.engine.cors.origins = if origins.is_empty() {
        AllowedOrigins::Any
    } else {
        AllowedOrigins::list(origins)
    };
    config.static_files = StaticFiles::new()
        .file("/", format!("{demo}/index.html"))
        .file(
            "/engine.io.min.js",
            format!("{demo}/node_modules/engine.io-client/dist/engine.io.min.js"),
        );
    config
}

fn arg(name: &str) -> Option<String> {
    args(name).pop()
}

fn flag(name: &str) -> bool {
    std::env::args().any(|a| a == name)
}

/// The rustls server configuration from `--tls-cert` and `--tls-key`, when both are given.
fn tls_config() -> Option<std::sync::Arc<rustls::ServerConfig>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let (cert, key) = (arg("--tls-cert")?, arg("--tls-key")?);
    let fail = |what: &str, e: &dyn std::fmt::Display| -> ! {
        eprintln!("{what}: {e}");
        std::process::exit(2)
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert)
        .unwrap_or_else(|e| fail(&cert, &e))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| fail(&cert, &e));
    let key = PrivateKeyDer::from_pem_file(&key).unwrap_or_else(|e| fail(&key, &e));
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|e| fail("rustls", &e))
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap_or_else(|e| fail("--tls-cert/--tls-key", &e));
    Some(std::sync::Arc::new(config))
}

/// Serves `engine` over https on `listener` until the process ends.
async fn serve_tls_tokio(
    listener: tokio::net::TcpListener,
    tls: std::sync::Arc<rustls::ServerConfig>,
    engine: engineio_tokio::EngineIo<Echo>,
) -> std::io::Result<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    loop {
        let (stream, peer) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let (acceptor, engine) = (acceptor.clone(), engine.clone());
        tokio::spawn(async move {
            if let Ok(tls) = acceptor.accept(stream).await {
                let peer = engineio_tokio::PeerAddr {
                    addr: peer,
                    secure: true,
                };
                engineio_tokio::serve_connection(tls, peer, engine).await;
            }
        });
    }
}

/// Serves `engine` over https on `listener` until the process ends.
async fn serve_tls_smol(
    listener: smol::net::TcpListener,
    tls: std::sync::Arc<rustls::ServerConfig>,
    engine: engineio_smol::EngineIo<Echo>,
) -> std::io::Result<()> {
    let acceptor = futures_rustls::TlsAcceptor::from(tls);
    loop {
        let (stream, peer) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let (acceptor, engine) = (acceptor.clone(), engine.clone());
        smol::spawn(async move {
            if let Ok(tls) = acceptor.accept(stream).await {
                let peer = engineio_smol::PeerAddr {
                    addr: peer,
                    secure: true,
                };
                engineio_smol::serve_connection(tls, peer, engine).await;
            }
        })
        .detach();
    }
}

/// Every value given for `name`.
fn args(name: &str) -> Vec<String> {
    let args: Vec<String> = std::env::args().collect();
    args.windows(2)
        .filter(|w| w[0] == name)
        .map(|w| w[1].clone())
        .collect()
}

fn main() -> std::io::Result<()> {
    let port: u16 = arg("--port")
        .or_else(|| std::env::var("PORT").ok())
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let runtime = arg("--runtime").unwrap_or_else(|| "tokio".into());
    match runtime.as_str() {
        "tokio" => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?
            .block_on(async {
                let engine = engineio_tokio::EngineIo::new(engineio_tokio::Tokio, Echo, config())
                    .expect("valid configuration");
                match tls_config() {
                    Some(tls) => {
                        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
                        serve_tls_tokio(listener, tls, engine).await
                    }
                    None => engineio_tokio::listen(("127.0.0.1", port), engine).await,
                }
            }),
        "smol" => smol::block_on(async {
            let engine = engineio_smol::EngineIo::new(engineio_smol::Smol, Echo, config())
                .expect("valid configuration");
            match tls_config() {
                Some(tls) => {
                    let listener = smol::net::TcpListener::bind(("127.0.0.1", port)).await?;
                    serve_tls_smol(listener, tls, engine).await
                }
                None => engineio_smol::listen(("127.0.0.1", port), engine).await,
            }
        }),
        other => {
            eprintln!("unknown --runtime {other:?}: use tokio or smol");
            std::process::exit(2)
        }
    }
}
