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

/// Records the peer address `on_connect` saw.
struct PeerSeen(std::sync::Arc<std::sync::Mutex<Vec<Option<std::net::SocketAddr>>>>);

impl Handler for PeerSeen {
    type Data = ();

    async fn on_connect(&self, request: &ConnectRequest<'_>) -> Result<(), Rejection> {
        self.0.lock().unwrap().push(request.peer_addr());
        Ok(())
    }

    fn on_message(&self, _socket: &Socket<()>, _message: Message) {}
}

#[tokio::test]
async fn on_connect_sees_the_peer_address_axum_records() {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let engine = EngineIo::new(Tokio, PeerSeen(seen.clone()), Config::default()).unwrap();
    let app = axum::Router::new()
        .route("/hello", axum::routing::get(|| async { "hello" }))
        .layer(engine.layer());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // As axum users write it.
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
    });
    let r = http(addr, "GET", "/engine.io/?EIO=4&transport=polling", &[], b"").await;
    assert_eq!(r.status(), 200);
    let mut ws = ws_connect(addr, "").await;
    next(&mut ws).await.unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    for peer in seen {
        let peer = peer.expect("the peer address reaches on_connect");
        assert_eq!(peer.ip(), std::net::Ipv4Addr::LOCALHOST);
        assert_ne!(
            peer.port(),
            addr.port(),
            "the client's port, not the server's"
        );
    }
}
