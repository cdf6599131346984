//! The metrics (issue 16, item 1), counted after scripted sessions over real sockets: on
//! both server bindings (each server's metrics registered under a recorder of its own,
//! with `metrics::with_local_recorder` around its creation, so that tests running side by
//! side do not mix), and for both client runtimes (the client registers when it connects,
//! under the global recorder: those tests take turns and compare before and after).
#![allow(missing_docs, clippy::disallowed_methods)]

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use engineio_hyper::Runtime;
use engineio_hyper::client::{Client, ClientConfig, OfflinePolicy, ReconnectConfig};
use engineio_hyper::metrics::*;
use engineio_hyper::server::{Config, ConnectRequest, EngineIo, Handler, Rejection, Socket};
use engineio_proto::client::ClientEvent;
use engineio_proto::server::AllowedOrigins;
use engineio_proto::{Message, SendError, Transport};
use engineio_tests::binding::{Binding, SmolBinding, TokioBinding, engine};
use engineio_tests::net::{WsMessage, http, next, next_data, sid_of, wait_until, ws_connect};
use engineio_tests::recorded::{Recorded, Total};
use futures_util::SinkExt;
use tokio::time::timeout;

struct Echo;

impl Handler for Echo {
    type Data = ();

    async fn on_connect(&self, request: &ConnectRequest<'_>) -> Result<(), Rejection> {
        if request.query("token").as_deref() == Some("bad") {
            return Err(Rejection::forbidden());
        }
        Ok(())
    }

    fn on_message(&self, socket: &Socket<()>, message: Message) {
        let _ = socket.send(message);
    }
}

/// A server whose metrics go to a recorder of its own.
fn recorded_engine<B: Binding>(config: Config) -> (EngineIo<Echo, B::Runtime>, Recorded) {
    let (recorder, recorded) = Recorded::new();
    let engine = metrics::with_local_recorder(&recorder, || engine::<B, _>(Echo, config));
    (engine, recorded)
}

const POLLING: [(&str, &str); 1] = [("transport", "polling")];
const WEBSOCKET: [(&str, &str); 1] = [("transport", "websocket")];

fn reason(r: &'static str) -> [(&'static str, &'static str); 1] {
    [("reason", r)]
}

async fn handshake(addr: SocketAddr, headers: &[(&str, &str)]) -> String {
    let r = http(
        addr,
        "GET",
        "/engine.io/?EIO=4&transport=polling",
        headers,
        b"",
    )
    .await;
    assert_eq!(r.status(), 200);
    sid_of(r.body())
}

// ------------------------------------------------------------------------ server

