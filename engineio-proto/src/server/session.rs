//! One client's session: transport, upgrade, heartbeat, outgoing queue, and the short
//! record of how it ended.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, StatusCode};

use super::config::ServerConfig;
use super::error::RequestError;
use super::request::Cors;
use super::{SessionRequest, SessionRequestKind};
use crate::close::{CloseReason, ProtocolError, SendError, TransportEnd, UpgradeFailure};
use crate::close_code::CloseCode;
use crate::error::DecodeError;
use crate::exchange::{RequestId, Response, TEXT_PLAIN};
use crate::timer::{TimerKey, TimerTable};
use crate::transport_error::{IoError, TransportError};
use crate::v3::{self, PayloadFormat};
use crate::websocket::DeflateParams;
use crate::{
    Handshake, Message, Packet, PayloadEncoder, PayloadLimits, ProtocolVersion, Sid, Transport,
    Utf8Bytes, WsMessage, WsViolation, decode_payload,
};

/// Something the binding must do, or tell the application. Drain with
/// [`Session::poll_action`] after every input.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Answer HTTP request `request` with `response`.
    Respond {
        /// The request to answer.
        request: RequestId,
        /// The response (boxed: answers are rare on a WebSocket session, and keeping them
        /// out of line keeps every queued action small).
        response: Box<Response>,
    },
    /// Complete the WebSocket handshake (101) of request `request`, adding `headers` to
    /// the 101 response. From now on the WebSocket is named by the same id.
    AcceptWebSocket {
        /// The upgrade request, and from now on the WebSocket's id.
        request: RequestId,
        /// Extra headers for the 101 response (the sid cookie when configured, the
        /// agreed `Sec-WebSocket-Extensions`).
        headers: HeaderMap,
        /// The permessage-deflate parameters agreed in the handshake (already in
        /// `headers`): the WebSocket must run with them.
        deflate: Option<DeflateParams>,
    },
    /// Send a message on WebSocket `ws`, after what was sent on it before.
    WsSend {
        /// The WebSocket.
        ws: RequestId,
        /// The message.
        message: WsMessage,
    },
    /// Send a close frame on WebSocket `ws` after what was sent on it before, then close
    /// it. If the peer does not take it in time, [`WsDrop`](Action::WsDrop) (or
    /// [`Release`](Action::Release)) follows.
    WsClose {
        /// The WebSocket.
        ws: RequestId,
        /// The close code.
        code: CloseCode,
        /// The close reason.
        reason: &'static str,
    },
    /// Drop WebSocket `ws` now, whatever it still has to write (its peer did not take the
    /// close frame within `write_timeout`).
    WsDrop {
        /// The WebSocket.
        ws: RequestId,
    },
    /// Read everything WebSocket `ws` has received so far, hand it to
    /// [`Session::handle_ws_message`], then call [`Session::handle_ws_drained`]. Asked for
    /// during an upgrade: a polling request is judged only once the frames the client
    /// sent before it (the probe, `5`) have been seen.
    ReadWebSocket {
        /// The WebSocket.
        ws: RequestId,
    },
    /// Tell the application.
    Event(Event),
    /// The session is over and has nothing left to say: drop it, and every socket and
    /// request it still holds. Comes `write_timeout` after [`Event::Closed`]; until then
    /// the session answers requests that name it (as a closed session).
    Release,
}

/// What the application hears from a session.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The client sent a message.
    Message(Message),
    /// The session moved from polling to WebSocket.
    Upgraded,
    /// An upgrade to WebSocket failed; the session goes on over polling.
    UpgradeFailed(UpgradeFailure),
    /// The session ended; it sends and receives nothing more. The binding keeps it until
    /// [`Action::Release`], to answer late requests and let its sockets linger.
    Closed(CloseReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    /// The next ping is due.
    Ping = 0,
    /// The outstanding ping's pong is overdue.
    PingTimeout = 1,
    /// The upgrade in progress took too long.
    Upgrade = 2,
    /// A server close over polling waited too long for a GET.
    CloseWait = 3,
    /// The WebSocket has taken nothing for too long.
    WriteStall = 4,
    /// The closed session's record and sockets are kept until then.
    Linger = 5,
    /// A socket the session closed (not the session itself) must be gone by then.
    SocketLinger = 6,
}

impl TimerKey for Timer {
    const COUNT: usize = 7;
    fn index(self) -> usize {
        self as usize
    }
    fn from_index(index: usize) -> Self {
        match index {
            0 => Timer::Ping,
            1 => Timer::PingTimeout,
            2 => Timer::Upgrade,
            3 => Timer::CloseWait,
            4 => Timer::WriteStall,
            5 => Timer::Linger,
            _ => Timer::SocketLinger,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Upgrade {
    ws: RequestId,
    probed: bool,
    /// The permessage-deflate parameters the upgrading WebSocket agreed.
    deflate: Option<DeflateParams>,
}

/// What is left of a session that ended: enough to judge the requests that still name it,
/// until [`expires_at`](Self::expires_at) (the session's [`Action::Release`]).
///
/// A closed session keeps one; a binding whose sockets for the session are all gone may
/// keep just this instead of the whole session ([`Session::retire`]) and answer the
/// requests for its sid with [`answer`](Self::answer) until it expires, then forget it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndedSession {
    sid: Sid,
    /// When it ended (a timer's deadline, or the instant of the input that ended it).
    at: Instant,
    /// Whether it was on polling then.
    polling: bool,
    /// Whether a GET has been answered with the session's last packet.
    get_answered: bool,
    reason: CloseReason,
    /// After a client's close: how long a GET sent at the same moment still gets its noop.
    grace: Duration,
    expires: Instant,
    /// How its last polling answer is framed (v3 or v4, `b64`).
    version: ProtocolVersion,
    b64: bool,
}

impl EndedSession {
    /// The session's id.
    pub fn sid(&self) -> Sid {
        self.sid
    }

    /// Why it ended.
    pub fn reason(&self) -> &CloseReason {
        &self.reason
    }

    /// Until when requests naming it are judged by how it ended; after that it is
    /// unknown.
    pub fn expires_at(&self) -> Instant {
        self.expires
    }

    /// The answer to a request naming the session, judged at the instant it arrived: a
    /// polling GET that arrived before the session ended (or, after a client's close,
    /// within `client_close_grace`: two requests sent together arrive in either order)
    /// gets what a parked GET got then, once; anything else finds the session gone (400,
    /// code 1).
    pub fn answer(&mut self, request: &SessionRequest) -> Response {
        let client_closed = self.reason == CloseReason::ClientClose;
        let in_time =
            request.arrived < self.at || (client_closed && request.arrived < self.at + self.grace);
        if request.kind == SessionRequestKind::Poll
            && request.sid == self.sid
            && self.polling
            && !self.get_answered
            && in_time
        {
            self.get_answered = true;
            let packet = if client_closed {
                Packet::Noop
            } else {
                Packet::Close
            };
            let mut r = payload_response(self.version, self.b64, &request.cors, &[packet]);
            mark_close(&mut r, &self.reason);
            return r;
        }
        let mut r = RequestError::UnknownSid(request.sid.to_string()).to_response();
        request.cors.apply(&mut r.headers);
        r
    }
}

#[derive(Debug)]
enum State {
    Polling {
        /// The parked GET, with the CORS headers its answer needs.
        get: Option<(RequestId, Cors)>,
        /// A WebSocket opened to upgrade to.
        upgrade: Option<Upgrade>,
    },
    WebSocket {
        ws: RequestId,
    },
    Closed(Box<EndedSession>),
}

/// A polling request held back during an upgrade until the WebSocket has been read.
#[derive(Debug)]
struct Deferred {
    request: SessionRequest,
    body: Option<Bytes>,
}

enum PacketOutcome {
    Continue,
    ClientClosed,
    Violation(ProtocolError),
}

/// How packets travel on this session's WebSocket: the protocol version and `b64=1`,
/// decided once so that sending a message takes one branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WsForm {
    /// v4: binary messages as raw binary frames.
    V4,
    /// v4 with `b64=1`: binary messages as `b<base64>` text frames.
    V4Base64,
    /// v3: binary messages as binary frames led by the type byte `0x04`.
    V3,
    /// v3 with `b64=1`: binary messages as `b4<base64>` text frames.
    V3Base64,
}

impl WsForm {
    fn new(version: ProtocolVersion, b64: bool) -> WsForm {
        match (version, b64) {
            (ProtocolVersion::V4, false) => WsForm::V4,
            (ProtocolVersion::V4, true) => WsForm::V4Base64,
            (ProtocolVersion::V3, false) => WsForm::V3,
            (ProtocolVersion::V3, true) => WsForm::V3Base64,
        }
    }

