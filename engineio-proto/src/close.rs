//! Why sessions end, and errors shared by the server and the client.

use crate::error::DecodeError;
use crate::packet::{Message, PacketType};
use crate::transport_error::TransportError;

/// Why a session (server side) or a connection (client side) ended.
///
/// The union of the reasons Node `engine.io` and python-engineio report, plus the ones they
/// leave implicit (payload too large, upgrade failure, shutdown).
///
/// | reason | Node | python-engineio |
/// |---|---|---|
/// | [`ServerClose`](Self::ServerClose) | `forced close` | `SERVER_DISCONNECT` |
/// | [`ClientClose`](Self::ClientClose) | `transport close` (close packet) | `CLIENT_DISCONNECT` |
/// | [`PingTimeout`](Self::PingTimeout) | `ping timeout` | `PING_TIMEOUT` |
/// | [`TransportClose`](Self::TransportClose) | `transport close` | `TRANSPORT_CLOSE` |
/// | [`TransportError`](Self::TransportError) | `transport error` | `TRANSPORT_ERROR` |
/// | [`ParseError`](Self::ParseError) | `parse error` | (logged, `TRANSPORT_ERROR`) |
/// | [`PayloadTooLarge`](Self::PayloadTooLarge) | `transport error` (WS 1009) | (silent) |
/// | [`WriteTimeout`](Self::WriteTimeout) | – | – |
/// | [`ServerShutdown`](Self::ServerShutdown) | `server shutting down` | – |
///
/// A failed upgrade does not end a session (it goes on over polling): it is reported as
/// [`Event::UpgradeFailed`](crate::server::Event::UpgradeFailed) with an [`UpgradeFailure`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CloseReason {
    /// The server side closed the session (the application called `close`).
    #[error("closed by the server")]
    ServerClose,
    /// The client side closed the session, with a close packet or by disconnecting cleanly.
    #[error("closed by the client")]
    ClientClose,
    /// The peer stopped answering the heartbeat in time.
    #[error("ping timeout: no heartbeat from the peer in time")]
    PingTimeout,
    /// The transport closed cleanly without a close packet: a WebSocket close frame
    /// (a reset or a WebSocket dropped without one is a
    /// [`TransportError`](Self::TransportError)).
    #[error("transport closed")]
    TransportClose,
    /// The transport failed (reset, I/O error, HTTP error, request timeout...).
    #[error("transport error: {0}")]
    TransportError(TransportError),
    /// The peer sent something that is not valid Engine.IO.
    #[error("parse error: {0}")]
    ParseError(ProtocolError),
    /// The peer sent a message or payload over the size limit (`max_payload`).
    #[error("payload of {size} bytes is over the limit of {limit} bytes")]
    PayloadTooLarge {
        /// Size received, in bytes (at least `limit + 1`; a binding may stop reading early).
        size: usize,
        /// The limit, in bytes.
        limit: usize,
    },
    /// The peer took nothing of what was written to it for `write_timeout`: it stopped
    /// reading.
    #[error("write timeout: the peer stopped reading")]
    WriteTimeout,
    /// The server is shutting down and closed every session.
    #[error("server shutting down")]
    ServerShutdown,
}

/// How the peer broke the protocol (the detail of [`CloseReason::ParseError`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// Bytes that do not decode as Engine.IO packets.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A well-formed packet that the peer may not send at this point (for example a ping
    /// from a v4 client, which is the wrong heartbeat direction).
    #[error("unexpected {packet_type:?} packet {context}")]
    UnexpectedPacket {
        /// The packet's type.
        packet_type: PacketType,
        /// Where it arrived.
        context: &'static str,
    },
    /// A second long-poll GET arrived while one was parked.
    #[error("a second polling GET arrived while one was pending")]
    DuplicateGet,
    /// A second POST arrived while one was being received.
    #[error("a second polling POST arrived while one was in flight")]
    DuplicatePost,
    /// A POST declared `Content-Type: application/octet-stream` (Engine.IO v3 binary
    /// payloads, not part of v4).
    #[error("binary (application/octet-stream) polling bodies are Engine.IO v3, not v4")]
    BinaryPayload,
    /// The peer answered in a way the protocol does not allow (client side: an HTTP error
    /// status, an unexpected body).
    #[error("{0}")]
    UnexpectedResponse(String),
    /// The peer broke the WebSocket protocol itself (framing, control frames, UTF-8).
    #[error("WebSocket protocol violation: {0}")]
    WebSocket(WsViolation),
}

