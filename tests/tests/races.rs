//! Timing and ordering over real sockets, on both bindings, repeated many times while the
//! machine is kept busy (issue 11, items 2 and 3):
//!
//! - a poll that arrives at or after handshake + pingInterval + pingTimeout without a pong
//!   finds the session closed (400);
//! - after `2probe` and `5` on the WebSocket, a polling GET gets 400 (the session reads
//!   its WebSocket before judging the GET);
//! - a GET and a POST `1` sent at the same moment on two connections: the GET (sent
//!   first) gets `6`, and the next GET 400.
#![allow(missing_docs, clippy::disallowed_methods)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use engineio_hyper::server::{Config, ConnectRequest, Handler, Rejection, Socket};
use engineio_proto::Message;
use engineio_tests::binding::{Binding, SmolBinding, TokioBinding, engine};
use engineio_tests::net::{WsMessage, next, sid_of, ws_connect};
use futures_util::SinkExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// Rounds of each scenario, run `BATCH` at a time.
const ROUNDS: usize = 60;
const BATCH: usize = 10;

struct Echo;

impl Handler for Echo {
    type Data = ();
    async fn on_connect(&self, _: &ConnectRequest<'_>) -> Result<(), Rejection> {
        Ok(())
    }
    fn on_message(&self, socket: &Socket<()>, message: Message) {
        let _ = socket.send(message);
    }
}

/// Keeps both cores busy while it lives (the races must not depend on an idle machine).
struct Busy(Arc<AtomicBool>, Vec<std::thread::JoinHandle<()>>);

impl Busy {
    fn start() -> Busy {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..2)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut x = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        x = std::hint::black_box(
                            x.wrapping_mul(6364136223846793005).wrapping_add(1),
                        );
                    }
                })
            })
            .collect();
        Busy(stop, threads)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
        for t in self.1.drain(..) {
            let _ = t.join();
        }
    }
}

/// One HTTP/1.1 request written whole on `s`; the answer's status and body (the server
/// always sends a Content-Length).
async fn exchange(s: &mut TcpStream, request: &[u8]) -> (u16, Vec<u8>) {
    s.write_all(request).await.unwrap();
    read_response(s).await
}

async fn read_response(s: &mut TcpStream) -> (u16, Vec<u8>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = timeout(Duration::from_secs(10), s.read(&mut chunk))
            .await
            .expect("an answer in time")
            .unwrap();
        assert!(n > 0, "connection closed before the answer");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
    let status: u16 = head[9..12].parse().unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = timeout(Duration::from_secs(10), s.read(&mut chunk))
            .await
            .expect("a body in time")
            .unwrap();
        assert!(n > 0, "connection closed in the body");
        buf.extend_from_slice(&chunk[..n]);
    }
    (status, buf[head_end..head_end + len].to_vec())
}

fn get(addr: SocketAddr, sid: &str) -> Vec<u8> {
    format!("GET /engine.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nhost: {addr}\r\n\r\n")
        .into_bytes()
}

fn post(addr: SocketAddr, sid: &str, body: &str) -> Vec<u8> {
    format!(
        "POST /engine.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: text/plain;charset=UTF-8\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A polling handshake on `s`; the sid and the instant the client had the answer.
async fn handshake(addr: SocketAddr, s: &mut TcpStream) -> (String, Instant) {
    let request =
        format!("GET /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nhost: {addr}\r\n\r\n");
    let (status, body) = exchange(s, request.as_bytes()).await;
    let at = Instant::now();
    assert_eq!(status, 200);
    (sid_of(&body), at)
}

async fn batches<F, Fut>(f: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    for _ in 0..ROUNDS / BATCH {
        let rounds: Vec<_> = (0..BATCH).map(|_| tokio::spawn(f())).collect();
        for r in rounds {
            r.await.unwrap();
        }
    }
}

async fn a_poll_at_the_ping_deadline_finds_the_session_closed<B: Binding>() {
    let mut config = Config::default();
    config.engine.ping_interval = Duration::from_millis(150);
    config.engine.ping_timeout = Duration::from_millis(100);
    let engine = engine::<B, _>(Echo, config);
    let addr = B::serve(engine.clone());
    let _busy = Busy::start();
    batches(move || async move {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let (sid, t0) = handshake(addr, &mut s).await;
        // The server's handshake instant is before `t0`: a request sent at t0 + 250 ms
        // arrives at or after its deadline, however busy the server is.
        tokio::time::sleep_until((t0 + Duration::from_millis(250)).into()).await;
        let (status, body) = exchange(&mut s, &get(addr, &sid)).await;
        assert_eq!(
            status,
            400,
            "{}: a poll after the ping deadline got {status} {:?}",
            B::NAME,
            String::from_utf8_lossy(&body)
        );
    })
    .await;
}

async fn a_poll_after_2probe_and_5_finds_the_session_upgraded<B: Binding>() {
    let engine = engine::<B, _>(Echo, Config::default());
    let addr = B::serve(engine.clone());
    let _busy = Busy::start();
    batches(move || async move {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let (sid, _) = handshake(addr, &mut s).await;
        let mut ws = ws_connect(addr, &format!("&sid={sid}")).await;
        ws.send(WsMessage::text("2probe")).await.unwrap();
        assert_eq!(next(&mut ws).await, Some(WsMessage::text("3probe")));
        ws.send(WsMessage::text("5")).await.unwrap();
        // At once, on the HTTP connection that is already open.
        let (status, body) = exchange(&mut s, &get(addr, &sid)).await;
        assert_eq!(
            status,
            400,
            "{}: a poll after 5 got {status} {:?}",
            B::NAME,
            String::from_utf8_lossy(&body)
        );
    })
    .await;
}

async fn a_get_sent_before_a_close_post_gets_the_noop<B: Binding>() {
    let engine = engine::<B, _>(Echo, Config::default());
    let addr = B::serve(engine.clone());
    let _busy = Busy::start();
    batches(move || async move {
        let mut a = TcpStream::connect(addr).await.unwrap();
        let mut b = TcpStream::connect(addr).await.unwrap();
        let (sid, _) = handshake(addr, &mut a).await;
        // Both connections are open and idle; the GET goes out first, the POST at once
        // after it.
        a.write_all(&get(addr, &sid)).await.unwrap();
        b.write_all(&post(addr, &sid, "1")).await.unwrap();
        let (get_status, get_body) = read_response(&mut a).await;
        let (post_status, post_body) = read_response(&mut b).await;
        assert_eq!(
            (get_status, String::from_utf8_lossy(&get_body).into_owned()),
            (200, "6".to_owned()),
            "{}: the GET sent first",
            B::NAME
        );
        assert_eq!((post_status, &post_body[..]), (200, &b"ok"[..]));
        let (status, _) = exchange(&mut a, &get(addr, &sid)).await;
        assert_eq!(status, 400, "{}: a GET after the close", B::NAME);
    })
    .await;
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
    a_poll_at_the_ping_deadline_finds_the_session_closed,
    a_poll_after_2probe_and_5_finds_the_session_upgraded,
    a_get_sent_before_a_close_post_gets_the_noop,
);