async fn rejections_and_refusals_are_counted_by_reason<B: Binding>() {
    let mut config = Config::default();
    config.engine.cors.origins = AllowedOrigins::list(["https://app.example"]);
    let (engine, m) = recorded_engine::<B>(config);
    let addr = B::serve(engine.clone());
    // Every series exists from the start, at 0.
    for r in REFUSAL_REASONS {
        let handshake = m.find(HANDSHAKES_REJECTED, &reason(r));
        assert_eq!(handshake.is_some(), r != "method_not_allowed", "{r}");
        let session = m.find(REQUESTS_REFUSED, &reason(r));
        let only_handshakes = ["bad_handshake_method", "shutting_down", "connect_hook"];
        assert_eq!(session.is_some(), !only_handshakes.contains(&r), "{r}");
        for total in [handshake, session].into_iter().flatten() {
            assert_eq!(total, Total::Counter(0), "{r}");
        }
    }
    for r in CLOSE_REASONS {
        assert_eq!(m.counter(SESSIONS_CLOSED, &reason(r)), 0, "{r}");
    }
    assert_eq!(m.gauge(SESSIONS_OPEN, &POLLING), 0.0);

    let ok = [("origin", "https://app.example")];
    let evil = [("origin", "https://evil.example")];
    let hs = "/engine.io/?EIO=4&transport=polling";
    assert_eq!(http(addr, "GET", hs, &evil, b"").await.status(), 400);
    let bad_token = format!("{hs}&token=bad");
    assert_eq!(http(addr, "GET", &bad_token, &ok, b"").await.status(), 403);
    let v3 = "/engine.io/?EIO=3&transport=polling";
    assert_eq!(http(addr, "GET", v3, &ok, b"").await.status(), 400);
    let ws_no_upgrade = "/engine.io/?EIO=4&transport=websocket";
    assert_eq!(
        http(addr, "GET", ws_no_upgrade, &ok, b"").await.status(),
        400
    );
    // A request of a session with a method polling does not use.
    let sid = handshake(addr, &ok).await;
    let poll = format!("{hs}&sid={sid}");
    assert_eq!(http(addr, "PUT", &poll, &ok, b"").await.status(), 400);

    assert_eq!(
        m.counter(HANDSHAKES_REJECTED, &reason("origin_not_allowed")),
        1
    );
    assert_eq!(m.counter(HANDSHAKES_REJECTED, &reason("connect_hook")), 1);
    assert_eq!(
        m.counter(HANDSHAKES_REJECTED, &reason("unsupported_version")),
        1
    );
    assert_eq!(
        m.counter(HANDSHAKES_REJECTED, &reason("websocket_without_upgrade")),
        1
    );
    assert_eq!(m.counter_sum(HANDSHAKES_REJECTED), 4, "{:?}", m.nonzero());
    assert_eq!(
        m.counter(REQUESTS_REFUSED, &reason("method_not_allowed")),
        1
    );
    assert_eq!(m.counter_sum(REQUESTS_REFUSED), 1, "{:?}", m.nonzero());
    assert_eq!(m.counter(HANDSHAKES, &POLLING), 1);
    assert_eq!(m.gauge(SESSIONS_OPEN, &POLLING), 1.0);

    // Shutdown: a WebSocket session closes with server_shutdown, the polling one too
    // (its close packet goes with the GET it is waiting for), and handshakes after it
    // are refused as shutting_down.
    let mut ws = ws_connect(addr, "").await;
    next(&mut ws).await.expect("open packet");
    assert_eq!(m.counter(HANDSHAKES, &WEBSOCKET), 1);
    let getter = tokio::spawn(async move {
        http(
            addr,
            "GET",
            &poll,
            &[("origin", "https://app.example")],
            b"",
        )
        .await
    });
    let live = engine.shutdown().await;
    assert_eq!(live, 0);
    assert_eq!(getter.await.unwrap().status(), 200);
    assert_eq!(m.counter(SESSIONS_CLOSED, &reason("server_shutdown")), 2);
    // The listener stopped accepting: a handshake handed to the server directly (as a
    // kept-alive connection or another server stack would).
    let late = http::Request::get(hs)
        .header("origin", "https://app.example")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    assert_eq!(engine.handle(late).await.status(), 503);
    assert_eq!(m.counter(HANDSHAKES_REJECTED, &reason("shutting_down")), 1);
    assert_eq!(m.gauge(SESSIONS_OPEN, &POLLING), 0.0);
    assert_eq!(m.gauge(SESSIONS_OPEN, &WEBSOCKET), 0.0);
}

async fn requests_for_unknown_sessions_are_counted_by_transport<B: Binding>() {
    // Two servers without stickiness between them: a session opened on `a`, its requests
    // sent to `b`.
    let (a, ma) = recorded_engine::<B>(Config::default());
    let (b, mb) = recorded_engine::<B>(Config::default());
    let (addr_a, addr_b) = (B::serve(a), B::serve(b));
    let sid = handshake(addr_a, &[]).await;
    let poll = format!("/engine.io/?EIO=4&transport=polling&sid={sid}");
    for (method, body) in [("GET", &b""[..]), ("POST", &b"4hi"[..])] {
        let r = http(addr_b, method, &poll, &[], body).await;
        assert_eq!(r.status(), 400);
        assert!(String::from_utf8_lossy(r.body()).contains("Session ID unknown"));
    }
    let url = format!("ws://{addr_b}/engine.io/?EIO=4&transport=websocket&sid={sid}");
    let refused = tokio_tungstenite::connect_async(url).await;
    assert!(refused.is_err(), "the WebSocket is refused");
    // A malformed sid is an unknown one too.
    let r = http(
        addr_b,
        "GET",
        "/engine.io/?EIO=4&transport=polling&sid=%00",
        &[],
        b"",
    )
    .await;
    assert_eq!(r.status(), 400);
    assert_eq!(mb.counter(UNKNOWN_SID, &POLLING), 3);
    assert_eq!(mb.counter(UNKNOWN_SID, &WEBSOCKET), 1);
    assert_eq!(ma.counter(UNKNOWN_SID, &POLLING), 0);
    assert_eq!(ma.counter(HANDSHAKES, &POLLING), 1);
    assert_eq!(mb.counter(HANDSHAKES, &POLLING), 0);
}

