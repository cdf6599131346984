//! Both server bindings (engineio-tokio and engineio-smol) over real loopback sockets:
//! a tokio-tungstenite client and a hyper client talk to a server bound on 127.0.0.1:0.
//! Every test body is generic over the binding and instantiated for each (see the
//! macro at the end), so the two bindings pass exactly the same checks.
#![allow(missing_docs, clippy::disallowed_methods)]

use std::io::Read as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use engineio_hyper::server::{Config, ConnectRequest, EngineIo, Handler, Rejection, Socket};
use engineio_proto::server::AllowedOrigins;
use engineio_proto::static_files::StaticFiles;
use engineio_proto::{CloseReason, Message, Transport};
use engineio_tests::binding::{Binding, SmolBinding, TokioBinding, engine};
use engineio_tests::net::{WAIT, WsMessage, http, next, next_data, sid_of, wait_until, ws_connect};
use futures_util::{SinkExt, StreamExt};
use http::StatusCode;
use tokio::time::timeout;

#[derive(Default)]
struct Recorder {
    disconnects: Mutex<Vec<(String, CloseReason)>>,
    upgrades: Mutex<Vec<String>>,
}

struct Echo(Arc<Recorder>);

impl Handler for Echo {
    type Data = String;

    async fn on_connect(&self, request: &ConnectRequest<'_>) -> Result<String, Rejection> {
        match request.query("token").as_deref() {
            Some("bad") => Err(Rejection::new(StatusCode::UNAUTHORIZED, "bad token")),
            other => Ok(other.unwrap_or("anonymous").to_owned()),
        }
    }

    fn on_message(&self, socket: &Socket<String>, message: Message) {
        match message.as_text() {
            Some("__close__") => socket.close(),
            Some("__whoami__") => {
                let _ = socket.send(format!(
                    "{}@{:?}",
                    socket.data(),
                    socket.peer_addr().map(|a| a.ip())
                ));
            }
            _ => {
                let _ = socket.send(message);
            }
        }
    }

    fn on_upgrade(&self, socket: &Socket<String>) {
        self.0
            .upgrades
            .lock()
            .unwrap()
            .push(socket.sid().to_string());
    }

    fn on_disconnect(&self, socket: &Socket<String>, reason: &CloseReason) {
        self.0
            .disconnects
            .lock()
            .unwrap()
            .push((socket.sid().to_string(), reason.clone()));
    }
}

fn test_config() -> Config {
    let mut c = Config::default();
    c.engine.ping_interval = Duration::from_millis(300);
    c.engine.ping_timeout = Duration::from_millis(200);
    c.engine.cors.origins = AllowedOrigins::Any;
    c
}

async fn start<B: Binding>(
    config: Config,
) -> (
    std::net::SocketAddr,
    EngineIo<Echo, B::Runtime>,
    Arc<Recorder>,
) {
    let recorder = Arc::new(Recorder::default());
    let engine = engine::<B, _>(Echo(recorder.clone()), config);
    let addr = B::serve(engine.clone());
    (addr, engine, recorder)
}

async fn websocket_echo_of_text_and_binary<B: Binding>() {
    let (addr, engine, _) = start::<B>(test_config()).await;
    let mut ws = ws_connect(addr, "").await;
    let open = next(&mut ws).await.unwrap();
    assert!(open.to_text().unwrap().starts_with("0{\"sid\""));
    ws.send(WsMessage::text("4hello €")).await.unwrap();
    assert_eq!(next_data(&mut ws).await, Some(WsMessage::text("4hello €")));
    ws.send(WsMessage::binary(vec![0u8, 1, 2, 255]))
        .await
        .unwrap();
    assert_eq!(
        next_data(&mut ws).await,
        Some(WsMessage::binary(vec![0u8, 1, 2, 255]))
    );
    assert_eq!(engine.count(), 1);
    assert_eq!(engine.sockets()[0].transport(), Transport::WebSocket);
}

async fn heartbeat_keeps_a_websocket_session_alive_and_silence_ends_it<B: Binding>() {
    // A pong is due ping_timeout after its ping was due, however late the ping went out:
    // leave a loaded machine (the whole suite runs in parallel) room to answer.
    let mut config = test_config();
    config.engine.ping_timeout = Duration::from_millis(800);
    let (addr, engine, recorder) = start::<B>(config).await;
    let mut ws = ws_connect(addr, "").await;
    next(&mut ws).await.unwrap();
    // Answer pings for a while.
    let until = tokio::time::Instant::now() + Duration::from_millis(1200);
    let mut pings = 0;
    while tokio::time::Instant::now() < until {
        if let Ok(Some(Ok(m))) = timeout(Duration::from_millis(50), ws.next()).await
            && m == WsMessage::text("2")
        {
            pings += 1;
            ws.send(WsMessage::text("3")).await.unwrap();
        }
    }
    assert!(pings >= 3, "{pings} pings");
    assert_eq!(engine.count(), 1);
    // Stop answering: closed by ping timeout.
    let mut closed = false;
    for _ in 0..100 {
        match timeout(WAIT, ws.next()).await.unwrap() {
            Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => {
                closed = true;
                break;
            }
            _ => {}
        }
    }
    assert!(closed);
    wait_until(|| engine.count() == 0).await;
    assert_eq!(
        recorder.disconnects.lock().unwrap()[0].1,
        CloseReason::PingTimeout
    );
}

