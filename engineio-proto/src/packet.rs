//! Engine.IO v4 packets and their WebSocket form.

use base64::Engine as _;
use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{DecodeError, UnsupportedProtocolVersion};
use crate::handshake::Handshake;
use crate::utf8::Utf8Bytes;

/// The protocol version this crate speaks by default (`EIO=4`). Engine.IO v3 is also
/// spoken when asked for (see [`ProtocolVersion`]).
pub const PROTOCOL_VERSION: u8 = 4;

/// An Engine.IO protocol revision: the `EIO` query parameter.
///
/// v4 is what engine.io-client 4+, socket.io-client 3+ and python-engineio 4+ speak; v3 is
/// what Socket.IO 1.x/2.x clients speak (engine.io-client 1.x to 3.x). They differ in the
/// polling payload framing, the binary forms and the heartbeat direction; see the
/// [`v3`](crate::v3) module and `docs/codec.md`.
///
/// ```
/// use engineio_proto::ProtocolVersion;
///
/// assert_eq!(ProtocolVersion::from_query(Some("4"), false), Ok(ProtocolVersion::V4));
/// assert_eq!(ProtocolVersion::from_query(Some("3"), true), Ok(ProtocolVersion::V3));
/// // v3 only when allowed, and never a missing or unknown value.
/// assert!(ProtocolVersion::from_query(Some("3"), false).is_err());
/// assert!(ProtocolVersion::from_query(None, true).is_err());
/// assert!(ProtocolVersion::from_query(Some("5"), true).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum ProtocolVersion {
    /// Engine.IO v3 (`EIO=3`): length-prefixed polling payloads, client-initiated
    /// heartbeat.
    V3,
    /// Engine.IO v4 (`EIO=4`), the current revision.
    #[default]
    V4,
}

impl ProtocolVersion {
    /// The value of the `EIO` query parameter (`"3"` or `"4"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            ProtocolVersion::V3 => "3",
            ProtocolVersion::V4 => "4",
        }
    }

    /// Reads the `EIO` query parameter: `"4"`, or `"3"` when `allow_v3`. Anything else,
    /// a missing value included, is refused (Node treats every value but `"4"` as v3 when
    /// `allowEIO3` is on; accepting exactly `3` and `4` keeps a typo from opening a v3
    /// session).
    pub fn from_query(
        eio: Option<&str>,
        allow_v3: bool,
    ) -> Result<ProtocolVersion, UnsupportedProtocolVersion> {
        match eio {
            Some("4") => Ok(ProtocolVersion::V4),
            Some("3") if allow_v3 => Ok(ProtocolVersion::V3),
            other => Err(UnsupportedProtocolVersion {
                found: other.map(str::to_owned),
            }),
        }
    }
}

impl std::fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EIO={}", self.as_str())
    }
}

/// Checks the `EIO` query parameter for a v4-only peer: `Ok` for `"4"`, a typed error for
/// anything else, including `"3"` and a missing value. Servers that may speak v3 use
/// [`ProtocolVersion::from_query`].
///
/// ```
/// use engineio_proto::check_protocol_version;
///
/// assert!(check_protocol_version(Some("4")).is_ok());
/// let err = check_protocol_version(Some("3")).unwrap_err();
/// assert_eq!(err.found.as_deref(), Some("3"));
/// assert!(check_protocol_version(None).is_err());
/// ```
pub fn check_protocol_version(eio: Option<&str>) -> Result<(), UnsupportedProtocolVersion> {
    match eio {
        Some("4") => Ok(()),
        other => Err(UnsupportedProtocolVersion {
            found: other.map(str::to_owned),
        }),
    }
}

