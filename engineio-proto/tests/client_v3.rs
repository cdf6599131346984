//! The client's Engine.IO v3 mode against the server's v3 sessions (`allow_eio3`), in
//! virtual time (see `pair/mod.rs`): framing both ways, binary payloads and frames, the
//! client-initiated heartbeat, the upgrade, and the errors that say which version to use.
#![allow(missing_docs, clippy::disallowed_methods, clippy::indexing_slicing)]

mod pair;

use std::time::{Duration, Instant};

use bytes::Bytes;
use engineio_proto::client::{Client, ClientAction, ClientConfig, ClientEvent, ConnectError};
use engineio_proto::server::ServerConfig;
use engineio_proto::{CloseReason, ProtocolError, ProtocolVersion, Response, Transport, WsMessage};
use http::{HeaderMap, StatusCode};
use pair::{Pair, client_config, server_config};

fn v3_client(transports: &[Transport]) -> ClientConfig {
    let mut c = client_config();
    c.protocol_version = ProtocolVersion::V3;
    c.transports = transports.to_vec();
    c
}

fn v3_server() -> ServerConfig {
    let mut s = server_config();
    s.allow_eio3 = true;
    s
}

/// The client's v3 pings: "2" in POST bodies ("1:2" records) and WebSocket frames.
fn pings(p: &Pair) -> usize {
    let in_posts: usize = p
        .posts()
        .iter()
        .map(|(_, b)| String::from_utf8_lossy(b).matches("1:2").count())
        .sum();
    let on_ws = p
        .ws_sent
        .iter()
        .filter(|(_, m)| *m == WsMessage::Text("2".into()))
        .count();
    in_posts + on_ws
}

#[test]
fn v3_over_polling_text_and_binary_both_ways() {
    let mut p = Pair::new(v3_client(&[Transport::Polling]), v3_server());
    let sid = p.connect();
    assert_eq!(p.session(sid).protocol_version(), ProtocolVersion::V3);
    let q = p.requests[0].2.uri.query().unwrap().to_owned();
    assert!(q.starts_with("EIO=3&transport=polling&t="), "{q}");
    // Our server sends maxPayload to v3 clients too (as Node 6); the client obeys it.
    assert_eq!(p.client.handshake().unwrap().max_payload, Some(1_000_000));

    // U+001E and colons are fine in v3 polling.
    p.client.send("a\u{1e}b:c €😀").unwrap();
    p.client.send(vec![1u8, 2, 3, 4]).unwrap();
    p.server_send(sid, "from server 😀");
    p.server_send(sid, Bytes::from_static(&[9, 8]));
    p.run_for(Duration::from_millis(10));
    assert_eq!(
        p.server_received(),
        ["a\u{1e}b:c €😀", "<binary [1, 2, 3, 4]>"]
    );
    assert_eq!(p.client_received(), ["from server 😀", "<binary [9, 8]>"]);
    // POSTs are v3 text payloads, binary in base64 with its type digit.
    let bodies: Vec<String> = p
        .posts()
        .into_iter()
        .map(|(_, b)| String::from_utf8(b.to_vec()).unwrap())
        .collect();
    // "😀" is two UTF-16 code units: 10 in all.
    assert_eq!(bodies[0], "10:4a\u{1e}b:c €😀");
    assert_eq!(bodies[1], "10:b4AQIDBA==");
    // The server answered the binary message in a binary payload, which the client read.
    let binary_answer = p.responses.iter().any(|(_, r)| {
        r.as_ref().is_ok_and(|r| {
            r.headers
                .get(http::header::CONTENT_TYPE)
                .is_some_and(|v| v == "application/octet-stream")
        })
    });
    assert!(binary_answer);
}

#[test]
fn v3_over_websocket_uses_binary_frames_with_the_type_byte() {
    let mut p = Pair::new(v3_client(&[Transport::WebSocket]), v3_server());
    let sid = p.connect();
    assert!(
        p.ws_connects[0]
            .1
            .query()
            .unwrap()
            .starts_with("EIO=3&transport=websocket")
    );
    p.client.send(vec![0u8, 255]).unwrap();
    p.client.send("text").unwrap();
    p.server_send(sid, vec![7u8]);
    p.run_for(Duration::from_millis(1));
    assert_eq!(p.server_received(), ["<binary [0, 255]>", "text"]);
    assert_eq!(p.client_received(), ["<binary [7]>"]);
    assert!(
        p.ws_sent
            .iter()
            .any(|(_, m)| *m == WsMessage::Binary(Bytes::from_static(&[4, 0, 255])))
    );
}