async fn polling_round_trip_and_upgrade_over_real_sockets<B: Binding>() {
    let (addr, engine, recorder) = start::<B>(test_config()).await;
    let r = http(
        addr,
        "GET",
        "/engine.io/?EIO=4&transport=polling&token=ann",
        &[],
        b"",
    )
    .await;
    assert_eq!(r.status(), 200);
    let sid = sid_of(r.body());
    let poll = format!("/engine.io/?EIO=4&transport=polling&sid={sid}");
    let r = http(addr, "POST", &poll, &[], b"4__whoami__\x1e4second").await;
    assert_eq!(&r.body()[..], b"ok");
    let r = http(addr, "GET", &poll, &[], b"").await;
    assert_eq!(&r.body()[..], b"4ann@Some(127.0.0.1)\x1e4second");
    // Upgrade while a GET is parked.
    let parked = tokio::spawn(async move { http(addr, "GET", &poll, &[], b"").await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut ws = ws_connect(addr, &format!("&sid={sid}")).await;
    ws.send(WsMessage::text("2probe")).await.unwrap();
    assert_eq!(next(&mut ws).await, Some(WsMessage::text("3probe")));
    let released = timeout(WAIT, parked).await.unwrap().unwrap();
    assert_eq!(&released.body()[..], b"6");
    ws.send(WsMessage::text("5")).await.unwrap();
    ws.send(WsMessage::text("4after")).await.unwrap();
    assert_eq!(next_data(&mut ws).await, Some(WsMessage::text("4after")));
    wait_until(|| recorder.upgrades.lock().unwrap().len() == 1).await;
    assert_eq!(
        engine.socket(sid.parse().unwrap()).unwrap().transport(),
        Transport::WebSocket
    );
    // Polling is refused now.
    let r = http(
        addr,
        "GET",
        &format!("/engine.io/?EIO=4&transport=polling&sid={sid}"),
        &[],
        b"",
    )
    .await;
    assert_eq!(r.status(), 400);
}

async fn server_close_reaches_the_client_and_the_handler<B: Binding>() {
    let (addr, engine, recorder) = start::<B>(test_config()).await;
    let mut ws = ws_connect(addr, "").await;
    next(&mut ws).await.unwrap();
    ws.send(WsMessage::text("4__close__")).await.unwrap();
    assert_eq!(next_data(&mut ws).await, Some(WsMessage::text("1")));
    match next(&mut ws).await {
        Some(WsMessage::Close(Some(frame))) => assert_eq!(u16::from(frame.code), 1000),
        other => panic!("{other:?}"),
    }
    wait_until(|| engine.count() == 0).await;
    assert_eq!(
        recorder.disconnects.lock().unwrap()[0].1,
        CloseReason::ServerClose
    );
}

async fn oversized_websocket_message_gets_1009<B: Binding>() {
    let mut config = test_config();
    config.engine.max_payload = 1000;
    let (addr, engine, recorder) = start::<B>(config).await;
    for size in [1001usize, 50_000] {
        let mut ws = ws_connect(addr, "").await;
        next(&mut ws).await.unwrap();
        ws.send(WsMessage::binary(vec![7u8; size])).await.unwrap();
        match next_data(&mut ws).await {
            Some(WsMessage::Close(Some(frame))) => {
                assert_eq!(u16::from(frame.code), 1009, "size {size}")
            }
            other => panic!("size {size}: {other:?}"),
        }
    }
    wait_until(|| engine.count() == 0).await;
    let reasons = recorder.disconnects.lock().unwrap();
    assert!(
        reasons
            .iter()
            .all(|(_, r)| matches!(r, CloseReason::PayloadTooLarge { limit: 1000, .. })),
        "{reasons:?}"
    );
}

async fn rejection_and_protocol_errors_are_http_answers<B: Binding>() {
    let (addr, engine, _) = start::<B>(test_config()).await;
    let r = http(
        addr,
        "GET",
        "/engine.io/?EIO=4&transport=polling&token=bad",
        &[],
        b"",
    )
    .await;
    assert_eq!(r.status(), 401);
    assert_eq!(&r.body()[..], br#"{"code":4,"message":"bad token"}"#);
    let r = http(addr, "GET", "/engine.io/?EIO=3&transport=polling", &[], b"").await;
    assert_eq!(r.status(), 400);
    let r = http(
        addr,
        "GET",
        "/engine.io/?EIO=4&transport=polling&sid=nope",
        &[],
        b"",
    )
    .await;
    assert_eq!(r.status(), 400);
    let r = http(addr, "GET", "/elsewhere", &[], b"").await;
    assert_eq!(r.status(), 404);
    assert_eq!(engine.count(), 0);
}

async fn polling_responses_are_compressed_above_the_threshold<B: Binding>() {
    let (addr, _engine, _) = start::<B>(test_config()).await;
    let r = http(addr, "GET", "/engine.io/?EIO=4&transport=polling", &[], b"").await;
    let sid = sid_of(r.body());
    let poll = format!("/engine.io/?EIO=4&transport=polling&sid={sid}");
    let big = format!("4{}", "x".repeat(5000));
    http(addr, "POST", &poll, &[], big.as_bytes()).await;
    let r = http(addr, "GET", &poll, &[("accept-encoding", "gzip")], b"").await;
    assert_eq!(r.headers()["content-encoding"], "gzip");
    assert!(r.body().len() < 1000);
    let mut out = String::new();
    flate2::read::GzDecoder::new(&r.body()[..])
        .read_to_string(&mut out)
        .unwrap();
    assert_eq!(out, big);
}

async fn static_files_are_served_without_escaping_their_folder<B: Binding>() {
    let dir = std::env::temp_dir().join(format!("eio-static-{}-{}", B::NAME, std::process::id()));
    let www = dir.join("www");
    std::fs::create_dir_all(www.join("sub")).unwrap();
    std::fs::write(www.join("index.html"), "<h1>hi</h1>").unwrap();
    std::fs::write(www.join("sub/app.js"), "let x = 1;").unwrap();
    std::fs::write(dir.join("secret.txt"), "secret").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(dir.join("secret.txt"), www.join("link.txt")).unwrap();
    let mut config = test_config();
    config.static_files = StaticFiles::new().dir("/", &www);
    let (addr, _engine, _) = start::<B>(config).await;
    let r = http(addr, "GET", "/", &[], b"").await;
    assert_eq!(
        (r.status(), &r.body()[..]),
        (StatusCode::OK, &b"<h1>hi</h1>"[..])
    );
    assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
    let r = http(addr, "GET", "/sub/app.js", &[], b"").await;
    assert_eq!(
        r.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    for bad in [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/sub/..%2f..%2fsecret.txt",
        "/link.txt",
        "/missing",
    ] {
        let r = http(addr, "GET", bad, &[], b"").await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{bad}");
        assert!(!r.body().starts_with(b"secret"), "{bad}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

async fn shutdown_closes_every_session<B: Binding>() {
    let mut config = test_config();
    config.shutdown_timeout = Duration::from_millis(500);
    let (addr, engine, recorder) = start::<B>(config).await;
    let mut sockets = Vec::new();
    for _ in 0..5 {
        let mut ws = ws_connect(addr, "").await;
        next(&mut ws).await.unwrap();
        sockets.push(ws);
    }
    let r = http(addr, "GET", "/engine.io/?EIO=4&transport=polling", &[], b"").await;
    assert_eq!(r.status(), 200);
    assert_eq!(engine.count(), 6);
    let left = timeout(WAIT, engine.shutdown()).await.unwrap();
    assert_eq!(
        left, 1,
        "the polling session waits for a GET to carry its close"
    );
    for mut ws in sockets {
        loop {
            match next(&mut ws).await {
                Some(WsMessage::Close(Some(frame))) => {
                    assert_eq!(u16::from(frame.code), 1001);
                    break;
                }
                Some(_) => continue,
                None => panic!("closed without a close frame"),
            }
        }
    }
    let reasons = recorder.disconnects.lock().unwrap();
    assert_eq!(
        reasons
            .iter()
            .filter(|(_, r)| *r == CloseReason::ServerShutdown)
            .count(),
        5
    );
}

macro_rules! for_each_binding {
    ($($name:ident),* $(,)?) => {
        /// The tests on engineio-tokio.
        mod tokio_binding {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name::<super::TokioBinding>().await
                }
            )*
        }
        /// The same tests on engineio-smol.
        mod smol_binding {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name::<super::SmolBinding>().await
                }
            )*
        }
    };
}

for_each_binding!(
    websocket_echo_of_text_and_binary,
    heartbeat_keeps_a_websocket_session_alive_and_silence_ends_it,
    polling_round_trip_and_upgrade_over_real_sockets,
    server_close_reaches_the_client_and_the_handler,
    oversized_websocket_message_gets_1009,
    rejection_and_protocol_errors_are_http_answers,
    polling_responses_are_compressed_above_the_threshold,
    static_files_are_served_without_escaping_their_folder,
    shutdown_closes_every_session,
);
