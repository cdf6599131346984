//! The smallest useful server on smol: echoes every message, on 127.0.0.1:3000.
//!
//! ```sh
//! cargo run -p engineio-smol --example smol_echo
//! ```
use engineio_smol::{Config, ConnectRequest, EngineIo, Handler, Message, Rejection, Smol, Socket};

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

fn main() -> std::io::Result<()> {
    smol::block_on(async {
        let engine = EngineIo::new(Smol, Echo, Config::default()).expect("valid configuration");
        engineio_smol::listen("127.0.0.1:3000", engine).await
    })
}