/// Upgrades `sid` the way engine.io-client does; returns the WebSocket.
async fn upgrade(addr: SocketAddr, sid: &str) -> engineio_tests::net::Ws {
    let mut ws = ws_connect(addr, &format!("&sid={sid}")).await;
    ws.send(WsMessage::text("2probe")).await.unwrap();
    assert_eq!(next(&mut ws).await, Some(WsMessage::text("3probe")));
    ws.send(WsMessage::text("5")).await.unwrap();
    ws
}

async fn upgrades_and_failed_upgrades_are_counted<B: Binding>() {
    let (engine, m) = recorded_engine::<B>(Config::default());
    let addr = B::serve(engine.clone());
    let first = handshake(addr, &[]).await;
    let second = handshake(addr, &[]).await;
    assert_eq!(m.gauge(SESSIONS_OPEN, &POLLING), 2.0);
    let mut upgraded = upgrade(addr, &first).await;
    upgraded.send(WsMessage::text("4over ws")).await.unwrap();
    assert_eq!(
        next_data(&mut upgraded).await,
        Some(WsMessage::text("4over ws"))
    );
    assert_eq!(m.counter(UPGRADES, &[]), 1);
    // The other sends something else than the probe: the upgrade fails, polling goes on.
    let mut failed = ws_connect(addr, &format!("&sid={second}")).await;
    failed
        .send(WsMessage::text("4not the probe"))
        .await
        .unwrap();
    wait_until(|| m.counter(UPGRADES_FAILED, &reason("unexpected_packet")) == 1).await;
    assert_eq!(m.counter_sum(UPGRADES_FAILED), 1, "{:?}", m.nonzero());
    assert_eq!(m.counter(UPGRADES, &[]), 1);
    assert_eq!(m.gauge(SESSIONS_OPEN, &POLLING), 1.0);
    assert_eq!(m.gauge(SESSIONS_OPEN, &WEBSOCKET), 1.0);
    assert_eq!(engine.count(), 2);
    // The upgraded session ends by its WebSocket's close frame.
    upgraded.close(None).await.unwrap();
    wait_until(|| m.counter(SESSIONS_CLOSED, &reason("transport_close")) == 1).await;
    assert_eq!(m.gauge(SESSIONS_OPEN, &WEBSOCKET), 0.0);
    assert_eq!(m.gauge(SESSIONS_OPEN, &POLLING), 1.0);
}

async fn a_ping_timeout_the_round_trip_and_messages_are_counted<B: Binding>() {
    let mut config = Config::default();
    config.engine.ping_interval = Duration::from_millis(200);
    config.engine.ping_timeout = Duration::from_millis(500);
    let (engine, m) = recorded_engine::<B>(config);
    let addr = B::serve(engine.clone());
    let mut ws = ws_connect(addr, "").await;
    next(&mut ws).await.expect("open packet");
    ws.send(WsMessage::text("4hello")).await.unwrap();
    ws.send(WsMessage::binary(vec![4u8, 1, 2, 3]))
        .await
        .unwrap();
    assert_eq!(next(&mut ws).await, Some(WsMessage::text("4hello")));
    assert_eq!(
        next(&mut ws).await,
        Some(WsMessage::binary(vec![4u8, 1, 2, 3]))
    );
    // The first ping is answered, the second is not.
    assert_eq!(next(&mut ws).await, Some(WsMessage::text("2")));
    ws.send(WsMessage::text("3")).await.unwrap();
    assert_eq!(next(&mut ws).await, Some(WsMessage::text("2")));
    wait_until(|| m.counter(SESSIONS_CLOSED, &reason("ping_timeout")) == 1).await;
    assert_eq!(m.counter_sum(SESSIONS_CLOSED), 1, "{:?}", m.nonzero());
    let rtt = m.histogram(PING_RTT, &WEBSOCKET);
    assert_eq!(rtt.len(), 1, "one pong: {rtt:?}");
    assert!((0.0..0.5).contains(&rtt[0]), "{rtt:?}");
    assert!(m.histogram(PING_RTT, &POLLING).is_empty());
    assert_eq!(m.counter(MESSAGES_RECEIVED, &[]), 2);
    // Payload bytes: "hello" and the 4 binary bytes.
    assert_eq!(m.counter(RECEIVED_BYTES, &[]), 5 + 4);
    assert_eq!(m.counter(MESSAGES_SENT, &[]), 2);
    assert_eq!(m.counter(SENT_BYTES, &[]), 5 + 4);
    assert_eq!(m.gauge(SESSIONS_OPEN, &WEBSOCKET), 0.0);
}

