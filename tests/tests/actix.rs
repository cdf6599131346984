//! engineio-actix: the server mounted in an actix-web application next to ordinary
//! routes, over polling, WebSocket and the upgrade between them (as the axum case).
#![allow(missing_docs)]

use std::net::SocketAddr;
use std::time::Duration;

use actix_web::{App, HttpServer, web};
use engineio_actix::{
    Actix, Config, ConnectRequest, EngineIo, Handler, Message, Rejection, Socket,
};
use engineio_tests::net::{WsMessage, http, next, next_data, ws_connect};
use engineio_tokio::{ClientConfig, ClientEvent, Transport};
use futures_util::SinkExt;

struct Echo;

impl Handler for Echo {
    type Data = Option<SocketAddr>;

    async fn on_connect(&self, request: &ConnectRequest<'_>) -> Result<Self::Data, Rejection> {
        if request.query("token").as_deref() == Some("bad") {
            return Err(Rejection::unauthorized("bad token"));
        }
        Ok(request.peer_addr())
    }

    fn on_open(&self, socket: &Socket<Self::Data>) {
        let _ = socket.send(format!("peer {:?}", socket.data().map(|a| a.ip())));
    }

    fn on_message(&self, socket: &Socket<Self::Data>, message: Message) {
        let _ = socket.send(message);
    }
}

/// Starts actix-web (two workers, its own system thread) with the engine and a route.
fn start() -> (SocketAddr, EngineIo<Echo>, actix_web::dev::ServerHandle) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let config = Config::default()
                .with_ping_interval(Duration::from_millis(400))
                .with_ping_timeout(Duration::from_millis(400))
                .with_max_payload(10_000);
            let engine = EngineIo::new(Actix, Echo, config).unwrap();
            let mounted = engine.clone();
            let server = HttpServer::new(move || {
                App::new()
                    .service(engineio_actix::service(mounted.clone()))
                    .route("/hello", web::get().to(|| async { "hello from actix" }))
            })
            .workers(2)
            .bind("127.0.0.1:0")
            .unwrap();
            let addr = server.addrs()[0];
            let server = server.run();
            tx.send((addr, engine, server.handle())).unwrap();
            server.await
        })
    });
    rx.recv_timeout(Duration::from_secs(10)).unwrap()
}

async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .expect("within 10 s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mounted_in_actix_next_to_other_routes() {
    let (addr, engine, server) = start();
    let r = http(addr, "GET", "/hello", &[], b"").await;
    assert_eq!(&r.body()[..], b"hello from actix");
    let r = http(addr, "GET", "/missing", &[], b"").await;
    assert_eq!(r.status(), 404);
    let r = http(addr, "GET", "/engine.io/?EIO=4&transport=polling", &[], b"").await;
    assert_eq!(r.status(), 200);
    assert!(r.body().starts_with(b"0{"));
    // Refusals and protocol errors are the server's, with their explanation.
    let r = http(
        addr,
        "GET",
        "/engine.io/?EIO=4&transport=polling&token=bad",
        &[],
        b"",
    )
    .await;
    assert_eq!(r.status(), 401);
    let r = http(
        addr,
        "GET",
        "/engine.io/?EIO=4&transport=carrier-pigeon",
        &[],
        b"",
    )
    .await;
    assert_eq!(r.status(), 400);
    assert!(String::from_utf8_lossy(r.body()).contains("\"code\":0"));

    // A WebSocket session through actix's upgrade.
    let mut ws = ws_connect(addr, "").await;
    next(&mut ws).await.unwrap(); // open packet
    assert_eq!(
        next_data(&mut ws).await,
        Some(WsMessage::text("4peer Some(127.0.0.1)"))
    );
    ws.send(WsMessage::text("4via actix")).await.unwrap();
    assert_eq!(
        next_data(&mut ws).await,
        Some(WsMessage::text("4via actix"))
    );
    ws.send(WsMessage::binary(vec![1u8, 2, 3])).await.unwrap();
    assert_eq!(
        next_data(&mut ws).await,
        Some(WsMessage::binary(vec![1u8, 2, 3]))
    );

    // Our client: polling, then the upgrade to WebSocket; pings over a second.
    let mut client = within(engineio_tokio::connect(&format!("http://{addr}")))
        .await
        .unwrap();
    assert_eq!(
        within(client.recv()).await,
        Some(Message::from("peer Some(127.0.0.1)"))
    );
    assert_eq!(
        engine.count(),
        3,
        "the polling handshake, the WebSocket and the client"
    );
    loop {
        match within(client.next_event()).await {
            Some(ClientEvent::Upgraded) => break,
            Some(ClientEvent::Message(m)) => panic!("unexpected {m:?}"),
            Some(_) => {}
            None => panic!("closed before the upgrade"),
        }
    }
    assert_eq!(client.transport(), Some(Transport::WebSocket));
    tokio::time::sleep(Duration::from_millis(1200)).await;
    client.send("after the upgrade").unwrap();
    assert_eq!(
        within(client.recv()).await,
        Some(Message::from("after the upgrade"))
    );
    // The two sessions that answered no ping timed out; the client's answered them.
    assert_eq!(engine.count(), 1);

    // Polling only, with a POST larger than max_payload: 413 and the session ends.
    let mut config = ClientConfig::new(&format!("http://{addr}")).unwrap();
    config.transports = vec![Transport::Polling];
    let mut polling = within(engineio_tokio::connect_with(config)).await.unwrap();
    within(polling.recv()).await.unwrap();
    polling.send("x".repeat(100)).unwrap();
    assert_eq!(
        within(polling.recv()).await,
        Some(Message::from("x".repeat(100)))
    );
    let sid = polling.sid().unwrap();
    let r = http(
        addr,
        "POST",
        &format!("/engine.io/?EIO=4&transport=polling&sid={sid}"),
        &[("content-type", "text/plain")],
        &vec![b'4'; 20_000],
    )
    .await;
    assert_eq!(r.status(), 413);

    drop(client);
    drop(polling);
    within(server.stop(true)).await;
}
