//! The per-session task: moves bytes and time between a WebSocket, the HTTP requests
//! waiting on the session, the timer and the proto `Session`, and calls the handler.
//!
//! It is a hand-written future (quinn's `ConnectionDriver` shape): one allocation per
//! session, no channels, one timer. It makes no protocol decision: every input goes to the
//! proto session, every output comes from `Session::poll_action`.

use std::any::Any;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use engineio_proto::server::{Action, Event};
use engineio_proto::{RequestId, TransportEnd};
use futures_core::Stream;
use futures_sink::Sink;

use super::Shared;
use super::socket::{Handler, Reply, Socket};
use crate::runtime::{DeadlineTimer, Runtime};
use crate::ws::{Incoming, from_tungstenite, send_close, to_tungstenite, transport_end};

/// How long a closing WebSocket may take to flush its close frame once the session ended.
const LINGER: Duration = Duration::from_secs(2);
/// WebSocket messages read per wake-up before the driver lets others run.
const READ_BATCH: usize = 64;
/// Session actions taken under one lock.
const ACTION_BATCH: usize = 64;

enum Slot<W> {
    Empty,
    /// Accepted by the session; the HTTP upgrade is still completing.
    Pending {
        id: RequestId,
    },
    Open {
        id: RequestId,
        ws: W,
    },
}

pub(crate) struct Driver<H: Handler, R: Runtime> {
    shared: Arc<Shared<H, R>>,
    socket: Socket<H::Data>,
    slot: Slot<R::WebSocket>,
    /// Messages for the open (or pending) WebSocket that the sink has not taken yet.
    out: VecDeque<tungstenite::Message>,
    /// Messages read in this wake-up, handed to the session together.
    inbox: Vec<(RequestId, engineio_proto::WsMessage)>,
    /// Actions taken from the session, not run yet.
    actions: VecDeque<Action>,
    /// WebSockets being closed (close frame sent, flushing).
    closing: Vec<R::WebSocket>,
    timer: DeadlineTimer<R::Timer>,
    needs_flush: bool,
    /// Shrink the queues when this wake-up goes idle: set after the handshake and when a
    /// timer fired, the moments an idle session passes through.
    shrink_when_idle: bool,
    finished: Option<Instant>,
}

impl<H: Handler, R: Runtime> Driver<H, R> {
    pub(crate) fn new(shared: Arc<Shared<H, R>>, socket: Socket<H::Data>) -> Self {
        Driver {
            shared,
            socket,
            slot: Slot::Empty,
            out: VecDeque::new(),
            inbox: Vec::new(),
            actions: VecDeque::new(),
            closing: Vec::new(),
            timer: DeadlineTimer::default(),
            needs_flush: false,
            shrink_when_idle: true,
            finished: None,
        }
    }

    fn now(&self) -> Instant {
        self.shared.runtime.now()
    }

    /// Whether the open WebSocket has messages its sink has not taken: then the driver
    /// stops reading and stops pulling actions (back-pressure reaches the session's
    /// bounded queue, and `send` reports it).
    fn blocked(&self) -> bool {
        matches!(self.slot, Slot::Open { .. }) && !self.out.is_empty()
    }

    /// Takes a WebSocket the HTTP side finished upgrading.
    fn attach(&mut self) -> bool {
        let Some((id, boxed)) = self.socket.lock().new_ws.take() else {
            return false;
        };
        let ws = match boxed.downcast::<R::WebSocket>() {
            Ok(ws) => *ws,
            Err(_) => return true,
        };
        match self.slot {
            Slot::Pending { id: pending } if pending == id => {
                self.slot = Slot::Open { id, ws };
            }
            // The session gave up on this socket meanwhile: close it.
            _ => self.closing.push(ws),
        }
        true
    }

    fn ws_ended(&mut self, id: RequestId, end: TransportEnd) {
        if let Slot::Open { ws, .. } = std::mem::replace(&mut self.slot, Slot::Empty) {
            self.closing.push(ws);
        }
        self.out.clear();
        let now = self.now();
        self.socket.lock().session.handle_ws_closed(now, id, end);
    }

