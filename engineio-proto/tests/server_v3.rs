//! Engine.IO v3 sessions (`allow_eio3`) on the server state machine, in virtual time:
//! the v3 framing, binary payloads, the client-initiated heartbeat, and v3 beside v4 on
//! one server. The wire vectors are the ones observed against Node with `allowEIO3`
//! (PROTOCOL.md, section 11) and checked by the v3 branch of the official test suite.
#![allow(missing_docs, clippy::disallowed_methods)]

mod util;

use std::time::Duration;

use bytes::Bytes;
use engineio_proto::server::{Event, ServerConfig};
use engineio_proto::v3::{self, PayloadFormat};
use engineio_proto::{
    CloseReason, Handshake, Packet, PayloadLimits, ProtocolError, ProtocolVersion, Response,
    SendError, Sid, Transport, TransportEnd, WsMessage,
};
use http::Method;
use util::{Harness, error_code};

fn v3_config() -> ServerConfig {
    let mut c = ServerConfig::default();
    c.ping_interval = Duration::from_millis(300);
    c.ping_timeout = Duration::from_millis(200);
    c.allow_eio3 = true;
    c
}

fn poll3(sid: Sid) -> String {
    format!("/engine.io/?EIO=3&transport=polling&sid={sid}")
}

fn ws3(sid: Sid) -> String {
    format!("/engine.io/?EIO=3&transport=websocket&sid={sid}")
}

/// The packets of a v3 polling answer, in the form its content type says.
fn v3_packets(r: &Response) -> Vec<Packet> {
    let format = PayloadFormat::from_content_type(
        r.headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
    );
    v3::decode_payload(r.body.clone(), format, PayloadLimits::default())
        .expect("size")
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("not a v3 payload ({e}): {:?}", r.body))
}

fn content_type(r: &Response) -> &str {
    r.headers[http::header::CONTENT_TYPE].to_str().unwrap()
}

/// Opens a v3 polling session (with `extra` query parameters); returns the sid and the
/// handshake.
fn open3(h: &mut Harness, extra: &str) -> (Sid, Handshake) {
    let id = h.get(&format!("/engine.io/?EIO=3&transport=polling{extra}"));
    let r = h.response(id).expect("handshake answered at once");
    assert_eq!(r.status, 200, "{}", r.body_text());
    match v3_packets(&r).into_iter().next() {
        Some(Packet::Open(hs)) => (hs.sid, *hs),
        other => panic!("not an open packet: {other:?}"),
    }
}

fn post_binary(h: &mut Harness, sid: Sid, body: &[u8]) -> Response {
    let id = h.request(
        Method::POST,
        &poll3(sid),
        &[("content-type", "application/octet-stream")],
        body,
    );
    h.response(id).expect("answered")
}

// ------------------------------------------------------------------ handshake

#[test]
fn v3_is_refused_by_default_with_code_5() {
    let mut h = Harness::new(ServerConfig::default());
    let id = h.get("/engine.io/?EIO=3&transport=polling");
    let r = h.response(id).unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(error_code(&r), 5);
    assert!(r.body_text().contains("allow_eio3"), "{}", r.body_text());
}

#[test]
fn only_eio_3_and_4_are_accepted_with_allow_eio3() {
    // Node with allowEIO3 takes any value but "4" as v3; a typo is refused here.
    let mut h = Harness::new(v3_config());
    for q in ["", "&EIO=2", "&EIO=abc", "&EIO=5", "&EIO=03"] {
        let id = h.get(&format!("/engine.io/?transport=polling{q}"));
        assert_eq!(error_code(&h.response(id).unwrap()), 5, "{q}");
    }
}

#[test]
fn the_v3_open_packet_is_length_prefixed_in_utf16_units() {
    let mut h = Harness::new(v3_config());
    let id = h.get("/engine.io/?EIO=3&transport=polling");
    let r = h.response(id).unwrap();
    assert_eq!(content_type(&r), "text/plain; charset=UTF-8");
    let body = r.body_text().into_owned();
    let (len, packet) = body.split_once(':').expect("length prefix");
    assert_eq!(len.parse::<usize>().unwrap(), packet.encode_utf16().count());
    assert!(packet.starts_with("0{"));
    let json: serde_json::Value = serde_json::from_str(&packet[1..]).unwrap();
    let mut keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    keys.sort_unstable();
    // Node 6 with allowEIO3 also sends maxPayload; the v3 suite accepts it.
    assert_eq!(
        keys,
        [
            "maxPayload",
            "pingInterval",
            "pingTimeout",
            "sid",
            "upgrades"
        ]
    );
    assert_eq!(json["upgrades"], serde_json::json!(["websocket"]));
    assert_eq!(json["pingInterval"], 300);
    assert_eq!(json["pingTimeout"], 200);
    let sid = h.sessions.keys().next().copied().unwrap();
    assert_eq!(
        h.session(sid).protocol_version(),
        ProtocolVersion::V3,
        "the version is the session's"
    );
}

