//! Our client as a cluster test driver (tests/interop/cluster/run.py), with reconnection
//! on. The modes and output of tests/interop/cluster/node-client.mjs, plus `herd`:
//!
//! ```text
//! cluster_client spread --url U --transport T [--sessions 6] [--round-trips 200]
//! cluster_client listen --url U --transport T [--sessions 3] [--seconds 20]
//! cluster_client soak   --url U --transport T [--seconds 10]
//! cluster_client herd   --url U --transport T --sessions N --drained NODE [--seconds 30]
//! ```
//!
//! `herd` opens N sessions (its reconnection on, default backoff and jitter), prints
//! `{"ready": {node: sessions}}`, then waits until every session that was on NODE
//! reconnected to another node (or time is up) and reports each one's close reason and
//! reconnection delay. Sessions on the other nodes must not notice anything.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use engineio_hyper::client::{ClientConfig, ReconnectConfig};
use engineio_proto::client::ClientEvent;
use engineio_proto::{Sid, Transport};
use engineio_tokio::Client;
use serde_json::json;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn num(name: &str, default: f64) -> f64 {
    arg(name).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn node_of(sid: Option<Sid>) -> String {
    sid.and_then(|s| s.node().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

fn config(url: &str, transport: &str) -> ClientConfig {
    let mut c = ClientConfig::new(url).expect("url");
    c.transports = match transport {
        "polling" => vec![Transport::Polling],
        "websocket" => vec![Transport::WebSocket],
        _ => vec![Transport::Polling, Transport::WebSocket],
    };
    c.reconnect = Some(ReconnectConfig::default());
    c
}

async fn open(url: &str, transport: &str) -> Result<Client, String> {
    let mut client = tokio::time::timeout(
        Duration::from_secs(5),
        engineio_tokio::connect_with(config(url, transport)),
    )
    .await
    .map_err(|_| "no handshake within 5 s".to_owned())?
    .map_err(|e| e.to_string())?;
    if transport == "upgrade" {
        loop {
            match tokio::time::timeout(Duration::from_secs(5), client.next_event()).await {
                Ok(Some(ClientEvent::Upgraded)) => break,
                Ok(Some(_)) => continue,
                Ok(None) => return Err("ended before the upgrade".into()),
                Err(_) => return Err("no upgrade within 5 s".into()),
            }
        }
    }
    Ok(client)
}

/// Sends `text` and waits for its echo; `Err(Some(reason))` when the session ended.
async fn echo(client: &mut Client, text: &str) -> Result<(), String> {
    client.send(text).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, client.next_event()).await {
            Ok(Some(ClientEvent::Message(m))) if m.as_text() == Some(text) => return Ok(()),
            // A message sent just before a disconnection waits in our client's queue and
            // goes out again in the next session: its echo may come now. Not a loss.
            Ok(Some(ClientEvent::Message(m))) if is_earlier(m.as_text(), text) => continue,
            Ok(Some(ClientEvent::Message(m))) => return Err(format!("echo of {text} was {m:?}")),
            Ok(Some(ClientEvent::Disconnected(r))) => return Err(format!("disconnected: {r}")),
            Ok(Some(_)) => continue,
            Ok(None) => return Err("client ended".into()),
            Err(_) => return Err(format!("no echo of {text} within 3 s")),
        }
    }
}

/// Whether `got` is the echo of a soak message numbered before `sent` (`n12` < `n13`).
fn is_earlier(got: Option<&str>, sent: &str) -> bool {
    let num = |t: &str| t.strip_prefix('n').and_then(|n| n.parse::<u64>().ok());
    matches!((got.and_then(num), num(sent)), (Some(a), Some(b)) if a < b)
}

async fn spread(url: &str, transport: &str) -> serde_json::Value {
    let n = num("--sessions", 6.0) as usize;
    let trips = num("--round-trips", 200.0) as usize;
    let mut nodes: BTreeMap<String, usize> = BTreeMap::new();
    let mut errors = Vec::new();
    let mut clients = Vec::new();
    for i in 0..n {
        match open(url, transport).await {
            Ok(c) => {
                *nodes.entry(node_of(c.sid())).or_default() += 1;
                clients.push(c);
            }
            Err(e) => errors.push(format!("session {i}: {e}")),
        }
    }
    let mut ok = 0;
    let first_sid = clients.first().and_then(|c| c.sid()).map(|s| s.to_string());
    if let Some(first) = clients.first_mut() {
        for i in 0..trips {
            if let Err(e) = echo(first, &format!("rt{i}")).await {
                errors.push(format!("round trip {i}: {e}"));
                break;
            }
            ok += 1;
        }
    }
    for c in clients {
        c.close();
    }
    json!({"nodes": nodes, "round_trips": ok, "errors": errors, "first_sid": first_sid})
}

async fn listen(url: &str, transport: &str) -> serde_json::Value {
    let n = num("--sessions", 3.0) as usize;
    let seconds = num("--seconds", 20.0);
    let mut clients = Vec::new();
    let mut errors = Vec::new();
    for _ in 0..n {
        match open(url, transport).await {
            Ok(c) => clients.push(c),
            Err(e) => errors.push(e),
        }
    }
    let sids: Vec<String> = clients
        .iter()
        .filter_map(|c| c.sid())
        .map(|s| s.to_string())
        .collect();
    println!("{}", json!({"ready": sids, "errors": errors}));
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let mut received: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (c, sid) in clients.iter_mut().zip(&sids) {
        let got = received.entry(sid.clone()).or_default();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, c.next_event()).await {
                Ok(Some(ClientEvent::Message(m))) => {
                    let text = m.as_text().unwrap_or("<binary>").to_owned();
                    let done = text == "__done__";
                    got.push(text);
                    if done {
                        break;
                    }
                }
                Ok(Some(ClientEvent::Disconnected(r))) => {
                    errors.push(format!("{sid} disconnected: {r}"));
                    break;
                }
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => break,
            }
        }
    }
    for c in clients {
        c.close();
    }
    json!({"received": received, "errors": errors})
}

