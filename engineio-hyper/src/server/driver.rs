//! The per-session task: moves bytes and time between the session's WebSockets, the HTTP
//! requests waiting on it, the timer and the proto `Session`, and calls the handler.
//!
//! It is a hand-written future (quinn's `ConnectionDriver` shape): one allocation per
//! session, no channels, one timer. It makes no protocol decision: every input goes to the
//! proto session, every output comes from `Session::poll_action`, and every deadline
//! (heartbeat, write timeout, how long a closed session's sockets linger) from
//! `Session::poll_timeout`.
//!
//! One wake-up: take WebSockets the HTTP side finished upgrading; read every link that
//! takes writes, in batches, handing what was read to the session under one lock; run
//! **every** action the session has (answers, closes and events never wait for a peer
//! that does not read; the session itself holds its messages back while a link is
//! blocked); write, and tell the session when a link stops or starts taking writes;
//! follow the session's deadline; flush each link once.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use engineio_proto::server::{Action, Event};
use engineio_proto::{RequestId, Transport, TransportEnd, WsMessage};

use super::Shared;
use super::socket::{Handler, Reply, Socket};
use crate::link::Link;
use crate::log::{Body, Frame};
use crate::metrics::SessionMetrics;
use crate::runtime::{DeadlineTimer, Runtime};
use crate::ws::transport_end;

/// WebSocket messages read per link and wake-up before the driver lets others run.
const READ_BATCH: usize = 64;
/// Session actions taken under one lock.
const ACTION_BATCH: usize = 64;

pub(crate) struct Driver<H: Handler, R: Runtime> {
    shared: Arc<Shared<H, R>>,
    socket: Socket<H::Data>,
    /// The session's WebSockets: the one in use, one being upgraded to, ones closing.
    links: Vec<Link<R::WebSocket>>,
    /// Messages read in this wake-up, handed to the session together.
    inbox: Vec<(RequestId, WsMessage)>,
    /// Links that ended in this wake-up, reported to the session with the inbox.
    ended: Vec<(RequestId, TransportEnd)>,
    /// Links that said everything received was read, as the session asked.
    drained: Vec<RequestId>,
    /// Links whose writability changed (true: blocked).
    writability: Vec<(RequestId, bool)>,
    timer: DeadlineTimer<R::Timer>,
    /// Shrink the queues when this wake-up goes idle: set after the handshake and when a
    /// timer fired, the moments an idle session passes through.
    shrink_when_idle: bool,
    /// The session has ended (its `Event::Closed` went to the handler).
    session_over: bool,
    released: bool,
    /// The session's share of the metrics (nothing without the `metrics` feature).
    metrics: SessionMetrics,
}

impl<H: Handler, R: Runtime> Driver<H, R> {
    /// The driver of a session just opened on `transport`.
    pub(crate) fn new(
        shared: Arc<Shared<H, R>>,
        socket: Socket<H::Data>,
        transport: Transport,
    ) -> Self {
        let metrics = SessionMetrics::open(&shared.metrics, transport);
        Driver {
            shared,
            socket,
            links: Vec::new(),
            inbox: Vec::new(),
            ended: Vec::new(),
            drained: Vec::new(),
            writability: Vec::new(),
            timer: DeadlineTimer::default(),
            shrink_when_idle: true,
            session_over: false,
            released: false,
            metrics,
        }
    }

    fn now(&self) -> Instant {
        self.shared.runtime.now()
    }

    fn link(&mut self, id: RequestId) -> Option<&mut Link<R::WebSocket>> {
        self.links.iter_mut().find(|l| l.id == id)
    }

    /// Takes WebSockets the HTTP side finished upgrading.
    fn attach(&mut self) -> bool {
        let arrived = std::mem::take(&mut self.socket.lock().new_ws);
        let progress = !arrived.is_empty();
        for (id, boxed) in arrived {
            let Ok(ws) = boxed.downcast::<R::WebSocket>() else {
                continue;
            };
            match self.link(id) {
                Some(link) if !link.is_attached() => link.attach(*ws),
                // The session dropped this socket meanwhile: so does the driver.
                _ => drop(ws),
            }
        }
        progress
    }

