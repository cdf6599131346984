//! The Engine.IO v3 wire forms (`EIO=3`, spoken by Socket.IO 1.x/2.x clients and servers).
//!
//! The packets are the same seven types as in v4 and their text form is the same
//! (`4hello`, `2probe`, `0{...}`), with two exceptions and a different polling framing:
//!
//! - **Binary in text** is `b` + the type digit + standard base64: `b4AQIDBA==` (v4 has no
//!   type digit: `bAQIDBA==`).
//! - **Binary WebSocket frames** start with the packet type as a number (`0x04`), then the
//!   data (v4 frames hold only the data).
//! - **Text polling payloads** ([`PayloadFormat::Text`]) prefix every packet with its
//!   length and a colon, the length counted in UTF-16 code units (JavaScript's
//!   `string.length`): `6:4hello2:4€3:4😀` (`€` counts 1, `😀` counts 2). There is no
//!   separator, so text may hold any character, `U+001E` included.
//! - **Binary polling payloads** ([`PayloadFormat::Binary`], `Content-Type:
//!   application/octet-stream`, for XHR2 clients) frame each packet as a marker byte (`0`
//!   text, `1` binary), the decimal length one digit per byte (values 0 to 9), `0xFF`,
//!   then the packet: a text packet's UTF-8 bytes (the length counts bytes), or a binary
//!   message's type byte `0x04` and its data.
//!
//! Decoding never panics and always ends: every record consumes at least two bytes of the
//! body or ends the iterator with an error (engineioxide's v3 decoder once looped forever
//! on a malformed length, socketioxide #739). The decoders are property-tested and fuzzed
//! with the v4 ones.
//!
//! ```
//! use bytes::Bytes;
//! use engineio_proto::v3::{self, PayloadEncoder, PayloadFormat};
//! use engineio_proto::{Packet, PayloadLimits};
//!
//! // A text payload from a v3 client: "€" is one UTF-16 unit, "😀" two.
//! let body = Bytes::from("2:4€3:4😀10:b4AQIDBA==");
//! let packets: Result<Vec<_>, _> =
//!     v3::decode_payload(body, PayloadFormat::Text, PayloadLimits::default())?.collect();
//! assert_eq!(
//!     packets?,
//!     [Packet::text("€"), Packet::text("😀"), Packet::binary(vec![1, 2, 3, 4])]
//! );
//!
//! // The same binary message in a binary payload, as an XHR2 client receives it.
//! let mut enc = PayloadEncoder::new(PayloadFormat::Binary);
//! enc.push(&Packet::binary(vec![1, 2, 3, 4]));
//! assert_eq!(&enc.finish()[..], &[0x01, 0x05, 0xff, 0x04, 1, 2, 3, 4]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use base64::Engine as _;
use bytes::{BufMut, Bytes, BytesMut};

use crate::error::DecodeError;
use crate::packet::{BASE64, Message, Packet, PacketType, WsMessage};
use crate::payload::PayloadLimits;
use crate::utf8::Utf8Bytes;

/// The two forms of a v3 polling payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PayloadFormat {
    /// `<length>:<packet>` records, UTF-8, binary messages as `b4<base64>`
    /// (`Content-Type: text/plain; charset=UTF-8`).
    Text,
    /// Length-prefixed binary records (`Content-Type: application/octet-stream`), used
    /// for clients that support binary (XHR2) when a payload holds binary data.
    Binary,
}

/// The content type of binary payloads.
pub const OCTET_STREAM: &str = "application/octet-stream";

