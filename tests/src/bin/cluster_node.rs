//! One node of the cluster test (tests/cluster/run.py): the interop echo server in a
//! cluster over Redis, on either binding, with an admin API for the test.
//!
//! ```sh
//! cargo run -p engineio-tests --bin cluster_node -- --runtime tokio --node n1 \
//!     --port 3001 --redis redis://127.0.0.1:6379/
//! ```
//!
//! Echoes every message; `__close__` closes the session. Serves the demo page at `/`.
//! Admin (outside the Engine.IO path, for the orchestrator only):
//!
//! | request | answer |
//! |---|---|
//! | `GET /_cluster/state` | members, counters, forwarded requests, sessions, events |
//! | `POST /_cluster/send?sid=S` (body: text) | `{"ok":true}` or `{"ok":false,"error":..}` |
//! | `POST /_cluster/broadcast?except=S1,S2` (body: text) | the broadcast report |
//! | `GET /_cluster/count`, `GET /_cluster/sids` | the cluster-wide answers |
//! | `POST /_cluster/drain` | drains, answers the report, then the process exits |
//!
//! SIGTERM drains too (as systemd and Kubernetes stop a service), then exits.
#![allow(clippy::print_stderr, clippy::print_stdout)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use engineio_cluster::{ClusterConfig, ClusterEvent};
use engineio_hyper::Runtime;
use engineio_hyper::server::{
    Config, ConnectRequest, EngineIo, Handler, NodeSidGenerator, PeerAddr, Rejection, ResponseBody,
    Socket,
};
use engineio_proto::server::AllowedOrigins;
use engineio_proto::static_files::StaticFiles;
use engineio_proto::{Message, NodeId, Sid, TrustedProxies};
use engineio_redis::{ClusterNode, RedisBus};
use http_body_util::{BodyExt, Full};

struct Echo;

/// The proxies whose X-Forwarded-For this node believes (`--trusted-proxies`), and the
/// client address of the last handshake, for the admin state.
static TRUSTED: std::sync::OnceLock<TrustedProxies> = std::sync::OnceLock::new();
static LAST_CLIENT: Mutex<Option<String>> = Mutex::new(None);

impl Handler for Echo {
    type Data = ();

    async fn on_connect(&self, request: &ConnectRequest<'_>) -> Result<(), Rejection> {
        if let (Some(peer), Some(trusted)) = (request.peer_addr(), TRUSTED.get()) {
            let ip = trusted.client_ip(peer, request.headers());
            *LAST_CLIENT.lock().unwrap() = Some(ip.to_string());
        }
        Ok(())
    }

    fn on_message(&self, socket: &Socket<()>, message: Message) {
        if message.as_text() == Some("__close__") {
            socket.close();
        } else {
            let _ = socket.send(message);
        }
    }
}

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn ms(name: &str, default: u64) -> Duration {
    Duration::from_millis(arg(name).and_then(|v| v.parse().ok()).unwrap_or(default))
}

fn config() -> Config {
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/../demo");
    let mut config = Config::default();
    config.engine.ping_interval = ms("--ping-interval", 1000);
    config.engine.ping_timeout = ms("--ping-timeout", 5000);
    config.engine.max_payload = 1_000_000;
    config.engine.cors.origins = AllowedOrigins::Any;
    config.shutdown_timeout = ms("--shutdown-timeout", 10_000);
    config.static_files = StaticFiles::new()
        .file("/", format!("{demo}/index.html"))
        .file(
            "/engine.io.min.js",
            format!("{demo}/node_modules/engine.io-client/dist/engine.io.min.js"),
        );
    config
}

fn cluster_config() -> ClusterConfig {
    let mut c = ClusterConfig::default();
    c.heartbeat_interval = ms("--heartbeat", 250);
    c.node_timeout = ms("--node-timeout", 1500);
    c.request_timeout = ms("--request-timeout", 1000);
    c.reconnect_delay = Duration::from_millis(50);
    c.reconnect_max_delay = Duration::from_millis(500);
    c
}

struct Admin<R: Runtime> {
    cluster: ClusterNode<Echo, R>,
    events: Mutex<Vec<(u128, ClusterEvent)>>,
    started: Instant,
    /// Set once a drain finished: the process then exits (after the accept loop stopped).
    drained: std::sync::atomic::AtomicBool,
}

