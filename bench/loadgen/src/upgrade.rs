//! `upgrade`: the way browsers connect. Each client loops: polling handshake (on a
//! kept-alive HTTP connection), WebSocket with the session id, `2probe` → `3probe`, `5`,
//! then M echoes over the upgraded WebSocket, then a close.
//!
//! Reports completed upgrades per second, the time from handshake to upgrade, and the
//! echo round trips after the upgrade.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::cli::{Args, Target};
use crate::metrics::{CpuMeter, Histogram};
use crate::report::{Stats, Window, emit, thousands};
use crate::wire::{
    HttpConn, OP_BINARY, OP_CLOSE, OP_TEXT, ReadBuf, frame, get_request, parse_frame, parse_open,
    test_payload, ws_connect,
};

/// Options of this mode.
pub(crate) const OPTIONS: &[&str] = &["clients", "size", "messages", "duration", "warmup"];

struct Plan {
    target: Target,
    handshake: Vec<u8>,
    probe: Vec<u8>,
    upgrade: Vec<u8>,
    /// `messages` message frames back to back.
    frames: Vec<u8>,
    messages: usize,
    close: Vec<u8>,
    run: Window,
}

#[derive(Default)]
struct ClientStats {
    upgrades: Stats,
    echo: Stats,
}

/// Runs the mode.
pub(crate) async fn run(args: &Args, target: Target) -> Result<(), String> {
    let clients: usize = args.get("clients", 20)?;
    let size: usize = args.get("size", 32)?;
    let messages: usize = args.get("messages", 10)?;
    let duration = args.seconds("duration", 5.0)?;
    let warmup = args.seconds("warmup", 1.0)?;
    if !(1..=2000).contains(&clients) || !(1..=1000).contains(&messages) {
        return Err("--clients must be 1..=2000 and --messages 1..=1000".into());
    }
    let mut message = vec![b'4'];
    message.extend_from_slice(&test_payload(size, false));
    let run = Window::new(warmup, duration);
    let plan = Arc::new(Plan {
        handshake: get_request(&target, &target.poll_uri(None)),
        probe: frame(OP_TEXT, b"2probe"),
        upgrade: frame(OP_TEXT, b"5"),
        frames: frame(OP_TEXT, &message).repeat(messages),
        messages,
        close: frame(OP_CLOSE, &1000u16.to_be_bytes()),
        target,
        run,
    });
    let tasks: Vec<_> = (0..clients)
        .map(|_| tokio::spawn(client(Arc::clone(&plan))))
        .collect();
    tokio::time::sleep_until(run.from.into()).await;
    let cpu = CpuMeter::start_all(&args.server_pids()?);
    tokio::time::sleep_until(run.until.into()).await;
    let usage = cpu.stop();
    let mut total = ClientStats::default();
    for t in tasks {
        match t.await {
            Ok(s) => {
                total.upgrades.merge(s.upgrades);
                total.echo.merge(s.echo);
            }
            Err(e) => total.upgrades.error(format!("client task: {e}")),
        }
    }
    let secs = run.seconds();
    let up = &total.upgrades;
    let echo = &total.echo;
    let label = args.label();
    emit(
        &format!(
            "mode=upgrade label={label} clients={clients} size={size} messages={messages} duration_s={secs:.1} \
             upgrades={} upgrades_per_s={:.0} {} echo_msgs={} echo_msgs_per_s={:.0} {} errors={} {} \
             upgrades_per_server_cpu_s={:.0}{}",
            up.ops,
            up.ops as f64 / secs,
            up.latency.fields("upgrade_"),
            echo.ops,
            echo.ops as f64 / secs,
            echo.latency.fields("echo_"),
            up.errors + echo.errors,
            usage.fields(),
            usage.per_server_cpu_second(up.ops),
            if up.first_error.is_some() {
                up.error_field()
            } else {
                echo.error_field()
            }
        ),
        &format!(
            "upgrade {label}: {} upgrades/s ({clients} clients; handshake to upgrade {}), then {} echoes/s \
             ({messages} per upgrade; {}); server {:.0}% CPU, load generator {:.0}%; {} errors",
            thousands(up.ops as f64 / secs),
            up.latency.human(),
            thousands(echo.ops as f64 / secs),
            echo.latency.human(),
            usage.server,
            usage.loadgen,
            up.errors + echo.errors
        ),
    );
    Ok(())
}