impl PayloadFormat {
    /// The `Content-Type` of a payload in this form.
    pub const fn content_type(self) -> &'static str {
        match self {
            PayloadFormat::Text => "text/plain; charset=UTF-8",
            PayloadFormat::Binary => OCTET_STREAM,
        }
    }

    /// The form a `Content-Type` header value announces: binary for
    /// `application/octet-stream` (with or without parameters, any case), text otherwise.
    pub fn from_content_type(content_type: Option<&str>) -> PayloadFormat {
        let binary = content_type.is_some_and(|v| {
            v.trim_start()
                .get(..OCTET_STREAM.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(OCTET_STREAM))
        });
        if binary {
            PayloadFormat::Binary
        } else {
            PayloadFormat::Text
        }
    }

    /// The form Node's v3 servers choose for a response: binary when the client supports
    /// it (it did not ask for `b64=1`) and a packet is a binary message.
    pub fn for_packets<'a>(
        supports_binary: bool,
        packets: impl IntoIterator<Item = &'a Packet>,
    ) -> PayloadFormat {
        if supports_binary
            && packets
                .into_iter()
                .any(|p| matches!(p, Packet::Message(Message::Binary(_))))
        {
            PayloadFormat::Binary
        } else {
            PayloadFormat::Text
        }
    }
}

/// Decodes a v3 polling payload in `format`, checking its size first.
///
/// Returns an iterator of packets that stops at the first error. Text data is not
/// copied. An empty body is an error ([`DecodeError::EmptyPacket`]); in a text payload an
/// empty record (`0:`) is skipped, as Node's parser does.
pub fn decode_payload(
    body: Bytes,
    format: PayloadFormat,
    limits: PayloadLimits,
) -> Result<PayloadDecoder, DecodeError> {
    if body.len() > limits.max_bytes {
        return Err(DecodeError::PayloadTooLarge {
            size: body.len(),
            limit: limits.max_bytes,
        });
    }
    Ok(PayloadDecoder {
        empty: body.is_empty(),
        rest: Some(body),
        format,
        count: 0,
        max_packets: limits.max_packets,
    })
}

/// Iterator over the packets of a v3 polling payload; see [`decode_payload`].
#[derive(Debug, Clone)]
pub struct PayloadDecoder {
    rest: Option<Bytes>,
    format: PayloadFormat,
    empty: bool,
    count: usize,
    max_packets: usize,
}

impl Iterator for PayloadDecoder {
    type Item = Result<Packet, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.empty {
            self.empty = false;
            self.rest = None;
            return Some(Err(DecodeError::EmptyPacket));
        }
        loop {
            let mut rest = self.rest.take()?;
            if rest.is_empty() {
                return None;
            }
            if self.count >= self.max_packets {
                return Some(Err(DecodeError::TooManyPackets {
                    limit: self.max_packets,
                }));
            }
            self.count += 1;
            let record = match self.format {
                PayloadFormat::Text => split_text_record(&mut rest),
                PayloadFormat::Binary => split_binary_record(&mut rest),
            };
            let decoded = match record {
                Ok(Record::Empty) => {
                    self.rest = Some(rest);
                    continue;
                }
                Ok(Record::Text(bytes)) => match Utf8Bytes::try_from(bytes) {
                    Ok(text) => decode_text(text),
                    Err(e) => Err(DecodeError::InvalidUtf8 {
                        valid_up_to: e.valid_up_to,
                    }),
                },
                Ok(Record::Binary(bytes)) => decode_binary(bytes),
                Err(e) => Err(e),
            };
            if decoded.is_ok() {
                self.rest = Some(rest);
            }
            return Some(decoded);
        }
    }
}

impl std::iter::FusedIterator for PayloadDecoder {}

enum Record {
    /// `0:` in a text payload.
    Empty,
    Text(Bytes),
    Binary(Bytes),
}

/// The longest length prefix accepted, in digits (Node accepts up to 310; ten digits
/// already say more than any payload limit).
const MAX_DIGITS: usize = 10;