fn json(value: serde_json::Value) -> http::Response<ResponseBody> {
    let mut r = http::Response::new(Full::new(Bytes::from(value.to_string())));
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}

fn query(uri: &http::Uri, name: &str) -> Option<String> {
    uri.query()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then(|| v.replace("%2C", ",").replace("%2c", ","))
    })
}

fn event_json(e: &ClusterEvent) -> serde_json::Value {
    use serde_json::json;
    match e {
        ClusterEvent::BusUp { outage } => {
            json!({"kind":"bus_up","outage_ms":outage.map(|d| d.as_millis() as u64)})
        }
        ClusterEvent::BusDown { error, failed } => {
            json!({"kind":"bus_down","error":error,"failed":failed})
        }
        ClusterEvent::NodeUp { node, address } => {
            json!({"kind":"node_up","node":node.as_str(),"address":address})
        }
        ClusterEvent::NodeDown {
            node,
            reason,
            failed,
        } => {
            json!({"kind":"node_down","node":node.as_str(),"reason":format!("{reason:?}"),"failed":failed})
        }
        ClusterEvent::MessagesLost { from, count } => {
            json!({"kind":"messages_lost","from":from.as_str(),"count":count})
        }
        other => json!({"kind":"other","debug":format!("{other:?}")}),
    }
}

impl<R: Runtime> Admin<R> {
    async fn handle(
        &self,
        method: &http::Method,
        uri: &http::Uri,
        body: Bytes,
    ) -> http::Response<ResponseBody> {
        use serde_json::json;
        let text = String::from_utf8_lossy(&body).into_owned();
        match (method.as_str(), uri.path()) {
            ("GET", "/_cluster/state") => {
                let c = &self.cluster;
                let counters = c.counters();
                let (forwarded, forward_failed) = c.engine().forwarded();
                let events = self.events.lock().unwrap();
                json(json!({
                    "node": c.node().as_str(),
                    "bus_up": c.is_bus_up(),
                    "members": c.members().iter().map(|(n, a)| json!({"node": n.as_str(), "address": a})).collect::<Vec<_>>(),
                    "sessions": c.engine().count(),
                    "last_client_ip": *LAST_CLIENT.lock().unwrap(),
                    "forwarded": forwarded,
                    "forward_failed": forward_failed,
                    "counters": {
                        "published": counters.published, "received": counters.received,
                        "lost": counters.lost, "timeouts": counters.timeouts,
                        "bus_drops": counters.bus_drops, "bus_failures": counters.bus_failures,
                        "refused_bus_down": counters.refused_bus_down,
                        "nodes_expired": counters.nodes_expired,
                        "node_down_failures": counters.node_down_failures,
                    },
                    "events": events.iter().map(|(t, e)| { let mut v = event_json(e); v["at_ms"] = json!(*t as u64); v }).collect::<Vec<_>>(),
                }))
            }
            ("POST", "/_cluster/send") => {
                let Some(sid) = query(uri, "sid").and_then(|s| Sid::new(&s).ok()) else {
                    return json(json!({"ok": false, "error": "missing or bad sid"}));
                };
                match self.cluster.send(sid, text).await {
                    Ok(()) => json(json!({"ok": true})),
                    Err(e) => json(
                        json!({"ok": false, "error": e.to_string(), "debug": format!("{e:?}")}),
                    ),
                }
            }
            ("POST", "/_cluster/broadcast") => {
                let except: Vec<Sid> = query(uri, "except")
                    .map(|v| v.split(',').filter_map(|s| Sid::new(s).ok()).collect())
                    .unwrap_or_default();
                let r = self.cluster.broadcast(text, &except).await;
                json(json!({
                    "local": r.local, "remote": r.remote,
                    "nodes": r.nodes.iter().map(|n| n.as_str()).collect::<Vec<_>>(),
                    "failed": r.failed.iter().map(|(n, e)| json!({"node": n.as_str(), "error": e.to_string()})).collect::<Vec<_>>(),
                }))
            }
            ("GET", "/_cluster/count") => match self.cluster.count().await {
                Ok(n) => json(json!({"ok": true, "count": n})),
                Err(e) => json(json!({"ok": false, "count": e.partial, "error": e.to_string()})),
            },
            ("GET", "/_cluster/sids") => match self.cluster.sids().await {
                Ok(s) => json(
                    json!({"ok": true, "sids": s.iter().map(|s| s.as_str()).collect::<Vec<_>>()}),
                ),
                Err(e) => json(
                    json!({"ok": false, "sids": e.partial.iter().map(|s| s.as_str()).collect::<Vec<_>>(), "error": e.to_string()}),
                ),
            },
            ("POST", "/_cluster/drain") => {
                let report = self.drain().await;
                json(report)
            }
            _ => json(json!({"ok": false, "error": "unknown admin request"})),
        }
    }

