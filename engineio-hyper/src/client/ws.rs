//! The client's WebSockets: at most two (the session's, and a probe during an upgrade),
//! each connecting or open. Reads come in batches; writes are pulled from the state
//! machine only while the socket takes them, so that a server that stops reading makes
//! the machine's bounded queue fill (and `send` refuse) instead of a buffer here; one
//! flush per wake-up; a socket that ended or was closed lingers until its close frame is
//! out.
//!
//! This module knows nothing of the state machine: the driver hands it control messages,
//! a closure that pulls application messages, and takes what was read and how sockets
//! ended.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use engineio_proto::{RequestId, TransportEnd, WsMessage};
use futures_util::future::AbortHandle;

use crate::runtime::WebSocketIo;
use crate::ws::{Incoming, from_tungstenite, send_close, to_tungstenite, transport_end};

/// Messages read from one socket before the others (and the timer) get a turn.
const READ_BATCH: usize = 64;
/// Application messages pulled at once (under one lock of the machine), at most.
pub(super) const PULL_MESSAGES: usize = 64;
/// Bytes pulled at once, about: a batch stops once it holds this much.
pub(super) const PULL_BYTES: usize = 64 * 1024;
/// Pull batches written in one call before others get a turn.
const WRITE_ROUNDS: usize = 16;

enum Slot<W> {
    Connecting(AbortHandle),
    Open(Link<W>),
}

struct Link<W> {
    ws: W,
    /// Messages taken (control messages, and one pulled batch) not yet in the sink.
    out: VecDeque<tungstenite::Message>,
    /// The sink holds data that needs a flush.
    flush: bool,
}

/// What one pass over the sockets did.
#[derive(Default)]
pub(super) struct Outcome {
    /// Something moved.
    pub(super) progress: bool,
    /// There is more to do right away (a read batch was full).
    pub(super) more: bool,
    /// Messages read, in order, by socket.
    pub(super) received: Vec<(RequestId, WsMessage)>,
    /// Sockets that ended, and how.
    pub(super) ended: Vec<(RequestId, TransportEnd)>,
}

/// The client's WebSockets, and the ones closing.
pub(super) struct Sockets<W> {
    slots: Vec<(RequestId, Slot<W>)>,
    closing: Vec<W>,
}

impl<W> Default for Sockets<W> {
    fn default() -> Self {
        Sockets {
            slots: Vec::new(),
            closing: Vec::new(),
        }
    }
}

impl<W: WebSocketIo> Sockets<W> {
    /// WebSocket `id` is connecting; `abort` cancels it.
    pub(super) fn connecting(&mut self, id: RequestId, abort: AbortHandle) {
        self.slots.push((id, Slot::Connecting(abort)));
    }

    /// WebSocket `id` connected. `false` when it was given up meanwhile (then it is
    /// closed).
    pub(super) fn connected(&mut self, id: RequestId, ws: W) -> bool {
        match self.slots.iter_mut().find(|(i, _)| *i == id) {
            Some((_, slot @ Slot::Connecting(_))) => {
                *slot = Slot::Open(Link {
                    ws,
                    out: VecDeque::new(),
                    flush: false,
                });
                true
            }
            _ => {
                self.closing.push(ws);
                false
            }
        }
    }

    /// WebSocket `id` failed to connect.
    pub(super) fn failed(&mut self, id: RequestId) {
        self.slots.retain(|(i, _)| *i != id);
    }

    /// Queues a control message on `id` (in order, ahead of pulled messages not yet
    /// taken).
    pub(super) fn send(&mut self, id: RequestId, message: WsMessage) {
        if let Some((_, Slot::Open(link))) = self.slots.iter_mut().find(|(i, _)| *i == id) {
            link.out.push_back(to_tungstenite(message));
        }
    }

    /// Closes `id`: what is taken goes out if the sink takes it now, then the close
    /// frame; the socket lingers until that is flushed. A connecting socket is cancelled.
    pub(super) fn close(
        &mut self,
        cx: &mut Context<'_>,
        id: RequestId,
        code: u16,
        reason: &'static str,
    ) {
        let Some(pos) = self.slots.iter().position(|(i, _)| *i == id) else {
            return;
        };
        match self.slots.swap_remove(pos).1 {
            Slot::Connecting(abort) => abort.abort(),
            Slot::Open(mut link) => {
                for m in link.out.drain(..) {
                    match Pin::new(&mut link.ws).poll_ready(cx) {
                        Poll::Ready(Ok(())) => {
                            let _ = Pin::new(&mut link.ws).start_send(m);
                        }
                        _ => break,
                    }
                }
                send_close(cx, &mut link.ws, code, reason);
                self.closing.push(link.ws);
            }
        }
    }

    /// Cancels every connect and closes every open socket (they linger).
    pub(super) fn shutdown(&mut self) {
        for (_, slot) in self.slots.drain(..) {
            match slot {
                Slot::Connecting(abort) => abort.abort(),
                Slot::Open(link) => self.closing.push(link.ws),
            }
        }
    }

