//! python-engineio's quickstart server, in Rust: a page at `/`, and a handler that prints
//! connections and messages and answers every message with `reply`.
//!
//! ```sh
//! cargo run -p engineio-tokio --example quickstart_server
//! # another terminal: the quickstart client
//! cargo run -p engineio-tokio --example quickstart_client
//! ```
//!
//! The python original (`engineio.Server()` + `WSGIApp(eio, static_files=...)` +
//! `@eio.on('connect'|'message'|'disconnect')`) maps one to one: `on_connect` decides
//! and sees the sid, `on_open` is the session's start, `socket.send` is `eio.send(sid, ..)`.
use engineio_tokio::{
    CloseReason, Config, ConnectRequest, EngineIo, Handler, Message, Rejection, Socket,
    StaticFiles, Tokio,
};

struct Quickstart;

impl Handler for Quickstart {
    type Data = ();

    async fn on_connect(&self, request: &ConnectRequest<'_>) -> Result<(), Rejection> {
        println!("connect  {}", request.sid());
        Ok(())
    }

    fn on_message(&self, socket: &Socket<()>, message: Message) {
        println!("message  {message:?}");
        let _ = socket.send("reply");
    }

    fn on_disconnect(&self, socket: &Socket<()>, reason: &CloseReason) {
        println!("disconnect  {} ({reason})", socket.sid());
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let www = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/www");
    let config = Config::default().with_static_files(StaticFiles::new().file_with_type(
        "/",
        format!("{www}/index.html"),
        "text/html",
    ));
    let engine = EngineIo::new(Tokio, Quickstart, config).expect("valid configuration");
    let port = std::env::var("PORT").unwrap_or_else(|_| "5000".into());
    let server = engineio_tokio::bind(format!("127.0.0.1:{port}"), engine).await?;
    println!("quickstart server on http://{}/", server.local_addr());
    server.await
}