pub(crate) const BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// The seven packet types of Engine.IO v4, with their wire digit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PacketType {
    /// `0`: the server's handshake.
    Open = 0,
    /// `1`: asks for the session to be closed.
    Close = 1,
    /// `2`: heartbeat from the server, or the client's `2probe` during an upgrade.
    Ping = 2,
    /// `3`: heartbeat reply from the client, or the server's `3probe`.
    Pong = 3,
    /// `4`: application data.
    Message = 4,
    /// `5`: completes an upgrade to WebSocket.
    Upgrade = 5,
    /// `6`: does nothing; releases a parked polling request.
    Noop = 6,
}

impl PacketType {
    /// The ASCII digit that starts the packet's text form.
    pub const fn digit(self) -> u8 {
        b'0' + self as u8
    }

    /// The type for an ASCII digit `0` to `6`.
    pub const fn from_digit(byte: u8) -> Option<PacketType> {
        Some(match byte {
            b'0' => PacketType::Open,
            b'1' => PacketType::Close,
            b'2' => PacketType::Ping,
            b'3' => PacketType::Pong,
            b'4' => PacketType::Message,
            b'5' => PacketType::Upgrade,
            b'6' => PacketType::Noop,
            _ => return None,
        })
    }
}

/// Application data carried by a message packet: text or binary.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Message {
    /// A UTF-8 text message.
    Text(Utf8Bytes),
    /// A binary message (zero bytes is a valid message).
    Binary(Bytes),
}

impl Message {
    /// Length of the data in bytes.
    pub fn len(&self) -> usize {
        match self {
            Message::Text(t) => t.len(),
            Message::Binary(b) => b.len(),
        }
    }

    /// Whether the data is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The text, if this is a text message.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Message::Text(t) => Some(t.as_str()),
            Message::Binary(_) => None,
        }
    }

    /// The bytes, if this is a binary message.
    pub fn as_binary(&self) -> Option<&Bytes> {
        match self {
            Message::Text(_) => None,
            Message::Binary(b) => Some(b),
        }
    }

    /// Parses the message as JSON into `T` (python-engineio decodes JSON messages into
    /// dicts and lists; here you name the type). A binary message is parsed too, as UTF-8
    /// JSON bytes.
    ///
    /// ```
    /// use engineio_proto::Message;
    ///
    /// #[derive(serde::Deserialize)]
    /// struct Move { x: i32, y: i32 }
    ///
    /// let m = Message::from(r#"{"x": 3, "y": -1}"#);
    /// let step: Move = m.json()?;
    /// assert_eq!((step.x, step.y), (3, -1));
    /// // Or untyped:
    /// let v: serde_json::Value = m.json()?;
    /// assert_eq!(v["x"], 3);
    /// // Not JSON: the error says where it stopped.
    /// assert!(Message::from("hello").json::<serde_json::Value>().is_err());
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        match self {
            Message::Text(t) => serde_json::from_str(t.as_str()),
            Message::Binary(b) => serde_json::from_slice(b),
        }
    }

    /// Whether the message can travel in a polling payload: a text message must not hold
    /// the record separator `U+001E`. Binary messages always can.
    pub fn fits_polling(&self) -> bool {
        match self {
            Message::Text(t) => !t.as_bytes().contains(&RECORD_SEPARATOR),
            Message::Binary(_) => true,
        }
    }
}

impl From<String> for Message {
    fn from(s: String) -> Self {
        Message::Text(s.into())
    }
}

impl From<&str> for Message {
    fn from(s: &str) -> Self {
        Message::Text(s.into())
    }
}

impl From<Utf8Bytes> for Message {
    fn from(s: Utf8Bytes) -> Self {
        Message::Text(s)
    }
}

impl From<Bytes> for Message {
    fn from(b: Bytes) -> Self {
        Message::Binary(b)
    }
}

impl From<Vec<u8>> for Message {
    fn from(b: Vec<u8>) -> Self {
        Message::Binary(b.into())
    }
}

/// The record separator between packets of a polling payload.
pub const RECORD_SEPARATOR: u8 = 0x1e;

