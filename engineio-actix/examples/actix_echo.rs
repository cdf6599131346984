//! An echo server mounted in actix-web beside an ordinary route, on 127.0.0.1:3000.
//!
//! ```sh
//! cargo run -p engineio-actix --example actix_echo
//! curl http://127.0.0.1:3000/hello
//! cargo run -p engineio-tokio --example client -- http://127.0.0.1:3000
//! ```
use actix_web::{App, HttpServer, web};
use engineio_actix::{
    Actix, Config, ConnectRequest, EngineIo, Handler, Message, Rejection, Socket,
};

struct Echo;

impl Handler for Echo {
    type Data = ();

    async fn on_connect(&self, request: &ConnectRequest<'_>) -> Result<(), Rejection> {
        println!("connect {} from {:?}", request.sid(), request.peer_addr());
        Ok(())
    }

    fn on_message(&self, socket: &Socket<()>, message: Message) {
        let _ = socket.send(message);
    }
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let engine = EngineIo::new(Actix, Echo, Config::default()).expect("valid configuration");
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    println!("actix-web with Engine.IO on http://127.0.0.1:{port}/ (/hello, /engine.io/)");
    HttpServer::new(move || {
        App::new()
            .service(engineio_actix::service(engine.clone()))
            .route("/hello", web::get().to(|| async { "hello from actix-web" }))
    })
    .bind(("127.0.0.1", port))?
    .run()
    .await
}
