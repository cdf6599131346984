//! The WebSocket layer both drivers sit on: frames, errors and settings in our own types,
//! over one framing crate (chosen by measurement: see `docs/benchmarks.md`).
//!
//! This is the one seam between the drivers and the framing library: [`WebSocket`] is a
//! [`Stream`] of received [`Frame`]s and a [`Sink`] of frames to send, whatever crate
//! frames them, for both roles and both runtimes (it runs over tokio's I/O traits, which
//! need no tokio runtime; hyper's upgraded connections are adapted by hyper-util's
//! `TokioIo`). How a stream error ends a WebSocket for the state machines is
//! `transport_end`'s to say; every protocol decision (close codes, limits, what to negotiate)
//! stays in `engineio-proto`.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use engineio_proto::websocket::{DeflateConfig, DeflateParams};
use engineio_proto::{IoError, TransportEnd, TransportError, Utf8Bytes, WsMessage, WsViolation};
use futures_core::Stream;
use futures_sink::Sink;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

#[cfg(not(any(feature = "ws-tungstenite", feature = "ws-tokio-websockets")))]
#[path = "yawc.rs"]
mod backend;

#[cfg(all(feature = "ws-tokio-websockets", not(feature = "ws-tungstenite")))]
#[path = "tokio_websockets.rs"]
mod backend;

#[cfg(feature = "ws-tungstenite")]
#[path = "tungstenite.rs"]
mod backend;

mod client;
pub use client::{connect, connect_io_error, connect_over, target};

/// Whether the framing backend of this build compresses (permessage-deflate): true for
/// the default build (yawc). The comparison builds (`ws-tungstenite`,
/// `ws-tokio-websockets`) cannot, and there the server and the client turn
/// `websocket_deflate` off (with a warning) instead of agreeing to it.
pub const SUPPORTS_DEFLATE: bool = backend::DEFLATE;

/// `deflate` if this build can honour it; `None` (and a warning) otherwise.
pub(crate) fn supported_deflate<T>(deflate: Option<T>) -> Option<T> {
    if deflate.is_some() && !SUPPORTS_DEFLATE {
        tracing::warn!(
            "websocket_deflate is set, but this build's WebSocket backend has no \
             permessage-deflate: it stays off (build without the ws-* comparison features)"
        );
        return None;
    }
    deflate
}

/// Which end of the connection a WebSocket is: clients mask what they send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The accepting end.
    Server,
    /// The connecting end.
    Client,
}

/// A WebSocket frame as the drivers see it: whole messages (fragments are joined by the
/// framing library), control frames, and the close.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Frame {
    /// A text message (valid UTF-8, checked by the framing library).
    Text(Utf8Bytes),
    /// A binary message.
    Binary(Bytes),
    /// A ping (the framing library answers it; its pong goes out with the next flush).
    Ping(Bytes),
    /// A pong.
    Pong(Bytes),
    /// A close frame, with its code and reason when it has one.
    Close(Option<CloseFrame>),
}

impl From<WsMessage> for Frame {
    fn from(message: WsMessage) -> Self {
        match message {
            WsMessage::Text(t) => Frame::Text(t),
            WsMessage::Binary(b) => Frame::Binary(b),
        }
    }
}

/// A close frame's code and reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame {
    /// The close code (RFC 6455 section 7.4).
    pub code: u16,
    /// Why, for people (at most 123 bytes of UTF-8).
    pub reason: String,
}

/// Why a WebSocket stream failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WsError {
    /// The WebSocket was closed (after the closing handshake); nothing more comes.
    #[error("the WebSocket is closed")]
    Closed,
    /// The connection ended without a close frame (RFC 6455's abnormal closure, 1006).
    #[error("the connection ended without a closing handshake")]
    Reset,
    /// A message was larger than the limit ([`WsConfig::max_message_size`]).
    #[error("a message of {size} bytes or more is over the limit")]
    MessageTooLarge {
        /// How large it was (or at least).
        size: usize,
    },
    /// The peer broke the WebSocket protocol.
    #[error("WebSocket protocol violation: {kind} ({detail})")]
    Violation {
        /// Which rule.
        kind: WsViolation,
        /// The framing library's words.
        detail: String,
    },
    /// The connection failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl WsError {
    pub(crate) fn violation(kind: WsViolation, detail: impl ToString) -> Self {
        WsError::Violation {
            kind,
            detail: detail.to_string(),
        }
    }
}

/// Settings of one WebSocket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct WsConfig {
    /// The largest message (and frame) taken, in bytes; larger ones end the stream with
    /// [`WsError::MessageTooLarge`].
    pub max_message_size: usize,
    /// The largest frame taken, in bytes (at most the message limit counts).
    pub max_frame_size: usize,
    /// The read buffer while idle, in bytes: it grows for a larger frame and shrinks back
    /// after it.
    pub read_buffer: usize,
    /// Bytes of frames queued before the sink writes them out without waiting for a
    /// flush (the drivers flush once per wake-up).
    pub write_buffer: usize,
    /// The permessage-deflate parameters agreed in the opening handshake (by
    /// [`engineio_proto::websocket`]'s rules), if any.
    pub deflate: Option<DeflateParams>,
    /// How to compress (level, threshold) when `deflate` was agreed.
    pub deflate_config: Option<DeflateConfig>,
}