/// Takes one `<length>:<packet>` record off the front of `rest` (which is not empty).
fn split_text_record(rest: &mut Bytes) -> Result<Record, DecodeError> {
    let digits = rest
        .iter()
        .take(MAX_DIGITS + 1)
        .take_while(|b| b.is_ascii_digit())
        .count();
    if digits == 0 {
        return Err(DecodeError::InvalidLength(
            "a record must start with its length in decimal digits, then ':'",
        ));
    }
    if digits > MAX_DIGITS {
        return Err(DecodeError::InvalidLength(
            "the length has more than 10 digits",
        ));
    }
    if rest.get(digits) != Some(&b':') {
        return Err(DecodeError::InvalidLength(
            "the length must be followed by ':'",
        ));
    }
    let declared = rest
        .get(..digits)
        .unwrap_or_default()
        .iter()
        .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    let body = rest.get(digits + 1..).unwrap_or_default();
    // Walk whole characters until `declared` UTF-16 code units: a lead byte says how wide
    // its character is and how many units it counts (4-byte characters are surrogate
    // pairs). Invalid UTF-8 is caught when the record is checked.
    let mut units = 0u64;
    let mut at = 0usize;
    while units < declared {
        let Some(&lead) = body.get(at) else {
            return Err(DecodeError::LengthMismatch {
                declared,
                available: units,
            });
        };
        let (width, count) = match lead {
            0x00..=0x7f => (1, 1),
            0x80..=0xdf => (2, 1),
            0xe0..=0xef => (3, 1),
            _ => (4, 2),
        };
        if units + count > declared {
            // The length ends in the middle of a surrogate pair.
            return Err(DecodeError::LengthMismatch {
                declared,
                available: units,
            });
        }
        units += count;
        at += width;
    }
    if at > body.len() {
        return Err(DecodeError::LengthMismatch {
            declared,
            available: units,
        });
    }
    let _ = rest.split_to(digits + 1);
    let record = rest.split_to(at);
    Ok(if record.is_empty() {
        Record::Empty
    } else {
        Record::Text(record)
    })
}

/// Takes one binary-payload record off the front of `rest` (which is not empty).
fn split_binary_record(rest: &mut Bytes) -> Result<Record, DecodeError> {
    let text = match rest.first() {
        Some(0) => true,
        Some(1) => false,
        _ => {
            return Err(DecodeError::InvalidLength(
                "a binary payload record starts with 0 (text) or 1 (binary)",
            ));
        }
    };
    let mut declared = 0u64;
    let mut digits = 0usize;
    loop {
        match rest.get(1 + digits) {
            None => {
                return Err(DecodeError::InvalidLength(
                    "the length digits must end with 0xFF",
                ));
            }
            Some(0xff) => break,
            Some(&d) if d <= 9 => {
                if digits == MAX_DIGITS {
                    return Err(DecodeError::InvalidLength(
                        "the length has more than 10 digits",
                    ));
                }
                declared = declared * 10 + u64::from(d);
                digits += 1;
            }
            Some(_) => {
                return Err(DecodeError::InvalidLength(
                    "length digits are the byte values 0 to 9",
                ));
            }
        }
    }
    if digits == 0 {
        return Err(DecodeError::InvalidLength("the length has no digits"));
    }
    let start = digits + 2;
    let available = rest.len().saturating_sub(start) as u64;
    if declared > available {
        return Err(DecodeError::LengthMismatch {
            declared,
            available,
        });
    }
    let _ = rest.split_to(start);
    // `declared <= available <= usize::MAX`.
    let record = rest.split_to(usize::try_from(declared).unwrap_or(0));
    Ok(if text {
        Record::Text(record)
    } else {
        Record::Binary(record)
    })
}

/// Decodes a packet from its v3 text form (a WebSocket text frame or a record of a
/// payload): as in v4, except that `b` is followed by the type digit before the base64.
pub fn decode_text(text: Utf8Bytes) -> Result<Packet, DecodeError> {
    let bytes = text.as_bytes();
    if bytes.first() != Some(&b'b') {
        return Packet::decode_text(text);
    }
    let Some(&digit) = bytes.get(1) else {
        return Err(DecodeError::UnknownPacketType { byte: b'b' });
    };
    match PacketType::from_digit(digit) {
        Some(PacketType::Message) => BASE64
            .decode(bytes.get(2..).unwrap_or_default())
            .map(Packet::binary)
            .map_err(|e| DecodeError::InvalidBase64 {
                reason: e.to_string(),
            }),
        Some(packet_type) => Err(DecodeError::BinaryControlPacket { packet_type }),
        None => Err(DecodeError::UnknownPacketType { byte: digit }),
    }
}

