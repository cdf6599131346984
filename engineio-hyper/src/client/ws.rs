//! The client's WebSockets: at most two live ones (the session's, and a probe during an
//! upgrade), each connecting or open, plus ones closing. Each open socket is a shared
//! [`Link`] (the server driver's too): batched reads, one flush per wake-up, the close.
//! Application messages are pulled from the state machine only while the socket takes
//! them, so that a server that stops reading makes the machine's bounded queue fill (and
//! `send` refuse) instead of a buffer here.
//!
//! This module knows nothing of the state machine: the driver hands it control messages,
//! closes and drops, a closure that pulls application messages, and takes what was read
//! and how sockets ended. How long a closing socket may take is the machine's decision
//! (it asks for a drop).

use std::task::Context;

use engineio_proto::{CloseCode, RequestId, TransportEnd, WsMessage};
use futures_util::future::AbortHandle;

use crate::link::Link;
use crate::runtime::WebSocketIo;
use crate::ws::transport_end;

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

/// The client's WebSockets.
pub(super) struct Sockets<W> {
    slots: Vec<(RequestId, Slot<W>)>,
}

impl<W> Default for Sockets<W> {
    fn default() -> Self {
        Sockets { slots: Vec::new() }
    }
}

impl<W: WebSocketIo> Sockets<W> {
    fn link(&mut self, id: RequestId) -> Option<&mut Link<W>> {
        self.slots.iter_mut().find_map(|(i, slot)| match slot {
            Slot::Open(link) if *i == id => Some(link),
            _ => None,
        })
    }

    /// WebSocket `id` is connecting; `abort` cancels it.
    pub(super) fn connecting(&mut self, id: RequestId, abort: AbortHandle) {
        self.slots.push((id, Slot::Connecting(abort)));
    }

    /// WebSocket `id` connected. `false` when it was given up meanwhile (then it is
    /// dropped).
    pub(super) fn connected(&mut self, id: RequestId, ws: W) -> bool {
        match self.slots.iter_mut().find(|(i, _)| *i == id) {
            Some((_, slot @ Slot::Connecting(_))) => {
                let mut link = Link::pending(id);
                link.attach(ws);
                *slot = Slot::Open(link);
                true
            }
            _ => false,
        }
    }

    /// WebSocket `id` failed to connect.
    pub(super) fn failed(&mut self, id: RequestId) {
        self.slots.retain(|(i, _)| *i != id);
    }

    /// Queues a control message on `id` (in order, ahead of pulled messages not yet
    /// taken).
    pub(super) fn send(&mut self, id: RequestId, message: WsMessage) {
        if let Some(link) = self.link(id) {
            link.push(message);
        }
    }

    /// Closes `id`: what is queued goes out, then the close frame, then the socket is
    /// dropped. A connecting socket is cancelled.
    pub(super) fn close(&mut self, id: RequestId, code: CloseCode, reason: &'static str) {
        let Some(pos) = self.slots.iter().position(|(i, _)| *i == id) else {
            return;
        };
        match &mut self.slots[pos].1 {
            Slot::Connecting(abort) => {
                abort.abort();
                self.slots.swap_remove(pos);
            }
            Slot::Open(link) => link.close(code, reason),
        }
    }

    /// Drops `id` at once, whatever it still had to write.
    pub(super) fn drop_socket(&mut self, id: RequestId) {
        if let Some(pos) = self.slots.iter().position(|(i, _)| *i == id) {
            if let Slot::Connecting(abort) = &self.slots[pos].1 {
                abort.abort();
            }
            self.slots.swap_remove(pos);
        }
    }

    /// Cancels every connect and drops every socket the machine has not closed (it has
    /// finished: they are not its any more); closing ones go on closing.
    pub(super) fn shutdown(&mut self) {
        self.slots.retain(|(_, slot)| match slot {
            Slot::Connecting(abort) => {
                abort.abort();
                false
            }
            Slot::Open(link) => link.is_closing(),
        });
    }

    /// Whether no socket is left.
    pub(super) fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Whether an open socket has something waiting to go out.
    pub(super) fn is_writing(&self) -> bool {
        self.slots
            .iter()
            .any(|(_, slot)| matches!(slot, Slot::Open(link) if link.is_writing()))
    }

