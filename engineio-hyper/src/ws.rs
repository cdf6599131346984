//! Conversions between tungstenite's messages and the protocol's, shared by the server
//! and client drivers.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use engineio_proto::{TransportEnd, Utf8Bytes, WsMessage};
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;

use crate::runtime::WebSocketIo;

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

pub(crate) fn transport_end(e: tungstenite::Error) -> TransportEnd {
    use tungstenite::error::{CapacityError, Error};
    match e {
        Error::ConnectionClosed | Error::AlreadyClosed => TransportEnd::Closed,
        Error::Capacity(CapacityError::MessageTooLong { size, .. }) => {
            TransportEnd::MessageTooLarge { size }
        }
        Error::Protocol(tungstenite::error::ProtocolError::ResetWithoutClosingHandshake) => {
            TransportEnd::Closed
        }
        Error::Io(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::UnexpectedEof
            ) =>
        {
            TransportEnd::Closed
        }
        other => TransportEnd::Error(other.to_string()),
    }
}

/// Queues a close frame, if the sink takes it now (a sink that is not ready is being
/// dropped anyway).
pub(crate) fn send_close<W: WebSocketIo>(
    cx: &mut Context<'_>,
    ws: &mut W,
    code: u16,
    reason: &'static str,
) {
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: reason.into(),
    };
    if let Poll::Ready(Ok(())) = Pin::new(&mut *ws).poll_ready(cx) {
        let _ = Pin::new(&mut *ws).start_send(tungstenite::Message::Close(Some(frame)));
    }
}
