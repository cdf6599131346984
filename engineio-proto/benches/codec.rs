//! Micro-benchmarks of the wire codec: one short text message, a batch of 16, and a
//! 64 KiB binary message, each encoded and decoded in the WebSocket and polling forms, for
//! Engine.IO v4 (`websocket/`, `polling/`) and v3 (`v3_websocket/`, `v3_polling/` in its
//! text and binary payload forms).
//!
//! Run with `cargo bench -p engineio-proto --bench codec`. Criterion prints the time per
//! iteration; the batch benchmarks handle 16 packets per iteration.
#![allow(missing_docs)]

use std::hint::black_box;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use engineio_proto::v3::{self, PayloadFormat};
use engineio_proto::{Packet, PayloadEncoder, PayloadLimits, WsMessage, decode_payload};

fn short_text() -> Packet {
    Packet::text("hello, this is a 32-byte message")
}

fn batch() -> Vec<Packet> {
    (0..16)
        .map(|i| {
            if i % 4 == 3 {
                Packet::binary(vec![i as u8; 24])
            } else {
                Packet::text(format!("{{\"event\":\"tick\",\"n\":{i}}}"))
            }
        })
        .collect()
}

fn big_binary() -> Packet {
    Packet::binary((0..64 * 1024).map(|i| i as u8).collect::<Vec<u8>>())
}

fn encode_payload(packets: &[Packet]) -> Bytes {
    let mut enc =
        PayloadEncoder::with_capacity(packets.iter().map(|p| p.text_len_hint() + 1).sum());
    for p in packets {
        enc.push(p).expect("encodable");
    }
    enc.finish()
}

fn bench_ws(c: &mut Criterion) {
    let mut g = c.benchmark_group("websocket");
    for (name, packet) in [("short_text", short_text()), ("binary_64k", big_binary())] {
        let ws = packet.to_ws();
        g.throughput(Throughput::Elements(1));
        g.bench_with_input(BenchmarkId::new("encode", name), &packet, |b, p| {
            b.iter(|| black_box(p).to_ws())
        });
        g.bench_with_input(BenchmarkId::new("decode", name), &ws, |b, ws| {
            b.iter(|| Packet::decode_ws(black_box(ws.clone())).expect("valid"))
        });
    }
    let frames: Vec<WsMessage> = batch().iter().map(Packet::to_ws).collect();
    g.throughput(Throughput::Elements(16));
    g.bench_function("decode/batch16", |b| {
        b.iter(|| {
            for f in &frames {
                black_box(Packet::decode_ws(f.clone()).expect("valid"));
            }
        })
    });
    g.finish();
}

fn bench_polling(c: &mut Criterion) {
    let mut g = c.benchmark_group("polling");
    let limits = PayloadLimits {
        max_bytes: usize::MAX,
        ..PayloadLimits::default()
    };
    for (name, packets) in [
        ("short_text", vec![short_text()]),
        ("batch16", batch()),
        ("binary_64k", vec![big_binary()]),
    ] {
        let body = encode_payload(&packets);
        g.throughput(Throughput::Elements(packets.len() as u64));
        g.bench_with_input(BenchmarkId::new("encode", name), &packets, |b, p| {
            b.iter(|| encode_payload(black_box(p)))
        });
        g.bench_with_input(BenchmarkId::new("decode", name), &body, |b, body| {
            b.iter(|| {
                for p in decode_payload(black_box(body.clone()), limits).expect("size") {
                    black_box(p.expect("valid"));
                }
            })
        });
    }
    g.finish();
}

fn bench_v3(c: &mut Criterion) {
    let mut g = c.benchmark_group("v3_websocket");
    for (name, packet) in [("short_text", short_text()), ("binary_64k", big_binary())] {
        let ws = v3::to_ws(&packet, false);
        g.throughput(Throughput::Elements(1));
        g.bench_with_input(BenchmarkId::new("encode", name), &packet, |b, p| {
            b.iter(|| v3::to_ws(black_box(p), false))
        });
        g.bench_with_input(BenchmarkId::new("decode", name), &ws, |b, ws| {
            b.iter(|| v3::decode_ws(black_box(ws.clone())).expect("valid"))
        });
    }
    g.finish();
    let mut g = c.benchmark_group("v3_polling");
    let limits = PayloadLimits {
        max_bytes: usize::MAX,
        ..PayloadLimits::default()
    };
    for (name, packets) in [
        ("short_text", vec![short_text()]),
        ("batch16", batch()),
        ("binary_64k", vec![big_binary()]),
    ] {
        for format in [PayloadFormat::Text, PayloadFormat::Binary] {
            let form = match format {
                PayloadFormat::Text => "text",
                PayloadFormat::Binary => "binary",
            };
            let body = v3::encode_payload(&packets, format);
            g.throughput(Throughput::Elements(packets.len() as u64));
            g.bench_with_input(
                BenchmarkId::new(format!("encode_{form}"), name),
                &packets,
                |b, p| b.iter(|| v3::encode_payload(black_box(p), format)),
            );
            g.bench_with_input(
                BenchmarkId::new(format!("decode_{form}"), name),
                &body,
                |b, body| {
                    b.iter(|| {
                        for p in v3::decode_payload(black_box(body.clone()), format, limits)
                            .expect("size")
                        {
                            black_box(p.expect("valid"));
                        }
                    })
                },
            );
        }
    }
    g.finish();
}

criterion_group!(benches, bench_ws, bench_polling, bench_v3);
criterion_main!(benches);
