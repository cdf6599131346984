//! `conns`: idle WebSocket sessions, opened stepwise (`--steps 1000,5000,10000`), each
//! answering the server's pings. After each step settles, the server's RSS is read from
//! `/proc/PID/status`: RSS per connection against the baseline and against the previous
//! step. With `--hold S` the connections stay open S more seconds at the end, long enough
//! to see every session's pings: a ping more than pingInterval + 1 s after the previous one
//! (or after the open packet) is late, and a session still waiting for one at the end is
//! overdue. The server's CPU while idle is reported too.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::sync::{Semaphore, watch};

use crate::cli::{Args, Target, parse_steps};
use crate::metrics::{CpuMeter, status_kb};
use crate::report::{emit, thousands};
use crate::wire::{
    OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, frame, parse_frame, spread_source, ws_connect_from,
    ws_read_open,
};

/// Options of this mode.
pub(crate) const OPTIONS: &[&str] = &["steps", "settle", "hold", "connect-concurrency", "deflate"];

/// A ping later than the interval by more than this is late.
const LATE_SLACK: Duration = Duration::from_secs(1);

#[derive(Default)]
struct Counters {
    alive: AtomicU64,
    failed: AtomicU64,
    /// Connections that finished connecting (or failed to).
    settled: AtomicU64,
    /// Connections the server ended.
    dropped: AtomicU64,
    pings: AtomicU64,
    late: AtomicU64,
    max_gap_ms: AtomicU64,
    overdue: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl Counters {
    fn error(&self, e: String) {
        let mut first = self.first_error.lock().expect("not poisoned");
        first.get_or_insert(e);
    }
}

struct Shared {
    target: Target,
    connecting: Semaphore,
    counters: Counters,
    pong: Vec<u8>,
}

/// The soft open-file limit of this process, from `/proc/self/limits`.
fn open_file_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_ascii_whitespace().nth(3)?.parse().ok()
}

/// Runs the mode.
pub(crate) async fn run(args: &Args, target: Target) -> Result<(), String> {
    let steps = parse_steps(&args.string("steps", "1000,5000,10000"))?;
    let settle = args.seconds("settle", 3.0)?;
    let hold = args.seconds("hold", 0.0)?;
    let concurrency: usize = args.get("connect-concurrency", 100)?;
    let pid = args
        .server_pid()?
        .ok_or("conns needs --server-pid (it reads the server's RSS)")?;
    let label = args.label();
    let limit = open_file_limit().unwrap_or(1024).saturating_sub(100);
    if let Some(&too_many) = steps.iter().find(|&&n| n > limit) {
        return Err(format!(
            "step {too_many} is above this process's open-file limit less 100 ({limit}): raise `ulimit -n`"
        ));
    }
    let shared = Arc::new(Shared {
        target,
        connecting: Semaphore::new(concurrency.clamp(1, 1000)),
        counters: Counters::default(),
        pong: frame(OP_TEXT, b"3"),
    });
    let c = &shared.counters;
    let (stop_tx, stop_rx) = watch::channel(false);
    let base_kb = status_kb(pid, "VmRSS").ok_or("cannot read the server's VmRSS")?;
    println!("conns {label}: server baseline VmRSS {base_kb} kB");
    let mut tasks = Vec::new();
    let (mut launched, mut prev_kb, mut prev_alive) = (0u64, base_kb, 0u64);
    let started = Instant::now();
    for &step in &steps {
        let step = step as u64;
        if step <= launched {
            continue;
        }
        let t = Instant::now();
        let new = step - launched;
        for _ in launched..step {
            let n = tasks.len();
            tasks.push(tokio::spawn(hold_one(
                Arc::clone(&shared),
                stop_rx.clone(),
                n,
            )));
        }
        launched = step;
        // Every wait is bounded: 120 s per step.
        while c.settled.load(Ordering::Relaxed) < launched && t.elapsed() < Duration::from_secs(120)
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let connect_s = t.elapsed().as_secs_f64();
        tokio::time::sleep(settle).await;
        let rss_kb = status_kb(pid, "VmRSS").unwrap_or(0);
        let hwm_kb = status_kb(pid, "VmHWM").unwrap_or(0);
        let alive = c.alive.load(Ordering::Relaxed);
        let per_conn = (rss_kb as f64 - base_kb as f64) * 1024.0 / alive.max(1) as f64;
        let incremental =
            (rss_kb as f64 - prev_kb as f64) * 1024.0 / (alive as f64 - prev_alive as f64).max(1.0);
        let failed = c.failed.load(Ordering::Relaxed);
        emit(
            &format!(
                "mode=conns label={label} step={step} alive={alive} failed={failed} dropped={} connect_s={connect_s:.2} \
                 conn_per_s={:.0} rss_kb={rss_kb} hwm_kb={hwm_kb} base_kb={base_kb} bytes_per_conn={per_conn:.0} \
                 incr_bytes_per_conn={incremental:.0}",
                c.dropped.load(Ordering::Relaxed),
                new as f64 / connect_s.max(1e-6),
            ),
            &format!(
                "conns {label}: {alive} open ({failed} failed), server RSS {:.1} MiB: {} B per connection \
                 ({} B each since the previous step); connected at {}/s",
                rss_kb as f64 / 1024.0,
                thousands(per_conn),
                thousands(incremental),
                thousands(new as f64 / connect_s.max(1e-6)),
            ),
        );
        prev_kb = rss_kb;
        prev_alive = alive;
        if alive == 0 || started.elapsed() > Duration::from_secs(240) {
            break;
        }
    }
    let cpu = CpuMeter::start(Some(pid));
    tokio::time::sleep(hold).await;
    let idle = cpu.stop();
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    let first_error = c
        .first_error
        .lock()
        .expect("not poisoned")
        .take()
        .map(|e| format!(" first_error=\"{}\"", e.replace('"', "'")))
        .unwrap_or_default();
    let (pings, late, overdue) = (
        c.pings.load(Ordering::Relaxed),
        c.late.load(Ordering::Relaxed),
        c.overdue.load(Ordering::Relaxed),
    );
    emit(
        &format!(
            "mode=conns_summary label={label} opened={launched} failed={} dropped={} hold_s={:.0} pings={pings} \
             late_pings={late} overdue={overdue} max_ping_gap_ms={} idle_server_cpu_pct={:.1} total_s={:.1}{first_error}",
            c.failed.load(Ordering::Relaxed),
            c.dropped.load(Ordering::Relaxed),
            hold.as_secs_f64(),
            c.max_gap_ms.load(Ordering::Relaxed),
            idle.server,
            started.elapsed().as_secs_f64()
        ),
        &format!(
            "conns {label}: {} failed, {} dropped by the server; {pings} pings ({late} late, {overdue} overdue at the end, \
             longest gap {} ms); server {:.1}% CPU while idle",
            c.failed.load(Ordering::Relaxed),
            c.dropped.load(Ordering::Relaxed),
            c.max_gap_ms.load(Ordering::Relaxed),
            idle.server
        ),
    );
    Ok(())
}