async fn full_send_queues_are_counted<B: Binding>() {
    let mut config = Config::default();
    config.engine.max_buffered_packets = 4;
    let (engine, m) = recorded_engine::<B>(config);
    let addr = B::serve(engine.clone());
    let sid = handshake(addr, &[]).await;
    let socket = engine.sockets().pop().expect("the session");
    assert_eq!(socket.sid().to_string(), sid);
    // No GET takes the messages: the queue fills, and then pushes back.
    for i in 0..4 {
        socket.send(format!("m{i}")).expect("room in the queue");
    }
    for _ in 0..3 {
        assert!(matches!(
            socket.send("one too many"),
            Err(SendError::QueueFull { limit: 4, .. })
        ));
    }
    assert!(matches!(
        socket.send_json(&["also", "too many"]),
        Err(SendError::QueueFull { .. })
    ));
    assert_eq!(m.counter(SEND_QUEUE_FULL, &[]), 4);
    wait_until(|| m.counter(MESSAGES_SENT, &[]) == 4).await;
    assert_eq!(m.counter(SENT_BYTES, &[]), 8);
    // A GET takes them; the queue has room again.
    let poll = format!("/engine.io/?EIO=4&transport=polling&sid={sid}");
    let r = http(addr, "GET", &poll, &[], b"").await;
    assert_eq!(&r.body()[..], "4m0\u{1e}4m1\u{1e}4m2\u{1e}4m3".as_bytes());
    socket.send_json(&[1, 2]).expect("room again");
    wait_until(|| m.counter(MESSAGES_SENT, &[]) == 5).await;
    assert_eq!(m.counter(SENT_BYTES, &[]), 8 + "[1,2]".len() as u64);
    assert_eq!(m.counter(SEND_QUEUE_FULL, &[]), 4);
}

/// Says every sid it does not know belongs to the node at `owner`.
struct SendTo {
    owner: String,
}

impl engineio_hyper::server::SessionRouter for SendTo {
    fn owner_address(&self, _sid: &engineio_proto::Sid) -> Option<String> {
        Some(self.owner.clone())
    }
}

async fn forwarded_requests_are_not_unknown_sids<B: Binding>() {
    // `b` forwards what it does not know to `a`: a session of `a` asked of `b` is
    // forwarded, not unknown; with `a` gone, the forward fails.
    let (a, ma) = recorded_engine::<B>(Config::default());
    let (b, mb) = recorded_engine::<B>(Config::default());
    let (addr_a, addr_b) = (B::serve(a), B::serve(b.clone()));
    let router = SendTo {
        owner: addr_a.to_string(),
    };
    assert!(b.set_router(std::sync::Arc::new(router)));
    let sid = handshake(addr_a, &[]).await;
    let poll = format!("/engine.io/?EIO=4&transport=polling&sid={sid}");
    let r = http(addr_b, "POST", &poll, &[], b"4via b").await;
    assert_eq!(&r.body()[..], b"ok");
    assert_eq!(mb.counter(CLUSTER_FORWARDS, &[]), 1);
    assert_eq!(mb.counter(UNKNOWN_SID, &POLLING), 0);
    assert_eq!(ma.counter(MESSAGES_RECEIVED, &[]), 1);
    // An owner that is not there.
    let (c, mc) = recorded_engine::<B>(Config::default());
    let addr_c = B::serve(c.clone());
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nobody = closed.local_addr().unwrap().to_string();
    drop(closed);
    assert!(c.set_router(std::sync::Arc::new(SendTo { owner: nobody })));
    let r = http(addr_c, "GET", &poll, &[], b"").await;
    assert_eq!(r.status(), 400);
    assert_eq!(mc.counter(CLUSTER_FORWARD_FAILURES, &[]), 1);
    assert_eq!(mc.counter(CLUSTER_FORWARDS, &[]), 0);
}