#[test]
fn v3_and_v4_sessions_on_one_server() {
    let mut h = Harness::new(v3_config());
    let (s3, _) = open3(&mut h, "");
    let (s4, _) = h.open_polling();
    assert_eq!(h.session(s3).protocol_version(), ProtocolVersion::V3);
    assert_eq!(h.session(s4).protocol_version(), ProtocolVersion::V4);
    let p3 = h.post(&poll3(s3), "2:4€3:4😀".as_bytes());
    let p4 = h.post(&Harness::poll_uri(s4), "4€\x1e4😀".as_bytes());
    assert_eq!((h.body(p3), h.body(p4)), ("ok".into(), "ok".into()));
    assert_eq!(h.messages(s3), ["€", "😀"]);
    assert_eq!(h.messages(s4), ["€", "😀"]);
    h.send(s3, "€😀");
    h.send(s4, "€😀");
    let g3 = h.get(&poll3(s3));
    let g4 = h.get(&Harness::poll_uri(s4));
    assert_eq!(h.body(g3), "4:4€😀");
    assert_eq!(h.body(g4), "4€😀");
    // Each keeps its own heartbeat: the v4 one is pinged, the v3 one is not.
    let g3 = h.get(&poll3(s3));
    let g4 = h.get(&Harness::poll_uri(s4));
    h.advance(Duration::from_millis(300));
    assert_eq!(h.body(g4), "2");
    assert!(!h.answered(g3));
    // A v3 framing on a v4 session is a parse error, and the other way round.
    let bad4 = h.post(&Harness::poll_uri(s4), b"6:4hello");
    assert_eq!(h.response(bad4).unwrap().status, 400);
    assert!(matches!(h.closed[&s4], CloseReason::ParseError(_)));
    let bad3 = h.post(&poll3(s3), b"4hello");
    assert_eq!(h.response(bad3).unwrap().status, 400);
    assert!(matches!(
        h.closed[&s3],
        CloseReason::ParseError(ProtocolError::Decode(_))
    ));
}

// ------------------------------------------------------------------ polling framing

#[test]
fn text_packets_may_hold_any_character_in_v3() {
    let mut h = Harness::new(v3_config());
    let (sid, _) = open3(&mut h, "");
    // v4 refuses U+001E on polling; v3 frames by length and carries it.
    h.send(sid, "a\u{1e}b:c");
    let get = h.get(&poll3(sid));
    assert_eq!(h.body(get), "6:4a\u{1e}b:c");
    let post = h.post(&poll3(sid), "6:4x\u{1e}y:z".as_bytes());
    assert_eq!(h.body(post), "ok");
    assert_eq!(h.messages(sid), ["x\u{1e}y:z"]);
}

#[test]
fn binary_payloads_for_xhr2_clients_both_ways() {
    let mut h = Harness::new(v3_config());
    let (sid, _) = open3(&mut h, "");
    // An XHR2 client posts binary payloads with application/octet-stream (refused by v4
    // sessions): a text record, then a binary one.
    let mut body = vec![0x00, 0x06, 0xff];
    body.extend_from_slice(b"4hello");
    body.extend_from_slice(&[0x01, 0x05, 0xff, 0x04, 1, 2, 3, 4]);
    let r = post_binary(&mut h, sid, &body);
    assert_eq!((r.status.as_u16(), r.body_text().as_ref()), (200, "ok"));
    assert_eq!(h.messages(sid), ["hello", "<binary [1, 2, 3, 4]>"]);
    // A payload holding binary goes back as a binary payload (Node's choice).
    h.send(sid, "hi");
    h.session(sid).send(vec![1u8, 2, 3, 4]).unwrap();
    h.drain();
    let get = h.get(&poll3(sid));
    let r = h.response(get).unwrap();
    assert_eq!(content_type(&r), "application/octet-stream");
    assert_eq!(
        &r.body[..],
        &[
            0x00, 0x03, 0xff, b'4', b'h', b'i', 0x01, 0x05, 0xff, 0x04, 1, 2, 3, 4
        ]
    );
    // Text alone stays a text payload.
    h.send(sid, "text");
    let get = h.get(&poll3(sid));
    let r = h.response(get).unwrap();
    assert_eq!(content_type(&r), "text/plain; charset=UTF-8");
    assert_eq!(r.body_text(), "5:4text");
}

