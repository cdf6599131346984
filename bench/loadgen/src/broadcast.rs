//! `broadcast`: N WebSocket clients listen; one more, the control client, sends
//! `__broadcast__<payload>` and the server sends `<payload>` to every session. A round is
//! one such request (or `--window K` of them in one write); it ends when every listener
//! got every message. Reports deliveries per second over the rounds and the time until
//! the last listener got a round's message.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::sync::{Notify, Semaphore, watch};

use crate::cli::{Args, Target};
use crate::metrics::{CpuMeter, Histogram};
use crate::report::{emit, thousands};
use crate::wire::{
    OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, frame, parse_frame, spread_source, test_payload,
    ws_connect, ws_connect_from, ws_read_open,
};

/// Options of this mode.
pub(crate) const OPTIONS: &[&str] = &[
    "clients",
    "size",
    "window",
    "rounds",
    "warmup-rounds",
    "duration",
    "connect-concurrency",
];

/// How long one round may take before the run gives up.
const ROUND_TIMEOUT: Duration = Duration::from_secs(5);

struct Shared {
    target: Target,
    connecting: Semaphore,
    base: Instant,
    /// Messages delivered to listeners so far (all rounds).
    delivered: AtomicU64,
    /// `delivered` when the current round is complete.
    goal: AtomicU64,
    /// When the current round started (ns since `base`).
    round_start: AtomicU64,
    /// The latest delivery of the current round (ns after its start).
    round_last: AtomicU64,
    done: Notify,
    connected: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    /// Pings the control client's reader saw and the controller must answer.
    control_pings: AtomicU64,
    first_error: Mutex<Option<String>>,
    expect_len: usize,
    pong: Vec<u8>,
}

impl Shared {
    fn error(&self, e: String) {
        self.first_error
            .lock()
            .expect("not poisoned")
            .get_or_insert(e);
    }
}

/// Runs the mode.
pub(crate) async fn run(args: &Args, target: Target) -> Result<(), String> {
    let clients: u64 = args.get("clients", 1000)?;
    let size: usize = args.get("size", 32)?;
    let window: u64 = args.get("window", 1)?;
    let max_rounds: u64 = args.get("rounds", 100_000)?;
    let warmup_rounds: u64 = args.get("warmup-rounds", 5)?;
    let duration = args.seconds("duration", 5.0)?;
    let concurrency: usize = args.get("connect-concurrency", 100)?;
    if !(1..=19_000).contains(&clients) || !(1..=1000).contains(&window) {
        return Err("--clients must be 1..=19000 and --window 1..=1000".into());
    }
    let payload = test_payload(size, false);
    let shared = Arc::new(Shared {
        target,
        connecting: Semaphore::new(concurrency.clamp(1, 1000)),
        base: Instant::now(),
        delivered: AtomicU64::new(0),
        goal: AtomicU64::new(u64::MAX),
        round_start: AtomicU64::new(0),
        round_last: AtomicU64::new(0),
        done: Notify::new(),
        connected: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        dropped: AtomicU64::new(0),
        control_pings: AtomicU64::new(0),
        first_error: Mutex::new(None),
        expect_len: payload.len() + 1,
        pong: frame(OP_TEXT, b"3"),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let tasks: Vec<_> = (0..clients)
        .map(|n| tokio::spawn(listener(Arc::clone(&shared), stop_rx.clone(), n as usize)))
        .collect();
    let t = Instant::now();
    while shared.connected.load(Ordering::Relaxed) + shared.failed.load(Ordering::Relaxed) < clients
        && t.elapsed() < Duration::from_secs(120)
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let listeners = shared.connected.load(Ordering::Relaxed);
    if listeners == 0 {
        let _ = stop_tx.send(true);
        return Err(format!(
            "no listener connected ({})",
            shared
                .first_error
                .lock()
                .expect("not poisoned")
                .clone()
                .unwrap_or_default()
        ));
    }

    // The control client: its reader only counts pings, the controller writes.
    let (mut control, mut rb) = ws_connect(&shared.target, None, 4096)
        .await
        .map_err(|e| format!("control client: {e}"))?;
    ws_read_open(&mut control, &mut rb)
        .await
        .map_err(|e| format!("control client: {e}"))?;
    let (mut control_rx, mut control_tx) = control.into_split();
    let reader = {
        let shared = Arc::clone(&shared);
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    r = rb.fill(&mut control_rx) => if r.is_err() { break },
                    _ = stop.changed() => break,
                }
                while let Some(f) = parse_frame(rb.data()) {
                    if f.op == OP_TEXT && f.payload(rb.data()) == b"2" {
                        shared.control_pings.fetch_add(1, Ordering::Relaxed);
                    }
                    rb.consume(f.total());
                }
            }
        })
    };
    let mut request = b"4__broadcast__".to_vec();
    request.extend_from_slice(&payload);
    let requests = frame(OP_TEXT, &request).repeat(window as usize);

    let mut last = Histogram::default();
    let (mut rounds, mut counted_rounds, mut incomplete) = (0u64, 0u64, 0u64);
    let mut busy = Duration::ZERO;
    let mut goal = 0u64;
    let mut cpu = None;
    let deadline = Instant::now() + duration;
    while rounds < max_rounds.saturating_add(warmup_rounds) && Instant::now() < deadline {
        if rounds == warmup_rounds {
            cpu = Some(CpuMeter::start_all(&args.server_pids()?));
        }
        for _ in 0..shared.control_pings.swap(0, Ordering::Relaxed) {
            let _ = control_tx.write_all(&shared.pong).await;
        }
        goal += listeners * window;
        shared.goal.store(goal, Ordering::SeqCst);
        shared.round_last.store(0, Ordering::SeqCst);
        let start = Instant::now();
        shared
            .round_start
            .store((start - shared.base).as_nanos() as u64, Ordering::SeqCst);
        control_tx
            .write_all(&requests)
            .await
            .map_err(|e| format!("control client: {e}"))?;
        let finished = tokio::time::timeout(ROUND_TIMEOUT, shared.done.notified()).await;
        let took = start.elapsed();
        rounds += 1;
        if finished.is_err() {
            incomplete += 1;
            shared.error(format!(
                "round {rounds}: {} of {} deliveries after {} s",
                shared.delivered.load(Ordering::SeqCst) - (goal - listeners * window),
                listeners * window,
                ROUND_TIMEOUT.as_secs()
            ));
            break;
        }
        if rounds > warmup_rounds {
            counted_rounds += 1;
            busy += took;
            last.record(Duration::from_nanos(
                shared.round_last.load(Ordering::SeqCst),
            ));
        }
    }
    let usage = cpu.map(|c| c.stop());
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), reader).await;
    let deliveries = counted_rounds * listeners * window;
    let secs = busy.as_secs_f64().max(1e-9);
    let rate = deliveries as f64 / secs;
    let (cpu_fields, server_pct, loadgen_pct, per_cpu) = match usage {
        Some(u) => (
            u.fields(),
            u.server,
            u.loadgen,
            u.per_server_cpu_second(deliveries),
        ),
        None => (
            "server_cpu_pct=NaN loadgen_cpu_pct=NaN other_cpu_pct=NaN".to_owned(),
            f64::NAN,
            f64::NAN,
            f64::NAN,
        ),
    };
    let label = args.label();
    let dropped = shared.dropped.load(Ordering::Relaxed);
    let failed = shared.failed.load(Ordering::Relaxed);
    let first_error = shared
        .first_error
        .lock()
        .expect("not poisoned")
        .take()
        .map(|e| format!(" first_error=\"{}\"", e.replace('"', "'")))
        .unwrap_or_default();
    emit(
        &format!(
            "mode=broadcast label={label} clients={listeners} connect_failed={failed} size={size} window={window} \
             rounds={counted_rounds} incomplete_rounds={incomplete} deliveries={deliveries} deliveries_per_s={rate:.0} \
             {} dropped={dropped} {cpu_fields} deliveries_per_server_cpu_s={per_cpu:.0}{first_error}",
            last.fields("last_"),
        ),
        &format!(
            "broadcast {label}: {} deliveries/s to {listeners} clients ({window} per round, {counted_rounds} rounds); \
             last client served after {}; server {server_pct:.0}% CPU, load generator {loadgen_pct:.0}%; \
             {incomplete} incomplete rounds, {dropped} dropped, {failed} failed to connect",
            thousands(rate),
            last.human(),
        ),
    );
    Ok(())
}

