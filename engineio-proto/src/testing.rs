//! An in-memory server endpoint driven in virtual time, for tests and fuzzing (feature
//! `testing`).
//!
//! [`ServerEndpoint`] holds a [`Server`], its [`Session`]s and the peer's view of every
//! request and WebSocket, and drains the sessions' actions the way a binding must: after
//! every input, until nothing is left. While draining it checks the contract a binding
//! relies on, and panics with a message when a session breaks it: a request answered
//! twice, a frame on a socket that was never accepted or already closed, an action after
//! [`Action::Release`], a second [`Event::Closed`].
//!
//! The crate's own test harnesses (a scripted raw client, the client/server pair) and the
//! server fuzz target are built on it, so there is one drain loop to trust.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use engineio_proto::server::{SeededSidGenerator, Server, ServerConfig};
//! use engineio_proto::testing::ServerEndpoint;
//! use engineio_proto::RequestId;
//! use http::{HeaderMap, Method};
//!
//! # #[allow(clippy::disallowed_methods)]
//! let start = Instant::now();
//! let server = Server::new(ServerConfig::default(), SeededSidGenerator::new(1))?;
//! let mut ep = ServerEndpoint::new(server, start);
//! let hs = ep
//!     .request(RequestId(1), Method::GET, "/engine.io/?EIO=4&transport=polling", &HeaderMap::new(), None)
//!     .expect("a handshake");
//! let sid = ep.accept(hs).expect("accepted");
//! assert!(ep.take_response(RequestId(1)).unwrap().body_text().starts_with("0{"));
//! ep.advance_to(start + Duration::from_secs(45));
//! assert!(ep.closed.contains_key(&sid));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderMap, Method, Uri};

use crate::server::{
    Action, Event, HandshakeRequest, Rejection, RequestInfo, Routed, Server, Session,
    SessionRequestKind,
};
use crate::{CloseCode, CloseReason, RequestId, Response, Sid, TransportEnd, WsMessage};

/// One WebSocket as its peer sees it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PeerSocket {
    /// The session it belongs to, once accepted.
    pub sid: Option<Sid>,
    /// Whether the 101 was given.
    pub accepted: bool,
    /// Messages received and not taken yet.
    pub inbox: VecDeque<WsMessage>,
    /// The close frame received, if any.
    pub closed: Option<(CloseCode, &'static str)>,
    /// Whether the server dropped the socket without waiting for the close to complete.
    pub dropped: bool,
}

/// What the peers received, in the order the sessions sent it (recorded when
/// [`ServerEndpoint::record_outputs`] is set), for harnesses that forward it elsewhere.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Request `id` was answered.
    Response {
        /// The request.
        id: RequestId,
        /// The answer.
        response: Response,
    },
    /// WebSocket request `ws` got its 101.
    WsAccepted {
        /// The WebSocket.
        ws: RequestId,
    },
    /// A message on WebSocket `ws`.
    WsMessage {
        /// The WebSocket.
        ws: RequestId,
        /// The message.
        message: WsMessage,
    },
    /// A close frame on WebSocket `ws`.
    WsClosed {
        /// The WebSocket.
        ws: RequestId,
        /// The close code.
        code: CloseCode,
    },
    /// WebSocket `ws` was dropped without (or before the end of) a close.
    WsDropped {
        /// The WebSocket.
        ws: RequestId,
    },
}

/// A server, its sessions and their peers, in memory; see the [module docs](self).
#[derive(Debug)]
pub struct ServerEndpoint {
    /// The front door.
    pub server: Server,
    /// Live and closed-but-not-released sessions.
    pub sessions: BTreeMap<Sid, Session>,
    /// The virtual clock.
    pub now: Instant,
    /// Answers not taken yet.
    pub responses: BTreeMap<RequestId, Response>,
    /// Requests a session took and has not answered.
    pub outstanding: BTreeMap<RequestId, Sid>,
    /// Every WebSocket request, by id.
    pub sockets: BTreeMap<RequestId, PeerSocket>,
    /// Every event, in order.
    pub events: Vec<(Sid, Event)>,
    /// Why each session ended.
    pub closed: BTreeMap<Sid, CloseReason>,
    /// Sessions released (dropped) so far.
    pub released: BTreeSet<Sid>,
    /// Whether [`outputs`](Self::outputs) is kept.
    pub record_outputs: bool,
    /// Whether [`Action::ReadWebSocket`] is answered at once (default: in memory,
    /// everything a peer sent has been delivered when it was sent). When false, the
    /// requests collect in [`read_requests`](Self::read_requests) and the test answers
    /// with [`ws_drained`](Self::ws_drained), after delivering what it wants first.
    pub answer_reads: bool,
    /// Unanswered [`Action::ReadWebSocket`]s (when `answer_reads` is false).
    pub read_requests: Vec<RequestId>,
    /// Everything the peers received, in order (when `record_outputs`).
    pub outputs: VecDeque<Output>,
    answered: BTreeSet<RequestId>,
    /// Sessions given an input since they were last drained.
    dirty: BTreeSet<Sid>,
}

