//! The interop client (tests/src/bin/e2e_client.rs) on a plain loop: engineio-proto's
//! `Client` driven by hand over mio sockets, with no async runtime. It opens by
//! long-polling (HTTP/1.1 over httparse, on kept-alive connections, one GET and one POST
//! in flight), upgrades to WebSocket (tungstenite's synchronous API, non-blocking), or
//! opens on WebSocket directly; the state machine decides all of it.
//!
//! ```sh
//! cargo run -p engineio-embedded --bin plain_client -- \
//!     --url http://127.0.0.1:3000 --transport upgrade [--cases text,binary]
//! ```
//!
//! It runs the interop cases (tests/interop/README.md) and prints one JSON line per case.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use bytes::Bytes;
use engineio_embedded::e2e::arg;
use engineio_embedded::http1::{self, ParsedResponse};
use engineio_embedded::ws::{Link, Status, to_tungstenite};
use engineio_proto::client::{
    Client, ClientAction, ClientConfig, ClientEvent, HttpError, HttpRequest, WsConnectError,
    WsLimits,
};
use engineio_proto::{CloseReason, IoError, Message, RequestId, Response, SendError};
use engineio_proto::{Transport, TransportError};
use http::{HeaderMap, Uri};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use tungstenite::ClientHandshake;
use tungstenite::handshake::{HandshakeError, MidHandshake};
use tungstenite::protocol::{CloseFrame, WebSocketConfig};

/// How long one step of a case may take.
const STEP: Duration = Duration::from_secs(5);
/// How long a case waits for the sockets of a closed client to finish closing (the
/// client itself drops one after its `write_timeout`).
const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// How long an idle kept-alive connection is reused (servers close theirs after 5 s).
const IDLE: Duration = Duration::from_secs(2);

/// A kept-alive HTTP/1.1 connection, carrying at most one request at a time.
struct HttpConn {
    tcp: TcpStream,
    connected: bool,
    out: Vec<u8>,
    input: Vec<u8>,
    /// The request in flight and its response limit.
    request: Option<(RequestId, usize)>,
    idle_since: Instant,
}

enum Ws {
    /// TCP is connecting; the WebSocket handshake follows.
    Tcp(TcpStream, Box<http::Request<()>>, WebSocketConfig),
    Handshake(Box<MidHandshake<ClientHandshake<TcpStream>>>),
    Open(Box<Link<TcpStream>>),
    /// Closed by the client: finishing its close handshake, until it ends or the client
    /// drops it (`WsDrop`).
    Closing(Box<Link<TcpStream>>),
}

struct Driver {
    poll: Poll,
    client: Client,
    events: VecDeque<ClientEvent>,
    http: HashMap<Token, HttpConn>,
    /// WebSockets by the client's id, with their token.
    sockets: HashMap<RequestId, (Token, Ws)>,
    /// WebSockets that had more to read than one batch.
    reread: Vec<RequestId>,
    next_token: usize,
}

impl Driver {
    fn new(config: ClientConfig) -> Result<Driver, String> {
        if config.secure {
            return Err("this example speaks plain HTTP only (no TLS)".into());
        }
        let seed = getrandom::u64().map_err(|e| e.to_string())?;
        let client = Client::new(config, Instant::now(), seed).map_err(|e| e.to_string())?;
        let poll = Poll::new().map_err(|e| e.to_string())?;
        let (events, http, sockets, reread) =
            (VecDeque::new(), HashMap::new(), HashMap::new(), Vec::new());
        Ok(Driver {
            poll,
            client,
            events,
            http,
            sockets,
            reread,
            next_token: 0,
        })
    }

