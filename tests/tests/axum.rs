//! engineio-tokio mounted in axum as a tower layer, next to ordinary routes.
#![allow(missing_docs)]

use engineio_tests::net::{WsMessage, http, next, next_data, ws_connect};
use engineio_tokio::{
    Config, ConnectRequest, EngineIo, Handler, Message, Rejection, Socket, Tokio,
};
use futures_util::SinkExt;

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

#[tokio::test]
async fn mounted_in_axum_next_to_other_routes() {
    let engine = EngineIo::new(Tokio, Echo, Config::default()).unwrap();
    let app = axum::Router::new()
        .route("/hello", axum::routing::get(|| async { "hello from axum" }))
        .layer(engine.layer());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let r = http(addr, "GET", "/hello", &[], b"").await;
    assert_eq!(&r.body()[..], b"hello from axum");
    let r = http(addr, "GET", "/missing", &[], b"").await;
    assert_eq!(r.status(), 404);
    let r = http(addr, "GET", "/engine.io/?EIO=4&transport=polling", &[], b"").await;
    assert_eq!(r.status(), 200);
    assert!(r.body().starts_with(b"0{"));
    // The WebSocket upgrade works through axum's server too.
    let mut ws = ws_connect(addr, "").await;
    next(&mut ws).await.unwrap();
    ws.send(WsMessage::text("4via axum")).await.unwrap();
    assert_eq!(next_data(&mut ws).await, Some(WsMessage::text("4via axum")));
    assert_eq!(engine.count(), 2);
}
