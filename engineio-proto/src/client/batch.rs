//! Packing queued messages into polling POST bodies under the server's `maxPayload`.

use bytes::Bytes;

use super::outbox::Outbox;
use crate::close::SendError;
use crate::v3::{self, PayloadFormat};
use crate::{Message, Packet, PayloadEncoder, ProtocolVersion};

/// A polling payload being built, in the session's protocol version.
pub(crate) enum Framing {
    V4(PayloadEncoder),
    /// v3 POSTs are text payloads (binary as `b4<base64>`), which every v3 server takes.
    V3(v3::PayloadEncoder),
}

impl Framing {
    pub(crate) fn new(version: ProtocolVersion) -> Framing {
        match version {
            ProtocolVersion::V4 => Framing::V4(PayloadEncoder::new()),
            ProtocolVersion::V3 => Framing::V3(v3::PayloadEncoder::new(PayloadFormat::Text)),
        }
    }

    /// Whether the framing can carry `message` (v4 text cannot hold `U+001E`).
    fn carries(&self, message: &Message) -> bool {
        match self {
            Framing::V4(_) => message.fits_polling(),
            Framing::V3(_) => true,
        }
    }

    fn push(&mut self, packet: &Packet) {
        match self {
            // `carries` was checked for messages; other packets always fit.
            Framing::V4(e) => {
                let _ = e.push(packet);
            }
            Framing::V3(e) => e.push(packet),
        }
    }

    fn len_with(&self, packet: &Packet) -> usize {
        match self {
            Framing::V4(e) => e.len_with(packet),
            Framing::V3(e) => e.len_with(packet),
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            Framing::V4(e) => e.is_empty(),
            Framing::V3(e) => e.is_empty(),
        }
    }

    fn finish(self) -> Bytes {
        match self {
            Framing::V4(e) => e.finish(),
            Framing::V3(e) => e.finish(),
        }
    }

    /// The size of `packet` alone in a payload.
    fn alone(&self, packet: &Packet) -> usize {
        match self {
            Framing::V4(_) => packet.text_len_hint(),
            Framing::V3(_) => v3::PayloadEncoder::new(PayloadFormat::Text).len_with(packet),
        }
    }
}

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

