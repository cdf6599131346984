//! One client's session: transport, upgrade, heartbeat and outgoing queue.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};

use super::config::ServerConfig;
use super::error::RequestError;
use super::request::Cors;
use super::{SessionRequest, SessionRequestKind};
use crate::close::{CloseReason, ProtocolError, SendError, TransportEnd};
use crate::exchange::{RequestId, Response, TEXT_PLAIN};
use crate::timer::{TimerKey, TimerTable};
use crate::{
    Handshake, Message, Packet, PayloadEncoder, PayloadLimits, Sid, Transport, Utf8Bytes,
    WsMessage, decode_payload,
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
        /// Extra headers for the 101 response (the sid cookie, when configured).
        headers: HeaderMap,
    },
    /// Send a message on WebSocket `ws`.
    WsSend {
        /// The WebSocket.
        ws: RequestId,
        /// The message.
        message: WsMessage,
    },
    /// Close WebSocket `ws` with a close frame.
    WsClose {
        /// The WebSocket.
        ws: RequestId,
        /// The close code (1000 normal, 1001 going away, 1002 protocol error, 1009 message
        /// too big).
        code: u16,
        /// The close reason.
        reason: &'static str,
    },
    /// Tell the application.
    Event(Event),
}

/// What the application hears from a session.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The client sent a message.
    Message(Message),
    /// The session moved from polling to WebSocket.
    Upgraded,
    /// The session ended; this is its last event. Drop the session.
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
}

impl TimerKey for Timer {
    const COUNT: usize = 4;
    fn index(self) -> usize {
        self as usize
    }
    fn from_index(index: usize) -> Self {
        match index {
            0 => Timer::Ping,
            1 => Timer::PingTimeout,
            2 => Timer::Upgrade,
            _ => Timer::CloseWait,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Upgrade {
    ws: RequestId,
    probed: bool,
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
    Closed,
}

enum PacketOutcome {
    Continue,
    ClientClosed,
    Violation(ProtocolError),
}

/// One client's session, driven by its binding; see the [module documentation](super).
///
/// `T` is the application's per-session data, given to [`Server::accept`](super::Server::accept).
pub struct Session<T = ()> {
    sid: Sid,
    config: Arc<ServerConfig>,
    state: State,
    outbox: VecDeque<Packet>,
    actions: VecDeque<Action>,
    timers: TimerTable<Timer, { Timer::COUNT }>,
    awaiting_pong: bool,
    ping_due: bool,
    paused: bool,
    post: Option<(RequestId, Cors)>,
    b64: bool,
    closing: Option<CloseReason>,
    close_reason: Option<CloseReason>,
    data: T,
}

impl<T: fmt::Debug> fmt::Debug for Session<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("sid", &self.sid)
            .field("state", &self.state)
            .field("queued", &self.outbox.len())
            .field("close_reason", &self.close_reason)
            .field("data", &self.data)
            .finish_non_exhaustive()
    }
}

impl<T> Session<T> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn open(
        now: Instant,
        config: Arc<ServerConfig>,
        sid: Sid,
        request: RequestId,
        transport: Transport,
        b64: bool,
        cors: &Cors,
        mut headers: HeaderMap,
        data: T,
    ) -> Session<T> {
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
        timers.set(Timer::Ping, now + config.ping_interval);
        let mut session = Session {
            sid,
            config,
            state: State::Closed,
            outbox: VecDeque::new(),
            actions: VecDeque::new(),
            timers,
            awaiting_pong: false,
            ping_due: false,
            paused: false,
            post: None,
            b64,
            closing: None,
            close_reason: None,
            data,
        };
        match transport {
            Transport::Polling => {
                session.state = State::Polling {
                    get: None,
                    upgrade: None,
                };
                let mut response = payload_response(cors, std::slice::from_ref(&open));
                response.headers.extend(headers);
                session.respond(request, response);
            }
            Transport::WebSocket => {
                session.state = State::WebSocket { ws: request };
                cors.apply(&mut headers);
                session
                    .actions
                    .push_back(Action::AcceptWebSocket { request, headers });
                session.outbox.push_back(open);
            }
        }
        session
    }