    /// Reads every link that wants reading; what was read (and how links ended) goes to
    /// the session under one lock, with one clock reading.
    fn read(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progress = false;
        let mut more = false;
        for link in &mut self.links {
            if !link.wants_read() {
                continue;
            }
            let id = link.id;
            let inbox = &mut self.inbox;
            let outcome = link.read(cx, READ_BATCH, |m| inbox.push((id, m)));
            progress |= outcome.progress;
            match outcome.end {
                Some(Ok(())) => {
                    link.peer_closed();
                    link.end_reported = true;
                    self.ended.push((id, TransportEnd::Closed));
                }
                Some(Err(e)) => {
                    let end = transport_end(e);
                    // A peer that broke the protocol, or sent too much, still gets a
                    // close frame saying why (the session decides which).
                    if !matches!(
                        end,
                        TransportEnd::Violation(_) | TransportEnd::MessageTooLarge { .. }
                    ) {
                        link.fail();
                    }
                    link.end_reported = true;
                    self.ended.push((id, end));
                }
                None if link.read_everything() => {
                    if std::mem::take(&mut link.drain_asked) {
                        self.drained.push(id);
                    }
                }
                None => more = true,
            }
        }
        progress |= self.report();
        if more {
            // More may be ready: come back after others had a turn.
            cx.waker().wake_by_ref();
        }
        progress
    }

    /// Hands what the links produced to the session, under one lock.
    fn report(&mut self) -> bool {
        if self.inbox.is_empty()
            && self.ended.is_empty()
            && self.drained.is_empty()
            && self.writability.is_empty()
        {
            return false;
        }
        let now = self.now();
        let mut state = self.socket.lock();
        let session = &mut state.session;
        for (id, message) in self.inbox.drain(..) {
            tracing::trace!(sid = %self.socket.shared.sid, ws = id.0, frame = %Frame(&message), "websocket frame received");
            session.handle_ws_message(now, id, message);
        }
        for (id, end) in self.ended.drain(..) {
            session.handle_ws_closed(now, id, end);
        }
        for id in self.drained.drain(..) {
            session.handle_ws_drained(now, id);
        }
        for (id, blocked) in self.writability.drain(..) {
            if blocked {
                session.handle_ws_write_blocked(now, id);
            } else {
                session.handle_ws_writable(now, id);
            }
        }
        true
    }

    /// Runs every action the session has, whatever the links' state.
    fn drain(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progress = false;
        let mut batch = Vec::with_capacity(0);
        loop {
            {
                // Take a batch under one lock; handlers run without it.
                let mut state = self.socket.lock();
                let state = &mut *state;
                self.metrics.take(&mut state.sent, &mut state.session);
                while batch.len() < ACTION_BATCH {
                    match state.session.poll_action() {
                        Some(Action::Release) => {
                            // Under the same lock: from now on a request finds the
                            // session gone (and is answered by the HTTP side), never
                            // handed to a session whose driver has left.
                            state.released = true;
                            batch.push(Action::Release);
                        }
                        Some(a) => batch.push(a),
                        None => break,
                    }
                }
            }
            if batch.is_empty() {
                return progress;
            }
            progress = true;
            for action in batch.drain(..) {
                self.run(cx, action);
            }
            // A link that filled up stops the session's messages before the next batch.
            self.write(cx);
            self.report();
        }
    }