async fn soak(url: &str, transport: &str) -> serde_json::Value {
    let mut until = Instant::now() + Duration::from_secs_f64(num("--seconds", 10.0));
    let started = Instant::now();
    let mut sessions = Vec::new();
    let mut errors = Vec::new();
    let mut client = match open(url, transport).await {
        Ok(c) => c,
        Err(e) => return json!({"sessions": [], "errors": [e]}),
    };
    let mut current = json!({"sid": client.sid().map(|s| s.to_string()), "node": node_of(client.sid()),
        "opened_at": 0, "sent": 0, "echoed": 0, "closed": null});
    let mut i = 0u64;
    while Instant::now() < until {
        let text = format!("n{i}");
        i += 1;
        current["sent"] = json!(current["sent"].as_u64().unwrap_or(0) + 1);
        match echo(&mut client, &text).await {
            Ok(()) => {
                current["echoed"] = json!(current["echoed"].as_u64().unwrap_or(0) + 1);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) if e.starts_with("disconnected") => {
                current["closed"] =
                    json!({"reason": e, "at_ms": started.elapsed().as_millis() as u64});
                sessions.push(current.take());
                // Our client reconnects by itself: wait for it.
                let left = until.saturating_duration_since(Instant::now()) + Duration::from_secs(5);
                let reconnected = tokio::time::timeout(left, async {
                    loop {
                        match client.next_event().await {
                            Some(ClientEvent::Reconnected(_)) => return true,
                            Some(_) => continue,
                            None => return false,
                        }
                    }
                })
                .await;
                if !matches!(reconnected, Ok(true)) {
                    errors.push("did not reconnect".to_owned());
                    break;
                }
                if transport == "upgrade" {
                    let _ = tokio::time::timeout(Duration::from_secs(5), async {
                        while !matches!(
                            client.next_event().await,
                            Some(ClientEvent::Upgraded) | None
                        ) {}
                    })
                    .await;
                }
                current = json!({"sid": client.sid().map(|s| s.to_string()), "node": node_of(client.sid()),
                    "opened_at": started.elapsed().as_millis() as u64, "sent": 0, "echoed": 0, "closed": null});
                // A reconnection can take most of the window (a draining node refuses new
                // sessions with 503 until it is gone, and the client backs off up to 5 s
                // between attempts): the new session still gets a second of echoes, so
                // that what is checked is that it works, not how soon it came.
                until = until.max(Instant::now() + Duration::from_secs(1));
            }
            Err(e) => {
                errors.push(e);
                break;
            }
        }
    }
    if !current.is_null() {
        sessions.push(current);
    }
    client.close();
    json!({"sessions": sessions, "errors": errors})
}