impl ServerEndpoint {
    /// An endpoint around `server`, its clock at `now`.
    pub fn new(server: Server, now: Instant) -> Self {
        ServerEndpoint {
            server,
            sessions: BTreeMap::new(),
            now,
            responses: BTreeMap::new(),
            outstanding: BTreeMap::new(),
            sockets: BTreeMap::new(),
            events: Vec::new(),
            closed: BTreeMap::new(),
            released: BTreeSet::new(),
            record_outputs: false,
            answer_reads: true,
            read_requests: Vec::new(),
            outputs: VecDeque::new(),
            answered: BTreeSet::new(),
            dirty: BTreeSet::new(),
        }
    }

    fn output(&mut self, output: impl FnOnce() -> Output) {
        if self.record_outputs {
            self.outputs.push_back(output());
        }
    }

    /// Delivers a request head that arrived now (and, for a POST, its body when given;
    /// `None` leaves the body for [`post_body`](Self::post_body)). A handshake is handed
    /// back for the caller to [`accept`](Self::accept) or [`reject`](Self::reject).
    pub fn request(
        &mut self,
        id: RequestId,
        method: Method,
        uri: &str,
        headers: &HeaderMap,
        body: Option<Bytes>,
    ) -> Option<HandshakeRequest> {
        let Ok(uri) = uri.parse::<Uri>() else {
            self.record_response(id, Response::empty(http::StatusCode::BAD_REQUEST));
            return None;
        };
        let info = RequestInfo::new(&method, &uri, headers);
        if info.is_websocket_upgrade() {
            self.sockets.entry(id).or_default();
        }
        let routed = self.server.handle_request(self.now, id, &info);
        let handshake = match routed {
            Routed::Respond(r) => {
                self.record_response(id, r);
                None
            }
            Routed::Handshake(hs) => Some(hs),
            Routed::Session(req) => {
                let sid = req.sid();
                let is_post = matches!(req.kind(), SessionRequestKind::Post { .. });
                match self.sessions.get_mut(&sid) {
                    Some(session) => {
                        self.dirty.insert(sid);
                        self.outstanding.insert(id, sid);
                        session.handle_request(self.now, req);
                        if let (true, Some(body)) = (is_post, body) {
                            session.handle_post_body(self.now, id, body);
                        }
                    }
                    None => self.record_response(id, req.unknown_session()),
                }
                None
            }
        };
        self.drain();
        handshake
    }

    /// Accepts a handshake; the new session's id, or `None` when the server is shutting
    /// down (the refusal is recorded as the answer).
    pub fn accept(&mut self, handshake: HandshakeRequest) -> Option<Sid> {
        let id = handshake.id();
        let sid = match self.server.accept(self.now, handshake) {
            Ok(session) => {
                let sid = session.sid();
                self.outstanding.insert(id, sid);
                self.sessions.insert(sid, session);
                self.dirty.insert(sid);
                Some(sid)
            }
            Err(r) => {
                self.record_response(id, *r);
                None
            }
        };
        self.drain();
        sid
    }

    /// Rejects a handshake.
    pub fn reject(&mut self, handshake: HandshakeRequest, rejection: Rejection) {
        let id = handshake.id();
        let r = self.server.reject(handshake, rejection);
        self.record_response(id, r);
    }

    /// Delivers the body of a POST whose head was delivered without one.
    pub fn post_body(&mut self, id: RequestId, body: Bytes) {
        let now = self.now;
        if let Some(session) = self.session_of_request(id) {
            session.handle_post_body(now, id, body);
        }
        self.drain();
    }

    /// The body of a POST could not be read.
    pub fn post_body_failed(&mut self, id: RequestId) {
        let now = self.now;
        if let Some(session) = self.session_of_request(id) {
            session.handle_post_body_failed(now, id, "the test said so");
        }
        self.drain();
    }

