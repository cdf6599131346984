//! An Engine.IO echo server inside an axum app, with its metrics served on `/metrics` for
//! Prometheus (through `metrics-exporter-prometheus`) and its logs carrying each
//! session's sid (through `tracing-subscriber`). Needs the `metrics` feature.
//!
//! ```sh
//! cargo run -p engineio-tokio --features metrics --example prometheus
//! curl 'http://127.0.0.1:3000/engine.io/?EIO=4&transport=polling'   # a session
//! curl http://127.0.0.1:3000/metrics                                 # its numbers
//! ```
//!
//! `--smoke` serves on a free port, opens a session, sends a message, prints `/metrics`
//! and exits: a quick check that the pieces fit.
use std::time::Duration;

use engineio_tokio::{
    Config, ConnectRequest, EngineIo, Handler, Message, Rejection, Socket, Tokio,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

struct Echo;

impl Handler for Echo {
    type Data = ();

    async fn on_connect(&self, _request: &ConnectRequest<'_>) -> Result<(), Rejection> {
        Ok(())
    }

    fn on_message(&self, socket: &Socket<()>, message: Message) {
        // Runs in the session's span: this line is logged with its sid.
        tracing::info!(len = message.len(), "echo");
        let _ = socket.send(message);
    }
}

/// The recorder, installed before the server is created (the server registers its
/// metrics when it is made).
fn install_recorder() -> PrometheusHandle {
    PrometheusBuilder::new()
        // A real histogram (buckets, aggregatable across servers) for the heartbeat's
        // round trip, instead of the exporter's default summary.
        .set_buckets_for_metric(
            Matcher::Full(engineio_tokio::engineio_hyper::metrics::PING_RTT.to_owned()),
            &[
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ],
        )
        .expect("valid buckets")
        .install_recorder()
        .expect("no other recorder installed")
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let prometheus = install_recorder();
    // Without the exporter's own HTTP listener, its upkeep (draining histograms) is ours.
    let upkeep = prometheus.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            upkeep.run_upkeep();
        }
    });

    let engine = EngineIo::new(Tokio, Echo, Config::default()).expect("valid configuration");
    let app = axum::Router::new()
        .route(
            "/",
            axum::routing::get(|| async { "an Engine.IO server: see /metrics" }),
        )
        .route(
            "/metrics",
            axum::routing::get(move || {
                let prometheus = prometheus.clone();
                async move { prometheus.render() }
            }),
        )
        .layer(engine.layer());

    let smoke = std::env::args().any(|a| a == "--smoke");
    let listener = tokio::net::TcpListener::bind(if smoke {
        "127.0.0.1:0"
    } else {
        "127.0.0.1:3000"
    })
    .await?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "serving Engine.IO on /engine.io/ and Prometheus metrics on /metrics");
    if !smoke {
        return axum::serve(listener, app).await;
    }
    tokio::spawn(async move { axum::serve(listener, app).await });
    let url = format!("http://{addr}");
    let mut client = tokio::time::timeout(Duration::from_secs(10), engineio_tokio::connect(&url))
        .await
        .expect("connected in time")
        .expect("connected");
    client.send("hello").expect("queued");
    let echo = tokio::time::timeout(Duration::from_secs(10), client.recv()).await;
    assert!(matches!(echo, Ok(Some(_))), "no echo: {echo:?}");
    let metrics = http_get(addr, "/metrics").await?;
    print!("{metrics}");
    assert!(metrics.contains("engineio_handshakes_total{transport=\"polling\"} 1"));
    Ok(())
}

/// A bare HTTP/1.0 GET (the smoke run's only need).
async fn http_get(addr: std::net::SocketAddr, path: &str) -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nhost: {addr}\r\n\r\n").as_bytes())
        .await?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await?;
    Ok(answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or(answer))
}
