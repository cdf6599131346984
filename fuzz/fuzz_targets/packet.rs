//! Fuzzes the single-packet decoders, v4's and v3's: WebSocket text messages (from any
//! valid UTF-8), payload records (from any bytes) and WebSocket binary messages.
//!
//! Checks, besides "no panic, no hang": a decoded packet's WebSocket form (and its `b64=1`
//! form) decodes to the same packet, a v4 binary WebSocket message is always a binary
//! message with the same bytes, and a v3 one is a message only when it starts with the
//! type byte 4, holding the bytes after it.
#![no_main]

use bytes::Bytes;
use engineio_proto::{Message, Packet, Utf8Bytes, WsMessage, v3};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let bytes = Bytes::copy_from_slice(data);
    if let Ok(text) = Utf8Bytes::try_from(bytes.clone()) {
        if let Ok(packet) = v3::decode_text(text.clone()) {
            for base64 in [false, true] {
                assert_eq!(
                    v3::decode_ws(v3::to_ws(&packet, base64)).as_ref(),
                    Ok(&packet)
                );
            }
            assert_eq!(v3::decode_text(v3::to_text(&packet)).as_ref(), Ok(&packet));
        }
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
    match v3::decode_ws(WsMessage::Binary(bytes.clone())) {
        Ok(Packet::Message(Message::Binary(b))) => {
            assert_eq!(bytes.first(), Some(&4));
            assert_eq!(b, bytes.slice(1..));
        }
        Ok(other) => panic!("v3 binary frame decoded as {other:?}"),
        Err(_) => assert_ne!(bytes.first(), Some(&4)),
    }
    match Packet::decode_ws(WsMessage::Binary(bytes.clone())) {
        Ok(Packet::Message(Message::Binary(b))) => assert_eq!(b, bytes),
        other => panic!("binary frame decoded as {other:?}"),
    }
});