impl WsConfig {
    /// Settings with `max_message_size` and the default buffers.
    pub fn new(max_message_size: usize) -> Self {
        WsConfig {
            max_message_size,
            max_frame_size: max_message_size,
            read_buffer: DEFAULT_READ_BUFFER,
            write_buffer: DEFAULT_WRITE_BUFFER,
            deflate: None,
            deflate_config: None,
        }
    }
}

/// The read buffer of an idle WebSocket.
pub const DEFAULT_READ_BUFFER: usize = 1024;
/// Bytes of frames queued before writing without a flush.
pub const DEFAULT_WRITE_BUFFER: usize = 64 * 1024;

/// A byte stream a WebSocket runs over (any tokio `AsyncRead + AsyncWrite`; no tokio
/// runtime is needed for these traits).
pub trait WsStream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> WsStream for T {}

pub(crate) type BoxStream = Box<dyn WsStream>;

/// One WebSocket, for either role: a [`Stream`] of received frames and a [`Sink`] of
/// frames to send. Sent frames are queued and written by `poll_flush` (or once
/// [`WsConfig::write_buffer`] bytes are queued); pings are answered and the peer's close
/// echoed by the framing library, with the next flush.
pub struct WebSocket {
    inner: backend::Inner,
    /// The permessage-deflate parameters agreed in the opening handshake.
    deflate: Option<DeflateParams>,
}

impl std::fmt::Debug for WebSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocket").finish_non_exhaustive()
    }
}

impl WebSocket {
    /// A WebSocket over `stream`, whose opening handshake is done.
    pub fn new(stream: impl WsStream, role: Role, config: &WsConfig) -> Self {
        WebSocket {
            inner: backend::Inner::new(Box::new(stream), role, config),
            deflate: config.deflate,
        }
    }

    /// The permessage-deflate parameters this WebSocket runs with ([`WsConfig::deflate`]),
    /// `None` when it does not compress.
    pub fn deflate(&self) -> Option<DeflateParams> {
        self.deflate
    }

    /// The server's WebSocket over a connection hyper upgraded.
    pub fn from_upgraded(upgraded: hyper::upgrade::Upgraded, config: &WsConfig) -> Self {
        Self::new(TokioIo::new(upgraded), Role::Server, config)
    }
}

impl Stream for WebSocket {
    type Item = Result<Frame, WsError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().inner.poll_next(cx)
    }
}

impl Sink<Frame> for WebSocket {
    type Error = WsError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        self.get_mut().inner.poll_ready(cx)
    }

    fn start_send(self: Pin<&mut Self>, frame: Frame) -> Result<(), WsError> {
        self.get_mut().inner.start_send(frame)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        self.get_mut().inner.poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        self.get_mut().inner.poll_close(cx)
    }
}

/// What a received frame means to a driver.
pub(crate) enum Incoming {
    /// A data message for the protocol.
    Data(WsMessage),
    /// The peer's close frame.
    Close,
    /// A WebSocket ping: its pong is queued by the library and needs a flush.
    Ping,
    /// Nothing to do.
    Ignore,
}

pub(crate) fn incoming(frame: Frame) -> Incoming {
    match frame {
        Frame::Text(t) => Incoming::Data(WsMessage::Text(t)),
        Frame::Binary(b) => Incoming::Data(WsMessage::Binary(b)),
        Frame::Close(_) => Incoming::Close,
        Frame::Ping(_) => Incoming::Ping,
        Frame::Pong(_) => Incoming::Ignore,
    }
}

/// How a stream error ends a WebSocket, for the state machines. The end of a closing
/// handshake is a clean close; a reset, a broken pipe, the end of the stream without a
/// close frame (RFC 6455's abnormal closure, 1006) are [`TransportError::Reset`]; a
/// message over the size limit is `MessageTooLarge`; the peer breaking the framing is a
/// violation; any other failure is an error with its source.
pub(crate) fn transport_end(e: WsError) -> TransportEnd {
    match e {
        WsError::Closed => TransportEnd::Closed,
        WsError::MessageTooLarge { size } => TransportEnd::MessageTooLarge { size },
        WsError::Violation { kind, detail } => {
            tracing::debug!(violation = %kind, %detail, "WebSocket protocol violation");
            TransportEnd::Violation(kind)
        }
        WsError::Reset => TransportEnd::Error(TransportError::Reset(IoError::new(
            io::ErrorKind::UnexpectedEof,
            "the connection ended without a closing handshake",
        ))),
        WsError::Io(e) if is_reset(e.kind()) => {
            TransportEnd::Error(TransportError::Reset(IoError::from(e)))
        }
        WsError::Io(e) => TransportEnd::Error(TransportError::Io(IoError::from(e))),
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
