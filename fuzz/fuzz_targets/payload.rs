//! Fuzzes the polling payload decoder with arbitrary request bodies.
//!
//! Checks, besides "no panic, no hang": decoding stops at the first error, and whatever
//! decodes re-encodes to a payload that decodes to the same packets.
#![no_main]

use bytes::Bytes;
use engineio_proto::{PayloadLimits, decode_payload, encode_payload};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = PayloadLimits {
        max_bytes: usize::MAX,
        max_packets: usize::MAX,
    };
    let Ok(decoder) = decode_payload(Bytes::copy_from_slice(data), limits) else {
        panic!("no size limit was set");
    };
    let results: Vec<_> = decoder.collect();
    if let Some(i) = results.iter().position(Result::is_err) {
        assert_eq!(i, results.len() - 1, "decoding went on after an error");
        return;
    }
    let packets: Vec<_> = results.into_iter().map(Result::unwrap).collect();
    let body = encode_payload(&packets).expect("decoded text cannot hold a separator");
    let again: Vec<_> = decode_payload(body, limits)
        .expect("no limit")
        .collect::<Result<_, _>>()
        .expect("a re-encoded payload decodes");
    assert_eq!(again, packets);
});
