//! The framing backend on tokio-websockets (a candidate of the comparison).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use engineio_proto::{Utf8Bytes, WsViolation};
use futures_core::Stream;
use futures_sink::Sink;
use tokio_websockets::proto::ProtocolError as P;
use tokio_websockets::{CloseCode, Config, Error, Limits, Message, WebSocketStream};

use super::{BoxStream, CloseFrame, Frame, Role, WsConfig, WsError};

/// Whether this backend compresses (permessage-deflate): when not, the server and the
/// client leave `websocket_deflate` off rather than agree to what they cannot do.
pub(super) const DEFLATE: bool = false;

pub(super) struct Inner(WebSocketStream<BoxStream>);

impl Inner {
    pub(super) fn new(stream: BoxStream, role: Role, config: &WsConfig) -> Self {
        let c = Config::default().flush_threshold(config.write_buffer);
        let limits = Limits::default().max_payload_len(Some(config.max_message_size));
        Inner(match role {
            Role::Server => tokio_websockets::ServerBuilder::new()
                .config(c)
                .limits(limits)
                .serve(stream),
            Role::Client => tokio_websockets::ClientBuilder::new()
                .config(c)
                .limits(limits)
                .take_over(stream),
        })
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
    if m.is_text() {
        let bytes = Bytes::from(m.into_payload());
        // SAFETY: tokio-websockets validated the text message as UTF-8.
        #[allow(unsafe_code)]
        let text = unsafe { Utf8Bytes::from_bytes_unchecked(bytes) };
        Frame::Text(text)
    } else if m.is_binary() {
        Frame::Binary(Bytes::from(m.into_payload()))
    } else if m.is_ping() {
        Frame::Ping(Bytes::from(m.into_payload()))
    } else if m.is_pong() {
        Frame::Pong(Bytes::from(m.into_payload()))
    } else {
        Frame::Close(m.as_close().map(|(code, reason)| CloseFrame {
            code: code.into(),
            reason: reason.to_owned(),
        }))
    }
}

fn to_message(frame: Frame) -> Message {
    match frame {
        Frame::Text(t) => Message::text(t.into_bytes()),
        Frame::Binary(b) => Message::binary(b),
        Frame::Ping(p) => Message::ping(p),
        Frame::Pong(p) => Message::pong(p),
        Frame::Close(c) => match c {
            Some(c) => Message::close(CloseCode::try_from(c.code).ok(), &c.reason),
            None => Message::close(None, ""),
        },
    }
}

fn error(e: Error) -> WsError {
    match e {
        Error::AlreadyClosed => WsError::Closed,
        Error::PayloadTooLong { len, .. } => WsError::MessageTooLarge { size: len },
        Error::Protocol(p) => {
            let kind = match p {
                P::InvalidUtf8 => WsViolation::InvalidUtf8,
                P::UnexpectedUnmaskedFrame => WsViolation::UnmaskedFrame,
                P::InvalidRsv => WsViolation::ReservedBits,
                P::InvalidOpcode => WsViolation::ReservedOpcode,
                P::FragmentedControlFrame | P::InvalidCloseCode => WsViolation::BadControlFrame,
                _ => WsViolation::Other,
            };
            WsError::violation(kind, p)
        }
        Error::Io(e) => WsError::Io(e),
        other => WsError::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            other.to_string(),
        )),
    }
}