/// The Prometheus exporter renders every series (what the `prometheus` example serves).
async fn the_prometheus_exporter_renders_the_server_metrics<B: Binding>() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let engine =
        metrics::with_local_recorder(&recorder, || engine::<B, _>(Echo, Config::default()));
    let addr = B::serve(engine.clone());
    handshake(addr, &[]).await;
    let text = handle.render();
    for line in [
        "# TYPE engineio_handshakes_total counter",
        "engineio_handshakes_total{transport=\"polling\"} 1",
        "engineio_sessions_open{transport=\"polling\"} 1",
        "engineio_sessions_open{transport=\"websocket\"} 0",
        "engineio_unknown_sid_total{transport=\"polling\"} 0",
        "engineio_sessions_closed_total{reason=\"ping_timeout\"} 0",
        "# HELP engineio_unknown_sid_total Engine.IO requests naming a session this server does not have (sticky sessions?)",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
    }
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
    rejections_and_refusals_are_counted_by_reason,
    requests_for_unknown_sessions_are_counted_by_transport,
    upgrades_and_failed_upgrades_are_counted,
    a_ping_timeout_the_round_trip_and_messages_are_counted,
    full_send_queues_are_counted,
    forwarded_requests_are_not_unknown_sids,
    the_prometheus_exporter_renders_the_server_metrics,
);

// ------------------------------------------------------------------------ client

/// The global recorder (the client registers under it when it connects), installed
/// once, and a lock for the client tests to take turns with.
fn global() -> &'static (Recorded, tokio::sync::Mutex<()>) {
    static GLOBAL: OnceLock<(Recorded, tokio::sync::Mutex<()>)> = OnceLock::new();
    GLOBAL.get_or_init(|| {
        let (recorder, recorded) = Recorded::new();
        metrics::set_global_recorder(recorder).expect("the only global recorder");
        (recorded, tokio::sync::Mutex::new(()))
    })
}

/// What changed in the client's metrics since `before`.
struct Delta<'a> {
    recorded: &'a Recorded,
    before: Vec<(String, u64)>,
}

const CLIENT_COUNTERS: [&str; 12] = [
    CLIENT_CONNECTS,
    CLIENT_RECONNECTS,
    CLIENT_CONNECT_FAILURES,
    CLIENT_RECONNECT_ATTEMPTS,
    CLIENT_GAVE_UP,
    CLIENT_UPGRADES,
    CLIENT_DISCONNECTS,
    CLIENT_MESSAGES_RECEIVED,
    CLIENT_RECEIVED_BYTES,
    CLIENT_MESSAGES_SENT,
    CLIENT_SENT_BYTES,
    CLIENT_SEND_QUEUE_FULL,
];

impl<'a> Delta<'a> {
    fn start(recorded: &'a Recorded) -> Self {
        let mut before: Vec<(String, u64)> = CLIENT_COUNTERS
            .iter()
            .map(|n| (n.to_string(), recorded.counter_sum(n)))
            .collect();
        before.push((
            CLIENT_SEND_FAILED.into(),
            recorded.counter_sum(CLIENT_SEND_FAILED),
        ));
        for r in CLOSE_REASONS {
            before.push((
                format!("disconnect:{r}"),
                recorded
                    .find(CLIENT_DISCONNECTS, &reason(r))
                    .map_or(0, |t| match t {
                        engineio_tests::recorded::Total::Counter(n) => n,
                        _ => 0,
                    }),
            ));
        }
        Delta { recorded, before }
    }

    fn base(&self, key: &str) -> u64 {
        self.before
            .iter()
            .find(|(k, _)| k == key)
            .map_or(0, |(_, n)| *n)
    }

    /// How much a counter (summed over its labels) grew.
    fn of(&self, name: &str) -> u64 {
        self.recorded.counter_sum(name) - self.base(name)
    }

    /// How much the disconnects with this reason grew.
    fn disconnects(&self, r: &'static str) -> u64 {
        self.recorded.counter(CLIENT_DISCONNECTS, &reason(r))
            - self.base(&format!("disconnect:{r}"))
    }
}

async fn next_event<R: Runtime>(client: &mut Client<R>) -> ClientEvent {
    timeout(Duration::from_secs(10), client.next_event())
        .await
        .expect("an event in time")
        .expect("the client goes on")
}

