//! A misbehaving Engine.IO server for client fault tests: plain threads and blocking
//! sockets on 127.0.0.1, so that it works with a client on any runtime, and a script per
//! test that decides what each connection gets (silence, a trickle, a bad handshake, a
//! reset, a WebSocket that stops reading, a 100 MB frame...).
//!
//! HTTP and WebSocket are written by hand here on purpose: the point is to send what a
//! real server library would refuse to send. Every wait is bounded: reads time out after
//! [`STEP`] and every connection is given up after [`MAX_LIFETIME`] or when the server is
//! dropped.
//!
//! ```
//! use engineio_tests::fault_server::{FaultServer, open_packet};
//!
//! // Answers every handshake, then holds every long-poll GET without answering it
//! // (no ping ever comes: the client must time the server out itself).
//! let server = FaultServer::start(|mut peer| {
//!     while let Some(request) = peer.read_request() {
//!         if request.query("sid").is_none() {
//!             peer.respond(200, "text/plain", open_packet("abc", &[], 200, 100, 1_000_000).as_bytes());
//!         } else if request.method == "GET" {
//!             peer.hold(std::time::Duration::from_secs(2));
//!             return;
//!         } else {
//!             peer.respond(200, "text/plain", b"ok");
//!         }
//!     }
//! });
//! assert!(server.url().starts_with("http://127.0.0.1:"));
//! ```

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long one blocking read waits before the connection checks whether to give up.
pub const STEP: Duration = Duration::from_millis(50);
/// The longest a connection is kept, whatever its script says.
pub const MAX_LIFETIME: Duration = Duration::from_secs(30);
/// The largest request head, request body or WebSocket frame the server reads.
const MAX_READ: usize = 128 << 20;

/// What the server saw, shared with the test.
#[derive(Debug, Default)]
pub struct Stats {
    connections: AtomicUsize,
    requests: AtomicUsize,
    websockets: AtomicUsize,
    open: AtomicUsize,
    peer_closed: AtomicUsize,
}

/// Options of a [`FaultServer`].
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The receive buffer of accepted sockets (`SO_RCVBUF`), to make a server that stops
    /// reading push back early. `None`: the system's default.
    pub recv_buffer: Option<usize>,
}

/// A server on 127.0.0.1 running a script on every connection, each in its own thread.
/// Dropping it stops accepting and makes every connection give up within [`STEP`].
pub struct FaultServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    stats: Arc<Stats>,
    accept: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for FaultServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultServer")
            .field("addr", &self.addr)
            .field("stats", &self.stats)
            .finish()
    }
}

impl FaultServer {
    /// Starts a server that runs `script` on every accepted connection.
    pub fn start<F>(script: F) -> FaultServer
    where
        F: Fn(Peer) + Send + Sync + 'static,
    {
        FaultServer::start_with(Options::default(), script)
    }

