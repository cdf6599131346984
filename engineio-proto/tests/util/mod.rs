//! Virtual-time test harness for the server state machine (quinn-proto's `Pair` is the
//! model): a scripted raw client on one side, the proto `Server` and its `Session`s on the
//! other, all in memory. Time only moves when a test says so: `advance` and `step` jump
//! the clock to the next deadline, so a 25 s heartbeat runs in microseconds.
#![allow(dead_code, missing_docs, unreachable_pub, clippy::disallowed_methods)]

use std::collections::BTreeMap;
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

use bytes::Bytes;
use engineio_proto::server::{
    Event, HandshakeRequest, Rejection, SeededSidGenerator, Server, ServerConfig, Session,
};
use engineio_proto::testing::{PeerSocket, ServerEndpoint};
use engineio_proto::{
    CloseReason, Handshake, Packet, PayloadLimits, RequestId, Response, Sid, TransportEnd,
    WsMessage, decode_payload,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method};

/// What the harness does with handshakes.
pub enum ConnectPolicy {
    /// Accept every handshake at once.
    Accept,
    /// Reject every handshake.
    Reject(Rejection),
    /// Keep handshakes waiting in `pending_handshakes` for the test to decide.
    Defer,
}

/// A scripted raw client in front of the in-memory [`ServerEndpoint`] (which drains the
/// sessions and checks the binding contract).
pub struct Harness {
    pub ep: ServerEndpoint,
    pub start: Instant,
    next_id: u64,
    pub policy: ConnectPolicy,
    pub pending_handshakes: Vec<HandshakeRequest>,
    /// The data the test gave each accepted session (the order it was accepted in).
    pub data: BTreeMap<Sid, u32>,
}

impl Deref for Harness {
    type Target = ServerEndpoint;
    fn deref(&self) -> &ServerEndpoint {
        &self.ep
    }
}

impl DerefMut for Harness {
    fn deref_mut(&mut self) -> &mut ServerEndpoint {
        &mut self.ep
    }
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
        let server = Server::new(config, SeededSidGenerator::new(42)).expect("valid config");
        Harness {
            ep: ServerEndpoint::new(server, start),
            start,
            next_id: 1,
            policy: ConnectPolicy::Accept,
            pending_handshakes: Vec::new(),
            data: BTreeMap::new(),
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

    fn headers(headers: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(
                HeaderName::from_bytes(k.as_bytes()).expect("header name"),
                HeaderValue::from_str(v).expect("header value"),
            );
        }
        map
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
        let map = Self::headers(headers);
        let body = (method == Method::POST).then(|| Bytes::copy_from_slice(body));
        if let Some(hs) = self.ep.request(id, method, uri, &map, body) {
            self.handshake(hs);
        }
        id
    }

    fn handshake(&mut self, hs: HandshakeRequest) {
        match &self.policy {
            ConnectPolicy::Accept => self.accept(hs),
            ConnectPolicy::Reject(rejection) => {
                let rejection = rejection.clone();
                self.ep.reject(hs, rejection);
            }
            ConnectPolicy::Defer => self.pending_handshakes.push(hs),
        }
    }

    /// Accepts a handshake (the test's data for it counts accepted sessions).
    pub fn accept(&mut self, hs: HandshakeRequest) {
        if let Some(sid) = self.ep.accept(hs) {
            let n = self.data.len() as u32 + 1;
            self.data.insert(sid, n);
        }
    }

    /// Delivers a POST's head to its session, without the body (as a binding does while
    /// the body is still arriving).
    pub fn raw_post_head(&mut self, sid: Sid) -> RequestId {
        let id = self.id();
        self.ep.request(
            id,
            Method::POST,
            &Self::poll_uri(sid),
            &HeaderMap::new(),
            None,
        );
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
        self.request(
            Method::GET,
            uri,
            &[
                ("connection", "Upgrade"),
                ("upgrade", "websocket"),
                ("sec-websocket-version", "13"),
                ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ],
            b"",
        )
    }

    pub fn ws_send(&mut self, ws: RequestId, message: WsMessage) {
        self.ep.ws_message(ws, message);
    }

    pub fn ws_text(&mut self, ws: RequestId, text: &str) {
        self.ws_send(ws, WsMessage::Text(text.into()));
    }

    pub fn ws_client_close(&mut self, ws: RequestId, end: TransportEnd) {
        self.ep.ws_closed(ws, end);
    }

    /// Messages received on a WebSocket since the last call.
    pub fn ws_recv(&mut self, ws: RequestId) -> Vec<WsMessage> {
        self.ep.take_ws_messages(ws)
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

    pub fn ws_state(&self, ws: RequestId) -> &PeerSocket {
        &self.sockets[&ws]
    }

    /// Takes the response to a request, if it has been answered.
    pub fn response(&mut self, id: RequestId) -> Option<Response> {
        self.ep.take_response(id)
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

    /// Whether session `sid` exists and has not ended.
    pub fn is_live(&self, sid: Sid) -> bool {
        self.sessions.get(&sid).is_some_and(|s| !s.is_closed())
    }

    /// How many sessions have not ended.
    pub fn live_count(&self) -> usize {
        self.sessions.values().filter(|s| !s.is_closed()).count()
    }

    /// Moves the clock forward by `d`, firing every deadline on the way in order.
    pub fn advance(&mut self, d: Duration) {
        let target = self.now + d;
        self.ep.advance_to(target);
    }

    /// Jumps to the next deadline and fires it; returns false when there is none.
    pub fn step(&mut self) -> bool {
        match self.next_deadline() {
            Some(t) => {
                self.ep.advance_to(t);
                true
            }
            None => false,
        }
    }

    pub fn session(&mut self, sid: Sid) -> &mut Session {
        self.ep.session_mut(sid).expect("known session")
    }

    pub fn send(&mut self, sid: Sid, text: &str) {
        self.session(sid).send(text).expect("send");
        self.ep.drain();
    }

    pub fn close(&mut self, sid: Sid) {
        let now = self.now;
        self.session(sid).close(now);
        self.ep.drain();
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

    pub fn closed_reason(&self, sid: Sid) -> Option<&CloseReason> {
        self.closed.get(&sid)
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
