//! The benchmark server (see `docs/benchmarks.md`): an echo server with the settings
//! every benchmarked server shares: 127.0.0.1:$PORT (default 3000), path `/engine.io/`,
//! ping interval 25 s, ping timeout 20 s, max payload 1,000,000, polling and WebSocket
//! with upgrades.
//!
//! Every message is sent back unchanged, except the text `__broadcast__<payload>`, which
//! sends `<payload>` to every live session.
//!
//! `DEFLATE=1` turns permessage-deflate on (its default settings).
//!
//! `WS_READ_BUFFER` sets `Config::websocket_read_buffer` (bytes; default 1024).
//!
//! `THREADS` sets the worker threads: 1 (the default) is a current-thread runtime, more is
//! a multi-thread runtime with that many workers.
//!
//! Built with `--features metrics`, it installs the Prometheus exporter's recorder first,
//! so that a run measures the metrics as an application would have them.
//!
//! ```sh
//! cargo build --release -p engineio-tokio --example bench_server
//! THREADS=1 PORT=3000 taskset -c 0 target/release/examples/bench_server
//! ```
use std::sync::OnceLock;

use engineio_tokio::{
    Config, ConnectRequest, EngineIo, Handler, Message, Rejection, Socket, Tokio,
};

/// The server, reachable from the handler for broadcasts.
static ENGINE: OnceLock<EngineIo<Echo>> = OnceLock::new();

const BROADCAST: &str = "__broadcast__";

struct Echo;

impl Handler for Echo {
    type Data = ();

    async fn on_connect(&self, _request: &ConnectRequest<'_>) -> Result<(), Rejection> {
        Ok(())
    }

    fn on_message(&self, socket: &Socket<()>, message: Message) {
        if let Some(payload) = message.as_text().and_then(|t| t.strip_prefix(BROADCAST)) {
            let payload = Message::from(payload);
            if let Some(engine) = ENGINE.get() {
                for session in engine.sockets() {
                    // A session that closed meanwhile, or whose queue is full, misses it.
                    let _ = session.send(payload.clone());
                }
            }
        } else if let Err(e) = socket.send(message) {
            tracing::warn!(sid = %socket.sid(), error = %e, "echo failed");
        }
    }
}

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> std::io::Result<()> {
    let port: u16 = env_or("PORT", 3000);
    let threads: usize = env_or("THREADS", 1);
    let runtime = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()?
    };
    // The defaults are the benchmark's settings; spelled out so that a change of default
    // does not silently change the benchmark.
    let mut config = Config::default();
    config.engine.path = "/engine.io/".to_owned();
    config.engine.ping_interval = std::time::Duration::from_secs(25);
    config.engine.ping_timeout = std::time::Duration::from_secs(20);
    config.engine.max_payload = 1_000_000;
    config.engine.transports.polling = true;
    config.engine.transports.websocket = true;
    config.engine.allow_upgrades = true;
    // The recorder comes before the server, which registers its metrics when it is made.
    #[cfg(feature = "metrics")]
    let _prometheus = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .expect("no other recorder installed");
    config.websocket_read_buffer = env_or("WS_READ_BUFFER", config.websocket_read_buffer);
    // DEFLATE=1: permessage-deflate with its default settings, for clients that offer it.
    if env_or("DEFLATE", 0u8) == 1 {
        config.engine.websocket_deflate = Some(Default::default());
    }
    runtime.block_on(async {
        let engine = EngineIo::new(Tokio, Echo, config).expect("valid configuration");
        let _ = ENGINE.set(engine.clone());
        eprintln!("engineio-tokio bench_server on 127.0.0.1:{port} (threads={threads})");
        engineio_tokio::listen(("127.0.0.1", port), engine).await
    })
}