    /// The client went away before request `id` was answered.
    pub fn drop_request(&mut self, id: RequestId) {
        if let Some(sid) = self.outstanding.remove(&id)
            && let Some(session) = self.sessions.get_mut(&sid)
        {
            self.dirty.insert(sid);
            session.handle_request_dropped(self.now, id);
        }
        self.drain();
    }

    /// Session `sid`, to give it an application input (`send`, `close`...); it is
    /// drained by the next [`drain`](Self::drain).
    pub fn session_mut(&mut self, sid: Sid) -> Option<&mut Session> {
        let session = self.sessions.get_mut(&sid)?;
        self.dirty.insert(sid);
        Some(session)
    }

    fn session_of_request(&mut self, id: RequestId) -> Option<&mut Session> {
        let sid = *self.outstanding.get(&id)?;
        self.session_mut(sid)
    }

    fn session_of_socket(&mut self, ws: RequestId) -> Option<&mut Session> {
        let sid = self.sockets.get(&ws)?.sid?;
        self.session_mut(sid)
    }

    /// The peer sends a message on WebSocket `ws`.
    pub fn ws_message(&mut self, ws: RequestId, message: WsMessage) {
        let now = self.now;
        if let Some(session) = self.session_of_socket(ws) {
            session.handle_ws_message(now, ws, message);
        }
        self.drain();
    }

    /// WebSocket `ws` ended on the peer's side (or failed).
    pub fn ws_closed(&mut self, ws: RequestId, end: TransportEnd) {
        let now = self.now;
        if let Some(session) = self.session_of_socket(ws) {
            session.handle_ws_closed(now, ws, end);
        }
        self.drain();
    }

    /// The binding has read everything WebSocket `ws` received (the answer to a
    /// [`Action::ReadWebSocket`] when `answer_reads` is false).
    pub fn ws_drained(&mut self, ws: RequestId) {
        self.read_requests.retain(|r| *r != ws);
        let now = self.now;
        if let Some(session) = self.session_of_socket(ws) {
            session.handle_ws_drained(now, ws);
        }
        self.drain();
    }

    /// WebSocket `ws` stops (`true`) or starts again (`false`) taking writes.
    pub fn set_ws_blocked(&mut self, ws: RequestId, blocked: bool) {
        let now = self.now;
        if let Some(session) = self.session_of_socket(ws) {
            if blocked {
                session.handle_ws_write_blocked(now, ws);
            } else {
                session.handle_ws_writable(now, ws);
            }
        }
        self.drain();
    }

    /// Takes the answer to request `id`, if it has been given.
    pub fn take_response(&mut self, id: RequestId) -> Option<Response> {
        self.responses.remove(&id)
    }

    /// Takes the messages WebSocket `ws` received.
    pub fn take_ws_messages(&mut self, ws: RequestId) -> Vec<WsMessage> {
        self.sockets
            .get_mut(&ws)
            .map(|s| s.inbox.drain(..).collect())
            .unwrap_or_default()
    }