/// A binary packet: the type as a number, then the data.
fn decode_binary(bytes: Bytes) -> Result<Packet, DecodeError> {
    match bytes.first() {
        None => Err(DecodeError::EmptyPacket),
        Some(4) => Ok(Packet::binary(bytes.slice(1..))),
        Some(&n) => match n.checked_add(b'0').and_then(PacketType::from_digit) {
            Some(packet_type) => Err(DecodeError::BinaryControlPacket { packet_type }),
            None => Err(DecodeError::UnknownPacketType { byte: n }),
        },
    }
}

/// Decodes a v3 WebSocket message: a text frame in the v3 text form, or a binary frame
/// whose first byte is the packet type (`0x04` for a message).
pub fn decode_ws(message: WsMessage) -> Result<Packet, DecodeError> {
    match message {
        WsMessage::Text(text) => decode_text(text),
        WsMessage::Binary(bytes) => decode_binary(bytes),
    }
}

/// The v3 WebSocket form of a packet: text frames as in v4; a binary message as a binary
/// frame `0x04` + data, or with `base64` (the client asked for `b64=1`) as the text frame
/// `b4<base64>`.
pub fn to_ws(packet: &Packet, base64: bool) -> WsMessage {
    match packet {
        Packet::Message(Message::Binary(data)) if !base64 => {
            let mut frame = BytesMut::with_capacity(1 + data.len());
            frame.put_u8(4);
            frame.put_slice(data);
            WsMessage::Binary(frame.freeze())
        }
        other => WsMessage::Text(to_text(other)),
    }
}

/// The v3 text form of a packet (`b4<base64>` for a binary message).
pub fn to_text(packet: &Packet) -> Utf8Bytes {
    match packet {
        Packet::Message(Message::Binary(data)) => {
            let mut out = String::with_capacity(2 + base64_len(data.len()));
            out.push_str("b4");
            BASE64.encode_string(data, &mut out);
            Utf8Bytes::from(out)
        }
        other => other.to_text(),
    }
}

fn base64_len(n: usize) -> usize {
    base64::encoded_len(n, true).unwrap_or(usize::MAX - 2)
}

/// The length of `s` in UTF-16 code units (JavaScript's `string.length`).
///
/// ```
/// assert_eq!(engineio_proto::v3::utf16_len("4€😀"), 4);
/// ```
pub fn utf16_len(s: &str) -> usize {
    // Every character starts with one non-continuation byte; 4-byte characters (lead
    // byte 0xF0 and above) are two code units.
    s.bytes()
        .map(|b| usize::from((b & 0xc0) != 0x80) + usize::from(b >= 0xf0))
        .sum()
}

/// The length of a packet's v3 text form in UTF-16 code units, and in bytes.
fn text_lengths(packet: &Packet) -> (usize, usize) {
    match packet {
        Packet::Message(Message::Text(t)) => (1 + utf16_len(t), 1 + t.len()),
        Packet::Message(Message::Binary(b)) => {
            let n = 2 + base64_len(b.len());
            (n, n)
        }
        Packet::Open(_) => {
            // The open packet's JSON is ASCII (the sid is visible ASCII).
            let n = packet.to_text().len();
            (n, n)
        }
        other => {
            let n = other.text_len_hint();
            (n, n)
        }
    }
}

fn decimal_digits(mut n: usize) -> usize {
    let mut digits = 1;
    while n >= 10 {
        n /= 10;
        digits += 1;
    }
    digits
}

fn put_decimal(out: &mut BytesMut, n: usize, as_ascii: bool) {
    let mut digits = [0u8; 20];
    let mut len = 0;
    let mut n = n;
    loop {
        if let Some(d) = digits.get_mut(len) {
            *d = (n % 10) as u8;
        }
        len += 1;
        n /= 10;
        if n == 0 || len == digits.len() {
            break;
        }
    }
    for d in digits.iter().take(len).rev() {
        out.put_u8(if as_ascii { b'0' + d } else { *d });
    }
}