    /// The loop: perform every action, write what the WebSocket takes, wait for sockets
    /// or the next deadline, feed what happened; until an event comes or `deadline`.
    fn next_event(&mut self, deadline: Instant) -> Option<ClientEvent> {
        let mut events = Events::with_capacity(64);
        loop {
            let now = Instant::now();
            self.pump(now);
            if let Some(event) = self.events.pop_front() {
                return Some(event);
            }
            if now >= deadline || (self.client.is_closed() && self.sockets.is_empty()) {
                return None;
            }
            let wake = self
                .client
                .poll_timeout()
                .map_or(deadline, |t| t.min(deadline));
            // A link with frames left to read: look at the sockets, but do not wait.
            let wake = if self.reread.is_empty() { wake } else { now };
            let timeout = Some(wake.saturating_duration_since(now));
            match self.poll.poll(&mut events, timeout) {
                Err(e) if e.kind() != io::ErrorKind::Interrupted => {
                    eprintln!("poll: {e}");
                    return None;
                }
                _ => {}
            }
            let now = Instant::now();
            for id in std::mem::take(&mut self.reread) {
                self.ws_io(now, id);
            }
            for event in &events {
                self.ready(now, event.token());
            }
            if self.client.poll_timeout().is_some_and(|t| t <= now) {
                self.client.handle_timeout(now);
            }
        }
    }

    /// Drains the client's actions, then pulls its messages while the WebSocket takes
    /// more, until neither gives anything.
    fn pump(&mut self, now: Instant) {
        loop {
            let mut progress = false;
            while let Some(action) = self.client.poll_action() {
                progress = true;
                self.perform(now, action);
            }
            let mut gone = Vec::new();
            for (id, (_, ws)) in &mut self.sockets {
                let Ws::Open(link) = ws else { continue };
                while link.takes_writes() {
                    let Some(message) = self.client.poll_ws_send(*id) else {
                        break;
                    };
                    progress = true;
                    if link.write(now, &mut self.client, to_tungstenite(message)) == Status::Gone {
                        gone.push(*id);
                        break;
                    }
                }
            }
            for id in gone {
                self.sockets.remove(&id);
            }
            if !progress {
                return;
            }
        }
    }

    fn perform(&mut self, now: Instant, action: ClientAction) {
        match action {
            ClientAction::HttpRequest { id, request } => self.http_request(now, id, request),
            ClientAction::AbortRequest { id } => {
                self.http
                    .retain(|_, c| c.request.as_ref().is_none_or(|r| r.0 != id));
            }
            // No permessage-deflate here (tungstenite has none): this client leaves
            // `ClientConfig::websocket_deflate` off, so nothing is offered.
            ClientAction::WsConnect {
                id,
                uri,
                headers,
                limits,
                deflate: _,
            } => {
                self.ws_connect(now, id, &uri, headers, limits);
            }
            ClientAction::WsSend { ws, message } => {
                if let Some((_, Ws::Open(link))) = self.sockets.get_mut(&ws)
                    && link.write(now, &mut self.client, to_tungstenite(message)) == Status::Gone
                {
                    self.sockets.remove(&ws);
                }
            }
            ClientAction::WsClose { ws, code, reason } => {
                let Some((token, socket)) = self.sockets.remove(&ws) else {
                    return;
                };
                // Still connecting: dropping it cancels the connect.
                if let Ws::Open(mut link) = socket {
                    let close = CloseFrame {
                        code: code.as_u16().into(),
                        reason: reason.into(),
                    };
                    let frame = tungstenite::Message::Close(Some(close));
                    if link.write(now, &mut self.client, frame) != Status::Gone {
                        self.sockets.insert(ws, (token, Ws::Closing(link)));
                    }
                }
            }
            ClientAction::WsDrop { ws } => drop(self.sockets.remove(&ws)),
            ClientAction::Event(event) => self.events.push_back(event),
        }
    }

    fn token(&mut self) -> Token {
        self.next_token += 1;
        Token(self.next_token)
    }

