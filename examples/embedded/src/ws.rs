//! WebSockets for both examples: conversions between tungstenite's messages and errors
//! and engineio-proto's, and [`Link`], a WebSocket over a non-blocking stream that reports
//! to a state machine. They move frames; the protocol's decisions stay in the machines.

use std::io::{self, Read, Write};
use std::time::Instant;

use bytes::Bytes;
use engineio_proto::client::Client;
use engineio_proto::server::Session;
use engineio_proto::{IoError, RequestId, TransportEnd, TransportError};
use engineio_proto::{Utf8Bytes, WsMessage, WsViolation};
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Message, WebSocket};

/// A protocol message as tungstenite sends it.
pub fn to_tungstenite(message: WsMessage) -> tungstenite::Message {
    match message {
        WsMessage::Text(text) => {
            let bytes = text.into_bytes();
            // Valid UTF-8 already; tungstenite checks again rather than trust it unsafely.
            match tungstenite::Utf8Bytes::try_from(bytes.clone()) {
                Ok(text) => tungstenite::Message::Text(text),
                Err(_) => tungstenite::Message::Binary(bytes),
            }
        }
        WsMessage::Binary(bytes) => tungstenite::Message::Binary(bytes),
    }
}

/// A received data message for the protocol; `None` for control frames (tungstenite
/// answers pings and closes itself).
pub fn from_tungstenite(message: tungstenite::Message) -> Option<WsMessage> {
    match message {
        tungstenite::Message::Text(text) => Utf8Bytes::try_from(Bytes::from(text))
            .ok()
            .map(WsMessage::Text),
        tungstenite::Message::Binary(bytes) => Some(WsMessage::Binary(bytes)),
        _ => None,
    }
}

/// Whether a tungstenite error only says that the socket would block.
pub fn would_block(error: &tungstenite::Error) -> bool {
    matches!(error, tungstenite::Error::Io(e) if e.kind() == io::ErrorKind::WouldBlock)
}

/// How a WebSocket ended, for the state machines (the same classification as the
/// bindings' `engineio-hyper/src/ws.rs`): a completed close is `Closed`; a reset or an
/// end without a close frame is `TransportError::Reset`; a message over the limit is
/// `MessageTooLarge`; broken framing is a `Violation`.
pub fn transport_end(error: tungstenite::Error) -> TransportEnd {
    use tungstenite::error::{CapacityError, Error, ProtocolError as P};
    match error {
        Error::ConnectionClosed | Error::AlreadyClosed => TransportEnd::Closed,
        Error::Capacity(CapacityError::MessageTooLong { size, .. }) => {
            TransportEnd::MessageTooLarge { size }
        }
        Error::Utf8(_) => TransportEnd::Violation(WsViolation::InvalidUtf8),
        Error::Protocol(P::ResetWithoutClosingHandshake) => TransportEnd::Error(
            TransportError::Reset(IoError::new(io::ErrorKind::UnexpectedEof, error)),
        ),
        Error::Protocol(p) => TransportEnd::Violation(match p {
            P::UnmaskedFrameFromClient => WsViolation::UnmaskedFrame,
            P::NonZeroReservedBits => WsViolation::ReservedBits,
            P::UnknownControlFrameType(_) | P::UnknownDataFrameType(_) | P::InvalidOpcode(_) => {
                WsViolation::ReservedOpcode
            }
            P::FragmentedControlFrame | P::ControlFrameTooBig | P::InvalidCloseSequence => {
                WsViolation::BadControlFrame
            }
            P::UnexpectedContinueFrame | P::ExpectedFragment(_) => WsViolation::BadFragmentation,
            _ => WsViolation::Other,
        }),
        Error::Io(e) => TransportEnd::Error(io_error(e)),
        other => TransportEnd::Error(TransportError::Io(IoError::new(
            io::ErrorKind::InvalidData,
            other,
        ))),
    }
}

/// An I/O error as a transport failure: a reset when the peer went away.
pub fn io_error(e: io::Error) -> TransportError {
    use io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset, UnexpectedEof};
    match e.kind() {
        ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof => {
            TransportError::Reset(IoError::from(e))
        }
        _ => TransportError::Io(IoError::from(e)),
    }
}

