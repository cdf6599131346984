//! Fuzzes the single-packet decoders: WebSocket text messages (from any valid UTF-8),
//! payload records (from any bytes) and WebSocket binary messages.
//!
//! Checks, besides "no panic, no hang": a decoded packet's WebSocket form decodes to the
//! same packet, and a binary WebSocket message is always a binary message with the same
//! bytes.
#![no_main]

use bytes::Bytes;
use engineio_proto::{Message, Packet, Utf8Bytes, WsMessage};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let bytes = Bytes::copy_from_slice(data);
    if let Ok(text) = Utf8Bytes::try_from(bytes.clone()) {
        if let Ok(packet) = Packet::decode_text(text) {
            assert_eq!(Packet::decode_ws(packet.to_ws()).as_ref(), Ok(&packet));
            assert_eq!(
                Packet::decode_ws(packet.to_ws_base64()).as_ref(),
                Ok(&packet)
            );
        }
    }
    if let Ok(packet) = Packet::decode_record(bytes.clone()) {
        assert_eq!(Packet::decode_text(packet.to_text()).as_ref(), Ok(&packet));
    }
    match Packet::decode_ws(WsMessage::Binary(bytes.clone())) {
        Ok(Packet::Message(Message::Binary(b))) => assert_eq!(b, bytes),
        other => panic!("binary frame decoded as {other:?}"),
    }
});