    /// Like [`start`](Self::start), with options.
    pub fn start_with<F>(options: Options, script: F) -> FaultServer
    where
        F: Fn(Peer) + Send + Sync + 'static,
    {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        if let Some(size) = options.recv_buffer {
            // Accepted sockets inherit it; it must be set before listen to shrink the
            // window the client sees.
            socket.set_recv_buffer_size(size).expect("SO_RCVBUF");
        }
        let any: SocketAddr = "127.0.0.1:0".parse().expect("address");
        socket.bind(&any.into()).expect("bind");
        socket.listen(64).expect("listen");
        let listener: TcpListener = socket.into();
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("local address");
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(Stats::default());
        let script = Arc::new(script);
        let accept = {
            let stop = Arc::clone(&stop);
            let stats = Arc::clone(&stats);
            std::thread::spawn(move || {
                let started = Instant::now();
                while !stop.load(Ordering::SeqCst) && started.elapsed() < MAX_LIFETIME * 4 {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            stats.connections.fetch_add(1, Ordering::SeqCst);
                            stats.open.fetch_add(1, Ordering::SeqCst);
                            let peer = Peer::new(stream, Arc::clone(&stop), Arc::clone(&stats));
                            let script = Arc::clone(&script);
                            let stats = Arc::clone(&stats);
                            std::thread::spawn(move || {
                                script(peer);
                                stats.open.fetch_sub(1, Ordering::SeqCst);
                            });
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(5));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        FaultServer {
            addr,
            stop,
            stats,
            accept: Some(accept),
        }
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.stats.connections.load(Ordering::SeqCst)
    }

    /// HTTP requests (WebSocket upgrades included) read so far.
    pub fn requests(&self) -> usize {
        self.stats.requests.load(Ordering::SeqCst)
    }

    /// WebSocket upgrades accepted so far.
    pub fn websockets(&self) -> usize {
        self.stats.websockets.load(Ordering::SeqCst)
    }

    /// Connections whose script is still running.
    pub fn open_connections(&self) -> usize {
        self.stats.open.load(Ordering::SeqCst)
    }

    /// Connections on which the client was seen closing (end of stream or reset) while
    /// the script read from it.
    pub fn peer_closed(&self) -> usize {
        self.stats.peer_closed.load(Ordering::SeqCst)
    }
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

/// An HTTP request as the server read it.
#[derive(Debug, Clone)]
pub struct Request {
    /// `GET`, `POST`...
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query's pairs, undecoded.
    pub query: Vec<(String, String)>,
    /// The headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body (read by `Content-Length`).
    pub body: Vec<u8>,
}

impl Request {
    /// A query parameter.
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A header (name in any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether it asks for a WebSocket upgrade.
    pub fn is_websocket(&self) -> bool {
        self.header("upgrade")
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
    }

    /// Whether it is a handshake (no `sid`).
    pub fn is_handshake(&self) -> bool {
        self.query("sid").is_none()
    }
}

/// One accepted connection.
pub struct Peer {
    stream: TcpStream,
    buf: Vec<u8>,
    stop: Arc<AtomicBool>,
    stats: Arc<Stats>,
    born: Instant,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("stream", &self.stream)
            .finish()
    }
}

impl Peer {
    fn new(stream: TcpStream, stop: Arc<AtomicBool>, stats: Arc<Stats>) -> Peer {
        let _ = stream.set_nonblocking(false);
        let _ = stream.set_read_timeout(Some(STEP));
        let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
        let _ = stream.set_nodelay(true);
        Peer {
            stream,
            buf: Vec::new(),
            stop,
            stats,
            born: Instant::now(),
        }
    }

    fn given_up(&self) -> bool {
        self.stop.load(Ordering::SeqCst) || self.born.elapsed() > MAX_LIFETIME
    }

    /// Reads more bytes into the buffer. `false` at end of stream, error, or give-up.
    fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if self.given_up() {
                return false;
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    self.stats.peer_closed.fetch_add(1, Ordering::SeqCst);
                    return false;
                }
                Ok(n) => {
                    self.buf
                        .extend_from_slice(chunk.get(..n).unwrap_or_default());
                    return true;
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => {
                    self.stats.peer_closed.fetch_add(1, Ordering::SeqCst);
                    return false;
                }
            }
        }
    }

    /// Reads the next request (head, and body by `Content-Length`). `None` when the
    /// client closed the connection, or the server gave up.
    pub fn read_request(&mut self) -> Option<Request> {
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i;
            }
            if self.buf.len() > MAX_READ || !self.fill() {
                return None;
            }
        };
        let head = String::from_utf8_lossy(self.buf.get(..head_end)?).into_owned();
        self.buf.drain(..head_end + 4);
        let mut lines = head.split("\r\n");
        let mut first = lines.next()?.split(' ');
        let method = first.next()?.to_owned();
        let target = first.next()?.to_owned();
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let query = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (k.to_owned(), v.to_owned())
            })
            .collect();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let length = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse::<usize>().ok())
            .unwrap_or(0)
            .min(MAX_READ);
        while self.buf.len() < length {
            if !self.fill() {
                return None;
            }
        }
        let body = self.buf.drain(..length).collect();
        self.stats.requests.fetch_add(1, Ordering::SeqCst);
        Some(Request {
            method,
            path: path.to_owned(),
            query,
            headers,
            body,
        })
    }

    /// Answers with `status`, a `Content-Type` and the body (keep-alive).
    pub fn respond(&mut self, status: u16, content_type: &str, body: &[u8]) {
        let head = format!(
            "HTTP/1.1 {status} {}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\r\n",
            reason(status),
            body.len()
        );
        // One write, as servers do: a client that reads the head may take the body
        // from the same read.
        let mut out = head.into_bytes();
        out.extend_from_slice(body);
        self.write_raw(&out);
    }

    /// Writes bytes as they are. Errors (the client went away) are ignored.
    pub fn write_raw(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes);
        let _ = self.stream.flush();
    }

    /// Writes `bytes` one at a time, `pause` apart (a trickling server), until done, the
    /// client goes away, or the server gives up. Returns whether every byte was written.
    pub fn trickle(&mut self, bytes: &[u8], pause: Duration) -> bool {
        for b in bytes {
            if self.given_up() || self.stream.write_all(&[*b]).is_err() {
                return false;
            }
            std::thread::sleep(pause);
        }
        true
    }

    /// Keeps the connection open without reading or writing, for `duration` (or until the
    /// server gives up).
    pub fn hold(&mut self, duration: Duration) {
        let until = Instant::now() + duration;
        while Instant::now() < until && !self.given_up() {
            std::thread::sleep(STEP.min(Duration::from_millis(10)));
        }
    }

    /// Reads (and discards) until the client closes the connection, for at most `max`.
    /// Returns whether it closed in that time.
    pub fn wait_closed(&mut self, max: Duration) -> bool {
        let until = Instant::now() + max;
        while Instant::now() < until {
            self.buf.clear();
            if !self.fill() {
                return !self.given_up();
            }
        }
        false
    }

    /// Resets the connection: `SO_LINGER` 0 then close, so the client gets an RST.
    pub fn reset(self) {
        let socket = socket2::SockRef::from(&self.stream);
        let _ = socket.set_linger(Some(Duration::ZERO));
        drop(self.stream);
    }

    /// Closes the connection cleanly (FIN).
    pub fn close(self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    /// Completes the WebSocket handshake of `request` (which must be an upgrade).
    pub fn accept_websocket(mut self, request: &Request) -> WsPeer {
        let key = request.header("sec-websocket-key").unwrap_or_default();
        let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
        let head = format!(
            "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: {accept}\r\n\r\n"
        );
        self.write_raw(head.as_bytes());
        self.stats.websockets.fetch_add(1, Ordering::SeqCst);
        WsPeer { peer: self }
    }
}