/// The state machine a [`Link`] reports to: the server's `Session` or the client's
/// `Client`, whose `handle_ws_*` inputs these call.
pub trait Machine {
    /// A data message arrived on WebSocket `ws`.
    fn ws_message(&mut self, now: Instant, ws: RequestId, message: WsMessage);
    /// WebSocket `ws` ended.
    fn ws_closed(&mut self, now: Instant, ws: RequestId, end: TransportEnd);
    /// WebSocket `ws` stopped taking writes (the server's session holds its messages;
    /// the client needs nothing: it is pulled from only while the socket takes more).
    fn ws_write_blocked(&mut self, _now: Instant, _ws: RequestId) {}
    /// WebSocket `ws` takes writes again.
    fn ws_writable(&mut self, _now: Instant, _ws: RequestId) {}
}

impl Machine for Session {
    fn ws_message(&mut self, now: Instant, ws: RequestId, message: WsMessage) {
        self.handle_ws_message(now, ws, message);
    }
    fn ws_closed(&mut self, now: Instant, ws: RequestId, end: TransportEnd) {
        self.handle_ws_closed(now, ws, end);
    }
    fn ws_write_blocked(&mut self, now: Instant, ws: RequestId) {
        self.handle_ws_write_blocked(now, ws);
    }
    fn ws_writable(&mut self, now: Instant, ws: RequestId) {
        self.handle_ws_writable(now, ws);
    }
}

impl Machine for Client {
    fn ws_message(&mut self, now: Instant, ws: RequestId, message: WsMessage) {
        self.handle_ws_message(now, ws, message);
    }
    fn ws_closed(&mut self, now: Instant, ws: RequestId, end: TransportEnd) {
        self.handle_ws_closed(now, ws, end);
    }
}

/// The WebSocket configuration of a server whose `max_payload` is given: messages just
/// over it reach the session (which closes with 1009 and a typed reason), tungstenite
/// cuts off anything larger itself; a write buffer of 0, as [`Link`] expects.
pub fn server_config(max_payload: usize) -> WebSocketConfig {
    let limit = Some(max_payload.saturating_add(1));
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_message_size(limit)
        .max_frame_size(limit)
}

/// Frames a [`Link`] reads in one call: between two batches the driver drains its
/// machine, so a peer that sends faster than the driver works cannot pile up events.
pub const READ_BATCH: usize = 64;

/// What the driver does with a [`Link`] after an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Status {
    /// Keep it (it may still be closing).
    Open,
    /// Keep it, and read it again once the machine's actions are drained: a whole
    /// batch was read and more may be waiting.
    More,
    /// It is finished: drop it (its end was reported).
    Gone,
}

/// A WebSocket over a non-blocking stream, as the examples' drivers hold it: frames are
/// written as they come (tungstenite keeps what the stream did not take), reading
/// stops while the stream takes no writes (so a peer that does not read is pushed back
/// on), and every change is reported to the state machine exactly once. It decides
/// nothing: what to send and when to close come from the machine.
#[derive(Debug)]
pub struct Link<S> {
    ws: WebSocket<S>,
    /// The id the state machine names the socket by.
    pub id: RequestId,
    /// The last write would block (the machine was told).
    blocked: bool,
    /// The machine was told the socket ended.
    reported: bool,
    /// Frames may be written: not after a close frame, sent or received.
    writable: bool,
    /// Frames may be read: not after a violation (only our close frame is left to send).
    readable: bool,
    /// After a violation our close frame went out and the write side is shut down: what
    /// the peer still sends is discarded until it closes too.
    draining: bool,
}

/// A stream whose write side can be shut down (TCP's FIN), so that a peer learns that
/// nothing more comes even while it is still sending.
pub trait ShutdownWrite {
    /// Shuts the write side down.
    fn shutdown_write(&mut self) -> io::Result<()>;
}

impl ShutdownWrite for mio::net::TcpStream {
    fn shutdown_write(&mut self) -> io::Result<()> {
        self.shutdown(std::net::Shutdown::Write)
    }
}

impl<S: ShutdownWrite> ShutdownWrite for crate::Prefixed<S> {
    fn shutdown_write(&mut self) -> io::Result<()> {
        self.stream.shutdown_write()
    }
}