    fn encode(self, packet: &Packet) -> WsMessage {
        match self {
            WsForm::V4 => packet.to_ws(),
            WsForm::V4Base64 => packet.to_ws_base64(),
            WsForm::V3 => v3::to_ws(packet, false),
            WsForm::V3Base64 => v3::to_ws(packet, true),
        }
    }
}

/// One client's session, driven by its binding; see the [module documentation](super).
///
/// # Inputs and outputs
///
/// - Requests routed here by [`Server::handle_request`](super::Server::handle_request)
///   go to [`handle_request`](Self::handle_request) (a POST's body follows with
///   [`handle_post_body`](Self::handle_post_body)); WebSocket frames to
///   [`handle_ws_message`](Self::handle_ws_message); a WebSocket that ends to
///   [`handle_ws_closed`](Self::handle_ws_closed).
/// - When a WebSocket stops taking writes, say so
///   ([`handle_ws_write_blocked`](Self::handle_ws_write_blocked)) and again when it takes
///   them again ([`handle_ws_writable`](Self::handle_ws_writable)): meanwhile the session
///   holds its messages in its bounded queue (so `send` reports back-pressure), and a
///   socket that takes nothing for `write_timeout` ends the session.
/// - After every input, drain [`poll_action`](Self::poll_action) until `None`, always,
///   whether or not the socket is writable: answers, closes and events never wait for
///   the peer.
/// - Every input applies the timers that expired before it first, so an input is judged
///   by the state at its instant; a request is judged at the instant its head arrived
///   ([`SessionRequest::arrived`](super::SessionRequest::arrived)).
pub struct Session {
    sid: Sid,
    config: Arc<ServerConfig>,
    state: State,
    outbox: VecDeque<Packet>,
    actions: VecDeque<Action>,
    timers: TimerTable<Timer, { Timer::COUNT }>,
    awaiting_pong: bool,
    /// When the outstanding ping was queued (its timer's deadline).
    ping_sent: Option<Instant>,
    /// The heartbeat's last round trip, until [`Session::take_ping_rtt`] takes it.
    ping_rtt: Option<Duration>,
    ping_due: bool,
    paused: bool,
    post: Option<(RequestId, Cors)>,
    /// The POST in flight declared a binary (v3, `application/octet-stream`) body.
    post_binary: bool,
    /// The protocol revision the session speaks, fixed by its handshake.
    version: ProtocolVersion,
    /// The client asked for `b64=1`: no binary frames, no binary payloads.
    b64: bool,
    ws_form: WsForm,
    closing: Option<CloseReason>,
    /// The WebSocket in use takes no writes right now.
    write_blocked: bool,
    /// Polling requests waiting for the upgrade's WebSocket to be read.
    deferred: VecDeque<Deferred>,
    /// A [`Action::ReadWebSocket`] is out and its [`Session::handle_ws_drained`] has not
    /// come back yet.
    reading: bool,
    /// Sockets the session closed while going on (a failed upgrade, a second WebSocket),
    /// with the instant they must be gone by.
    lingering: Vec<(RequestId, Instant)>,
    /// The linger is over: [`Action::Release`] comes once every other action is out.
    release_due: bool,
    released: bool,
    /// The permessage-deflate parameters of the session's WebSocket, once it carries the
    /// session (kept after the session ends).
    websocket_deflate: Option<DeflateParams>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("sid", &self.sid)
            .field("state", &self.state)
            .field("queued", &self.outbox.len())
            .field("close_reason", &self.close_reason())
            .finish_non_exhaustive()
    }
}

impl Session {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn open(
        now: Instant,
        config: Arc<ServerConfig>,
        sid: Sid,
        request: RequestId,
        transport: Transport,
        version: ProtocolVersion,
        b64: bool,
        cors: &Cors,
        mut headers: HeaderMap,
        deflate: Option<DeflateParams>,
    ) -> Session {
        let upgrades = match transport {
            Transport::Polling if config.allow_upgrades && config.transports.websocket => {
                vec![Transport::WebSocket]
            }
            _ => Vec::new(),
        };
        let open = Packet::Open(Box::new(Handshake {
            sid,
            upgrades,
            ping_interval: config.ping_interval,
            ping_timeout: config.ping_timeout,
            max_payload: Some(config.max_payload as u64),
        }));
        let mut timers = TimerTable::default();
        match version {
            // v4: the server pings.
            ProtocolVersion::V4 => timers.set(Timer::Ping, now + config.ping_interval),
            // v3: the client pings, and must do so within interval + timeout.
            ProtocolVersion::V3 => timers.set(
                Timer::PingTimeout,
                now + config.ping_interval + config.ping_timeout,
            ),
        }
        let mut session = Session {
            sid,
            config,
            state: State::Polling {
                get: None,
                upgrade: None,
            },
            outbox: VecDeque::new(),
            actions: VecDeque::new(),
            timers,
            awaiting_pong: false,
            ping_sent: None,
            ping_rtt: None,
            ping_due: false,
            paused: false,
            post: None,
            post_binary: false,
            version,
            b64,
            ws_form: WsForm::new(version, b64),
            closing: None,
            write_blocked: false,
            deferred: VecDeque::new(),
            reading: false,
            lingering: Vec::new(),
            release_due: false,
            released: false,
            websocket_deflate: None,
        };
        match transport {
            Transport::Polling => {
                let mut response = session.payload_response(cors, std::slice::from_ref(&open));
                response.headers.extend(headers);
                session.respond(request, response);
            }
            Transport::WebSocket => {
                session.state = State::WebSocket { ws: request };
                session.websocket_deflate = deflate;
                cors.apply(&mut headers);
                insert_extensions(&mut headers, deflate);
                session.actions.push_back(Action::AcceptWebSocket {
                    request,
                    headers,
                    deflate,
                });
                session.outbox.push_back(open);
            }
        }
        session
    }

