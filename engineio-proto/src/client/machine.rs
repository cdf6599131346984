//! The client state machine.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};

use super::action::{
    ClientAction, ClientEvent, ConnectError, HttpError, HttpRequest, WsConnectError, WsLimits,
};
use super::batch::{Framing, next_batch};
use super::config::{ClientConfig, ConfigError, OfflinePolicy};
use super::cookie::CookieJar;
use super::outbox::Outbox;
use super::rng::{SplitMix64, backoff};
use crate::close::{CloseReason, ProtocolError, SendError, TransportEnd, WsViolation};
use crate::close_code::CloseCode;
use crate::error::DecodeError;
use crate::exchange::{RequestId, Response};
use crate::timer::{TimerKey, TimerTable};
use crate::transport_error::TransportError;
use crate::v3::{self, PayloadFormat};
use crate::{
    Handshake, Message, Packet, PayloadDecoder, PayloadLimits, ProtocolVersion, Sid, Transport,
    Utf8Bytes, WsMessage, decode_payload,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    /// The handshake (polling GET, or WebSocket connect up to the open packet) is overdue.
    Connect = 0,
    /// No ping from the server within `pingInterval + pingTimeout`.
    Heartbeat = 1,
    /// The POST in flight is overdue.
    Post = 2,
    /// The upgrade in progress is overdue.
    Upgrade = 3,
    /// The next reconnection attempt is due.
    Reconnect = 4,
    /// A close over WebSocket still waits for queued messages the socket does not take.
    Close = 5,
    /// v3: the client's next ping is due.
    Ping = 6,
}

impl TimerKey for Timer {
    const COUNT: usize = 7;
    fn index(self) -> usize {
        self as usize
    }
    fn from_index(index: usize) -> Self {
        match index {
            0 => Timer::Connect,
            1 => Timer::Heartbeat,
            2 => Timer::Post,
            3 => Timer::Upgrade,
            4 => Timer::Reconnect,
            5 => Timer::Close,
            _ => Timer::Ping,
        }
    }
}