    /// The session id.
    pub fn sid(&self) -> Sid {
        self.sid
    }

    /// The transport in use (the last one, once closed).
    pub fn transport(&self) -> Transport {
        match self.state {
            State::WebSocket { .. } => Transport::WebSocket,
            _ => Transport::Polling,
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
        matches!(self.state, State::Closed)
    }

    /// Why the session ended, once it has.
    pub fn close_reason(&self) -> Option<&CloseReason> {
        self.close_reason.as_ref()
    }

    /// How many packets wait in the outgoing queue.
    pub fn queued(&self) -> usize {
        self.outbox.len()
    }

    /// The application's per-session data.
    pub fn data(&self) -> &T {
        &self.data
    }

    /// The application's per-session data, mutably.
    pub fn data_mut(&mut self) -> &mut T {
        &mut self.data
    }

    /// Consumes the session, returning the application's data.
    pub fn into_data(self) -> T {
        self.data
    }

    // ---------------------------------------------------------------- outputs

    /// The next thing to do, or `None` when there is nothing until the next input or
    /// [`poll_timeout`](Self::poll_timeout).
    pub fn poll_action(&mut self) -> Option<Action> {
        if let Some(action) = self.actions.pop_front() {
            return Some(action);
        }
        if let State::WebSocket { ws } = self.state {
            let Some(packet) = self.outbox.pop_front() else {
                self.trim();
                return None;
            };
            let message = if self.b64 {
                packet.to_ws_base64()
            } else {
                packet.to_ws()
            };
            return Some(Action::WsSend { ws, message });
        }
        self.trim();
        None
    }

    /// The next deadline: call [`handle_timeout`](Self::handle_timeout) then. `None` once
    /// the session is closed.
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
    }

    // ---------------------------------------------------------------- inputs

    /// Handles a request [`Server::handle_request`](super::Server::handle_request) routed to
    /// this session. The answer comes out of [`poll_action`](Self::poll_action), at once
    /// or later (a parked long-poll GET).
    pub fn handle_request(&mut self, now: Instant, request: SessionRequest) {
        let SessionRequest {
            id,
            sid,
            kind,
            cors,
        } = request;
        if sid != self.sid || self.is_closed() {
            let mut r = RequestError::UnknownSid(sid.to_string()).to_response();
            cors.apply(&mut r.headers);
            self.respond(id, r);
            return;
        }
        match kind {
            SessionRequestKind::Poll => self.on_poll(id, cors),
            SessionRequestKind::Post { octet_stream } => self.on_post(id, cors, octet_stream),
            SessionRequestKind::WebSocket => self.on_websocket(now, id, cors),
        }
    }