async fn herd(url: &str, transport: &str) -> serde_json::Value {
    let n = num("--sessions", 100.0) as usize;
    let drained = arg("--drained").unwrap_or_else(|| "n2".into());
    let seconds = num("--seconds", 30.0);
    let mut errors = Vec::new();
    // Open concurrently, in batches, so that 3,000 sessions take seconds, not minutes.
    let mut clients: Vec<Client> = Vec::new();
    for chunk in (0..n).collect::<Vec<_>>().chunks(100) {
        let opened =
            futures_util::future::join_all(chunk.iter().map(|_| open(url, transport))).await;
        for c in opened {
            match c {
                Ok(c) => clients.push(c),
                Err(e) => errors.push(e),
            }
        }
    }
    let mut nodes: BTreeMap<String, usize> = BTreeMap::new();
    for c in &clients {
        *nodes.entry(node_of(c.sid())).or_default() += 1;
    }
    println!("{}", json!({"ready": nodes, "errors": errors}));
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let remaining = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(
        nodes.get(&drained).copied().unwrap_or(0),
    ));
    let results = futures_util::future::join_all(clients.into_iter().map(|mut c| {
        let drained = drained.clone();
        let remaining = std::sync::Arc::clone(&remaining);
        async move {
            let before = node_of(c.sid());
            let on_drained = before == drained;
            let mut closed_at = None;
            let mut reason = None;
            let mut after = None;
            let mut delay_ms = None;
            loop {
                // Sessions elsewhere are watched until the drained ones are all back:
                // they must not notice anything.
                use std::sync::atomic::Ordering::SeqCst;
                if !on_drained && remaining.load(SeqCst) == 0 {
                    break;
                }
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                let slice = left.min(Duration::from_millis(200));
                match tokio::time::timeout(slice, c.next_event()).await {
                    Ok(Some(ClientEvent::Disconnected(r))) => {
                        closed_at = Some(Instant::now());
                        reason = Some(format!("{r:?}"));
                    }
                    Ok(Some(ClientEvent::Reconnected(hs))) => {
                        after = hs.sid.node().map(str::to_owned);
                        delay_ms = closed_at.map(|t| t.elapsed().as_millis() as u64);
                        if on_drained {
                            remaining.fetch_sub(1, SeqCst);
                            break;
                        }
                    }
                    Ok(Some(_)) => continue,
                    Ok(None) => break,
                    Err(_) => continue,
                }
            }
            c.close();
            json!({"before": before, "reason": reason, "after": after, "reconnect_ms": delay_ms})
        }
    }))
    .await;
    json!({"sessions": results, "errors": errors})
}

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let (Some(url), Some(transport)) = (arg("--url"), arg("--transport")) else {
        eprintln!("usage: cluster_client spread|listen|soak|herd --url U --transport T ...");
        std::process::exit(2);
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = rt.block_on(async {
        match mode.as_str() {
            "spread" => spread(&url, &transport).await,
            "listen" => listen(&url, &transport).await,
            "soak" => soak(&url, &transport).await,
            "herd" => herd(&url, &transport).await,
            other => {
                eprintln!("unknown mode {other:?}");
                std::process::exit(2);
            }
        }
    });
    println!("{}", json!({ "result": result }));
}