/// A client's whole life: connect by polling and upgrade, a message each way, the
/// server's process gone, sends while offline (two queued, one refused), two failed
/// retries, giving up, the queued messages handed back.
async fn a_clients_life_is_counted<C: Runtime>(runtime: C) {
    let (recorded, turn) = global();
    let _turn = turn.lock().await;
    let d = Delta::start(recorded);
    // The server runs on a runtime of its own, to be shut down like a crashing process;
    // its own metrics go to a recorder of their own.
    let server_runtime = tokio::runtime::Runtime::new().unwrap();
    let (server, _) = recorded_engine::<TokioBinding>(Config::default());
    let addr = {
        let _on = server_runtime.enter();
        TokioBinding::serve(server)
    };
    let mut config = ClientConfig::new(&format!("http://{addr}")).unwrap();
    config.transports = vec![Transport::Polling, Transport::WebSocket];
    config.offline = OfflinePolicy::Queue { max: 2 };
    let mut reconnect = ReconnectConfig::default();
    reconnect.initial_delay = Duration::from_millis(20);
    reconnect.max_delay = Duration::from_millis(40);
    reconnect.randomization_factor = 0.0;
    reconnect.max_attempts = Some(2);
    config.reconnect = Some(reconnect);
    let mut client = timeout(Duration::from_secs(10), Client::connect(runtime, config))
        .await
        .expect("connect in time")
        .expect("connected");
    assert_eq!(d.of(CLIENT_CONNECTS), 1);
    assert_eq!(next_event(&mut client).await, ClientEvent::Upgraded);
    assert_eq!(d.of(CLIENT_UPGRADES), 1);
    assert_eq!(
        recorded.gauge(CLIENT_SESSIONS_OPEN, &WEBSOCKET),
        1.0,
        "{:?}",
        recorded.nonzero()
    );
    client.send("hi").unwrap();
    assert_eq!(
        next_event(&mut client).await,
        ClientEvent::Message(Message::from("hi"))
    );
    // The server goes away without a word: the session ends, retries find nobody.
    server_runtime.shutdown_background();
    let ClientEvent::Disconnected(why) = next_event(&mut client).await else {
        panic!("not disconnected")
    };
    assert_eq!(d.disconnects(close_reason_label(&why)), 1, "{why:?}");
    assert_eq!(d.of(CLIENT_DISCONNECTS), 1);
    client.send("queued 1").unwrap();
    client.send("queued 2").unwrap();
    assert!(matches!(
        client.send("refused"),
        Err(SendError::QueueFull { .. })
    ));
    let mut failed = 0;
    loop {
        match next_event(&mut client).await {
            ClientEvent::ReconnectFailed { attempts } => {
                assert_eq!(attempts, 2);
                break;
            }
            ClientEvent::ConnectFailed { .. } => failed += 1,
            ClientEvent::Reconnecting { .. } | ClientEvent::SendFailed(_) => {}
            other => panic!("{other:?}"),
        }
    }
    // The queued messages come back once it gave up.
    while timeout(Duration::from_secs(10), client.next_event())
        .await
        .expect("the end in time")
        .is_some()
    {}
    wait_until(|| d.of(CLIENT_SEND_FAILED) == 2).await;
    assert_eq!(failed, 2);
    assert_eq!(d.of(CLIENT_CONNECT_FAILURES), 2);
    assert!(recorded.counter(CLIENT_CONNECT_FAILURES, &reason("transport")) >= 2);
    assert_eq!(d.of(CLIENT_RECONNECT_ATTEMPTS), 2);
    assert_eq!(d.of(CLIENT_GAVE_UP), 1);
    assert_eq!(d.of(CLIENT_RECONNECTS), 0);
    assert_eq!(d.of(CLIENT_MESSAGES_SENT), 3, "hi and the two queued");
    assert_eq!(d.of(CLIENT_SENT_BYTES), 2 + 8 + 8);
    assert_eq!(d.of(CLIENT_SEND_QUEUE_FULL), 1);
    assert_eq!(d.of(CLIENT_MESSAGES_RECEIVED), 1);
    assert_eq!(d.of(CLIENT_RECEIVED_BYTES), 2);
    wait_until(|| recorded.gauge(CLIENT_SESSIONS_OPEN, &WEBSOCKET) == 0.0).await;
    assert_eq!(recorded.gauge(CLIENT_SESSIONS_OPEN, &POLLING), 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tokio_clients_life_is_counted() {
    a_clients_life_is_counted(engineio_tokio::Tokio).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_smol_clients_life_is_counted() {
    a_clients_life_is_counted(engineio_smol::Smol).await;
}
