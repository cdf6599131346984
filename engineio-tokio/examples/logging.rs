//! Logging like python-engineio's `logger=True`: a server and a client in one program,
//! with `tracing-subscriber` printing what `RUST_LOG` asks for. The crates log the
//! lifecycle (handshakes, refusals with the reason, upgrades, closes and why) at `debug`,
//! and every packet at `trace`.
//!
//! ```sh
//! RUST_LOG=engineio_hyper=debug cargo run -p engineio-tokio --example logging
//! RUST_LOG=engineio_hyper=trace cargo run -p engineio-tokio --example logging
//! ```
use engineio_tokio::{
    Config, ConnectRequest, EngineIo, Handler, Message, Rejection, Socket, Tokio,
};
use tracing_subscriber::EnvFilter;

struct Echo;

impl Handler for Echo {
    type Data = ();

    async fn on_connect(&self, request: &ConnectRequest<'_>) -> Result<(), Rejection> {
        match request.query("token") {
            Some(_) => Ok(()),
            None => Err(Rejection::unauthorized("a token is needed")),
        }
    }

    fn on_message(&self, socket: &Socket<()>, message: Message) {
        let _ = socket.send(message);
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // python's logger=True is about `RUST_LOG=engineio_hyper=debug`; without RUST_LOG,
    // `info` (the server's address) and above.
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let engine = EngineIo::new(Tokio, Echo, Config::default())?;
    let server = engineio_tokio::bind("127.0.0.1:0", engine.clone()).await?;
    let addr = server.local_addr();
    tokio::spawn(server.into_future());

    // Refused (logged with the reason on both sides), then a session that upgrades.
    let _ = engineio_tokio::connect(&format!("http://{addr}")).await;
    let mut client = engineio_tokio::connect(&format!("http://{addr}/?token=t")).await?;
    client.send("hello")?;
    client.recv().await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await; // the upgrade
    client.send("hello over websocket")?;
    client.recv().await;
    client.disconnect().await;
    engine.shutdown().await;
    Ok(())
}
