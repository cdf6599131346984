//! The interop echo server (tests/src/bin/e2e_server.rs) on a mio event loop, with no
//! async runtime and nothing from engineio-hyper: engineio-proto takes every protocol
//! decision, this file moves bytes and time (docs/embedding.md walks through it). One
//! thread, one `mio::Poll`, HTTP/1.1 over httparse, WebSockets over tungstenite's
//! synchronous API on the same non-blocking sockets, one heap for every deadline. It takes
//! the e2e server's options and serves its echo (`__close__` closes) and demo page:
//! `cargo run -p engineio-embedded --bin mio_server -- --port 3000`.
#![allow(clippy::print_stderr)]

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io::{self, Read};
use std::mem::take;
use std::net::SocketAddr;
use std::time::Instant;

use engineio_embedded::http1::{self, Parsed};
use engineio_embedded::ws::{self, Link, Status, to_tungstenite};
use engineio_embedded::{OsSids, Prefixed, e2e};
use engineio_proto::server::{Action, Event, RequestInfo, Routed, Server, Session};
use engineio_proto::{RequestId, Response, Sid, server::SessionRequestKind};
use http::{HeaderMap, HeaderValue, header};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use tungstenite::Message as Frame;
use tungstenite::protocol::{CloseFrame, Role, WebSocket};

const LISTENER: Token = Token(0);
const BOTH: Interest = Interest::READABLE.add(Interest::WRITABLE);

/// A socket whose pending HTTP bytes (the 101) go out before any WebSocket frame.
type Sock = Prefixed<TcpStream>;

enum Wire {
    Http(Sock),
    Ws(Box<Link<Sock>>, Sid),
}

/// The request a connection waits to answer (HTTP/1.1 answers go in order).
struct Waiting {
    id: RequestId,
    sid: Sid,
    ws_key: Option<HeaderValue>,
}

