//! One WebSocket as a driver holds it: the stream, the frames it has not taken yet, one
//! flush per wake-up, and the close. Shared by the server and client drivers, which own
//! the protocol decisions (what to send, when to close, when to give up on a socket);
//! a link only moves frames and reports what happened.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use engineio_proto::{CloseCode, RequestId, WsMessage};

use crate::runtime::WebSocketIo;
use crate::ws::{CloseFrame, Frame, Incoming, WsError, incoming};

/// What reading a link found.
#[derive(Debug, Default)]
pub(crate) struct ReadOutcome {
    /// Something was read.
    pub(crate) progress: bool,
    /// The stream ended: `Ok` for a clean end (or the peer's close frame), `Err` for an
    /// error.
    pub(crate) end: Option<Result<(), WsError>>,
}

/// A WebSocket and its outgoing frames.
pub(crate) struct Link<W> {
    pub(crate) id: RequestId,
    /// `None` until the stream arrives (the server's upgrade is still completing).
    ws: Option<W>,
    out: VecDeque<Frame>,
    needs_flush: bool,
    /// A close frame is queued: once everything is written, the stream is closed.
    closing: bool,
    /// The stream said `Pending` to a read in this wake-up.
    read_blocked: bool,
    /// The driver told its state machine that this link takes no writes.
    pub(crate) reported_blocked: bool,
    /// The state machine asked to hear once everything received has been read.
    pub(crate) drain_asked: bool,
    /// The driver told its machine that this link ended.
    pub(crate) end_reported: bool,
    /// Closed (or failed): nothing more to do but drop it.
    done: bool,
}

impl<W: WebSocketIo> Link<W> {
    /// A link whose stream comes later.
    pub(crate) fn pending(id: RequestId) -> Self {
        Link {
            id,
            ws: None,
            out: VecDeque::new(),
            needs_flush: false,
            closing: false,
            read_blocked: false,
            reported_blocked: false,
            drain_asked: false,
            end_reported: false,
            done: false,
        }
    }

    /// Hands over the stream of a pending link.
    pub(crate) fn attach(&mut self, ws: W) {
        self.ws = Some(ws);
        self.read_blocked = false;
    }

    /// Whether the stream has arrived.
    pub(crate) fn is_attached(&self) -> bool {
        self.ws.is_some()
    }

    /// Whether a close frame was queued.
    pub(crate) fn is_closing(&self) -> bool {
        self.closing
    }

    /// Whether the link is finished with (closed, or failed).
    pub(crate) fn is_done(&self) -> bool {
        self.done
    }

    /// Whether frames wait that the stream did not take: the peer is not reading.
    pub(crate) fn is_blocked(&self) -> bool {
        self.ws.is_some() && !self.out.is_empty()
    }

    /// Whether something waits to go out: frames the stream did not take, or what it
    /// buffered and has not flushed yet.
    pub(crate) fn is_writing(&self) -> bool {
        self.ws.is_some() && !self.done && (!self.out.is_empty() || self.needs_flush)
    }

    /// Queues a message (ignored once closing).
    pub(crate) fn push(&mut self, message: WsMessage) {
        if !self.closing {
            self.out.push_back(Frame::from(message));
        }
    }

    /// Queues a close frame after what is queued; the link closes once it is written.
    pub(crate) fn close(&mut self, code: CloseCode, reason: &'static str) {
        if self.closing {
            return;
        }
        self.closing = true;
        self.out.push_back(Frame::Close(Some(CloseFrame {
            code: code.as_u16(),
            reason: reason.into(),
        })));
    }

    /// The machine asks to hear once everything received so far has been read: the next
    /// read tries again, even if one came back empty before.
    pub(crate) fn ask_drain(&mut self) {
        self.drain_asked = true;
        self.read_blocked = false;
    }

    /// A new wake-up: reading may be tried again.
    pub(crate) fn new_wakeup(&mut self) {
        self.read_blocked = false;
    }

    /// Whether reading is worth trying now: the stream is there, not closing, said
    /// nothing was ready in this wake-up yet, and (to push back on a peer that does not
    /// read) takes writes, unless the machine asked for everything to be read.
    pub(crate) fn wants_read(&self) -> bool {
        self.ws.is_some()
            && !self.closing
            && !self.done
            && !self.read_blocked
            && (self.out.is_empty() || self.drain_asked)
    }