    /// A new wake-up: reading may be tried again.
    pub(super) fn new_wakeup(&mut self) {
        for (_, slot) in &mut self.slots {
            if let Slot::Open(link) = slot {
                link.new_wakeup();
            }
        }
    }

    /// Writes: for each open socket, what is queued, then batches from `pull` while it
    /// takes them (not for a closing socket), then one flush; closing sockets that are
    /// done are forgotten. `pull(id, batch)` appends the next application messages for
    /// `id` (none when it has nothing).
    pub(super) fn write(
        &mut self,
        cx: &mut Context<'_>,
        mut pull: impl FnMut(RequestId, &mut Vec<WsMessage>),
        outcome: &mut Outcome,
    ) {
        let mut batch = Vec::new();
        for (id, slot) in self.slots.iter_mut() {
            let Slot::Open(link) = slot else { continue };
            match write_link(cx, *id, link, &mut pull, &mut batch) {
                Ok(progress) => outcome.progress |= progress,
                Err(e) => {
                    link.fail();
                    outcome.progress = true;
                    if !std::mem::replace(&mut link.end_reported, true) {
                        outcome.ended.push((*id, transport_end(e)));
                    }
                }
            }
        }
        self.forget_done(outcome);
    }

    /// Reads up to a batch from each open socket.
    pub(super) fn read(&mut self, cx: &mut Context<'_>, outcome: &mut Outcome) {
        for (id, slot) in self.slots.iter_mut() {
            let Slot::Open(link) = slot else { continue };
            if !link.wants_read() {
                continue;
            }
            let id = *id;
            let received = &mut outcome.received;
            let mut read = 0;
            let result = link.read(cx, READ_BATCH, |m| {
                read += 1;
                received.push((id, m));
            });
            outcome.progress |= result.progress;
            outcome.more |= read == READ_BATCH;
            match result.end {
                None => {}
                Some(Ok(())) => {
                    // The library queued its close reply: it goes out while closing.
                    link.peer_closed();
                    link.end_reported = true;
                    outcome.progress = true;
                    outcome.ended.push((id, TransportEnd::Closed));
                }
                Some(Err(e)) => {
                    let end = transport_end(e);
                    // After a violation or an oversized message the machine still sends a
                    // close frame saying why; otherwise the socket is gone.
                    if !matches!(
                        end,
                        TransportEnd::Violation(_) | TransportEnd::MessageTooLarge { .. }
                    ) {
                        link.fail();
                    }
                    link.end_reported = true;
                    outcome.progress = true;
                    outcome.ended.push((id, end));
                }
            }
        }
    }

    /// Forgets sockets whose close completed (or that failed), telling the machine about
    /// the ones it had not heard end.
    fn forget_done(&mut self, outcome: &mut Outcome) {
        self.slots.retain(|(id, slot)| match slot {
            Slot::Open(link) if link.is_done() => {
                if !link.end_reported {
                    outcome.ended.push((*id, TransportEnd::Closed));
                }
                outcome.progress = true;
                false
            }
            _ => true,
        });
    }
}

/// Writes one socket; `Err` when it failed.
fn write_link<W: WebSocketIo>(
    cx: &mut Context<'_>,
    id: RequestId,
    link: &mut Link<W>,
    pull: &mut impl FnMut(RequestId, &mut Vec<WsMessage>),
    batch: &mut Vec<WsMessage>,
) -> Result<bool, crate::ws::WsError> {
    let mut progress = link.write(cx)?;
    if !link.is_closing() {
        for _ in 0..WRITE_ROUNDS {
            // Pull only when the socket takes more: what it does not take stays in the
            // machine's bounded queue.
            if link.is_blocked() || !link.ready(cx)? {
                break;
            }
            batch.clear();
            pull(id, batch);
            if batch.is_empty() {
                break;
            }
            for m in batch.drain(..) {
                link.push(m);
            }
            progress |= link.write(cx)?;
        }
    }
    link.flush(cx)?;
    Ok(progress)
}