    fn http_request(&mut self, now: Instant, id: RequestId, request: HttpRequest) {
        let mut bytes = Vec::new();
        http1::encode_request(
            &request.method,
            &request.uri,
            &request.headers,
            &request.body,
            &mut bytes,
        );
        let limit = request.max_response_body;
        // Kept-alive connections are reused while young: servers close idle ones (after
        // 5 s for Node and uvicorn), and one closed as a request goes out loses it.
        self.http
            .retain(|_, c| c.request.is_some() || now - c.idle_since < IDLE);
        let idle = self.http.iter_mut().find(|(_, c)| c.request.is_none());
        let token = match idle {
            Some((token, conn)) => {
                conn.out = bytes;
                conn.request = Some((id, limit));
                *token
            }
            None => {
                let token = self.token();
                match connect(&self.poll, &request.uri, token) {
                    Ok(tcp) => {
                        let conn = HttpConn {
                            tcp,
                            connected: false,
                            out: bytes,
                            input: Vec::new(),
                            request: Some((id, limit)),
                            idle_since: now,
                        };
                        self.http.insert(token, conn);
                    }
                    Err(e) => {
                        let error = HttpError::Transport(TransportError::Connect(e.into()));
                        return self.client.handle_response(now, id, Err(error));
                    }
                }
                token
            }
        };
        self.http_io(now, token);
    }

    fn ready(&mut self, now: Instant, token: Token) {
        if self.http.contains_key(&token) {
            return self.http_io(now, token);
        }
        let Some(id) = self
            .sockets
            .iter()
            .find(|(_, (t, _))| *t == token)
            .map(|(id, _)| *id)
        else {
            return;
        };
        self.ws_io(now, id);
    }

    /// Connects, writes the request, reads the response; hands the outcome to the client.
    fn http_io(&mut self, now: Instant, token: Token) {
        let Some(conn) = self.http.get_mut(&token) else {
            return;
        };
        let mut closed = false;
        if !conn.connected {
            match connected(&conn.tcp) {
                Ok(true) => conn.connected = true,
                Ok(false) => return,
                Err(e) => {
                    let Some((id, _)) = self.http.remove(&token).and_then(|c| c.request) else {
                        return;
                    };
                    let error = HttpError::Transport(TransportError::Connect(e.into()));
                    return self.client.handle_response(now, id, Err(error));
                }
            }
        }
        let mut failed = write_all(&mut conn.tcp, &mut conn.out).err();
        let mut buf = [0u8; 16 * 1024];
        while failed.is_none() {
            match conn.tcp.read(&mut buf) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(n) => conn
                    .input
                    .extend_from_slice(buf.get(..n).unwrap_or_default()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => failed = Some(e),
            }
        }
        let Some((id, limit)) = conn.request else {
            // An idle connection the server closed (or sent something on): forget it.
            if closed || failed.is_some() || !conn.input.is_empty() {
                self.http.remove(&token);
            }
            return;
        };
        let outcome = match http1::parse_response(&conn.input, limit, closed || failed.is_some()) {
            ParsedResponse::Incomplete => return,
            ParsedResponse::Complete(response, keep_alive, used) => {
                conn.input.drain(..used);
                let reusable = keep_alive && conn.input.is_empty() && !closed;
                (Ok(response), reusable)
            }
            ParsedResponse::TooLarge(size) => (Err(HttpError::BodyTooLarge { size, limit }), false),
            ParsedResponse::Invalid => (
                Err(reset("the connection ended in the middle of a response")),
                false,
            ),
        };
        conn.request = None;
        conn.idle_since = now;
        if !outcome.1 {
            self.http.remove(&token);
        }
        self.client.handle_response(now, id, outcome.0);
    }

