//! The callback style of receiving: [`ClientHandler`], driven by [`Client::run`](super::Client::run).

use engineio_proto::client::ClientEvent;
use engineio_proto::{CloseReason, Handshake, Message};

use super::ClientSender;

/// Callbacks for a client's events, for [`Client::run`](super::Client::run)
/// (python-engineio's `@eio.on('connect')`, `'message'` and `'disconnect'`; Node
/// engine.io-client's `open`, `message`, `upgrade` and `close` events). Each gets a
/// [`ClientSender`] to answer with. Only `on_message` is required.
pub trait ClientHandler: Send {
    /// A session is open: the first one, or a new one after a reconnection.
    fn on_open(&mut self, sender: &ClientSender, handshake: &Handshake) {
        let _ = (sender, handshake);
    }

    /// The server sent a message.
    fn on_message(&mut self, sender: &ClientSender, message: Message);

    /// The connection moved from polling to WebSocket.
    fn on_upgrade(&mut self, sender: &ClientSender) {
        let _ = sender;
    }

    /// The open session ended (a reconnection may follow, when configured).
    fn on_disconnect(&mut self, reason: &CloseReason) {
        let _ = reason;
    }

    /// Every other event: failed attempts, reconnection attempts, messages that could not
    /// be sent ([`ClientEvent::SendFailed`], with the message inside).
    fn on_event(&mut self, sender: &ClientSender, event: ClientEvent) {
        let _ = (sender, event);
    }
}

pub(super) fn dispatch(
    handler: &mut impl ClientHandler,
    sender: &ClientSender,
    event: ClientEvent,
) {
    match event {
        ClientEvent::Message(m) => handler.on_message(sender, m),
        ClientEvent::Connected(hs) | ClientEvent::Reconnected(hs) => handler.on_open(sender, &hs),
        ClientEvent::Upgraded => handler.on_upgrade(sender),
        ClientEvent::Disconnected(reason) => handler.on_disconnect(&reason),
        other => handler.on_event(sender, other),
    }
}