/// A WebSocket frame as the server read it (client frames are masked; this unmasks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A text frame.
    Text(String),
    /// A binary frame.
    Binary(Vec<u8>),
    /// A close frame, with its code when it has one.
    Close(Option<u16>),
    /// A ping.
    Ping,
    /// A pong.
    Pong,
    /// A continuation or reserved opcode.
    Other(u8),
}

/// A WebSocket connection (server side), framed by hand.
pub struct WsPeer {
    peer: Peer,
}

impl std::fmt::Debug for WsPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsPeer").finish_non_exhaustive()
    }
}

impl WsPeer {
    /// Sends a text frame.
    pub fn send_text(&mut self, text: &str) {
        self.send_frame(0x1, text.as_bytes());
    }

    /// Sends a frame with `opcode` (FIN set, unmasked, as a server sends).
    pub fn send_frame(&mut self, opcode: u8, payload: &[u8]) {
        let mut out = frame_header(opcode, payload.len() as u64);
        out.extend_from_slice(payload);
        self.peer.write_raw(&out);
    }

    /// Sends only a frame header announcing `len` payload bytes (then whatever the test
    /// writes with [`write_raw`](Self::write_raw)).
    pub fn send_header(&mut self, opcode: u8, len: u64) {
        let header = frame_header(opcode, len);
        self.peer.write_raw(&header);
    }