/// One Engine.IO v4 packet.
///
/// The text form is the type digit followed by the data (`4hello`, `2probe`, `0{...}`);
/// a binary message's text form is `b` followed by standard base64 (`bAQIDBA==`).
///
/// ```
/// use engineio_proto::{Packet, Message, WsMessage};
///
/// let p = Packet::decode_text("4hello".into()).unwrap();
/// assert_eq!(p, Packet::Message(Message::Text("hello".into())));
/// assert_eq!(p.to_ws(), WsMessage::Text("4hello".into()));
///
/// let ping = Packet::decode_text("2probe".into()).unwrap();
/// assert_eq!(ping, Packet::Ping { probe: true });
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// `0{json}`: the handshake, from server to client (boxed: it is sent once per
    /// session, and keeping it out of line keeps every other packet small).
    Open(Box<Handshake>),
    /// `1`: close the session.
    Close,
    /// `2` or `2probe`.
    Ping {
        /// Whether this is the upgrade probe `2probe`.
        probe: bool,
    },
    /// `3` or `3probe`.
    Pong {
        /// Whether this is the probe answer `3probe`.
        probe: bool,
    },
    /// `4<text>`, `b<base64>` in a payload, or a binary WebSocket message.
    Message(Message),
    /// `5`: the client switches to the probed WebSocket.
    Upgrade,
    /// `6`: nothing.
    Noop,
}

impl Packet {
    /// A text message packet.
    pub fn text(text: impl Into<Utf8Bytes>) -> Packet {
        Packet::Message(Message::Text(text.into()))
    }

    /// A binary message packet.
    pub fn binary(data: impl Into<Bytes>) -> Packet {
        Packet::Message(Message::Binary(data.into()))
    }

    /// The packet's type.
    pub fn packet_type(&self) -> PacketType {
        match self {
            Packet::Open(_) => PacketType::Open,
            Packet::Close => PacketType::Close,
            Packet::Ping { .. } => PacketType::Ping,
            Packet::Pong { .. } => PacketType::Pong,
            Packet::Message(_) => PacketType::Message,
            Packet::Upgrade => PacketType::Upgrade,
            Packet::Noop => PacketType::Noop,
        }
    }

    /// Decodes a packet from its text form (a WebSocket text message, or one record of a
    /// polling payload). The data of a text message is not copied.
    pub fn decode_text(text: Utf8Bytes) -> Result<Packet, DecodeError> {
        let bytes = text.as_bytes();
        let Some(&first) = bytes.first() else {
            return Err(DecodeError::EmptyPacket);
        };
        if first == b'b' {
            return decode_base64(bytes.get(1..).unwrap_or_default()).map(Packet::binary);
        }
        let packet_type =
            PacketType::from_digit(first).ok_or(DecodeError::UnknownPacketType { byte: first })?;
        let data = bytes.get(1..).unwrap_or_default();
        let unexpected = || DecodeError::UnexpectedData {
            packet_type,
            len: data.len(),
        };
        match packet_type {
            PacketType::Open => Handshake::from_json(data).map(|hs| Packet::Open(Box::new(hs))),
            PacketType::Message => Ok(Packet::text(
                // The type digit is one ASCII byte, so index 1 is a char boundary.
                text.slice(1..text.len()).unwrap_or_default(),
            )),
            PacketType::Ping | PacketType::Pong => {
                let probe = match data {
                    b"" => false,
                    b"probe" => true,
                    _ => return Err(unexpected()),
                };
                Ok(if packet_type == PacketType::Ping {
                    Packet::Ping { probe }
                } else {
                    Packet::Pong { probe }
                })
            }
            PacketType::Close | PacketType::Upgrade | PacketType::Noop => {
                if !data.is_empty() {
                    return Err(unexpected());
                }
                Ok(match packet_type {
                    PacketType::Close => Packet::Close,
                    PacketType::Upgrade => Packet::Upgrade,
                    _ => Packet::Noop,
                })
            }
        }
    }

