//! Cluster figures for docs/benchmarks.md (a benchmark, not a test): cross-node `send`
//! latency beside a local one, broadcast deliveries per second over Redis beside one node,
//! and the cost of a forwarded polling round trip beside a direct one. One process: a
//! `redis-server` it starts (and stops by PID), nodes on one tokio runtime, raw WebSocket
//! and HTTP/1 clients, everything on 127.0.0.1. Each pair is measured in alternating
//! rounds in the same sitting.
//!
//! ```sh
//! cargo run --release -p engineio-tests --bin cluster_bench [-- --rounds 3]
//! ```
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use engineio_hyper::server::{Config, ConnectRequest, Handler, Rejection, Socket};
use engineio_proto::{Message, Sid};
use engineio_tests::binding::TokioBinding;
use engineio_tests::cluster::{Redis, node};
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use tokio_tungstenite::tungstenite::Message as WsMessage;

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

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn config() -> Config {
    let mut c = Config::default();
    c.engine.max_buffered_packets = 100_000;
    c
}

async fn ws(addr: SocketAddr) -> (Ws, Sid) {
    let url = format!("ws://{addr}/engine.io/?EIO=4&transport=websocket");
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.expect("ws");
    let open = ws.next().await.expect("open").expect("open");
    let text = open.into_text().expect("text");
    let v: serde_json::Value = serde_json::from_str(&text[1..]).expect("json");
    (ws, Sid::new(v["sid"].as_str().expect("sid")).expect("sid"))
}

async fn next_text(ws: &mut Ws) -> String {
    loop {
        match ws.next().await {
            Some(Ok(WsMessage::Text(t))) if t.as_str() == "2" => {
                let _ = ws.send(WsMessage::text("3")).await;
            }
            Some(Ok(WsMessage::Text(t))) => return t.to_string(),
            Some(Ok(_)) => continue,
            other => panic!("websocket ended: {other:?}"),
        }
    }
}

fn quantile(v: &mut [Duration], q: f64) -> f64 {
    v.sort();
    let i = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1;
    v[i].as_secs_f64() * 1e6
}

fn summary(name: &str, v: &mut [Duration]) -> (f64, f64) {
    let (p50, p99) = (quantile(v, 0.5), quantile(v, 0.99));
    println!(
        "RESULT bench={name} n={} p50_us={p50:.0} p99_us={p99:.0}",
        v.len()
    );
    (p50, p99)
}

/// A kept-alive HTTP/1 connection.
struct Http {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    host: String,
}