#[test]
fn b64_clients_get_binary_as_base64_in_text_payloads_and_frames() {
    let mut h = Harness::new(v3_config());
    let (sid, _) = open3(&mut h, "&b64=1");
    // Base64 binary from the client, in a text payload.
    let post = h.post(&poll3(sid), b"10:b4AQIDBA==");
    assert_eq!(h.body(post), "ok");
    assert_eq!(h.messages(sid), ["<binary [1, 2, 3, 4]>"]);
    h.session(sid).send(vec![1u8, 2, 3, 4]).unwrap();
    h.drain();
    let get = h.get(&poll3(sid));
    let r = h.response(get).unwrap();
    assert_eq!(content_type(&r), "text/plain; charset=UTF-8");
    assert_eq!(r.body_text(), "10:b4AQIDBA==");
    // And over WebSocket, text frames `b4<base64>`.
    let ws = h.ws("/engine.io/?EIO=3&transport=websocket&b64=1");
    h.ws_recv(ws);
    let wsid = h.ws_state(ws).sid.unwrap();
    h.session(wsid).send(vec![1u8, 2, 3, 4]).unwrap();
    h.drain();
    assert_eq!(h.ws_recv_text(ws), ["b4AQIDBA=="]);
}

#[test]
fn malformed_v3_payloads_close_with_a_parse_error() {
    let cases: &[(&[u8], bool)] = &[
        (b"", false),
        (b"4hello", false),
        (b"9:4abc", false),
        (b"2:4a1:", false),
        (b"3:b2A", false),
        (&[0x02, 0x01, 0xff, b'6'], true),
        (&[0x00, 0x09, 0xff, b'6'], true),
        (&[0x01, 0x01, 0xff, 0x02], true),
    ];
    for (body, binary) in cases {
        let mut h = Harness::new(v3_config());
        let (sid, _) = open3(&mut h, "");
        let r = if *binary {
            post_binary(&mut h, sid, body)
        } else {
            let id = h.post(&poll3(sid), body);
            h.response(id).unwrap()
        };
        assert_eq!(r.status, 400, "{body:?}");
        assert!(
            matches!(h.closed[&sid], CloseReason::ParseError(_)),
            "{body:?}: {:?}",
            h.closed.get(&sid)
        );
    }
    // Messages before the bad record are delivered, as in v4.
    let mut h = Harness::new(v3_config());
    let (sid, _) = open3(&mut h, "");
    let id = h.post(&poll3(sid), b"6:4first2:9x");
    assert_eq!(h.response(id).unwrap().status, 400);
    assert_eq!(h.messages(sid), ["first"]);
}

#[test]
fn an_oversized_v3_post_gets_413() {
    let mut c = v3_config();
    c.max_payload = 100;
    let mut h = Harness::new(c);
    let (sid, _) = open3(&mut h, "");
    let body = format!("101:4{}", "x".repeat(100));
    let id = h.post(&poll3(sid), body.as_bytes());
    assert_eq!(h.response(id).unwrap().status, 413);
    assert!(matches!(
        h.closed[&sid],
        CloseReason::PayloadTooLarge { limit: 100, .. }
    ));
}

// ------------------------------------------------------------------ heartbeat

#[test]
fn the_v3_client_pings_and_the_server_answers() {
    let mut h = Harness::new(v3_config());
    let (sid, _) = open3(&mut h, "");
    for _ in 0..5 {
        let get = h.get(&poll3(sid));
        // The server never pings a v3 client.
        h.advance(Duration::from_millis(400));
        assert!(!h.answered(get));
        let post = h.post(&poll3(sid), b"1:2");
        assert_eq!(h.body(post), "ok");
        assert_eq!(h.body(get), "1:3");
    }
    // The probe ping is answered with the probe pong (over a WebSocket, below); a plain
    // ping over polling is heartbeat. A quiet client ends interval + timeout after its
    // last ping.
    let last = h.elapsed();
    while h.is_live(sid) {
        assert!(h.step());
    }
    assert_eq!(h.elapsed() - last, Duration::from_millis(500));
    assert_eq!(h.closed[&sid], CloseReason::PingTimeout);
}

#[test]
fn a_v3_client_that_never_pings_times_out_after_interval_plus_timeout() {
    let mut h = Harness::new(v3_config());
    let (sid, _) = open3(&mut h, "");
    // Other traffic does not count (Node 6 refreshes only on a ping).
    for _ in 0..4 {
        h.advance(Duration::from_millis(100));
        let post = h.post(&poll3(sid), b"2:4x");
        assert_eq!(h.body(post), "ok");
    }
    h.advance(Duration::from_millis(99));
    assert!(h.is_live(sid));
    h.advance(Duration::from_millis(1));
    assert_eq!(h.closed[&sid], CloseReason::PingTimeout);
}

#[test]
fn a_pong_from_a_v3_client_is_the_wrong_heartbeat_direction() {
    let mut h = Harness::new(v3_config());
    let (sid, _) = open3(&mut h, "");
    let id = h.post(&poll3(sid), b"1:3");
    assert_eq!(h.response(id).unwrap().status, 400);
    let CloseReason::ParseError(ProtocolError::UnexpectedPacket { context, .. }) = &h.closed[&sid]
    else {
        panic!("{:?}", h.closed[&sid])
    };
    assert!(context.contains("v3"), "{context}");
}