    /// Decodes one record of a polling payload: `b<base64>` or a UTF-8 text packet.
    pub fn decode_record(record: Bytes) -> Result<Packet, DecodeError> {
        match record.first() {
            None => Err(DecodeError::EmptyPacket),
            Some(b'b') => decode_base64(record.get(1..).unwrap_or_default()).map(Packet::binary),
            Some(_) => match Utf8Bytes::try_from(record) {
                Ok(text) => Packet::decode_text(text),
                Err(e) => Err(DecodeError::InvalidUtf8 {
                    valid_up_to: e.valid_up_to,
                }),
            },
        }
    }

    /// Decodes a WebSocket message: a text message is a packet in text form, and a binary
    /// message is always a binary `message` packet (v4 binary frames carry no type byte).
    pub fn decode_ws(msg: WsMessage) -> Result<Packet, DecodeError> {
        match msg {
            WsMessage::Text(text) => Packet::decode_text(text),
            WsMessage::Binary(data) => Ok(Packet::binary(data)),
        }
    }

    /// The WebSocket form: a text message `<digit><data>`, or for a binary message a binary
    /// WebSocket message holding the raw bytes (no copy).
    pub fn to_ws(&self) -> WsMessage {
        match self {
            Packet::Message(Message::Binary(b)) => WsMessage::Binary(b.clone()),
            other => WsMessage::Text(other.to_text()),
        }
    }

    /// The WebSocket form for a client that asked for `b64=1`: binary messages travel as
    /// `b<base64>` text messages.
    pub fn to_ws_base64(&self) -> WsMessage {
        WsMessage::Text(self.to_text())
    }

    /// The packet's text form as one string (`b<base64>` for binary messages).
    #[allow(unsafe_code)]
    pub fn to_text(&self) -> Utf8Bytes {
        let mut out = BytesMut::with_capacity(self.text_len_hint());
        self.write_text(&mut out);
        // SAFETY: write_text writes ASCII (type digits, base64, JSON with an ASCII sid)
        // around data that is itself UTF-8 (a text message's `Utf8Bytes`), so the whole
        // buffer is UTF-8. Checking again would cost a pass over every outgoing message.
        unsafe { Utf8Bytes::from_bytes_unchecked(out.freeze()) }
    }

    /// Appends the packet's text form to `out`.
    pub fn write_text(&self, out: &mut BytesMut) {
        match self {
            Packet::Open(hs) => {
                out.put_u8(PacketType::Open.digit());
                hs.write_json(out);
            }
            Packet::Message(Message::Text(t)) => {
                out.reserve(1 + t.len());
                out.put_u8(PacketType::Message.digit());
                out.put_slice(t.as_bytes());
            }
            Packet::Message(Message::Binary(b)) => {
                let start = out.len();
                let encoded = base64::encoded_len(b.len(), true).unwrap_or(0);
                out.resize(start + 1 + encoded, 0);
                if let Some(dst) = out.get_mut(start..) {
                    if let Some(first) = dst.first_mut() {
                        *first = b'b';
                    }
                    let written = dst
                        .get_mut(1..)
                        .and_then(|d| BASE64.encode_slice(b, d).ok())
                        .unwrap_or(0);
                    out.truncate(start + 1 + written);
                }
            }
            Packet::Ping { probe } | Packet::Pong { probe } => {
                out.put_u8(self.packet_type().digit());
                if *probe {
                    out.put_slice(b"probe");
                }
            }
            Packet::Close | Packet::Upgrade | Packet::Noop => {
                out.put_u8(self.packet_type().digit())
            }
        }
    }

    /// The exact length of the text form, except for the open packet (an estimate).
    pub fn text_len_hint(&self) -> usize {
        match self {
            Packet::Open(_) => 128,
            Packet::Message(Message::Text(t)) => 1 + t.len(),
            Packet::Message(Message::Binary(b)) => {
                1 + base64::encoded_len(b.len(), true).unwrap_or(usize::MAX - 1)
            }
            Packet::Ping { probe: true } | Packet::Pong { probe: true } => 6,
            _ => 1,
        }
    }
}

