//! The framing backend on yawc.

use std::task::{Context, Poll};

use engineio_proto::{Utf8Bytes, WsViolation};
use futures_sink::Sink;
use yawc::close::CloseCode;
use yawc::{DeflateOptions, DeflatePool, Frame as YFrame, OpCode, Options, WebSocketError as E};

use super::{BoxStream, CloseFrame, Frame, Role, WsConfig, WsError};

/// Compression state shared by the connections that keep no context between messages:
/// one is taken from here for a message and given back after it, so that memory follows
/// the messages being compressed, not the connections. Sized for a few threads.
fn deflate_pool() -> DeflatePool {
    static POOL: std::sync::OnceLock<DeflatePool> = std::sync::OnceLock::new();
    POOL.get_or_init(|| DeflatePool::new(16)).clone()
}

/// Whether this backend compresses (permessage-deflate): when not, the server and the
/// client leave `websocket_deflate` off rather than agree to what they cannot do.
pub(super) const DEFLATE: bool = true;

pub(super) struct Inner {
    ws: yawc::WebSocket<BoxStream>,
    /// The server's end (the meaning of some of yawc's errors depends on it).
    server: bool,
    /// The largest frame taken: yawc's "frame too large" does not say the size, so a
    /// frame it refuses is reported as at least one byte over this.
    max_frame: usize,
    /// A close frame came: the stream's end is the end of a closing handshake.
    saw_close: bool,
    /// yawc answered a violation (or an oversized message) with a close frame of its
    /// own: a connection carries one close frame, so ours is not sent.
    library_closed: bool,
}

impl Inner {
    pub(super) fn new(stream: BoxStream, role: Role, config: &WsConfig) -> Self {
        let max_frame = config.max_frame_size.min(config.max_message_size);
        let options = Options {
            max_payload_read: Some(max_frame),
            max_read_buffer: Some(config.max_message_size),
            read_buffer_capacity: Some(config.read_buffer),
            // No write buffer until something is sent: an idle connection holds none (yawc
            // would allocate it up front), and the first frame sizes it.
            write_buffer_capacity: Some(0),
            max_backpressure_write_boundary: Some(config.write_buffer),
            ..Options::default()
        }
        .with_utf8();
        let role = match role {
            Role::Server => yawc::Role::Server,
            Role::Client => yawc::Role::Client,
        };
        // The agreed parameters (the protocol's decision) as yawc reads them; how to
        // compress comes from the configuration.
        let agreed = config.deflate.map(|d| d.to_header());
        let compression = config.deflate_config.unwrap_or_default();
        let options = Options {
            compression: agreed.as_ref().map(|_| DeflateOptions {
                level: flate2::Compression::new(compression.level),
                compression_threshold: compression.threshold,
                pool: Some(deflate_pool()),
                ..DeflateOptions::default()
            }),
            ..options
        };
        let ws = match yawc::WebSocket::from_stream_with_extensions(
            stream,
            role,
            agreed.as_deref(),
            options,
        ) {
            Ok(ws) => ws,
            // Only an agreed extension without compression options fails, and the
            // options are set whenever one was agreed.
            Err(e) => unreachable!("yawc refused the agreed extensions: {e}"),
        };
        Inner {
            server: role == yawc::Role::Server,
            max_frame,
            ws,
            saw_close: false,
            library_closed: false,
        }
    }