    /// The session id.
    pub fn sid(&self) -> Sid {
        self.sid
    }

    /// The protocol revision the session speaks (its handshake's `EIO`).
    pub fn protocol_version(&self) -> ProtocolVersion {
        self.version
    }

    /// The transport in use (the last one, once closed).
    pub fn transport(&self) -> Transport {
        match self.state {
            State::WebSocket { .. } => Transport::WebSocket,
            State::Closed(ref ended) if !ended.polling => Transport::WebSocket,
            _ => Transport::Polling,
        }
    }

    /// The permessage-deflate (RFC 7692) parameters the session's WebSocket agreed in its
    /// opening handshake: `None` while the session is on polling (an upgrade in progress
    /// included) or when its WebSocket compresses nothing. A session that ended reports
    /// the last WebSocket it had.
    pub fn websocket_deflate(&self) -> Option<DeflateParams> {
        match self.transport() {
            Transport::WebSocket => self.websocket_deflate,
            Transport::Polling => None,
        }
    }

    /// Whether a WebSocket is open for an upgrade that has not completed yet.
    pub fn is_upgrading(&self) -> bool {
        matches!(
            self.state,
            State::Polling {
                upgrade: Some(_),
                ..
            }
        )
    }

    /// Whether the session has ended (its [`Event::Closed`] has been queued).
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed(_))
    }

    /// Whether the session has been released ([`Action::Release`] has been taken):
    /// nothing is left of it.
    pub fn is_released(&self) -> bool {
        self.released
    }

    /// Why the session ended, once it has.
    pub fn close_reason(&self) -> Option<&CloseReason> {
        match &self.state {
            State::Closed(ended) => Some(&ended.reason),
            _ => None,
        }
    }

    /// What is left of the session once it has ended and has nothing more to do: the
    /// record that judges late requests until it expires ([`EndedSession`]). `None` while
    /// the session is live, or still has actions to hand out, requests waiting, or
    /// sockets it closed that have not ended. A binding whose own sockets for the session
    /// are gone may keep this instead of the session (and its buffers) until
    /// [`EndedSession::expires_at`]: then it needs no task, no timer and no socket for it.
    pub fn retire(&self) -> Option<EndedSession> {
        let State::Closed(ended) = &self.state else {
            return None;
        };
        let idle = self.actions.is_empty()
            && self.deferred.is_empty()
            && self.lingering.is_empty()
            && !self.release_due;
        idle.then(|| (**ended).clone())
    }

    /// How many packets wait in the outgoing queue.
    pub fn queued(&self) -> usize {
        self.outbox.len()
    }

    /// The heartbeat's round-trip time measured since the last call, if a pong arrived
    /// meanwhile: from the instant the ping was due (when the session queued it; over
    /// polling it leaves with the next GET's answer) to the instant of the input that
    /// brought its pong. For metrics; `None` until the next pong once taken.
    ///
    /// A ping still unanswered when an upgrade's probe pauses the heartbeat is not
    /// measured (its pong comes at the upgrade's pace). Nothing reads a clock: both
    /// instants are the ones the binding gave the session.
    pub fn take_ping_rtt(&mut self) -> Option<Duration> {
        self.ping_rtt.take()
    }

    // ---------------------------------------------------------------- outputs

    /// The next thing to do, or `None` when there is nothing until the next input or
    /// [`poll_timeout`](Self::poll_timeout).
    ///
    /// Messages for the WebSocket in use come out only while it takes writes (see
    /// [`handle_ws_write_blocked`](Self::handle_ws_write_blocked)); everything else comes
    /// out at once.
    pub fn poll_action(&mut self) -> Option<Action> {
        if let Some(action) = self.actions.pop_front() {
            return Some(action);
        }
        if self.release_due && !self.released {
            // Always the last action: whatever the session had to answer went first.
            self.released = true;
            return Some(Action::Release);
        }
        if let State::WebSocket { ws } = self.state
            && !self.write_blocked
        {
            let Some(packet) = self.outbox.pop_front() else {
                self.trim();
                return None;
            };
            let message = self.ws_form.encode(&packet);
            return Some(Action::WsSend { ws, message });
        }
        self.trim();
        None
    }

    /// The next deadline: call [`handle_timeout`](Self::handle_timeout) then. `None` once
    /// the session has been released.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// Gives back the memory of queues a burst made large, once they are empty: an idle
    /// session should cost little.
    fn trim(&mut self) {
        const KEEP: usize = 8;
        if self.actions.capacity() > KEEP {
            self.actions.shrink_to(KEEP);
        }
        if self.outbox.is_empty() && self.outbox.capacity() > KEEP {
            self.outbox.shrink_to(KEEP);
        }
    }

    /// Frees the memory of empty queues entirely. Bindings call it when a session is
    /// likely idle (for example after [`handle_timeout`](Self::handle_timeout), which runs
    /// at the heartbeat's pace), so that thousands of idle sessions cost as little as
    /// possible; a busy session would only allocate again.
    pub fn shrink_to_fit(&mut self) {
        if self.actions.is_empty() {
            self.actions.shrink_to_fit();
        }
        if self.outbox.is_empty() {
            self.outbox.shrink_to_fit();
        }
        if self.deferred.is_empty() {
            self.deferred.shrink_to_fit();
        }
        if self.lingering.is_empty() {
            self.lingering.shrink_to_fit();
        }
    }

    // ---------------------------------------------------------------- inputs

    /// Handles a request [`Server::handle_request`](super::Server::handle_request) routed to
    /// this session. The answer comes out of [`poll_action`](Self::poll_action), at once
    /// or later (a parked long-poll GET).
    ///
    /// The request is judged at the instant its head arrived: timers that expired before
    /// it apply first, and a request that arrived before the session ended gets what it
    /// would have got then. During an upgrade, polling requests wait until the
    /// WebSocket has been read ([`Action::ReadWebSocket`]).
    pub fn handle_request(&mut self, now: Instant, request: SessionRequest) {
        let arrived = request.arrived.min(now);
        self.expire(arrived);
        if request.sid != self.sid {
            return self.answer_unknown(request.id, &request.cors);
        }
        if let State::Polling {
            upgrade: Some(u), ..
        } = self.state
            && request.kind != SessionRequestKind::WebSocket
        {
            self.deferred.push_back(Deferred {
                request,
                body: None,
            });
            if !self.reading {
                self.reading = true;
                self.actions.push_back(Action::ReadWebSocket { ws: u.ws });
            }
            return;
        }
        self.judge(request, None);
    }

    /// Judges a request by the current state.
    fn judge(&mut self, request: SessionRequest, body: Option<Bytes>) {
        if let State::Closed(ended) = &mut self.state {
            let response = ended.answer(&request);
            self.respond(request.id, response);
            return;
        }
        let SessionRequest {
            id,
            kind,
            cors,
            arrived,
            deflate,
            ..
        } = request;
        match kind {
            SessionRequestKind::Poll => self.on_poll(arrived, id, cors),
            SessionRequestKind::Post { octet_stream } => {
                self.on_post(arrived, id, cors, octet_stream);
                if let Some(body) = body {
                    self.handle_post_body(arrived, id, body);
                }
            }
            SessionRequestKind::WebSocket => self.on_websocket(arrived, id, cors, deflate),
        }
    }

    fn answer_unknown(&mut self, id: RequestId, cors: &Cors) {
        self.respond_error(id, cors, RequestError::UnknownSid(self.sid.to_string()));
    }

    fn on_poll(&mut self, now: Instant, id: RequestId, cors: Cors) {
        let State::Polling { get, upgrade } = &mut self.state else {
            return self.respond_error(
                id,
                &cors,
                RequestError::TransportMismatch(
                    "this session was upgraded to WebSocket; polling requests are refused",
                ),
            );
        };
        if get.is_some() {
            // Node: the new GET gets 400 and the parked one a close packet.
            self.respond(id, plain(StatusCode::BAD_REQUEST, &cors));
            return self.finish(
                now,
                CloseReason::ParseError(ProtocolError::DuplicateGet),
                true,
            );
        }
        let probed = upgrade.is_some_and(|u| u.probed);
        if self.outbox.is_empty() && probed {
            // The upgrade is under way: release the client at once.
            let response = self.payload_response(&cors, &[Packet::Noop]);
            self.respond(id, response);
            return;
        }
        *get = Some((id, cors));
        self.flush_polling(now);
    }

    fn on_post(&mut self, now: Instant, id: RequestId, cors: Cors, octet_stream: bool) {
        if matches!(self.state, State::WebSocket { .. }) {
            return self.respond_error(
                id,
                &cors,
                RequestError::TransportMismatch(
                    "this session was upgraded to WebSocket; polling requests are refused",
                ),
            );
        }
        if let Some((first, first_cors)) = self.post.take() {
            self.respond(first, plain(StatusCode::BAD_REQUEST, &first_cors));
            self.respond(id, plain(StatusCode::BAD_REQUEST, &cors));
            return self.finish(
                now,
                CloseReason::ParseError(ProtocolError::DuplicatePost),
                true,
            );
        }
        if octet_stream && self.version == ProtocolVersion::V4 {
            self.respond(id, plain(StatusCode::BAD_REQUEST, &cors));
            return self.finish(
                now,
                CloseReason::ParseError(ProtocolError::BinaryPayload),
                true,
            );
        }
        self.post = Some((id, cors));
        self.post_binary = octet_stream;
    }

    fn on_websocket(
        &mut self,
        now: Instant,
        id: RequestId,
        cors: Cors,
        deflate: Option<DeflateParams>,
    ) {
        let taken = match &self.state {
            State::WebSocket { .. } => Some("this session already uses a WebSocket"),
            State::Polling {
                upgrade: Some(_), ..
            } => Some("an upgrade is already in progress for this session"),
            _ => None,
        };
        if let Some(why) = taken {
            // As Node: the handshake completes, then the socket is closed at once; the
            // first WebSocket is untouched. (Refusing before the 101 would look like a
            // network error to the client.)
            let mut headers = HeaderMap::new();
            cors.apply(&mut headers);
            self.actions.push_back(Action::AcceptWebSocket {
                request: id,
                headers,
                deflate: None,
            });
            return self.close_socket(now, id, CloseCode::Policy, why);
        }
        let refusal = match &self.state {
            State::Polling { .. }
                if !self.config.allow_upgrades || !self.config.transports.websocket =>
            {
                Some("upgrades are disabled on this server")
            }
            State::Polling { .. } if self.closing.is_some() => Some("this session is closing"),
            _ => None,
        };
        if let Some(why) = refusal {
            return self.respond_error(id, &cors, RequestError::TransportMismatch(why));
        }
        if let State::Polling { upgrade, .. } = &mut self.state {
            *upgrade = Some(Upgrade {
                ws: id,
                probed: false,
                deflate,
            });
            let mut headers = HeaderMap::new();
            insert_extensions(&mut headers, deflate);
            self.actions.push_back(Action::AcceptWebSocket {
                request: id,
                headers,
                deflate,
            });
            self.timers
                .set(Timer::Upgrade, now + self.config.upgrade_timeout);
        }
    }

    /// Hands over the body of a POST that [`handle_request`](Self::handle_request) took
    /// (read at most [`Server::body_read_limit`](super::Server::body_read_limit) bytes).
    /// Bodies for requests the session already answered are ignored.
    pub fn handle_post_body(&mut self, now: Instant, request: RequestId, body: Bytes) {
        if let Some(d) = self.deferred.iter_mut().find(|d| d.request.id == request) {
            d.body = Some(body);
            return;
        }
        self.expire(now);
        let Some((id, cors)) = self.post.take_if(|(p, _)| *p == request) else {
            return;
        };
        let limit = self.config.max_payload;
        if body.len() > limit {
            let mut r = Response::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                TEXT_PLAIN,
                Bytes::from(format!(
                    "payload of {} bytes is over the limit of {limit} bytes",
                    body.len()
                )),
            );
            cors.apply(&mut r.headers);
            self.respond(id, r);
            return self.finish(
                now,
                CloseReason::PayloadTooLarge {
                    size: body.len(),
                    limit,
                },
                true,
            );
        }
        let limits = PayloadLimits {
            max_bytes: limit,
            max_packets: self.config.max_packets_per_payload,
        };
        match self.version {
            ProtocolVersion::V4 => {
                let packets = decode_payload(body, limits);
                self.on_payload(now, id, cors, packets);
            }
            ProtocolVersion::V3 => {
                let format = if self.post_binary {
                    PayloadFormat::Binary
                } else {
                    PayloadFormat::Text
                };
                let packets = v3::decode_payload(body, format, limits);
                self.on_payload(now, id, cors, packets);
            }
        }
    }

    /// Handles the packets of a POST body, then answers the POST.
    fn on_payload<I>(
        &mut self,
        now: Instant,
        id: RequestId,
        cors: Cors,
        packets: Result<I, DecodeError>,
    ) where
        I: Iterator<Item = Result<Packet, DecodeError>>,
    {
        let packets = match packets {
            Ok(p) => p,
            Err(e) => {
                self.respond(id, plain(StatusCode::BAD_REQUEST, &cors));
                return self.finish(now, CloseReason::ParseError(e.into()), true);
            }
        };
        for packet in packets {
            let outcome = match packet {
                Ok(p) => self.on_packet(now, p),
                Err(e) => PacketOutcome::Violation(e.into()),
            };
            match outcome {
                PacketOutcome::Continue => {}
                PacketOutcome::ClientClosed => {
                    self.respond(id, ok_response(&cors));
                    return self.finish(now, CloseReason::ClientClose, true);
                }
                PacketOutcome::Violation(e) => {
                    self.respond(id, plain(StatusCode::BAD_REQUEST, &cors));
                    return self.finish(now, CloseReason::ParseError(e), true);
                }
            }
        }
        self.respond(id, ok_response(&cors));
    }

    /// The body of a POST the session took could not be read (the connection failed
    /// mid-body, or its framing was invalid). The POST is answered with 400 and the
    /// session ends with a transport error, as in Node.
    pub fn handle_post_body_failed(&mut self, now: Instant, request: RequestId, detail: &str) {
        if let Some(i) = self.deferred.iter().position(|d| d.request.id == request) {
            if let Some(d) = self.deferred.remove(i) {
                self.respond_error(d.request.id, &d.request.cors, RequestError::BodyUnreadable);
            }
            return;
        }
        self.expire(now);
        let Some((id, cors)) = self.post.take_if(|(p, _)| *p == request) else {
            return;
        };
        self.respond_error(id, &cors, RequestError::BodyUnreadable);
        self.finish(
            now,
            CloseReason::TransportError(TransportError::Io(IoError::other(format!(
                "polling POST body could not be read: {detail}"
            )))),
            true,
        );
    }

    /// Tells the session that an HTTP request it has not answered yet went away (the
    /// client closed the connection). A parked GET or a POST without its body ends the
    /// session with a transport error, as in Node.
    pub fn handle_request_dropped(&mut self, now: Instant, request: RequestId) {
        if let Some(i) = self.deferred.iter().position(|d| d.request.id == request) {
            self.deferred.remove(i);
            return;
        }
        self.expire(now);
        if self.post.as_ref().is_some_and(|(p, _)| *p == request) {
            self.post = None;
            return self.finish(
                now,
                CloseReason::TransportError(TransportError::Aborted(
                    "polling POST closed before its body arrived",
                )),
                true,
            );
        }
        if let State::Polling { get, .. } = &mut self.state
            && get.as_ref().is_some_and(|(g, _)| *g == request)
        {
            *get = None;
            self.finish(
                now,
                CloseReason::TransportError(TransportError::Aborted(
                    "polling GET closed by the client before it was answered",
                )),
                true,
            );
        }
    }

    /// Handles a message received on WebSocket `ws`.
    pub fn handle_ws_message(&mut self, now: Instant, ws: RequestId, message: WsMessage) {
        self.expire(now);
        let size = message.len();
        let limit = self.config.max_payload;
        match self.state {
            State::WebSocket { ws: active } if active == ws => {
                if size > limit {
                    return self.finish(now, CloseReason::PayloadTooLarge { size, limit }, true);
                }
                let outcome = match self.decode_ws(message) {
                    Ok(packet) => self.on_packet(now, packet),
                    Err(e) => PacketOutcome::Violation(e.into()),
                };
                match outcome {
                    PacketOutcome::Continue => {}
                    PacketOutcome::ClientClosed => self.finish(now, CloseReason::ClientClose, true),
                    PacketOutcome::Violation(e) => {
                        self.finish(now, CloseReason::ParseError(e), true)
                    }
                }
            }
            State::Polling {
                upgrade: Some(u), ..
            } if u.ws == ws => {
                if size > limit {
                    return self.abort_upgrade(now, UpgradeFailure::TooLarge, true);
                }
                match self.decode_ws(message) {
                    Ok(Packet::Ping { probe: true }) if !u.probed => self.on_probe(ws),
                    Ok(Packet::Upgrade) if u.probed => self.complete_upgrade(now, ws),
                    _ => self.abort_upgrade(now, UpgradeFailure::UnexpectedPacket, true),
                }
            }
            _ => {}
        }
    }

    /// Everything WebSocket `ws` had received has been handed over (the answer to
    /// [`Action::ReadWebSocket`]): the polling requests that waited for it are judged now.
    pub fn handle_ws_drained(&mut self, now: Instant, ws: RequestId) {
        let _ = ws;
        self.expire(now);
        self.reading = false;
        self.judge_deferred();
    }

    fn judge_deferred(&mut self) {
        while let Some(d) = self.deferred.pop_front() {
            self.judge(d.request, d.body);
        }
    }

    /// Tells the session that WebSocket `ws` ended.
    ///
    /// A peer that broke the protocol ([`TransportEnd::Violation`]) or sent a message
    /// over the limit ([`TransportEnd::MessageTooLarge`]) still gets a close frame with
    /// the code that says why (1002, 1007 or 1009); after a plain close or an I/O error
    /// the socket is gone.
    pub fn handle_ws_closed(&mut self, now: Instant, ws: RequestId, end: TransportEnd) {
        self.expire(now);
        self.lingering.retain(|(w, _)| *w != ws);
        let can_close = matches!(
            end,
            TransportEnd::MessageTooLarge { .. } | TransportEnd::Violation(_)
        );
        match self.state {
            State::WebSocket { ws: active } if active == ws => {
                let reason = match end {
                    TransportEnd::Closed => CloseReason::TransportClose,
                    TransportEnd::Error(e) => CloseReason::TransportError(e),
                    TransportEnd::MessageTooLarge { size } => CloseReason::PayloadTooLarge {
                        size,
                        limit: self.config.max_payload,
                    },
                    TransportEnd::Violation(v) => {
                        CloseReason::ParseError(ProtocolError::WebSocket(v))
                    }
                };
                self.finish(now, reason, can_close);
            }
            State::Polling {
                upgrade: Some(u), ..
            } if u.ws == ws => {
                let failure = match end {
                    TransportEnd::MessageTooLarge { .. } => UpgradeFailure::TooLarge,
                    TransportEnd::Violation(_) => UpgradeFailure::UnexpectedPacket,
                    _ => UpgradeFailure::WebSocketClosed,
                };
                self.abort_upgrade(now, failure, can_close);
            }
            _ => {}
        }
        self.set_socket_linger();
    }

    /// WebSocket `ws` stopped taking writes (its peer is not reading, or not fast
    /// enough). Until [`handle_ws_writable`](Self::handle_ws_writable), messages for it
    /// stay in the session's bounded queue; if it takes nothing for `write_timeout`, the
    /// session ends with [`CloseReason::WriteTimeout`].
    pub fn handle_ws_write_blocked(&mut self, now: Instant, ws: RequestId) {
        self.expire(now);
        if matches!(self.state, State::WebSocket { ws: active } if active == ws)
            && !self.write_blocked
        {
            self.write_blocked = true;
            self.timers
                .set(Timer::WriteStall, now + self.config.write_timeout);
        }
    }

    /// WebSocket `ws` takes writes again.
    pub fn handle_ws_writable(&mut self, now: Instant, ws: RequestId) {
        self.expire(now);
        if matches!(self.state, State::WebSocket { ws: active } if active == ws) {
            self.write_blocked = false;
            self.timers.stop(Timer::WriteStall);
        }
    }

    /// Handles the deadline given by [`poll_timeout`](Self::poll_timeout). Calling it early
    /// or twice does nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.expire(now);
    }

    /// Applies every timer that expired at or before `now`, each at its own deadline.
    fn expire(&mut self, now: Instant) {
        while let Some((timer, at)) = self.timers.pop_expired(now) {
            match timer {
                Timer::Ping => {
                    if self.paused {
                        self.ping_due = true;
                    } else {
                        self.send_ping(at);
                    }
                }
                Timer::PingTimeout => self.finish(at, CloseReason::PingTimeout, true),
                Timer::Upgrade => self.abort_upgrade(at, UpgradeFailure::Timeout, true),
                Timer::CloseWait => {
                    let reason = self.closing.take().unwrap_or(CloseReason::ServerClose);
                    self.finish(at, reason, true);
                }
                Timer::WriteStall => self.finish(at, CloseReason::WriteTimeout, true),
                Timer::Linger => {
                    self.timers.clear();
                    self.lingering.clear();
                    self.release_due = true;
                    return;
                }
                Timer::SocketLinger => {
                    let mut i = 0;
                    while let Some(&(ws, deadline)) = self.lingering.get(i) {
                        if deadline <= now {
                            self.lingering.swap_remove(i);
                            self.actions.push_back(Action::WsDrop { ws });
                        } else {
                            i += 1;
                        }
                    }
                    self.set_socket_linger();
                }
            }
        }
    }

    // ---------------------------------------------------------------- application

    /// Queues a message for the client.
    ///
    /// Fails, handing the message back, when the session is closed or closing, when the
    /// outgoing queue is full (`max_buffered_packets`), or when a text message holds
    /// `U+001E` while the session may still use polling.
    pub fn send(&mut self, message: impl Into<Message>) -> Result<(), SendError> {
        let message = message.into();
        if self.is_closed() || self.closing.is_some() {
            return Err(SendError::Closed(message));
        }
        if self.version == ProtocolVersion::V4
            && matches!(self.state, State::Polling { .. })
            && !message.fits_polling()
        {
            return Err(SendError::RecordSeparator(message));
        }
        let limit = self.config.max_buffered_packets;
        if self.outbox.len() >= limit {
            return Err(SendError::QueueFull { message, limit });
        }
        self.outbox.push_back(Packet::Message(message));
        self.flush_polling_now();
        Ok(())
    }

    /// Queues a value serialised as JSON, as a text message.
    pub fn send_json<V: serde::Serialize + ?Sized>(&mut self, value: &V) -> Result<(), SendError> {
        let text = serde_json::to_string(value).map_err(|e| SendError::Json(e.to_string()))?;
        self.send(Message::Text(Utf8Bytes::from(text)))
    }

    /// Closes the session from the server side: queued packets are delivered, then a close
    /// packet. Over WebSocket the socket is then closed; over polling the close waits for
    /// the client's next GET (at most `close_timeout`). Ends with
    /// [`CloseReason::ServerClose`].
    pub fn close(&mut self, now: Instant) {
        self.close_with(now, CloseReason::ServerClose);
    }

    /// Like [`close`](Self::close), with [`CloseReason::ServerShutdown`] and the WebSocket
    /// close code 1001 (going away).
    pub fn shutdown(&mut self, now: Instant) {
        self.close_with(now, CloseReason::ServerShutdown);
    }

    fn close_with(&mut self, now: Instant, reason: CloseReason) {
        self.expire(now);
        if self.is_closed() || self.closing.is_some() {
            return;
        }
        match self.state {
            State::WebSocket { ws } => {
                // A shutdown is said with the close code (1001, going away) and no close
                // packet, as Node's server closes every WebSocket: clients take it for a
                // lost transport and reconnect, where a close packet means "do not".
                if reason != CloseReason::ServerShutdown {
                    self.outbox.push_back(Packet::Close);
                }
                while let Some(p) = self.outbox.pop_front() {
                    let message = self.ws_form.encode(&p);
                    self.actions.push_back(Action::WsSend { ws, message });
                }
                self.finish(now, reason, true);
            }
            State::Polling { upgrade, .. } => {
                if upgrade.is_some() {
                    self.abort_upgrade(now, UpgradeFailure::SessionClosed, true);
                }
                self.outbox.push_back(Packet::Close);
                self.closing = Some(reason);
                self.timers.stop(Timer::Ping);
                self.timers.stop(Timer::PingTimeout);
                self.timers
                    .set(Timer::CloseWait, now + self.config.close_timeout);
                self.flush_polling(now);
            }
            State::Closed(_) => {}
        }
    }

    // ---------------------------------------------------------------- internals

    fn on_packet(&mut self, now: Instant, packet: Packet) -> PacketOutcome {
        match packet {
            Packet::Message(m) => {
                self.actions.push_back(Action::Event(Event::Message(m)));
                PacketOutcome::Continue
            }
            Packet::Ping { probe: false } if self.version == ProtocolVersion::V3 => {
                // v3: the client pings; the pong goes out with the next answer, and the
                // client has interval + timeout for its next ping (Node's allowEIO3).
                if self.closing.is_none() {
                    self.outbox.push_back(Packet::Pong { probe: false });
                    if !self.paused {
                        self.timers.set(
                            Timer::PingTimeout,
                            now + self.config.ping_interval + self.config.ping_timeout,
                        );
                    }
                    self.flush_polling(now);
                }
                PacketOutcome::Continue
            }
            Packet::Pong { probe: false } if self.version == ProtocolVersion::V4 => {
                if self.awaiting_pong {
                    self.awaiting_pong = false;
                    if let Some(sent) = self.ping_sent.take() {
                        self.ping_rtt = Some(now.saturating_duration_since(sent));
                    }
                    self.timers.stop(Timer::PingTimeout);
                    if self.closing.is_none() {
                        self.timers
                            .set(Timer::Ping, now + self.config.ping_interval);
                    }
                }
                // A stray or early pong is harmless.
                PacketOutcome::Continue
            }
            Packet::Close => PacketOutcome::ClientClosed,
            Packet::Noop => PacketOutcome::Continue,
            other => PacketOutcome::Violation(ProtocolError::UnexpectedPacket {
                packet_type: other.packet_type(),
                context: match other {
                    Packet::Ping { probe: false } => {
                        "from a client (v4 heartbeats go server to client)"
                    }
                    Packet::Pong { probe: false } => {
                        "from a v3 client (v3 heartbeats go client to server: the client pings)"
                    }
                    _ => "from a client on an established transport",
                },
            }),
        }
    }

    fn on_probe(&mut self, ws: RequestId) {
        self.actions.push_back(Action::WsSend {
            ws,
            message: Packet::Pong { probe: true }.to_ws(),
        });
        let State::Polling { get, upgrade } = &mut self.state else {
            return;
        };
        if let Some(u) = upgrade {
            u.probed = true;
        }
        let parked = get.take();
        // Pause the heartbeat: the client stops polling until the upgrade ends. A pong
        // still awaited now comes at the upgrade's pace: it is not a round trip.
        self.paused = true;
        self.ping_sent = None;
        self.timers.stop(Timer::PingTimeout);
        if let Some((id, cors)) = parked {
            if self.outbox.is_empty() {
                let response = self.payload_response(&cors, &[Packet::Noop]);
                self.respond(id, response);
            } else {
                // No close packet can be queued during an upgrade: closing aborts it.
                let _ = self.respond_with_outbox(id, &cors);
            }
        }
    }

    fn complete_upgrade(&mut self, now: Instant, ws: RequestId) {
        let State::Polling { get, upgrade } = &mut self.state else {
            return;
        };
        let parked = get.take();
        self.websocket_deflate = upgrade.as_ref().and_then(|u| u.deflate);
        self.state = State::WebSocket { ws };
        self.timers.stop(Timer::Upgrade);
        self.reading = false;
        if let Some((id, cors)) = parked {
            let response = self.payload_response(&cors, &[Packet::Noop]);
            self.respond(id, response);
        }
        self.actions.push_back(Action::Event(Event::Upgraded));
        self.resume_heartbeat(now);
        // Polling requests that waited for the WebSocket find the session upgraded.
        self.judge_deferred();
    }

    fn abort_upgrade(&mut self, now: Instant, failure: UpgradeFailure, close_ws: bool) {
        let State::Polling { upgrade, .. } = &mut self.state else {
            return;
        };
        let Some(u) = upgrade.take() else {
            return;
        };
        self.timers.stop(Timer::Upgrade);
        self.reading = false;
        if close_ws {
            let (code, reason) = match failure {
                UpgradeFailure::TooLarge => (CloseCode::TooBig, "payload too large"),
                UpgradeFailure::UnexpectedPacket => {
                    (CloseCode::Protocol, "unexpected packet during upgrade")
                }
                UpgradeFailure::Timeout => (CloseCode::Normal, "upgrade timeout"),
                _ => (CloseCode::Normal, "session closed"),
            };
            self.close_socket(now, u.ws, code, reason);
        }
        self.actions
            .push_back(Action::Event(Event::UpgradeFailed(failure)));
        self.resume_heartbeat(now);
        self.judge_deferred();
    }

    /// Closes a socket the session goes on without; it must be gone by `write_timeout`.
    fn close_socket(&mut self, now: Instant, ws: RequestId, code: CloseCode, reason: &'static str) {
        self.actions.push_back(Action::WsClose { ws, code, reason });
        self.lingering.push((ws, now + self.config.write_timeout));
        self.set_socket_linger();
    }

    fn set_socket_linger(&mut self) {
        if self.released {
            return;
        }
        match self.lingering.iter().map(|(_, at)| *at).min() {
            Some(at) => self.timers.set(Timer::SocketLinger, at),
            None => self.timers.stop(Timer::SocketLinger),
        }
    }

    fn resume_heartbeat(&mut self, now: Instant) {
        if !self.paused {
            return;
        }
        self.paused = false;
        if self.version == ProtocolVersion::V3 {
            // The client pings again once the upgrade is over: a full period from now.
            if self.closing.is_none() {
                self.timers.set(
                    Timer::PingTimeout,
                    now + self.config.ping_interval + self.config.ping_timeout,
                );
            }
            return;
        }
        if self.ping_due {
            self.ping_due = false;
            self.send_ping(now);
        } else if self.awaiting_pong {
            self.timers
                .set(Timer::PingTimeout, now + self.config.ping_timeout);
        }
    }

    /// Queues a ping sent at `at` (its deadline: the pong is due `ping_timeout` after the
    /// ping was due, however late the binding noticed).
    fn send_ping(&mut self, at: Instant) {
        if self.closing.is_some() || self.is_closed() {
            return;
        }
        self.outbox.push_back(Packet::Ping { probe: false });
        self.awaiting_pong = true;
        self.ping_sent = Some(at);
        self.timers
            .set(Timer::PingTimeout, at + self.config.ping_timeout);
        self.flush_polling(at);
    }

    /// Answers the parked GET with the queued packets, if both exist.
    fn flush_polling(&mut self, now: Instant) {
        if self.outbox.is_empty() {
            return;
        }
        let State::Polling { get, .. } = &mut self.state else {
            return;
        };
        let Some((id, cors)) = get.take() else {
            return;
        };
        self.respond_with_outbox_at(now, id, &cors);
    }

    /// [`flush_polling`](Self::flush_polling) from `send`, which has no instant: a close
    /// packet is never queued by `send`, so the session cannot end here.
    fn flush_polling_now(&mut self) {
        if self.outbox.is_empty() {
            return;
        }
        let State::Polling { get, .. } = &mut self.state else {
            return;
        };
        let Some((id, cors)) = get.take() else {
            return;
        };
        let _ = self.respond_with_outbox(id, &cors);
    }

    /// Answers `id` with every queued packet; returns whether a close packet went out.
    fn respond_with_outbox(&mut self, id: RequestId, cors: &Cors) -> bool {
        let mut closes = false;
        let mut response = match self.version {
            ProtocolVersion::V4 => {
                let mut enc = PayloadEncoder::with_capacity(
                    self.outbox
                        .iter()
                        .map(|p| p.text_len_hint() + 1)
                        .sum::<usize>(),
                );
                for packet in self.outbox.drain(..) {
                    closes |= packet == Packet::Close;
                    // `send` refuses text with U+001E while polling, so this cannot fail.
                    let _ = enc.push(&packet);
                }
                Response::payload(enc.finish())
            }
            ProtocolVersion::V3 => {
                let packets: Vec<Packet> = self.outbox.drain(..).collect();
                closes = packets.contains(&Packet::Close);
                // The CORS headers are applied below, once for both versions.
                payload_response(ProtocolVersion::V3, self.b64, &Cors::default(), &packets)
            }
        };
        cors.apply(&mut response.headers);
        if closes && let Some(reason) = &self.closing {
            mark_close(&mut response, reason);
        }
        self.respond(id, response);
        closes
    }

    fn respond_with_outbox_at(&mut self, now: Instant, id: RequestId, cors: &Cors) {
        if self.respond_with_outbox(id, cors)
            && let Some(reason) = self.closing.take()
        {
            self.finish(now, reason, true);
            if let State::Closed(ended) = &mut self.state {
                ended.get_answered = true;
            }
        }
    }

    /// Ends the session at `at`: answers what is pending, closes the WebSocket (unless it
    /// is already gone), stops every timer but the linger, and queues [`Event::Closed`].
    fn finish(&mut self, at: Instant, reason: CloseReason, close_ws: bool) {
        if self.is_closed() {
            return;
        }
        let polling = matches!(self.state, State::Polling { .. });
        let linger = self
            .config
            .write_timeout
            .max(self.config.client_close_grace);
        let state = std::mem::replace(
            &mut self.state,
            State::Closed(Box::new(EndedSession {
                sid: self.sid,
                at,
                polling,
                get_answered: false,
                reason: reason.clone(),
                grace: self.config.client_close_grace,
                expires: at + linger,
                version: self.version,
                b64: self.b64,
            })),
        );
        let (code, text) = close_code(&reason);
        let mut get_answered = false;
        match state {
            State::Closed(_) => {}
            State::Polling { get, upgrade } => {
                if let Some((id, cors)) = get {
                    let packet = if reason == CloseReason::ClientClose {
                        Packet::Noop
                    } else {
                        Packet::Close
                    };
                    let mut response = self.payload_response(&cors, &[packet]);
                    mark_close(&mut response, &reason);
                    self.respond(id, response);
                    get_answered = true;
                }
                if let Some(u) = upgrade {
                    self.actions.push_back(Action::WsClose {
                        ws: u.ws,
                        code,
                        reason: text,
                    });
                }
            }
            State::WebSocket { ws } => {
                if close_ws {
                    self.actions.push_back(Action::WsClose {
                        ws,
                        code,
                        reason: text,
                    });
                }
            }
        }
        if let State::Closed(ended) = &mut self.state {
            ended.get_answered = get_answered;
        }
        if let Some((id, cors)) = self.post.take() {
            self.answer_unknown(id, &cors);
        }
        self.outbox = VecDeque::new();
        self.timers.clear();
        self.closing = None;
        self.awaiting_pong = false;
        self.ping_sent = None;
        self.paused = false;
        self.write_blocked = false;
        self.reading = false;
        self.actions.push_back(Action::Event(Event::Closed(reason)));
        // Requests that waited for the upgrade's WebSocket are judged as of now.
        self.judge_deferred();
        // The record (and the sockets) stay a while: late requests are judged by how
        // the session ended, and the peer may take its close frame.
        self.timers.set(Timer::Linger, at + linger);
    }

    /// A polling answer carrying `packets`, in the session's protocol version.
    fn payload_response(&self, cors: &Cors, packets: &[Packet]) -> Response {
        payload_response(self.version, self.b64, cors, packets)
    }

    fn decode_ws(&self, message: WsMessage) -> Result<Packet, DecodeError> {
        match self.version {
            ProtocolVersion::V4 => Packet::decode_ws(message),
            ProtocolVersion::V3 => v3::decode_ws(message),
        }
    }

    fn respond(&mut self, request: RequestId, response: Response) {
        self.actions.push_back(Action::Respond {
            request,
            response: Box::new(response),
        });
    }

    fn respond_error(&mut self, id: RequestId, cors: &Cors, err: RequestError) {
        let mut r = err.to_response();
        cors.apply(&mut r.headers);
        self.respond(id, r);
    }
}

