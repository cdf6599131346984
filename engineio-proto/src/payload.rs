//! The HTTP long-polling payload: packets joined by the record separator `\x1e`.

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{DecodeError, EncodeError};
use crate::packet::{Packet, RECORD_SEPARATOR};

/// Limits applied while decoding a polling payload.
///
/// | limit | default | Node `engine.io` | python-engineio |
/// |---|---|---|---|
/// | `max_bytes` | 1,000,000 | `maxHttpBufferSize` 1e6 | `max_http_buffer_size` 1,000,000 |
/// | `max_packets` | unlimited | unlimited | 16 (`max_decode_packets`) |
///
/// The packet count is unlimited by default because the JavaScript client batches as many
/// packets as fit in `maxPayload` into one POST; the byte limit already bounds the work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PayloadLimits {
    /// Largest payload accepted, in bytes.
    pub max_bytes: usize,
    /// Largest number of packets accepted in one payload.
    pub max_packets: usize,
}

impl Default for PayloadLimits {
    fn default() -> Self {
        PayloadLimits {
            max_bytes: 1_000_000,
            max_packets: usize::MAX,
        }
    }
}

/// Decodes a polling payload, checking its size first.
///
/// Returns an iterator of packets; decoding is lazy and stops at the first error (the
/// iterator then ends). Text data is not copied: each text message points into `body`.
///
/// ```
/// use bytes::Bytes;
/// use engineio_proto::{decode_payload, Packet, PayloadLimits};
///
/// let body = Bytes::from_static(b"4hello\x1e2\x1ebAQIDBA==");
/// let packets: Result<Vec<_>, _> = decode_payload(body, PayloadLimits::default()).unwrap().collect();
/// assert_eq!(
///     packets.unwrap(),
///     [Packet::text("hello"), Packet::Ping { probe: false }, Packet::binary(vec![1, 2, 3, 4])]
/// );
/// ```
pub fn decode_payload(body: Bytes, limits: PayloadLimits) -> Result<PayloadDecoder, DecodeError> {
    if body.len() > limits.max_bytes {
        return Err(DecodeError::PayloadTooLarge {
            size: body.len(),
            limit: limits.max_bytes,
        });
    }
    Ok(PayloadDecoder {
        rest: Some(body),
        count: 0,
        max_packets: limits.max_packets,
    })
}

/// Iterator over the packets of a polling payload; see [`decode_payload`].
///
/// An empty payload, or an empty record (two separators in a row, a trailing separator),
/// yields [`DecodeError::EmptyPacket`]. After the first error the iterator is exhausted.
#[derive(Debug, Clone)]
pub struct PayloadDecoder {
    rest: Option<Bytes>,
    count: usize,
    max_packets: usize,
}

impl Iterator for PayloadDecoder {
    type Item = Result<Packet, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut rest = self.rest.take()?;
        if self.count >= self.max_packets {
            return Some(Err(DecodeError::TooManyPackets {
                limit: self.max_packets,
            }));
        }
        self.count += 1;
        let record = match rest.iter().position(|&b| b == RECORD_SEPARATOR) {
            Some(at) => {
                let record = rest.split_to(at);
                // Drop the separator; what is left (possibly empty) is the next record.
                let _ = rest.split_to(1);
                self.rest = Some(rest);
                record
            }
            None => rest,
        };
        let decoded = Packet::decode_record(record);
        if decoded.is_err() {
            self.rest = None;
        }
        Some(decoded)
    }
}

impl std::iter::FusedIterator for PayloadDecoder {}

/// Builds a polling payload one packet at a time.
///
/// ```
/// use engineio_proto::{Packet, PayloadEncoder};
///
/// let mut enc = PayloadEncoder::new();
/// enc.push(&Packet::text("hello")).unwrap();
/// enc.push(&Packet::binary(vec![1, 2, 3, 4])).unwrap();
/// assert_eq!(enc.len_with(&Packet::Noop), 18); // "4hello" + \x1e + "bAQIDBA==" + \x1e + "6"
/// assert_eq!(&enc.finish()[..], b"4hello\x1ebAQIDBA==");
/// ```
#[derive(Debug, Default, Clone)]
pub struct PayloadEncoder {
    buf: BytesMut,
    packets: usize,
}