/// Builds the next POST body in `framing` from the front of `outbox`: a pending heartbeat
/// packet first (v4's pong, v3's ping), then as many messages as fit in `limit` bytes (the
/// exact encoded size), then the close packet if `close` is asked for and every message
/// went in.
///
/// A body always carries at least one packet, but never goes over `limit` because of a
/// message: a message that alone is over the limit (or a text message with `U+001E`,
/// which polling cannot carry) is taken out of the queue and reported in `dropped`.
/// Returns `None` when there is nothing to send.
pub(crate) fn next_batch(
    mut enc: Framing,
    heartbeat: Option<Packet>,
    outbox: &mut Outbox,
    close: bool,
    limit: usize,
    dropped: &mut Vec<SendError>,
) -> Option<Batch> {
    if let Some(packet) = heartbeat {
        // A ping or pong is a few bytes and always fits.
        enc.push(&packet);
    }
    let mut messages = 0;
    while let Some(front) = outbox.front() {
        if !enc.carries(front) {
            if let Some(m) = outbox.pop_front() {
                dropped.push(SendError::RecordSeparator(m));
            }
            continue;
        }
        let packet = Packet::Message(front.clone());
        let alone = enc.alone(&packet);
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
        enc.push(&packet);
        outbox.pop_front();
        messages += 1;
    }
    let with_close =
        close && outbox.is_empty() && (enc.is_empty() || enc.len_with(&Packet::Close) <= limit);
    if with_close {
        enc.push(&Packet::Close);
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

    fn v4() -> Framing {
        Framing::new(ProtocolVersion::V4)
    }

    fn v3() -> Framing {
        Framing::new(ProtocolVersion::V3)
    }

    #[test]
    fn v3_batches_are_length_prefixed_with_the_ping_first() {
        // "5:4aaaa" = 7 bytes; two = 14.
        let m = Message::from("aaaa");
        let mut q = queue(&[
            m.clone(),
            m.clone(),
            Message::from(vec![1u8, 2, 3, 4]),
            Message::from("a\u{1e}b"),
        ]);
        let mut dropped = Vec::new();
        let b = next_batch(
            v3(),
            Some(Packet::Ping { probe: false }),
            &mut q,
            false,
            17,
            &mut dropped,
        )
        .unwrap();
        assert_eq!(&b.body[..], b"1:25:4aaaa5:4aaaa");
        assert_eq!(b.messages, 2);
        // Binary as b4<base64>, and U+001E is fine in v3; the close goes last.
        let b = next_batch(v3(), None, &mut q, true, 1000, &mut dropped).unwrap();
        assert_eq!(&b.body[..], "10:b4AQIDBA==4:4a\u{1e}b1:1".as_bytes());
        assert!(b.close && dropped.is_empty());
        // A message over the limit alone is dropped.
        let mut q = queue(&[Message::from("0123456789")]);
        assert_eq!(
            next_batch(v3(), None, &mut q, false, 13, &mut dropped),
            None
        );
        assert!(matches!(
            dropped.as_slice(),
            [SendError::TooLarge {
                size: 14,
                limit: 13,
                ..
            }]
        ));
    }

    #[test]
    fn nothing_to_send() {
        let mut q = Outbox::default();
        let mut dropped = Vec::new();
        assert_eq!(
            next_batch(v4(), None, &mut q, false, 100, &mut dropped),
            None
        );
    }

    #[test]
    fn packs_up_to_the_exact_limit() {
        // "4aaaa" = 5 bytes; two with a separator = 11; three = 17.
        let m = Message::from("aaaa");
        let mut q = queue(&[m.clone(), m.clone(), m.clone()]);
        let mut dropped = Vec::new();
        let b = next_batch(v4(), None, &mut q, false, 11, &mut dropped).unwrap();
        assert_eq!(&b.body[..], b"4aaaa\x1e4aaaa");
        assert_eq!(b.messages, 2);
        assert_eq!(q.len(), 1);
        let b = next_batch(v4(), None, &mut q, false, 11, &mut dropped).unwrap();
        assert_eq!(&b.body[..], b"4aaaa");
        assert!(q.is_empty() && dropped.is_empty());
        // 17 bytes fits all three exactly.
        let mut q = queue(&[m.clone(), m.clone(), m]);
        let b = next_batch(v4(), None, &mut q, false, 17, &mut dropped).unwrap();
        assert_eq!(b.body.len(), 17);
        assert_eq!(b.messages, 3);
    }

    #[test]
    fn pong_first_close_last_binary_as_base64() {
        let mut q = queue(&[Message::from(vec![1u8, 2, 3, 4]), Message::from("x")]);
        let mut dropped = Vec::new();
        let b = next_batch(
            v4(),
            Some(Packet::Pong { probe: false }),
            &mut q,
            true,
            1000,
            &mut dropped,
        )
        .unwrap();
        assert_eq!(&b.body[..], b"3\x1ebAQIDBA==\x1e4x\x1e1");
        assert!(b.close);
        // The close waits for the messages that do not fit.
        let mut q = queue(&[Message::from("aaaa"), Message::from("bbbb")]);
        let b = next_batch(v4(), None, &mut q, true, 7, &mut dropped).unwrap();
        assert_eq!(&b.body[..], b"4aaaa");
        assert!(!b.close);
        let b = next_batch(v4(), None, &mut q, true, 5, &mut dropped).unwrap();
        assert_eq!(&b.body[..], b"4bbbb");
        assert!(!b.close);
        let b = next_batch(v4(), None, &mut q, true, 5, &mut dropped).unwrap();
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
        let b = next_batch(v4(), None, &mut q, false, 5, &mut dropped).unwrap();
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