/// One idle session: connect (limited concurrency), then answer pings until told to stop.
async fn hold_one(shared: Arc<Shared>, mut stop: watch::Receiver<bool>, n: usize) {
    let c = &shared.counters;
    let permit = shared.connecting.acquire().await;
    let connected = tokio::time::timeout(Duration::from_secs(10), async {
        let source = spread_source(&shared.target, n);
        let (mut s, mut rb) = ws_connect_from(&shared.target, None, 512, source).await?;
        let open = ws_read_open(&mut s, &mut rb).await?;
        Ok::<_, std::io::Error>((s, rb, open))
    })
    .await;
    drop(permit);
    let (mut s, mut rb, open) = match connected {
        Ok(Ok(x)) => x,
        Ok(Err(e)) => {
            c.error(format!("connect: {e}"));
            c.failed.fetch_add(1, Ordering::Relaxed);
            c.settled.fetch_add(1, Ordering::Relaxed);
            return;
        }
        Err(_) => {
            c.error("connect: timed out after 10 s".to_owned());
            c.failed.fetch_add(1, Ordering::Relaxed);
            c.settled.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    c.alive.fetch_add(1, Ordering::Relaxed);
    c.settled.fetch_add(1, Ordering::Relaxed);
    let late_after = open.ping_interval + LATE_SLACK;
    let mut last = Instant::now();
    loop {
        let read = tokio::select! {
            r = rb.fill(&mut s) => r,
            _ = stop.changed() => break,
        };
        if let Err(e) = read {
            c.error(format!("idle connection: {e}"));
            c.dropped.fetch_add(1, Ordering::Relaxed);
            c.alive.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        let now = Instant::now();
        let mut reply: Vec<u8> = Vec::new();
        let mut closed = false;
        while let Some(f) = parse_frame(rb.data()) {
            let payload = f.payload(rb.data());
            match (f.op, payload.first()) {
                (OP_TEXT, Some(b'2')) => {
                    let gap = now - last;
                    last = now;
                    c.pings.fetch_add(1, Ordering::Relaxed);
                    c.max_gap_ms
                        .fetch_max(gap.as_millis() as u64, Ordering::Relaxed);
                    if gap > late_after {
                        c.late.fetch_add(1, Ordering::Relaxed);
                    }
                    reply.extend_from_slice(&shared.pong);
                }
                (OP_TEXT, Some(b'1')) | (OP_CLOSE, _) => closed = true,
                (OP_PING, _) => reply.extend_from_slice(&frame(OP_PONG, payload)),
                _ => {}
            }
            rb.consume(f.total());
        }
        if !reply.is_empty() && s.write_all(&reply).await.is_err() {
            closed = true;
        }
        if closed {
            c.error("the server closed an idle session".to_owned());
            c.dropped.fetch_add(1, Ordering::Relaxed);
            c.alive.fetch_sub(1, Ordering::Relaxed);
            return;
        }
    }
    if last.elapsed() > late_after {
        c.overdue.fetch_add(1, Ordering::Relaxed);
    }
    let close = frame(OP_CLOSE, &1000u16.to_be_bytes());
    let _ = tokio::time::timeout(Duration::from_millis(100), s.write_all(&close)).await;
}