impl PayloadEncoder {
    /// An empty payload.
    pub fn new() -> Self {
        PayloadEncoder::default()
    }

    /// An empty payload with room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        PayloadEncoder {
            buf: BytesMut::with_capacity(capacity),
            packets: 0,
        }
    }

    /// Appends a packet. A text message holding `\x1e` cannot be framed and is refused;
    /// nothing is written in that case.
    pub fn push(&mut self, packet: &Packet) -> Result<(), EncodeError> {
        if let Packet::Message(m) = packet
            && !m.fits_polling()
        {
            return Err(EncodeError::RecordSeparatorInText);
        }
        if self.packets > 0 {
            self.buf.put_u8(RECORD_SEPARATOR);
        }
        packet.write_text(&mut self.buf);
        self.packets += 1;
        Ok(())
    }

    /// The payload's length in bytes if `packet` were pushed now (exact for every packet
    /// but the open packet, whose length is estimated).
    pub fn len_with(&self, packet: &Packet) -> usize {
        self.buf.len() + usize::from(self.packets > 0) + packet.text_len_hint()
    }

    /// The payload's current length in bytes.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether no packet was pushed.
    pub fn is_empty(&self) -> bool {
        self.packets == 0
    }

    /// How many packets were pushed.
    pub fn packet_count(&self) -> usize {
        self.packets
    }

    /// The finished payload.
    pub fn finish(self) -> Bytes {
        self.buf.freeze()
    }
}

