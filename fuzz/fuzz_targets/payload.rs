//! Fuzzes the polling payload decoders with arbitrary request bodies: v4's, and v3's text
//! and binary forms (every input goes through all three).
//!
//! Checks, besides "no panic, no hang": decoding stops at the first error, and whatever
//! decodes re-encodes to a payload that decodes to the same packets (a v3 payload in
//! both of v3's forms).
#![no_main]

use bytes::Bytes;
use engineio_proto::v3::{self, PayloadFormat};
use engineio_proto::{Packet, PayloadLimits, decode_payload, encode_payload};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = PayloadLimits {
        max_bytes: usize::MAX,
        max_packets: usize::MAX,
    };
    v4(data, limits);
    for format in [PayloadFormat::Text, PayloadFormat::Binary] {
        v3_round_trip(data, format, limits);
    }
});

/// Whether decoding stopped at the first error; the packets when there was none.
fn decoded(results: Vec<Result<Packet, engineio_proto::DecodeError>>) -> Option<Vec<Packet>> {
    if let Some(i) = results.iter().position(Result::is_err) {
        assert_eq!(i, results.len() - 1, "decoding went on after an error");
        return None;
    }
    Some(results.into_iter().map(Result::unwrap).collect())
}

fn v4(data: &[u8], limits: PayloadLimits) {
    let Ok(decoder) = decode_payload(Bytes::copy_from_slice(data), limits) else {
        panic!("no size limit was set");
    };
    let Some(packets) = decoded(decoder.collect()) else {
        return;
    };
    let body = encode_payload(&packets).expect("decoded text cannot hold a separator");
    let again: Vec<_> = decode_payload(body, limits)
        .expect("no limit")
        .collect::<Result<_, _>>()
        .expect("a re-encoded payload decodes");
    assert_eq!(again, packets);
}

fn v3_round_trip(data: &[u8], format: PayloadFormat, limits: PayloadLimits) {
    let Ok(decoder) = v3::decode_payload(Bytes::copy_from_slice(data), format, limits) else {
        panic!("no size limit was set");
    };
    // Every record takes at least two bytes: at most one result per two bytes, plus the
    // error (the v3 decoder of engineioxide once looped forever here).
    let results: Vec<_> = decoder.collect();
    assert!(results.len() <= data.len() / 2 + 1, "more records than bytes");
    let Some(packets) = decoded(results) else {
        return;
    };
    if packets.is_empty() {
        // Only empty records ("0:"): a payload of no packet, which encodes to nothing.
        return;
    }
    for again_format in [PayloadFormat::Text, PayloadFormat::Binary] {
        let body = v3::encode_payload(&packets, again_format);
        let again: Vec<_> = v3::decode_payload(body, again_format, limits)
            .expect("no limit")
            .collect::<Result<_, _>>()
            .expect("a re-encoded v3 payload decodes");
        assert_eq!(again, packets, "{again_format:?}");
    }
}