/// Builds a v3 polling payload one packet at a time, in one [`PayloadFormat`].
///
/// ```
/// use engineio_proto::v3::{PayloadEncoder, PayloadFormat};
/// use engineio_proto::Packet;
///
/// let mut enc = PayloadEncoder::new(PayloadFormat::Text);
/// enc.push(&Packet::text("hello"));
/// enc.push(&Packet::binary(vec![1, 2, 3, 4]));
/// assert_eq!(enc.len_with(&Packet::Noop), 24); // + "1:6"
/// assert_eq!(&enc.finish()[..], b"6:4hello10:b4AQIDBA==");
/// ```
#[derive(Debug, Clone)]
pub struct PayloadEncoder {
    format: PayloadFormat,
    buf: BytesMut,
    packets: usize,
}

impl PayloadEncoder {
    /// An empty payload in `format`.
    pub fn new(format: PayloadFormat) -> Self {
        PayloadEncoder::with_capacity(format, 0)
    }

    /// An empty payload with room for `capacity` bytes.
    pub fn with_capacity(format: PayloadFormat, capacity: usize) -> Self {
        PayloadEncoder {
            format,
            buf: BytesMut::with_capacity(capacity),
            packets: 0,
        }
    }

    /// The payload's form.
    pub fn format(&self) -> PayloadFormat {
        self.format
    }

    /// Appends a packet. Every packet can be framed in v3 (text may hold `U+001E`).
    pub fn push(&mut self, packet: &Packet) {
        match self.format {
            PayloadFormat::Text => {
                let (units, bytes) = text_lengths(packet);
                self.buf.reserve(decimal_digits(units) + 1 + bytes);
                put_decimal(&mut self.buf, units, true);
                self.buf.put_u8(b':');
                write_text(packet, &mut self.buf);
            }
            PayloadFormat::Binary => match packet {
                Packet::Message(Message::Binary(data)) => {
                    self.buf
                        .reserve(decimal_digits(1 + data.len()) + 3 + data.len());
                    self.buf.put_u8(1);
                    put_decimal(&mut self.buf, 1 + data.len(), false);
                    self.buf.put_u8(0xff);
                    self.buf.put_u8(4);
                    self.buf.put_slice(data);
                }
                other => {
                    let (_, bytes) = text_lengths(other);
                    self.buf.reserve(decimal_digits(bytes) + 2 + bytes);
                    self.buf.put_u8(0);
                    put_decimal(&mut self.buf, bytes, false);
                    self.buf.put_u8(0xff);
                    write_text(other, &mut self.buf);
                }
            },
        }
        self.packets += 1;
    }

