//! The reliability suite: hostile and broken clients against both server bindings, over
//! 127.0.0.1 only, every scenario bounded in count and time.
//!
//! Each scenario starts the e2e server (`e2e_server --runtime tokio|smol`, an echo server)
//! as a child process of its own, drives it from here, reads its memory and file
//! descriptors from `/proc/<pid>/`, and stops it (that one process, by its PID). The
//! scenarios and what each asserts are in `docs/reliability.md`.
//!
//! ```sh
//! cargo build --release -p engineio-tests --bins
//! target/release/reliability                      # every scenario on both bindings
//! target/release/reliability --runtime smol --only frozen
//! ```
//!
//! It prints a table of scenario × binding with the figures measured and exits non-zero
//! when a scenario failed.
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::disallowed_methods)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::{sleep, timeout};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use engineio_tests::child::{ServerProcess, e2e_server_path};

type R<T> = Result<T, String>;

macro_rules! fail {
    ($($t:tt)*) => { return Err(format!($($t)*)) };
}

/// The e2e server's heartbeat unless a scenario says otherwise: a session whose peer
/// stops answering ends 300 + 200 ms after its last pong.
const INTERVAL: Duration = Duration::from_millis(300);
const PING_TIMEOUT: Duration = Duration::from_millis(200);
/// The e2e server's `write_timeout` (the default): an ended session is kept this long to
/// judge late requests and let its sockets linger, then released.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// One row of the table.
struct Row {
    scenario: &'static str,
    binding: String,
    passed: Option<bool>,
    figures: String,
    took: Duration,
}

// ---------------------------------------------------------------------------------------
// Small Engine.IO clients over raw sockets (every wait bounded)
// ---------------------------------------------------------------------------------------

const HANDSHAKE: &[u8] =
    b"GET /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

/// An HTTP/1.1 response read from a raw socket: status and body (by Content-Length).
struct RawResponse {
    status: u16,
    body: Vec<u8>,
}

