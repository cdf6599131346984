//! # engineio-proto
//!
//! The Engine.IO protocol (v4, and v3 on request) as a *sans-IO* library: no sockets, no
//! clock, no randomness and no async runtime. Bytes, WebSocket messages and the current
//! time go in; packets, answers and deadlines come out. The runtime bindings
//! (`engineio-tokio`, `engineio-smol`) own the sockets and timers and drive this crate.
//!
//! It has three layers:
//!
//! - [`server`]: the server state machines. [`server::Server`] reads requests and performs
//!   handshakes; each [`server::Session`] is one client (transport, upgrade, heartbeat,
//!   outgoing queue), driven through `handle_*(now, ..)` inputs, `poll_action()` outputs
//!   and `poll_timeout()`/`handle_timeout(now)`. The module documentation shows the
//!   driving loop.
//! - [`client`]: the client state machine, the mirror image (HTTP requests and WebSockets
//!   to perform, responses and frames back), with upgrade and optional reconnection.
//! - the **wire codec**, at the crate root:
//!   - [`Packet`]: the seven packet types (open, close, ping, pong, message, upgrade,
//!     noop), with [`Packet::decode_text`], [`Packet::decode_ws`] and [`Packet::to_ws`]
//!     for the WebSocket form (one packet per WebSocket message; binary messages are raw
//!     binary frames);
//!   - [`decode_payload`] / [`PayloadEncoder`]: the HTTP long-polling form, packets joined
//!     by `\x1e`, binary messages as `b` + standard base64 (and [`v3`] for Engine.IO
//!     v3's forms);
//!   - [`Handshake`]: the open packet's JSON (`sid`, `upgrades`, `pingInterval`,
//!     `pingTimeout`, `maxPayload`, times in integer milliseconds);
//!   - [`Utf8Bytes`]: text that shares the received buffer, so decoding a text message
//!     copies nothing.
//!
//! Pure HTTP policy lives here too: the origin (CORS) decision, the sid cookie, and
//! [`static_files`] resolution. The crate never reads the clock or a random source (its
//! `clippy.toml` forbids it) and never panics on input.
//!
//! Decoding never panics and never loops on any input: every failure is a typed
//! [`DecodeError`] saying what was wrong. The decoders are property-tested and fuzzed
//! (see the repository's `fuzz/` directory).
//!
//! ## Protocol versions
//!
//! Engine.IO v4 (`EIO=4`) by default. Engine.IO v3 (`EIO=3`: socket.io-client 1.x/2.x,
//! engine.io-client up to 3.x, Node `engine.io` 3.x servers) is spoken on request: by a
//! server with [`ServerConfig::allow_eio3`](server::ServerConfig::allow_eio3) (off by
//! default, as Node's `allowEIO3`), where v3 and v4 sessions share the server, and by a
//! client with [`ClientConfig::protocol_version`](client::ClientConfig::protocol_version).
//! The version is a property of the session ([`ProtocolVersion`]): v3 sessions get the
//! [`v3`] framing (length-prefixed polling records counted in UTF-16 code units, binary
//! payloads for XHR2 clients, binary frames led by their type byte) and v3's heartbeat,
//! in which the client pings and the server answers. Any other `EIO` (or none) gets a
//! typed [`UnsupportedProtocolVersion`] error, which servers answer with the protocol's
//! error code 5, "Unsupported protocol version"; see [`ProtocolVersion::from_query`].
//!
//! ## Example
//!
//! ```
//! use bytes::Bytes;
//! use engineio_proto::{decode_payload, Packet, PayloadEncoder, PayloadLimits, WsMessage};
//!
//! // A polling POST body from a client: a text message and a binary message.
//! let body = Bytes::from_static(b"4hello\x1ebAQIDBA==");
//! let mut reply = PayloadEncoder::new();
//! for packet in decode_payload(body, PayloadLimits::default())? {
//!     // Echo every message back.
//!     reply.push(&packet?)?;
//! }
//! assert_eq!(&reply.finish()[..], b"4hello\x1ebAQIDBA==");
//!
//! // The same packets over WebSocket: a text frame and a raw binary frame.
//! assert_eq!(Packet::text("hello").to_ws(), WsMessage::Text("4hello".into()));
//! assert_eq!(
//!     Packet::binary(vec![1, 2, 3, 4]).to_ws(),
//!     WsMessage::Binary(Bytes::from_static(&[1, 2, 3, 4]))
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(unsafe_code)]
#![warn(clippy::indexing_slicing)]
#![cfg_attr(test, allow(clippy::indexing_slicing))]

pub mod client;
mod close;
mod close_code;
mod error;
mod exchange;
mod forwarded;
mod handshake;
mod node;
mod packet;
mod payload;
pub mod server;
pub mod static_files;
#[cfg(feature = "testing")]
pub mod testing;
mod timer;
mod transport_error;
mod utf8;
pub mod v3;
pub mod websocket;

pub use close::{CloseReason, ProtocolError, SendError, TransportEnd, UpgradeFailure, WsViolation};
pub use close_code::CloseCode;
pub use exchange::{RequestId, Response};
pub use forwarded::{InvalidProxy, TrustedProxies};
pub use transport_error::{IoError, ProxyRefusal, TransportError};

pub use error::{DecodeError, EncodeError, UnsupportedProtocolVersion};
pub use handshake::{Handshake, InvalidSid, Sid, Transport, UnknownTransport};
pub use node::{InvalidNodeId, NodeId};
pub use packet::{
    Message, PROTOCOL_VERSION, Packet, PacketType, ProtocolVersion, RECORD_SEPARATOR, WsMessage,
    check_protocol_version,
};
pub use payload::{PayloadDecoder, PayloadEncoder, PayloadLimits, decode_payload, encode_payload};
pub use utf8::{InvalidUtf8, Utf8Bytes};
