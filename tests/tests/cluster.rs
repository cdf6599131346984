//! A cluster of real nodes (tokio and smol) over a real `redis-server`, on 127.0.0.1:
//! cluster-wide operations, forwarding of polling and WebSocket requests, a node killed,
//! Redis killed and restarted, a drain.
//!
//! These need Debian's redis-server; `scripts/cluster.sh` installs it and runs them with
//! `--include-ignored` (they are ignored in the plain workspace run, where it may be
//! missing).
#![allow(clippy::disallowed_methods, missing_docs)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use engineio_cluster::{ClusterError, ClusterEvent, NodeDownReason};
use engineio_hyper::server::{Config, ConnectRequest, Handler, Rejection, Socket};
use engineio_proto::{CloseReason, Message, Sid};
use engineio_redis::{ClusterNode, ClusterSendError};
use engineio_tests::binding::{SmolBinding, TokioBinding};
use engineio_tests::cluster::{Redis, node};
use engineio_tests::net::{self, WsMessage, http, next_data, sid_of, ws_connect};
use futures_util::SinkExt;

const NEEDS: &str = "needs redis-server: run scripts/cluster.sh";

#[derive(Clone, Default)]
struct Echo {
    closed: Arc<Mutex<Vec<(Sid, CloseReason)>>>,
}

impl Handler for Echo {
    type Data = ();

    async fn on_connect(&self, _: &ConnectRequest<'_>) -> Result<(), Rejection> {
        Ok(())
    }

    fn on_message(&self, socket: &Socket<()>, message: Message) {
        let _ = socket.send(message);
    }

    fn on_disconnect(&self, socket: &Socket<()>, reason: &CloseReason) {
        self.closed
            .lock()
            .unwrap()
            .push((socket.sid(), reason.clone()));
    }
}

