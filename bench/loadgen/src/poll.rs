//! `poll`: C HTTP long-polling clients. Each opens a session (handshake GET), then loops:
//! POST `4<data>`, GET until the echo comes back. One round trip = two HTTP requests.
//!
//! Requests are hand-written HTTP/1.1 over one kept-alive TcpStream per client, built once
//! per session; responses are parsed in place; the body buffer is reused. No allocation
//! per request.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cli::{Args, Target};
use crate::metrics::CpuMeter;
use crate::report::{Stats, Window, emit, thousands};
use crate::wire::{HttpConn, base64, get_request, parse_open, post_request, test_payload};

/// Options of this mode.
pub(crate) const OPTIONS: &[&str] = &["clients", "size", "binary", "duration", "warmup"];

/// Record separator of polling payloads.
const SEPARATOR: u8 = 0x1e;

struct Plan {
    target: Target,
    /// The encoded packet the client POSTs (`4...` or `b<base64>`).
    packet: Vec<u8>,
    run: Window,
}

/// Runs the mode.
pub(crate) async fn run(args: &Args, target: Target) -> Result<(), String> {
    let clients: usize = args.get("clients", 50)?;
    let size: usize = args.get("size", 32)?;
    let binary = args.flag("binary");
    let duration = args.seconds("duration", 8.0)?;
    let warmup = args.seconds("warmup", 1.0)?;
    if !(1..=5000).contains(&clients) {
        return Err("--clients must be 1..=5000".into());
    }
    let payload = test_payload(size, binary);
    let packet = if binary {
        format!("b{}", base64(&payload)).into_bytes()
    } else {
        let mut p = vec![b'4'];
        p.extend_from_slice(&payload);
        p
    };
    let run = Window::new(warmup, duration);
    let plan = Arc::new(Plan {
        target,
        packet,
        run,
    });
    let tasks: Vec<_> = (0..clients)
        .map(|_| tokio::spawn(client(Arc::clone(&plan))))
        .collect();
    tokio::time::sleep_until(run.from.into()).await;
    let cpu = CpuMeter::start_all(&args.server_pids()?);
    tokio::time::sleep_until(run.until.into()).await;
    let usage = cpu.stop();
    let mut total = Stats::default();
    let mut connects = 0;
    for t in tasks {
        match t.await {
            Ok((s, c)) => {
                total.merge(s);
                connects += c;
            }
            Err(e) => total.error(format!("client task: {e}")),
        }
    }
    let rate = total.ops as f64 / run.seconds();
    let label = args.label();
    emit(
        &format!(
            "mode=poll label={label} clients={clients} size={size} binary={binary} duration_s={:.1} \
             roundtrips={} rt_per_s={rate:.0} {} errors={} tcp_connects={connects} {} \
             rt_per_server_cpu_s={:.0}{}",
            run.seconds(),
            total.ops,
            total.latency.fields(""),
            total.errors,
            usage.fields(),
            usage.per_server_cpu_second(total.ops),
            total.error_field()
        ),
        &format!(
            "poll {label}: {} round trips/s ({clients} clients, POST + GET each); {}; server {:.0}% CPU, \
             load generator {:.0}%; {} errors; {connects} TCP connections",
            thousands(rate),
            total.latency.human(),
            usage.server,
            usage.loadgen,
            total.errors
        ),
    );
    Ok(())
}

/// One client: a session and its round trips. Returns its stats and TCP connects.
async fn client(plan: Arc<Plan>) -> (Stats, u64) {
    let mut stats = Stats::default();
    let mut conn = HttpConn::new(plan.target.addr);
    let end = tokio::time::sleep_until(plan.run.until.into());
    tokio::pin!(end);
    let mut sid = None;
    let result = tokio::select! {
        biased;
        r = session(&plan, &mut conn, &mut stats, &mut sid) => r,
        _ = &mut end => Ok(()),
    };
    if let Err(e) = result {
        stats.error(e);
    }
    // Close the session (polite, not measured, bounded) on a fresh connection: the run may
    // have ended in the middle of a request on this one.
    if let Some(sid) = sid {
        let t = &plan.target;
        let close = post_request(t, &t.poll_uri(Some(&sid)), b"1");
        let mut fresh = HttpConn::new(t.addr);
        let _ = tokio::time::timeout(Duration::from_millis(500), fresh.request(&close)).await;
    }
    (stats, conn.connects)
}

async fn session(
    plan: &Plan,
    conn: &mut HttpConn,
    stats: &mut Stats,
    sid: &mut Option<String>,
) -> Result<(), String> {
    let t = &plan.target;
    let status = conn
        .request(&get_request(t, &t.poll_uri(None)))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    if status != 200 {
        return Err(format!("handshake: HTTP {status}"));
    }
    let open = parse_open(&conn.body).map_err(|e| format!("handshake: {e}"))?;
    let uri = t.poll_uri(Some(&open.sid));
    *sid = Some(open.sid);
    let post = post_request(t, &uri, &plan.packet);
    let pong = post_request(t, &uri, b"3");
    let get = get_request(t, &uri);
    let expect_len = plan.packet.len();
    loop {
        let t0 = Instant::now();
        if t0 >= plan.run.until {
            return Ok(());
        }
        let status = conn
            .request(&post)
            .await
            .map_err(|e| format!("POST: {e}"))?;
        if status != 200 {
            return Err(format!("POST: HTTP {status}"));
        }
        // GET until the echo arrives (bounded: a GET can carry a ping or a noop).
        let mut echoed = false;
        for _ in 0..100 {
            let status = conn.request(&get).await.map_err(|e| format!("GET: {e}"))?;
            if status != 200 {
                return Err(format!("GET: HTTP {status}"));
            }
            let (mut ping, mut closed) = (false, false);
            for record in conn.body.split(|&b| b == SEPARATOR) {
                match record.first() {
                    Some(b'4' | b'b') => {
                        echoed = true;
                        if record.len() != expect_len {
                            stats.error(format!(
                                "echo of {} bytes, sent {expect_len}",
                                record.len()
                            ));
                        }
                    }
                    Some(b'2') => ping = true,
                    Some(b'1') => closed = true,
                    _ => {}
                }
            }
            if closed {
                return Err("the server closed the session".into());
            }
            if ping {
                conn.request(&pong)
                    .await
                    .map_err(|e| format!("POST pong: {e}"))?;
            }
            if echoed {
                break;
            }
        }
        if !echoed {
            return Err("no echo after 100 GETs".into());
        }
        let now = Instant::now();
        if plan.run.contains(now) {
            stats.ops += 1;
            stats.latency.record(now - t0);
        }
    }
}