    pub(super) fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame, WsError>>> {
        match self.ws.poll_next_frame(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(f)) => Poll::Ready(Some(Ok(self.received(f)))),
            Poll::Ready(Err(E::ConnectionClosed)) if self.saw_close => Poll::Ready(None),
            Poll::Ready(Err(E::ConnectionClosed)) => Poll::Ready(Some(Err(WsError::Reset))),
            Poll::Ready(Err(e)) => {
                let e = error(e, self.server, self.max_frame);
                if matches!(
                    e,
                    WsError::Violation { .. } | WsError::MessageTooLarge { .. }
                ) {
                    self.library_closed = self.read_half_closed();
                }
                Poll::Ready(Some(Err(e)))
            }
        }
    }

    pub(super) fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        std::pin::Pin::new(&mut self.ws)
            .poll_ready(cx)
            .map_err(|e| error(e, self.server, self.max_frame))
    }

    pub(super) fn start_send(&mut self, frame: Frame) -> Result<(), WsError> {
        if self.library_closed && matches!(frame, Frame::Close(_)) {
            return Ok(());
        }
        std::pin::Pin::new(&mut self.ws)
            .start_send(to_frame(frame))
            .map_err(|e| error(e, self.server, self.max_frame))
    }

    pub(super) fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        std::pin::Pin::new(&mut self.ws)
            .poll_flush(cx)
            .map_err(|e| error(e, self.server, self.max_frame))
    }

    pub(super) fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        std::pin::Pin::new(&mut self.ws)
            .poll_close(cx)
            .map_err(|e| error(e, self.server, self.max_frame))
    }

    /// Whether yawc closed its reading half, which it does when it answers an error with
    /// a close frame of its own (errors of its frame layer; its message layer's errors,
    /// such as a continuation without a message, leave the close to us). A closed half
    /// answers at once, after flushing that close frame; an open one would read, and
    /// what it reads no longer matters: the connection is failing.
    fn read_half_closed(&mut self) -> bool {
        let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
        matches!(
            self.ws.poll_next_frame(&mut cx),
            Poll::Ready(Err(E::ConnectionClosed))
        )
    }

    fn received(&mut self, f: YFrame) -> Frame {
        match f.opcode() {
            OpCode::Text => {
                // SAFETY: yawc validated the text message as UTF-8 (`with_utf8`).
                #[allow(unsafe_code)]
                let text = unsafe { Utf8Bytes::from_bytes_unchecked(f.into_payload()) };
                Frame::Text(text)
            }
            OpCode::Binary | OpCode::Continuation => Frame::Binary(f.into_payload()),
            OpCode::Ping => Frame::Ping(f.into_payload()),
            OpCode::Pong => Frame::Pong(f.into_payload()),
            OpCode::Close => {
                self.saw_close = true;
                let code = f.close_code();
                let reason = f.close_reason().ok().flatten().unwrap_or("").to_owned();
                Frame::Close(code.map(|c| CloseFrame {
                    code: c.into(),
                    reason,
                }))
            }
        }
    }
}

fn to_frame(frame: Frame) -> YFrame {
    match frame {
        Frame::Text(t) => YFrame::text(t.into_bytes()),
        Frame::Binary(b) => YFrame::binary(b),
        Frame::Ping(p) => YFrame::ping(p),
        Frame::Pong(p) => YFrame::pong(p),
        Frame::Close(Some(c)) => YFrame::close(CloseCode::from(c.code), c.reason),
        Frame::Close(None) => YFrame::close(CloseCode::Normal, []),
    }
}

/// Our error for yawc's. yawc answers violations with a close frame itself (RFC 6455
/// section 7.4.1's codes: 1002, 1007 for invalid UTF-8, 1009 for too large, and 1003
/// for an unknown opcode).
fn error(e: E, server: bool, max_frame: usize) -> WsError {
    let kind = match e {
        E::ConnectionClosed => return WsError::Closed,
        E::FrameTooLarge => {
            return WsError::MessageTooLarge {
                size: max_frame.saturating_add(1),
            };
        }
        E::IoError(e) => return WsError::Io(e),
        E::InvalidUTF8 => WsViolation::InvalidUtf8,
        E::ReservedBitsNotZero | E::CompressionNotSupported => WsViolation::ReservedBits,
        E::InvalidOpCode(_) => WsViolation::ReservedOpcode,
        E::ControlFrameFragmented
        | E::PingFrameTooLarge
        | E::InvalidCloseFrame
        | E::InvalidCloseCode => WsViolation::BadControlFrame,
        // For a server yawc says this both of an unmasked frame and of a continuation
        // without a message: which one is not known.
        E::InvalidFragment if server => WsViolation::Other,
        E::InvalidFragment | E::InvalidContinuationFrame => WsViolation::BadFragmentation,
        _ => WsViolation::Other,
    };
    WsError::violation(kind, e)
}