/// A connection attempt in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attempt {
    /// The handshake GET.
    Polling { request: RequestId },
    /// The WebSocket, waiting to connect and then for the open packet.
    WebSocket {
        ws: RequestId,
        /// The binding said it connected (messages before that are ignored).
        connected: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// The probe WebSocket is connecting.
    Connecting,
    /// `2probe` sent, waiting for `3probe`.
    Probing,
    /// `3probe` received: polling is paused until the GET and POST in flight return.
    Pausing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Upgrade {
    ws: RequestId,
    stage: Stage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Post {
    id: RequestId,
    /// Whether the body ends with the close packet.
    close: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    Polling {
        get: Option<RequestId>,
        post: Option<Post>,
        upgrade: Option<Upgrade>,
        /// An upgrade was started in this session (it is tried once).
        upgrade_tried: bool,
    },
    WebSocket {
        ws: RequestId,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closing {
    No,
    /// [`Client::close`] was called: the close packet goes after the queued messages.
    Queued,
    /// The close packet is in the POST in flight.
    Sent,
}

#[derive(Debug)]
struct Conn {
    handshake: Handshake,
    link: Link,
    closing: Closing,
}

#[derive(Debug)]
enum Phase {
    /// Created, [`Client::connect`] not called yet.
    Idle,
    /// A handshake is in progress.
    Connecting(Attempt),
    /// A session is open.
    Open(Box<Conn>),
    /// Waiting for the next reconnection attempt.
    Waiting,
    /// Finished: closed, or gave up. [`Client::connect`] starts again.
    Closed,
}

/// The Engine.IO client state machine; see the [module documentation](super) for the
/// driving loop.
///
/// Its methods come in four groups:
///
/// - **inputs** from the binding: [`connect`](Self::connect),
///   [`handle_response`](Self::handle_response),
///   [`handle_ws_connected`](Self::handle_ws_connected),
///   [`handle_ws_connect_failed`](Self::handle_ws_connect_failed),
///   [`handle_ws_message`](Self::handle_ws_message),
///   [`handle_ws_closed`](Self::handle_ws_closed), [`handle_timeout`](Self::handle_timeout);
/// - **commands** from the application: [`send`](Self::send),
///   [`send_json`](Self::send_json), [`close`](Self::close);
/// - **outputs**, drained after every input or command: [`poll_action`](Self::poll_action),
///   [`poll_ws_send`](Self::poll_ws_send) while the WebSocket takes more, then
///   [`poll_timeout`](Self::poll_timeout);
/// - **state**: [`is_connected`](Self::is_connected), [`is_closed`](Self::is_closed),
///   [`is_reconnecting`](Self::is_reconnecting), [`sid`](Self::sid),
///   [`transport`](Self::transport), [`handshake`](Self::handshake) and a few more.
///
/// The client never panics on any input: unknown or stale ids are ignored, malformed
/// answers end the session with a typed [`CloseReason`] (or a [`ConnectError`] during the
/// handshake).
pub struct Client {
    config: ClientConfig,
    rng: SplitMix64,
    next_id: u64,
    phase: Phase,
    /// Application messages waiting to be sent (also while offline), bounded by
    /// `max_queued_messages` and `max_queued_bytes`. On WebSocket the binding pulls them
    /// with `poll_ws_send` as the socket takes them.
    outbox: Outbox,
    /// A ping arrived and its pong has not gone out yet (v4).
    pong_due: bool,
    /// The client's ping is due and has not gone out yet (v3).
    ping_due: bool,
    actions: VecDeque<ClientAction>,
    timers: TimerTable<Timer, { Timer::COUNT }>,
    jar: CookieJar,
    /// Retries made since the last session opened (or since `connect`).
    retries: u32,
    /// A session has been open since `connect` (the next one is a reconnection).
    had_session: bool,
    /// The latest time seen, for the inputs that take none (`send`).
    now: Instant,
    last_reason: Option<CloseReason>,
    /// WebSockets the client closed that have not ended yet, with the instant they are
    /// dropped at (`write_timeout` after the close).
    lingering: Vec<(RequestId, Instant)>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("authority", &self.config.authority)
            .field("phase", &self.phase)
            .field("queued", &self.outbox.len())
            .field("retries", &self.retries)
            .finish_non_exhaustive()
    }
}

/// Whether processing should go on after a packet.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    Ended,
}

impl Client {
    /// A client for `config`. Nothing happens until [`connect`](Self::connect).
    ///
    /// `seed` feeds the client's only source of randomness (reconnection jitter and the
    /// cache-busting parameter): a binding passes a random value, tests a fixed one so
    /// that every run replays.
    pub fn new(config: ClientConfig, now: Instant, seed: u64) -> Result<Client, ConfigError> {
        config.validate()?;
        // Every URI the client builds is made of these pieces, percent-encoded: check
        // once that they make a valid URI.
        let sid = Sid::from_entropy([0xff; 15]);
        for transport in [Transport::Polling, Transport::WebSocket] {
            if let Err(e) = config.uri(transport, Some(&sid), Some("x")) {
                return Err(ConfigError::InvalidUrl {
                    url: format!("{}{}", config.authority, config.path),
                    reason: e.to_string(),
                });
            }
        }
        Ok(Client {
            config,
            rng: SplitMix64::new(seed),
            next_id: 0,
            phase: Phase::Idle,
            outbox: Outbox::default(),
            pong_due: false,
            ping_due: false,
            actions: VecDeque::new(),
            timers: TimerTable::default(),
            jar: CookieJar::default(),
            retries: 0,
            had_session: false,
            now,
            last_reason: None,
            lingering: Vec::new(),
        })
    }

    // ---------------------------------------------------------------- accessors

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Whether a session is open (and not closing).
    pub fn is_connected(&self) -> bool {
        matches!(&self.phase, Phase::Open(c) if c.closing == Closing::No)
    }

    /// Whether the client has finished: [`close`](Self::close) completed, the connection
    /// ended with no reconnection to follow, or reconnection gave up. Nothing more will
    /// happen until [`connect`](Self::connect) is called again.
    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    /// Whether the client is waiting to retry a connection (between
    /// [`ClientEvent::Reconnecting`] and the attempt).
    pub fn is_reconnecting(&self) -> bool {
        matches!(self.phase, Phase::Waiting)
    }

    /// The open session's handshake.
    pub fn handshake(&self) -> Option<&Handshake> {
        match &self.phase {
            Phase::Open(c) => Some(&c.handshake),
            _ => None,
        }
    }

    /// The open session's id.
    pub fn sid(&self) -> Option<Sid> {
        self.handshake().map(|h| h.sid)
    }

    /// The open session's transport.
    pub fn transport(&self) -> Option<Transport> {
        match &self.phase {
            Phase::Open(c) => Some(match c.link {
                Link::Polling { .. } => Transport::Polling,
                Link::WebSocket { .. } => Transport::WebSocket,
            }),
            _ => None,
        }
    }

    /// Whether an upgrade to WebSocket is in progress.
    pub fn is_upgrading(&self) -> bool {
        matches!(
            &self.phase,
            Phase::Open(c) if matches!(c.link, Link::Polling { upgrade: Some(_), .. })
        )
    }

    /// How many messages wait to be sent.
    pub fn queued(&self) -> usize {
        self.outbox.len()
    }

    /// How many bytes of messages wait to be sent (text in UTF-8, binary as is).
    pub fn queued_bytes(&self) -> usize {
        self.outbox.bytes()
    }

    /// Why the last session ended, once one has.
    pub fn last_close_reason(&self) -> Option<&CloseReason> {
        self.last_reason.as_ref()
    }

    // ---------------------------------------------------------------- outputs

    /// The next thing to do, or `None` when there is nothing until the next input or
    /// [`poll_timeout`](Self::poll_timeout).
    pub fn poll_action(&mut self) -> Option<ClientAction> {
        self.actions.pop_front()
    }

    /// The next deadline: call [`handle_timeout`](Self::handle_timeout) then. `None` when
    /// no timer runs (idle, or closed with no closed WebSocket left to drop).
    pub fn poll_timeout(&self) -> Option<Instant> {
        let linger = self.lingering.iter().map(|(_, at)| *at).min();
        match (self.timers.next(), linger) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next application message to write on WebSocket `ws`, or `None`.
    ///
    /// On WebSocket, messages wait in the client's queue (bounded by
    /// [`max_queued_messages`](ClientConfig::max_queued_messages) and
    /// [`max_queued_bytes`](ClientConfig::max_queued_bytes)) until the binding pulls them
    /// here, which it does only while the socket takes more: a server that stops reading
    /// makes [`send`](Self::send) refuse with [`SendError::QueueFull`] instead of growing a
    /// buffer somewhere. `None` when nothing waits, when `ws` is not the session's
    /// WebSocket, and while actions are pending: drain [`poll_action`](Self::poll_action)
    /// first, its messages go out before these.
    ///
    /// A message pulled is the binding's: if the connection breaks before it is written it
    /// is lost (at most once delivery, as for a POST in flight).
    pub fn poll_ws_send(&mut self, ws: RequestId) -> Option<WsMessage> {
        if !self.actions.is_empty() {
            return None;
        }
        let Phase::Open(conn) = &self.phase else {
            return None;
        };
        match conn.link {
            Link::WebSocket { ws: active } if active == ws => {}
            _ => return None,
        }
        let limit = max_payload(&conn.handshake);
        while let Some(message) = self.outbox.pop_front() {
            // Messages queued while offline were not checked against this server's limit.
            let size = encoded_len(&message, false, self.config.protocol_version);
            if size > limit {
                self.event(ClientEvent::SendFailed(SendError::TooLarge {
                    message,
                    size,
                    limit,
                }));
                continue;
            }
            if self.outbox.is_empty() {
                // A close waiting for the queue goes out now, after this message.
                let now = self.now;
                self.pump_ws(now);
            }
            return Some(self.ws_form(&Packet::Message(message)));
        }
        let now = self.now;
        self.pump_ws(now);
        None
    }

    // ---------------------------------------------------------------- inputs

    /// Starts connecting: the first action is the handshake request (a polling GET, or a
    /// WebSocket connect when [`ClientConfig::transports`] starts with WebSocket). Does
    /// nothing while connecting, connected or reconnecting. After the client closed (or
    /// gave up), it starts afresh: a new handshake, retries counted from zero, and the next
    /// session reported as [`ClientEvent::Connected`].
    pub fn connect(&mut self, now: Instant) {
        self.tick(now);
        if !matches!(self.phase, Phase::Idle | Phase::Closed) {
            return;
        }
        self.retries = 0;
        self.had_session = false;
        self.start_attempt(now);
    }

    /// Hands over the outcome of HTTP request `id`: the response, or the error that
    /// prevented one (connection refused, reset, a body over the request's
    /// [`max_response_body`](HttpRequest::max_response_body)...). Outcomes of requests the
    /// client no longer waits for are ignored.
    pub fn handle_response(
        &mut self,
        now: Instant,
        id: RequestId,
        result: Result<Response, HttpError>,
    ) {
        self.tick(now);
        match &self.phase {
            Phase::Connecting(Attempt::Polling { request }) if *request == id => {
                self.on_handshake_response(now, result);
            }
            Phase::Open(conn) => match conn.link {
                Link::Polling { get: Some(g), .. } if g == id => self.on_get_response(now, result),
                Link::Polling { post: Some(p), .. } if p.id == id => {
                    self.on_post_response(now, p, result)
                }
                _ => {}
            },
            _ => {}
        }
        self.pump(now);
    }

    /// WebSocket `ws` (from a [`ClientAction::WsConnect`]) is open.
    pub fn handle_ws_connected(&mut self, now: Instant, ws: RequestId) {
        self.tick(now);
        if let Some(Link::Polling {
            upgrade: Some(u), ..
        }) = self.link_mut()
            && u.ws == ws
            && u.stage == Stage::Connecting
        {
            u.stage = Stage::Probing;
            self.actions.push_back(ClientAction::WsSend {
                ws,
                message: Packet::Ping { probe: true }.to_ws(),
            });
        }
        // A direct WebSocket handshake now waits for the open packet.
        if let Phase::Connecting(Attempt::WebSocket { ws: w, connected }) = &mut self.phase
            && *w == ws
        {
            *connected = true;
        }
    }

    /// WebSocket `ws` could not be opened.
    pub fn handle_ws_connect_failed(&mut self, now: Instant, ws: RequestId, error: WsConnectError) {
        self.tick(now);
        match &self.phase {
            Phase::Connecting(Attempt::WebSocket { ws: w, .. }) if *w == ws => {
                self.connect_failed(now, error.into_connect_error(), Some(ws));
            }
            Phase::Open(_) if self.upgrade_ws() == Some(ws) => self.abort_upgrade(true),
            _ => {}
        }
        self.pump(now);
    }

    /// A message arrived on WebSocket `ws`.
    pub fn handle_ws_message(&mut self, now: Instant, ws: RequestId, message: WsMessage) {
        self.tick(now);
        match &self.phase {
            Phase::Connecting(Attempt::WebSocket { ws: w, connected }) if *w == ws => {
                if !*connected {
                    // Out of order: a binding reports the connection first.
                    return;
                }
                let limit = self.config.max_handshake_size;
                if message.len() > limit {
                    let size = message.len() as u64;
                    let error = ConnectError::ResponseTooLarge { size, limit };
                    self.connect_failed(now, error, None);
                    return self.pump(now);
                }
                match self.decode_ws(message) {
                    Ok(Packet::Open(hs)) => {
                        self.timers.stop(Timer::Connect);
                        self.open_session(now, *hs, Link::WebSocket { ws });
                    }
                    Ok(other) => self.connect_failed(
                        now,
                        ConnectError::InvalidHandshake(ProtocolError::UnexpectedPacket {
                            packet_type: other.packet_type(),
                            context: "before the open packet",
                        }),
                        None,
                    ),
                    Err(e) => {
                        self.connect_failed(now, ConnectError::InvalidHandshake(e.into()), None)
                    }
                }
            }
            Phase::Open(conn) => match conn.link {
                Link::WebSocket { ws: active } if active == ws => {
                    let (size, limit) = (message.len(), self.config.max_ws_message_size);
                    if size > limit {
                        let _ = self.end(now, CloseReason::PayloadTooLarge { size, limit }, None);
                        return self.pump(now);
                    }
                    let _ = match self.decode_ws(message) {
                        Ok(packet) => self.on_packet(now, packet, "on the WebSocket"),
                        Err(e) => self.end(now, CloseReason::ParseError(e.into()), None),
                    };
                }
                Link::Polling {
                    upgrade: Some(u), ..
                } if u.ws == ws => {
                    let probed = u.stage == Stage::Probing
                        && matches!(self.decode_ws(message), Ok(Packet::Pong { probe: true }));
                    if probed {
                        if let Some(Link::Polling {
                            upgrade: Some(u), ..
                        }) = self.link_mut()
                        {
                            u.stage = Stage::Pausing;
                        }
                    } else {
                        self.abort_upgrade(false);
                    }
                }
                _ => {}
            },
            _ => {}
        }
        self.pump(now);
    }

    /// WebSocket `ws` ended (closed by the server, or failed).
    pub fn handle_ws_closed(&mut self, now: Instant, ws: RequestId, end: TransportEnd) {
        self.tick(now);
        self.lingering.retain(|(w, _)| *w != ws);
        // A message over the library's limit: over the frame limit or the message limit,
        // whichever it passed.
        let too_large = |size: usize, config: &ClientConfig| {
            if size > config.max_ws_message_size {
                config.max_ws_message_size
            } else {
                config.max_ws_frame_size.min(config.max_ws_message_size)
            }
        };
        // After a violation or an oversized message the socket still carries a close
        // frame saying why (1002, 1007, 1009); after a close or an I/O error it is gone.
        let gone = match end {
            TransportEnd::MessageTooLarge { .. } | TransportEnd::Violation(_) => None,
            _ => Some(ws),
        };
        match &self.phase {
            Phase::Connecting(Attempt::WebSocket { ws: w, .. }) if *w == ws => {
                let error = match end {
                    TransportEnd::Closed => ConnectError::Transport(TransportError::Aborted(
                        "the WebSocket closed before the open packet",
                    )),
                    TransportEnd::Error(e) => ConnectError::Transport(e),
                    TransportEnd::MessageTooLarge { size } => ConnectError::ResponseTooLarge {
                        size: size as u64,
                        limit: too_large(size, &self.config),
                    },
                    TransportEnd::Violation(v) => {
                        ConnectError::InvalidHandshake(ProtocolError::WebSocket(v))
                    }
                };
                self.connect_failed(now, error, gone);
            }
            Phase::Open(conn) => match conn.link {
                Link::WebSocket { ws: active } if active == ws => {
                    let reason = match end {
                        TransportEnd::Closed => CloseReason::TransportClose,
                        TransportEnd::Error(e) => CloseReason::TransportError(e),
                        TransportEnd::MessageTooLarge { size } => CloseReason::PayloadTooLarge {
                            size,
                            limit: too_large(size, &self.config),
                        },
                        TransportEnd::Violation(v) => {
                            CloseReason::ParseError(ProtocolError::WebSocket(v))
                        }
                    };
                    let _ = self.end(now, reason, gone);
                }
                Link::Polling {
                    upgrade: Some(u), ..
                } if u.ws == ws => self.abort_upgrade(true),
                _ => {}
            },
            _ => {}
        }
        self.pump(now);
    }

    /// Handles the deadline given by [`poll_timeout`](Self::poll_timeout). Calling it early
    /// or twice does nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.tick(now);
        let mut i = 0;
        while let Some(&(ws, at)) = self.lingering.get(i) {
            if at <= now {
                self.lingering.swap_remove(i);
                self.actions.push_back(ClientAction::WsDrop { ws });
            } else {
                i += 1;
            }
        }
        while let Some((timer, _deadline)) = self.timers.pop_expired(now) {
            match timer {
                Timer::Connect => {
                    let timeout = self.config.request_timeout;
                    self.connect_failed(now, ConnectError::Timeout(timeout), None);
                }
                Timer::Heartbeat => {
                    let _ = self.end(now, CloseReason::PingTimeout, None);
                }
                Timer::Ping => {
                    // v3: the ping goes out with the next POST (or on the WebSocket); the
                    // server has `pingTimeout` to show it is alive.
                    if let Phase::Open(c) = &self.phase {
                        let timeout = c.handshake.ping_timeout;
                        self.ping_due = true;
                        self.arm(Timer::Heartbeat, now, timeout);
                    }
                }
                Timer::Post => {
                    let closing = matches!(
                        self.link(),
                        Some(Link::Polling {
                            post: Some(Post { close: true, .. }),
                            ..
                        })
                    );
                    let reason = if closing {
                        // Our close packet may not have arrived, but we are done.
                        CloseReason::ClientClose
                    } else {
                        CloseReason::TransportError(TransportError::Timeout {
                            request: "polling POST",
                            after: self.config.request_timeout,
                        })
                    };
                    let _ = self.end(now, reason, None);
                }
                Timer::Close => {
                    // The WebSocket did not take the queued messages in time: close anyway
                    // (what is still queued is handed back as `SendFailed`).
                    let _ = self.end(now, CloseReason::ClientClose, None);
                }
                Timer::Upgrade => self.abort_upgrade(false),
                Timer::Reconnect => {
                    if matches!(self.phase, Phase::Waiting) {
                        self.start_attempt(now);
                    }
                }
            }
        }
        self.pump(now);
    }

    // ---------------------------------------------------------------- application

    /// Sends a message, or queues it until it can go.
    ///
    /// While a session is open the message is checked against it: a text message holding
    /// `U+001E` is refused while on polling ([`SendError::RecordSeparator`]; send it as
    /// binary), a message larger than the server's `maxPayload` in the current
    /// transport's encoding (base64 for binary on polling) is refused
    /// ([`SendError::TooLarge`]), and at most
    /// [`max_queued_messages`](ClientConfig::max_queued_messages) messages and
    /// [`max_queued_bytes`](ClientConfig::max_queued_bytes) bytes wait, on every transport
    /// ([`SendError::QueueFull`], whose `limit` is how many messages the queue held when it
    /// refused). While there is no session (connecting, reconnecting) the
    /// [offline policy](ClientConfig::offline) applies, within the same byte bound. After
    /// the client closed, or while it is closing: [`SendError::Closed`].
    ///
    /// `send` takes no time argument: a POST it starts has its timeout counted from the
    /// latest time given to any input.
    pub fn send(&mut self, message: impl Into<Message>) -> Result<(), SendError> {
        let message = message.into();
        let now = self.now;
        match &self.phase {
            Phase::Closed => Err(SendError::Closed(message)),
            Phase::Open(conn) => {
                if conn.closing != Closing::No {
                    return Err(SendError::Closed(message));
                }
                let polling = matches!(conn.link, Link::Polling { .. });
                let version = self.config.protocol_version;
                if polling && version == ProtocolVersion::V4 && !message.fits_polling() {
                    return Err(SendError::RecordSeparator(message));
                }
                let limit = max_payload(&conn.handshake);
                let size = encoded_len(&message, polling, version);
                if size > limit {
                    return Err(SendError::TooLarge {
                        message,
                        size,
                        limit,
                    });
                }
                if let Err(message) = self.enqueue(message, self.config.max_queued_messages) {
                    let limit = self.outbox.len();
                    return Err(SendError::QueueFull { message, limit });
                }
                self.pump(now);
                Ok(())
            }
            Phase::Idle | Phase::Connecting(_) | Phase::Waiting => match self.config.offline {
                OfflinePolicy::Refuse => Err(SendError::Offline(message)),
                OfflinePolicy::Queue { max } => {
                    if self.config.first_transport() == Transport::Polling
                        && self.config.protocol_version == ProtocolVersion::V4
                        && !message.fits_polling()
                    {
                        return Err(SendError::RecordSeparator(message));
                    }
                    if let Err(message) = self.enqueue(message, max) {
                        let limit = self.outbox.len();
                        return Err(SendError::QueueFull { message, limit });
                    }
                    Ok(())
                }
            },
        }
    }

    /// Sends a value serialised as JSON, as a text message; see [`send`](Self::send).
    pub fn send_json<V: serde::Serialize + ?Sized>(&mut self, value: &V) -> Result<(), SendError> {
        let text = serde_json::to_string(value).map_err(|e| SendError::Json(e.to_string()))?;
        self.send(Message::Text(Utf8Bytes::from(text)))
    }

    /// Closes the connection.
    ///
    /// With a session open, queued messages go out first, then the close packet: over
    /// polling in a POST (the client is done when the POST is answered, or after
    /// [`request_timeout`](ClientConfig::request_timeout)), over WebSocket as a message
    /// followed by a close frame (code 1000; if the WebSocket does not take the queued
    /// messages within `request_timeout`, it is closed without them and they are handed
    /// back as [`ClientEvent::SendFailed`]). The session ends with
    /// [`ClientEvent::Disconnected`]\([`CloseReason::ClientClose`]) and no reconnection.
    ///
    /// While connecting or waiting to reconnect, the attempt is abandoned and the client
    /// is closed at once (there is no session, so no `Disconnected` event); queued
    /// messages are handed back as [`ClientEvent::SendFailed`].
    pub fn close(&mut self, now: Instant) {
        self.tick(now);
        match &mut self.phase {
            Phase::Open(conn) => {
                if conn.closing != Closing::No {
                    return;
                }
                conn.closing = Closing::Queued;
                // From here the close is bounded by the request timeout (the close POST's
                // or the WebSocket's), not by the heartbeat: a slow close is still the
                // application's close.
                self.timers.stop(Timer::Heartbeat);
                if matches!(conn.link, Link::WebSocket { .. }) {
                    self.arm(Timer::Close, now, self.config.request_timeout);
                }
                if self.upgrade_ws().is_some() {
                    self.abort_upgrade(false);
                }
            }
            Phase::Connecting(attempt) => {
                let attempt = *attempt;
                self.cancel_attempt(attempt, None);
                self.finish();
            }
            Phase::Idle | Phase::Waiting => self.finish(),
            Phase::Closed => {}
        }
        self.pump(now);
    }

    // ---------------------------------------------------------------- internals

    fn tick(&mut self, now: Instant) {
        self.now = self.now.max(now);
    }

    /// Closes WebSocket `ws`, to be dropped `write_timeout` from now if it has not ended.
    fn close_ws(&mut self, ws: RequestId, code: CloseCode, reason: &'static str) {
        self.actions
            .push_back(ClientAction::WsClose { ws, code, reason });
        self.lingering
            .push((ws, self.now + self.config.write_timeout));
    }

    /// Queues `message` if the queue holds fewer than `max_messages` and the bytes stay
    /// within `max_queued_bytes` (a message alone always fits); hands it back otherwise.
    fn enqueue(&mut self, message: Message, max_messages: usize) -> Result<(), Message> {
        let bytes = self.outbox.bytes().saturating_add(message.len());
        let full = self.outbox.len() >= max_messages
            || (!self.outbox.is_empty() && bytes > self.config.max_queued_bytes);
        if full {
            return Err(message);
        }
        self.outbox.push_back(message);
        Ok(())
    }

    fn next_id(&mut self) -> RequestId {
        self.next_id = self.next_id.wrapping_add(1);
        RequestId(self.next_id)
    }

    fn arm(&mut self, timer: Timer, now: Instant, after: Duration) {
        match now.checked_add(after) {
            Some(at) => self.timers.set(timer, at),
            // Too far to represent: it never fires.
            None => self.timers.stop(timer),
        }
    }

    fn event(&mut self, event: ClientEvent) {
        self.actions.push_back(ClientAction::Event(event));
    }

    fn link(&self) -> Option<Link> {
        match &self.phase {
            Phase::Open(c) => Some(c.link),
            _ => None,
        }
    }

    fn link_mut(&mut self) -> Option<&mut Link> {
        match &mut self.phase {
            Phase::Open(c) => Some(&mut c.link),
            _ => None,
        }
    }

    fn upgrade_ws(&self) -> Option<RequestId> {
        match self.link() {
            Some(Link::Polling {
                upgrade: Some(u), ..
            }) => Some(u.ws),
            _ => None,
        }
    }

    /// Decodes a polling response body in the session's protocol version (for v3, in the
    /// form its `Content-Type` says).
    fn decode_response(&self, response: Response, limit: usize) -> Result<Decoder, DecodeError> {
        match self.config.protocol_version {
            ProtocolVersion::V4 => decode_payload(response.body, limits(limit)).map(Decoder::V4),
            ProtocolVersion::V3 => {
                let format = PayloadFormat::from_content_type(
                    response
                        .headers
                        .get(header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok()),
                );
                v3::decode_payload(response.body, format, limits(limit)).map(Decoder::V3)
            }
        }
    }

    fn decode_ws(&self, message: WsMessage) -> Result<Packet, DecodeError> {
        match self.config.protocol_version {
            ProtocolVersion::V4 => Packet::decode_ws(message),
            ProtocolVersion::V3 => v3::decode_ws(message),
        }
    }

    /// The WebSocket form of an application message.
    fn ws_form(&self, packet: &Packet) -> WsMessage {
        match self.config.protocol_version {
            ProtocolVersion::V4 => packet.to_ws(),
            ProtocolVersion::V3 => v3::to_ws(packet, false),
        }
    }

    /// The headers of every request: the configured ones plus the cookies.
    fn headers(&self) -> HeaderMap {
        let mut h = self.config.headers.clone();
        self.jar.apply(&mut h);
        h
    }

    fn uri(&mut self, transport: Transport, sid: Option<Sid>) -> http::Uri {
        let token = self.config.timestamp_requests.then(|| self.rng.token());
        // `Client::new` checked that these pieces always make a valid URI.
        self.config
            .uri(transport, sid.as_ref(), token.as_deref())
            .unwrap_or_default()
    }

    fn http(&mut self, method: Method, sid: Option<Sid>, body: Bytes) -> RequestId {
        // A long-poll GET carries the server's packets; the handshake and a POST's `ok`
        // are small.
        let max_response_body = if method == Method::GET && sid.is_some() {
            self.config.max_payload
        } else {
            self.config.max_handshake_size
        };
        let id = self.next_id();
        let uri = self.uri(Transport::Polling, sid);
        let mut headers = self.headers();
        if method == Method::POST {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain;charset=UTF-8"),
            );
        }
        self.actions.push_back(ClientAction::HttpRequest {
            id,
            request: HttpRequest {
                method,
                uri,
                headers,
                body,
                max_response_body,
            },
        });
        id
    }

    fn ws_connect(&mut self, sid: Option<Sid>) -> RequestId {
        let id = self.next_id();
        let uri = self.uri(Transport::WebSocket, sid);
        let mut headers = self.headers();
        let deflate = self.config.websocket_deflate;
        if let Some(d) = &deflate
            && let Ok(v) = http::HeaderValue::from_str(&crate::websocket::deflate_offer(d))
        {
            headers.insert(http::header::SEC_WEBSOCKET_EXTENSIONS, v);
        }
        let limits = WsLimits {
            max_message_size: self.config.max_ws_message_size,
            max_frame_size: self.config.max_ws_frame_size,
        };
        self.actions.push_back(ClientAction::WsConnect {
            id,
            uri,
            headers,
            limits,
            deflate,
        });
        id
    }

    /// Starts a connection attempt: a fresh session, nothing kept from an earlier one but
    /// the application's queued messages.
    fn start_attempt(&mut self, now: Instant) {
        self.jar.clear();
        self.pong_due = false;
        self.ping_due = false;
        self.timers.clear();
        let attempt = match self.config.first_transport() {
            Transport::Polling => Attempt::Polling {
                request: self.http(Method::GET, None, Bytes::new()),
            },
            Transport::WebSocket => Attempt::WebSocket {
                ws: self.ws_connect(None),
                connected: false,
            },
        };
        self.phase = Phase::Connecting(attempt);
        self.arm(Timer::Connect, now, self.config.request_timeout);
    }

    fn cancel_attempt(&mut self, attempt: Attempt, gone: Option<RequestId>) {
        match attempt {
            Attempt::Polling { request } if gone != Some(request) => {
                self.actions
                    .push_back(ClientAction::AbortRequest { id: request });
            }
            Attempt::WebSocket { ws, .. } if gone != Some(ws) => {
                self.close_ws(ws, CloseCode::Normal, "");
            }
            _ => {}
        }
    }

    fn on_handshake_response(&mut self, now: Instant, result: Result<Response, HttpError>) {
        let Phase::Connecting(Attempt::Polling { request }) = self.phase else {
            return;
        };
        let limit = self.config.max_handshake_size;
        let response = match result {
            Ok(r) => r,
            Err(HttpError::Transport(e)) => {
                return self.connect_failed(now, ConnectError::Transport(e), Some(request));
            }
            Err(HttpError::BodyTooLarge { size, limit }) => {
                let error = ConnectError::ResponseTooLarge { size, limit };
                return self.connect_failed(now, error, Some(request));
            }
        };
        self.jar.store(&response.headers);
        if response.body.len() > limit {
            // A binding that did not enforce `max_response_body`.
            let size = response.body.len() as u64;
            let error = ConnectError::ResponseTooLarge { size, limit };
            return self.connect_failed(now, error, Some(request));
        }
        if response.status != StatusCode::OK {
            return self.connect_failed(now, ConnectError::refused(&response), Some(request));
        }
        if self.config.protocol_version == ProtocolVersion::V4
            && looks_like_v3_handshake(&response.body)
        {
            let error = ConnectError::InvalidHandshake(ProtocolError::UnexpectedResponse(
                "the server answered in Engine.IO v3 framing (a length prefix before the open packet): it speaks EIO=3 only; set ClientConfig::protocol_version to ProtocolVersion::V3".into(),
            ));
            return self.connect_failed(now, error, Some(request));
        }
        let mut packets = match self.decode_response(response, limit) {
            Ok(p) => p,
            Err(e) => {
                return self.connect_failed(
                    now,
                    ConnectError::InvalidHandshake(e.into()),
                    Some(request),
                );
            }
        };
        let hs = match packets.next() {
            Some(Ok(Packet::Open(hs))) => *hs,
            Some(Ok(other)) => {
                let error = ConnectError::InvalidHandshake(ProtocolError::UnexpectedPacket {
                    packet_type: other.packet_type(),
                    context: "before the open packet",
                });
                return self.connect_failed(now, error, Some(request));
            }
            Some(Err(e)) => {
                return self.connect_failed(
                    now,
                    ConnectError::InvalidHandshake(e.into()),
                    Some(request),
                );
            }
            None => {
                let error = ConnectError::InvalidHandshake(ProtocolError::UnexpectedResponse(
                    "empty handshake response".into(),
                ));
                return self.connect_failed(now, error, Some(request));
            }
        };
        self.timers.stop(Timer::Connect);
        self.open_session(
            now,
            hs,
            Link::Polling {
                get: None,
                post: None,
                upgrade: None,
                upgrade_tried: false,
            },
        );
        // The server may send packets right after the open packet (Node's `initialPacket`).
        for packet in packets {
            let flow = match packet {
                Ok(p) => self.on_packet(now, p, "in a polling response"),
                Err(e) => self.end(now, CloseReason::ParseError(e.into()), None),
            };
            if flow == Flow::Ended {
                return;
            }
        }
    }

    fn open_session(&mut self, now: Instant, hs: Handshake, link: Link) {
        let liveness = hs.ping_interval.saturating_add(hs.ping_timeout);
        self.arm(Timer::Heartbeat, now, liveness);
        if self.config.protocol_version == ProtocolVersion::V3 {
            // v3: the client pings, `pingInterval` after the handshake and after each pong.
            self.arm(Timer::Ping, now, hs.ping_interval);
        }
        self.timers.stop(Timer::Reconnect);
        let event = if self.had_session {
            ClientEvent::Reconnected(hs.clone())
        } else {
            ClientEvent::Connected(hs.clone())
        };
        self.phase = Phase::Open(Box::new(Conn {
            handshake: hs,
            link,
            closing: Closing::No,
        }));
        self.had_session = true;
        self.retries = 0;
        self.event(event);
    }

    fn on_get_response(&mut self, now: Instant, result: Result<Response, HttpError>) {
        let Some(Link::Polling { get, .. }) = self.link_mut() else {
            return;
        };
        let Some(id) = get.take() else { return };
        let closing = matches!(&self.phase, Phase::Open(conn) if conn.closing != Closing::No);
        let failed = match &result {
            Ok(r) => r.status != StatusCode::OK,
            Err(_) => true,
        };
        if closing && failed {
            // We are closing: the server may already have dropped the session and
            // refused this GET. The close POST's answer (or its timeout) ends the session
            // as a client close.
            return;
        }
        let limit = self.config.max_payload;
        let response = match result {
            Ok(r) => r,
            Err(e) => {
                let _ = self.end(now, http_failure(e), Some(id));
                return;
            }
        };
        self.jar.store(&response.headers);
        if response.body.len() > limit {
            let size = response.body.len();
            let _ = self.end(now, CloseReason::PayloadTooLarge { size, limit }, Some(id));
            return;
        }
        if response.status != StatusCode::OK {
            let _ = self.end(now, http_error("polling GET", &response), Some(id));
            return;
        }
        // Why the server ends the session, when the close packet in this answer is not
        // the application's decision (a shutdown, a timeout): then reconnect.
        let server_end = response
            .headers
            .get(crate::server::CLOSE_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(|v| match v {
                "shutdown" => CloseReason::ServerShutdown,
                "ping timeout" => CloseReason::PingTimeout,
                "write timeout" => CloseReason::WriteTimeout,
                _ => CloseReason::TransportError(crate::TransportError::Aborted(
                    "the server ended the session after an error on its side",
                )),
            });
        let packets = match self.decode_response(response, limit) {
            Ok(p) => p,
            Err(e) => {
                let _ = self.end(now, CloseReason::ParseError(e.into()), Some(id));
                return;
            }
        };
        for packet in packets {
            let flow = match packet {
                Ok(Packet::Close) if server_end.is_some() => {
                    let reason = server_end.clone().unwrap_or(CloseReason::ServerClose);
                    self.end(now, reason, None)
                }
                Ok(p) => self.on_packet(now, p, "in a polling response"),
                Err(e) => self.end(now, CloseReason::ParseError(e.into()), None),
            };
            if flow == Flow::Ended {
                return;
            }
        }
    }

    fn on_post_response(&mut self, now: Instant, post: Post, result: Result<Response, HttpError>) {
        if let Some(Link::Polling { post: p, .. }) = self.link_mut() {
            *p = None;
        }
        self.timers.stop(Timer::Post);
        let failure = match result {
            Ok(response) => {
                self.jar.store(&response.headers);
                if response.status == StatusCode::OK {
                    None
                } else {
                    Some(http_error("polling POST", &response))
                }
            }
            Err(e) => Some(http_failure(e)),
        };
        let _ = match failure {
            // Whatever the answer, a close packet sent ends the session.
            _ if post.close => self.end(now, CloseReason::ClientClose, Some(post.id)),
            Some(reason) => self.end(now, reason, Some(post.id)),
            None => Flow::Continue,
        };
    }

    /// A packet from the server on the session's transport.
    fn on_packet(&mut self, now: Instant, packet: Packet, context: &'static str) -> Flow {
        let v3 = self.config.protocol_version == ProtocolVersion::V3;
        if v3 && let Phase::Open(c) = &self.phase {
            // v3: any packet shows the server is alive (engine.io-client 3.x).
            let liveness = c
                .handshake
                .ping_interval
                .saturating_add(c.handshake.ping_timeout);
            self.arm(Timer::Heartbeat, now, liveness);
        }
        match packet {
            Packet::Pong { probe: false } if v3 => {
                if let Phase::Open(c) = &self.phase {
                    let interval = c.handshake.ping_interval;
                    self.arm(Timer::Ping, now, interval);
                }
                Flow::Continue
            }
            // A v3 server does not ping; engine.io-client 3.x ignores one.
            Packet::Ping { probe: false } if v3 => Flow::Continue,
            Packet::Message(m) => {
                self.event(ClientEvent::Message(m));
                Flow::Continue
            }
            Packet::Ping { probe: false } => {
                self.pong_due = true;
                if let Phase::Open(c) = &self.phase
                    && c.closing == Closing::No
                {
                    let liveness = c
                        .handshake
                        .ping_interval
                        .saturating_add(c.handshake.ping_timeout);
                    self.arm(Timer::Heartbeat, now, liveness);
                }
                Flow::Continue
            }
            Packet::Noop => Flow::Continue,
            Packet::Close => self.end(now, CloseReason::ServerClose, None),
            other => {
                let reason = CloseReason::ParseError(ProtocolError::UnexpectedPacket {
                    packet_type: other.packet_type(),
                    context,
                });
                self.end(now, reason, None)
            }
        }
    }

    /// Sends what can be sent: the long-poll GET, the next POST, the upgrade steps, or
    /// everything queued over the WebSocket. Called after every input.
    fn pump(&mut self, now: Instant) {
        let Phase::Open(conn) = &self.phase else {
            return;
        };
        let closing = conn.closing;
        let sid = conn.handshake.sid;
        let offered = conn.handshake.upgrades.contains(&Transport::WebSocket);
        let limit = max_payload(&conn.handshake);
        match conn.link {
            Link::Polling {
                get,
                post,
                upgrade,
                upgrade_tried,
            } => {
                if let Some(u) = upgrade
                    && u.stage == Stage::Pausing
                {
                    if get.is_none() && post.is_none() {
                        self.complete_upgrade(u.ws);
                        self.pump_ws(now);
                    }
                    return;
                }
                // No new long-poll once a close is under way: the server may close the
                // session before it sees the GET, which would then fail for nothing.
                if get.is_none() && closing == Closing::No {
                    let id = self.http(Method::GET, Some(sid), Bytes::new());
                    if let Some(Link::Polling { get, .. }) = self.link_mut() {
                        *get = Some(id);
                    }
                }
                if post.is_none() {
                    let mut dropped = Vec::new();
                    let heartbeat = if self.pong_due {
                        Some(Packet::Pong { probe: false })
                    } else if self.ping_due {
                        Some(Packet::Ping { probe: false })
                    } else {
                        None
                    };
                    let batch = next_batch(
                        Framing::new(self.config.protocol_version),
                        heartbeat,
                        &mut self.outbox,
                        closing == Closing::Queued,
                        limit,
                        &mut dropped,
                    );
                    for e in dropped {
                        self.event(ClientEvent::SendFailed(e));
                    }
                    if let Some(batch) = batch {
                        self.pong_due = false;
                        self.ping_due = false;
                        self.ping_due = false;
                        let id = self.http(Method::POST, Some(sid), batch.body);
                        self.arm(Timer::Post, now, self.config.request_timeout);
                        if let Phase::Open(conn) = &mut self.phase {
                            if batch.close {
                                conn.closing = Closing::Sent;
                            }
                            if let Link::Polling { post, .. } = &mut conn.link {
                                *post = Some(Post {
                                    id,
                                    close: batch.close,
                                });
                            }
                        }
                    }
                }
                if !upgrade_tried
                    && closing == Closing::No
                    && offered
                    && self.config.wants_upgrade()
                {
                    let ws = self.ws_connect(Some(sid));
                    self.arm(Timer::Upgrade, now, self.config.upgrade_timeout);
                    if let Some(Link::Polling {
                        upgrade,
                        upgrade_tried,
                        ..
                    }) = self.link_mut()
                    {
                        *upgrade = Some(Upgrade {
                            ws,
                            stage: Stage::Connecting,
                        });
                        *upgrade_tried = true;
                    }
                }
            }
            Link::WebSocket { .. } => self.pump_ws(now),
        }
    }

    fn pump_ws(&mut self, now: Instant) {
        let Phase::Open(conn) = &self.phase else {
            return;
        };
        let Link::WebSocket { ws } = conn.link else {
            return;
        };
        let closing = conn.closing;
        if std::mem::take(&mut self.pong_due) {
            self.actions.push_back(ClientAction::WsSend {
                ws,
                message: Packet::Pong { probe: false }.to_ws(),
            });
        }
        if std::mem::take(&mut self.ping_due) {
            self.actions.push_back(ClientAction::WsSend {
                ws,
                message: Packet::Ping { probe: false }.to_ws(),
            });
        }
        // Application messages wait in the outbox until the binding pulls them
        // (`poll_ws_send`); the close goes once they are all out.
        if closing == Closing::Queued && self.outbox.is_empty() {
            self.actions.push_back(ClientAction::WsSend {
                ws,
                message: Packet::Close.to_ws(),
            });
            self.close_ws(ws, CloseCode::Normal, "");
            let _ = self.end(now, CloseReason::ClientClose, Some(ws));
        }
    }

    fn complete_upgrade(&mut self, ws: RequestId) {
        self.actions.push_back(ClientAction::WsSend {
            ws,
            message: Packet::Upgrade.to_ws(),
        });
        if let Some(link) = self.link_mut() {
            *link = Link::WebSocket { ws };
        }
        self.timers.stop(Timer::Upgrade);
        self.event(ClientEvent::Upgraded);
    }

    /// Gives up the upgrade in progress and goes on polling. `gone`: the WebSocket already
    /// ended (no close frame to send).
    fn abort_upgrade(&mut self, gone: bool) {
        let Some(Link::Polling { upgrade, .. }) = self.link_mut() else {
            return;
        };
        let Some(u) = upgrade.take() else { return };
        self.timers.stop(Timer::Upgrade);
        if !gone {
            self.close_ws(u.ws, CloseCode::Normal, "upgrade aborted");
        }
    }

    /// Ends the open session: drops what is in flight, reports the reason, then
    /// reconnects or finishes. `gone` names a request or WebSocket that already ended.
    fn end(&mut self, now: Instant, reason: CloseReason, gone: Option<RequestId>) -> Flow {
        let phase = std::mem::replace(&mut self.phase, Phase::Closed);
        let Phase::Open(conn) = phase else {
            self.phase = phase;
            return Flow::Ended;
        };
        let (code, text) = match reason {
            CloseReason::ParseError(ProtocolError::WebSocket(WsViolation::InvalidUtf8)) => {
                (CloseCode::InvalidPayload, "invalid UTF-8")
            }
            CloseReason::ParseError(_) => (CloseCode::Protocol, "parse error"),
            CloseReason::PayloadTooLarge { .. } => (CloseCode::TooBig, "payload too large"),
            CloseReason::PingTimeout => (CloseCode::Normal, "ping timeout"),
            _ => (CloseCode::Normal, ""),
        };
        let close_ws = |client: &mut Self, ws: RequestId| {
            if gone != Some(ws) {
                client.close_ws(ws, code, text);
            }
        };
        match conn.link {
            Link::Polling {
                get, post, upgrade, ..
            } => {
                for id in get.into_iter().chain(post.map(|p| p.id)) {
                    if gone != Some(id) {
                        self.actions.push_back(ClientAction::AbortRequest { id });
                    }
                }
                if let Some(u) = upgrade {
                    close_ws(self, u.ws);
                }
            }
            Link::WebSocket { ws } => close_ws(self, ws),
        }
        self.timers.clear();
        self.pong_due = false;
        self.ping_due = false;
        self.last_reason = Some(reason.clone());
        let reconnect = self.config.reconnect.is_some()
            && !matches!(reason, CloseReason::ClientClose | CloseReason::ServerClose);
        self.event(ClientEvent::Disconnected(reason));
        if reconnect {
            // Unsent messages wait for the next session, within the offline policy.
            let keep = match self.config.offline {
                OfflinePolicy::Queue { max } => max,
                OfflinePolicy::Refuse => 0,
            };
            let overflow = self.outbox.truncate(keep, self.config.max_queued_bytes);
            for message in overflow {
                let error = match self.config.offline {
                    OfflinePolicy::Queue { max } => SendError::QueueFull {
                        message,
                        limit: max,
                    },
                    OfflinePolicy::Refuse => SendError::Offline(message),
                };
                self.event(ClientEvent::SendFailed(error));
            }
            self.schedule_retry(now);
        } else {
            self.finish();
        }
        Flow::Ended
    }

    /// A connection attempt failed: report it, then retry or finish.
    fn connect_failed(&mut self, now: Instant, error: ConnectError, gone: Option<RequestId>) {
        let Phase::Connecting(attempt) = self.phase else {
            return;
        };
        self.cancel_attempt(attempt, gone);
        self.timers.clear();
        self.event(ClientEvent::ConnectFailed { error });
        if self.config.reconnect.is_some() {
            self.schedule_retry(now);
        } else {
            self.finish();
        }
    }

    fn schedule_retry(&mut self, now: Instant) {
        let Some(rc) = self.config.reconnect.clone() else {
            return self.finish();
        };
        if rc.max_attempts.is_some_and(|max| self.retries >= max) {
            let attempts = self.retries;
            self.event(ClientEvent::ReconnectFailed { attempts });
            return self.finish();
        }
        self.retries = self.retries.saturating_add(1);
        let delay = backoff(&rc, self.retries, &mut self.rng);
        self.phase = Phase::Waiting;
        self.event(ClientEvent::Reconnecting {
            attempt: self.retries,
            delay,
        });
        self.arm(Timer::Reconnect, now, delay);
        if self.timers.next().is_none() {
            // A delay too long to represent: never retry.
            self.event(ClientEvent::ReconnectFailed {
                attempts: self.retries,
            });
            self.finish();
        }
    }

    /// The client is done: no timer, nothing queued.
    fn finish(&mut self) {
        self.phase = Phase::Closed;
        self.timers.clear();
        self.pong_due = false;
        self.ping_due = false;
        for message in self.outbox.take_all() {
            self.event(ClientEvent::SendFailed(SendError::Closed(message)));
        }
    }
}

/// Decoding limits for a body the client already bounded by `max_bytes`.
fn limits(max_bytes: usize) -> PayloadLimits {
    PayloadLimits {
        max_bytes,
        max_packets: usize::MAX,
    }
}

/// The server's `maxPayload` (no limit when it sent none).
fn max_payload(hs: &Handshake) -> usize {
    hs.max_payload
        .map_or(usize::MAX, |m| usize::try_from(m).unwrap_or(usize::MAX))
}

/// A message's size as sent: in a polling payload (`4text`, `b<base64>`) or as a
/// WebSocket message (`4text`, raw binary).
fn encoded_len(message: &Message, polling: bool, version: ProtocolVersion) -> usize {
    // v3 adds a type digit to binary (`b4<base64>`, a `0x04` byte on WebSocket).
    let v3 = usize::from(version == ProtocolVersion::V3);
    match message {
        Message::Text(t) => t.len().saturating_add(1),
        Message::Binary(b) if polling => {
            1 + v3 + base64::encoded_len(b.len(), true).unwrap_or(usize::MAX - 2)
        }
        Message::Binary(b) => b.len().saturating_add(v3),
    }
}

/// Whether a handshake body is in v3 framing (`<digits>:0{`): a v3-only server answering
/// a v4 client.
fn looks_like_v3_handshake(body: &[u8]) -> bool {
    let digits = body.iter().take_while(|b| b.is_ascii_digit()).count();
    digits > 0 && body.get(digits..digits + 3) == Some(b":0{")
}

/// A polling body's packets, in either protocol version.
enum Decoder {
    V4(PayloadDecoder),
    V3(v3::PayloadDecoder),
}

impl Iterator for Decoder {
    type Item = Result<Packet, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Decoder::V4(d) => d.next(),
            Decoder::V3(d) => d.next(),
        }
    }
}

/// A polling request answered with an HTTP error status.
fn http_error(request: &'static str, response: &Response) -> CloseReason {
    let body = super::action::error_body(&response.body);
    CloseReason::TransportError(TransportError::Http {
        request,
        status: response.status,
        code: body.code,
        message: body.message,
        detail: body.detail,
    })
}

/// A polling request that produced no usable response.
fn http_failure(error: HttpError) -> CloseReason {
    match error {
        HttpError::Transport(e) => CloseReason::TransportError(e),
        HttpError::BodyTooLarge { size, limit } => CloseReason::PayloadTooLarge {
            size: usize::try_from(size).unwrap_or(usize::MAX),
            limit,
        },
    }
}