    fn on_poll(&mut self, id: RequestId, cors: Cors) {
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
            return self.finish(CloseReason::ParseError(ProtocolError::DuplicateGet), true);
        }
        let probed = upgrade.is_some_and(|u| u.probed);
        if self.outbox.is_empty() && probed {
            // The upgrade is under way: release the client at once.
            self.respond(id, payload_response(&cors, &[Packet::Noop]));
            return;
        }
        *get = Some((id, cors));
        self.flush_polling();
    }

    fn on_post(&mut self, id: RequestId, cors: Cors, octet_stream: bool) {
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
            return self.finish(CloseReason::ParseError(ProtocolError::DuplicatePost), true);
        }
        if octet_stream {
            self.respond(id, plain(StatusCode::BAD_REQUEST, &cors));
            return self.finish(CloseReason::ParseError(ProtocolError::BinaryPayload), true);
        }
        self.post = Some((id, cors));
    }

    fn on_websocket(&mut self, now: Instant, id: RequestId, cors: Cors) {
        let refusal = match &self.state {
            State::WebSocket { .. } => Some("this session already uses a WebSocket"),
            State::Polling {
                upgrade: Some(_), ..
            } => Some("an upgrade is already in progress for this session"),
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
            });
            self.actions.push_back(Action::AcceptWebSocket {
                request: id,
                headers: HeaderMap::new(),
            });
            self.timers
                .set(Timer::Upgrade, now + self.config.upgrade_timeout);
        }
    }

    /// Hands over the body of a POST that [`handle_request`](Self::handle_request) took
    /// (read at most [`Server::body_read_limit`](super::Server::body_read_limit) bytes).
    /// Bodies for requests the session already answered are ignored.
    pub fn handle_post_body(&mut self, now: Instant, request: RequestId, body: Bytes) {
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
        let packets = match decode_payload(body, limits) {
            Ok(p) => p,
            Err(e) => {
                self.respond(id, plain(StatusCode::BAD_REQUEST, &cors));
                return self.finish(CloseReason::ParseError(e.into()), true);
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
                    return self.finish(CloseReason::ClientClose, true);
                }
                PacketOutcome::Violation(e) => {
                    self.respond(id, plain(StatusCode::BAD_REQUEST, &cors));
                    return self.finish(CloseReason::ParseError(e), true);
                }
            }
        }
        self.respond(id, ok_response(&cors));
    }

    /// Tells the session that an HTTP request it has not answered yet went away (the
    /// client closed the connection). A parked GET or a POST without its body ends the
    /// session with a transport error, as in Node.
    pub fn handle_request_dropped(&mut self, _now: Instant, request: RequestId) {
        if self.post.as_ref().is_some_and(|(p, _)| *p == request) {
            self.post = None;
            return self.finish(
                CloseReason::TransportError("polling POST closed before its body arrived".into()),
                true,
            );
        }
        if let State::Polling { get, .. } = &mut self.state
            && get.as_ref().is_some_and(|(g, _)| *g == request)
        {
            *get = None;
            self.finish(
                CloseReason::TransportError(
                    "polling GET closed by the client before it was answered".into(),
                ),
                true,
            );
        }
    }

    /// Handles a message received on WebSocket `ws`.
    pub fn handle_ws_message(&mut self, now: Instant, ws: RequestId, message: WsMessage) {
        let size = message.len();
        let limit = self.config.max_payload;
        match self.state {
            State::WebSocket { ws: active } if active == ws => {
                if size > limit {
                    return self.finish(CloseReason::PayloadTooLarge { size, limit }, true);
                }
                let outcome = match Packet::decode_ws(message) {
                    Ok(packet) => self.on_packet(now, packet),
                    Err(e) => PacketOutcome::Violation(e.into()),
                };
                match outcome {
                    PacketOutcome::Continue => {}
                    PacketOutcome::ClientClosed => self.finish(CloseReason::ClientClose, true),
                    PacketOutcome::Violation(e) => self.finish(CloseReason::ParseError(e), true),
                }
            }
            State::Polling {
                upgrade: Some(u), ..
            } if u.ws == ws => {
                if size > limit {
                    return self.abort_upgrade(now, 1009, "payload too large", true);
                }
                match Packet::decode_ws(message) {
                    Ok(Packet::Ping { probe: true }) if !u.probed => self.on_probe(ws),
                    Ok(Packet::Upgrade) if u.probed => self.complete_upgrade(now, ws),
                    _ => self.abort_upgrade(now, 1002, "unexpected packet during upgrade", true),
                }
            }
            _ => {}
        }
    }

    /// Tells the session that WebSocket `ws` ended.
    pub fn handle_ws_closed(&mut self, now: Instant, ws: RequestId, end: TransportEnd) {
        match self.state {
            State::WebSocket { ws: active } if active == ws => {
                let reason = match end {
                    TransportEnd::Closed => CloseReason::TransportClose,
                    TransportEnd::Error(e) => CloseReason::TransportError(e),
                    TransportEnd::MessageTooLarge { size } => CloseReason::PayloadTooLarge {
                        size,
                        limit: self.config.max_payload,
                    },
                };
                self.finish(reason, false);
            }
            State::Polling {
                upgrade: Some(u), ..
            } if u.ws == ws => self.abort_upgrade(now, 1000, "", false),
            _ => {}
        }
    }

    /// Handles the deadline given by [`poll_timeout`](Self::poll_timeout). Calling it early
    /// or twice does nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.timers.pop_expired(now) {
            match timer {
                Timer::Ping => {
                    if self.paused {
                        self.ping_due = true;
                    } else {
                        self.send_ping(now);
                    }
                }
                Timer::PingTimeout => self.finish(CloseReason::PingTimeout, true),
                Timer::Upgrade => self.abort_upgrade(now, 1000, "upgrade timeout", true),
                Timer::CloseWait => {
                    let reason = self.closing.take().unwrap_or(CloseReason::ServerClose);
                    self.finish(reason, true);
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
        if matches!(self.state, State::Polling { .. }) && !message.fits_polling() {
            return Err(SendError::RecordSeparator(message));
        }
        let limit = self.config.max_buffered_packets;
        if self.outbox.len() >= limit {
            return Err(SendError::QueueFull { message, limit });
        }
        self.outbox.push_back(Packet::Message(message));
        self.flush_polling();
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
        if self.is_closed() || self.closing.is_some() {
            return;
        }
        match self.state {
            State::WebSocket { ws } => {
                self.outbox.push_back(Packet::Close);
                while let Some(p) = self.outbox.pop_front() {
                    let message = if self.b64 {
                        p.to_ws_base64()
                    } else {
                        p.to_ws()
                    };
                    self.actions.push_back(Action::WsSend { ws, message });
                }
                self.finish(reason, true);
            }
            State::Polling { upgrade, .. } => {
                if upgrade.is_some() {
                    self.abort_upgrade(now, 1000, "session closed", true);
                }
                self.outbox.push_back(Packet::Close);
                self.closing = Some(reason);
                self.timers.stop(Timer::Ping);
                self.timers.stop(Timer::PingTimeout);
                self.timers
                    .set(Timer::CloseWait, now + self.config.close_timeout);
                self.flush_polling();
            }
            State::Closed => {}
        }
    }

    // ---------------------------------------------------------------- internals

    fn on_packet(&mut self, now: Instant, packet: Packet) -> PacketOutcome {
        match packet {
            Packet::Message(m) => {
                self.actions.push_back(Action::Event(Event::Message(m)));
                PacketOutcome::Continue
            }
            Packet::Pong { probe: false } => {
                if self.awaiting_pong {
                    self.awaiting_pong = false;
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
        // Pause the heartbeat: the client stops polling until the upgrade ends.
        self.paused = true;
        self.timers.stop(Timer::PingTimeout);
        if let Some((id, cors)) = parked {
            if self.outbox.is_empty() {
                self.respond(id, payload_response(&cors, &[Packet::Noop]));
            } else {
                self.respond_with_outbox(id, &cors);
            }
        }
    }

    fn complete_upgrade(&mut self, now: Instant, ws: RequestId) {
        let State::Polling { get, .. } = &mut self.state else {
            return;
        };
        let parked = get.take();
        self.state = State::WebSocket { ws };
        self.timers.stop(Timer::Upgrade);
        if let Some((id, cors)) = parked {
            self.respond(id, payload_response(&cors, &[Packet::Noop]));
        }
        self.actions.push_back(Action::Event(Event::Upgraded));
        self.resume_heartbeat(now);
    }

    fn abort_upgrade(&mut self, now: Instant, code: u16, reason: &'static str, close_ws: bool) {
        let State::Polling { upgrade, .. } = &mut self.state else {
            return;
        };
        let Some(u) = upgrade.take() else {
            return;
        };
        self.timers.stop(Timer::Upgrade);
        if close_ws {
            self.actions.push_back(Action::WsClose {
                ws: u.ws,
                code,
                reason,
            });
        }
        self.resume_heartbeat(now);
    }

    fn resume_heartbeat(&mut self, now: Instant) {
        if !self.paused {
            return;
        }
        self.paused = false;
        if self.ping_due {
            self.ping_due = false;
            self.send_ping(now);
        } else if self.awaiting_pong {
            self.timers
                .set(Timer::PingTimeout, now + self.config.ping_timeout);
        }
    }

    fn send_ping(&mut self, now: Instant) {
        if self.closing.is_some() || self.is_closed() {
            return;
        }
        self.outbox.push_back(Packet::Ping { probe: false });
        self.awaiting_pong = true;
        self.timers
            .set(Timer::PingTimeout, now + self.config.ping_timeout);
        self.flush_polling();
    }

    /// Answers the parked GET with the queued packets, if both exist.
    fn flush_polling(&mut self) {
        if self.outbox.is_empty() {
            return;
        }
        let State::Polling { get, .. } = &mut self.state else {
            return;
        };
        let Some((id, cors)) = get.take() else {
            return;
        };
        self.respond_with_outbox(id, &cors);
    }

    fn respond_with_outbox(&mut self, id: RequestId, cors: &Cors) {
        let mut enc = PayloadEncoder::with_capacity(
            self.outbox
                .iter()
                .map(|p| p.text_len_hint() + 1)
                .sum::<usize>(),
        );
        let mut closes = false;
        for packet in self.outbox.drain(..) {
            closes |= packet == Packet::Close;
            // `send` refuses text with U+001E while polling, so this cannot fail.
            let _ = enc.push(&packet);
        }
        let mut response = Response::payload(enc.finish());
        cors.apply(&mut response.headers);
        self.respond(id, response);
        if closes && let Some(reason) = self.closing.take() {
            self.finish(reason, true);
        }
    }

    /// Ends the session: answers what is pending, closes the WebSocket (unless it is
    /// already gone), stops every timer and queues [`Event::Closed`].
    fn finish(&mut self, reason: CloseReason, close_ws: bool) {
        let state = std::mem::replace(&mut self.state, State::Closed);
        let (code, text) = match &reason {
            CloseReason::PayloadTooLarge { .. } => (1009, "payload too large"),
            CloseReason::ParseError(_) => (1002, "parse error"),
            CloseReason::ServerShutdown => (1001, "server shutting down"),
            CloseReason::PingTimeout => (1000, "ping timeout"),
            CloseReason::ServerClose => (1000, "server close"),
            _ => (1000, ""),
        };
        match state {
            State::Closed => {
                self.state = State::Closed;
                return;
            }
            State::Polling { get, upgrade } => {
                if let Some((id, cors)) = get {
                    let packet = if reason == CloseReason::ClientClose {
                        Packet::Noop
                    } else {
                        Packet::Close
                    };
                    self.respond(id, payload_response(&cors, &[packet]));
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
        if let Some((id, cors)) = self.post.take() {
            let mut r = RequestError::UnknownSid(self.sid.to_string()).to_response();
            cors.apply(&mut r.headers);
            self.respond(id, r);
        }
        self.outbox = VecDeque::new();
        self.timers.clear();
        self.closing = None;
        self.awaiting_pong = false;
        self.paused = false;
        self.close_reason = Some(reason.clone());
        self.actions.push_back(Action::Event(Event::Closed(reason)));
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

fn payload_response(cors: &Cors, packets: &[Packet]) -> Response {
    let mut enc =
        PayloadEncoder::with_capacity(packets.iter().map(|p| p.text_len_hint() + 1).sum());
    for p in packets {
        let _ = enc.push(p);
    }
    let mut r = Response::payload(enc.finish());
    cors.apply(&mut r.headers);
    r
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