/// The WebSocket close code and reason for each way a session ends: the one place that
/// decides them.
fn close_code(reason: &CloseReason) -> (CloseCode, &'static str) {
    match reason {
        CloseReason::PayloadTooLarge { .. } => (CloseCode::TooBig, "payload too large"),
        CloseReason::ParseError(ProtocolError::WebSocket(WsViolation::InvalidUtf8)) => {
            (CloseCode::InvalidPayload, "invalid UTF-8")
        }
        CloseReason::ParseError(ProtocolError::WebSocket(_)) => {
            (CloseCode::Protocol, "protocol error")
        }
        CloseReason::ParseError(_) => (CloseCode::Protocol, "parse error"),
        CloseReason::ServerShutdown => (CloseCode::GoingAway, "server shutting down"),
        CloseReason::PingTimeout => (CloseCode::Normal, "ping timeout"),
        CloseReason::ServerClose => (CloseCode::Normal, "server close"),
        CloseReason::WriteTimeout => (CloseCode::Normal, "write timeout"),
        _ => (CloseCode::Normal, ""),
    }
}

/// The header a polling answer carrying a close packet has when the session did not end
/// by the application's decision (`x-engineio-close: shutdown`, `ping timeout`...): a
/// close packet alone cannot tell "closed for good, do not reconnect" (the application
/// called `close`) from a shutdown or a timeout, after which a client should reconnect.
/// Over WebSocket those ends send no close packet, only the close code. Other clients
/// ignore the header.
pub const CLOSE_HEADER: &str = "x-engineio-close";