    /// Writes bytes as they are.
    pub fn write_raw(&mut self, bytes: &[u8]) {
        self.peer.write_raw(bytes);
    }

    /// Reads the next frame; `None` when the connection ended or the server gave up.
    pub fn read_frame(&mut self) -> Option<Frame> {
        loop {
            if let Some((frame, used)) = parse_frame(&self.peer.buf) {
                self.peer.buf.drain(..used);
                return Some(frame);
            }
            if self.peer.buf.len() > MAX_READ || !self.peer.fill() {
                return None;
            }
        }
    }

    /// Reads frames until a text frame, answering nothing; `None` as in
    /// [`read_frame`](Self::read_frame) or on a close frame.
    pub fn read_text(&mut self) -> Option<String> {
        loop {
            match self.read_frame()? {
                Frame::Text(t) => return Some(t),
                Frame::Close(_) => return None,
                _ => {}
            }
        }
    }

    /// See [`Peer::hold`].
    pub fn hold(&mut self, duration: Duration) {
        self.peer.hold(duration);
    }

    /// See [`Peer::wait_closed`].
    pub fn wait_closed(&mut self, max: Duration) -> bool {
        self.peer.wait_closed(max)
    }

    /// See [`Peer::reset`].
    pub fn reset(self) {
        self.peer.reset();
    }

    /// Closes the TCP connection without a close frame.
    pub fn close(self) {
        self.peer.close();
    }
}

/// An open packet (`0{...}`) with these values.
pub fn open_packet(
    sid: &str,
    upgrades: &[&str],
    ping_interval_ms: u64,
    ping_timeout_ms: u64,
    max_payload: u64,
) -> String {
    let upgrades: Vec<String> = upgrades.iter().map(|u| format!("\"{u}\"")).collect();
    format!(
        "0{{\"sid\":\"{sid}\",\"upgrades\":[{}],\"pingInterval\":{ping_interval_ms},\"pingTimeout\":{ping_timeout_ms},\"maxPayload\":{max_payload}}}",
        upgrades.join(",")
    )
}

fn frame_header(opcode: u8, len: u64) -> Vec<u8> {
    let mut out = vec![0x80 | (opcode & 0x0f)];
    if len < 126 {
        out.push(len as u8);
    } else if len <= u64::from(u16::MAX) {
        out.push(126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&len.to_be_bytes());
    }
    out
}

fn parse_frame(buf: &[u8]) -> Option<(Frame, usize)> {
    let b0 = *buf.first()?;
    let b1 = *buf.get(1)?;
    let masked = b1 & 0x80 != 0;
    let (len, mut at) = match b1 & 0x7f {
        126 => (
            u64::from(u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?])),
            4,
        ),
        127 => {
            let bytes: [u8; 8] = buf.get(2..10)?.try_into().ok()?;
            (u64::from_be_bytes(bytes), 10)
        }
        n => (u64::from(n), 2),
    };
    let mask: Option<[u8; 4]> = if masked {
        let m = buf.get(at..at + 4)?.try_into().ok()?;
        at += 4;
        Some(m)
    } else {
        None
    };
    let len = usize::try_from(len).ok()?;
    let mut payload = buf.get(at..at.checked_add(len)?)?.to_vec();
    if let Some(m) = mask {
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= m[i % 4];
        }
    }
    let frame = match b0 & 0x0f {
        0x1 => Frame::Text(String::from_utf8_lossy(&payload).into_owned()),
        0x2 => Frame::Binary(payload),
        0x8 => Frame::Close(payload.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]]))),
        0x9 => Frame::Ping,
        0xa => Frame::Pong,
        other => Frame::Other(other),
    };
    Some((frame, at + len))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        500 => "Internal Server Error",
        _ => "Whatever",
    }
}

/// The resident set size of this process, in bytes (Linux), for printing figures.
pub fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
