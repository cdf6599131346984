//! `echo`: C WebSocket clients, each keeping W messages of S bytes in flight.
//!
//! Hot path: the W frames are precomputed (masked) in one buffer and a batch is one
//! `write`; each wakeup is one `read` into a per-client buffer parsed in place; the send
//! times live in a fixed ring; latencies go into a fixed histogram. Nothing is allocated
//! per message.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::cli::{Args, Target};
use crate::metrics::CpuMeter;
use crate::report::{Stats, Window, emit, thousands};
use crate::wire::{
    OP_BINARY, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, ReadBuf, frame, parse_frame, test_payload,
    ws_connect, ws_read_open,
};

/// Options of this mode.
pub(crate) const OPTIONS: &[&str] = &[
    "clients", "size", "window", "batch", "binary", "duration", "warmup", "deflate",
];

/// With `--deflate`, one compressed echo in this many is inflated to check its length.
const INFLATE_CHECK_EVERY: u64 = 64;

/// What every client of a run shares.
struct Plan {
    /// `window` copies of the message frame, back to back.
    frames: Vec<u8>,
    frame_len: usize,
    window: usize,
    batch: usize,
    /// Opcode and payload length of a correct echo.
    echo_op: u8,
    echo_len: usize,
    pong: Vec<u8>,
    run: Window,
}

/// Runs the mode.
pub(crate) async fn run(args: &Args, target: Target) -> Result<(), String> {
    let clients: usize = args.get("clients", 100)?;
    let size: usize = args.get("size", 32)?;
    let window: usize = args.get("window", 10)?;
    let batch: usize = args.get("batch", window)?;
    let binary = args.flag("binary");
    let duration = args.seconds("duration", 8.0)?;
    let warmup = args.seconds("warmup", 1.0)?;
    if !(1..=15_000).contains(&clients) || !(1..=4096).contains(&window) {
        return Err("--clients must be 1..=15000 and --window 1..=4096".into());
    }
    let batch = batch.clamp(1, window);

    let payload = test_payload(size, binary);
    let (op, message) = if binary {
        (OP_BINARY, payload)
    } else {
        let mut m = Vec::with_capacity(size + 1);
        m.push(b'4');
        m.extend_from_slice(&payload);
        (OP_TEXT, m)
    };
    let one = if target.deflate && message.len() >= crate::wire::DEFLATE_THRESHOLD {
        crate::wire::deflated_frame(op, &message)
    } else {
        frame(op, &message)
    };
    let rss_before = args
        .server_pid()?
        .and_then(|pid| crate::metrics::status_kb(pid, "VmRSS"));
    let mut connections = Vec::with_capacity(clients);
    let mut connect_failed = 0u64;
    let mut first_error = None;
    for _ in 0..clients {
        let attempt = tokio::time::timeout(Duration::from_secs(5), async {
            let (mut s, mut rb) = ws_connect(&target, None, 64 * 1024).await?;
            ws_read_open(&mut s, &mut rb).await?;
            Ok::<_, std::io::Error>((s, rb))
        })
        .await;
        match attempt {
            Ok(Ok(c)) => connections.push(c),
            Ok(Err(e)) => {
                connect_failed += 1;
                first_error.get_or_insert_with(|| format!("connect: {e}"));
            }
            Err(_) => {
                connect_failed += 1;
                first_error.get_or_insert_with(|| "connect: timed out".to_owned());
            }
        }
    }
    if connections.is_empty() {
        return Err(format!(
            "no client connected ({})",
            first_error.unwrap_or_default()
        ));
    }
    let run = Window::new(warmup, duration);
    let plan = Arc::new(Plan {
        frames: one.repeat(window),
        frame_len: one.len(),
        window,
        batch,
        echo_op: op,
        echo_len: message.len(),
        pong: frame(OP_TEXT, b"3"),
        run,
    });
    let connected = connections.len();
    let tasks: Vec<_> = connections
        .into_iter()
        .map(|(s, rb)| tokio::spawn(client(s, rb, Arc::clone(&plan))))
        .collect();
    tokio::time::sleep_until(run.from.into()).await;
    let cpu = CpuMeter::start_all(&args.server_pids()?);
    tokio::time::sleep_until(run.until.into()).await;
    let usage = cpu.stop();
    // The server's memory with every client busy (against before they connected).
    let rss_busy = args
        .server_pid()?
        .and_then(|pid| crate::metrics::status_kb(pid, "VmRSS"));
    let mut total = Stats::default();
    for t in tasks {
        match t.await {
            Ok(s) => total.merge(s),
            Err(e) => total.error(format!("client task: {e}")),
        }
    }
    if let Some(e) = first_error {
        total.first_error.get_or_insert(e);
    }
    let rate = total.ops as f64 / run.seconds();
    let per_cpu = usage.per_server_cpu_second(total.ops);
    let label = args.label();
    emit(
        &format!(
            "mode=echo label={label} clients={connected} connect_failed={connect_failed} size={size} \
             binary={binary} window={window} batch={batch} duration_s={:.1} msgs={} msgs_per_s={rate:.0} \
             {} errors={} {} msgs_per_server_cpu_s={per_cpu:.0} deflate={} compressed_echoes={} \
             rss_before_kb={} rss_busy_kb={}{}",
            run.seconds(),
            total.ops,
            total.latency.fields(""),
            total.errors,
            usage.fields(),
            target.deflate,
            total.compressed,
            rss_before.map_or(-1, |v| v as i64),
            rss_busy.map_or(-1, |v| v as i64),
            total.error_field()
        ),
        &format!(
            "echo {label}: {} msgs/s ({connected} clients, {size} B {}, {window} in flight, batch {batch}); \
             RTT {}; server {:.0}% CPU, load generator {:.0}%; {} msgs per server CPU-second; {} errors",
            thousands(rate),
            if binary { "binary" } else { "text" },
            total.latency.human(),
            usage.server,
            usage.loadgen,
            thousands(per_cpu),
            total.errors + connect_failed
        ),
    );
    Ok(())
}

