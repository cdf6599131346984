//! Errors of the wire codec.

use crate::packet::PacketType;

/// Why bytes received from a peer could not be decoded into Engine.IO packets.
///
/// Every variant says what was wrong with the input; none of them is ever produced by a
/// panic path. On a server, any decode error closes the session with a parse-error reason
/// (as Node and python-engineio do).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// A packet had no bytes at all: an empty WebSocket text message, an empty polling
    /// body, or an empty record between two `\x1e` separators (a trailing `\x1e` included).
    #[error("empty packet: every packet needs at least a type digit (0-6) or 'b'")]
    EmptyPacket,
    /// The first byte of a text packet is not a packet type digit (`0` to `6`) nor `b`.
    #[error("unknown packet type byte 0x{byte:02x}: expected a digit 0-6 or 'b' for base64 binary")]
    UnknownPacketType {
        /// The byte found where the type was expected.
        byte: u8,
    },
    /// A packet that carries no data (close, upgrade, noop), or a ping/pong whose data is
    /// not `probe`, had data after its type digit.
    #[error("unexpected data after a {packet_type:?} packet ({len} bytes)")]
    UnexpectedData {
        /// The type of the packet.
        packet_type: PacketType,
        /// How many bytes followed the type digit.
        len: usize,
    },
    /// A `b<base64>` binary packet held invalid base64.
    #[error("binary packet is not valid standard base64: {reason}")]
    InvalidBase64 {
        /// The base64 decoder's explanation.
        reason: String,
    },
    /// A text packet was not valid UTF-8.
    #[error("text packet is not valid UTF-8 (the first {valid_up_to} bytes of the packet are)")]
    InvalidUtf8 {
        /// Length of the longest valid UTF-8 prefix of the packet.
        valid_up_to: usize,
    },
    /// A polling payload was larger than the configured limit.
    #[error("payload of {size} bytes is over the limit of {limit} bytes (max_payload)")]
    PayloadTooLarge {
        /// The payload's size in bytes.
        size: usize,
        /// The configured limit in bytes.
        limit: usize,
    },
    /// A polling payload held more packets than the configured limit.
    #[error("payload holds more than {limit} packets (max_packets)")]
    TooManyPackets {
        /// The configured limit.
        limit: usize,
    },
    /// The open packet's JSON was malformed or lacked a required key.
    #[error("invalid handshake: {0}")]
    InvalidHandshake(String),
    /// Engine.IO v3: a record's length prefix (`<length>:` in a text payload, or the
    /// digits before `0xFF` in a binary payload) is missing, not a number, or too long.
    #[error("invalid length prefix in an Engine.IO v3 payload: {0}")]
    InvalidLength(&'static str),
    /// Engine.IO v3: a record's length says more than the payload holds (or cuts a
    /// character in two).
    #[error(
        "Engine.IO v3 payload record announces {declared} units but {available} follow (UTF-16 code units in a text payload, bytes in a binary one)"
    )]
    LengthMismatch {
        /// The length the prefix gave.
        declared: u64,
        /// What was left in the payload, in the same units (at most).
        available: u64,
    },
    /// Engine.IO v3: binary data (a `b<type><base64>` record, a binary record or a binary
    /// WebSocket frame) whose type is not `message`.
    #[error("a {packet_type:?} packet cannot carry binary data (only message packets can)")]
    BinaryControlPacket {
        /// The type it declared.
        packet_type: PacketType,
    },
}

/// Why packets could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A text message holds the record separator `U+001E`, which the polling payload format
    /// uses between packets and cannot escape. Send it as binary, or over WebSocket only.
    #[error(
        "text message contains the record separator U+001E, which HTTP long-polling cannot carry; send it as binary instead"
    )]
    RecordSeparatorInText,
}

/// An Engine.IO protocol version that is not spoken here was requested.
///
/// Servers speak EIO=4, and EIO=3 (Socket.IO v1/v2 clients) only when `allow_eio3` is on;
/// they answer every other request with the protocol's error code 5.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unsupported Engine.IO protocol version ({}): EIO=4 is spoken (engine.io-client 4+, socket.io-client 3+, python-engineio 4+), and EIO=3 (socket.io-client 1.x/2.x) only on servers with allow_eio3 on",
    match found { Some(v) => format!("EIO={v}"), None => "no EIO parameter".to_owned() }
)]
pub struct UnsupportedProtocolVersion {
    /// The `EIO` value that was received (`None` when it was missing).
    pub found: Option<String>,
}