    fn ws_connect(
        &mut self,
        now: Instant,
        id: RequestId,
        uri: &Uri,
        headers: HeaderMap,
        limits: WsLimits,
    ) {
        use tungstenite::client::IntoClientRequest;
        let token = self.token();
        let config = WebSocketConfig::default()
            .write_buffer_size(0)
            .max_message_size(Some(limits.max_message_size))
            .max_frame_size(Some(limits.max_frame_size));
        let started = uri
            .clone()
            .into_client_request()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e));
        match started.and_then(|request| Ok((connect(&self.poll, uri, token)?, request))) {
            Ok((tcp, mut request)) => {
                request.headers_mut().extend(headers);
                self.sockets
                    .insert(id, (token, Ws::Tcp(tcp, Box::new(request), config)));
            }
            Err(e) => {
                let error = WsConnectError::Transport(TransportError::Connect(e.into()));
                self.client.handle_ws_connect_failed(now, id, error);
            }
        }
    }

    /// Moves WebSocket `id` on: connect, handshake, or frames both ways.
    fn ws_io(&mut self, now: Instant, id: RequestId) {
        let Some((token, ws)) = self.sockets.remove(&id) else {
            return;
        };
        let handshake = match ws {
            Ws::Tcp(tcp, request, config) => match connected(&tcp) {
                Ok(true) => tungstenite::client::client_with_config(*request, tcp, Some(config)),
                Ok(false) => {
                    return drop(
                        self.sockets
                            .insert(id, (token, Ws::Tcp(tcp, request, config))),
                    );
                }
                Err(e) => {
                    let error = WsConnectError::Transport(TransportError::Connect(e.into()));
                    return self.client.handle_ws_connect_failed(now, id, error);
                }
            },
            Ws::Handshake(mid) => mid.handshake(),
            Ws::Open(mut link) => {
                if self.link_io(now, id, &mut link) {
                    self.sockets.insert(id, (token, Ws::Open(link)));
                }
                return;
            }
            Ws::Closing(mut link) => {
                if self.link_io(now, id, &mut link) {
                    self.sockets.insert(id, (token, Ws::Closing(link)));
                }
                return;
            }
        };
        match handshake {
            Ok((ws, _response)) => {
                self.sockets
                    .insert(id, (token, Ws::Open(Box::new(Link::new(ws, id)))));
                self.client.handle_ws_connected(now, id);
                // Frames may have come with the 101.
                self.ws_io(now, id);
            }
            Err(HandshakeError::Interrupted(mid)) => {
                self.sockets
                    .insert(id, (token, Ws::Handshake(Box::new(mid))));
            }
            Err(HandshakeError::Failure(e)) => {
                self.client
                    .handle_ws_connect_failed(now, id, ws_connect_error(e));
            }
        }
    }
}

impl Driver {
    /// Writes what the link holds and reads a batch of what it has (the client reads
    /// whether or not the socket takes writes: its own queue is where a slow server
    /// pushes back). Whether the link is kept; one with more to read is read again on the
    /// next turn of the loop, after the events of this batch.
    fn link_io(&mut self, now: Instant, id: RequestId, link: &mut Link<TcpStream>) -> bool {
        if link.flush(now, &mut self.client) == Status::Gone {
            return false;
        }
        match link.read(now, &mut self.client, true) {
            Status::Gone => false,
            Status::More => {
                self.reread.push(id);
                true
            }
            Status::Open => true,
        }
    }
}