/// One client's closed loop until the end of the run.
async fn client(mut s: TcpStream, mut rb: ReadBuf, plan: Arc<Plan>) -> Stats {
    let mut stats = Stats::default();
    let mut sent_at: VecDeque<Instant> = VecDeque::with_capacity(plan.window);
    let mut pongs = 0usize;
    let mut control: Vec<u8> = Vec::new();
    let end = tokio::time::sleep_until(plan.run.until.into());
    tokio::pin!(end);
    'run: loop {
        let now = Instant::now();
        if now >= plan.run.until {
            break;
        }
        let free = plan.window - sent_at.len();
        if sent_at.is_empty() || free >= plan.batch {
            let bytes = &plan.frames[..free * plan.frame_len];
            tokio::select! {
                biased;
                r = s.write_all(bytes) => if let Err(e) = r {
                    stats.error(format!("write: {e}"));
                    break;
                },
                _ = &mut end => break,
            }
            sent_at.extend(std::iter::repeat_n(now, free));
        }
        if pongs > 0 || !control.is_empty() {
            for _ in 0..pongs {
                control.extend_from_slice(&plan.pong);
            }
            pongs = 0;
            if let Err(e) = s.write_all(&control).await {
                stats.error(format!("write: {e}"));
                break;
            }
            control.clear();
        }
        tokio::select! {
            biased;
            r = rb.fill(&mut s) => if let Err(e) = r {
                stats.error(format!("read: {e}"));
                break;
            },
            _ = &mut end => break,
        }
        let now = Instant::now();
        let counting = plan.run.contains(now);
        while let Some(f) = parse_frame(rb.data()) {
            let payload = f.payload(rb.data());
            let is_echo = f.op == plan.echo_op
                && (f.op == OP_BINARY || f.compressed || payload.first() == Some(&b'4'));
            if is_echo && f.compressed {
                stats.compressed += 1;
                if stats.compressed % INFLATE_CHECK_EVERY == 1 {
                    match crate::wire::inflated_len(payload) {
                        Some(n) if n == plan.echo_len => {}
                        Some(n) => stats.error(format!(
                            "echo of {n} bytes inflated, sent {}",
                            plan.echo_len
                        )),
                        None => stats.error("a compressed echo does not inflate"),
                    }
                }
            }
            if is_echo {
                match sent_at.pop_front() {
                    Some(t0) if counting => {
                        stats.ops += 1;
                        stats.latency.record(now - t0);
                    }
                    Some(_) => {}
                    None => stats.error("an echo nobody asked for"),
                }
                if f.len != plan.echo_len && !f.compressed {
                    stats.error(format!("echo of {} bytes, sent {}", f.len, plan.echo_len));
                }
            } else {
                match (f.op, payload.first()) {
                    (OP_TEXT, Some(b'2')) => pongs += 1,
                    (OP_TEXT, Some(b'1')) => {
                        stats.error("the server closed the session");
                        break 'run;
                    }
                    (OP_CLOSE, _) => {
                        stats.error("the server closed the WebSocket");
                        break 'run;
                    }
                    (OP_PING, _) => control.extend_from_slice(&frame(OP_PONG, payload)),
                    _ => {} // noop, pong...
                }
            }
            rb.consume(f.total());
        }
    }
    let close = frame(OP_CLOSE, &1000u16.to_be_bytes());
    let _ = tokio::time::timeout(Duration::from_millis(200), s.write_all(&close)).await;
    stats
}