    /// Whether a read came back empty in this wake-up: everything received was read.
    pub(crate) fn read_everything(&self) -> bool {
        self.read_blocked
    }

    /// Reads up to `max` messages, handing data to `on_data`. A peer's close frame ends
    /// the stream cleanly (its reply is queued by the library and flushed by
    /// [`flush`](Self::flush)).
    pub(crate) fn read(
        &mut self,
        cx: &mut Context<'_>,
        max: usize,
        mut on_data: impl FnMut(WsMessage),
    ) -> ReadOutcome {
        let mut outcome = ReadOutcome::default();
        let Some(ws) = self.ws.as_mut() else {
            return outcome;
        };
        for _ in 0..max {
            let message = match Pin::new(&mut *ws).poll_next(cx) {
                Poll::Pending => {
                    self.read_blocked = true;
                    break;
                }
                Poll::Ready(Some(Ok(m))) => m,
                Poll::Ready(Some(Err(e))) => {
                    outcome.end = Some(Err(e));
                    break;
                }
                Poll::Ready(None) => {
                    outcome.end = Some(Ok(()));
                    break;
                }
            };
            outcome.progress = true;
            match incoming(message) {
                Incoming::Data(m) => on_data(m),
                Incoming::Close => {
                    self.needs_flush = true;
                    outcome.end = Some(Ok(()));
                    break;
                }
                // The pong is queued by the library and goes out with the next flush.
                Incoming::Ping => self.needs_flush = true,
                Incoming::Ignore => {}
            }
        }
        outcome
    }

    /// Whether the stream takes another frame now (registers the waker when it does not).
    pub(crate) fn ready(&mut self, cx: &mut Context<'_>) -> Result<bool, WsError> {
        let Some(ws) = self.ws.as_mut() else {
            return Ok(false);
        };
        match Pin::new(ws).poll_ready(cx) {
            Poll::Ready(Ok(())) => Ok(true),
            Poll::Ready(Err(e)) => Err(e),
            Poll::Pending => Ok(false),
        }
    }

    /// Moves queued frames into the stream while it takes them. `Ok(true)` when some
    /// were taken.
    pub(crate) fn write(&mut self, cx: &mut Context<'_>) -> Result<bool, WsError> {
        let mut progress = false;
        let Some(ws) = self.ws.as_mut() else {
            return Ok(false);
        };
        while !self.out.is_empty() {
            match Pin::new(&mut *ws).poll_ready(cx) {
                Poll::Pending => break,
                Poll::Ready(Err(e)) => return Err(e),
                Poll::Ready(Ok(())) => {}
            }
            let Some(message) = self.out.pop_front() else {
                break;
            };
            Pin::new(&mut *ws).start_send(message)?;
            self.needs_flush = true;
            progress = true;
        }
        Ok(progress)
    }

    /// Flushes what the stream buffered (once per wake-up), and for a closing link with
    /// nothing left to write, closes the stream; marks the link done when that finished
    /// or failed.
    pub(crate) fn flush(&mut self, cx: &mut Context<'_>) -> Result<(), WsError> {
        let Some(ws) = self.ws.as_mut() else {
            return Ok(());
        };
        if self.closing {
            if self.out.is_empty() {
                match Pin::new(&mut *ws).poll_close(cx) {
                    Poll::Pending => {}
                    Poll::Ready(_) => self.done = true,
                }
            }
            return Ok(());
        }
        if self.needs_flush {
            match Pin::new(&mut *ws).poll_flush(cx) {
                Poll::Ready(Ok(())) => self.needs_flush = false,
                Poll::Ready(Err(e)) => {
                    self.needs_flush = false;
                    return Err(e);
                }
                Poll::Pending => {}
            }
        }
        Ok(())
    }

    /// The peer closed: the library has queued its reply, which the link flushes while
    /// it closes; nothing else is written.
    pub(crate) fn peer_closed(&mut self) {
        self.out.clear();
        self.closing = true;
        self.needs_flush = true;
    }

    /// The stream is gone (it failed): nothing more is written.
    pub(crate) fn fail(&mut self) {
        self.out.clear();
        self.done = true;
        self.ws = None;
    }

    /// Frees the memory of empty queues.
    pub(crate) fn shrink(&mut self) {
        if self.out.is_empty() {
            self.out.shrink_to_fit();
        }
    }
}
