//! Property tests of the wire codec, v4's and v3's: encode-then-decode round trips for
//! packets and payloads, and "no input panics" (nor loops) for arbitrary bytes and strings.
#![allow(missing_docs)]

use std::time::Duration;

use bytes::Bytes;
use engineio_proto::v3::{self, PayloadFormat};
use engineio_proto::{
    DecodeError, EncodeError, Handshake, Message, Packet, PayloadEncoder, PayloadLimits, Sid,
    Transport, Utf8Bytes, WsMessage, decode_payload, encode_payload,
};
use proptest::prelude::*;

fn arb_sid() -> impl Strategy<Value = Sid> {
    "[!-~]{1,47}".prop_map(|s| Sid::new(&s).expect("visible ASCII"))
}

fn arb_handshake() -> impl Strategy<Value = Handshake> {
    (
        arb_sid(),
        proptest::sample::subsequence(vec![Transport::Polling, Transport::WebSocket], 0..=2),
        0u64..=u32::MAX as u64,
        0u64..=u32::MAX as u64,
        proptest::option::of(any::<u64>()),
    )
        .prop_map(|(sid, upgrades, pi, pt, max_payload)| Handshake {
            sid,
            upgrades,
            ping_interval: Duration::from_millis(pi),
            ping_timeout: Duration::from_millis(pt),
            max_payload,
        })
}

/// Any packet. `text` is the strategy for text message bodies.
fn arb_packet(text: BoxedStrategy<String>) -> impl Strategy<Value = Packet> {
    prop_oneof![
        arb_handshake().prop_map(|hs| Packet::Open(Box::new(hs))),
        Just(Packet::Close),
        any::<bool>().prop_map(|probe| Packet::Ping { probe }),
        any::<bool>().prop_map(|probe| Packet::Pong { probe }),
        text.prop_map(Packet::text),
        proptest::collection::vec(any::<u8>(), 0..300).prop_map(Packet::binary),
        Just(Packet::Upgrade),
        Just(Packet::Noop),
    ]
}

fn any_text() -> BoxedStrategy<String> {
    any::<String>().boxed()
}

fn polling_text() -> BoxedStrategy<String> {
    any::<String>()
        .prop_map(|s| s.replace('\u{1e}', ""))
        .boxed()
}