    async fn drain(&self) -> serde_json::Value {
        let started = Instant::now();
        let r = self.cluster.drain().await;
        let v = serde_json::json!({
            "closed": r.closed, "still_open": r.still_open, "left": r.left,
            "ms": started.elapsed().as_millis() as u64,
        });
        eprintln!("drained: {v}");
        self.drained
            .store(true, std::sync::atomic::Ordering::SeqCst);
        v
    }
}

async fn record_events<R: Runtime>(admin: Arc<Admin<R>>) {
    let mut rx = admin.cluster.events();
    loop {
        match rx.recv().await {
            Ok(e) => {
                let t = admin.started.elapsed().as_millis();
                eprintln!("[{t} ms] cluster event: {e:?}");
                admin.events.lock().unwrap().push((t, e));
            }
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            Err(_) => return,
        }
    }
}

type Request = hyper::Request<hyper::body::Incoming>;

async fn serve_one<R: Runtime>(
    request: Request,
    peer: PeerAddr,
    admin: Arc<Admin<R>>,
) -> Result<http::Response<ResponseBody>, Infallible> {
    if request.uri().path().starts_with("/_cluster/") {
        let (parts, body) = request.into_parts();
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        return Ok(admin.handle(&parts.method, &parts.uri, body).await);
    }
    Ok(admin
        .cluster
        .engine()
        .handle_from(request, Some(peer))
        .await)
}

fn start<R: Runtime>(runtime: R, node: NodeId, port: u16, redis: &str) -> Arc<Admin<R>> {
    let engine: EngineIo<Echo, R> = EngineIo::with_sid_generator(
        runtime.clone(),
        Echo,
        config(),
        NodeSidGenerator::new(node.clone()),
    )
    .expect("valid configuration");
    let bus = RedisBus::new(redis).expect("redis URL");
    let advertise = format!("127.0.0.1:{port}");
    let cluster = ClusterNode::start(engine, runtime, bus, node, advertise, cluster_config())
        .expect("cluster starts");
    Arc::new(Admin {
        cluster,
        events: Mutex::new(Vec::new()),
        started: Instant::now(),
        drained: std::sync::atomic::AtomicBool::new(false),
    })
}