impl Http {
    async fn connect(addr: SocketAddr) -> Http {
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let (sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .expect("handshake");
        tokio::spawn(conn);
        Http {
            sender,
            host: addr.to_string(),
        }
    }

    async fn request(&mut self, method: &str, path: &str, body: &'static [u8]) -> Bytes {
        std::future::poll_fn(|cx| self.sender.poll_ready(cx))
            .await
            .expect("ready");
        let req = http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.host)
            .body(Full::new(Bytes::from_static(body)))
            .expect("request");
        let resp = self.sender.send_request(req).await.expect("response");
        assert_eq!(resp.status(), 200);
        resp.into_body().collect().await.expect("body").to_bytes()
    }
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rounds = arg("--rounds", 3);
    let redis = Redis::start();
    let (a, a_addr) = node::<TokioBinding, _>("a", Echo, config(), &redis);
    let (b, b_addr) = node::<TokioBinding, _>("b", Echo, config(), &redis);
    let (c, c_addr) = node::<TokioBinding, _>("c", Echo, config(), &redis);
    // A node alone (its own Redis-less cluster of one is not needed: broadcast on a
    // cluster with no other member is local only).
    let solo_redis = Redis::start();
    let (solo, solo_addr) = node::<TokioBinding, _>("solo", Echo, config(), &solo_redis);
    for n in [&a, &b, &c] {
        while n.members().len() != 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    while !solo.is_bus_up() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // 1. send latency: from a's cluster handle to a client of a (local) and of b (Redis).
    let (mut wa, sa) = ws(a_addr).await;
    let (mut wb, sb) = ws(b_addr).await;
    let per_round = 2000;
    let mut local = Vec::new();
    let mut remote = Vec::new();
    for round in 0..rounds {
        for (target, out, wsock) in [(sa, &mut local, &mut wa), (sb, &mut remote, &mut wb)] {
            let _ = round;
            for _ in 0..per_round {
                let t = Instant::now();
                a.send(target, "ping-me").await.expect("send");
                let got = next_text(wsock).await;
                out.push(t.elapsed());
                assert_eq!(got, "4ping-me");
            }
        }
    }
    let (l50, l99) = summary("send_local", &mut local);
    let (r50, r99) = summary("send_cross_node_redis", &mut remote);

    // 2. broadcast deliveries per second: 100 clients on each of a, b, c (from a, over
    // Redis) against 300 clients on the solo node.
    let clients = arg("--clients", 100);
    let messages = arg("--messages", 500) as u64;
    async fn readers(addrs: &[SocketAddr], n: usize, counter: Arc<AtomicU64>) {
        for addr in addrs {
            for _ in 0..n {
                let (mut w, _) = ws(*addr).await;
                let counter = Arc::clone(&counter);
                tokio::spawn(async move {
                    while let Some(Ok(m)) = w.next().await {
                        match m {
                            WsMessage::Text(t) if t.as_str() == "2" => {
                                let _ = w.send(WsMessage::text("3")).await;
                            }
                            WsMessage::Text(_) => {
                                counter.fetch_add(1, Ordering::Relaxed);
                            }
                            _ => {}
                        }
                    }
                });
            }
        }
    }
    let cluster_count = Arc::new(AtomicU64::new(0));
    readers(
        &[a_addr, b_addr, c_addr],
        clients,
        Arc::clone(&cluster_count),
    )
    .await;
    let solo_count = Arc::new(AtomicU64::new(0));
    readers(&[solo_addr], clients * 3, Arc::clone(&solo_count)).await;
    // The two latency clients of a and b get the broadcasts too, uncounted.
    let cluster_sessions = (clients * 3) as u64;
    let solo_sessions = (clients * 3) as u64;
    tokio::spawn(async move {
        loop {
            let _ = next_text(&mut wa).await;
        }
    });
    tokio::spawn(async move {
        loop {
            let _ = next_text(&mut wb).await;
        }
    });
    let mut cluster_rates = Vec::new();
    let mut solo_rates = Vec::new();
    for _ in 0..rounds {
        for (who, counter, sessions, out) in [
            (&a, &cluster_count, cluster_sessions, &mut cluster_rates),
            (&solo, &solo_count, solo_sessions, &mut solo_rates),
        ] {
            let start_count = counter.load(Ordering::Relaxed);
            let want = start_count + sessions * messages;
            let t = Instant::now();
            let mut inflight = futures_util::stream::FuturesUnordered::new();
            for _ in 0..messages {
                inflight.push(who.broadcast("broadcast-payload-32-bytes-long!", &[]));
                if inflight.len() >= 16 {
                    let _ = inflight.next().await;
                }
            }
            while inflight.next().await.is_some() {}
            let deadline = Instant::now() + Duration::from_secs(60);
            while counter.load(Ordering::Relaxed) < want && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            let got = counter.load(Ordering::Relaxed) - start_count;
            out.push(got as f64 / t.elapsed().as_secs_f64());
            assert_eq!(got, sessions * messages, "every delivery arrived");
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|x, y| x.total_cmp(y));
        v[v.len() / 2]
    };
    let cr = median(&mut cluster_rates);
    let sr = median(&mut solo_rates);
    println!(
        "RESULT bench=broadcast_3_nodes_redis deliveries_per_s={cr:.0} rounds={cluster_rates:?}"
    );
    println!("RESULT bench=broadcast_1_node deliveries_per_s={sr:.0} rounds={solo_rates:?}");

    // 3. a polling round trip (POST a message, GET its echo) on a session of b, sent to b
    // directly and through a (forwarded).
    let mut direct_conn = Http::connect(b_addr).await;
    let open = direct_conn
        .request("GET", "/engine.io/?EIO=4&transport=polling", b"")
        .await;
    let v: serde_json::Value = serde_json::from_slice(&open[1..]).expect("json");
    let sid = v["sid"].as_str().expect("sid").to_owned();
    let path: &'static str =
        Box::leak(format!("/engine.io/?EIO=4&transport=polling&sid={sid}").into_boxed_str());
    let mut via_a = Http::connect(a_addr).await;
    let mut direct = Vec::new();
    let mut forwarded = Vec::new();
    for _ in 0..rounds {
        for (conn, out) in [
            (&mut direct_conn, &mut direct),
            (&mut via_a, &mut forwarded),
        ] {
            for _ in 0..1000 {
                let t = Instant::now();
                let ok = conn.request("POST", path, b"4round-trip").await;
                assert_eq!(&ok[..], b"ok");
                let body = conn.request("GET", path, b"").await;
                assert!(body.windows(10).any(|w| w == b"round-trip"), "{body:?}");
                out.push(t.elapsed());
            }
        }
    }
    let (d50, d99) = summary("poll_round_trip_direct", &mut direct);
    let (f50, f99) = summary("poll_round_trip_forwarded", &mut forwarded);
    let (fw, _) = a.engine().forwarded();

    println!();
    println!("| figure | one node / direct | cluster over Redis / forwarded | ratio |");
    println!("|---|---|---|---|");
    println!(
        "| `send` latency p50 | {l50:.0} µs | {r50:.0} µs | {:.1}x |",
        r50 / l50
    );
    println!(
        "| `send` latency p99 | {l99:.0} µs | {r99:.0} µs | {:.1}x |",
        r99 / l99
    );
    println!(
        "| broadcast deliveries/s ({} sessions) | {sr:.0} | {cr:.0} | {:.2}x |",
        solo_sessions,
        cr / sr
    );
    println!(
        "| polling round trip p50 | {d50:.0} µs | {f50:.0} µs | +{:.0} µs |",
        f50 - d50
    );
    println!(
        "| polling round trip p99 | {d99:.0} µs | {f99:.0} µs | +{:.0} µs |",
        f99 - d99
    );
    println!("({fw} requests forwarded by a; {rounds} alternating rounds)");
    let _ = (c, b);
}
