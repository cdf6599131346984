//! The application's messages waiting to be sent, counted in messages and in bytes.

use std::collections::VecDeque;

use crate::Message;

/// A FIFO of messages that keeps the sum of their lengths (text in UTF-8, binary as is).
#[derive(Debug, Default, Clone)]
pub(crate) struct Outbox {
    messages: VecDeque<Message>,
    bytes: usize,
}

impl Outbox {
    pub(crate) fn len(&self) -> usize {
        self.messages.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// The bytes of every message waiting.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    pub(crate) fn front(&self) -> Option<&Message> {
        self.messages.front()
    }

    pub(crate) fn push_back(&mut self, message: Message) {
        self.bytes = self.bytes.saturating_add(message.len());
        self.messages.push_back(message);
    }

    pub(crate) fn pop_front(&mut self) -> Option<Message> {
        let message = self.messages.pop_front()?;
        self.bytes = self.bytes.saturating_sub(message.len());
        Some(message)
    }

    /// Takes every message out, in order.
    pub(crate) fn take_all(&mut self) -> VecDeque<Message> {
        self.bytes = 0;
        std::mem::take(&mut self.messages)
    }

    /// Keeps the first messages that fit `max_messages` and `max_bytes` (the first one
    /// always fits the bytes), and returns the rest, in order.
    pub(crate) fn truncate(&mut self, max_messages: usize, max_bytes: usize) -> Vec<Message> {
        let mut kept = Outbox::default();
        let mut rest = Vec::new();
        for message in self.take_all() {
            let fits = kept.len() < max_messages
                && (kept.is_empty() || kept.bytes.saturating_add(message.len()) <= max_bytes);
            if fits && rest.is_empty() {
                kept.push_back(message);
            } else {
                rest.push(message);
            }
        }
        *self = kept;
        rest
    }
}

impl FromIterator<Message> for Outbox {
    fn from_iter<I: IntoIterator<Item = Message>>(iter: I) -> Outbox {
        let mut outbox = Outbox::default();
        for message in iter {
            outbox.push_back(message);
        }
        outbox
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_bytes_and_truncates_in_order() {
        let mut o: Outbox = ["aa", "bbb", "c"].into_iter().map(Message::from).collect();
        assert_eq!((o.len(), o.bytes()), (3, 6));
        assert_eq!(o.pop_front(), Some(Message::from("aa")));
        assert_eq!(o.bytes(), 4);
        o.push_back(Message::from(vec![0u8; 10]));
        let rest = o.truncate(8, 5);
        assert_eq!(rest, [Message::from(vec![0u8; 10])]);
        assert_eq!((o.len(), o.bytes()), (2, 4));
        // The first message is kept whatever its size; order is kept.
        let mut o: Outbox = [Message::from(vec![0u8; 9]), Message::from("x")]
            .into_iter()
            .collect();
        assert_eq!(o.truncate(1, 5), [Message::from("x")]);
        assert_eq!(o.bytes(), 9);
        assert_eq!(o.take_all().len(), 1);
        assert_eq!((o.len(), o.bytes()), (0, 0));
    }
}