    /// Pushes queued messages into the sink while it accepts them.
    fn write_out(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progress = false;
        while !self.out.is_empty() {
            let Slot::Open { id, ws } = &mut self.slot else {
                return progress;
            };
            let id = *id;
            match Pin::new(&mut *ws).poll_ready(cx) {
                Poll::Pending => return progress,
                Poll::Ready(Err(e)) => {
                    self.ws_ended(id, transport_end(e));
                    return true;
                }
                Poll::Ready(Ok(())) => {}
            }
            let Some(msg) = self.out.pop_front() else {
                break;
            };
            if let Err(e) = Pin::new(&mut *ws).start_send(msg) {
                self.ws_ended(id, transport_end(e));
                return true;
            }
            self.needs_flush = true;
            progress = true;
        }
        progress
    }

    /// Reads what the WebSocket has; `read_blocked` is set once it said `Pending`, so the
    /// rest of this wake-up does not try again (each try costs a system call and a
    /// zero-filled read buffer in tungstenite, and readiness will wake the task anyway).
    fn read(&mut self, cx: &mut Context<'_>, read_blocked: &mut bool) -> bool {
        let mut progress = false;
        let mut end = None;
        for _ in 0..READ_BATCH {
            let Slot::Open { id, ws } = &mut self.slot else {
                break;
            };
            let id = *id;
            let message = match Pin::new(&mut *ws).poll_next(cx) {
                Poll::Pending => {
                    *read_blocked = true;
                    break;
                }
                Poll::Ready(Some(Ok(m))) => m,
                Poll::Ready(Some(Err(e))) => {
                    let e = transport_end(e);
                    if let TransportEnd::MessageTooLarge { .. } = e {
                        // tungstenite stopped reading an oversized message: tell the
                        // client why, as the protocol does for messages it sees whole.
                        send_close(cx, ws, 1009, "payload too large");
                    }
                    end = Some((id, e));
                    break;
                }
                Poll::Ready(None) => {
                    end = Some((id, TransportEnd::Closed));
                    break;
                }
            };
            progress = true;
            match from_tungstenite(message) {
                Incoming::Data(m) => self.inbox.push((id, m)),
                Incoming::Close => {
                    // tungstenite queued the close reply; flush it while closing.
                    end = Some((id, TransportEnd::Closed));
                    break;
                }
                // The pong is queued by tungstenite and goes out with the next flush.
                Incoming::Ping => self.needs_flush = true,
                Incoming::Ignore => {}
            }
        }
        // One lock and one clock reading for the whole batch.
        if !self.inbox.is_empty() {
            let now = self.now();
            let mut state = self.socket.lock();
            for (id, message) in self.inbox.drain(..) {
                state.session.handle_ws_message(now, id, message);
            }
        }
        if let Some((id, e)) = end {
            self.ws_ended(id, e);
            return true;
        }
        if progress && matches!(self.slot, Slot::Open { .. }) {
            // More may be ready: come back after others had a turn.
            cx.waker().wake_by_ref();
        }
        progress
    }

    /// Runs the session's actions until it has none, or the WebSocket cannot take more.
    fn drain(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progress = false;
        while !self.blocked() {
            if self.actions.is_empty() {
                // Take a batch under one lock; handlers run without it.
                let mut state = self.socket.lock();
                while self.actions.len() < ACTION_BATCH {
                    match state.session.poll_action() {
                        Some(a) => self.actions.push_back(a),
                        None => break,
                    }
                }
            }
            let Some(action) = self.actions.pop_front() else {
                break;
            };
            progress = true;
            match action {
                Action::Respond { request, response } => {
                    self.reply(request, Reply::Response(*response));
                }
                Action::AcceptWebSocket { request, headers } => {
                    self.slot = Slot::Pending { id: request };
                    self.out.clear();
                    self.reply(request, Reply::AcceptWebSocket(headers));
                }
                Action::WsSend { ws, message } => {
                    let current = match &self.slot {
                        Slot::Pending { id } | Slot::Open { id, .. } => Some(*id),
                        Slot::Empty => None,
                    };
                    if current == Some(ws) {
                        self.out.push_back(to_tungstenite(message));
                        self.write_out(cx);
                    }
                }
                Action::WsClose { ws, code, reason } => self.close_ws(cx, ws, code, reason),
                Action::Event(Event::Message(message)) => {
                    self.shared.handler.on_message(&self.socket, message);
                }
                Action::Event(Event::Upgraded) => self.shared.handler.on_upgrade(&self.socket),
                Action::Event(Event::Closed(reason)) => {
                    self.finished = Some(self.now() + LINGER);
                    self.shared.sessions.remove(self.socket.sid());
                    tracing::debug!(sid = %self.socket.sid(), %reason, "session closed");
                    self.shared.handler.on_disconnect(&self.socket, &reason);
                }
                Action::Event(_) => {}
            }
        }
        progress
    }