// ------------------------------------------------------------------ websocket

#[test]
fn v3_websocket_frames_carry_the_type_byte_on_binary() {
    let mut h = Harness::new(v3_config());
    let ws = h.ws("/engine.io/?EIO=3&transport=websocket");
    let first = h.ws_recv_text(ws);
    assert!(first[0].starts_with("0{\"sid\":"), "{first:?}");
    let sid = h.ws_state(ws).sid.unwrap();
    h.ws_text(ws, "4hello");
    h.ws_send(ws, WsMessage::Binary(Bytes::from_static(&[4, 1, 2, 3])));
    h.ws_text(ws, "b4AQIDBA==");
    assert_eq!(
        h.messages(sid),
        ["hello", "<binary [1, 2, 3]>", "<binary [1, 2, 3, 4]>"]
    );
    h.send(sid, "back");
    h.session(sid).send(vec![9u8]).unwrap();
    h.drain();
    assert_eq!(
        h.ws_recv(ws),
        [
            WsMessage::Text("4back".into()),
            WsMessage::Binary(Bytes::from_static(&[4, 9]))
        ]
    );
    // Heartbeat over the socket.
    h.advance(Duration::from_millis(450));
    h.ws_text(ws, "2");
    assert_eq!(h.ws_recv_text(ws), ["3"]);
    h.advance(Duration::from_millis(450));
    assert!(h.is_live(sid));
    // A binary frame without the type byte (v4's form) is a parse error in v3.
    h.ws_send(ws, WsMessage::Binary(Bytes::from_static(&[1, 2, 3])));
    assert!(matches!(h.closed[&sid], CloseReason::ParseError(_)));
}

#[test]
fn v3_upgrade_releases_the_get_with_a_framed_noop_and_pauses_the_heartbeat() {
    let mut h = Harness::new(v3_config());
    let (sid, _) = open3(&mut h, "");
    let get = h.get(&poll3(sid));
    let ws = h.ws(&ws3(sid));
    assert!(h.ws_state(ws).accepted);
    h.ws_text(ws, "2probe");
    assert_eq!(h.ws_recv_text(ws), ["3probe"]);
    assert_eq!(h.body(get), "1:6");
    // Paused: no ping can come while the client switches.
    h.advance(Duration::from_millis(900));
    assert!(h.is_live(sid));
    h.send(sid, "queued");
    h.ws_text(ws, "5");
    assert_eq!(h.session(sid).transport(), Transport::WebSocket);
    assert!(h.events.contains(&(sid, Event::Upgraded)));
    assert_eq!(h.ws_recv_text(ws), ["4queued"]);
    // The heartbeat resumes with a full period from the upgrade.
    h.advance(Duration::from_millis(499));
    assert!(h.is_live(sid));
    h.ws_text(ws, "2");
    assert_eq!(h.ws_recv_text(ws), ["3"]);
    h.advance(Duration::from_millis(500));
    assert_eq!(h.closed[&sid], CloseReason::PingTimeout);
}

// ------------------------------------------------------------------ closing

#[test]
fn v3_closes_over_polling_are_framed() {
    // The client closes: ok, and the parked GET gets the framed noop.
    let mut h = Harness::new(v3_config());
    let (sid, _) = open3(&mut h, "");
    let get = h.get(&poll3(sid));
    let post = h.post(&poll3(sid), b"1:1");
    assert_eq!(h.body(post), "ok");
    assert_eq!(h.body(get), "1:6");
    assert_eq!(h.closed[&sid], CloseReason::ClientClose);
    // The server closes: queued messages, then the close packet, framed.
    let (sid, _) = open3(&mut h, "");
    h.send(sid, "last words");
    h.close(sid);
    assert!(matches!(
        h.session(sid).send("more"),
        Err(SendError::Closed(_))
    ));
    let get = h.get(&poll3(sid));
    assert_eq!(h.body(get), "11:4last words1:1");
    assert_eq!(h.closed[&sid], CloseReason::ServerClose);
    // A ping while the server closes gets no pong after the close packet.
    let (sid, _) = open3(&mut h, "");
    h.close(sid);
    let post = h.post(&poll3(sid), b"1:2");
    assert_eq!(h.body(post), "ok");
    let get = h.get(&poll3(sid));
    assert_eq!(h.body(get), "1:1");
    // Over WebSocket the close frame follows a close packet.
    let ws = h.ws("/engine.io/?EIO=3&transport=websocket");
    h.ws_recv(ws);
    let sid = h.ws_state(ws).sid.unwrap();
    h.ws_client_close(ws, TransportEnd::Closed);
    assert_eq!(h.closed[&sid], CloseReason::TransportClose);
}