fn decode_base64(data: &[u8]) -> Result<Bytes, DecodeError> {
    BASE64
        .decode(data)
        .map(Bytes::from)
        .map_err(|e| DecodeError::InvalidBase64 {
            reason: e.to_string(),
        })
}

/// One WebSocket message as the bindings hand it to and from the protocol core.
///
/// Ping, pong and close frames of the WebSocket protocol itself are handled by the
/// bindings' WebSocket library and never appear here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsMessage {
    /// A text message.
    Text(Utf8Bytes),
    /// A binary message.
    Binary(Bytes),
}

impl WsMessage {
    /// Length of the message's payload in bytes.
    pub fn len(&self) -> usize {
        match self {
            WsMessage::Text(t) => t.len(),
            WsMessage::Binary(b) => b.len(),
        }
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn dec(s: &str) -> Result<Packet, DecodeError> {
        Packet::decode_text(Utf8Bytes::from(s))
    }

    #[test]
    fn every_packet_type_decodes_from_hand_written_vectors() {
        assert_eq!(dec("1"), Ok(Packet::Close));
        assert_eq!(dec("2"), Ok(Packet::Ping { probe: false }));
        assert_eq!(dec("2probe"), Ok(Packet::Ping { probe: true }));
        assert_eq!(dec("3"), Ok(Packet::Pong { probe: false }));
        assert_eq!(dec("3probe"), Ok(Packet::Pong { probe: true }));
        assert_eq!(dec("4"), Ok(Packet::text("")));
        assert_eq!(dec("4hello"), Ok(Packet::text("hello")));
        assert_eq!(dec("4€😀"), Ok(Packet::text("€😀")));
        assert_eq!(dec("44"), Ok(Packet::text("4")));
        assert_eq!(dec("5"), Ok(Packet::Upgrade));
        assert_eq!(dec("6"), Ok(Packet::Noop));
        assert_eq!(dec("bAQIDBA=="), Ok(Packet::binary(vec![1, 2, 3, 4])));
        assert_eq!(dec("bAQIDBA"), Ok(Packet::binary(vec![1, 2, 3, 4])));
        assert_eq!(dec("b"), Ok(Packet::binary(Vec::new())));
        let open = dec(
            r#"0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#,
        )
        .unwrap();
        let Packet::Open(hs) = open else {
            panic!("not open")
        };
        assert_eq!(hs.sid.as_str(), "lv_VI97HAXpY6yYWAAAC");
        assert_eq!(hs.ping_interval, Duration::from_secs(25));
        assert_eq!(hs.max_payload, Some(1_000_000));
    }

    #[test]
    fn every_packet_type_encodes_to_hand_written_vectors() {
        let cases: Vec<(Packet, &str)> = vec![
            (Packet::Close, "1"),
            (Packet::Ping { probe: false }, "2"),
            (Packet::Ping { probe: true }, "2probe"),
            (Packet::Pong { probe: false }, "3"),
            (Packet::Pong { probe: true }, "3probe"),
            (Packet::text("hello"), "4hello"),
            (Packet::text(""), "4"),
            (Packet::Upgrade, "5"),
            (Packet::Noop, "6"),
            (Packet::binary(vec![1, 2, 3, 4]), "bAQIDBA=="),
            (Packet::binary(Vec::new()), "b"),
        ];
        for (packet, text) in cases {
            assert_eq!(packet.to_text(), text, "{packet:?}");
            assert_eq!(packet.to_text().len(), packet.text_len_hint(), "{packet:?}");
            assert_eq!(packet.to_ws_base64(), WsMessage::Text(text.into()));
        }
    }

    #[test]
    fn binary_messages_use_binary_websocket_frames_without_a_type_byte() {
        let data = Bytes::from_static(&[1, 2, 3, 4]);
        let p = Packet::binary(data.clone());
        assert_eq!(p.to_ws(), WsMessage::Binary(data.clone()));
        assert_eq!(Packet::decode_ws(WsMessage::Binary(data.clone())), Ok(p));
        // A binary frame that starts with the digit 4 is still raw data.
        let raw = Bytes::from_static(b"4abc");
        assert_eq!(
            Packet::decode_ws(WsMessage::Binary(raw.clone())),
            Ok(Packet::binary(raw))
        );
    }

    #[test]
    fn text_message_decoding_does_not_copy() {
        let frame = Utf8Bytes::from(String::from("4some text"));
        let ptr = frame.as_bytes().as_ptr();
        let Packet::Message(Message::Text(t)) = Packet::decode_text(frame).unwrap() else {
            panic!()
        };
        assert_eq!(t.as_bytes().as_ptr(), ptr.wrapping_add(1));
    }

    #[test]
    fn typed_errors_say_what_was_wrong() {
        assert_eq!(dec(""), Err(DecodeError::EmptyPacket));
        assert_eq!(dec("7"), Err(DecodeError::UnknownPacketType { byte: b'7' }));
        assert_eq!(dec("x"), Err(DecodeError::UnknownPacketType { byte: b'x' }));
        assert_eq!(dec("é"), Err(DecodeError::UnknownPacketType { byte: 0xc3 }));
        assert_eq!(
            dec("1x"),
            Err(DecodeError::UnexpectedData {
                packet_type: PacketType::Close,
                len: 1
            })
        );
        assert_eq!(
            dec("2hello"),
            Err(DecodeError::UnexpectedData {
                packet_type: PacketType::Ping,
                len: 5
            })
        );
        assert!(matches!(dec("6€"), Err(DecodeError::UnexpectedData { .. })));
        assert!(matches!(
            dec("b!!!"),
            Err(DecodeError::InvalidBase64 { .. })
        ));
        assert!(matches!(dec("bA"), Err(DecodeError::InvalidBase64 { .. })));
        assert!(matches!(dec("0{"), Err(DecodeError::InvalidHandshake(_))));
        assert_eq!(
            Packet::decode_record(Bytes::from_static(b"4ok\xff")),
            Err(DecodeError::InvalidUtf8 { valid_up_to: 3 })
        );
        // Every message is readable and actionable.
        for e in [
            dec("").unwrap_err(),
            dec("9").unwrap_err(),
            dec("b*").unwrap_err(),
        ] {
            assert!(e.to_string().len() > 20, "{e}");
        }
    }

    #[test]
    fn multibyte_utf8_at_every_boundary_never_panics() {
        let s = "4a€b😀c";
        for end in 0..=s.len() {
            let bytes = Bytes::copy_from_slice(s.as_bytes().get(..end).unwrap());
            let _ = Packet::decode_record(bytes);
        }
        // A multibyte character directly after the type digit, and in place of it.
        assert_eq!(dec("4😀"), Ok(Packet::text("😀")));
        assert!(dec("😀").is_err());
    }

    #[test]
    fn message_helpers() {
        let t = Message::from("a\u{1e}b");
        assert!(!t.fits_polling());
        assert_eq!(t.as_text(), Some("a\u{1e}b"));
        assert_eq!(t.as_binary(), None);
        let b = Message::from(vec![0x1e]);
        assert!(b.fits_polling());
        assert_eq!(b.len(), 1);
        assert!(!b.is_empty());
    }

    #[test]
    fn protocol_versions() {
        assert!(check_protocol_version(Some("4")).is_ok());
        for v in ["3", "5", "", "abc", "04"] {
            let e = check_protocol_version(Some(v)).unwrap_err();
            assert_eq!(e.found.as_deref(), Some(v));
            assert!(e.to_string().contains("EIO=4"), "{e}");
        }
        assert_eq!(check_protocol_version(None).unwrap_err().found, None);
    }
}
