//! python-engineio's connection refusal: a `connect` handler that returns `False`
//! answers `401 Unauthorized`. Here `on_connect` returns
//! `Err(Rejection::unauthorized(..))`.
//!
//! The example starts the server on a free port, then connects twice with our client:
//! once without a token (refused: the client's error carries the 401 and the message),
//! once with `?token=secret` (accepted). Run it with `serve` as argument to keep the
//! server running on port 5000 instead:
//!
//! ```sh
//! cargo run -p engineio-tokio --example reject_401
//! cargo run -p engineio-tokio --example reject_401 -- serve &
//! curl -i 'http://127.0.0.1:5000/engine.io/?EIO=4&transport=polling'   # 401
//! ```
use engineio_tokio::{
    Config, ConnectRequest, EngineIo, Handler, Message, Rejection, Socket, Tokio,
};

struct Guarded;

impl Handler for Guarded {
    /// The user the token belongs to (python's `save_session`).
    type Data = String;

    async fn on_connect(&self, request: &ConnectRequest<'_>) -> Result<String, Rejection> {
        match request.query("token").as_deref() {
            Some("secret") => Ok("alice".into()),
            _ => Err(Rejection::unauthorized("Unauthorized")),
        }
    }

    fn on_message(&self, socket: &Socket<String>, message: Message) {
        println!("{} says {message:?}", socket.data());
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let engine = EngineIo::new(Tokio, Guarded, Config::default())?;
    if std::env::args().nth(1).as_deref() == Some("serve") {
        let server = engineio_tokio::bind("127.0.0.1:5000", engine).await?;
        println!("listening on http://{}/", server.local_addr());
        return Ok(server.await?);
    }
    let server = engineio_tokio::bind("127.0.0.1:0", engine).await?;
    let addr = server.local_addr();
    tokio::spawn(server.into_future());

    match engineio_tokio::connect(&format!("http://{addr}")).await {
        Err(refused) => println!("without a token: {refused}"),
        Ok(_) => return Err("a client without a token was let in".into()),
    }
    let client = engineio_tokio::connect(&format!("http://{addr}/?token=secret")).await?;
    println!("with the token: connected as {:?}", client.sid());
    client.send("hello")?;
    client.disconnect().await;
    Ok(())
}