async fn read_response(stream: &mut TcpStream, wait: Duration) -> R<RawResponse> {
    let deadline = Instant::now() + wait;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let status = head
                .get(9..12)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| format!("not an HTTP response: {head:?}"))?;
            let length = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            let mut body = buf[end + 4..].to_vec();
            while body.len() < length {
                let left = deadline.saturating_duration_since(Instant::now());
                match timeout(left, stream.read(&mut chunk)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => fail!("connection ended inside the body"),
                    Ok(Ok(n)) => body.extend_from_slice(&chunk[..n]),
                    Err(_) => fail!("no complete body within {wait:?}"),
                }
            }
            body.truncate(length);
            return Ok(RawResponse { status, body });
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match timeout(left, stream.read(&mut chunk)).await {
            Ok(Ok(0)) => fail!("connection closed before a response"),
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Ok(Err(e)) => fail!("read: {e}"),
            Err(_) => fail!("no response within {wait:?}"),
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

async fn connect(addr: SocketAddr) -> R<TcpStream> {
    match timeout(Duration::from_secs(5), TcpStream::connect(addr)).await {
        Ok(Ok(s)) => {
            let _ = s.set_nodelay(true);
            Ok(s)
        }
        Ok(Err(e)) => fail!("connect: {e}"),
        Err(_) => fail!("connect: no answer within 5 s"),
    }
}

/// One request on a fresh connection; the response.
async fn request(addr: SocketAddr, bytes: &[u8], wait: Duration) -> R<RawResponse> {
    let mut s = connect(addr).await?;
    s.write_all(bytes)
        .await
        .map_err(|e| format!("write: {e}"))?;
    read_response(&mut s, wait).await
}

fn sid_of(body: &[u8]) -> R<String> {
    let text = String::from_utf8_lossy(body);
    let start = text
        .find("\"sid\":\"")
        .ok_or_else(|| format!("no sid in {text:?}"))?
        + 7;
    let end = text[start..]
        .find('"')
        .ok_or_else(|| format!("no sid in {text:?}"))?;
    Ok(text[start..start + end].to_owned())
}

/// A polling handshake: the sid.
async fn polling_handshake(addr: SocketAddr) -> R<String> {
    let r = request(addr, HANDSHAKE, Duration::from_secs(5)).await?;
    if r.status != 200 {
        fail!(
            "handshake answered {}: {:?}",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
    }
    sid_of(&r.body)
}

fn polling_request(method: &str, sid: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "{method} /engine.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    );
    if method == "POST" {
        let _ = write!(
            r,
            "Content-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\n",
            body.len()
        );
    }
    r.push_str("\r\n");
    let mut bytes = r.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

/// A WebSocket session (`transport=websocket`, with `sid` for an upgrade); for a new
/// session, the open packet has been read.
async fn ws_open(addr: SocketAddr, sid: Option<&str>) -> R<Ws> {
    let query = sid.map(|s| format!("&sid={s}")).unwrap_or_default();
    let url = format!("ws://{addr}/engine.io/?EIO=4&transport=websocket{query}");
    let (mut ws, _) = match timeout(
        Duration::from_secs(5),
        tokio_tungstenite::connect_async(url),
    )
    .await
    {
        Ok(Ok(ws)) => ws,
        Ok(Err(e)) => fail!("websocket handshake: {e}"),
        Err(_) => fail!("websocket handshake: no answer within 5 s"),
    };
    if sid.is_none() {
        match ws_next(&mut ws, Duration::from_secs(5)).await? {
            Some(WsMessage::Text(t)) if t.starts_with('0') => {}
            other => fail!("expected the open packet, got {other:?}"),
        }
    }
    Ok(ws)
}

/// The next frame, `None` at the end of the stream.
async fn ws_next(ws: &mut Ws, wait: Duration) -> R<Option<WsMessage>> {
    match timeout(wait, ws.next()).await {
        Ok(Some(Ok(m))) => Ok(Some(m)),
        Ok(Some(Err(_))) | Ok(None) => Ok(None),
        Err(_) => fail!("no frame within {wait:?}"),
    }
}

/// The next data frame, answering Engine.IO pings.
async fn ws_next_data(ws: &mut Ws, wait: Duration) -> R<Option<String>> {
    let deadline = Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match ws_next(ws, left).await? {
            Some(WsMessage::Text(t)) if t.as_str() == "2" => {
                ws.send(WsMessage::text("3"))
                    .await
                    .map_err(|e| format!("pong: {e}"))?;
            }
            Some(WsMessage::Text(t)) => return Ok(Some(t.as_str().to_owned())),
            Some(WsMessage::Close(_)) | None => return Ok(None),
            Some(_) => {}
        }
    }
}

fn tcp_of(ws: &Ws) -> Option<&TcpStream> {
    match ws.get_ref() {
        tokio_tungstenite::MaybeTlsStream::Plain(s) => Some(s),
        _ => None,
    }
}

/// The figures of a list of durations: p50, p99, max in milliseconds.
fn percentiles(mut v: Vec<Duration>) -> (f64, f64, f64) {
    if v.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    v.sort();
    let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1e3;
    (at(0.50), at(0.99), at(1.0))
}

/// Waits (at most `wait`) until the server's descriptor count is `want`; the count seen
/// last and how long it took.
async fn fds_back(server: &ServerProcess, want: usize, wait: Duration) -> (usize, Duration) {
    let start = Instant::now();
    loop {
        let now = server.fds();
        if now == want || start.elapsed() >= wait {
            return (now, start.elapsed());
        }
        sleep(Duration::from_millis(20)).await;
    }
}

/// The server's descriptor count once it has settled: one handshake has been served (a
/// runtime opens some descriptors lazily) and two readings 100 ms apart agree.
async fn baseline_fds(server: &ServerProcess) -> R<usize> {
    polling_handshake(server.addr()).await?;
    let mut last = server.fds();
    for _ in 0..30 {
        sleep(Duration::from_millis(100)).await;
        let now = server.fds();
        if now == last {
            return Ok(now);
        }
        last = now;
    }
    fail!("the server's descriptor count did not settle within 3 s")
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

// ---------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------

/// A connection whose receive buffer is 4 KB: a peer that stops reading fills it fast.
async fn connect_small_buffer(addr: SocketAddr) -> R<TcpStream> {
    let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
    socket
        .set_recv_buffer_size(4096)
        .map_err(|e| e.to_string())?;
    timeout(Duration::from_secs(5), socket.connect(addr))
        .await
        .map_err(|_| "connect timed out".to_owned())?
        .map_err(|e| format!("connect: {e}"))
}

/// How a session whose peer stopped reading ended: at `due` (its heartbeat over), a polling
/// GET asks for its sid; then the server's descriptors must come back to `fds_before`
/// within 15 s (the heartbeat plus a write timeout of a few seconds).
struct StuckEnd {
    answered_400: bool,
    figures: String,
    fds_back: bool,
}

async fn stuck_session_end(
    server: &ServerProcess,
    sid: &str,
    due: Instant,
    fds_before: usize,
) -> StuckEnd {
    tokio::time::sleep_until(due.into()).await;
    let asked = Instant::now();
    let answer = request(
        server.addr(),
        &polling_request("GET", sid, b""),
        Duration::from_secs(3),
    )
    .await;
    let sid_status = match &answer {
        Ok(r) => format!("{} after {} ms", r.status, asked.elapsed().as_millis()),
        Err(e) => format!("no answer ({e})"),
    };
    let (fds_after, fd_wait) = fds_back(server, fds_before, Duration::from_secs(15)).await;
    StuckEnd {
        answered_400: matches!(&answer, Ok(r) if r.status == 400),
        figures: format!(
            "sid GET: {sid_status}; fds {fds_before} -> {fds_after} ({:.1} s after the heartbeat)",
            fd_wait.as_secs_f64()
        ),
        fds_back: fds_after == fds_before,
    }
}

/// A WebSocket client with a small receive buffer sends 10 KB echo requests and never
/// reads. Its session must end on the heartbeat, its sid must be answered 400 at once,
/// and the server must close its socket within a bounded time.
async fn never_reads(binary: PathBuf, runtime: String) -> R<String> {
    let server = ServerProcess::start(&binary, &runtime, &[]);
    let addr = server.addr();
    let fds_before = baseline_fds(&server).await?;
    let sid = polling_handshake(addr).await?;
    // Upgrade that session (the sid is then the one the GET below asks about).
    let stream = connect_small_buffer(addr).await?;
    let url = format!("ws://{addr}/engine.io/?EIO=4&transport=websocket&sid={sid}");
    let (mut ws, _) = timeout(
        Duration::from_secs(5),
        tokio_tungstenite::client_async(url, tokio_tungstenite::MaybeTlsStream::Plain(stream)),
    )
    .await
    .map_err(|_| "websocket handshake timed out".to_owned())?
    .map_err(|e| format!("websocket handshake: {e}"))?;
    ws.send(WsMessage::text("2probe"))
        .await
        .map_err(|e| e.to_string())?;
    match ws_next(&mut ws, Duration::from_secs(5)).await? {
        Some(WsMessage::Text(t)) if t.as_str() == "3probe" => {}
        other => fail!("expected 3probe, got {other:?}"),
    }
    ws.send(WsMessage::text("5"))
        .await
        .map_err(|e| e.to_string())?;
    let upgraded = Instant::now();
    // From now on: write 10 KB echo requests, never read.
    let message = format!("4{}", "x".repeat(10_000));
    let mut sent = 0usize;
    let mut stalled_after = None;
    let write_until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < write_until && sent < 64 << 20 {
        match timeout(
            Duration::from_millis(500),
            ws.send(WsMessage::text(message.clone())),
        )
        .await
        {
            Ok(Ok(())) => sent += message.len(),
            Ok(Err(_)) => break, // the server closed or reset: fine, that is an end
            Err(_) => {
                stalled_after = Some(upgraded.elapsed());
                break;
            }
        }
    }
    // The session has had interval + timeout (and a little) since its last pong.
    let due = upgraded + INTERVAL + PING_TIMEOUT + Duration::from_millis(300);
    let end = stuck_session_end(&server, &sid, due, fds_before).await;
    drop(ws);
    let figures = format!(
        "wrote {:.1} MB before the server stopped reading ({}); {}",
        sent as f64 / 1e6,
        stalled_after.map_or("never stalled".into(), |d| format!(
            "stall at {:.1} s",
            d.as_secs_f64()
        )),
        end.figures
    );
    if !end.answered_400 || !end.fds_back {
        return Err(figures);
    }
    Ok(figures)
}

/// The polling mirror: a long-poll GET whose answer (10 MB of 10 KB echoes) the client
/// never reads, on a socket with a small receive buffer. The session must end on the
/// heartbeat, its sid must be answered 400 at once, and the GET's socket must be closed
/// within a bounded time.
async fn never_reads_polling(binary: PathBuf, runtime: String) -> R<String> {
    let server = ServerProcess::start(&binary, &runtime, &[]);
    let addr = server.addr();
    let fds_before = baseline_fds(&server).await?;
    let sid = polling_handshake(addr).await?;
    let opened = Instant::now();
    // Queue about 10 MB of echoes: POSTs of 90 messages of 10 KB each.
    let message = format!("4{}", "x".repeat(10_000));
    let batch = vec![message.as_str(); 90].join("\u{1e}");
    let mut posts = connect(addr).await?;
    let mut queued = 0;
    for _ in 0..11 {
        posts
            .write_all(&polling_request("POST", &sid, batch.as_bytes()))
            .await
            .map_err(|e| e.to_string())?;
        let r = read_response(&mut posts, Duration::from_secs(5)).await?;
        if r.status != 200 {
            fail!("POST answered {}", r.status);
        }
        queued += 90;
    }
    drop(posts);
    let mut get = connect_small_buffer(addr).await?;
    get.write_all(&polling_request("GET", &sid, b""))
        .await
        .map_err(|e| e.to_string())?;
    // Never read `get`. The session has had interval + timeout since its handshake.
    let due = opened + INTERVAL + PING_TIMEOUT + Duration::from_millis(300);
    let end = stuck_session_end(&server, &sid, due, fds_before).await;
    drop(get);
    let figures = format!(
        "{queued} echoes of 10 KB queued for an unread GET; {}",
        end.figures
    );
    if !end.answered_400 || !end.fds_back {
        return Err(figures);
    }
    Ok(figures)
}

/// How a churned session ends.
#[derive(Clone, Copy, Debug)]
enum Ending {
    /// Polling: the client sends `1`.
    PollingClose,
    /// Polling: the client never comes back (the heartbeat ends it).
    PollingAbandoned,
    /// Polling: a message and its echo, then `1`.
    PollingEcho,
    /// WebSocket: a close frame.
    WsCloseFrame,
    /// WebSocket: an Engine.IO `1`.
    WsClosePacket,
    /// WebSocket: the client resets the connection.
    WsReset,
    /// WebSocket: the client just goes (FIN, no close frame).
    WsDrop,
    /// Polling upgraded to WebSocket, then the server closes (`__close__`).
    UpgradeServerClose,
    /// A handshake whose connection is reset before its head is complete.
    AbortedHandshake,
    /// WebSocket: the server closes (`__close__`).
    WsServerClose,
}

const ENDINGS: [Ending; 10] = [
    Ending::PollingClose,
    Ending::PollingAbandoned,
    Ending::PollingEcho,
    Ending::WsCloseFrame,
    Ending::WsClosePacket,
    Ending::WsReset,
    Ending::WsDrop,
    Ending::UpgradeServerClose,
    Ending::AbortedHandshake,
    Ending::WsServerClose,
];

async fn one_session(addr: SocketAddr, ending: Ending) -> R<()> {
    let wait = Duration::from_secs(5);
    match ending {
        Ending::PollingClose => {
            let sid = polling_handshake(addr).await?;
            let r = request(addr, &polling_request("POST", &sid, b"1"), wait).await?;
            if r.status != 200 {
                fail!("close POST answered {}", r.status);
            }
        }
        Ending::PollingAbandoned => {
            polling_handshake(addr).await?;
        }
        Ending::PollingEcho => {
            let sid = polling_handshake(addr).await?;
            let mut s = connect(addr).await?;
            s.write_all(&polling_request("POST", &sid, b"4hello"))
                .await
                .map_err(|e| e.to_string())?;
            read_response(&mut s, wait).await?;
            s.write_all(&polling_request("GET", &sid, b""))
                .await
                .map_err(|e| e.to_string())?;
            let r = read_response(&mut s, wait).await?;
            if !String::from_utf8_lossy(&r.body).contains("4hello") {
                fail!("no echo: {:?}", String::from_utf8_lossy(&r.body));
            }
            s.write_all(&polling_request("POST", &sid, b"1"))
                .await
                .map_err(|e| e.to_string())?;
            read_response(&mut s, wait).await?;
        }
        Ending::WsCloseFrame => {
            let mut ws = ws_open(addr, None).await?;
            let _ = ws.close(None).await;
            while let Ok(Some(_)) = ws_next(&mut ws, wait).await {}
        }
        Ending::WsClosePacket => {
            let mut ws = ws_open(addr, None).await?;
            ws.send(WsMessage::text("1"))
                .await
                .map_err(|e| e.to_string())?;
            while let Ok(Some(_)) = ws_next(&mut ws, wait).await {}
        }
        Ending::WsReset => {
            let ws = ws_open(addr, None).await?;
            if let Some(tcp) = tcp_of(&ws) {
                tcp.set_zero_linger().map_err(|e| e.to_string())?;
            }
            drop(ws);
        }
        Ending::WsDrop => {
            let ws = ws_open(addr, None).await?;
            drop(ws);
        }
        Ending::UpgradeServerClose => {
            let sid = polling_handshake(addr).await?;
            let mut ws = ws_open(addr, Some(&sid)).await?;
            ws.send(WsMessage::text("2probe"))
                .await
                .map_err(|e| e.to_string())?;
            match ws_next_data(&mut ws, wait).await? {
                Some(t) if t == "3probe" => {}
                other => fail!("expected 3probe, got {other:?}"),
            }
            ws.send(WsMessage::text("5"))
                .await
                .map_err(|e| e.to_string())?;
            ws.send(WsMessage::text("4__close__"))
                .await
                .map_err(|e| e.to_string())?;
            loop {
                match ws_next_data(&mut ws, wait).await? {
                    None => break,
                    Some(t) if t == "1" || t == "6" => {}
                    Some(_) => {}
                }
            }
        }
        Ending::AbortedHandshake => {
            let mut s = connect(addr).await?;
            s.write_all(b"GET /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nHo")
                .await
                .map_err(|e| e.to_string())?;
            s.set_zero_linger().map_err(|e| e.to_string())?;
            drop(s);
        }
        Ending::WsServerClose => {
            let mut ws = ws_open(addr, None).await?;
            ws.send(WsMessage::text("4__close__"))
                .await
                .map_err(|e| e.to_string())?;
            while let Ok(Some(_)) = ws_next(&mut ws, wait).await {}
        }
    }
    Ok(())
}

/// `n` sessions, every ending in turn, `concurrency` at a time; the errors seen.
async fn churn(addr: SocketAddr, n: usize, concurrency: usize) -> Vec<String> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let next = Arc::clone(&next);
        tasks.push(tokio::spawn(async move {
            let mut errors = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return errors;
                }
                let ending = ENDINGS[i % ENDINGS.len()];
                match timeout(Duration::from_secs(10), one_session(addr, ending)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => errors.push(format!("{ending:?}: {e}")),
                    Err(_) => errors.push(format!("{ending:?}: not done within 10 s")),
                }
            }
        }));
    }
    let mut errors = Vec::new();
    for t in tasks {
        errors.extend(t.await.unwrap_or_default());
    }
    errors
}