    /// The earliest deadline of all sessions.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.sessions
            .values()
            .filter_map(|s| s.poll_timeout())
            .min()
    }

    /// Moves the clock to `target`, firing every deadline on the way, in order.
    pub fn advance_to(&mut self, target: Instant) {
        while let Some(next) = self.next_deadline().filter(|t| *t <= target) {
            self.now = self.now.max(next);
            self.fire();
        }
        self.now = self.now.max(target);
        self.fire();
    }

    /// Calls `handle_timeout(now)` on every session whose deadline has come.
    pub fn fire(&mut self) {
        let now = self.now;
        for (sid, s) in self.sessions.iter_mut() {
            if s.poll_timeout().is_some_and(|t| t <= now) {
                s.handle_timeout(now);
                assert!(
                    s.poll_timeout().is_none_or(|t| t > now),
                    "handle_timeout left a deadline at or before now"
                );
                self.dirty.insert(*sid);
            }
        }
        self.drain();
    }

    fn record_response(&mut self, id: RequestId, response: Response) {
        assert!(self.answered.insert(id), "request {id} answered twice");
        self.outstanding.remove(&id);
        self.output(|| Output::Response {
            id,
            response: response.clone(),
        });
        self.responses.insert(id, response);
    }

    /// Drains every session given an input since it was last drained, until none has
    /// anything left, checking the contract.
    pub fn drain(&mut self) {
        loop {
            let mut progress = false;
            let mut released = Vec::new();
            let mut read = Vec::new();
            let sids = std::mem::take(&mut self.dirty);
            for sid in sids {
                let Some(mut session) = self.sessions.remove(&sid) else {
                    continue;
                };
                while let Some(action) = session.poll_action() {
                    progress = true;
                    assert!(
                        !self.released.contains(&sid),
                        "session {sid} acted after its release: {action:?}"
                    );
                    self.run(sid, &session, action, &mut read, &mut released);
                }
                for ws in read.drain(..) {
                    // In memory, whatever the peer sent has been delivered already.
                    session.handle_ws_drained(self.now, ws);
                    self.dirty.insert(sid);
                    progress = true;
                }
                self.sessions.insert(sid, session);
            }
            for sid in released {
                if let Some(mut s) = self.sessions.remove(&sid) {
                    assert_eq!(s.poll_action(), None, "{sid}: an action after Release");
                    assert_eq!(s.poll_timeout(), None, "{sid}: a timer after Release");
                }
                let mut dropped = Vec::new();
                for (ws, socket) in self.sockets.iter_mut() {
                    if socket.sid == Some(sid) && !socket.dropped {
                        socket.dropped = true;
                        dropped.push(*ws);
                    }
                }
                for ws in dropped {
                    self.output(|| Output::WsDropped { ws });
                }
            }
            if !progress {
                return;
            }
        }
    }

    fn run(
        &mut self,
        sid: Sid,
        session: &Session,
        action: Action,
        read: &mut Vec<RequestId>,
        released: &mut Vec<Sid>,
    ) {
        match action {
            Action::Respond { request, response } => {
                if let Some(socket) = self.sockets.get(&request) {
                    assert!(!socket.accepted, "{request}: answered after its 101");
                }
                self.record_response(request, *response);
            }
            Action::AcceptWebSocket { request, .. } => {
                assert!(
                    self.answered.insert(request),
                    "request {request} answered twice"
                );
                self.outstanding.remove(&request);
                let socket = self.sockets.entry(request).or_default();
                socket.accepted = true;
                socket.sid = Some(sid);
                self.output(|| Output::WsAccepted { ws: request });
            }
            Action::WsSend { ws, message } => {
                let socket = self
                    .sockets
                    .get_mut(&ws)
                    .expect("a frame on an unknown socket");
                assert!(socket.accepted, "{ws}: a frame before the 101");
                assert!(
                    socket.closed.is_none() && !socket.dropped,
                    "{ws}: a frame after the close"
                );
                if self.record_outputs {
                    self.outputs.push_back(Output::WsMessage {
                        ws,
                        message: message.clone(),
                    });
                }
                socket.inbox.push_back(message);
            }
            Action::WsClose { ws, code, reason } => {
                let socket = self
                    .sockets
                    .get_mut(&ws)
                    .expect("closing an unknown socket");
                assert!(socket.closed.is_none(), "{ws}: closed twice");
                socket.closed = Some((code, reason));
                self.output(|| Output::WsClosed { ws, code });
            }
            Action::WsDrop { ws } => {
                if let Some(socket) = self.sockets.get_mut(&ws)
                    && !socket.dropped
                {
                    socket.dropped = true;
                    self.output(|| Output::WsDropped { ws });
                }
            }
            Action::ReadWebSocket { ws } if self.answer_reads => read.push(ws),
            Action::ReadWebSocket { ws } => self.read_requests.push(ws),
            Action::Event(Event::Closed(reason)) => {
                assert!(
                    session.is_closed(),
                    "{sid}: Closed before the session ended"
                );
                assert!(
                    self.closed.insert(sid, reason.clone()).is_none(),
                    "{sid}: closed twice"
                );
                assert!(
                    session.poll_timeout().is_some(),
                    "{sid}: no release deadline after Closed"
                );
                self.events.push((sid, Event::Closed(reason)));
            }
            Action::Event(e) => {
                assert!(
                    !self.closed.contains_key(&sid),
                    "{sid}: an event after Closed: {e:?}"
                );
                self.events.push((sid, e));
            }
            Action::Release => {
                assert!(
                    self.closed.contains_key(&sid),
                    "{sid}: released before Closed"
                );
                assert!(self.released.insert(sid), "{sid}: released twice");
                released.push(sid);
            }
        }
    }
}
