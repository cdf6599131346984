//! Conversions between tungstenite's messages and the protocol's, shared by the server
//! and client drivers.

use std::io;

use bytes::Bytes;
use engineio_proto::{IoError, TransportEnd, TransportError, Utf8Bytes, WsMessage, WsViolation};

/// What a received WebSocket message means to a driver.
pub(crate) enum Incoming {
    /// A data message for the protocol.
    Data(WsMessage),
    /// The peer's close frame.
    Close,
    /// A WebSocket ping: its pong is queued by tungstenite and needs a flush.
    Ping,
    /// Nothing to do.
    Ignore,
}

pub(crate) fn from_tungstenite(message: tungstenite::Message) -> Incoming {
    match message {
        tungstenite::Message::Text(t) => {
            // SAFETY: tungstenite validated the text message as UTF-8.
            #[allow(unsafe_code)]
            let text = unsafe { Utf8Bytes::from_bytes_unchecked(Bytes::from(t)) };
            Incoming::Data(WsMessage::Text(text))
        }
        tungstenite::Message::Binary(b) => Incoming::Data(WsMessage::Binary(b)),
        tungstenite::Message::Close(_) => Incoming::Close,
        tungstenite::Message::Ping(_) => Incoming::Ping,
        tungstenite::Message::Pong(_) | tungstenite::Message::Frame(_) => Incoming::Ignore,
    }
}

pub(crate) fn to_tungstenite(message: WsMessage) -> tungstenite::Message {
    match message {
        WsMessage::Text(t) => {
            // SAFETY: engineio_proto::Utf8Bytes only holds valid UTF-8.
            #[allow(unsafe_code)]
            let text = unsafe { tungstenite::Utf8Bytes::from_bytes_unchecked(t.into_bytes()) };
            tungstenite::Message::Text(text)
        }
        WsMessage::Binary(b) => tungstenite::Message::Binary(b),
    }
}

/// How a stream error ends a WebSocket, for the state machines. The end of a closing
/// handshake is a clean close; a reset, a broken pipe, the end of the stream without a
/// close frame (RFC 6455's abnormal closure, 1006) are [`TransportError::Reset`]; a
/// message over the size limit is `MessageTooLarge`; the peer breaking the framing is a
/// violation; any other failure is an error with its source.
pub(crate) fn transport_end(e: tungstenite::Error) -> TransportEnd {
    use tungstenite::error::{CapacityError, Error, ProtocolError as P};
    match e {
        Error::ConnectionClosed | Error::AlreadyClosed => TransportEnd::Closed,
        Error::Capacity(CapacityError::MessageTooLong { size, .. }) => {
            TransportEnd::MessageTooLarge { size }
        }
        Error::Utf8(_) => TransportEnd::Violation(WsViolation::InvalidUtf8),
        Error::Protocol(P::ResetWithoutClosingHandshake) => TransportEnd::Error(
            TransportError::Reset(IoError::new(io::ErrorKind::UnexpectedEof, e)),
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
        Error::Io(e) if is_reset(e.kind()) => {
            TransportEnd::Error(TransportError::Reset(IoError::from(e)))
        }
        Error::Io(e) => TransportEnd::Error(TransportError::Io(IoError::from(e))),
        other => TransportEnd::Error(TransportError::Io(IoError::new(
            io::ErrorKind::InvalidData,
            other,
        ))),
    }
}

/// Whether an I/O error means the connection was reset or dropped.
pub(crate) fn is_reset(kind: io::ErrorKind) -> bool {
    matches!(
        kind,
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof
    )
}
