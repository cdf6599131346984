//! The latency demo (python-engineio's `latency` example, in Rust): a page served by the
//! server itself connects with the official `engine.io-client` browser bundle, sends a
//! message every second and shows the round-trip time and the transport in use.
//!
//! ```sh
//! demo/install.sh                                   # the engine.io-client bundle (npm)
//! cargo run --release -p engineio-tokio --example latency
//! # then open http://127.0.0.1:5000/
//! ```
//!
//! `PORT` and `HOST` change where it listens (default 127.0.0.1:5000). Without a browser:
//! `cargo run -p engineio-tokio --example latency_client` (python's latency client).
use engineio_tokio::proto::static_files::StaticFiles;
use engineio_tokio::{
    Config, ConnectRequest, EngineIo, Handler, Message, Rejection, Socket, Tokio,
};

/// Sends every message straight back: the page measures the time it takes.
struct Latency;

impl Handler for Latency {
    type Data = ();

    async fn on_connect(&self, request: &ConnectRequest<'_>) -> Result<(), Rejection> {
        println!(
            "connected: {:?} over {}",
            request.peer_addr(),
            request.transport()
        );
        Ok(())
    }

    fn on_message(&self, socket: &Socket<()>, message: Message) {
        let _ = socket.send(message);
    }

    fn on_upgrade(&self, socket: &Socket<()>) {
        println!("{} upgraded to websocket", socket.sid());
    }

    fn on_disconnect(&self, socket: &Socket<()>, reason: &engineio_tokio::CloseReason) {
        println!("{} disconnected: {reason}", socket.sid());
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/../demo");
    let bundle = format!("{demo}/node_modules/engine.io-client/dist/engine.io.min.js");
    if !std::path::Path::new(&bundle).exists() {
        // The Rust latency client (`--example latency_client`) works without it.
        eprintln!(
            "warning: the page's engine.io-client bundle is missing (run demo/install.sh \
             for the browser page)"
        );
    }
    let mut config = Config::default();
    config.static_files = StaticFiles::new()
        .file("/", format!("{demo}/index.html"))
        .file("/engine.io.min.js", bundle);
    let host = std::env::var("HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(5000);
    let engine = EngineIo::new(Tokio, Latency, config).expect("valid configuration");
    println!("latency demo: open http://{host}:{port}/ (Ctrl-C to stop)");
    let server = engineio_tokio::listen((host.as_str(), port), engine.clone());
    tokio::select! {
        result = server => result,
        _ = tokio::signal::ctrl_c() => {
            println!("shutting down");
            engine.shutdown().await;
            Ok(())
        }
    }
}