/// One listener: connect (limited concurrency), then count the broadcast messages.
async fn listener(shared: Arc<Shared>, mut stop: watch::Receiver<bool>, n: usize) {
    let permit = shared.connecting.acquire().await;
    let connected = tokio::time::timeout(Duration::from_secs(10), async {
        let source = spread_source(&shared.target, n);
        let (mut s, mut rb) = ws_connect_from(&shared.target, None, 4096, source).await?;
        ws_read_open(&mut s, &mut rb).await?;
        Ok::<_, std::io::Error>((s, rb))
    })
    .await;
    drop(permit);
    let (mut s, mut rb) = match connected {
        Ok(Ok(x)) => x,
        other => {
            let e = match other {
                Ok(Err(e)) => e.to_string(),
                _ => "timed out after 10 s".to_owned(),
            };
            shared.error(format!("connect: {e}"));
            shared.failed.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    shared.connected.fetch_add(1, Ordering::Relaxed);
    let mut reply = Vec::new();
    loop {
        let read = tokio::select! {
            r = rb.fill(&mut s) => r,
            _ = stop.changed() => break,
        };
        if let Err(e) = read {
            shared.error(format!("listener: {e}"));
            shared.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let now_ns = shared.base.elapsed().as_nanos() as u64;
        while let Some(f) = parse_frame(rb.data()) {
            let payload = f.payload(rb.data());
            match (f.op, payload.first()) {
                (OP_TEXT, Some(b'4')) => {
                    if f.len != shared.expect_len {
                        shared.error(format!(
                            "message of {} bytes, expected {}",
                            f.len, shared.expect_len
                        ));
                    }
                    let start = shared.round_start.load(Ordering::SeqCst);
                    shared
                        .round_last
                        .fetch_max(now_ns.saturating_sub(start), Ordering::SeqCst);
                    let n = shared.delivered.fetch_add(1, Ordering::SeqCst) + 1;
                    if n == shared.goal.load(Ordering::SeqCst) {
                        shared.done.notify_one();
                    }
                }
                (OP_TEXT, Some(b'2')) => reply.extend_from_slice(&shared.pong),
                (OP_PING, _) => reply.extend_from_slice(&frame(OP_PONG, payload)),
                (OP_CLOSE, _) | (OP_TEXT, Some(b'1')) => {
                    shared.error("the server closed a listener".to_owned());
                    shared.dropped.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                _ => {}
            }
            rb.consume(f.total());
        }
        if !reply.is_empty() {
            if s.write_all(&reply).await.is_err() {
                shared.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
            reply.clear();
        }
    }
    let close = frame(OP_CLOSE, &1000u16.to_be_bytes());
    let _ = tokio::time::timeout(Duration::from_millis(100), s.write_all(&close)).await;
}