/// How a peer broke the WebSocket protocol (RFC 6455), as the binding's WebSocket library
/// reports it. The session answers with a close frame: 1007 for
/// [`InvalidUtf8`](Self::InvalidUtf8), 1002 for the others (RFC 6455, section 7.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WsViolation {
    /// A frame from a client was not masked.
    #[error("unmasked frame from a client")]
    UnmaskedFrame,
    /// A frame set reserved bits (RSV1-3) that no extension defines.
    #[error("reserved bits set without an extension")]
    ReservedBits,
    /// A frame used a reserved opcode.
    #[error("reserved opcode")]
    ReservedOpcode,
    /// A control frame was fragmented, too long (over 125 bytes) or malformed.
    #[error("malformed control frame")]
    BadControlFrame,
    /// A continuation frame without a message to continue, or a new message before the
    /// previous one ended.
    #[error("bad message fragmentation")]
    BadFragmentation,
    /// A text message was not valid UTF-8.
    #[error("text message is not valid UTF-8")]
    InvalidUtf8,
    /// Another violation (the library's detail is in the log).
    #[error("malformed frame")]
    Other,
}

/// Why an upgrade from polling to WebSocket failed. The session goes on over polling.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UpgradeFailure {
    /// The client did not finish the upgrade (probe and `5`) within `upgrade_timeout`.
    #[error("the upgrade did not complete within the upgrade timeout")]
    Timeout,
    /// The WebSocket closed or failed before the upgrade completed.
    #[error("the WebSocket closed before the upgrade completed")]
    WebSocketClosed,
    /// The client sent something other than the probe (`2probe`) then `5`.
    #[error("unexpected packet during the upgrade")]
    UnexpectedPacket,
    /// A message over `max_payload` arrived during the upgrade.
    #[error("message over the size limit during the upgrade")]
    TooLarge,
    /// The session was closed (by the server) while upgrading.
    #[error("the session closed during the upgrade")]
    SessionClosed,
}

/// How a WebSocket ended, as a binding reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportEnd {
    /// The WebSocket closed cleanly: the peer's close frame, or the end of the stream
    /// after the closing handshake.
    Closed,
    /// Reading or writing failed, or the connection was reset or dropped without a close
    /// frame ([`TransportError::Reset`]).
    Error(TransportError),
    /// The WebSocket library refused a message or frame over its size limit.
    MessageTooLarge {
        /// Bytes received before the library gave up (at least the limit).
        size: usize,
    },
    /// The peer broke the WebSocket protocol; the socket can still carry a close frame.
    Violation(WsViolation),
}

/// A message could not be sent.
///
/// The message is handed back, so nothing is lost silently.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The session or connection is closed (or closing).
    #[error("the session is closed")]
    Closed(Message),
    /// The outgoing queue holds its maximum number of packets (`max_buffered_packets`):
    /// the peer is not reading fast enough. Retry later or close the session.
    #[error("outgoing queue full ({limit} packets): the peer is not reading fast enough")]
    QueueFull {
        /// The message that was not queued.
        message: Message,
        /// The queue's limit.
        limit: usize,
    },
    /// There is no session right now (the client is connecting or waiting to reconnect)
    /// and its offline policy refuses messages meanwhile
    /// ([`OfflinePolicy::Refuse`](crate::client::OfflinePolicy::Refuse)).
    #[error("not connected, and the offline policy refuses messages until a session is open")]
    Offline(Message),
    /// The message is larger than the peer accepts (client side: the server's
    /// `maxPayload`).
    #[error("message of {size} bytes is over the peer's limit of {limit} bytes")]
    TooLarge {
        /// The message that was not sent.
        message: Message,
        /// Its size in bytes as encoded.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A text message holds `U+001E`, which long-polling cannot carry; send it as binary.
    #[error(
        "text message contains U+001E, which HTTP long-polling cannot carry; send it as binary"
    )]
    RecordSeparator(Message),
    /// The value could not be serialised to JSON.
    #[error("could not serialise the message to JSON: {0}")]
    Json(String),
}

impl SendError {
    /// The message that was not sent, if there is one.
    pub fn into_message(self) -> Option<Message> {
        match self {
            SendError::Closed(m)
            | SendError::Offline(m)
            | SendError::QueueFull { message: m, .. }
            | SendError::TooLarge { message: m, .. }
            | SendError::RecordSeparator(m) => Some(m),
            SendError::Json(_) => None,
        }
    }
}