#[test]
fn v3_upgrades_from_polling_to_websocket() {
    let mut p = Pair::new(
        v3_client(&[Transport::Polling, Transport::WebSocket]),
        v3_server(),
    );
    let sid = p.connect();
    p.wait_upgraded();
    assert!(
        p.ws_connects[0]
            .1
            .query()
            .unwrap()
            .contains(&format!("EIO=3&transport=websocket&sid={sid}"))
    );
    p.client.send(vec![1u8]).unwrap();
    p.server_send(sid, "after upgrade");
    p.run_for(Duration::from_millis(5));
    assert_eq!(p.server_received(), ["<binary [1]>"]);
    assert_eq!(p.client_received(), ["after upgrade"]);
    // The heartbeat goes on over the socket for a while.
    let before = pings(&p);
    p.run_for(Duration::from_secs(3));
    assert!(p.is_live(sid) && p.client.is_connected());
    assert!(pings(&p) >= before + 9, "{} pings", pings(&p) - before);
}

#[test]
fn the_v3_client_pings_every_interval_and_the_session_lives() {
    for transports in [&[Transport::Polling][..], &[Transport::WebSocket]] {
        let mut p = Pair::new(v3_client(transports), v3_server());
        let sid = p.connect();
        let start = p.now;
        p.run_for(Duration::from_secs(30));
        assert!(p.is_live(sid), "{transports:?}");
        assert!(p.client.is_connected());
        // One ping per 300 ms interval (each sent one interval after the last pong).
        let n = pings(&p);
        assert!((95..=100).contains(&n), "{transports:?}: {n} pings in 30 s");
        assert_eq!(p.now - start, Duration::from_secs(30));
    }
}

#[test]
fn a_dead_v3_server_is_noticed_ping_timeout_after_the_ping() {
    let mut p = Pair::new(v3_client(&[Transport::WebSocket]), v3_server());
    p.connect();
    p.run_for(Duration::from_millis(100));
    p.frozen = true;
    let frozen_at = p.now;
    p.run_until(Duration::from_secs(5), |p| !p.client.is_connected());
    // The next ping goes 300 ms after the last pong (before the freeze, at most 100 ms
    // ago); no pong within the 200 ms ping timeout.
    let took = p.now - frozen_at;
    assert!(
        took > Duration::from_millis(200) && took <= Duration::from_millis(400),
        "{took:?}"
    );
    assert_eq!(
        p.client.last_close_reason(),
        Some(&CloseReason::PingTimeout)
    );
}

#[test]
fn a_v3_client_against_a_v4_only_server_gets_code_5() {
    let mut p = Pair::new(v3_client(&[Transport::Polling]), server_config());
    let now = p.now;
    p.client.connect(now);
    p.run_until(Duration::from_secs(5), |p| p.client.is_closed());
    let failed = p.client_events().into_iter().find_map(|e| match e {
        ClientEvent::ConnectFailed { error } => Some(error),
        _ => None,
    });
    assert!(
        matches!(
            failed,
            Some(ConnectError::Refused {
                status: StatusCode::BAD_REQUEST,
                code: Some(5),
                ..
            })
        ),
        "{failed:?}"
    );
}

#[test]
fn a_v4_client_answered_in_v3_framing_is_told_to_use_v3() {
    let start = Instant::now();
    let mut c = client_config();
    c.transports = vec![Transport::Polling];
    let mut client = Client::new(c, start, 1).unwrap();
    client.connect(start);
    let Some(ClientAction::HttpRequest { id, .. }) = client.poll_action() else {
        panic!("no handshake request")
    };
    // What Node engine.io 3.x answers (it ignores EIO).
    let body = r#"96:0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":5000}"#;
    client.handle_response(
        start,
        id,
        Ok(Response {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            body: Bytes::from_static(body.as_bytes()),
        }),
    );
    let error = std::iter::from_fn(|| client.poll_action())
        .find_map(|a| match a {
            ClientAction::Event(ClientEvent::ConnectFailed { error }) => Some(error),
            _ => None,
        })
        .expect("the connection failed");
    let ConnectError::InvalidHandshake(ProtocolError::UnexpectedResponse(why)) = &error else {
        panic!("{error:?}")
    };
    assert!(why.contains("protocol_version"), "{why}");
    assert!(error.to_string().contains("EIO=3"), "{error}");
}