    /// Drops every socket, lingering or not.
    pub(super) fn clear(&mut self) {
        self.shutdown();
        self.closing.clear();
    }

    /// Whether no socket is lingering.
    pub(super) fn nothing_lingers(&self) -> bool {
        self.closing.is_empty()
    }

    /// Writes: for each open socket, what is taken, then batches from `pull` while the
    /// sink is ready, then one flush. `pull(id, batch)` appends the next application
    /// messages for `id` (none when it has nothing).
    pub(super) fn write(
        &mut self,
        cx: &mut Context<'_>,
        mut pull: impl FnMut(RequestId, &mut Vec<WsMessage>),
        outcome: &mut Outcome,
    ) {
        let mut batch = Vec::new();
        let mut failed = Vec::new();
        for (id, slot) in self.slots.iter_mut() {
            let Slot::Open(link) = slot else { continue };
            match write_link(cx, *id, link, &mut pull, &mut batch) {
                Ok(progress) => outcome.progress |= progress,
                Err(end) => failed.push((*id, end)),
            }
        }
        for (id, end) in failed {
            self.remove_open(id);
            outcome.progress = true;
            outcome.ended.push((id, end));
        }
        self.closing
            .retain_mut(|ws| matches!(Pin::new(ws).poll_close(cx), Poll::Pending));
    }

    /// Reads up to a batch from each open socket.
    pub(super) fn read(&mut self, cx: &mut Context<'_>, outcome: &mut Outcome) {
        let mut ended = Vec::new();
        for (id, slot) in self.slots.iter_mut() {
            let Slot::Open(link) = slot else { continue };
            let mut read = 0;
            while read < READ_BATCH {
                match Pin::new(&mut link.ws).poll_next(cx) {
                    Poll::Pending => break,
                    Poll::Ready(Some(Ok(m))) => {
                        read += 1;
                        match from_tungstenite(m) {
                            Incoming::Data(m) => outcome.received.push((*id, m)),
                            Incoming::Close => {
                                ended.push((*id, TransportEnd::Closed));
                                break;
                            }
                            // tungstenite queued the pong; it goes with the next flush.
                            Incoming::Ping => link.flush = true,
                            Incoming::Ignore => {}
                        }
                    }
                    Poll::Ready(Some(Err(e))) => {
                        ended.push((*id, transport_end(e)));
                        break;
                    }
                    Poll::Ready(None) => {
                        ended.push((*id, TransportEnd::Closed));
                        break;
                    }
                }
            }
            outcome.progress |= read > 0;
            outcome.more |= read == READ_BATCH;
        }
        for (id, end) in ended {
            // It lingers to flush the close reply tungstenite queued.
            self.remove_open(id);
            outcome.progress = true;
            outcome.ended.push((id, end));
        }
    }

    fn remove_open(&mut self, id: RequestId) {
        if let Some(pos) = self.slots.iter().position(|(i, _)| *i == id)
            && let (_, Slot::Open(link)) = self.slots.swap_remove(pos)
        {
            self.closing.push(link.ws);
        }
    }
}

/// Writes one socket; `Err` when it failed.
fn write_link<W: WebSocketIo>(
    cx: &mut Context<'_>,
    id: RequestId,
    link: &mut Link<W>,
    pull: &mut impl FnMut(RequestId, &mut Vec<WsMessage>),
    batch: &mut Vec<WsMessage>,
) -> Result<bool, TransportEnd> {
    let mut progress = false;
    'rounds: for _ in 0..WRITE_ROUNDS {
        if link.out.is_empty() {
            // Pull only when the sink takes more: what it does not take stays in the
            // machine's bounded queue.
            match Pin::new(&mut link.ws).poll_ready(cx) {
                Poll::Pending => break,
                Poll::Ready(Err(e)) => return Err(transport_end(e)),
                Poll::Ready(Ok(())) => {}
            }
            batch.clear();
            pull(id, batch);
            if batch.is_empty() {
                break;
            }
            link.out.extend(batch.drain(..).map(to_tungstenite));
        }
        while !link.out.is_empty() {
            match Pin::new(&mut link.ws).poll_ready(cx) {
                Poll::Pending => break 'rounds,
                Poll::Ready(Err(e)) => return Err(transport_end(e)),
                Poll::Ready(Ok(())) => {}
            }
            let Some(m) = link.out.pop_front() else { break };
            Pin::new(&mut link.ws)
                .start_send(m)
                .map_err(transport_end)?;
            link.flush = true;
            progress = true;
        }
    }
    if link.flush {
        match Pin::new(&mut link.ws).poll_flush(cx) {
            Poll::Ready(Ok(())) => link.flush = false,
            Poll::Ready(Err(e)) => return Err(transport_end(e)),
            Poll::Pending => {}
        }
    }
    Ok(progress)
}