/// 10,000 sessions opened and ended every way; the server's RSS must come back within
/// 4 MiB of its baseline and its descriptors back exactly.
///
/// The warm-up is a full round of the same size: an ended session's record is kept for
/// `write_timeout` (5 s) to judge late requests, so a churn of about 3,000 sessions a
/// second holds about 15,000 records at its peak, and the allocator keeps that
/// high-water mark. With it in the baseline, what the measured round adds is what a
/// round leaks (RELIABILITY_CHURN_ROUNDS shows the figure flat over further rounds).
async fn churn_10k(binary: PathBuf, runtime: String) -> R<String> {
    let server = ServerProcess::start(&binary, &runtime, &[]);
    let addr = server.addr();
    // Until the abandoned sessions have timed out and every ended one has been released.
    let settle = INTERVAL + PING_TIMEOUT + WRITE_TIMEOUT + Duration::from_secs(1);
    // Warm-up: thread pools, allocator arenas, the sid generator.
    let rss_start = server.rss();
    let warm = churn(addr, 10_000, 50).await;
    if let Some(e) = warm.first() {
        fail!("warm-up: {} errors, first: {e}", warm.len());
    }
    sleep(settle).await;
    let fds_before = server.fds();
    let rss_before = server.rss();
    let start = Instant::now();
    let errors = churn(addr, 10_000, 50).await;
    let took = start.elapsed();
    let rss_peak = server.rss();
    sleep(settle).await;
    let (fds_after, _) = fds_back(&server, fds_before, Duration::from_secs(5)).await;
    let rss_after = server.rss();
    // RELIABILITY_CHURN_ROUNDS=N: more rounds, to tell a leak (grows every round) from
    // memory kept at its peak (grows once).
    let rounds: usize = std::env::var("RELIABILITY_CHURN_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    for round in 2..rounds + 2 {
        churn(addr, 10_000, 50).await;
        sleep(settle).await;
        eprintln!("   after round {round}: RSS {:.1} MiB", mib(server.rss()));
    }
    let figures = format!(
        "10,000 sessions (10 endings) in {:.1} s ({:.0}/s); RSS {:.1} -> {:.1} MiB (peak {:.1}, \
         delta {:+.2}) {:.1} s after, {:.1} MiB before the warm-up round; fds {fds_before} -> \
         {fds_after}; {} errors",
        took.as_secs_f64(),
        10_000.0 / took.as_secs_f64(),
        mib(rss_before),
        mib(rss_after),
        mib(rss_peak),
        mib(rss_after) - mib(rss_before),
        settle.as_secs_f64(),
        mib(rss_start),
        errors.len()
    );
    if let Some(e) = errors.first() {
        return Err(format!("{figures}; first error: {e}"));
    }
    if fds_after != fds_before || rss_after > rss_before + (4 << 20) {
        return Err(figures);
    }
    Ok(figures)
}