/// Starts a TCP connection to the URI's authority, registered with `poll`.
fn connect(poll: &Poll, uri: &Uri, token: Token) -> io::Result<TcpStream> {
    let host = uri
        .host()
        .unwrap_or("localhost")
        .trim_matches(|c| c == '[' || c == ']');
    let port = uri.port_u16().unwrap_or(80);
    let addr: SocketAddr = (host, port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no address for {host}")))?;
    let mut tcp = TcpStream::connect(addr)?;
    poll.registry()
        .register(&mut tcp, token, Interest::READABLE | Interest::WRITABLE)?;
    let _ = tcp.set_nodelay(true);
    Ok(tcp)
}

/// Whether a connecting socket is connected (mio: on a writable event, `take_error`, then
/// `peer_addr`).
fn connected(tcp: &TcpStream) -> io::Result<bool> {
    if let Some(e) = tcp.take_error()? {
        return Err(e);
    }
    match tcp.peer_addr() {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
        Err(e) => Err(e),
    }
}

fn write_all(tcp: &mut TcpStream, out: &mut Vec<u8>) -> io::Result<()> {
    while !out.is_empty() {
        match tcp.write(out) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => drop(out.drain(..n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn reset(what: &'static str) -> HttpError {
    HttpError::Transport(TransportError::Reset(IoError::new(
        io::ErrorKind::UnexpectedEof,
        what,
    )))
}

/// Why a WebSocket connect failed: the server's HTTP answer when it sent one (Engine.IO
/// servers put their error there), else the connection's failure.
fn ws_connect_error(error: tungstenite::Error) -> WsConnectError {
    match error {
        tungstenite::Error::Http(response) => {
            let (parts, body) = response.into_parts();
            let body = Bytes::from(body.unwrap_or_default());
            WsConnectError::Rejected(Response {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        }
        tungstenite::Error::Io(e) => WsConnectError::Transport(engineio_embedded::ws::io_error(e)),
        other => WsConnectError::Transport(TransportError::Io(IoError::new(
            io::ErrorKind::InvalidData,
            other,
        ))),
    }
}

// ---------------------------------------------------------------------- the cases

const CASES: [&str; 9] = [
    "connect",
    "text",
    "binary",
    "text_100k",
    "binary_100k",
    "heartbeat",
    "over_limit",
    "client_close",
    "server_close",
];

struct Case {
    url: String,
    transport: String,
}

impl Case {
    fn open(&self) -> Result<Driver, String> {
        let mut config = ClientConfig::new(&self.url).map_err(|e| e.to_string())?;
        config.transports = match self.transport.as_str() {
            "polling" => vec![Transport::Polling],
            "websocket" => vec![Transport::WebSocket],
            "upgrade" => vec![Transport::Polling, Transport::WebSocket],
            other => return Err(format!("unknown transport {other}")),
        };
        let mut d = Driver::new(config)?;
        d.client.connect(Instant::now());
        let deadline = Instant::now() + STEP;
        let mut upgraded = self.transport != "upgrade";
        let mut connected = false;
        while !(connected && upgraded) {
            match d.next_event(deadline) {
                Some(ClientEvent::Connected(_)) => connected = true,
                Some(ClientEvent::Upgraded) => upgraded = true,
                Some(ClientEvent::ConnectFailed { error }) => return Err(error.to_string()),
                Some(ClientEvent::Disconnected(r)) => return Err(format!("disconnected: {r}")),
                Some(_) => {}
                None if connected => return Err("no upgrade within 5 s".into()),
                None => return Err("no handshake within 5 s".into()),
            }
        }
        let want = if self.transport == "polling" {
            Transport::Polling
        } else {
            Transport::WebSocket
        };
        match d.client.transport() {
            Some(t) if t == want => Ok(d),
            other => Err(format!("transport is {other:?}, expected {want}")),
        }
    }

    /// Waits for the end of the session (at most `within`).
    fn wait_end(d: &mut Driver, within: Duration) -> Option<CloseReason> {
        let deadline = Instant::now() + within;
        loop {
            match d.next_event(deadline)? {
                ClientEvent::Disconnected(reason) => return Some(reason),
                _ => continue,
            }
        }
    }

    fn disconnect(d: &mut Driver) -> Option<CloseReason> {
        d.client.close(Instant::now());
        let reason = Self::wait_end(d, STEP);
        // Let the close handshake finish.
        let deadline = Instant::now() + CLOSE_WAIT;
        while d.next_event(deadline).is_some() {}
        reason
    }

    fn echo(d: &mut Driver, message: Message) -> Result<String, String> {
        d.client.send(message.clone()).map_err(|e| e.to_string())?;
        let deadline = Instant::now() + STEP;
        loop {
            match d.next_event(deadline) {
                Some(ClientEvent::Message(back)) if back == message => {
                    return Ok(format!("echoed {} bytes", message.len()));
                }
                Some(ClientEvent::Message(back)) => {
                    return Err(format!("echo differs: {} bytes came back", back.len()));
                }
                Some(ClientEvent::Disconnected(r)) => return Err(format!("disconnected: {r}")),
                Some(_) => {}
                None => return Err("no echo within 5 s".into()),
            }
        }
    }

    fn run(&self, case: &str) -> Result<String, String> {
        let mut d = self.open()?;
        let result = match case {
            "connect" => Ok(format!(
                "sid {:?} over {:?}",
                d.client.sid(),
                d.client.transport()
            )),
            "text" => Self::echo(&mut d, Message::from("hello €😀")),
            "binary" => Self::echo(&mut d, Message::from((0..=255u8).collect::<Vec<u8>>())),
            "text_100k" => Self::echo(&mut d, Message::from("abcdefghij€😀".repeat(5883))),
            "binary_100k" => {
                let bytes: Vec<u8> = (0..100_000u32)
                    .map(|i| ((i * 31 + 7) % 256) as u8)
                    .collect();
                Self::echo(&mut d, Message::from(bytes))
            }
            "heartbeat" => match Self::wait_end(&mut d, Duration::from_millis(1500)) {
                Some(r) => Err(format!("disconnected during the heartbeat: {r}")),
                None => Self::echo(&mut d, Message::from("after heartbeat"))
                    .map(|e| format!("1.5 s without disconnect, then {e}")),
            },
            "over_limit" => match d.client.send("x".repeat(1_000_001)) {
                // Refused before sending (the server's maxPayload is known); the
                // connection stays usable.
                Err(SendError::TooLarge { size, limit, .. }) => {
                    Self::echo(&mut d, Message::from("ok"))
                        .map(|e| format!("refused locally ({size} > {limit}), then {e}"))
                }
                Err(e) => Err(format!("refused with an unexpected error: {e}")),
                Ok(()) => match Self::wait_end(&mut d, STEP) {
                    Some(reason) => Ok(format!("server closed the connection: {reason:?}")),
                    None => Err("over-limit message neither refused nor closed".into()),
                },
            },
            "client_close" => {
                return match Self::disconnect(&mut d) {
                    Some(CloseReason::ClientClose) => Ok("reason ClientClose".into()),
                    other => Err(format!("closed with {other:?}")),
                };
            }
            "server_close" => {
                d.client.send("__close__").map_err(|e| e.to_string())?;
                return match Self::wait_end(&mut d, Duration::from_secs(2)) {
                    Some(reason) => Ok(format!("closed: {reason}")),
                    None => Err("no close within 2 s".into()),
                };
            }
            other => Err(format!("unknown case {other}")),
        };
        Self::disconnect(&mut d);
        result
    }
}

fn main() {
    let (Some(url), Some(transport)) = (arg("--url"), arg("--transport")) else {
        eprintln!(
            "usage: plain_client --url URL --transport polling|websocket|upgrade [--cases a,b]"
        );
        std::process::exit(2);
    };
    let cases: Vec<String> = match arg("--cases") {
        Some(c) => c.split(',').map(str::to_owned).collect(),
        None => CASES.iter().map(|c| (*c).to_owned()).collect(),
    };
    let case = Case {
        url,
        transport: transport.clone(),
    };
    for name in cases {
        let start = Instant::now();
        let (ok, detail) = match case.run(&name) {
            Ok(d) => (true, d),
            Err(d) => (false, d),
        };
        let line = serde_json::json!({
            "peer": "rust-mio",
            "transport": transport,
            "case": name,
            "ok": ok,
            "ms": start.elapsed().as_millis() as u64,
            "detail": detail,
        });
        println!("{line}");
    }
}