/// The [`CLOSE_HEADER`] value for a way a session ends (`None`: the application closed
/// it, or the client did).
pub(crate) fn close_header_value(reason: &CloseReason) -> Option<&'static str> {
    Some(match reason {
        CloseReason::ServerClose | CloseReason::ClientClose => return None,
        CloseReason::ServerShutdown => "shutdown",
        CloseReason::PingTimeout => "ping timeout",
        CloseReason::WriteTimeout => "write timeout",
        CloseReason::PayloadTooLarge { .. } => "payload too large",
        CloseReason::ParseError(_) => "parse error",
        _ => "transport",
    })
}

/// A polling answer carrying `packets` in `version`'s framing, with the CORS headers. A v3
/// answer is a binary payload when the client takes binary (no `b64=1`) and a packet is
/// binary, a text payload otherwise (Node's choice).
fn payload_response(
    version: ProtocolVersion,
    b64: bool,
    cors: &Cors,
    packets: &[Packet],
) -> Response {
    let mut r = match version {
        ProtocolVersion::V4 => {
            let mut enc =
                PayloadEncoder::with_capacity(packets.iter().map(|p| p.text_len_hint() + 1).sum());
            for p in packets {
                let _ = enc.push(p);
            }
            Response::payload(enc.finish())
        }
        ProtocolVersion::V3 => {
            let format = PayloadFormat::for_packets(!b64, packets);
            let body = v3::encode_payload(packets, format);
            match format {
                PayloadFormat::Text => Response::payload(body),
                PayloadFormat::Binary => Response::payload_octets(body),
            }
        }
    };
    cors.apply(&mut r.headers);
    r
}

fn mark_close(response: &mut Response, reason: &CloseReason) {
    if let Some(v) = close_header_value(reason) {
        response.headers.insert(
            http::HeaderName::from_static(CLOSE_HEADER),
            http::HeaderValue::from_static(v),
        );
    }
}

fn ok_response(cors: &Cors) -> Response {
    let mut r = Response::new(StatusCode::OK, TEXT_PLAIN, Bytes::from_static(b"ok"));
    cors.apply(&mut r.headers);
    r
}

fn plain(status: StatusCode, cors: &Cors) -> Response {
    let mut r = Response::empty(status);
    cors.apply(&mut r.headers);
    r
}

/// The agreed `Sec-WebSocket-Extensions` answer, when an extension was agreed.
fn insert_extensions(headers: &mut HeaderMap, deflate: Option<DeflateParams>) {
    if let Some(d) = deflate
        && let Ok(v) = http::HeaderValue::from_str(&d.to_header())
    {
        headers.insert(http::header::SEC_WEBSOCKET_EXTENSIONS, v);
    }
}