    /// The payload's length in bytes if `packet` were pushed now (exact).
    pub fn len_with(&self, packet: &Packet) -> usize {
        let record = match (self.format, packet) {
            (PayloadFormat::Binary, Packet::Message(Message::Binary(data))) => {
                3 + decimal_digits(1 + data.len()) + data.len()
            }
            (PayloadFormat::Binary, other) => {
                let (_, bytes) = text_lengths(other);
                2 + decimal_digits(bytes) + bytes
            }
            (PayloadFormat::Text, other) => {
                let (units, bytes) = text_lengths(other);
                decimal_digits(units) + 1 + bytes
            }
        };
        self.buf.len().saturating_add(record)
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

/// Appends the v3 text form of a packet.
fn write_text(packet: &Packet, out: &mut BytesMut) {
    match packet {
        Packet::Message(Message::Binary(data)) => {
            out.put_slice(b"b4");
            let start = out.len();
            out.resize(start + base64_len(data.len()), 0);
            let written = out
                .get_mut(start..)
                .and_then(|dst| BASE64.encode_slice(data, dst).ok())
                .unwrap_or(0);
            out.truncate(start + written);
        }
        other => other.write_text(out),
    }
}

/// Encodes packets as one v3 polling payload in `format`.
///
/// ```
/// use engineio_proto::v3::{encode_payload, PayloadFormat};
/// use engineio_proto::Packet;
///
/// let body = encode_payload(&[Packet::Noop, Packet::Close], PayloadFormat::Text);
/// assert_eq!(&body[..], b"1:61:1");
/// ```
pub fn encode_payload<'a>(
    packets: impl IntoIterator<Item = &'a Packet>,
    format: PayloadFormat,
) -> Bytes {
    let mut enc = PayloadEncoder::new(format);
    for p in packets {
        enc.push(p);
    }
    enc.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(body: &[u8]) -> Result<Vec<Packet>, DecodeError> {
        decode_payload(
            Bytes::copy_from_slice(body),
            PayloadFormat::Text,
            PayloadLimits::default(),
        )?
        .collect()
    }

    fn binary(body: &[u8]) -> Result<Vec<Packet>, DecodeError> {
        decode_payload(
            Bytes::copy_from_slice(body),
            PayloadFormat::Binary,
            PayloadLimits::default(),
        )?
        .collect()
    }

    #[test]
    fn text_payload_vectors_from_node() {
        // Observed on the wire against Node with allowEIO3 (PROTOCOL.md section 11).
        assert_eq!(text("2:4€".as_bytes()), Ok(vec![Packet::text("€")]));
        assert_eq!(text("3:4😀".as_bytes()), Ok(vec![Packet::text("😀")]));
        assert_eq!(
            text(b"10:b4AQIDBA=="),
            Ok(vec![Packet::binary(vec![1, 2, 3, 4])])
        );
        assert_eq!(
            text(b"6:4hello1:21:61:1"),
            Ok(vec![
                Packet::text("hello"),
                Packet::Ping { probe: false },
                Packet::Noop,
                Packet::Close
            ])
        );
        // Colons and record separators inside text are data.
        assert_eq!(
            text("5:4a:\u{1e}b".as_bytes()),
            Ok(vec![Packet::text("a:\u{1e}b")])
        );
        // An empty record is skipped, as in Node's parser.
        assert_eq!(text(b"0:1:6"), Ok(vec![Packet::Noop]));
        let open = text(
            br#"96:0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":5000}"#,
        )
        .unwrap();
        let [Packet::Open(hs)] = open.as_slice() else {
            panic!("{open:?}")
        };
        assert_eq!(hs.max_payload, None);
    }

    #[test]
    fn binary_payload_vectors_from_node() {
        // The v3 suite's "4hello" and Node's echo of a binary message.
        assert_eq!(
            binary(&[0x00, 0x06, 0xff, b'4', b'h', b'e', b'l', b'l', b'o']),
            Ok(vec![Packet::text("hello")])
        );
        assert_eq!(
            binary(&[0x01, 0x05, 0xff, 0x04, 1, 2, 3, 4]),
            Ok(vec![Packet::binary(vec![1, 2, 3, 4])])
        );
        // Two digits, and text after binary.
        let mut body = vec![0x01, 0x01, 0x01, 0xff, 0x04];
        body.extend_from_slice(&[7; 10]);
        body.extend_from_slice(&[0x00, 0x01, 0xff, b'6']);
        assert_eq!(
            binary(&body),
            Ok(vec![Packet::binary(vec![7; 10]), Packet::Noop])
        );
        // An empty binary message is one type byte.
        assert_eq!(
            binary(&[0x01, 0x01, 0xff, 0x04]),
            Ok(vec![Packet::binary(Vec::new())])
        );
    }

    #[test]
    fn encoders_write_the_same_vectors() {
        let packets = [
            Packet::text("hello"),
            Packet::text("€😀"),
            Packet::binary(vec![1, 2, 3, 4]),
            Packet::Noop,
        ];
        assert_eq!(
            &encode_payload(&packets, PayloadFormat::Text)[..],
            "6:4hello4:4€😀10:b4AQIDBA==1:6".as_bytes()
        );
        let bin = encode_payload(&packets, PayloadFormat::Binary);
        let mut want = vec![0x00, 0x06, 0xff];
        want.extend_from_slice(b"4hello");
        want.extend_from_slice(&[0x00, 0x08, 0xff]);
        want.extend_from_slice("4€😀".as_bytes());
        want.extend_from_slice(&[0x01, 0x05, 0xff, 0x04, 1, 2, 3, 4]);
        want.extend_from_slice(&[0x00, 0x01, 0xff, b'6']);
        assert_eq!(&bin[..], &want[..]);
        for format in [PayloadFormat::Text, PayloadFormat::Binary] {
            let body = encode_payload(&packets, format);
            let back: Result<Vec<_>, _> = decode_payload(body, format, PayloadLimits::default())
                .unwrap()
                .collect();
            assert_eq!(back.unwrap(), packets);
        }
    }

    #[test]
    fn len_with_is_exact() {
        for format in [PayloadFormat::Text, PayloadFormat::Binary] {
            let mut enc = PayloadEncoder::new(format);
            for p in [
                Packet::text("héllo😀"),
                Packet::binary(vec![1, 2]),
                Packet::binary(vec![9; 300]),
                Packet::Ping { probe: true },
                Packet::Close,
                Packet::text("x".repeat(12345)),
            ] {
                let predicted = enc.len_with(&p);
                enc.push(&p);
                assert_eq!(enc.len(), predicted, "{format:?} {p:?}");
            }
            assert_eq!(enc.packet_count(), 6);
        }
    }

    #[test]
    fn malformed_lengths_are_typed_errors() {
        use DecodeError::*;
        assert_eq!(text(b""), Err(EmptyPacket));
        assert_eq!(binary(b""), Err(EmptyPacket));
        for body in [&b":4a"[..], b"x:4a", b"4hello", b"12345678901:4"] {
            assert!(matches!(text(body), Err(InvalidLength(_))), "{body:?}");
        }
        assert_eq!(
            text(b"9:4abc"),
            Err(LengthMismatch {
                declared: 9,
                available: 4
            })
        );
        // A length that cuts a surrogate pair in two.
        assert_eq!(
            text("2:4😀".as_bytes()),
            Err(LengthMismatch {
                declared: 2,
                available: 1
            })
        );
        assert!(matches!(
            text("1:😀".as_bytes()),
            Err(LengthMismatch { .. })
        ));
        // Trailing garbage after good records.
        let mut it = decode_payload(
            Bytes::from_static(b"1:6zz"),
            PayloadFormat::Text,
            PayloadLimits::default(),
        )
        .unwrap();
        assert_eq!(it.next(), Some(Ok(Packet::Noop)));
        assert!(matches!(it.next(), Some(Err(InvalidLength(_)))));
        assert_eq!(it.next(), None);
        assert_eq!(text(b"3:4\x80ab"), Err(InvalidUtf8 { valid_up_to: 1 }));
        for body in [
            &[0x02, 0x01, 0xff, b'6'][..],
            &[0x00, 0x01],
            &[0x00, 0xff, b'6'],
            &[0x00, 0x0a, 0xff, b'6'],
            &[0x00, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0xff],
        ] {
            assert!(matches!(binary(body), Err(InvalidLength(_))), "{body:?}");
        }
        assert_eq!(
            binary(&[0x00, 0x05, 0xff, b'4']),
            Err(LengthMismatch {
                declared: 5,
                available: 1
            })
        );
        assert_eq!(
            binary(&[0x01, 0x01, 0xff, 0x02]),
            Err(BinaryControlPacket {
                packet_type: PacketType::Ping
            })
        );
        assert_eq!(
            binary(&[0x01, 0x01, 0xff, 0x09]),
            Err(UnknownPacketType { byte: 9 })
        );
        assert_eq!(binary(&[0x00, 0x00, 0xff]), Err(EmptyPacket));
        assert_eq!(
            text(b"3:b2A"),
            Err(BinaryControlPacket {
                packet_type: PacketType::Ping
            })
        );
        assert_eq!(text(b"1:b"), Err(UnknownPacketType { byte: b'b' }));
        assert!(matches!(text(b"4:b4!!"), Err(InvalidBase64 { .. })));
        for e in [
            InvalidLength("x"),
            LengthMismatch {
                declared: 1,
                available: 0,
            },
        ] {
            assert!(e.to_string().contains("v3"), "{e}");
        }
    }

    #[test]
    fn packet_limit_counts_empty_records_and_ends() {
        let limits = PayloadLimits {
            max_packets: 3,
            ..PayloadLimits::default()
        };
        let all: Result<Vec<_>, _> = decode_payload(
            Bytes::from_static(b"0:0:0:1:6"),
            PayloadFormat::Text,
            limits,
        )
        .unwrap()
        .collect();
        assert_eq!(all, Err(DecodeError::TooManyPackets { limit: 3 }));
        assert!(matches!(
            decode_payload(
                Bytes::from(vec![b'6'; 10]),
                PayloadFormat::Text,
                PayloadLimits {
                    max_bytes: 9,
                    ..PayloadLimits::default()
                }
            ),
            Err(DecodeError::PayloadTooLarge { size: 10, limit: 9 })
        ));
    }

    #[test]
    fn a_megabyte_of_empty_records_ends_at_once() {
        let body = Bytes::from(b"0:".repeat(512 * 1024));
        let limits = PayloadLimits {
            max_bytes: usize::MAX,
            ..PayloadLimits::default()
        };
        let mut it = decode_payload(body, PayloadFormat::Text, limits).unwrap();
        assert_eq!(it.next(), None);
        assert_eq!(it.next(), None);
    }

    #[test]
    fn websocket_frames() {
        let data = Bytes::from_static(&[1, 2, 3, 4]);
        let p = Packet::binary(data.clone());
        assert_eq!(
            to_ws(&p, false),
            WsMessage::Binary(Bytes::from_static(&[4, 1, 2, 3, 4]))
        );
        assert_eq!(to_ws(&p, true), WsMessage::Text("b4AQIDBA==".into()));
        assert_eq!(decode_ws(to_ws(&p, false)), Ok(p.clone()));
        assert_eq!(decode_ws(to_ws(&p, true)), Ok(p));
        assert_eq!(
            to_ws(&Packet::text("hi"), false),
            WsMessage::Text("4hi".into())
        );
        assert_eq!(
            decode_ws(WsMessage::Text("2probe".into())),
            Ok(Packet::Ping { probe: true })
        );
        assert_eq!(
            decode_ws(WsMessage::Binary(Bytes::new())),
            Err(DecodeError::EmptyPacket)
        );
        // A v4 base64 text frame (no type digit) is not v3.
        assert!(decode_ws(WsMessage::Text("bAQIDBA==".into())).is_err());
        assert_eq!(to_text(&Packet::binary(Vec::new())), "b4");
    }

    #[test]
    fn content_types() {
        assert_eq!(
            PayloadFormat::from_content_type(Some("application/octet-stream")),
            PayloadFormat::Binary
        );
        assert_eq!(
            PayloadFormat::from_content_type(Some("Application/Octet-Stream; charset=UTF-8")),
            PayloadFormat::Binary
        );
        assert_eq!(
            PayloadFormat::from_content_type(Some("text/plain;charset=UTF-8")),
            PayloadFormat::Text
        );
        assert_eq!(PayloadFormat::from_content_type(None), PayloadFormat::Text);
        let text_only = [Packet::text("a")];
        let mixed = [Packet::text("a"), Packet::binary(vec![1])];
        assert_eq!(
            PayloadFormat::for_packets(true, &text_only),
            PayloadFormat::Text
        );
        assert_eq!(
            PayloadFormat::for_packets(true, &mixed),
            PayloadFormat::Binary
        );
        assert_eq!(
            PayloadFormat::for_packets(false, &mixed),
            PayloadFormat::Text
        );
        assert_eq!(utf16_len("a€😀"), 4);
    }
}
