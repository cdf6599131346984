//! The framing backend on tungstenite (tokio-tungstenite over tokio's I/O traits): the
//! baseline of the comparison, with every knob set.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use engineio_proto::{Utf8Bytes, WsViolation};
use futures_core::Stream;
use futures_sink::Sink;
use tokio_tungstenite::WebSocketStream;
use tungstenite::Message;
use tungstenite::protocol::{CloseFrame as TCloseFrame, WebSocketConfig};

use super::{BoxStream, CloseFrame, Frame, Role, WsConfig, WsError};

/// Whether this backend compresses (permessage-deflate): when not, the server and the
/// client leave `websocket_deflate` off rather than agree to what they cannot do.
pub(super) const DEFLATE: bool = false;

pub(super) struct Inner(WebSocketStream<BoxStream>);

impl Inner {
    pub(super) fn new(stream: BoxStream, role: Role, config: &WsConfig) -> Self {
        let mut c = WebSocketConfig::default()
            .read_buffer_size(config.read_buffer.max(256))
            .write_buffer_size(config.write_buffer)
            .max_message_size(Some(config.max_message_size))
            .max_frame_size(Some(config.max_frame_size));
        c.accept_unmasked_frames = false;
        let role = match role {
            Role::Server => tungstenite::protocol::Role::Server,
            Role::Client => tungstenite::protocol::Role::Client,
        };
        use futures_util::FutureExt;
        // `from_raw_socket` only builds the stream: its future is ready at once.
        Inner(
            WebSocketStream::from_raw_socket(stream, role, Some(c))
                .now_or_never()
                .expect("tokio-tungstenite builds a stream without waiting"),
        )
    }

    pub(super) fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame, WsError>>> {
        Pin::new(&mut self.0).poll_next(cx).map(|m| {
            m.map(|r| match r {
                Ok(m) => Ok(from_message(m)),
                Err(e) => Err(error(e)),
            })
        })
    }

    pub(super) fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        Pin::new(&mut self.0).poll_ready(cx).map_err(error)
    }

    pub(super) fn start_send(&mut self, frame: Frame) -> Result<(), WsError> {
        Pin::new(&mut self.0)
            .start_send(to_message(frame))
            .map_err(error)
    }

    pub(super) fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        Pin::new(&mut self.0).poll_flush(cx).map_err(error)
    }

    pub(super) fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        Pin::new(&mut self.0).poll_close(cx).map_err(error)
    }
}

fn from_message(m: Message) -> Frame {
    match m {
        Message::Text(t) => {
            // SAFETY: tungstenite validated the text message as UTF-8.
            #[allow(unsafe_code)]
            let text = unsafe { Utf8Bytes::from_bytes_unchecked(Bytes::from(t)) };
            Frame::Text(text)
        }
        Message::Binary(b) => Frame::Binary(b),
        Message::Ping(p) => Frame::Ping(p),
        Message::Pong(p) => Frame::Pong(p),
        Message::Close(c) => Frame::Close(c.map(|c| CloseFrame {
            code: c.code.into(),
            reason: c.reason.to_string(),
        })),
        Message::Frame(_) => Frame::Pong(Bytes::new()),
    }
}

fn to_message(frame: Frame) -> Message {
    match frame {
        Frame::Text(t) => {
            // SAFETY: engineio_proto::Utf8Bytes only holds valid UTF-8.
            #[allow(unsafe_code)]
            let text = unsafe { tungstenite::Utf8Bytes::from_bytes_unchecked(t.into_bytes()) };
            Message::Text(text)
        }
        Frame::Binary(b) => Message::Binary(b),
        Frame::Ping(p) => Message::Ping(p),
        Frame::Pong(p) => Message::Pong(p),
        Frame::Close(c) => Message::Close(c.map(|c| TCloseFrame {
            code: c.code.into(),
            reason: c.reason.into(),
        })),
    }
}

fn error(e: tungstenite::Error) -> WsError {
    use tungstenite::error::{CapacityError, Error, ProtocolError as P};
    match e {
        Error::ConnectionClosed | Error::AlreadyClosed => WsError::Closed,
        Error::Capacity(CapacityError::MessageTooLong { size, .. }) => {
            WsError::MessageTooLarge { size }
        }
        Error::Utf8(d) => WsError::violation(WsViolation::InvalidUtf8, d),
        Error::Protocol(P::ResetWithoutClosingHandshake) => WsError::Reset,
        Error::Protocol(p) => {
            let kind = match p {
                P::UnmaskedFrameFromClient => WsViolation::UnmaskedFrame,
                P::NonZeroReservedBits => WsViolation::ReservedBits,
                P::UnknownControlFrameType(_)
                | P::UnknownDataFrameType(_)
                | P::InvalidOpcode(_) => WsViolation::ReservedOpcode,
                P::FragmentedControlFrame | P::ControlFrameTooBig | P::InvalidCloseSequence => {
                    WsViolation::BadControlFrame
                }
                P::UnexpectedContinueFrame | P::ExpectedFragment(_) => {
                    WsViolation::BadFragmentation
                }
                _ => WsViolation::Other,
            };
            WsError::violation(kind, p)
        }
        Error::Io(e) => WsError::Io(e),
        other => WsError::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, other)),
    }
}