fn no_limits() -> PayloadLimits {
    PayloadLimits {
        max_bytes: usize::MAX,
        max_packets: usize::MAX,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn websocket_round_trip(p in arb_packet(any_text())) {
        prop_assert_eq!(Packet::decode_ws(p.to_ws()), Ok(p.clone()));
        // The b64=1 form (binary as b<base64> text) decodes to the same packet.
        prop_assert_eq!(Packet::decode_ws(p.to_ws_base64()), Ok(p));
    }

    #[test]
    fn payload_round_trip(ps in proptest::collection::vec(arb_packet(polling_text()), 1..20)) {
        let body = encode_payload(&ps).expect("no record separator in text");
        let back: Result<Vec<Packet>, DecodeError> =
            decode_payload(body.clone(), no_limits()).expect("no size limit").collect();
        prop_assert_eq!(back, Ok(ps.clone()));
        // The size limit is exact: the body's own length passes, one byte less does not.
        let exact = PayloadLimits { max_bytes: body.len(), ..no_limits() };
        prop_assert!(decode_payload(body.clone(), exact).is_ok());
        let short = PayloadLimits { max_bytes: body.len() - 1, ..no_limits() };
        let too_large = matches!(
            decode_payload(body, short),
            Err(DecodeError::PayloadTooLarge { .. })
        );
        prop_assert!(too_large);
    }

    #[test]
    fn payload_length_prediction_is_exact(ps in proptest::collection::vec(arb_packet(polling_text()), 1..20)) {
        let mut enc = PayloadEncoder::new();
        for p in &ps {
            let predicted = enc.len_with(p);
            enc.push(p).expect("encodable");
            if !matches!(p, Packet::Open(_)) {
                prop_assert_eq!(enc.len(), predicted);
            }
        }
    }

    #[test]
    fn text_with_record_separator_is_refused_in_payloads(a in any::<String>(), b in any::<String>()) {
        let p = Packet::text(format!("{a}\u{1e}{b}"));
        prop_assert_eq!(encode_payload([&p]), Err(EncodeError::RecordSeparatorInText));
        // ...but travels over WebSocket.
        prop_assert_eq!(Packet::decode_ws(p.to_ws()), Ok(p));
    }

    #[test]
    fn arbitrary_bytes_never_panic_as_payload(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let n = data.len();
        let packets: Vec<_> = decode_payload(Bytes::from(data), no_limits()).expect("no limit").collect();
        // One result per record at most, and decoding stops after the first error.
        prop_assert!(packets.len() <= n + 1);
        if let Some(i) = packets.iter().position(Result::is_err) {
            prop_assert_eq!(i, packets.len() - 1);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_as_ws(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let bytes = Bytes::from(data);
        prop_assert!(matches!(
            Packet::decode_ws(WsMessage::Binary(bytes.clone())),
            Ok(Packet::Message(Message::Binary(b))) if b == bytes
        ));
        let _ = Packet::decode_record(bytes);
    }

    #[test]
    fn arbitrary_strings_never_panic(s in any::<String>()) {
        let _ = Packet::decode_text(Utf8Bytes::from(s.as_str()));
        let _ = decode_payload(Bytes::from(s.clone()), no_limits()).expect("no limit").count();
        let _ = Handshake::from_json(s.as_bytes());
    }

    #[test]
    fn protocol_like_strings_never_panic(s in "[0-6b]?[a-zA-Z0-9+/=\u{1e}{}\":,\\[\\] €😀]{0,64}") {
        if let Ok(packets) = decode_payload(Bytes::from(s), no_limits())
            .expect("no limit")
            .collect::<Result<Vec<_>, _>>()
        {
            // Whatever decodes re-encodes, and decodes again to the same packets.
            let body = encode_payload(&packets).expect("decoded text holds no separator");
            let again: Vec<_> = decode_payload(body, no_limits())
                .expect("no limit")
                .collect::<Result<_, _>>()
                .expect("re-encoded payload decodes");
            prop_assert_eq!(again, packets);
        }
    }

    // ------------------------------------------------------------------ v3

    #[test]
    fn v3_websocket_round_trip(p in arb_packet(any_text())) {
        prop_assert_eq!(v3::decode_ws(v3::to_ws(&p, false)), Ok(p.clone()));
        prop_assert_eq!(v3::decode_ws(v3::to_ws(&p, true)), Ok(p.clone()));
        prop_assert_eq!(v3::decode_text(v3::to_text(&p)), Ok(p));
    }

    #[test]
    fn v3_payload_round_trip_in_both_forms(
        ps in proptest::collection::vec(arb_packet(any_text()), 1..20)
    ) {
        // v3 frames by length: any text, U+001E and ':' included.
        for format in [PayloadFormat::Text, PayloadFormat::Binary] {
            let body = v3::encode_payload(&ps, format);
            let back: Result<Vec<Packet>, DecodeError> =
                v3::decode_payload(body.clone(), format, no_limits()).expect("no limit").collect();
            prop_assert_eq!(back, Ok(ps.clone()));
            let short = PayloadLimits { max_bytes: body.len() - 1, ..no_limits() };
            let too_large = matches!(
                v3::decode_payload(body, format, short),
                Err(DecodeError::PayloadTooLarge { .. })
            );
            prop_assert!(too_large);
        }
        // The text form's lengths are UTF-16 code units, as JavaScript counts them.
        let text = v3::encode_payload(&ps, PayloadFormat::Text);
        let text = std::str::from_utf8(&text).expect("a text payload is UTF-8");
        let mut rest = text;
        for p in &ps {
            let (len, tail) = rest.split_once(':').expect("a length prefix");
            let len: usize = len.parse().expect("decimal");
            let record = v3::to_text(p);
            prop_assert_eq!(len, record.encode_utf16().count());
            prop_assert!(tail.starts_with(record.as_str()));
            rest = &tail[record.len()..];
        }
        prop_assert_eq!(rest, "");
    }

    #[test]
    fn v3_payload_length_prediction_is_exact(
        ps in proptest::collection::vec(arb_packet(any_text()), 1..20),
        binary in any::<bool>(),
    ) {
        let format = if binary { PayloadFormat::Binary } else { PayloadFormat::Text };
        let mut enc = v3::PayloadEncoder::new(format);
        for p in &ps {
            let predicted = enc.len_with(p);
            enc.push(p);
            prop_assert_eq!(enc.len(), predicted);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_nor_loop_as_v3_payload(
        data in proptest::collection::vec(any::<u8>(), 0..512),
        binary in any::<bool>(),
    ) {
        let format = if binary { PayloadFormat::Binary } else { PayloadFormat::Text };
        let n = data.len();
        let results: Vec<_> = v3::decode_payload(Bytes::from(data), format, no_limits())
            .expect("no limit")
            .collect();
        // Every record takes two bytes or more; decoding stops after the first error.
        prop_assert!(results.len() <= n / 2 + 1);
        if let Some(i) = results.iter().position(Result::is_err) {
            prop_assert_eq!(i, results.len() - 1);
        }
    }

    #[test]
    fn arbitrary_input_never_panics_as_v3_packets(
        s in any::<String>(),
        data in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let _ = v3::decode_text(Utf8Bytes::from(s.as_str()));
        let _ = v3::decode_ws(WsMessage::Text(s.as_str().into()));
        let bytes = Bytes::from(data);
        match v3::decode_ws(WsMessage::Binary(bytes.clone())) {
            Ok(Packet::Message(Message::Binary(b))) => {
                prop_assert_eq!(bytes.first(), Some(&4));
                prop_assert_eq!(b, bytes.slice(1..));
            }
            Ok(other) => prop_assert!(false, "binary frame decoded as {other:?}"),
            Err(_) => prop_assert_ne!(bytes.first(), Some(&4)),
        }
    }

    #[test]
    fn v3_protocol_like_strings_never_panic(
        s in "([0-9]{1,3}:[0-6b]?[a-zA-Z0-9+/=\u{1e}{}\":,€😀]{0,12}){0,6}[0-9:]{0,3}"
    ) {
        if let Ok(packets) = v3::decode_payload(Bytes::from(s), PayloadFormat::Text, no_limits())
            .expect("no limit")
            .collect::<Result<Vec<_>, _>>()
            // "0:" alone is a payload of no packet (Node's encoding of an empty list).
            && !packets.is_empty()
        {
            // Whatever decodes re-encodes, and decodes again to the same packets.
            let body = v3::encode_payload(&packets, PayloadFormat::Text);
            let again: Vec<_> = v3::decode_payload(body, PayloadFormat::Text, no_limits())
                .expect("no limit")
                .collect::<Result<_, _>>()
                .expect("re-encoded payload decodes");
            prop_assert_eq!(again, packets);
        }
    }
}
