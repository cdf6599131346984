//! Packing queued messages into polling POST bodies under the server's `maxPayload`.

use bytes::Bytes;

use super::outbox::Outbox;
use crate::close::SendError;
use crate::{Packet, PayloadEncoder};

/// One POST body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Batch {
    /// The payload.
    pub(crate) body: Bytes,
    /// How many application messages it carries.
    pub(crate) messages: usize,
    /// Whether it ends with the close packet.
    pub(crate) close: bool,
}

/// Builds the next POST body from the front of `outbox`: a pending pong first, then as
/// many messages as fit in `limit` bytes (the exact encoded size), then the close packet
/// if `close` is asked for and every message went in.
///
/// A body always carries at least one packet, but never goes over `limit` because of a
/// message: a message that alone is over the limit (or a text message with `U+001E`,
/// which polling cannot carry) is taken out of the queue and reported in `dropped`.
/// Returns `None` when there is nothing to send.
pub(crate) fn next_batch(
    pong: bool,
    outbox: &mut Outbox,
    close: bool,
    limit: usize,
    dropped: &mut Vec<SendError>,
) -> Option<Batch> {
    let mut enc = PayloadEncoder::new();
    if pong {
        // A pong is one byte and always fits.
        let _ = enc.push(&Packet::Pong { probe: false });
    }
    let mut messages = 0;
    while let Some(front) = outbox.front() {
        if !front.fits_polling() {
            if let Some(m) = outbox.pop_front() {
                dropped.push(SendError::RecordSeparator(m));
            }
            continue;
        }
        let packet = Packet::Message(front.clone());
        let alone = packet.text_len_hint();
        if alone > limit {
            if let Some(message) = outbox.pop_front() {
                dropped.push(SendError::TooLarge {
                    message,
                    size: alone,
                    limit,
                });
            }
            continue;
        }
        if enc.len_with(&packet) > limit {
            break;
        }
        if enc.push(&packet).is_err() {
            break;
        }
        outbox.pop_front();
        messages += 1;
    }
    let with_close =
        close && outbox.is_empty() && (enc.is_empty() || enc.len_with(&Packet::Close) <= limit);
    if with_close {
        let _ = enc.push(&Packet::Close);
    }
    if enc.is_empty() {
        return None;
    }
    Some(Batch {
        body: enc.finish(),
        messages,
        close: with_close,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Message;

    fn queue(items: &[Message]) -> Outbox {
        items.iter().cloned().collect()
    }

    #[test]
    fn nothing_to_send() {
        let mut q = Outbox::default();
        let mut dropped = Vec::new();
        assert_eq!(next_batch(false, &mut q, false, 100, &mut dropped), None);
    }

    #[test]
    fn packs_up_to_the_exact_limit() {
        // "4aaaa" = 5 bytes; two with a separator = 11; three = 17.
        let m = Message::from("aaaa");
        let mut q = queue(&[m.clone(), m.clone(), m.clone()]);
        let mut dropped = Vec::new();
        let b = next_batch(false, &mut q, false, 11, &mut dropped).unwrap();
        assert_eq!(&b.body[..], b"4aaaa\x1e4aaaa");
        assert_eq!(b.messages, 2);
        assert_eq!(q.len(), 1);
        let b = next_batch(false, &mut q, false, 11, &mut dropped).unwrap();
        assert_eq!(&b.body[..], b"4aaaa");
        assert!(q.is_empty() && dropped.is_empty());
        // 17 bytes fits all three exactly.
        let mut q = queue(&[m.clone(), m.clone(), m]);
        let b = next_batch(false, &mut q, false, 17, &mut dropped).unwrap();
        assert_eq!(b.body.len(), 17);
        assert_eq!(b.messages, 3);
    }

    #[test]
    fn pong_first_close_last_binary_as_base64() {
        let mut q = queue(&[Message::from(vec![1u8, 2, 3, 4]), Message::from("x")]);
        let mut dropped = Vec::new();
        let b = next_batch(true, &mut q, true, 1000, &mut dropped).unwrap();
        assert_eq!(&b.body[..], b"3\x1ebAQIDBA==\x1e4x\x1e1");
        assert!(b.close);
        // The close waits for the messages that do not fit.
        let mut q = queue(&[Message::from("aaaa"), Message::from("bbbb")]);
        let b = next_batch(false, &mut q, true, 7, &mut dropped).unwrap();
        assert_eq!(&b.body[..], b"4aaaa");
        assert!(!b.close);
        let b = next_batch(false, &mut q, true, 5, &mut dropped).unwrap();
        assert_eq!(&b.body[..], b"4bbbb");
        assert!(!b.close);
        let b = next_batch(false, &mut q, true, 5, &mut dropped).unwrap();
        assert_eq!(&b.body[..], b"1");
        assert!(b.close);
    }

    #[test]
    fn oversized_and_unframeable_messages_are_dropped_not_sent() {
        let mut q = queue(&[
            Message::from("0123456789"),
            Message::from("a\u{1e}b"),
            Message::from("ok"),
        ]);
        let mut dropped = Vec::new();
        let b = next_batch(false, &mut q, false, 5, &mut dropped).unwrap();
        assert_eq!(&b.body[..], b"4ok");
        assert!(matches!(
            dropped.as_slice(),
            [
                SendError::TooLarge {
                    size: 11,
                    limit: 5,
                    ..
                },
                SendError::RecordSeparator(_)
            ]
        ));
    }
}