/// 500 WebSocket clients open a session and freeze (they answer nothing; they only watch
/// for the end). Every session must be closed within interval + timeout.
async fn frozen_500(binary: PathBuf, runtime: String) -> R<String> {
    let server = ServerProcess::start(&binary, &runtime, &[]);
    let addr = server.addr();
    let fds_before = baseline_fds(&server).await?;
    let budget = INTERVAL + PING_TIMEOUT;
    let slack = Duration::from_millis(500);
    let gate = Arc::new(tokio::sync::Semaphore::new(100));
    let mut tasks = Vec::new();
    for _ in 0..500 {
        let gate = Arc::clone(&gate);
        tasks.push(tokio::spawn(async move {
            let permit = gate.acquire_owned().await;
            let mut ws = ws_open(addr, None).await?;
            let opened = Instant::now();
            drop(permit);
            // Frozen: never answer; only see when the server ends it.
            loop {
                match ws_next(&mut ws, Duration::from_secs(5)).await {
                    Ok(Some(WsMessage::Close(_))) | Ok(None) => return Ok(opened.elapsed()),
                    Ok(Some(_)) => {}
                    Err(e) => return Err(format!("not closed: {e}")),
                }
            }
        }));
    }
    let mut closes = Vec::new();
    let mut errors = Vec::new();
    for t in tasks {
        match t.await {
            Ok(Ok(d)) => closes.push(d),
            Ok(Err(e)) => errors.push(e),
            Err(e) => errors.push(e.to_string()),
        }
    }
    let (fds_after, _) = fds_back(&server, fds_before, Duration::from_secs(3)).await;
    let late = closes.iter().filter(|d| **d > budget + slack).count();
    let (p50, p99, max) = percentiles(closes.clone());
    let figures = format!(
        "{} of 500 closed; open->close p50 {p50:.0} ms, p99 {p99:.0} ms, max {max:.0} ms \
         (interval + timeout = {} ms; {late} later than +{} ms); fds {fds_before} -> {fds_after}",
        closes.len(),
        budget.as_millis(),
        slack.as_millis()
    );
    if let Some(e) = errors.first() {
        return Err(format!("{figures}; {} errors, first: {e}", errors.len()));
    }
    if late > 0 || fds_after != fds_before {
        return Err(figures);
    }
    Ok(figures)
}

/// Sequential polling handshakes on fresh connections; their latencies.
async fn handshake_latencies(addr: SocketAddr, n: usize) -> R<Vec<Duration>> {
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        let r = request(addr, HANDSHAKE, Duration::from_secs(1)).await?;
        if r.status != 200 {
            fail!("handshake answered {}", r.status);
        }
        v.push(start.elapsed());
    }
    Ok(v)
}