    fn run(&mut self, cx: &mut Context<'_>, action: Action) {
        let _ = cx;
        match action {
            Action::Respond { request, response } => {
                tracing::trace!(sid = %self.socket.sid(), request = request.0, status = %response.status, body = %Body(&response.body), "answer");
                self.reply(request, Reply::Response(*response));
            }
            Action::AcceptWebSocket {
                request,
                headers,
                deflate,
            } => {
                tracing::debug!(sid = %self.socket.sid(), ws = request.0, "websocket accepted");
                self.links.push(Link::pending(request));
                self.reply(request, Reply::AcceptWebSocket(headers, deflate));
            }
            Action::WsSend { ws, message } => {
                tracing::trace!(sid = %self.socket.sid(), ws = ws.0, frame = %Frame(&message), "websocket frame sent");
                if let Some(link) = self.link(ws) {
                    link.push(message);
                }
            }
            Action::WsClose { ws, code, reason } => {
                tracing::debug!(sid = %self.socket.sid(), ws = ws.0, ?code, reason, "closing a websocket");
                if let Some(link) = self.link(ws) {
                    link.close(code, reason);
                }
            }
            Action::WsDrop { ws } => self.links.retain(|l| l.id != ws),
            Action::ReadWebSocket { ws } => match self.link(ws) {
                // Read again even if a read came back empty earlier in this wake-up: the
                // request that asked may have arrived after it.
                Some(link) => link.ask_drain(),
                // No such socket: nothing waits on it.
                None => self.drained.push(ws),
            },
            Action::Event(Event::Message(message)) => {
                self.metrics.received(&message);
                self.shared.handler.on_message(&self.socket, message);
            }
            Action::Event(Event::Upgraded) => {
                self.metrics.upgraded();
                tracing::debug!(sid = %self.socket.sid(), "upgraded to websocket");
                self.shared.handler.on_upgrade(&self.socket);
            }
            Action::Event(Event::UpgradeFailed(failure)) => {
                tracing::debug!(%failure, "upgrade failed");
                self.metrics.upgrade_failed(&failure);
                self.shared
                    .handler
                    .on_upgrade_failed(&self.socket, &failure);
            }
            Action::Event(Event::Closed(reason)) => {
                self.session_over = true;
                self.shared.session_ended();
                tracing::debug!(%reason, "session closed");
                self.metrics.closed(&reason);
                self.shared.handler.on_disconnect(&self.socket, &reason);
            }
            Action::Event(_) => {}
            Action::Release => {
                self.released = true;
                self.links.clear();
                self.shared.sessions.remove(self.socket.sid());
            }
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

    /// Writes what the links hold; notes which stopped or started taking writes.
    fn write(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progress = false;
        for link in &mut self.links {
            match link.write(cx) {
                Ok(p) => progress |= p,
                Err(e) => {
                    link.fail();
                    if !std::mem::replace(&mut link.end_reported, true) {
                        self.ended.push((link.id, transport_end(e)));
                    }
                    progress = true;
                    continue;
                }
            }
            if link.is_closing() {
                continue;
            }
            let blocked = link.is_blocked();
            if blocked != link.reported_blocked {
                link.reported_blocked = blocked;
                self.writability.push((link.id, blocked));
            }
        }
        progress
    }

    fn poll_timer(&mut self, cx: &mut Context<'_>) -> bool {
        let deadline = self.socket.lock().session.poll_timeout();
        if !self.timer.expired(&self.shared.runtime, deadline, cx) {
            return false;
        }
        let now = self.now();
        self.socket.lock().session.handle_timeout(now);
        // Timers fire at the heartbeat's pace: when this wake-up's work is done, give back
        // what the queues grew to.
        self.shrink_when_idle = true;
        true
    }

    /// Flushes every link once, closes the closing ones, forgets the finished ones.
    fn flush(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progress = false;
        for link in &mut self.links {
            if let Err(e) = link.flush(cx) {
                link.fail();
                if !std::mem::replace(&mut link.end_reported, true) {
                    self.ended.push((link.id, transport_end(e)));
                }
                progress = true;
            }
        }
        let before = self.links.len();
        let ended = &mut self.ended;
        self.links.retain(|l| {
            if l.is_done() && !l.end_reported {
                // A close the session asked for completed: the socket is gone.
                ended.push((l.id, TransportEnd::Closed));
            }
            !l.is_done()
        });
        progress | (self.links.len() != before)
    }

    /// Once the session has ended and every socket is gone, keeps only the record of how
    /// it ended in the table (answering late requests until it expires) and lets the
    /// task, its buffers and the session go: ten thousand sessions ending at once then
    /// cost ten thousand small records for `write_timeout`, not ten thousand drivers.
    fn retire(&mut self) -> bool {
        if !self.session_over || self.released || !self.links.is_empty() {
            return false;
        }
        let ended = {
            let mut state = self.socket.lock();
            if !state.replies.is_empty() || !state.new_ws.is_empty() {
                return false;
            }
            let Some(ended) = state.session.retire() else {
                return false;
            };
            // Under the session's lock: a request handed over from now on finds it
            // released, and is answered from the record instead.
            state.released = true;
            ended
        };
        self.shared.sessions.retire(self.now(), ended);
        self.released = true;
        true
    }

    /// Frees the memory of empty queues (the session's and the driver's own), so that an
    /// idle connection costs as little as possible.
    fn shrink(&mut self) {
        self.socket.lock().session.shrink_to_fit();
        if self.inbox.is_empty() {
            self.inbox.shrink_to_fit();
        }
        for link in &mut self.links {
            link.shrink();
        }
        self.links.shrink_to_fit();
    }
}

impl<H: Handler, R: Runtime> Future for Driver<H, R> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        this.socket.shared.wakeup.enter(cx);
        for link in &mut this.links {
            link.new_wakeup();
        }
        loop {
            let mut progress = this.attach();
            progress |= this.read(cx);
            progress |= this.drain(cx);
            progress |= this.write(cx);
            progress |= this.report();
            progress |= this.poll_timer(cx);
            progress |= this.flush(cx);
            this.retire();
            if this.released {
                this.metrics.flush();
                this.socket.shared.wakeup.exit();
                return Poll::Ready(());
            }
            if !progress && !this.socket.shared.wakeup.idle() {
                let upgrading = this.links.iter().any(|l| !l.is_attached());
                if this.shrink_when_idle && !upgrading {
                    this.shrink_when_idle = false;
                    this.shrink();
                }
                this.metrics.flush();
                return Poll::Pending;
            }
        }
    }
}

/// Builds the driver's WebSocket type from a boxed stream handed over by the HTTP side.
pub(crate) fn boxed_ws<W: Send + 'static>(ws: W) -> Box<dyn Any + Send> {
    Box::new(ws)
}