    fn close_ws(&mut self, cx: &mut Context<'_>, ws: RequestId, code: u16, reason: &'static str) {
        match std::mem::replace(&mut self.slot, Slot::Empty) {
            Slot::Open { id, ws: mut stream } if id == ws => {
                // Whatever is still queued goes first.
                self.write_out(cx);
                send_close(cx, &mut stream, code, reason);
                self.out.clear();
                self.closing.push(stream);
            }
            // Still upgrading: the stream is dropped when it arrives (see `attach`).
            Slot::Pending { id } if id == ws => self.out.clear(),
            other => self.slot = other,
        }
    }

    fn reply(&mut self, request: RequestId, reply: Reply) {
        let tx = {
            let mut state = self.socket.lock();
            let pos = state.replies.iter().position(|(id, _)| *id == request);
            pos.map(|p| state.replies.swap_remove(p).1)
        };
        if let Some(tx) = tx {
            // The request may have gone away meanwhile; nothing to do then.
            let _ = tx.send(reply);
        }
    }

    fn poll_timer(&mut self, cx: &mut Context<'_>) -> bool {
        let deadline = match self.finished {
            Some(linger) => Some(linger),
            None => self.socket.lock().session.poll_timeout(),
        };
        if !self.timer.expired(&self.shared.runtime, deadline, cx) {
            return false;
        }
        if self.finished.is_some() {
            // Lingering is over: drop whatever is still open or closing.
            self.closing.clear();
            self.out.clear();
            self.slot = Slot::Empty;
            self.needs_flush = false;
            return true;
        }
        let now = self.now();
        self.socket.lock().session.handle_timeout(now);
        // Timers fire at the heartbeat's pace: when this wake-up's work is done, give back
        // what the queues grew to.
        self.shrink_when_idle = true;
        true
    }

    /// Frees the memory of empty queues (the session's and the driver's own), so that an
    /// idle connection costs as little as possible.
    fn shrink(&mut self) {
        self.socket.lock().session.shrink_to_fit();
        if self.inbox.is_empty() {
            self.inbox.shrink_to_fit();
        }
        if self.actions.is_empty() {
            self.actions.shrink_to_fit();
        }
        if self.out.is_empty() {
            self.out.shrink_to_fit();
        }
        self.closing.shrink_to_fit();
    }

    fn flush(&mut self, cx: &mut Context<'_>) {
        if self.needs_flush
            && let Slot::Open { id, ws } = &mut self.slot
        {
            let id = *id;
            match Pin::new(&mut *ws).poll_flush(cx) {
                Poll::Ready(Ok(())) => self.needs_flush = false,
                Poll::Ready(Err(e)) => {
                    self.needs_flush = false;
                    self.ws_ended(id, transport_end(e));
                }
                Poll::Pending => {}
            }
        } else if !matches!(self.slot, Slot::Open { .. }) {
            self.needs_flush = false;
        }
        self.closing
            .retain_mut(|ws| matches!(Pin::new(ws).poll_close(cx), Poll::Pending));
    }
}

impl<H: Handler, R: Runtime> Future for Driver<H, R> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        this.socket.shared.wakeup.enter(cx);
        let mut read_blocked = false;
        loop {
            let attached = this.attach();
            if attached {
                read_blocked = false;
            }
            let mut progress = attached;
            progress |= this.write_out(cx);
            if !this.blocked() {
                if !read_blocked {
                    progress |= this.read(cx, &mut read_blocked);
                }
                progress |= this.drain(cx);
            }
            progress |= this.poll_timer(cx);
            this.flush(cx);
            if this.finished.is_some() && !this.blocked() && this.closing.is_empty() {
                this.socket.shared.wakeup.exit();
                return Poll::Ready(());
            }
            if !progress && !this.socket.shared.wakeup.idle() {
                if this.shrink_when_idle && !matches!(this.slot, Slot::Pending { .. }) {
                    this.shrink_when_idle = false;
                    this.shrink();
                }
                return Poll::Pending;
            }
        }
    }
}

/// Builds the driver's WebSocket type from a boxed stream handed over by the HTTP side.
pub(crate) fn boxed_ws<W: Send + 'static>(ws: W) -> Box<dyn Any + Send> {
    Box::new(ws)
}
