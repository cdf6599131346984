//! Virtual-time test harness for the server state machine (quinn-proto's `Pair` is the
//! model): a scripted raw client on one side, the proto `Server` and its `Session`s on the
//! other, all in memory. Time only moves when a test says so: `advance` and `step` jump
//! the clock to the next deadline, so a 25 s heartbeat runs in microseconds.
#![allow(dead_code, missing_docs, unreachable_pub, clippy::disallowed_methods)]

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use engineio_proto::server::{
    Action, Event, HandshakeRequest, Rejection, RequestInfo, Routed, SeededSidGenerator, Server,
    ServerConfig, Session,
};
use engineio_proto::{
    CloseReason, Handshake, Packet, PayloadLimits, RequestId, Response, Sid, TransportEnd,
    WsMessage, decode_payload,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};

/// What the harness does with handshakes.
pub enum ConnectPolicy {
    /// Accept every handshake at once.
    Accept,
    /// Reject every handshake.
    Reject(Rejection),
    /// Keep handshakes waiting in `pending_handshakes` for the test to decide.
    Defer,
}

/// One WebSocket as the raw client sees it.
#[derive(Debug, Default)]
pub struct WsState {
    pub accepted: bool,
    pub inbox: VecDeque<WsMessage>,
    pub closed: Option<(u16, &'static str)>,
    pub sid: Option<Sid>,
}

pub struct Harness {
    pub server: Server,
    pub sessions: BTreeMap<Sid, Session<u32>>,
    pub start: Instant,
    pub now: Instant,
    next_id: u64,
    pub responses: BTreeMap<RequestId, Response>,
    /// Requests a session took and has not answered yet.
    pub outstanding: BTreeMap<RequestId, Sid>,
    pub sockets: BTreeMap<RequestId, WsState>,
    pub events: Vec<(Sid, Event)>,
    pub closed: BTreeMap<Sid, CloseReason>,
    pub policy: ConnectPolicy,
    pub pending_handshakes: Vec<HandshakeRequest>,
    accepted: u32,
}

pub fn config() -> ServerConfig {
    ServerConfig::default()
}

/// The official test suite's configuration: ping 300 ms / 200 ms.
pub fn suite_config() -> ServerConfig {
    let mut c = ServerConfig::default();
    c.ping_interval = Duration::from_millis(300);
    c.ping_timeout = Duration::from_millis(200);
    c
}

impl Harness {
    pub fn new(config: ServerConfig) -> Harness {
        let start = Instant::now();
        Harness {
            server: Server::new(config, SeededSidGenerator::new(42)).expect("valid config"),
            sessions: BTreeMap::new(),
            start,
            now: start,
            next_id: 1,
            responses: BTreeMap::new(),
            outstanding: BTreeMap::new(),
            sockets: BTreeMap::new(),
            events: Vec::new(),
            closed: BTreeMap::new(),
            policy: ConnectPolicy::Accept,
            pending_handshakes: Vec::new(),
            accepted: 0,
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    fn id(&mut self) -> RequestId {
        let id = RequestId(self.next_id);
        self.next_id += 1;
        id
    }

    /// Sends an HTTP request (a complete one: the POST body is delivered at once).
    pub fn request(
        &mut self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> RequestId {
        let id = self.id();
        let uri: Uri = uri.parse().expect("test URI");
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(
                HeaderName::from_bytes(k.as_bytes()).expect("header name"),
                HeaderValue::from_str(v).expect("header value"),
            );
        }
        let info = RequestInfo::new(&method, &uri, &map);
        match self.server.handle_request(id, &info) {
            Routed::Respond(r) => {
                self.responses.insert(id, r);
            }
            Routed::Handshake(hs) => self.handshake(hs),
            Routed::Session(req) => {
                let sid = req.sid();
                let is_post = matches!(
                    req.kind(),
                    engineio_proto::server::SessionRequestKind::Post { .. }
                );
                match self.sessions.get_mut(&sid) {
                    Some(session) => {
                        self.outstanding.insert(id, sid);
                        session.handle_request(self.now, req);
                        if is_post {
                            session.handle_post_body(self.now, id, Bytes::copy_from_slice(body));
                        }
                    }
                    None => {
                        self.responses.insert(id, req.unknown_session());
                    }
                }
            }
        }
        self.drain();
        id
    }

    fn handshake(&mut self, hs: HandshakeRequest) {
        match &self.policy {
            ConnectPolicy::Accept => self.accept(hs),
            ConnectPolicy::Reject(rejection) => {
                let id = hs.id();
                let r = self.server.reject(hs, rejection.clone());
                self.responses.insert(id, r);
            }
            ConnectPolicy::Defer => self.pending_handshakes.push(hs),
        }
    }

    /// Accepts a handshake (the per-session data counts accepted sessions).
    pub fn accept(&mut self, hs: HandshakeRequest) {
        self.accepted += 1;
        let id = hs.id();
        let session = self.server.accept(self.now, hs, self.accepted);
        let sid = session.sid();
        self.outstanding.insert(id, sid);
        self.sessions.insert(sid, session);
        self.drain();
    }

    /// Delivers a POST's head to its session, without the body (as a binding does while
    /// the body is still arriving).
    pub fn raw_post_head(&mut self, sid: Sid) -> RequestId {
        let id = self.id();
        let uri: Uri = Self::poll_uri(sid).parse().expect("uri");
        let headers = HeaderMap::new();
        let info = RequestInfo::new(&Method::POST, &uri, &headers);
        let Routed::Session(req) = self.server.handle_request(id, &info) else {
            panic!("not routed to a session")
        };
        self.outstanding.insert(id, sid);
        let now = self.now;
        self.session(sid).handle_request(now, req);
        self.drain();
        id
    }

    pub fn get(&mut self, uri: &str) -> RequestId {
        self.request(Method::GET, uri, &[], b"")
    }

    pub fn post(&mut self, uri: &str, body: &[u8]) -> RequestId {
        self.request(Method::POST, uri, &[], body)
    }

    /// Opens a WebSocket (a GET with the upgrade headers).
    pub fn ws(&mut self, uri: &str) -> RequestId {
        let id = self.request(
            Method::GET,
            uri,
            &[
                ("connection", "Upgrade"),
                ("upgrade", "websocket"),
                ("sec-websocket-version", "13"),
                ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ],
            b"",
        );
        self.sockets.entry(id).or_default();
        self.drain();
        id
    }

    pub fn ws_send(&mut self, ws: RequestId, message: WsMessage) {
        if let Some(sid) = self.sockets.get(&ws).and_then(|s| s.sid)
            && let Some(session) = self.sessions.get_mut(&sid)
        {
            session.handle_ws_message(self.now, ws, message);
        }
        self.drain();
    }

    pub fn ws_text(&mut self, ws: RequestId, text: &str) {
        self.ws_send(ws, WsMessage::Text(text.into()));
    }

    pub fn ws_client_close(&mut self, ws: RequestId, end: TransportEnd) {
        if let Some(sid) = self.sockets.get(&ws).and_then(|s| s.sid)
            && let Some(session) = self.sessions.get_mut(&sid)
        {
            session.handle_ws_closed(self.now, ws, end);
        }
        self.drain();
    }

    /// Messages received on a WebSocket since the last call.
    pub fn ws_recv(&mut self, ws: RequestId) -> Vec<WsMessage> {
        self.sockets
            .get_mut(&ws)
            .map(|s| s.inbox.drain(..).collect())
            .unwrap_or_default()
    }

    pub fn ws_recv_text(&mut self, ws: RequestId) -> Vec<String> {
        self.ws_recv(ws)
            .into_iter()
            .map(|m| match m {
                WsMessage::Text(t) => t.to_string(),
                WsMessage::Binary(b) => format!("<binary {b:?}>"),
            })
            .collect()
    }

    pub fn ws_state(&self, ws: RequestId) -> &WsState {
        &self.sockets[&ws]
    }

    pub fn drop_request(&mut self, id: RequestId) {
        if let Some(sid) = self.outstanding.remove(&id)
            && let Some(session) = self.sessions.get_mut(&sid)
        {
            session.handle_request_dropped(self.now, id);
        }
        self.drain();
    }

    /// Takes the response to a request, if it has been answered.
    pub fn response(&mut self, id: RequestId) -> Option<Response> {
        self.responses.remove(&id)
    }

    /// The response's body as text; panics if the request is unanswered.
    pub fn body(&mut self, id: RequestId) -> String {
        let r = self
            .response(id)
            .unwrap_or_else(|| panic!("request {id} unanswered"));
        r.body_text().into_owned()
    }

    pub fn answered(&self, id: RequestId) -> bool {
        self.responses.contains_key(&id)
    }

    /// Drains every session's actions.
    pub fn drain(&mut self) {
        let mut finished = Vec::new();
        for (sid, session) in self.sessions.iter_mut() {
            while let Some(action) = session.poll_action() {
                match action {
                    Action::Respond { request, response } => {
                        self.outstanding.remove(&request);
                        assert!(
                            self.responses.insert(request, *response).is_none(),
                            "request {request} answered twice"
                        );
                    }
                    Action::AcceptWebSocket { request, .. } => {
                        self.outstanding.remove(&request);
                        let ws = self.sockets.entry(request).or_default();
                        ws.accepted = true;
                        ws.sid = Some(*sid);
                    }
                    Action::WsSend { ws, message } => {
                        let s = self.sockets.get_mut(&ws).expect("send on a known socket");
                        assert!(s.accepted && s.closed.is_none(), "send on a dead socket");
                        s.inbox.push_back(message);
                    }
                    Action::WsClose { ws, code, reason } => {
                        let s = self.sockets.get_mut(&ws).expect("close a known socket");
                        s.closed = Some((code, reason));
                    }
                    Action::Event(Event::Closed(reason)) => {
                        assert!(session.is_closed());
                        assert_eq!(
                            session.poll_timeout(),
                            None,
                            "a closed session has no timer"
                        );
                        finished.push(*sid);
                        self.closed.insert(*sid, reason.clone());
                        self.events.push((*sid, Event::Closed(reason)));
                    }
                    Action::Event(e) => self.events.push((*sid, e)),
                }
            }
        }
        for sid in finished {
            let mut s = self.sessions.remove(&sid).expect("present");
            assert_eq!(s.poll_action(), None, "nothing after Closed");
        }
    }

    /// The earliest deadline of all sessions.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.sessions
            .values()
            .filter_map(|s| s.poll_timeout())
            .min()
    }

    /// Moves the clock forward by `d`, firing every deadline on the way in order.
    pub fn advance(&mut self, d: Duration) {
        let target = self.now + d;
        while let Some(next) = self.next_deadline().filter(|t| *t <= target) {
            self.now = self.now.max(next);
            self.fire();
        }
        self.now = target;
        self.fire();
    }

    /// Jumps to the next deadline and fires it; returns false when there is none.
    pub fn step(&mut self) -> bool {
        match self.next_deadline() {
            Some(t) => {
                self.now = self.now.max(t);
                self.fire();
                true
            }
            None => false,
        }
    }

    fn fire(&mut self) {
        let now = self.now;
        for s in self.sessions.values_mut() {
            s.handle_timeout(now);
        }
        self.drain();
    }

    pub fn session(&mut self, sid: Sid) -> &mut Session<u32> {
        self.sessions.get_mut(&sid).expect("live session")
    }

    pub fn send(&mut self, sid: Sid, text: &str) {
        self.session(sid).send(text).expect("send");
        self.drain();
    }

    pub fn close(&mut self, sid: Sid) {
        let now = self.now;
        self.session(sid).close(now);
        self.drain();
    }

    /// Messages the application received from a session.
    pub fn messages(&self, sid: Sid) -> Vec<String> {
        self.events
            .iter()
            .filter(|(s, _)| *s == sid)
            .filter_map(|(_, e)| match e {
                Event::Message(m) => Some(match m {
                    engineio_proto::Message::Text(t) => t.to_string(),
                    engineio_proto::Message::Binary(b) => format!("<binary {:?}>", &b[..]),
                }),
                _ => None,
            })
            .collect()
    }

    // ------------------------------------------------ protocol-level helpers

    /// Opens a polling session; returns its sid and handshake.
    pub fn open_polling(&mut self) -> (Sid, Handshake) {
        let id = self.get("/engine.io/?EIO=4&transport=polling");
        let r = self.response(id).expect("handshake answered at once");
        assert_eq!(r.status, 200, "{}", r.body_text());
        let hs = open_packet(&r.body);
        (hs.sid, hs)
    }

    /// Opens a WebSocket session; returns the socket, sid and handshake.
    pub fn open_ws(&mut self) -> (RequestId, Sid, Handshake) {
        let ws = self.ws("/engine.io/?EIO=4&transport=websocket");
        assert!(self.ws_state(ws).accepted, "websocket handshake accepted");
        let first = self.ws_recv(ws);
        let Some(WsMessage::Text(t)) = first.first() else {
            panic!("no open packet: {first:?}")
        };
        let Ok(Packet::Open(hs)) = Packet::decode_text(t.clone()) else {
            panic!("first message is not open: {t}")
        };
        (ws, hs.sid, *hs)
    }

    pub fn poll_uri(sid: Sid) -> String {
        format!("/engine.io/?EIO=4&transport=polling&sid={sid}")
    }

    pub fn ws_uri(sid: Sid) -> String {
        format!("/engine.io/?EIO=4&transport=websocket&sid={sid}")
    }

    /// Upgrades a polling session to WebSocket the way engine.io-client does.
    pub fn upgrade(&mut self, sid: Sid) -> RequestId {
        let ws = self.ws(&Self::ws_uri(sid));
        assert!(self.ws_state(ws).accepted);
        self.ws_text(ws, "2probe");
        assert_eq!(self.ws_recv_text(ws), ["3probe"]);
        self.ws_text(ws, "5");
        ws
    }
}

/// Decodes a polling body into packets.
pub fn packets(body: &[u8]) -> Vec<Packet> {
    decode_payload(Bytes::copy_from_slice(body), PayloadLimits::default())
        .expect("size")
        .collect::<Result<_, _>>()
        .expect("valid payload")
}

pub fn open_packet(body: &[u8]) -> Handshake {
    match packets(body).into_iter().next() {
        Some(Packet::Open(hs)) => *hs,
        other => panic!("not an open packet: {other:?}"),
    }
}

/// The JSON error code of a response.
pub fn error_code(r: &Response) -> i64 {
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("JSON error body");
    v["code"].as_i64().expect("code")
}