impl<S: Read + Write + ShutdownWrite> Link<S> {
    /// A link over an open WebSocket. Its write buffer should be 0 (every frame goes to
    /// the stream at once, or waits in tungstenite while the stream takes nothing).
    pub fn new(ws: WebSocket<S>, id: RequestId) -> Self {
        Link {
            ws,
            id,
            blocked: false,
            reported: false,
            writable: true,
            readable: true,
            draining: false,
        }
    }

    /// The stream.
    pub fn get_mut(&mut self) -> &mut S {
        self.ws.get_mut()
    }

    /// Whether the stream takes writes (the last write or flush did not block).
    pub fn takes_writes(&self) -> bool {
        self.writable && !self.blocked
    }

    /// Writes a frame (a close frame ends writing).
    pub fn write(&mut self, now: Instant, m: &mut impl Machine, frame: Message) -> Status {
        if !self.writable {
            return Status::Open;
        }
        self.writable = !matches!(frame, Message::Close(_));
        let written = self.ws.write(frame).and_then(|()| self.ws.flush());
        self.written(now, m, written)
    }

    /// Writes what tungstenite holds (call when the stream is writable again).
    pub fn flush(&mut self, now: Instant, m: &mut impl Machine) -> Status {
        let flushed = self.ws.flush();
        self.written(now, m, flushed)
    }

    fn written(
        &mut self,
        now: Instant,
        m: &mut impl Machine,
        r: tungstenite::Result<()>,
    ) -> Status {
        match r {
            Ok(()) => {
                if std::mem::replace(&mut self.blocked, false) {
                    m.ws_writable(now, self.id);
                }
                if !self.readable && !self.writable && !self.draining {
                    // Our close frame after a violation is out: no reply will be read, so
                    // end the stream (dropping it with unread data would reset it, and
                    // the peer could lose the close frame).
                    self.draining = true;
                    if self.ws.get_mut().shutdown_write().is_err() {
                        return Status::Gone;
                    }
                }
                Status::Open
            }
            Err(e) if would_block(&e) => {
                self.blocked = true;
                m.ws_write_blocked(now, self.id);
                Status::Open
            }
            Err(e) => self.end(now, m, e),
        }
    }

    /// Reads up to [`READ_BATCH`] frames, handing data to the machine ([`Status::More`]
    /// when there may be more). A link that takes no writes is not read unless `asked`
    /// (the server's `ReadWebSocket`).
    pub fn read(&mut self, now: Instant, m: &mut impl Machine, asked: bool) -> Status {
        if self.draining {
            return self.discard();
        }
        for _ in 0..READ_BATCH {
            if !self.readable || (self.blocked && !asked) {
                return Status::Open;
            }
            match self.ws.read() {
                Ok(Message::Close(_)) => {
                    // tungstenite answers it; the stream ends once that is written.
                    self.writable = false;
                    if !std::mem::replace(&mut self.reported, true) {
                        m.ws_closed(now, self.id, TransportEnd::Closed);
                    }
                }
                Ok(frame) => {
                    if let Some(message) = from_tungstenite(frame) {
                        m.ws_message(now, self.id, message);
                    }
                }
                Err(e) if would_block(&e) => return Status::Open,
                Err(e) => return self.end(now, m, e),
            }
        }
        Status::More
    }

    /// Reads and drops what the peer still sends, until it closes.
    fn discard(&mut self) -> Status {
        let mut buf = [0u8; 4096];
        loop {
            match self.ws.get_mut().read(&mut buf) {
                Ok(0) => return Status::Gone,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Status::Open,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Status::Gone,
            }
        }
    }

    /// The stream failed or finished. After a violation or an oversized message it stays
    /// for the close frame the machine sends; otherwise it is gone.
    fn end(&mut self, now: Instant, m: &mut impl Machine, e: tungstenite::Error) -> Status {
        let end = transport_end(e);
        self.readable = false;
        let keep = matches!(
            end,
            TransportEnd::Violation(_) | TransportEnd::MessageTooLarge { .. }
        );
        if !std::mem::replace(&mut self.reported, true) {
            m.ws_closed(now, self.id, end);
        }
        if keep { Status::Open } else { Status::Gone }
    }
}