async fn client(plan: Arc<Plan>) -> ClientStats {
    let mut stats = ClientStats::default();
    let mut http = HttpConn::new(plan.target.addr);
    let end = tokio::time::sleep_until(plan.run.until.into());
    tokio::pin!(end);
    // Bounded: a failing server makes every iteration fail fast.
    for _ in 0..1_000_000 {
        if Instant::now() >= plan.run.until {
            break;
        }
        let mut latency = Histogram::default();
        let result = tokio::select! {
            biased;
            r = once(&plan, &mut http, &mut latency) => r,
            _ = &mut end => break,
        };
        match result {
            Ok(upgraded_in) => {
                if plan.run.contains(Instant::now()) {
                    stats.upgrades.ops += 1;
                    stats.upgrades.latency.record(upgraded_in);
                    stats.echo.ops += plan.messages as u64;
                    stats.echo.latency.merge(&latency);
                }
            }
            Err(e) => {
                stats.upgrades.error(e);
                http.close();
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    stats
}

/// One session: handshake, upgrade, echoes, close. Returns the time to upgrade and records
/// the echo latencies into `latency`.
async fn once(
    plan: &Plan,
    http: &mut HttpConn,
    latency: &mut Histogram,
) -> Result<Duration, String> {
    let t0 = Instant::now();
    let status = http
        .request(&plan.handshake)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    if status != 200 {
        return Err(format!("handshake: HTTP {status}"));
    }
    let open = parse_open(&http.body).map_err(|e| format!("handshake: {e}"))?;
    let (mut ws, mut rb) = ws_connect(&plan.target, Some(&open.sid), 4096)
        .await
        .map_err(|e| format!("websocket: {e}"))?;
    ws.write_all(&plan.probe)
        .await
        .map_err(|e| format!("probe: {e}"))?;
    wait_text(&mut ws, &mut rb, b"3probe", 1)
        .await
        .map_err(|e| format!("probe answer: {e}"))?;
    ws.write_all(&plan.upgrade)
        .await
        .map_err(|e| format!("upgrade: {e}"))?;
    let upgraded_in = t0.elapsed();
    let sent = Instant::now();
    ws.write_all(&plan.frames)
        .await
        .map_err(|e| format!("echo: {e}"))?;
    let mut got = 0;
    while got < plan.messages {
        let n = wait_text(&mut ws, &mut rb, b"4", plan.messages - got)
            .await
            .map_err(|e| format!("echo: {e}"))?;
        let now = Instant::now();
        for _ in 0..n {
            latency.record(now - sent);
        }
        got += n;
    }
    let _ = ws.write_all(&plan.close).await;
    // Let the server close first (its side keeps the TIME_WAIT), bounded.
    let _ = tokio::time::timeout(Duration::from_millis(200), async {
        loop {
            if rb.fill(&mut ws).await.is_err() {
                break;
            }
            let n = rb.data().len();
            rb.consume(n);
        }
    })
    .await;
    Ok(upgraded_in)
}

/// Reads until at least one text frame starting with `prefix` arrived (other frames, such
/// as noops, are skipped; a ping is answered); returns how many such frames were parsed
/// (at most `max`).
async fn wait_text(
    s: &mut TcpStream,
    rb: &mut ReadBuf,
    prefix: &[u8],
    max: usize,
) -> io::Result<usize> {
    loop {
        let mut n = 0;
        let mut pong = false;
        while n < max {
            let Some(f) = parse_frame(rb.data()) else {
                break;
            };
            let payload = f.payload(rb.data());
            match f.op {
                OP_TEXT if payload.starts_with(prefix) => n += 1,
                OP_TEXT if payload == b"2" => pong = true,
                OP_TEXT if payload.first() == Some(&b'1') => {
                    return Err(io::Error::other("the server closed the session"));
                }
                OP_CLOSE => return Err(io::Error::other("the server closed the WebSocket")),
                OP_BINARY | OP_TEXT => {}
                _ => {}
            }
            rb.consume(f.total());
        }
        if pong {
            s.write_all(&frame(OP_TEXT, b"3")).await?;
        }
        if n > 0 {
            return Ok(n);
        }
        rb.fill(s).await?;
    }
}