#[derive(Default)]
struct Conn {
    wire: Option<Wire>,
    peer: Option<SocketAddr>,
    input: Vec<u8>,
    /// When the bytes of the request in `input` began to arrive: its arrival instant.
    started: Option<Instant>,
    /// Body bytes of an answered request still to discard as they arrive.
    skip: usize,
    waiting: Option<Waiting>,
    /// Close once the answer is written (`Connection: close`, or an unreadable body).
    close_when_written: bool,
    /// When the connection is dropped: its answer not taken for `write_timeout`, or its
    /// next head not there `head_timeout` after the last exchange (then with a 408).
    due: Option<Instant>,
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum Due {
    Session(Sid),
    Conn(Token),
}

struct Embedded {
    poll: Poll,
    listener: TcpListener,
    server: Server,
    conns: HashMap<Token, Conn>,
    /// Live sessions, and closed ones until their `Action::Release`.
    sessions: HashMap<Sid, Session>,
    /// The connection of every unanswered request and of every WebSocket.
    routes: HashMap<RequestId, Token>,
    /// Every deadline; one that moved leaves a stale entry, skipped when popped.
    timers: BinaryHeap<Reverse<(Instant, Due)>>,
    deadlines: HashMap<Sid, Instant>,
    /// Connections whose next request may be read (their answer went out).
    ready: Vec<Token>,
    /// Numbers request ids and connection tokens.
    next: u64,
}

impl Embedded {
    fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(256);
        loop {
            let next = self.timers.peek().map(|Reverse((at, _))| *at);
            let timeout = next.map(|at| at.saturating_duration_since(Instant::now()));
            match self.poll.poll(&mut events, timeout) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                result => result?,
            }
            let now = Instant::now();
            for event in &events {
                match event.token() {
                    LISTENER => self.accept(now),
                    token => _ = self.ready_io(now, token),
                }
            }
            self.expire(now);
            while let Some(token) = self.ready.pop() {
                self.http_read(now, token);
            }
        }
    }

    fn accept(&mut self, now: Instant) {
        loop {
            let (mut tcp, peer) = match self.listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => return eprintln!("accept: {e}"),
            };
            self.next += 1;
            let token = Token(self.next as usize);
            let registry = self.poll.registry();
            if registry.register(&mut tcp, token, BOTH).is_ok() {
                let _ = tcp.set_nodelay(true);
                let due = now + self.server.config().head_timeout;
                self.timers.push(Reverse((due, Due::Conn(token))));
                let mut conn = Conn::default();
                (conn.wire, conn.peer, conn.due) =
                    (Some(Wire::Http(Prefixed::new(tcp))), Some(peer), Some(due));
                self.conns.insert(token, conn);
            }
        }
    }

    fn ready_io(&mut self, now: Instant, token: Token) -> Option<()> {
        let Some(Wire::Ws(link, sid)) = &self.conns.get(&token)?.wire else {
            self.http_write(now, token);
            return self.http_read(now, token);
        };
        let (ws, sid) = (link.id, *sid);
        let Some(mut session) = self.sessions.remove(&sid) else {
            return self.forget(token).map(drop);
        };
        self.on_link(ws, |link| link.flush(now, &mut session));
        // In batches, draining in between: an echo that blocks the socket stops the reading.
        while self.on_link(ws, |link| link.read(now, &mut session, false)) {
            if !self.drain(now, &mut session) {
                return Some(());
            }
        }
        self.drive(now, session);
        Some(())
    }

    /// Applies every deadline that has come, in order.
    fn expire(&mut self, now: Instant) {
        while let Some(Reverse((at, due))) = self.timers.pop() {
            if at > now {
                return self.timers.push(Reverse((at, due)));
            }
            match due {
                Due::Session(sid) if self.deadlines.get(&sid) == Some(&at) => {
                    if let Some(mut session) = self.sessions.remove(&sid) {
                        session.handle_timeout(now);
                        session.shrink_to_fit();
                        self.drive(now, session);
                    }
                }
                Due::Conn(t) if self.conns.get(&t).and_then(|c| c.due) == Some(at) => {
                    self.timed_out(now, t);
                }
                _ => {}
            }
        }
    }

    /// The driving contract: after an input, run every action until there is none, then
    /// keep the session's deadline in the heap.
    fn drive(&mut self, now: Instant, mut session: Session) {
        let sid = session.sid();
        if self.drain(now, &mut session)
            && let Some(at) = session.poll_timeout()
            && self.deadlines.insert(sid, at) != Some(at)
        {
            self.timers.push(Reverse((at, Due::Session(sid))));
        }
        if !session.is_released() {
            self.sessions.insert(sid, session);
        }
    }

    /// Runs every action the session has; false once it is released.
    fn drain(&mut self, now: Instant, s: &mut Session) -> bool {
        let sid = s.sid();
        while let Some(action) = s.poll_action() {
            match action {
                Action::Respond { request, response } => _ = self.respond(now, request, &response),
                // `deflate` stays `None`: this server leaves `websocket_deflate` off.
                Action::AcceptWebSocket {
                    request,
                    headers,
                    deflate: _,
                } => _ = self.upgrade(now, s, request, headers),
                Action::WsSend { ws, message } => {
                    self.on_link(ws, |link| link.write(now, s, to_tungstenite(message)));
                }
                Action::WsClose { ws, code, reason } => {
                    let (code, reason) = (code.as_u16().into(), reason.into());
                    let close = Frame::Close(Some(CloseFrame { code, reason }));
                    self.on_link(ws, |link| link.write(now, s, close));
                }
                Action::WsDrop { ws } => self.forget_route(ws),
                Action::ReadWebSocket { ws } => {
                    while self.on_link(ws, |link| link.read(now, s, true)) {}
                    s.handle_ws_drained(now, ws);
                }
                // The application: the e2e server's echo.
                Action::Event(Event::Message(m)) if m.as_text() == Some("__close__") => {
                    s.close(now);
                }
                Action::Event(Event::Message(m)) => {
                    if let Err(e) = s.send(m) {
                        eprintln!("echo to {sid} failed: {e}");
                    }
                }
                Action::Event(_) => {}
                Action::Release => return self.release(sid),
            }
        }
        true
    }

    /// Drops a released session's record and every socket and request it still holds
    /// (false: the session is gone).
    fn release(&mut self, sid: Sid) -> bool {
        self.deadlines.remove(&sid);
        self.conns.retain(|_, c| match &c.wire {
            Some(Wire::Ws(_, of)) => *of != sid,
            _ => c.waiting.as_ref().is_none_or(|w| w.sid != sid),
        });
        let conns = &self.conns;
        self.routes.retain(|_, token| conns.contains_key(token));
        false
    }

    // ------------------------------------------------------------------ HTTP

    fn http_read(&mut self, now: Instant, token: Token) -> Option<()> {
        let cap = self.server.config().max_head_size + self.server.body_read_limit();
        let conn = self.conns.get_mut(&token)?;
        let Some(Wire::Http(sock)) = &mut conn.wire else {
            return None;
        };
        let (mut buf, mut gone) = ([0u8; 16 * 1024], false);
        // Past `cap` the rest waits in the kernel, read once a request has been taken.
        while conn.input.len() < cap {
            match sock.read(&mut buf) {
                Ok(0) => gone = true,
                Ok(n) => {
                    if conn.input.is_empty() {
                        conn.started = Some(now);
                    }
                    let skipped = conn.skip.min(n);
                    conn.skip -= skipped;
                    conn.input.extend_from_slice(buf.get(skipped..n)?);
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => gone = true,
            }
            break;
        }
        self.parse(now, token);
        gone.then(|| self.close_conn(now, token))
    }

    /// Takes the complete requests in the connection's input, one at a time: the next is
    /// taken once the previous one is answered.
    fn parse(&mut self, now: Instant, token: Token) {
        let (head, limit) = (
            self.server.config().max_head_size,
            self.server.body_read_limit(),
        );
        while let Some(conn) = self.conns.get_mut(&token) {
            if conn.waiting.is_some() || conn.close_when_written || conn.input.is_empty() {
                return;
            }
            let req = match http1::parse_request(&conn.input, head, limit) {
                Parsed::Incomplete => return,
                Parsed::Invalid(status) => {
                    conn.close_when_written = true;
                    return self.answer(now, token, &http1::refusal(status));
                }
                Parsed::Request(req) => req,
            };
            conn.due = None;
            conn.input.drain(..req.used);
            let skipped = req.unread.min(conn.input.len());
            conn.input.drain(..skipped);
            conn.skip = req.unread - skipped;
            conn.close_when_written = !req.keep_alive;
            let arrived = conn.started.replace(now).unwrap_or(now);
            self.request(now, arrived, token, *req);
        }
    }

    fn request(&mut self, now: Instant, arrived: Instant, token: Token, req: http1::Request) {
        if !self.server.matches_path(req.uri.path()) {
            return self.answer(now, token, &e2e::static_file(&req.method, req.uri.path()));
        }
        self.next += 1;
        let id = RequestId(self.next);
        let mut info = RequestInfo::new(&req.method, &req.uri, &req.headers);
        info.peer_addr = self.conns.get(&token).and_then(|c| c.peer);
        let key = req.headers.get(header::SEC_WEBSOCKET_KEY).cloned();
        match self.server.handle_request(arrived, id, &info) {
            Routed::Respond(response) => self.answer(now, token, &response),
            Routed::Handshake(handshake) => match self.server.accept(now, handshake) {
                Ok(session) => {
                    self.wait(token, id, session.sid(), key);
                    self.drive(now, session);
                }
                Err(refusal) => self.answer(now, token, &refusal),
            },
            Routed::Session(request) => {
                let Some(mut session) = self.sessions.remove(&request.sid()) else {
                    return self.answer(now, token, &request.unknown_session());
                };
                let post = matches!(request.kind(), SessionRequestKind::Post { .. });
                self.wait(token, id, session.sid(), key);
                session.handle_request(now, request);
                if post {
                    session.handle_post_body(now, id, req.body);
                }
                self.drive(now, session);
            }
        }
    }

    fn wait(&mut self, token: Token, id: RequestId, sid: Sid, ws_key: Option<HeaderValue>) {
        self.routes.insert(id, token);
        if let Some(conn) = self.conns.get_mut(&token) {
            conn.waiting = Some(Waiting { id, sid, ws_key });
        }
    }

    /// The session's answer to `request` (at once, or long after: a parked GET).
    fn respond(&mut self, now: Instant, request: RequestId, response: &Response) -> Option<()> {
        let token = self.routes.remove(&request)?;
        let conn = self.conns.get_mut(&token)?;
        conn.waiting.take_if(|w| w.id == request)?;
        self.answer(now, token, response);
        Some(())
    }

    fn answer(&mut self, now: Instant, token: Token, response: &Response) {
        if let Some(conn) = self.conns.get_mut(&token)
            && let Some(Wire::Http(sock)) = &mut conn.wire
        {
            http1::encode_response(response, conn.close_when_written, &mut sock.pending);
        }
        self.http_write(now, token);
        self.ready.push(token);
    }

    /// Writes what the connection holds and files its deadline, with the proto's limits
    /// as in the bindings: a peer that takes nothing of an answer for `write_timeout` loses
    /// the connection, and so does one whose next head is not in `head_timeout` later.
    fn http_write(&mut self, now: Instant, token: Token) -> Option<()> {
        let config = self.server.config();
        let (stall, head) = (now + config.write_timeout, now + config.head_timeout);
        let conn = self.conns.get_mut(&token)?;
        let Some(Wire::Http(sock)) = &mut conn.wire else {
            return None;
        };
        let (before, written) = (sock.pending.len(), sock.write_pending());
        let progress = sock.pending.len() < before;
        let blocked = written
            .as_ref()
            .is_err_and(|e| e.kind() == io::ErrorKind::WouldBlock);
        let idle = conn.waiting.is_none();
        if (written.is_ok() && idle && conn.close_when_written) || (written.is_err() && !blocked) {
            self.close_conn(now, token);
            return None;
        }
        // Blocked: the stall counts from the last progress. All written: the exchange is
        // over, and the next head is awaited (unless one was taken already).
        conn.due = match blocked {
            true if progress || conn.due.is_none() => Some(stall),
            false if progress => idle.then_some(head),
            _ => return None,
        };
        self.timers.push(Reverse((conn.due?, Due::Conn(token))));
        Some(())
    }

    /// A connection's deadline came. If it was waiting for a head that had begun to
    /// arrive, it gets the proto's 408 first, if the socket takes it at once.
    fn timed_out(&mut self, now: Instant, token: Token) {
        if let Some(conn) = self.conns.get_mut(&token)
            && let Some(Wire::Http(sock)) = &mut conn.wire
            && sock.pending.is_empty()
            && !conn.input.is_empty()
        {
            let response = self.server.head_timeout_response();
            http1::encode_response(&response, false, &mut sock.pending);
            let _ = sock.write_pending();
        }
        self.close_conn(now, token);
    }

    /// The connection is gone; the request it carried is reported to its session.
    fn close_conn(&mut self, now: Instant, token: Token) {
        if let Some(waiting) = self.forget(token).and_then(|c| c.waiting)
            && let Some(mut session) = self.sessions.remove(&waiting.sid)
        {
            session.handle_request_dropped(now, waiting.id);
            self.drive(now, session);
        }
    }

    fn forget(&mut self, token: Token) -> Option<Conn> {
        let conn = self.conns.remove(&token)?;
        if let Some(waiting) = &conn.waiting {
            self.routes.remove(&waiting.id);
        }
        if let Some(Wire::Ws(link, _)) = &conn.wire {
            self.routes.remove(&link.id);
        }
        Some(conn)
    }

    fn forget_route(&mut self, id: RequestId) {
        if let Some(token) = self.routes.get(&id).copied() {
            self.forget(token);
        }
    }

    // ------------------------------------------------------------------ WebSocket

    /// Writes the 101 and turns the connection into WebSocket `id` (the request's id).
    fn upgrade(
        &mut self,
        now: Instant,
        s: &mut Session,
        id: RequestId,
        extra: HeaderMap,
    ) -> Option<()> {
        let conn = self.conns.get_mut(self.routes.get(&id)?)?;
        let waiting = conn.waiting.take_if(|w| w.id == id)?;
        let Some(Wire::Http(mut sock)) = conn.wire.take() else {
            return None;
        };
        let response = http1::switching_protocols(waiting.ws_key.as_ref(), extra);
        http1::encode_response(&response, false, &mut sock.pending);
        // Bytes the client sent after its request are its first frames, and from now on
        // the session times the socket's writes.
        conn.due = None;
        let config = Some(ws::server_config(self.server.config().max_payload));
        let early = take(&mut conn.input);
        let ws = WebSocket::from_partially_read(sock, early, Role::Server, config);
        conn.wire = Some(Wire::Ws(Box::new(Link::new(ws, id)), s.sid()));
        self.on_link(id, |link| link.flush(now, s));
        Some(())
    }

    /// Runs `f` on WebSocket `ws`, if it is still there, and drops it once it is gone.
    /// Returns whether more frames may be waiting to be read.
    fn on_link(&mut self, ws: RequestId, f: impl FnOnce(&mut Link<Sock>) -> Status) -> bool {
        let conn = self.routes.get(&ws).and_then(|t| self.conns.get_mut(t));
        let Some(Wire::Ws(link, _)) = conn.and_then(|c| c.wire.as_mut()) else {
            return false;
        };
        let status = f(link);
        if status == Status::Gone {
            self.forget_route(ws);
        }
        status == Status::More
    }
}

fn main() -> io::Result<()> {
    let server = Server::new(e2e::server_config(), OsSids).map_err(io::Error::other)?;
    let mut listener = TcpListener::from_std(e2e::listener()?);
    let poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    eprintln!("mio_server listening on 127.0.0.1:{}", e2e::port());
    let mut embedded = Embedded {
        poll,
        listener,
        server,
        conns: HashMap::new(),
        sessions: HashMap::new(),
        routes: HashMap::new(),
        timers: BinaryHeap::new(),
        deadlines: HashMap::new(),
        ready: Vec::new(),
        next: 1,
    };
    embedded.run()
}