async fn until_members<H: Handler, R: engineio_hyper::Runtime>(node: &ClusterNode<H, R>, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while node.members().len() != n {
        assert!(
            Instant::now() < deadline,
            "{} has members {:?}, wanted {n}",
            node.node(),
            node.members()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A WebSocket session opened directly on `addr`; its sid.
async fn ws_session(addr: SocketAddr) -> (net::Ws, Sid) {
    let mut ws = ws_connect(addr, "").await;
    let open = next_data(&mut ws).await.expect("open packet");
    let text = open.into_text().expect("text");
    let sid = sid_of(text.as_bytes());
    (ws, Sid::new(&sid).unwrap())
}

async fn expect_text(ws: &mut net::Ws, text: &str) {
    let got = next_data(ws).await;
    assert_eq!(got, Some(WsMessage::text(format!("4{text}"))));
}

fn config() -> Config {
    let mut c = Config::default();
    // Long enough that test clients which read only now and then keep their sessions.
    c.engine.ping_interval = Duration::from_secs(5);
    c.engine.ping_timeout = Duration::from_secs(5);
    c.shutdown_timeout = Duration::from_secs(3);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server: run scripts/cluster.sh"]
async fn operations_from_one_node_reach_every_node_exactly_once() {
    let _ = NEEDS;
    let redis = Redis::start();
    let (a, a_addr) = node::<TokioBinding, _>("a", Echo::default(), config(), &redis);
    let (b, b_addr) = node::<SmolBinding, _>("b", Echo::default(), config(), &redis);
    let (c, c_addr) = node::<TokioBinding, _>("c", Echo::default(), config(), &redis);
    for n in [&a, &c] {
        until_members(n, 2).await;
    }
    until_members(&b, 2).await;

    let (mut a1, a1_sid) = ws_session(a_addr).await;
    let (mut b1, b1_sid) = ws_session(b_addr).await;
    let (mut b2, b2_sid) = ws_session(b_addr).await;
    let (mut c1, c1_sid) = ws_session(c_addr).await;
    assert_eq!(b1_sid.node(), Some("b"));

    // send: local, to a smol node, to a tokio node.
    let published = a.counters().published;
    a.send(a1_sid, "local").await.unwrap();
    assert_eq!(
        a.counters().published,
        published,
        "a local sid never goes through Redis"
    );
    expect_text(&mut a1, "local").await;
    a.send(b1_sid, "to b").await.unwrap();
    expect_text(&mut b1, "to b").await;
    b.send(c1_sid, "from b to c").await.unwrap();
    expect_text(&mut c1, "from b to c").await;

    // broadcast with an exclusion: every other session gets it exactly once (the next
    // thing each receives after it is a marker sent to it alone).
    let report = a.broadcast("everyone", &[b2_sid]).await;
    assert_eq!((report.local, report.remote), (1, 2), "{report:?}");
    assert!(report.failed.is_empty());
    for (ws, sid) in [(&mut a1, a1_sid), (&mut b1, b1_sid), (&mut c1, c1_sid)] {
        expect_text(ws, "everyone").await;
        a.send(sid, "marker").await.unwrap();
        expect_text(ws, "marker").await;
    }
    a.send(b2_sid, "marker").await.unwrap();
    expect_text(&mut b2, "marker").await;

    assert_eq!(c.count().await.unwrap(), 4);
    let mut sids = b.sids().await.unwrap();
    sids.sort();
    let mut want = vec![a1_sid, b1_sid, b2_sid, c1_sid];
    want.sort();
    assert_eq!(sids, want);

    // close on another node.
    assert!(a.close(c1_sid).await.unwrap());
    assert_eq!(next_data(&mut c1).await, Some(WsMessage::text("1")));
    assert!(!a.close(c1_sid).await.unwrap());
    assert_eq!(
        a.send(c1_sid, "gone").await,
        Err(ClusterSendError::NotSent(
            engineio_cluster::NotSent::NoSession
        ))
    );

    // A sid of a node that does not exist fails at once.
    let stranger = Sid::routable(&"zz".parse().unwrap(), [1; 15]);
    let t = Instant::now();
    assert_eq!(
        a.send(stranger, "x").await,
        Err(ClusterSendError::Cluster(ClusterError::UnknownNode {
            node: "zz".into()
        }))
    );
    assert!(t.elapsed() < Duration::from_millis(100));
    let _ = b2.close(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server: run scripts/cluster.sh"]
async fn requests_for_another_nodes_session_are_forwarded_polling_and_websocket() {
    let redis = Redis::start();
    let (a, a_addr) = node::<TokioBinding, _>("a", Echo::default(), config(), &redis);
    let (b, b_addr) = node::<SmolBinding, _>("b", Echo::default(), config(), &redis);
    until_members(&a, 1).await;
    until_members(&b, 1).await;

    // A polling session opened on b, then used only through a: 200 round trips with no
    // "Session ID unknown".
    let open = http(
        b_addr,
        "GET",
        "/engine.io/?EIO=4&transport=polling",
        &[],
        b"",
    )
    .await;
    let sid = sid_of(open.body());
    assert!(sid.starts_with("b."), "{sid}");
    let path = format!("/engine.io/?EIO=4&transport=polling&sid={sid}");
    for i in 0..200 {
        let post = http(a_addr, "POST", &path, &[], format!("4m{i}").as_bytes()).await;
        assert_eq!(post.status(), 200, "POST {i}: {:?}", post.body());
        assert_eq!(post.body().as_ref(), b"ok");
        let get = http(a_addr, "GET", &path, &[], b"").await;
        assert_eq!(get.status(), 200, "GET {i}: {:?}", get.body());
        let body = String::from_utf8(get.body().to_vec()).unwrap();
        let packets: Vec<&str> = body.split('\u{1e}').collect();
        if packets.contains(&"2") {
            // A heartbeat ping: answer it (through a as well).
            let pong = http(a_addr, "POST", &path, &[], b"3").await;
            assert_eq!(pong.status(), 200);
        }
        assert!(
            packets.contains(&format!("4m{i}").as_str()),
            "{i}: {body:?}"
        );
    }

    // The upgrade of that session, through a: the WebSocket is tunnelled to b.
    let mut ws = ws_connect(a_addr, &format!("&sid={sid}")).await;
    ws.send(WsMessage::text("2probe")).await.unwrap();
    assert_eq!(next_data(&mut ws).await, Some(WsMessage::text("3probe")));
    ws.send(WsMessage::text("5")).await.unwrap();
    for i in 0..50 {
        ws.send(WsMessage::text(format!("4ws{i}"))).await.unwrap();
        assert_eq!(
            next_data(&mut ws).await,
            Some(WsMessage::text(format!("4ws{i}")))
        );
    }
    // b owns it: a cluster send from a reaches it through Redis and the tunnel.
    a.send(Sid::new(&sid).unwrap(), "pushed").await.unwrap();
    assert_eq!(next_data(&mut ws).await, Some(WsMessage::text("4pushed")));

    // A WebSocket-only session on b, opened through a, is a's (handshakes are not
    // forwarded): forwarding is only for sessions that exist elsewhere.
    let (_ws2, sid2) = ws_session(a_addr).await;
    assert_eq!(sid2.node(), Some("a"));

    // A request forwarded once is never forwarded again.
    let looped = http(a_addr, "GET", &path, &[("x-engineio-forwarded", "b")], b"").await;
    assert_eq!(looped.status(), 400);
    let _ = ws.close(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server: run scripts/cluster.sh"]
async fn a_killed_node_is_dropped_and_its_sessions_fail_fast_everywhere() {
    let redis = Redis::start();
    let (a, a_addr) = node::<TokioBinding, _>("a", Echo::default(), config(), &redis);
    let mut events = a.events();
    // c runs on a runtime of its own, so that it can be killed: dropping the runtime
    // stops its server, sessions and cluster driver at once, with no goodbye.
    let c_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (c, c_addr) = {
        let _guard = c_runtime.enter();
        node::<TokioBinding, _>("c", Echo::default(), config(), &redis)
    };
    until_members(&a, 1).await;
    let open = http(
        c_addr,
        "GET",
        "/engine.io/?EIO=4&transport=polling",
        &[],
        b"",
    )
    .await;
    let c_sid = Sid::new(&sid_of(open.body())).unwrap();
    drop(c);
    let killed = Instant::now();
    c_runtime.shutdown_background();

    // Dropped within node_timeout (1 s) plus a heartbeat.
    let deadline = killed + Duration::from_secs(3);
    let reason = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, events.recv()).await {
            Ok(Ok(ClusterEvent::NodeDown { node, reason, .. })) if node.as_str() == "c" => {
                break reason;
            }
            Ok(_) => continue,
            Err(_) => panic!("c was not dropped within 3 s"),
        }
    };
    assert_eq!(reason, NodeDownReason::Expired);
    assert!(
        killed.elapsed() <= Duration::from_millis(1500),
        "{:?}",
        killed.elapsed()
    );
    assert!(a.members().is_empty());

    // Its sessions fail at once, by cluster call and by HTTP through a.
    let t = Instant::now();
    assert_eq!(
        a.send(c_sid, "x").await,
        Err(ClusterSendError::Cluster(ClusterError::UnknownNode {
            node: "c".into()
        }))
    );
    let r = http(
        a_addr,
        "GET",
        &format!("/engine.io/?EIO=4&transport=polling&sid={c_sid}"),
        &[],
        b"",
    )
    .await;
    assert_eq!(r.status(), 400);
    assert!(String::from_utf8_lossy(r.body()).contains("\"code\":1"));
    assert!(t.elapsed() < Duration::from_millis(200));
    assert_eq!(a.count().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server: run scripts/cluster.sh"]
async fn redis_restart_is_reported_survived_and_recovered_from_by_itself() {
    let mut redis = Redis::start();
    let (a, _a_addr) = node::<TokioBinding, _>("a", Echo::default(), config(), &redis);
    let (b, b_addr) = node::<SmolBinding, _>("b", Echo::default(), config(), &redis);
    until_members(&a, 1).await;
    until_members(&b, 1).await;
    let (mut b1, b1_sid) = ws_session(b_addr).await;
    let mut events = a.events();

    redis.kill();
    let down = Instant::now();
    // The drop is noticed (the subscription ends) and reported.
    loop {
        match tokio::time::timeout(Duration::from_secs(3), events.recv()).await {
            Ok(Ok(ClusterEvent::BusDown { .. })) => break,
            Ok(_) => continue,
            Err(_) => panic!("no BusDown within 3 s of killing Redis"),
        }
    }
    assert!(!a.is_bus_up());
    // Operations fail with a typed error, at once; local ones still work; sessions live.
    let t = Instant::now();
    assert_eq!(
        a.send(b1_sid, "x").await,
        Err(ClusterSendError::Cluster(ClusterError::BusDown))
    );
    assert!(t.elapsed() < Duration::from_millis(100));
    let report = a.broadcast("nobody", &[]).await;
    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.failed[0].1, ClusterError::BusDown);
    b1.send(WsMessage::text("4still here")).await.unwrap();
    expect_text(&mut b1, "still here").await;

    // Redis is back (empty, as after a crash): the nodes reconnect by themselves.
    tokio::time::sleep(Duration::from_millis(500)).await;
    redis.restart();
    let outage = loop {
        match tokio::time::timeout(Duration::from_secs(5), events.recv()).await {
            Ok(Ok(ClusterEvent::BusUp { outage })) => break outage,
            Ok(_) => continue,
            Err(_) => panic!("the bus did not come back within 5 s"),
        }
    };
    assert!(outage.unwrap() >= Duration::from_millis(400), "{outage:?}");
    assert!(down.elapsed() < Duration::from_secs(5));
    until_members(&a, 1).await;
    until_members(&b, 1).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match a.send(b1_sid, "after").await {
            Ok(()) => break,
            Err(e) => assert!(Instant::now() < deadline, "still failing: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    expect_text(&mut b1, "after").await;
    let counters = a.counters();
    assert!(counters.bus_drops >= 1);
    assert!(counters.refused_bus_down >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server: run scripts/cluster.sh"]
async fn a_drained_node_closes_its_sessions_hands_handshakes_over_and_leaves_at_once() {
    let redis = Redis::start();
    let echo = Echo::default();
    let (a, a_addr) = node::<TokioBinding, _>("a", Echo::default(), config(), &redis);
    let (b, b_addr) = node::<SmolBinding, _>("b", echo.clone(), config(), &redis);
    until_members(&a, 1).await;
    until_members(&b, 1).await;
    let mut events = a.events();
    let mut sessions = Vec::new();
    for _ in 0..20 {
        sessions.push(ws_session(b_addr).await);
    }
    // A keep-alive connection to b that a balancer would reuse for new handshakes.
    let drain = tokio::spawn({
        let b = b.clone();
        async move { b.drain().await }
    });
    // During the drain, a handshake sent to b gets a session of a.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let open = http(
        b_addr,
        "GET",
        "/engine.io/?EIO=4&transport=polling",
        &[],
        b"",
    )
    .await;
    if open.status() == 200 {
        assert!(sid_of(open.body()).starts_with("a."), "{:?}", open.body());
    } else {
        // b's listener may already have stopped accepting: then the balancer retries
        // elsewhere. A refusal must still be the protocol's 503, not a hang.
        assert_eq!(open.status(), 503);
    }
    for (ws, _) in &mut sessions {
        // Going away (1001), with no close packet: clients reconnect.
        match next_data(ws).await {
            Some(WsMessage::Close(Some(frame))) => assert_eq!(u16::from(frame.code), 1001),
            other => panic!("expected the 1001 close, got {other:?}"),
        }
    }
    let report = tokio::time::timeout(Duration::from_secs(10), drain)
        .await
        .expect("drain in time")
        .unwrap();
    assert_eq!(report.closed, 20, "{report:?}");
    assert_eq!(report.still_open, 0);
    assert!(report.left);
    let closed = echo.closed.lock().unwrap().clone();
    assert_eq!(closed.len(), 20);
    assert!(
        closed
            .iter()
            .all(|(_, r)| *r == CloseReason::ServerShutdown)
    );
    // a learned it at once (a goodbye, not a timeout).
    loop {
        match tokio::time::timeout(Duration::from_millis(500), events.recv()).await {
            Ok(Ok(ClusterEvent::NodeDown { node, reason, .. })) if node.as_str() == "b" => {
                assert_eq!(reason, NodeDownReason::Left);
                break;
            }
            Ok(_) => continue,
            Err(_) => panic!("a did not hear b leave"),
        }
    }
    assert!(a.members().is_empty());
    let _ = a_addr;
}