/// 1,000 slowloris connections (a request head a header at a time, never finished) while
/// normal handshakes go on: every handshake is answered within 1 s, and the slowloris
/// connections get 408 and are closed at the head timeout.
async fn slowloris_1000(binary: PathBuf, runtime: String) -> R<String> {
    let head_timeout = Duration::from_secs(3);
    let server = ServerProcess::start(
        &binary,
        &runtime,
        &["--head-timeout-ms", &head_timeout.as_millis().to_string()],
    );
    let addr = server.addr();
    let fds_before = baseline_fds(&server).await?;
    let rss_before = server.rss();
    let quiet = handshake_latencies(addr, 100).await?;
    let opened = Arc::new(AtomicUsize::new(0));
    let mut attackers = Vec::new();
    for _ in 0..1000 {
        let opened = Arc::clone(&opened);
        attackers.push(tokio::spawn(async move {
            let mut s = connect(addr).await?;
            let start = Instant::now();
            s.write_all(b"GET /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                .await
                .map_err(|e| e.to_string())?;
            opened.fetch_add(1, Ordering::Relaxed);
            let mut got = Vec::new();
            let mut buf = [0u8; 1024];
            let mut i = 0u32;
            loop {
                tokio::select! {
                    read = s.read(&mut buf) => match read {
                        Ok(0) | Err(_) => break,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    },
                    _ = sleep(Duration::from_millis(250)) => {
                        i += 1;
                        if start.elapsed() > Duration::from_secs(10) {
                            return Err("still open after 10 s".to_owned());
                        }
                        let _ = s.write_all(format!("X-Slow-{i}: a\r\n").as_bytes()).await;
                    }
                }
            }
            Ok((got.starts_with(b"HTTP/1.1 408"), start.elapsed()))
        }));
    }
    // Wait until the attack is in place (10 s at most), then measure handshakes.
    let deadline = Instant::now() + Duration::from_secs(10);
    while opened.load(Ordering::Relaxed) < 1000 && Instant::now() < deadline {
        sleep(Duration::from_millis(20)).await;
    }
    let in_place = opened.load(Ordering::Relaxed);
    let attack_fds = server.fds();
    let attack_rss = server.rss();
    let attacked = handshake_latencies(addr, 200).await;
    let mut answered_408 = 0;
    let mut closed_at = Vec::new();
    let mut errors = Vec::new();
    for a in attackers {
        match a.await {
            Ok(Ok((got_408, at))) => {
                answered_408 += usize::from(got_408);
                closed_at.push(at);
            }
            Ok(Err(e)) => errors.push(e),
            Err(e) => errors.push(e.to_string()),
        }
    }
    let (fds_after, _) = fds_back(&server, fds_before, Duration::from_secs(3)).await;
    let (q50, q99, _) = percentiles(quiet);
    let (_, _, close_max) = percentiles(closed_at.clone());
    let attacked = attacked?;
    let (a50, a99, amax) = percentiles(attacked);
    let figures = format!(
        "handshake p50/p99 {q50:.2}/{q99:.2} ms quiet, {a50:.2}/{a99:.2} ms (max {amax:.1}) \
         under {in_place} slowloris (server fds {attack_fds}, RSS {:.1} -> {:.1} MiB); \
         {answered_408}/1000 got 408, last closed at {:.1} s (head timeout {} s); \
         fds {fds_before} -> {fds_after}",
        mib(rss_before),
        mib(attack_rss),
        close_max / 1e3,
        head_timeout.as_secs()
    );
    if let Some(e) = errors.first() {
        return Err(format!("{figures}; {} errors, first: {e}", errors.len()));
    }
    if in_place < 1000 || answered_408 < 1000 || fds_after != fds_before {
        return Err(figures);
    }
    Ok(figures)
}

/// 300 connections each send 380 KB of a head that never ends (hyper alone buffers up to
/// about 400 KB a connection for the head timeout: 115 MB here). Each must be refused
/// with 431 once it passes `max_head_size` and the server's memory must not grow by more
/// than 32 MiB.
async fn big_heads_300(binary: PathBuf, runtime: String) -> R<String> {
    let server = ServerProcess::start(&binary, &runtime, &[]);
    let addr = server.addr();
    let fds_before = baseline_fds(&server).await?;
    let rss_before = server.rss();
    let mut head =
        b"GET /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ".to_vec();
    head.resize(380_000, b'a');
    let head = Arc::new(head);
    let mut tasks = Vec::new();
    for _ in 0..300 {
        let head = Arc::clone(&head);
        tasks.push(tokio::spawn(async move {
            let mut s = connect(addr).await?;
            // The server may refuse (and close) before all of it is written.
            let _ = timeout(Duration::from_secs(5), s.write_all(&head)).await;
            let mut got = Vec::new();
            let mut buf = [0u8; 1024];
            loop {
                match timeout(Duration::from_secs(5), s.read(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => break,
                    Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
                    Err(_) => return Ok((false, s)),
                }
            }
            Ok::<_, String>((got.starts_with(b"HTTP/1.1 431"), s))
        }));
    }
    sleep(Duration::from_secs(1)).await;
    let rss_held = server.rss();
    let mut refused = 0;
    let mut held = Vec::new();
    for t in tasks {
        match t.await {
            Ok(Ok((got_431, s))) => {
                refused += usize::from(got_431);
                held.push(s);
            }
            Ok(Err(e)) => fail!("{e}"),
            Err(e) => fail!("{e}"),
        }
    }
    drop(held);
    let (fds_after, _) = fds_back(&server, fds_before, Duration::from_secs(3)).await;
    let growth = rss_held.saturating_sub(rss_before);
    let figures = format!(
        "{refused}/300 refused with 431; RSS {:.1} -> {:.1} MiB while they were sent (+{:.1}); \
         fds {fds_before} -> {fds_after}",
        mib(rss_before),
        mib(rss_held),
        mib(growth)
    );
    if refused < 300 || growth > 32 << 20 || fds_after != fds_before {
        return Err(figures);
    }
    Ok(figures)
}

/// What a smuggling or malformed-head case may get back.
struct HeadCase {
    name: &'static str,
    bytes: Vec<u8>,
    /// Statuses accepted for the (first) answer; 0 = closed without an answer.
    allowed: &'static [u16],
}

/// A handshake smuggled after the outer request: if it is ever answered (a body with a
/// sid), the server read the message boundary differently from what the outer request
/// said.
const SMUGGLED: &str =
    "GET /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

/// The cases, each a POST for the live session `sid` (so that its body is read) unless it
/// is about the request line.
fn head_cases(sid: &str) -> Vec<HeadCase> {
    let post = format!(
        "POST /engine.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    );
    let post = post.as_str();
    let n = SMUGGLED.len();
    let c = |name, s: String, allowed| HeadCase {
        name,
        bytes: s.into_bytes(),
        allowed,
    };
    let bad: &[u16] = &[400, 0];
    vec![
        c(
            "CL.TE (Content-Length then chunked)",
            format!(
                "{post}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{SMUGGLED}"
            ),
            bad,
        ),
        c(
            "TE.CL (chunked then Content-Length)",
            format!(
                "{post}Transfer-Encoding: chunked\r\nContent-Length: {}\r\n\r\n0\r\n\r\n{SMUGGLED}",
                n + 5
            ),
            bad,
        ),
        c(
            "duplicate Content-Length, different",
            format!("{post}Content-Length: 0\r\nContent-Length: {n}\r\n\r\n{SMUGGLED}"),
            bad,
        ),
        c(
            "Content-Length list \"0, N\"",
            format!("{post}Content-Length: 0, {n}\r\n\r\n{SMUGGLED}"),
            bad,
        ),
        c(
            "Content-Length +N",
            format!("{post}Content-Length: +{n}\r\n\r\n{SMUGGLED}"),
            bad,
        ),
        c(
            "Content-Length -1",
            format!("{post}Content-Length: -1\r\n\r\n{SMUGGLED}"),
            bad,
        ),
        c(
            "Content-Length hex 0x10",
            format!("{post}Content-Length: 0x10\r\n\r\n{SMUGGLED}"),
            bad,
        ),
        c(
            "Transfer-Encoding: xchunked",
            format!("{post}Transfer-Encoding: xchunked\r\n\r\n{SMUGGLED}"),
            &[400, 501, 0],
        ),
        c(
            "Transfer-Encoding: chunked, identity",
            format!("{post}Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n{SMUGGLED}"),
            &[400, 501, 0],
        ),
        c(
            "Transfer-Encoding with a space before the colon",
            format!(
                "{post}Transfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n{SMUGGLED}"
            ),
            bad,
        ),
        c(
            "Transfer-Encoding on HTTP/1.0",
            format!(
                "POST /engine.io/?EIO=4&transport=polling&sid=AAAAAAAAAAAAAAAAAAAA HTTP/1.0\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n{SMUGGLED}"
            ),
            bad,
        ),
        c(
            "obs-fold continuing Content-Length",
            format!("{post}Content-Length: 0\r\n {n}\r\n\r\n{SMUGGLED}"),
            bad,
        ),
        c(
            "obs-fold header",
            format!("{post}X-Folded: a\r\n b\r\nContent-Length: 3\r\n\r\n4hi"),
            // RFC 9112 5.2: refused, or the fold taken as a space (then the message is
            // delivered: 200).
            &[400, 200, 0],
        ),
        c(
            "bare CR inside a header line",
            format!("{post}X-A: b\rContent-Length: {n}\r\nContent-Length: 0\r\n\r\n{SMUGGLED}"),
            bad,
        ),
        c(
            "bare LF line endings",
            post.replace("\r\n", "\n") + "Content-Length: 3\n\n4hi",
            // RFC 9112 2.2 lets a server accept a bare LF as the line end: refused, or
            // the same one request (its message delivered: 200).
            &[400, 200, 0],
        ),
        c(
            "NUL in a header value",
            format!("{post}X-A: a\0b\r\nContent-Length: 0\r\n\r\n"),
            bad,
        ),
        c(
            "chunk size overflow",
            format!(
                "{post}Transfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\nx\r\n0\r\n\r\n"
            ),
            &[400, 413, 0],
        ),
        c(
            "chunk extension garbage",
            format!("{post}Transfer-Encoding: chunked\r\n\r\n1;\0\r\nx\r\n0\r\n\r\n"),
            &[400, 0],
        ),
        c(
            "header name empty",
            format!("{post}: x\r\nContent-Length: 0\r\n\r\n"),
            bad,
        ),
        c(
            "100 KB header value",
            format!("{post}X-Big: {}\r\n\r\n", "a".repeat(100_000)),
            &[431, 400, 0],
        ),
        c(
            "200 headers",
            format!(
                "{post}{}\r\n",
                (0..200)
                    .map(|i| format!("X-H{i}: v\r\n"))
                    .collect::<String>()
            ),
            &[431, 400, 0],
        ),
        c(
            "100 KB URI",
            format!(
                "GET /engine.io/?EIO=4&transport=polling&x={} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
                "a".repeat(100_000)
            ),
            &[414, 431, 400, 0],
        ),
        c(
            "bad method token",
            "G@T /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".into(),
            bad,
        ),
        c(
            "HTTP/1.2",
            "GET /engine.io/?EIO=4&transport=polling HTTP/1.2\r\nHost: 127.0.0.1\r\n\r\n".into(),
            &[400, 505, 0],
        ),
        c(
            "HTTP/2.0 in an HTTP/1 request line",
            "GET /engine.io/?EIO=4&transport=polling HTTP/2.0\r\nHost: 127.0.0.1\r\n\r\n".into(),
            &[400, 505, 0],
        ),
        c(
            "no HTTP version",
            "GET /engine.io/?EIO=4&transport=polling\r\nHost: 127.0.0.1\r\n\r\n".into(),
            bad,
        ),
        c(
            "binary garbage",
            String::from_utf8_lossy(&[
                0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
            ])
            .into_owned()
                + "\r\n\r\n",
            bad,
        ),
    ]
}

/// Every answer on the connection (status codes), until it closes or is quiet for 1 s, and
/// whether a session id was in it (a smuggled handshake answered).
async fn answers(addr: SocketAddr, bytes: &[u8]) -> R<(Vec<u16>, bool)> {
    let mut s = connect(addr).await?;
    // A server may close while a large head is still being written: that is an answer.
    let _ = s.write_all(bytes).await;
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match timeout(Duration::from_secs(1), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&got);
    let statuses = text
        .match_indices("HTTP/1.1 ")
        .filter_map(|(i, _)| text.get(i + 9..i + 12)?.parse().ok())
        .collect();
    Ok((statuses, text.contains("\"sid\":")))
}

/// Request-smuggling shapes and malformed heads: each is refused (or answered once, as the
/// one request it unambiguously is), no smuggled request is ever answered, and the server
/// goes on serving.
async fn smuggling(binary: PathBuf, runtime: String) -> R<String> {
    let server = ServerProcess::start(&binary, &runtime, &[]);
    let addr = server.addr();
    let fds_before = baseline_fds(&server).await?;
    let mut bad = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut details = Vec::new();
    let count = head_cases("").len();
    for i in 0..count {
        // A fresh session for each case: a bad body may end the one it was sent to.
        let sid = polling_handshake(addr).await?;
        let case = &head_cases(&sid)[i];
        let (statuses, smuggled) = answers(addr, &case.bytes).await?;
        let first = statuses.first().copied().unwrap_or(0);
        let key = match first {
            0 => "closed".to_owned(),
            s => s.to_string(),
        };
        details.push(format!("{}: {key}", case.name));
        *seen.entry(key).or_default() += 1;
        if smuggled || statuses.len() > 1 || !case.allowed.contains(&first) {
            bad.push(format!(
                "{}: answers {statuses:?}{}",
                case.name,
                if smuggled {
                    ", SMUGGLED REQUEST ANSWERED"
                } else {
                    ""
                }
            ));
        }
    }
    polling_handshake(addr).await?;
    let (fds_after, _) = fds_back(&server, fds_before, Duration::from_secs(3)).await;
    let statuses: Vec<String> = seen.iter().map(|(k, v)| format!("{k}×{v}")).collect();
    let figures = format!(
        "{}/{} shapes refused or answered once, none smuggled; answers {}; fds {fds_before} -> {fds_after}",
        count - bad.len(),
        count,
        statuses.join(" ")
    );
    if std::env::var_os("RELIABILITY_DETAILS").is_some() {
        eprintln!("   {}", details.join("\n   "));
    }
    if !bad.is_empty() || fds_after != fds_before {
        return Err(format!("{figures}; {}", bad.join("; ")));
    }
    Ok(figures)
}

/// A client frame: FIN, RSV bits and opcode in `first`, masked unless `unmasked`.
fn frame(first: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mut f = vec![first];
    let mask_bit = if masked { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => f.push(mask_bit | n as u8),
        n if n < 65536 => {
            f.push(mask_bit | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(mask_bit | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    if masked {
        let key = [0x12, 0x34, 0x56, 0x78];
        f.extend_from_slice(&key);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        f.extend_from_slice(payload);
    }
    f
}

/// What the server sent back after a bad frame: the close code (`Some(None)` for a close
/// frame without one), or `None` when the connection ended without a close frame.
async fn close_after(addr: SocketAddr, bad: &[u8]) -> R<Option<Option<u16>>> {
    let mut s = connect(addr).await?;
    s.write_all(
        b"GET /engine.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1\r\n\
          Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await
    .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            break end + 4;
        }
        match timeout(Duration::from_secs(5), s.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => fail!("no 101"),
        }
    };
    if !buf.starts_with(b"HTTP/1.1 101") {
        fail!(
            "upgrade answered {:?}",
            String::from_utf8_lossy(&buf[..head_end])
        );
    }
    buf.drain(..head_end);
    let _ = s.write_all(bad).await;
    // Read server frames (unmasked) until a close frame or the end.
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        while buf.len() >= 2 {
            let opcode = buf[0] & 0x0f;
            let (len, at) = match buf[1] & 0x7f {
                126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4),
                127 if buf.len() >= 10 => (
                    u64::from_be_bytes(buf[2..10].try_into().unwrap_or_default()) as usize,
                    10,
                ),
                126 | 127 => break,
                n => (n as usize, 2),
            };
            if buf.len() < at + len {
                break;
            }
            let payload = buf[at..at + len].to_vec();
            buf.drain(..at + len);
            if opcode == 8 {
                return Ok(Some(
                    (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]])),
                ));
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match timeout(left, s.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Ok(None),
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => fail!("the connection stayed open 3 s after the bad frame"),
        }
    }
}

/// Abusive WebSocket frames: each gets a close frame with the RFC 6455 7.4.1 code (1002
/// protocol error, 1007 invalid data, 1009 too big) and the connection ends.
async fn abusive_frames(binary: PathBuf, runtime: String) -> R<String> {
    let server = ServerProcess::start(&binary, &runtime, &[]);
    let addr = server.addr();
    let fds_before = baseline_fds(&server).await?;
    let big = vec![b'a'; 1_000_100];
    let cases: Vec<(&str, Vec<u8>, &[u16])> = vec![
        ("unmasked text", frame(0x81, b"4hi", false), &[1002]),
        ("RSV1 (no extension)", frame(0xC1, b"4hi", true), &[1002]),
        ("RSV2", frame(0xA1, b"4hi", true), &[1002]),
        ("RSV3", frame(0x91, b"4hi", true), &[1002]),
        (
            "invalid UTF-8 text",
            frame(0x81, b"4\xff\xfe", true),
            &[1007],
        ),
        ("126-byte ping", frame(0x89, &[b'p'; 126], true), &[1002]),
        ("fragmented ping", frame(0x09, b"p", true), &[1002]),
        // 1003 is yawc 0.5.0's own close frame for a reserved opcode (RFC 6455 wants
        // 1002): a known deviation of the framing crate, with its reproduction and draft
        // report in tests/upstream/yawc-0.5.0 (Autobahn 4.1.*/4.2.* allow-list it too).
        ("reserved opcode 3", frame(0x83, b"x", true), &[1002, 1003]),
        (
            "reserved opcode 0xB",
            frame(0x8B, b"x", true),
            &[1002, 1003],
        ),
        (
            "continuation without start",
            frame(0x80, b"x", true),
            &[1002],
        ),
        ("1-byte close payload", frame(0x88, b"x", true), &[1002]),
        (
            "close code 999",
            frame(0x88, &999u16.to_be_bytes(), true),
            &[1002],
        ),
        (
            "2^63 length",
            {
                let mut f = vec![0x81, 0x80 | 127];
                f.extend_from_slice(&(1u64 << 63).to_be_bytes());
                f.extend_from_slice(&[1, 2, 3, 4]);
                f
            },
            &[1002, 1009],
        ),
        ("text over max_payload", frame(0x81, &big, true), &[1009]),
    ];
    let mut got = Vec::new();
    let mut wrong = 0;
    for (name, bytes, want) in &cases {
        let code = close_after(addr, bytes).await?;
        let shown = match code {
            Some(Some(c)) => c.to_string(),
            Some(None) => "empty close".into(),
            None => "no close frame".into(),
        };
        if !matches!(code, Some(Some(c)) if want.contains(&c)) {
            wrong += 1;
        }
        got.push(format!("{name}: {shown}"));
    }
    polling_handshake(addr).await?;
    let (fds_after, _) = fds_back(&server, fds_before, Duration::from_secs(3)).await;
    let figures = format!(
        "{}/{} with the expected close code; every connection ended; fds {fds_before} -> {fds_after}; {}",
        cases.len() - wrong,
        cases.len(),
        got.join(", ")
    );
    if wrong > 0 || fds_after != fds_before {
        return Err(figures);
    }
    Ok(figures)
}

/// A session for the SIGSTOP scenario: a task that answers pings and echoes; the
/// controller asks it to check the session with a message and hears whether it came back.
struct Live {
    check: tokio::sync::mpsc::Sender<String>,
    result: tokio::sync::mpsc::Receiver<bool>,
}

fn live_ws(mut ws: Ws) -> Live {
    let (check, mut checks) = tokio::sync::mpsc::channel::<String>(1);
    let (report, result) = tokio::sync::mpsc::channel(1);
    tokio::spawn(async move {
        let mut waiting: Option<String> = None;
        loop {
            tokio::select! {
                m = ws.next() => match m {
                    Some(Ok(WsMessage::Text(t))) if t.as_str() == "2" => {
                        if ws.send(WsMessage::text("3")).await.is_err() { break; }
                    }
                    Some(Ok(WsMessage::Text(t))) => {
                        if waiting.as_deref() == Some(t.as_str()) {
                            waiting = None;
                            let _ = report.send(true).await;
                        }
                    }
                    Some(Ok(WsMessage::Close(_))) | Some(Err(_)) | None => break,
                    Some(Ok(_)) => {}
                },
                c = checks.recv() => match c {
                    Some(text) => {
                        if ws.send(WsMessage::text(text.clone())).await.is_err() { break; }
                        waiting = Some(text);
                    }
                    None => break,
                },
            }
        }
        let _ = report.send(false).await;
    });
    Live { check, result }
}

fn live_polling(addr: SocketAddr, sid: String) -> Live {
    let (check, mut checks) = tokio::sync::mpsc::channel::<String>(1);
    let (report, result) = tokio::sync::mpsc::channel(1);
    let (got_tx, mut got) = tokio::sync::mpsc::channel::<Option<Vec<String>>>(8);
    // The long-poll loop.
    let poll_sid = sid.clone();
    tokio::spawn(async move {
        loop {
            let r = request(
                addr,
                &polling_request("GET", &poll_sid, b""),
                Duration::from_secs(30),
            )
            .await;
            let packets = match r {
                Ok(r) if r.status == 200 => String::from_utf8_lossy(&r.body)
                    .split('\u{1e}')
                    .map(str::to_owned)
                    .collect(),
                _ => {
                    let _ = got_tx.send(None).await;
                    return;
                }
            };
            if got_tx.send(Some(packets)).await.is_err() {
                return;
            }
        }
    });
    tokio::spawn(async move {
        let mut waiting: Option<String> = None;
        loop {
            tokio::select! {
                g = got.recv() => match g {
                    Some(Some(packets)) => {
                        for p in packets {
                            if p == "2" {
                                let _ = request(addr, &polling_request("POST", &sid, b"3"), Duration::from_secs(30)).await;
                            } else if waiting.as_deref() == Some(&p) {
                                waiting = None;
                                let _ = report.send(true).await;
                            } else if p == "1" {
                                let _ = report.send(false).await;
                                return;
                            }
                        }
                    }
                    _ => break,
                },
                c = checks.recv() => match c {
                    Some(text) => {
                        let posted = request(addr, &polling_request("POST", &sid, text.as_bytes()), Duration::from_secs(30)).await;
                        if !matches!(posted, Ok(r) if r.status == 200) { break; }
                        waiting = Some(text);
                    }
                    None => break,
                },
            }
        }
        let _ = report.send(false).await;
    });
    Live { check, result }
}

/// Checks every session: how many echoed within `wait`, how many ended, how many hung.
async fn check_all(lives: &mut [Live], round: usize, wait: Duration) -> (usize, usize, usize) {
    for (i, l) in lives.iter_mut().enumerate() {
        let _ = l.check.try_send(format!("4check-{round}-{i}"));
    }
    let deadline = Instant::now() + wait;
    let (mut alive, mut ended, mut hung) = (0, 0, 0);
    for l in lives.iter_mut() {
        let left = deadline.saturating_duration_since(Instant::now());
        match timeout(left, l.result.recv()).await {
            Ok(Some(true)) => alive += 1,
            Ok(Some(false)) | Ok(None) => ended += 1,
            Err(_) => hung += 1,
        }
    }
    (alive, ended, hung)
}

/// 200 live sessions (150 WebSocket, 50 polling) and the server stopped with SIGSTOP:
/// a pause shorter than the ping timeout loses no session; after a pause longer than the
/// whole heartbeat every session either goes on or ends cleanly, none hangs, and the
/// server serves new handshakes at once and releases every descriptor.
async fn sigstop_200(binary: PathBuf, runtime: String) -> R<String> {
    let mut server = ServerProcess::start(
        &binary,
        &runtime,
        &["--ping-interval", "1000", "--ping-timeout", "2000"],
    );
    let addr = server.addr();
    let fds_before = baseline_fds(&server).await?;
    let mut lives = Vec::new();
    for i in 0..200 {
        if i % 4 == 3 {
            lives.push(live_polling(addr, polling_handshake(addr).await?));
        } else {
            lives.push(live_ws(ws_open(addr, None).await?));
        }
    }
    let (alive0, _, _) = check_all(&mut lives, 0, Duration::from_secs(5)).await;
    if alive0 != 200 {
        fail!("only {alive0}/200 sessions echoed before the pause");
    }
    // Pause shorter than the ping timeout.
    server.stop();
    sleep(Duration::from_secs(1)).await;
    server.cont();
    let resumed = Instant::now();
    polling_handshake(addr).await?;
    let first_handshake = resumed.elapsed();
    let (alive_a, ended_a, hung_a) = check_all(&mut lives, 1, Duration::from_secs(5)).await;
    // Pause longer than interval + timeout.
    server.stop();
    sleep(Duration::from_secs(4)).await;
    server.cont();
    let resumed = Instant::now();
    polling_handshake(addr).await?;
    let first_handshake_b = resumed.elapsed();
    let (alive_b, ended_b, hung_b) = check_all(&mut lives, 2, Duration::from_secs(8)).await;
    drop(lives);
    let (fds_after, _) = fds_back(&server, fds_before, Duration::from_secs(5)).await;
    let figures = format!(
        "1 s stop: {alive_a}/200 alive, {ended_a} ended, {hung_a} hung, first handshake {:.1} ms \
         after SIGCONT; 4 s stop (heartbeat 1+2 s): {alive_b} alive, {ended_b} ended, {hung_b} hung, \
         first handshake {:.1} ms; fds {fds_before} -> {fds_after}",
        first_handshake.as_secs_f64() * 1e3,
        first_handshake_b.as_secs_f64() * 1e3,
    );
    if alive_a != 200 || hung_b > 0 || fds_after != fds_before || !server.is_running() {
        return Err(figures);
    }
    Ok(figures)
}

/// The client cases of issue 10 item 4: our client against a misbehaving server, as
/// `tests/tests/client_faults.rs` has them (each case on both runtimes). Its test binary,
/// built by the test stage, is run here and each runtime becomes one row.
fn client_faults(runtimes: &[String]) -> Vec<Row> {
    let row = |binding: &str, passed, figures: String, took| Row {
        scenario: "client-faults (item 4)",
        binding: binding.to_owned(),
        passed,
        figures,
        took,
    };
    // The newest `client_faults-<hash>` beside this binary's `deps/`.
    let deps = std::env::current_exe()
        .ok()
        .and_then(|e| Some(e.parent()?.join("deps")));
    let binary = deps
        .and_then(|d| std::fs::read_dir(d).ok())
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with("client_faults-") && !name.ends_with(".d")
        })
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())
        .map(|e| e.path());
    let Some(binary) = binary else {
        return runtimes
            .iter()
            .map(|r| {
                row(
                    r,
                    None,
                    "not run: build the tests first (cargo test -p engineio-tests --no-run)".into(),
                    Duration::ZERO,
                )
            })
            .collect();
    };
    let start = Instant::now();
    let output = std::process::Command::new(&binary)
        .args(["--test-threads", "2"])
        .output();
    let took = start.elapsed();
    let Ok(output) = output else {
        return runtimes
            .iter()
            .map(|r| {
                row(
                    r,
                    Some(false),
                    format!("could not run {}", binary.display()),
                    took,
                )
            })
            .collect();
    };
    let text = String::from_utf8_lossy(&output.stdout);
    runtimes
        .iter()
        .map(|runtime| {
            let prefix = format!("test {runtime}_client::");
            let mut passed = Vec::new();
            let mut failed = Vec::new();
            for line in text.lines() {
                let Some(rest) = line.strip_prefix(&prefix) else {
                    continue;
                };
                if let Some(name) = rest.strip_suffix(" ... ok") {
                    passed.push(name.replace('_', " "));
                } else if let Some((name, _)) = rest.split_once(" ... FAILED") {
                    failed.push(name.replace('_', " "));
                }
            }
            passed.sort();
            failed.sort();
            let ok = failed.is_empty() && !passed.is_empty();
            let figures = if failed.is_empty() {
                format!(
                    "{} of {} cases: {}",
                    passed.len(),
                    passed.len(),
                    passed.join(", ")
                )
            } else {
                format!(
                    "{} of {} cases; failed: {}",
                    passed.len(),
                    passed.len() + failed.len(),
                    failed.join(", ")
                )
            };
            row(runtime, Some(ok), figures, took)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------------------

type Scenario = fn(PathBuf, String) -> std::pin::Pin<Box<dyn Future<Output = R<String>> + Send>>;

macro_rules! scenario {
    ($f:ident) => {
        (|b, r| Box::pin($f(b, r))) as Scenario
    };
}

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    let scenarios: Vec<(&'static str, Scenario, Duration)> = vec![
        (
            "never-reads",
            scenario!(never_reads),
            Duration::from_secs(40),
        ),
        (
            "never-reads-polling",
            scenario!(never_reads_polling),
            Duration::from_secs(40),
        ),
        ("churn-10k", scenario!(churn_10k), Duration::from_secs(120)),
        (
            "frozen-ws-500",
            scenario!(frozen_500),
            Duration::from_secs(40),
        ),
        (
            "slowloris-1000",
            scenario!(slowloris_1000),
            Duration::from_secs(40),
        ),
        (
            "big-heads-300",
            scenario!(big_heads_300),
            Duration::from_secs(40),
        ),
        (
            "smuggling-heads",
            scenario!(smuggling),
            Duration::from_secs(60),
        ),
        (
            "abusive-ws-frames",
            scenario!(abusive_frames),
            Duration::from_secs(60),
        ),
        (
            "sigstop-200",
            scenario!(sigstop_200),
            Duration::from_secs(60),
        ),
    ];
    let runtimes: Vec<String> = match arg("--runtime").as_deref() {
        None | Some("both") => vec!["tokio".into(), "smol".into()],
        Some(one) => vec![one.into()],
    };
    let only = arg("--only");
    let binary = arg("--server").map_or_else(e2e_server_path, PathBuf::from);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut rows = Vec::new();
    let started = Instant::now();
    for (name, run, limit) in &scenarios {
        if only.as_deref().is_some_and(|o| !name.contains(o)) {
            continue;
        }
        for runtime in &runtimes {
            eprintln!("== {name} on {runtime}");
            let start = Instant::now();
            let result = rt.block_on(async {
                match timeout(*limit, run(binary.clone(), runtime.clone())).await {
                    Ok(r) => r,
                    Err(_) => Err(format!("did not finish within {} s", limit.as_secs())),
                }
            });
            let (passed, figures) = match result {
                Ok(f) => (Some(true), f),
                Err(f) => (Some(false), f),
            };
            eprintln!(
                "   {} {figures}",
                if passed == Some(true) { "pass" } else { "FAIL" }
            );
            rows.push(Row {
                scenario: name,
                binding: runtime.clone(),
                passed,
                figures,
                took: start.elapsed(),
            });
        }
    }
    if only.as_deref().is_none_or(|o| "client-faults".contains(o)) {
        eprintln!("== client-faults (tests/tests/client_faults.rs)");
        rows.extend(client_faults(&runtimes));
    }
    rt.shutdown_timeout(Duration::from_secs(1));
    println!();
    println!("| scenario | binding | result | time | figures |");
    println!("|---|---|---|---|---|");
    let mut failed = 0;
    for r in &rows {
        let result = match r.passed {
            Some(true) => "pass",
            Some(false) => {
                failed += 1;
                "**FAIL**"
            }
            None => "–",
        };
        println!(
            "| {} | {} | {result} | {:.1} s | {} |",
            r.scenario,
            r.binding,
            r.took.as_secs_f64(),
            r.figures.replace('|', "/")
        );
    }
    let ran = rows.iter().filter(|r| r.passed.is_some()).count();
    println!();
    println!("({:.0} s in all)", started.elapsed().as_secs_f64());
    println!("reliability: {} passed, {failed} failed", ran - failed);
    if failed > 0 {
        std::process::exit(1);
    }
}