/// Encodes packets as one polling payload.
///
/// ```
/// use engineio_proto::{encode_payload, Packet};
///
/// let body = encode_payload(&[Packet::text("hello"), Packet::Ping { probe: false }]).unwrap();
/// assert_eq!(&body[..], b"4hello\x1e2");
/// ```
pub fn encode_payload<'a>(
    packets: impl IntoIterator<Item = &'a Packet>,
) -> Result<Bytes, EncodeError> {
    let mut enc = PayloadEncoder::new();
    for p in packets {
        enc.push(p)?;
    }
    Ok(enc.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::Message;

    fn decode_all(body: &[u8]) -> Result<Vec<Packet>, DecodeError> {
        decode_payload(Bytes::copy_from_slice(body), PayloadLimits::default())?.collect()
    }

    #[test]
    fn payload_vectors() {
        assert_eq!(decode_all(b"4hello"), Ok(vec![Packet::text("hello")]));
        assert_eq!(
            decode_all(b"4hello\x1e2\x1e4world"),
            Ok(vec![
                Packet::text("hello"),
                Packet::Ping { probe: false },
                Packet::text("world")
            ])
        );
        assert_eq!(
            decode_all(b"4hello\x1ebAQIDBA=="),
            Ok(vec![
                Packet::text("hello"),
                Packet::binary(vec![1, 2, 3, 4])
            ])
        );
        assert_eq!(
            decode_all("4€\x1e4😀\x1e1".as_bytes()),
            Ok(vec![Packet::text("€"), Packet::text("😀"), Packet::Close])
        );
        assert_eq!(
            decode_all(b"6\x1e4\x1eb"),
            Ok(vec![Packet::Noop, Packet::text(""), Packet::binary(vec![])])
        );
    }

    #[test]
    fn empty_body_and_empty_records_are_errors() {
        assert_eq!(decode_all(b""), Err(DecodeError::EmptyPacket));
        assert_eq!(decode_all(b"4a\x1e"), Err(DecodeError::EmptyPacket));
        assert_eq!(decode_all(b"\x1e4a"), Err(DecodeError::EmptyPacket));
        assert_eq!(decode_all(b"4a\x1e\x1e4b"), Err(DecodeError::EmptyPacket));
    }

    #[test]
    fn decoding_stops_at_the_first_error() {
        let mut it = decode_payload(
            Bytes::from_static(b"4a\x1e9\x1e4b"),
            PayloadLimits::default(),
        )
        .unwrap();
        assert_eq!(it.next(), Some(Ok(Packet::text("a"))));
        assert_eq!(
            it.next(),
            Some(Err(DecodeError::UnknownPacketType { byte: b'9' }))
        );
        assert_eq!(it.next(), None);
        assert_eq!(it.next(), None);
    }

    #[test]
    fn size_limit_counts_bytes_of_the_whole_body() {
        let limits = PayloadLimits {
            max_bytes: 6,
            ..PayloadLimits::default()
        };
        assert!(decode_payload(Bytes::from_static(b"4hello"), limits).is_ok());
        assert_eq!(
            decode_payload(Bytes::from_static(b"4hello!"), limits).unwrap_err(),
            DecodeError::PayloadTooLarge { size: 7, limit: 6 }
        );
        // Multi-byte characters count as bytes: "4€€" is 7 bytes.
        assert!(matches!(
            decode_payload(Bytes::from("4€€".as_bytes()), limits),
            Err(DecodeError::PayloadTooLarge { size: 7, .. })
        ));
    }

    #[test]
    fn packet_count_limit() {
        let limits = PayloadLimits {
            max_packets: 2,
            ..PayloadLimits::default()
        };
        let two: Result<Vec<_>, _> = decode_payload(Bytes::from_static(b"6\x1e6"), limits)
            .unwrap()
            .collect();
        assert_eq!(two.unwrap().len(), 2);
        let three: Result<Vec<_>, _> = decode_payload(Bytes::from_static(b"6\x1e6\x1e6"), limits)
            .unwrap()
            .collect();
        assert_eq!(three, Err(DecodeError::TooManyPackets { limit: 2 }));
    }

    #[test]
    fn hundred_megabytes_of_separators_end_at_once() {
        let body = Bytes::from(vec![RECORD_SEPARATOR; 100 * 1024 * 1024]);
        let limits = PayloadLimits {
            max_bytes: usize::MAX,
            ..PayloadLimits::default()
        };
        let mut it = decode_payload(body, limits).unwrap();
        assert_eq!(it.next(), Some(Err(DecodeError::EmptyPacket)));
        assert_eq!(it.next(), None);
    }

    #[test]
    fn text_data_points_into_the_body() {
        let body = Bytes::from(b"4abc\x1e4def".to_vec());
        let base = body.as_ptr();
        let packets: Vec<_> = decode_payload(body, PayloadLimits::default())
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let Packet::Message(Message::Text(second)) = &packets[1] else {
            panic!()
        };
        assert_eq!(second.as_bytes().as_ptr(), base.wrapping_add(6));
    }

    #[test]
    fn encoder_refuses_record_separator_in_text_and_writes_nothing() {
        let mut enc = PayloadEncoder::new();
        enc.push(&Packet::text("ok")).unwrap();
        assert_eq!(
            enc.push(&Packet::text("a\u{1e}b")),
            Err(EncodeError::RecordSeparatorInText)
        );
        // Binary holding 0x1e is fine: it is base64 in a payload.
        enc.push(&Packet::binary(vec![0x1e])).unwrap();
        assert_eq!(enc.packet_count(), 2);
        assert_eq!(&enc.finish()[..], b"4ok\x1ebHg==");
    }

    #[test]
    fn len_with_is_exact() {
        let mut enc = PayloadEncoder::new();
        for p in [
            Packet::text("héllo"),
            Packet::binary(vec![1, 2]),
            Packet::Ping { probe: true },
            Packet::Close,
            Packet::binary(vec![]),
        ] {
            let predicted = enc.len_with(&p);
            enc.push(&p).unwrap();
            assert_eq!(enc.len(), predicted, "{p:?}");
        }
        assert!(!enc.is_empty());
    }
}
