//! The conformance and interop server: an echo server on 127.0.0.1 with the official test
//! suite's settings (ping interval 300 ms, ping timeout 200 ms, max payload 1,000,000),
//! polling and WebSocket with upgrades, any origin accepted.
//!
//! Every message is sent back unchanged, except the text `__close__`, which makes the
//! server close that session. It also serves the demo page at `/` (with the
//! engine.io-client bundle at `/engine.io.min.js`, from `demo/node_modules` after
//! `demo/install.sh`).
//!
//! ```sh
//! PORT=3000 cargo run -p engineio-tokio --example e2e_server
//! ```
use std::time::Duration;

use engineio_tokio::proto::server::AllowedOrigins;
use engineio_tokio::proto::static_files::StaticFiles;
use engineio_tokio::{
    Config, ConnectRequest, EngineIo, Handler, Message, Rejection, Socket, Tokio,
};

struct Echo;

impl Handler for Echo {
    type Data = ();

    async fn on_connect(&self, _request: &ConnectRequest<'_>) -> Result<(), Rejection> {
        Ok(())
    }

    fn on_message(&self, socket: &Socket<()>, message: Message) {
        if message.as_text() == Some("__close__") {
            socket.close();
        } else if let Err(e) = socket.send(message) {
            tracing::warn!(sid = %socket.sid(), error = %e, "echo failed");
        }
    }
}

/// The demo page and the engine.io-client browser bundle, from the repository's `demo/`.
fn demo_files() -> StaticFiles {
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/../demo");
    StaticFiles::new()
        .file("/", format!("{demo}/index.html"))
        .file(
            "/engine.io.min.js",
            format!("{demo}/node_modules/engine.io-client/dist/engine.io.min.js"),
        )
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::var("PORT")
        .ok()
        .or_else(|| std::env::args().nth(1))
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let mut config = Config::default();
    config.engine.ping_interval = Duration::from_millis(300);
    config.engine.ping_timeout = Duration::from_millis(200);
    config.engine.max_payload = 1_000_000;
    config.engine.cors.origins = AllowedOrigins::Any;
    config.static_files = demo_files();
    let engine = EngineIo::new(Tokio, Echo, config).expect("valid configuration");
    engineio_tokio::listen(("127.0.0.1", port), engine).await
}
