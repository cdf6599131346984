//! The smallest useful server: echoes every message, on 127.0.0.1:3000.
//!
//! ```sh
//! cargo run -p engineio-tokio --example echo
//! curl 'http://127.0.0.1:3000/engine.io/?EIO=4&transport=polling'
//! ```
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
        let _ = socket.send(message);
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let engine = EngineIo::new(Tokio, Echo, Config::default()).expect("valid configuration");
    engineio_tokio::listen("127.0.0.1:3000", engine).await
}
