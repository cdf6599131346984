//! The server driver in virtual time: the real engineio-hyper driver and HTTP glue over
//! in-memory pipes, on a runtime whose clock only moves when the test says so
//! (`engineio_tests::virtual_rt`). Back-pressure, the write timeout, the linger after a
//! close, shutdown, dropped requests and the heartbeat, each in microseconds of real time
//! and deterministic.
#![allow(missing_docs, clippy::disallowed_methods)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use engineio_hyper::server::{Config, ConnectRequest, EngineIo, Handler, Rejection, Socket};
use engineio_proto::{CloseReason, Message, SendError, TransportError};
use engineio_tests::net::sid_of;
use engineio_tests::virtual_rt::{ManualClock, VirtualRuntime, connect, settle};
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;

#[derive(Default)]
struct Recorder {
    disconnects: Mutex<Vec<CloseReason>>,
}

struct Quiet(Arc<Recorder>);

impl Handler for Quiet {
    type Data = ();
    async fn on_connect(&self, _: &ConnectRequest<'_>) -> Result<(), Rejection> {
        Ok(())
    }
    fn on_message(&self, _: &Socket<()>, _: Message) {}
    fn on_disconnect(&self, _: &Socket<()>, reason: &CloseReason) {
        self.0.disconnects.lock().unwrap().push(reason.clone());
    }
}

struct Server {
    engine: EngineIo<Quiet, VirtualRuntime>,
    clock: ManualClock,
    recorder: Arc<Recorder>,
}

fn server(config: Config) -> Server {
    let clock = ManualClock::new();
    let recorder = Arc::new(Recorder::default());
    let runtime = VirtualRuntime {
        clock: clock.clone(),
    };
    let engine = EngineIo::new(runtime, Quiet(recorder.clone()), config).expect("config");
    Server {
        engine,
        clock,
        recorder,
    }
}

impl Server {
    fn reasons(&self) -> Vec<CloseReason> {
        self.recorder.disconnects.lock().unwrap().clone()
    }

    /// A WebSocket session over a pipe of `capacity` bytes; returns it after the open
    /// packet, with the sid.
    async fn websocket(&self, capacity: usize) -> (WebSocketStream<DuplexStream>, String) {
        let pipe = connect(&self.engine, capacity);
        let (mut ws, _) = tokio_tungstenite::client_async(
            "ws://localhost/engine.io/?EIO=4&transport=websocket",
            pipe,
        )
        .await
        .expect("handshake");
        let open = ws.next().await.expect("open").expect("open");
        let sid = sid_of(open.into_text().expect("text").as_bytes());
        (ws, sid)
    }

