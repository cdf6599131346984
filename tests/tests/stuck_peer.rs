//! A peer that stops reading must not pin its session (issue 10, item 1): the heartbeat
//! ends the session on time, its sid is answered 400 at once, and the server's socket is
//! closed within a bounded time even though the peer never reads again. Both bindings,
//! over real loopback sockets.
#![allow(missing_docs, clippy::disallowed_methods)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use engineio_hyper::server::{Config, ConnectRequest, EngineIo, Handler, Rejection, Socket};
use engineio_proto::{CloseReason, Message};
use engineio_tests::binding::{Binding, SmolBinding, TokioBinding, engine};
use engineio_tests::net::{WsMessage, http, tcp_state};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpSocket;
use tokio::time::timeout;

#[derive(Default)]
struct Recorder {
    disconnects: Mutex<Vec<CloseReason>>,
}

struct Echo(Arc<Recorder>);

impl Handler for Echo {
    type Data = ();

    async fn on_connect(&self, _request: &ConnectRequest<'_>) -> Result<(), Rejection> {
        Ok(())
    }

    fn on_message(&self, socket: &Socket<()>, message: Message) {
        let _ = socket.send(message);
    }

    fn on_disconnect(&self, _socket: &Socket<()>, reason: &CloseReason) {
        self.0.disconnects.lock().unwrap().push(reason.clone());
    }
}

fn config() -> Config {
    let mut c = Config::default();
    c.engine.ping_interval = Duration::from_millis(300);
    c.engine.ping_timeout = Duration::from_millis(200);
    c
}

/// Opens a WebSocket session from a socket with a small receive buffer, floods it with
/// echo requests and never reads again. Returns the client's local address and the sid.
async fn flood_without_reading(
    addr: SocketAddr,
) -> (
    SocketAddr,
    String,
    tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
) {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let local = stream.local_addr().unwrap();
    let url = format!("ws://{addr}/engine.io/?EIO=4&transport=websocket");
    let (mut ws, _) = timeout(
        Duration::from_secs(5),
        tokio_tungstenite::client_async(url, stream),
    )
    .await
    .unwrap()
    .unwrap();
    let open = timeout(Duration::from_secs(5), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let open = open.into_text().unwrap();
    let v: serde_json::Value = serde_json::from_str(&open[1..]).unwrap();
    let sid = v["sid"].as_str().unwrap().to_owned();
    // 10 KB echo requests until the server stops taking them (it stops reading once the
    // echoes it cannot write pile up), at most 40 MB.
    let request = WsMessage::text(format!("4{}", "x".repeat(10_000)));
    for _ in 0..4000 {
        match timeout(Duration::from_millis(300), ws.send(request.clone())).await {
            Ok(Ok(())) => {}
            _ => break,
        }
    }
    (local, sid, ws)
}

async fn a_peer_that_never_reads_is_closed_on_time<B: Binding>() {
    let echo = Arc::new(Recorder::default());
    let engine: EngineIo<Echo, B::Runtime> = engine::<B, _>(Echo(echo.clone()), config());
    let addr = B::serve(engine.clone());
    let (client, sid, _ws) = flood_without_reading(addr).await;
    let flooded = Instant::now();

    // The heartbeat (300 ms + 200 ms) ends the session whatever the peer does.
    let deadline = flooded + Duration::from_secs(3);
    while engine.count() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(engine.count(), 0, "the session is still live");
    assert_eq!(
        echo.disconnects.lock().unwrap().as_slice(),
        [CloseReason::PingTimeout],
        "the handler is told why"
    );

    // Its sid is answered 400 at once, not left hanging.
    let started = Instant::now();
    let poll = format!("/engine.io/?EIO=4&transport=polling&sid={sid}");
    let r = timeout(Duration::from_secs(2), http(addr, "GET", &poll, &[], b""))
        .await
        .expect("an answer for a closed session's sid");
    assert_eq!(r.status(), 400);
    assert!(started.elapsed() < Duration::from_secs(2));

    // And the server lets go of the socket within a bounded time, though the peer still
    // does not read (the server's end is no longer ESTABLISHED).
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut state = tcp_state(addr, client);
    while state == Some(1) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        state = tcp_state(addr, client);
    }
    assert_ne!(
        state,
        Some(1),
        "the server's socket to a peer that never reads is still established"
    );
}

/// A polling client that asks for a large answer and never reads it: the server drops
/// the connection after `write_timeout` (hyper alone would hold it for ever), and the
/// session ends by its heartbeat.
async fn a_poll_whose_answer_is_never_read_is_dropped_on_time<B: Binding>() {
    use tokio::io::AsyncWriteExt;
    let echo = Arc::new(Recorder::default());
    let mut c = config();
    c.engine.write_timeout = Duration::from_secs(1);
    c.http_compression = false;
    let engine: EngineIo<Echo, B::Runtime> = engine::<B, _>(Echo(echo.clone()), c);
    let addr = B::serve(engine.clone());
    let r = http(addr, "GET", "/engine.io/?EIO=4&transport=polling", &[], b"").await;
    let sid = engineio_tests::net::sid_of(r.body());
    let socket = engine.socket(sid.parse().unwrap()).unwrap();
    // 40 MB waiting for the next GET.
    for _ in 0..400 {
        socket.send("x".repeat(100_000)).unwrap();
    }
    let tcp = TcpSocket::new_v4().unwrap();
    tcp.set_recv_buffer_size(4096).unwrap();
    let mut stream = tcp.connect(addr).await.unwrap();
    let client = stream.local_addr().unwrap();
    let request = format!(
        "GET /engine.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nhost: {addr}\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    // Never read. Within the write timeout (plus scheduling slack) the server's end of
    // the connection is gone.
    let deadline = Instant::now() + Duration::from_secs(8);
    let mut state = tcp_state(addr, client);
    while state == Some(1) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        state = tcp_state(addr, client);
    }
    assert_ne!(
        state,
        Some(1),
        "the server still holds a connection whose answer is never read"
    );
    // The session, whose pong never came, has ended meanwhile.
    let deadline = Instant::now() + Duration::from_secs(3);
    while engine.count() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(engine.count(), 0);
    drop(stream);
}

macro_rules! for_each_binding {
    ($($name:ident),* $(,)?) => {
        mod tokio_binding {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name::<super::TokioBinding>().await
                }
            )*
        }
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
    a_peer_that_never_reads_is_closed_on_time,
    a_poll_whose_answer_is_never_read_is_dropped_on_time,
);