fn main() -> std::io::Result<()> {
    let node: NodeId = match arg("--node").map(|n| n.parse()) {
        Some(Ok(n)) => n,
        Some(Err(e)) => {
            eprintln!("--node: {e}");
            std::process::exit(2)
        }
        None => {
            eprintln!(
                "usage: cluster_node --node ID --port PORT --redis URL [--runtime tokio|smol]"
            );
            std::process::exit(2)
        }
    };
    let trusted = arg("--trusted-proxies").unwrap_or_default();
    match trusted.parse::<TrustedProxies>() {
        Ok(t) => {
            let _ = TRUSTED.set(t);
        }
        Err(e) => {
            eprintln!("--trusted-proxies: {e}");
            std::process::exit(2)
        }
    }
    let port: u16 = arg("--port").and_then(|p| p.parse().ok()).unwrap_or(3000);
    let redis = arg("--redis").unwrap_or_else(|| "redis://127.0.0.1:6379/".into());
    let runtime = arg("--runtime").unwrap_or_else(|| "tokio".into());
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    match runtime.as_str() {
        "tokio" => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?
            .block_on(async move {
                let admin = start(engineio_tokio::Tokio, node, port, &redis);
                tokio::spawn(record_events(Arc::clone(&admin)));
                {
                    let admin = Arc::clone(&admin);
                    tokio::spawn(async move {
                        let mut term = tokio::signal::unix::signal(
                            tokio::signal::unix::SignalKind::terminate(),
                        )
                        .expect("SIGTERM handler");
                        term.recv().await;
                        admin.drain().await;
                    });
                }
                let listener = tokio::net::TcpListener::bind(addr).await?;
                eprintln!("cluster node {} (tokio) on {addr}", admin.cluster.node());
                loop {
                    let accepted = tokio::select! {
                        a = listener.accept() => a?,
                        _ = until_shutdown(admin.cluster.engine(), engineio_tokio::Tokio) => {
                            until_drained(&admin, engineio_tokio::Tokio).await;
                            return Ok(());
                        }
                    };
                    let (stream, peer) = accepted;
                    let _ = stream.set_nodelay(true);
                    let admin = Arc::clone(&admin);
                    tokio::spawn(async move {
                        let peer = PeerAddr::new(peer);
                        let service = hyper::service::service_fn(move |req: Request| {
                            serve_one(req, peer, Arc::clone(&admin))
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .timer(hyper_util::rt::TokioTimer::new())
                            .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                            .with_upgrades()
                            .await;
                    });
                }
            }),
        "smol" => {
            let admin = start(engineio_smol::Smol, node, port, &redis);
            smol::spawn(record_events(Arc::clone(&admin))).detach();
            {
                // smol has no signal support of its own: a thread waits for SIGTERM with
                // a small tokio runtime and hands over to the smol executor.
                let admin = Arc::clone(&admin);
                std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("signal runtime");
                    rt.block_on(async {
                        let mut term = tokio::signal::unix::signal(
                            tokio::signal::unix::SignalKind::terminate(),
                        )
                        .expect("SIGTERM handler");
                        term.recv().await;
                    });
                    smol::block_on(admin.drain());
                });
            }
            smol::block_on(async move {
                let listener = smol::net::TcpListener::bind(addr).await?;
                eprintln!("cluster node {} (smol) on {addr}", admin.cluster.node());
                loop {
                    let accepted =
                        smol::future::or(async { Some(listener.accept().await) }, async {
                            until_shutdown(admin.cluster.engine(), engineio_smol::Smol).await;
                            None
                        })
                        .await;
                    let Some(accepted) = accepted else {
                        until_drained(&admin, engineio_smol::Smol).await;
                        return Ok(());
                    };
                    let (stream, peer) = accepted?;
                    let _ = stream.set_nodelay(true);
                    let admin = Arc::clone(&admin);
                    smol::spawn(async move {
                        let peer = PeerAddr::new(peer);
                        let service = hyper::service::service_fn(move |req: Request| {
                            serve_one(req, peer, Arc::clone(&admin))
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .timer(smol_hyper::rt::SmolTimer::new())
                            .serve_connection(smol_hyper::rt::FuturesIo::new(stream), service)
                            .with_upgrades()
                            .await;
                    })
                    .detach();
                }
            })
        }
        other => {
            eprintln!("unknown --runtime {other:?}: use tokio or smol");
            std::process::exit(2)
        }
    }
}

/// Waits (bounded) until the drain finished, so that the goodbye is published before the
/// process exits.
async fn until_drained<R: Runtime>(admin: &Admin<R>, runtime: R) {
    let deadline =
        runtime.now() + admin.cluster.engine().config().shutdown_timeout + Duration::from_secs(5);
    while !admin.drained.load(std::sync::atomic::Ordering::SeqCst) && runtime.now() < deadline {
        let mut timer = runtime.timer(runtime.now() + Duration::from_millis(20));
        std::future::poll_fn(|cx| engineio_hyper::Timer::poll_expired(&mut timer, cx)).await;
    }
    // Let the drain's HTTP answer (when it came from /_cluster/drain) reach its client.
    let mut timer = runtime.timer(runtime.now() + Duration::from_millis(100));
    std::future::poll_fn(|cx| engineio_hyper::Timer::poll_expired(&mut timer, cx)).await;
}

/// Resolves once the engine is shutting down (the drain started): the accept loop stops,
/// so that a balancer sends new connections elsewhere.
async fn until_shutdown<H: Handler, R: Runtime>(engine: &EngineIo<H, R>, runtime: R) {
    while !engine.is_shutting_down() {
        let mut timer = runtime.timer(runtime.now() + Duration::from_millis(50));
        std::future::poll_fn(|cx| engineio_hyper::Timer::poll_expired(&mut timer, cx)).await;
    }
}