    /// One HTTP request on a fresh pipe: status and body.
    async fn http(&self, method: &str, path: &str, body: &[u8]) -> (u16, Bytes) {
        let pipe = connect(&self.engine, 64 * 1024);
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(pipe))
            .await
            .expect("http");
        tokio::spawn(conn);
        let request = http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost")
            .body(Full::new(Bytes::copy_from_slice(body)))
            .expect("request");
        let response = sender.send_request(request).await.expect("response");
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        (status, body)
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_peer_that_never_reads_fills_the_queue_then_times_out_and_is_dropped() {
    let s = server(Config::default());
    let (ws, sid) = s.websocket(8 * 1024).await;
    let socket = s.engine.sockets().pop().expect("the session");
    // The peer reads nothing more: the pipe, the WebSocket buffer and the session's
    // bounded queue fill, and then `send` pushes back, handing the message back.
    let mut sent = 0;
    let refused = loop {
        match socket.send(vec![7u8; 1024]) {
            Ok(()) => sent += 1,
            Err(e) => break e,
        }
        if sent % 64 == 0 {
            settle().await;
        }
        assert!(sent < 10_000, "send never pushed back");
    };
    assert!(
        matches!(refused, SendError::QueueFull { limit: 1024, .. }),
        "{refused:?}"
    );
    assert!(
        sent <= 1024 + 200,
        "{sent} messages taken before the push-back"
    );
    // Nothing was taken for write_timeout (5 s): the session ends on its own.
    s.clock.advance(Duration::from_millis(4_999)).await;
    assert_eq!(s.engine.count(), 1);
    s.clock.advance(Duration::from_millis(1)).await;
    assert_eq!(s.engine.count(), 0);
    assert_eq!(s.reasons(), [CloseReason::WriteTimeout]);
    // Its sid is answered at once.
    let (status, _) = s
        .http(
            "GET",
            &format!("/engine.io/?EIO=4&transport=polling&sid={sid}"),
            b"",
        )
        .await;
    assert_eq!(status, 400);
    // write_timeout after the close, the socket is dropped: the peer, reading at last,
    // finds what was buffered and then the end of the stream.
    s.clock.advance(Duration::from_secs(5)).await;
    assert!(s.engine.socket(sid.parse().unwrap()).is_none());
    let mut pipe = ws.into_inner();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0usize;
    loop {
        let n = pipe.read(&mut buf).await.expect("read");
        if n == 0 {
            break;
        }
        total += n;
        assert!(total < 4 << 20, "the stream does not end");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_server_close_to_a_peer_that_never_reads_does_not_wait_for_it() {
    let s = server(Config::default());
    let (ws, sid) = s.websocket(1024).await;
    let socket = s.engine.sockets().pop().expect("the session");
    for _ in 0..8 {
        let _ = socket.send(vec![1u8; 4096]);
    }
    settle().await;
    socket.close();
    settle().await;
    // The session has ended for the application at once.
    assert_eq!(s.reasons(), [CloseReason::ServerClose]);
    assert_eq!(s.engine.count(), 0);
    // Its record (and socket) are kept write_timeout, then released.
    s.clock.advance(Duration::from_millis(4_999)).await;
    let (status, _) = s
        .http(
            "GET",
            &format!("/engine.io/?EIO=4&transport=polling&sid={sid}"),
            b"",
        )
        .await;
    assert_eq!(status, 400);
    s.clock.advance(Duration::from_millis(1)).await;
    let mut pipe = ws.into_inner();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0usize;
    while let Ok(n) = pipe.read(&mut buf).await {
        if n == 0 {
            break;
        }
        total += n;
        assert!(total < 4 << 20, "the stream does not end");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn the_heartbeat_runs_in_virtual_time() {
    let s = server(Config::default());
    let (mut ws, _) = s.websocket(64 * 1024).await;
    for round in 1..=4 {
        s.clock.advance(Duration::from_secs(25)).await;
        let ping = ws.next().await.expect("ping").expect("ping");
        assert_eq!(ping, WsMessage::text("2"), "round {round}");
        ws.send(WsMessage::text("3")).await.expect("pong");
        settle().await;
        assert_eq!(s.engine.count(), 1);
    }
    // Quiet from now on: 25 s to the ping, 20 s to the timeout.
    s.clock.advance(Duration::from_secs(44)).await;
    assert_eq!(s.engine.count(), 1);
    s.clock.advance(Duration::from_secs(1)).await;
    assert_eq!(s.engine.count(), 0);
    assert_eq!(s.reasons(), [CloseReason::PingTimeout]);
}

#[tokio::test(flavor = "current_thread")]
async fn shutdown_closes_every_session_in_virtual_time() {
    let s = server(Config::default());
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(s.websocket(64 * 1024).await.0);
    }
    let engine = s.engine.clone();
    let shutdown = tokio::spawn(async move { engine.shutdown().await });
    settle().await;
    // New sessions are refused at once, with the protocol's answer.
    let (status, body) = s
        .http("GET", "/engine.io/?EIO=4&transport=polling", b"")
        .await;
    assert_eq!(status, 503, "{body:?}");
    for mut ws in clients {
        loop {
            match ws.next().await {
                Some(Ok(WsMessage::Close(Some(frame)))) => {
                    assert_eq!(u16::from(frame.code), 1001);
                    break;
                }
                Some(Ok(_)) => continue,
                other => panic!("no close frame: {other:?}"),
            }
        }
    }
    // shutdown() waits on the virtual clock too.
    s.clock.advance(Duration::from_millis(50)).await;
    assert_eq!(shutdown.await.expect("shutdown"), 0);
    assert_eq!(s.reasons(), vec![CloseReason::ServerShutdown; 3]);
}

#[tokio::test(flavor = "current_thread")]
async fn a_parked_get_dropped_by_its_client_ends_the_session() {
    let s = server(Config::default());
    let (status, body) = s
        .http("GET", "/engine.io/?EIO=4&transport=polling", b"")
        .await;
    assert_eq!(status, 200);
    let sid = sid_of(&body);
    let mut pipe = connect(&s.engine, 64 * 1024);
    pipe.write_all(
        format!("GET /engine.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nhost: x\r\n\r\n")
            .as_bytes(),
    )
    .await
    .expect("write");
    settle().await;
    assert_eq!(s.engine.count(), 1, "the GET is parked");
    drop(pipe);
    settle().await;
    assert_eq!(s.engine.count(), 0);
    assert!(
        matches!(
            s.reasons()[..],
            [CloseReason::TransportError(TransportError::Aborted(_))]
        ),
        "{:?}",
        s.reasons()
    );
}
