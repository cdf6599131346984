//! The server state machine, driven by a scripted raw client in virtual time.
#![allow(missing_docs, clippy::disallowed_methods)]

mod util;

use std::time::Duration;

use engineio_proto::server::{
    AllowedOrigins, CookieConfig, Event, Rejection, SameSite, ServerConfig,
};
use engineio_proto::{
    CloseCode, CloseReason, IoError, Message, Packet, ProtocolError, SendError, Transport,
    TransportEnd, TransportError, WsMessage,
};
use http::{Method, StatusCode};
use util::{ConnectPolicy, Harness, config, error_code, open_packet, packets, suite_config};

// ------------------------------------------------------------------ handshake

#[test]
fn polling_handshake_sends_exactly_the_configured_open_packet() {
    let mut h = Harness::new(suite_config());
    let id = h.get("/engine.io/?EIO=4&transport=polling");
    let r = h.response(id).unwrap();
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["content-type"], "text/plain; charset=UTF-8");
    assert_eq!(r.headers["cache-control"], "no-store");
    let body = r.body_text();
    assert!(body.starts_with("0{"));
    let json: serde_json::Value = serde_json::from_str(&body[1..]).unwrap();
    let mut keys: Vec<_> = json.as_object().unwrap().keys().cloned().collect();
    keys.sort();
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
    // Integer milliseconds, not seconds.
    assert_eq!(json["pingInterval"], 300);
    assert_eq!(json["pingTimeout"], 200);
    assert_eq!(json["maxPayload"], 1_000_000);
    assert_eq!(json["sid"].as_str().unwrap().len(), 20);
    assert_eq!(h.sessions.len(), 1);
}

#[test]
fn websocket_handshake_sends_open_as_first_text_frame() {
    let mut h = Harness::new(suite_config());
    let (_ws, sid, hs) = h.open_ws();
    assert!(hs.upgrades.is_empty());
    assert_eq!(hs.ping_interval, Duration::from_millis(300));
    assert_eq!(h.session(sid).transport(), Transport::WebSocket);
}

#[test]
fn upgrades_are_not_offered_when_disabled() {
    let mut c = config();
    c.allow_upgrades = false;
    let mut h = Harness::new(c);
    let (sid, hs) = h.open_polling();
    assert!(hs.upgrades.is_empty());
    let ws = h.ws(&Harness::ws_uri(sid));
    let r = h.response(ws).unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(error_code(&r), 3);
}

#[test]
fn sids_are_distinct() {
    let mut h = Harness::new(config());
    let mut sids = std::collections::BTreeSet::new();
    for _ in 0..1000 {
        let (sid, _) = h.open_polling();
        assert!(sids.insert(sid));
    }
}

#[test]
fn bad_requests_get_the_protocol_error_codes() {
    let mut h = Harness::new(config());
    type Case<'a> = (Method, &'a str, &'a [(&'a str, &'a str)], u16, i64);
    let cases: &[Case<'_>] = &[
        (Method::GET, "/engine.io/?EIO=4", &[], 400, 0),
        (Method::GET, "/engine.io/?EIO=4&transport=abc", &[], 400, 0),
        (Method::GET, "/engine.io/?transport=polling", &[], 400, 5),
        (
            Method::GET,
            "/engine.io/?EIO=abc&transport=polling",
            &[],
            400,
            5,
        ),
        (
            Method::GET,
            "/engine.io/?EIO=3&transport=polling",
            &[],
            400,
            5,
        ),
        (
            Method::GET,
            "/engine.io/?EIO=5&transport=polling",
            &[],
            400,
            5,
        ),
        (
            Method::POST,
            "/engine.io/?EIO=4&transport=polling",
            &[],
            400,
            2,
        ),
        (
            Method::PUT,
            "/engine.io/?EIO=4&transport=polling",
            &[],
            400,
            2,
        ),
        (
            Method::GET,
            "/engine.io/?EIO=4&transport=websocket",
            &[],
            400,
            3,
        ),
        (
            Method::GET,
            "/engine.io/?EIO=4&transport=polling",
            &[("upgrade", "websocket")],
            400,
            3,
        ),
        (
            Method::GET,
            "/engine.io/?EIO=4&transport=polling&j=0",
            &[],
            400,
            3,
        ),
        (
            Method::GET,
            "/engine.io/?EIO=4&transport=polling&sid=nope",
            &[],
            400,
            1,
        ),
        (
            Method::GET,
            "/engine.io/?EIO=4&transport=polling&sid=",
            &[],
            400,
            1,
        ),
        (
            Method::PUT,
            "/engine.io/?EIO=4&transport=polling&sid=abc",
            &[],
            400,
            3,
        ),
    ];
    for (method, uri, headers, status, code) in cases {
        let id = h.request(method.clone(), uri, headers, b"");
        let r = h.response(id).unwrap();
        assert_eq!(r.status, *status, "{method} {uri}: {}", r.body_text());
        assert_eq!(r.headers["content-type"], "application/json");
        assert_eq!(error_code(&r), *code, "{method} {uri}: {}", r.body_text());
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert!(v["message"].is_string() && v["detail"].is_string());
    }
    assert!(h.sessions.is_empty());
}

#[test]
fn other_paths_are_not_engine_io() {
    let mut h = Harness::new(config());
    assert!(h.server.matches_path("/engine.io/"));
    assert!(h.server.matches_path("/engine.io"));
    assert!(!h.server.matches_path("/engine.iox"));
    assert!(!h.server.matches_path("/engine.io/x"));
    assert!(!h.server.matches_path("/"));
    let id = h.get("/other?EIO=4&transport=polling");
    assert_eq!(h.response(id).unwrap().status, 404);
    // Without the trailing slash works too.
    let id = h.get("/engine.io?EIO=4&transport=polling");
    assert_eq!(h.response(id).unwrap().status, 200);
}

#[test]
fn disabled_transports_are_unknown() {
    let mut c = config();
    c.transports.polling = false;
    let mut h = Harness::new(c);
    let id = h.get("/engine.io/?EIO=4&transport=polling");
    let r = h.response(id).unwrap();
    assert_eq!((r.status.as_u16(), error_code(&r)), (400, 0));
    let (_ws, _sid, hs) = h.open_ws();
    assert!(hs.upgrades.is_empty());
}

#[test]
fn the_application_can_reject_with_status_and_message() {
    let mut h = Harness::new(config());
    h.policy = ConnectPolicy::Reject(Rejection::new(StatusCode::UNAUTHORIZED, "bad token"));
    let id = h.get("/engine.io/?EIO=4&transport=polling&token=x");
    let r = h.response(id).unwrap();
    assert_eq!(r.status, 401);
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v, serde_json::json!({"code": 4, "message": "bad token"}));
    // Over WebSocket the refusal is an HTTP answer before any 101.
    h.policy = ConnectPolicy::Reject(Rejection::forbidden());
    let ws = h.ws("/engine.io/?EIO=4&transport=websocket");
    assert!(!h.ws_state(ws).accepted);
    let r = h.response(ws).unwrap();
    assert_eq!((r.status.as_u16(), error_code(&r)), (403, 4));
    assert!(h.sessions.is_empty());
}

#[test]
fn the_connect_decision_can_come_later_and_sees_the_request() {
    let mut h = Harness::new(suite_config());
    h.policy = ConnectPolicy::Defer;
    let id = h.request(
        Method::GET,
        "/engine.io/?EIO=4&transport=polling&token=s3cr%65t",
        &[("x-user", "ann")],
        b"",
    );
    assert!(!h.answered(id));
    let hs = h.pending_handshakes.pop().unwrap();
    assert_eq!(hs.query("token").as_deref(), Some("s3cret"));
    assert_eq!(hs.headers()["x-user"], "ann");
    assert_eq!(hs.transport(), Transport::Polling);
    h.advance(Duration::from_secs(5));
    h.accept(hs);
    let r = h.response(id).unwrap();
    let sid = open_packet(&r.body).sid;
    // Timers start at acceptance, not at the request.
    let deadline = h.session(sid).poll_timeout().unwrap();
    assert_eq!(deadline - h.start, Duration::from_millis(5300));
    assert_eq!(h.data[&sid], 1);
}

// ------------------------------------------------------------------ polling

#[test]
fn post_one_and_many_packets_answers_ok() {
    let mut h = Harness::new(config());
    let (sid, _) = h.open_polling();
    let id = h.post(&Harness::poll_uri(sid), b"4hello");
    let r = h.response(id).unwrap();
    assert_eq!((r.status.as_u16(), &r.body[..]), (200, &b"ok"[..]));
    let id = h.post(
        &Harness::poll_uri(sid),
        "4a\x1e4€😀\x1ebAQIDBA==\x1e6\x1e4".as_bytes(),
    );
    assert_eq!(h.body(id), "ok");
    assert_eq!(
        h.messages(sid),
        ["hello", "a", "€😀", "<binary [1, 2, 3, 4]>", ""]
    );
}

#[test]
fn get_is_answered_at_once_with_queued_packets_or_parked() {
    let mut h = Harness::new(config());
    let (sid, _) = h.open_polling();
    h.send(sid, "one");
    h.session(sid).send(vec![1u8, 2, 3, 4]).unwrap();
    let id = h.get(&Harness::poll_uri(sid));
    assert_eq!(h.body(id), "4one\x1ebAQIDBA==");
    // Nothing queued: the GET waits...
    let id = h.get(&Harness::poll_uri(sid));
    assert!(!h.answered(id));
    h.advance(Duration::from_secs(1));
    assert!(!h.answered(id));
    // ...until there is data.
    h.send(sid, "two");
    assert_eq!(h.body(id), "4two");
}

#[test]
fn parked_get_is_released_by_the_first_ping() {
    let mut h = Harness::new(suite_config());
    let (sid, _) = h.open_polling();
    let id = h.get(&Harness::poll_uri(sid));
    assert!(h.step());
    assert_eq!(h.elapsed(), Duration::from_millis(300));
    assert_eq!(h.body(id), "2");
}

#[test]
fn a_second_concurrent_get_closes_the_session() {
    let mut h = Harness::new(suite_config());
    let (sid, _) = h.open_polling();
    let first = h.get(&Harness::poll_uri(sid));
    let second = h.get(&Harness::poll_uri(sid));
    let r2 = h.response(second).unwrap();
    assert_eq!(r2.status, 400);
    assert_eq!(h.body(first), "1");
    assert_eq!(
        h.closed[&sid],
        CloseReason::ParseError(ProtocolError::DuplicateGet)
    );
    let later = h.get(&Harness::poll_uri(sid));
    let r = h.response(later).unwrap();
    assert_eq!((r.status.as_u16(), error_code(&r)), (400, 1));
}

#[test]
fn a_second_concurrent_post_closes_the_session() {
    let mut h = Harness::new(config());
    let (sid, _) = h.open_polling();
    // Deliver the first POST's head without its body.
    let first = h.raw_post_head(sid);
    let second = h.post(&Harness::poll_uri(sid), b"4x");
    assert_eq!(h.response(second).unwrap().status, 400);
    assert_eq!(h.response(first).unwrap().status, 400);
    assert_eq!(
        h.closed[&sid],
        CloseReason::ParseError(ProtocolError::DuplicatePost)
    );
    assert!(h.messages(sid).is_empty());
}

#[test]
fn oversized_post_gets_413_and_the_application_sees_why() {
    let mut c = config();
    c.max_payload = 10;
    let mut h = Harness::new(c);
    let (sid, _) = h.open_polling();
    let get = h.get(&Harness::poll_uri(sid));
    // Exactly the limit is accepted.
    let id = h.post(&Harness::poll_uri(sid), b"4123456789");
    assert_eq!(h.body(id), "ok");
    let id = h.post(&Harness::poll_uri(sid), b"41234567890");
    let r = h.response(id).unwrap();
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(r.body_text().contains("11 bytes"));
    assert_eq!(
        h.closed[&sid],
        CloseReason::PayloadTooLarge {
            size: 11,
            limit: 10
        }
    );
    // The parked GET is released with a close packet.
    assert_eq!(h.body(get), "1");
}

#[test]
fn malformed_posts_close_with_a_parse_error() {
    for body in [
        &b""[..],
        b"4a\x1e",
        b"abc",
        b"2",
        b"5",
        b"0{}",
        b"b!!",
        b"4\xff",
    ] {
        let mut h = Harness::new(config());
        let (sid, _) = h.open_polling();
        let id = h.post(&Harness::poll_uri(sid), body);
        assert_eq!(h.response(id).unwrap().status, 400, "{body:?}");
        assert!(
            matches!(h.closed[&sid], CloseReason::ParseError(_)),
            "{body:?}: {:?}",
            h.closed[&sid]
        );
        let later = h.get(&Harness::poll_uri(sid));
        assert_eq!(error_code(&h.response(later).unwrap()), 1);
    }
}

#[test]
fn octet_stream_posts_are_refused() {
    let mut h = Harness::new(config());
    let (sid, _) = h.open_polling();
    let id = h.request(
        Method::POST,
        &Harness::poll_uri(sid),
        &[("content-type", "application/octet-stream")],
        b"\x00\x01",
    );
    assert_eq!(h.response(id).unwrap().status, 400);
    assert_eq!(
        h.closed[&sid],
        CloseReason::ParseError(ProtocolError::BinaryPayload)
    );
}

#[test]
fn a_ping_from_the_client_is_the_wrong_heartbeat_direction() {
    let mut h = Harness::new(config());
    let (sid, _) = h.open_polling();
    let id = h.post(&Harness::poll_uri(sid), b"2");
    assert_eq!(h.response(id).unwrap().status, 400);
    assert!(matches!(
        h.closed[&sid],
        CloseReason::ParseError(ProtocolError::UnexpectedPacket { .. })
    ));
}

#[test]
fn messages_before_a_malformed_packet_are_delivered() {
    let mut h = Harness::new(config());
    let (sid, _) = h.open_polling();
    let id = h.post(&Harness::poll_uri(sid), b"4first\x1e9oops\x1e4never");
    assert_eq!(h.response(id).unwrap().status, 400);
    assert_eq!(h.messages(sid), ["first"]);
}

#[test]
fn client_close_over_polling_releases_the_get_with_noop() {
    let mut h = Harness::new(config());
    let (sid, _) = h.open_polling();
    let get = h.get(&Harness::poll_uri(sid));
    let post = h.post(&Harness::poll_uri(sid), b"1");
    assert_eq!(h.body(post), "ok");
    assert_eq!(h.body(get), "6");
    assert_eq!(h.closed[&sid], CloseReason::ClientClose);
    let later = h.post(&Harness::poll_uri(sid), b"4x");
    assert_eq!(error_code(&h.response(later).unwrap()), 1);
}

#[test]
fn a_dropped_parked_get_ends_the_session() {
    let mut h = Harness::new(config());
    let (sid, _) = h.open_polling();
    let get = h.get(&Harness::poll_uri(sid));
    h.drop_request(get);
    assert!(matches!(h.closed[&sid], CloseReason::TransportError(_)));
}

// ------------------------------------------------------------------ websocket

#[test]
fn websocket_text_and_binary_both_ways() {
    let mut h = Harness::new(config());
    let (ws, sid, _) = h.open_ws();
    h.ws_text(ws, "4hello");
    h.ws_send(ws, WsMessage::Binary(vec![1, 2, 3].into()));
    h.ws_text(ws, "bAQIDBA==");
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
            WsMessage::Binary(vec![9].into())
        ]
    );
}

#[test]
fn b64_clients_get_binary_as_base64_text() {
    let mut h = Harness::new(config());
    let ws = h.ws("/engine.io/?EIO=4&transport=websocket&b64=1");
    h.ws_recv(ws);
    let sid = h.ws_state(ws).sid.unwrap();
    h.session(sid).send(vec![1u8, 2, 3, 4]).unwrap();
    h.drain();
    assert_eq!(h.ws_recv_text(ws), ["bAQIDBA=="]);
}

#[test]
fn close_packet_over_websocket_closes_at_once() {
    let mut h = Harness::new(suite_config());
    let (ws, sid, _) = h.open_ws();
    h.ws_text(ws, "1");
    assert_eq!(h.closed[&sid], CloseReason::ClientClose);
    assert_eq!(h.ws_state(ws).closed, Some((CloseCode::Normal, "")));
    assert_eq!(h.elapsed(), Duration::ZERO);
}

#[test]
fn oversized_websocket_message_closes_with_1009() {
    let mut c = config();
    c.max_payload = 8;
    let mut h = Harness::new(c);
    let (ws, sid, _) = h.open_ws();
    h.ws_text(ws, "41234567");
    assert_eq!(h.messages(sid), ["1234567"]);
    h.ws_text(ws, "412345678");
    assert_eq!(
        h.ws_state(ws).closed,
        Some((CloseCode::TooBig, "payload too large"))
    );
    assert_eq!(
        h.closed[&sid],
        CloseReason::PayloadTooLarge { size: 9, limit: 8 }
    );
    // The binding's own limit reports through the same reason.
    let (ws, sid, _) = h.open_ws();
    h.ws_client_close(ws, TransportEnd::MessageTooLarge { size: 64 });
    assert_eq!(
        h.closed[&sid],
        CloseReason::PayloadTooLarge { size: 64, limit: 8 }
    );
}

#[test]
fn websocket_parse_error_and_transport_ends() {
    let mut h = Harness::new(config());
    let (ws, sid, _) = h.open_ws();
    h.ws_text(ws, "abc");
    assert!(matches!(h.closed[&sid], CloseReason::ParseError(_)));
    assert_eq!(
        h.ws_state(ws).closed.map(|c| c.0),
        Some(CloseCode::Protocol)
    );

    let (ws, sid, _) = h.open_ws();
    h.ws_client_close(ws, TransportEnd::Closed);
    assert_eq!(h.closed[&sid], CloseReason::TransportClose);
    // The socket is gone: no close frame is asked for.
    assert_eq!(h.ws_state(ws).closed, None);

    let (ws, sid, _) = h.open_ws();
    let reset = TransportError::Reset(IoError::new(
        std::io::ErrorKind::ConnectionReset,
        "connection reset by peer",
    ));
    h.ws_client_close(ws, TransportEnd::Error(reset.clone()));
    assert_eq!(h.closed[&sid], CloseReason::TransportError(reset));
}

#[test]
fn polling_requests_for_a_websocket_session_are_refused() {
    let mut h = Harness::new(config());
    let (_ws, sid, _) = h.open_ws();
    let id = h.get(&Harness::poll_uri(sid));
    let r = h.response(id).unwrap();
    assert_eq!((r.status.as_u16(), error_code(&r)), (400, 3));
    // A second WebSocket completes its handshake and is closed at once (as Node does:
    // a 400 would look like a network failure to the client); the first is untouched.
    let ws2 = h.ws(&Harness::ws_uri(sid));
    assert!(h.ws_state(ws2).accepted);
    assert_eq!(h.ws_state(ws2).closed.map(|c| c.0), Some(CloseCode::Policy));
    assert!(h.ws_recv(ws2).is_empty());
    assert!(h.is_live(sid));
    h.ws_text(_ws, "4still here");
    assert_eq!(h.messages(sid), ["still here"]);
}

// ------------------------------------------------------------------ upgrade

#[test]
fn upgrade_releases_the_parked_get_with_noop_and_flushes_over_the_socket() {
    let mut h = Harness::new(suite_config());
    let (sid, _) = h.open_polling();
    let get = h.get(&Harness::poll_uri(sid));
    let ws = h.ws(&Harness::ws_uri(sid));
    assert!(h.ws_state(ws).accepted);
    assert!(h.session(sid).is_upgrading());
    h.ws_text(ws, "2probe");
    assert_eq!(h.ws_recv_text(ws), ["3probe"]);
    assert_eq!(h.body(get), "6");
    // Messages sent during the upgrade wait for the socket.
    h.send(sid, "queued");
    h.ws_text(ws, "5");
    assert_eq!(h.session(sid).transport(), Transport::WebSocket);
    assert!(h.events.contains(&(sid, Event::Upgraded)));
    h.drain();
    assert_eq!(h.ws_recv_text(ws), ["4queued"]);
    // The next frame after 5 is the echo, not a stray noop.
    h.ws_text(ws, "4hello");
    let m = h.messages(sid).pop().unwrap();
    h.send(sid, &m);
    assert_eq!(h.ws_recv_text(ws), ["4hello"]);
    // Polling and a second WebSocket are refused after the upgrade.
    let id = h.get(&Harness::poll_uri(sid));
    assert_eq!(error_code(&h.response(id).unwrap()), 3);
    let id = h.post(&Harness::poll_uri(sid), b"4x");
    assert_eq!(error_code(&h.response(id).unwrap()), 3);
    let ws2 = h.ws(&Harness::ws_uri(sid));
    assert!(h.ws_state(ws2).accepted);
    assert_eq!(h.ws_state(ws2).closed.map(|c| c.0), Some(CloseCode::Policy));
    assert!(h.ws_state(ws).closed.is_none());
}

#[test]
fn a_get_during_the_upgrade_is_answered_at_once() {
    let mut h = Harness::new(suite_config());
    let (sid, _) = h.open_polling();
    let ws = h.ws(&Harness::ws_uri(sid));
    h.ws_text(ws, "2probe");
    let get = h.get(&Harness::poll_uri(sid));
    assert_eq!(h.body(get), "6");
}

#[test]
fn a_second_websocket_during_the_upgrade_is_closed_after_its_handshake() {
    let mut h = Harness::new(config());
    let (sid, _) = h.open_polling();
    let ws = h.ws(&Harness::ws_uri(sid));
    let ws2 = h.ws(&Harness::ws_uri(sid));
    assert!(h.ws_state(ws).accepted && h.ws_state(ws2).accepted);
    assert_eq!(h.ws_state(ws2).closed.map(|c| c.0), Some(CloseCode::Policy));
    // The upgrade on the first one goes on.
    h.ws_text(ws, "2probe");
    assert_eq!(h.ws_recv_text(ws), ["3probe"]);
    h.ws_text(ws, "5");
    assert_eq!(h.session(sid).transport(), Transport::WebSocket);
    // The second socket's peer never acknowledges the close: it is dropped after
    // write_timeout.
    assert!(!h.ws_state(ws2).dropped);
    h.advance(Duration::from_secs(5));
    assert!(h.ws_state(ws2).dropped);
}

#[test]
fn upgrade_timeout_abandons_the_upgrade_and_keeps_polling() {
    let mut h = Harness::new(config());
    let (sid, _) = h.open_polling();
    let ws = h.ws(&Harness::ws_uri(sid));
    h.ws_text(ws, "2probe");
    h.ws_recv(ws);
    // The client never sends 5.
    h.advance(Duration::from_secs(10));
    assert_eq!(
        h.ws_state(ws).closed,
        Some((CloseCode::Normal, "upgrade timeout"))
    );
    assert!(!h.session(sid).is_upgrading());
    assert_eq!(h.session(sid).transport(), Transport::Polling);
    h.send(sid, "still here");
    let get = h.get(&Harness::poll_uri(sid));
    assert_eq!(h.body(get), "4still here");
    // A later upgrade works.
    let ws = h.upgrade(sid);
    assert_eq!(h.session(sid).transport(), Transport::WebSocket);
    h.send(sid, "x");
    assert_eq!(h.ws_recv_text(ws), ["4x"]);
}

#[test]
fn anything_but_the_probe_sequence_aborts_the_upgrade_only() {
    for bad in ["4hello", "5", "2", "3probe", "zz"] {
        let mut h = Harness::new(config());
        let (sid, _) = h.open_polling();
        let ws = h.ws(&Harness::ws_uri(sid));
        h.ws_text(ws, bad);
        assert!(h.ws_state(ws).closed.is_some(), "{bad}");
        assert!(h.is_live(sid), "{bad}");
        assert!(!h.session(sid).is_upgrading());
    }
    // A probe WebSocket that closes leaves the session on polling.
    let mut h = Harness::new(config());
    let (sid, _) = h.open_polling();
    let ws = h.ws(&Harness::ws_uri(sid));
    h.ws_text(ws, "2probe");
    h.ws_client_close(ws, TransportEnd::Closed);
    assert!(!h.session(sid).is_upgrading());
    assert_eq!(h.session(sid).transport(), Transport::Polling);
}

#[test]
fn heartbeat_is_paused_during_the_upgrade() {
    let mut h = Harness::new(suite_config());
    let (sid, _) = h.open_polling();
    let ws = h.ws(&Harness::ws_uri(sid));
    h.ws_text(ws, "2probe");
    h.ws_recv(ws);
    // The ping falls due during the upgrade and the pong could not come: no timeout.
    h.advance(Duration::from_millis(900));
    assert!(h.is_live(sid));
    h.ws_text(ws, "5");
    h.drain();
    // The deferred ping goes out on the new socket at once.
    assert_eq!(h.ws_recv_text(ws), ["2"]);
    h.ws_text(ws, "3");
    h.advance(Duration::from_millis(300));
    assert_eq!(h.ws_recv_text(ws), ["2"]);
}

// ------------------------------------------------------------------ heartbeat

#[test]
fn heartbeat_over_websocket_for_25_seconds_runs_in_virtual_time() {
    let mut h = Harness::new(config());
    let (ws, sid, _) = h.open_ws();
    let wall = std::time::Instant::now();
    for round in 1..=40u32 {
        h.step();
        assert_eq!(h.ws_recv_text(ws), ["2"], "round {round}");
        assert_eq!(h.elapsed(), Duration::from_secs(25) * round);
        h.ws_text(ws, "3");
    }
    assert!(h.is_live(sid));
    assert!(wall.elapsed() < Duration::from_secs(5), "virtual time");
    // Then the client goes quiet: closed 20 s after the last ping.
    h.step();
    assert_eq!(h.ws_recv_text(ws), ["2"]);
    let pinged = h.elapsed();
    while h.is_live(sid) {
        assert!(h.step());
    }
    assert_eq!(h.elapsed() - pinged, Duration::from_secs(20));
    // Released write_timeout later.
    assert!(h.step());
    assert_eq!(h.elapsed() - pinged, Duration::from_secs(25));
    assert!(h.released.contains(&sid) && !h.sessions.contains_key(&sid));
    assert_eq!(h.closed[&sid], CloseReason::PingTimeout);
    assert_eq!(
        h.ws_state(ws).closed,
        Some((CloseCode::Normal, "ping timeout"))
    );
}

#[test]
fn heartbeat_over_polling_as_the_suite_checks_it() {
    let mut h = Harness::new(suite_config());
    let (sid, _) = h.open_polling();
    for _ in 0..3 {
        let get = h.get(&Harness::poll_uri(sid));
        h.step();
        assert_eq!(h.body(get), "2");
        let post = h.post(&Harness::poll_uri(sid), b"3");
        assert_eq!(h.body(post), "ok");
    }
    // No pong: the session closes after ping timeout, and a POST then gets 400.
    let get = h.get(&Harness::poll_uri(sid));
    h.step();
    assert_eq!(h.body(get), "2");
    h.advance(Duration::from_millis(200));
    assert_eq!(h.closed[&sid], CloseReason::PingTimeout);
    let post = h.post(&Harness::poll_uri(sid), b"3");
    assert_eq!(h.response(post).unwrap().status, 400);
}

#[test]
fn a_polling_client_that_never_polls_times_out() {
    let mut h = Harness::new(suite_config());
    let (sid, _) = h.open_polling();
    h.advance(Duration::from_millis(499));
    assert!(h.is_live(sid));
    h.advance(Duration::from_millis(1));
    assert_eq!(h.closed[&sid], CloseReason::PingTimeout);
}

#[test]
fn stray_and_early_pongs_are_harmless() {
    let mut h = Harness::new(suite_config());
    let (ws, sid, _) = h.open_ws();
    // Early pongs before any ping.
    for _ in 0..5 {
        h.ws_text(ws, "3");
    }
    h.advance(Duration::from_millis(300));
    assert_eq!(h.ws_recv_text(ws), ["2"]);
    h.ws_text(ws, "3");
    // A second, stray pong does not reset anything or count as a timeout.
    h.ws_text(ws, "3");
    h.advance(Duration::from_millis(300));
    assert_eq!(h.ws_recv_text(ws), ["2"]);
    assert!(h.is_live(sid));
}

#[test]
fn handle_timeout_early_or_twice_does_nothing() {
    let mut h = Harness::new(suite_config());
    let (ws, sid, _) = h.open_ws();
    let deadline = h.session(sid).poll_timeout().unwrap();
    let now = h.now;
    h.session(sid).handle_timeout(now);
    h.session(sid).handle_timeout(now);
    h.drain();
    assert!(h.ws_recv(ws).is_empty());
    h.now = deadline;
    h.session(sid).handle_timeout(deadline);
    h.session(sid).handle_timeout(deadline);
    h.drain();
    assert_eq!(h.ws_recv_text(ws), ["2"]);
}

// ------------------------------------------------------------------ server close

#[test]
fn server_close_over_polling_with_a_parked_get() {
    let mut h = Harness::new(config());
    let (sid, _) = h.open_polling();
    let get = h.get(&Harness::poll_uri(sid));
    h.close(sid);
    assert_eq!(h.body(get), "1");
    assert_eq!(h.closed[&sid], CloseReason::ServerClose);
}

#[test]
fn server_close_over_polling_flushes_then_waits_for_the_next_get() {
    let mut h = Harness::new(config());
    let (sid, _) = h.open_polling();
    h.send(sid, "last words");
    h.close(sid);
    assert!(h.is_live(sid));
    assert!(matches!(
        h.session(sid).send("more"),
        Err(SendError::Closed(_))
    ));
    let get = h.get(&Harness::poll_uri(sid));
    assert_eq!(h.body(get), "4last words\x1e1");
    assert_eq!(h.closed[&sid], CloseReason::ServerClose);
}

#[test]
fn server_close_over_polling_gives_up_after_close_timeout() {
    let mut h = Harness::new(config());
    let (sid, _) = h.open_polling();
    h.close(sid);
    h.advance(Duration::from_secs(29));
    assert!(h.is_live(sid));
    h.advance(Duration::from_secs(1));
    assert_eq!(h.closed[&sid], CloseReason::ServerClose);
}

#[test]
fn server_close_over_websocket_sends_close_after_pending_data() {
    let mut h = Harness::new(config());
    let (ws, sid, _) = h.open_ws();
    h.session(sid).send("bye").unwrap();
    let now = h.now;
    h.session(sid).close(now);
    h.drain();
    assert_eq!(h.ws_recv_text(ws), ["4bye", "1"]);
    assert_eq!(
        h.ws_state(ws).closed,
        Some((CloseCode::Normal, "server close"))
    );
    assert_eq!(h.closed[&sid], CloseReason::ServerClose);
}

#[test]
fn shutdown_uses_its_own_reason_and_code() {
    let mut h = Harness::new(config());
    let (ws, sid, _) = h.open_ws();
    let now = h.now;
    h.send(sid, "last");
    h.session(sid).shutdown(now);
    h.drain();
    // Queued messages go first; then the close code says it all: no close packet, which
    // would tell clients not to reconnect.
    assert_eq!(h.ws_recv_text(ws), ["4last"]);
    assert_eq!(
        h.ws_state(ws).closed,
        Some((CloseCode::GoingAway, "server shutting down"))
    );
    assert_eq!(h.closed[&sid], CloseReason::ServerShutdown);
}

#[test]
fn shutdown_over_polling_marks_the_close_packet_as_a_shutdown() {
    use engineio_proto::server::CLOSE_HEADER;
    let mut h = Harness::new(config());
    // A parked GET carries the close at once.
    let (sid, _) = h.open_polling();
    let get = h.get(&Harness::poll_uri(sid));
    let now = h.now;
    h.session(sid).shutdown(now);
    h.drain();
    let r = h.response(get).unwrap();
    assert_eq!(&r.body[..], b"1");
    assert_eq!(r.headers[CLOSE_HEADER], "shutdown");
    assert_eq!(h.closed[&sid], CloseReason::ServerShutdown);
    // Without a parked GET, the next one does.
    let (sid, _) = h.open_polling();
    let now = h.now;
    h.send(sid, "queued");
    h.session(sid).shutdown(now);
    let get = h.get(&Harness::poll_uri(sid));
    h.drain();
    let r = h.response(get).unwrap();
    assert_eq!(&r.body[..], b"4queued\x1e1");
    assert_eq!(r.headers[CLOSE_HEADER], "shutdown");
    // A ping timeout is marked too: the client should come back.
    let (sid, _) = h.open_polling();
    let get = h.get(&Harness::poll_uri(sid));
    h.advance(Duration::from_secs(26));
    let r = h.response(get).unwrap();
    assert_eq!(&r.body[..], b"2");
    let get = h.get(&Harness::poll_uri(sid));
    h.advance(Duration::from_secs(21));
    h.drain();
    let r = h.response(get).unwrap();
    assert_eq!(&r.body[..], b"1");
    assert_eq!(r.headers[CLOSE_HEADER], "ping timeout");
    assert_eq!(h.closed[&sid], CloseReason::PingTimeout);
    // A plain close is not marked.
    let (sid, _) = h.open_polling();
    let get = h.get(&Harness::poll_uri(sid));
    h.close(sid);
    h.drain();
    assert!(!h.response(get).unwrap().headers.contains_key(CLOSE_HEADER));
}

// ------------------------------------------------------------------ sending

#[test]
fn the_outgoing_queue_is_bounded_and_overflow_hands_the_message_back() {
    let mut c = config();
    c.max_buffered_packets = 3;
    let mut h = Harness::new(c);
    let (sid, _) = h.open_polling();
    for i in 0..3 {
        h.session(sid).send(format!("m{i}")).unwrap();
    }
    match h.session(sid).send("m3") {
        Err(SendError::QueueFull { message, limit }) => {
            assert_eq!(limit, 3);
            assert_eq!(message, Message::from("m3"));
        }
        other => panic!("{other:?}"),
    }
    let get = h.get(&Harness::poll_uri(sid));
    assert_eq!(h.body(get), "4m0\x1e4m1\x1e4m2");
    h.session(sid).send("m3").unwrap();
}

#[test]
fn send_json_and_record_separator_rules() {
    let mut h = Harness::new(config());
    let (sid, _) = h.open_polling();
    h.session(sid)
        .send_json(&serde_json::json!({"a": [1, "x"]}))
        .unwrap();
    assert!(matches!(
        h.session(sid).send("a\u{1e}b"),
        Err(SendError::RecordSeparator(_))
    ));
    let get = h.get(&Harness::poll_uri(sid));
    assert_eq!(h.body(get), "4{\"a\":[1,\"x\"]}");
    // Over WebSocket, U+001E is fine.
    let (ws, sid, _) = h.open_ws();
    h.send(sid, "a\u{1e}b");
    assert_eq!(h.ws_recv_text(ws), ["4a\u{1e}b"]);
}

#[test]
fn sending_to_a_closed_session_is_an_error() {
    let mut h = Harness::new(config());
    let (ws, sid, _) = h.open_ws();
    // Keep the session object to try sending after its end.
    let mut session = h.sessions.remove(&sid).unwrap();
    session.handle_ws_message(h.now, ws, WsMessage::Text("1".into()));
    while session.poll_action().is_some() {}
    assert!(matches!(session.send("x"), Err(SendError::Closed(_))));
    assert_eq!(session.close_reason(), Some(&CloseReason::ClientClose));
}

// ------------------------------------------------------------------ CORS and cookie

#[test]
fn same_origin_by_default_on_every_request() {
    let mut h = Harness::new(config());
    let evil = [("host", "a.com"), ("origin", "http://evil.com")];
    let id = h.request(
        Method::GET,
        "/engine.io/?EIO=4&transport=polling",
        &evil,
        b"",
    );
    let r = h.response(id).unwrap();
    assert_eq!((r.status.as_u16(), error_code(&r)), (400, 3));
    assert!(r.headers.get("access-control-allow-origin").is_none());
    assert!(r.body_text().contains("evil.com"));
    // WebSocket upgrades are checked too.
    let id = h.request(
        Method::GET,
        "/engine.io/?EIO=4&transport=websocket",
        &[
            ("host", "a.com"),
            ("origin", "http://evil.com"),
            ("upgrade", "websocket"),
        ],
        b"",
    );
    assert_eq!(h.response(id).unwrap().status, 400);
    // Same origin passes and gets the CORS headers echoed.
    let same = [("host", "a.com"), ("origin", "http://a.com")];
    let id = h.request(
        Method::GET,
        "/engine.io/?EIO=4&transport=polling",
        &same,
        b"",
    );
    let r = h.response(id).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["access-control-allow-origin"], "http://a.com");
    assert_eq!(r.headers["access-control-allow-credentials"], "true");
    // Requests without Origin (non-browser clients) pass.
    h.open_polling();
}

#[test]
fn allow_list_preflight_and_cors_on_errors() {
    let mut c = config();
    c.cors.origins = AllowedOrigins::list(["https://app.example"]);
    let mut h = Harness::new(c);
    let origin = [("origin", "https://app.example")];
    let id = h.request(
        Method::OPTIONS,
        "/engine.io/?EIO=4&transport=polling",
        &[
            ("origin", "https://app.example"),
            ("access-control-request-headers", "x-token"),
        ],
        b"",
    );
    let r = h.response(id).unwrap();
    assert_eq!(r.status, 204);
    assert_eq!(
        r.headers["access-control-allow-origin"],
        "https://app.example"
    );
    assert_eq!(
        r.headers["access-control-allow-methods"],
        "OPTIONS, GET, POST"
    );
    assert_eq!(r.headers["access-control-allow-headers"], "x-token");
    // Error answers carry CORS headers, so the browser shows the real error.
    let id = h.request(
        Method::GET,
        "/engine.io/?EIO=4&transport=polling&sid=gone",
        &origin,
        b"",
    );
    let r = h.response(id).unwrap();
    assert_eq!(error_code(&r), 1);
    assert_eq!(
        r.headers["access-control-allow-origin"],
        "https://app.example"
    );
    let id = h.request(
        Method::GET,
        "/engine.io/?EIO=3&transport=polling",
        &origin,
        b"",
    );
    let r = h.response(id).unwrap();
    assert_eq!(error_code(&r), 5);
    assert_eq!(
        r.headers["access-control-allow-origin"],
        "https://app.example"
    );
    // Parked GETs answered later carry them too.
    let id = h.request(
        Method::GET,
        "/engine.io/?EIO=4&transport=polling",
        &origin,
        b"",
    );
    let sid = open_packet(&h.response(id).unwrap().body).sid;
    let get = h.request(Method::GET, &Harness::poll_uri(sid), &origin, b"");
    h.send(sid, "late");
    let r = h.response(get).unwrap();
    assert_eq!(
        r.headers["access-control-allow-origin"],
        "https://app.example"
    );
    // Another origin's preflight is refused.
    let id = h.request(
        Method::OPTIONS,
        "/engine.io/?EIO=4&transport=polling",
        &[("origin", "https://other.example")],
        b"",
    );
    assert_eq!(h.response(id).unwrap().status, 400);
}

#[test]
fn sid_cookie_for_sticky_load_balancers() {
    let mut c = config();
    let mut cookie = CookieConfig::named("srv");
    cookie.same_site = Some(SameSite::Strict);
    cookie.secure = true;
    c.cookie = Some(cookie);
    let mut h = Harness::new(c);
    let id = h.get("/engine.io/?EIO=4&transport=polling");
    let r = h.response(id).unwrap();
    let sid = open_packet(&r.body).sid;
    assert_eq!(
        r.headers["set-cookie"],
        format!("srv={sid}; Path=/; HttpOnly; Secure; SameSite=Strict").as_str()
    );
    let mut bad = config();
    bad.cookie = Some(CookieConfig::named("a b"));
    assert!(
        engineio_proto::server::Server::new(
            bad,
            engineio_proto::server::SeededSidGenerator::new(1)
        )
        .is_err()
    );
}

#[test]
fn invalid_configurations_are_refused_with_a_reason() {
    use engineio_proto::server::{SeededSidGenerator, Server};
    let mut c = ServerConfig::default();
    c.path = "engine.io".into();
    let e = Server::new(c, SeededSidGenerator::new(1)).unwrap_err();
    assert!(e.to_string().contains("must start with '/'"));
    let mut c = ServerConfig::default();
    c.ping_interval = Duration::ZERO;
    assert!(Server::new(c, SeededSidGenerator::new(1)).is_err());
    let mut c = ServerConfig::default();
    c.transports.polling = false;
    c.transports.websocket = false;
    assert!(Server::new(c, SeededSidGenerator::new(1)).is_err());
    let mut c = ServerConfig::default();
    c.max_payload = 0;
    assert!(Server::new(c, SeededSidGenerator::new(1)).is_err());
    let mut c = ServerConfig::default();
    c.head_timeout = Duration::ZERO;
    let e = Server::new(c, SeededSidGenerator::new(1)).unwrap_err();
    assert!(e.to_string().contains("head_timeout"), "{e}");
    let mut c = ServerConfig::default();
    c.max_head_size = 4096;
    let e = Server::new(c, SeededSidGenerator::new(1)).unwrap_err();
    assert_eq!(e.to_string(), "max_head_size must be at least 8192");
}

// ------------------------------------------------------------------ leaks

/// Opens and ends sessions in every way a session can end, then checks that nothing is
/// held: no session, no unanswered request, no open socket without a close.
#[test]
fn ten_thousand_sessions_ended_every_way_leave_nothing_behind() {
    let mut h = Harness::new(suite_config());
    let ways = 14;
    for i in 0..10_000u32 {
        match i % ways {
            0 => {
                // client close over polling, with a parked GET
                let (sid, _) = h.open_polling();
                h.get(&Harness::poll_uri(sid));
                h.post(&Harness::poll_uri(sid), b"1");
            }
            1 => {
                // client close over WebSocket
                let (ws, _, _) = h.open_ws();
                h.ws_text(ws, "1");
            }
            2 => {
                // ping timeout over polling with nobody polling
                h.open_polling();
            }
            3 => {
                // ping timeout over WebSocket
                h.open_ws();
            }
            4 => {
                // server close over polling, never collected: close timeout
                let (sid, _) = h.open_polling();
                h.close(sid);
            }
            5 => {
                // server close over WebSocket
                let (_, sid, _) = h.open_ws();
                h.close(sid);
            }
            6 => {
                // duplicate GET
                let (sid, _) = h.open_polling();
                h.get(&Harness::poll_uri(sid));
                h.get(&Harness::poll_uri(sid));
            }
            7 => {
                // parse error over polling, during an upgrade
                let (sid, _) = h.open_polling();
                let ws = h.ws(&Harness::ws_uri(sid));
                h.ws_text(ws, "2probe");
                h.post(&Harness::poll_uri(sid), b"zz");
            }
            8 => {
                // transport close after an upgrade
                let (sid, _) = h.open_polling();
                let ws = h.upgrade(sid);
                h.ws_client_close(ws, TransportEnd::Closed);
            }
            9 => {
                // a parked GET dropped by the client
                let (sid, _) = h.open_polling();
                let get = h.get(&Harness::poll_uri(sid));
                h.drop_request(get);
            }
            10 => {
                // oversized POST
                let (sid, _) = h.open_polling();
                h.post(&Harness::poll_uri(sid), &vec![b'4'; 1_000_001]);
            }
            11 => {
                // POST head whose body never comes, then a ping timeout
                let (sid, _) = h.open_polling();
                h.raw_post_head(sid);
            }
            12 => {
                // upgrade that times out, then ping timeout
                let (sid, _) = h.open_polling();
                let ws = h.ws(&Harness::ws_uri(sid));
                h.ws_text(ws, "2probe");
            }
            _ => {
                // shutdown
                let (_, sid, _) = h.open_ws();
                let now = h.now;
                h.session(sid).shutdown(now);
                h.drain();
            }
        }
        if i % 500 == 499 {
            // Let every timer run out.
            while h.step() {}
        }
    }
    while h.step() {}
    assert!(h.sessions.is_empty(), "{} sessions left", h.sessions.len());
    assert!(
        h.outstanding.is_empty(),
        "unanswered requests: {:?}",
        h.outstanding
    );
    assert_eq!(h.closed.len(), 10_000);
    for (ws, state) in &h.sockets {
        if state.accepted {
            // Every accepted socket was closed by the server or by the client side.
            let client_closed = h
                .closed
                .get(&state.sid.unwrap())
                .is_some_and(|r| matches!(r, CloseReason::TransportClose));
            assert!(
                state.closed.is_some() || client_closed,
                "socket {ws} left open"
            );
        }
    }
    // Every way appeared.
    let reasons: std::collections::BTreeSet<String> = h
        .closed
        .values()
        .map(|r| {
            format!("{r:?}")
                .split(['(', ' '])
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    for r in [
        "ClientClose",
        "PingTimeout",
        "ServerClose",
        "ParseError",
        "TransportClose",
        "TransportError",
        "PayloadTooLarge",
        "ServerShutdown",
    ] {
        assert!(reasons.contains(r), "{r} missing from {reasons:?}");
    }
}

#[test]
fn payloads_decoded_from_the_open_packet_helper() {
    // Sanity of the harness helpers themselves.
    assert_eq!(
        packets(b"4a\x1e2"),
        [Packet::text("a"), Packet::Ping { probe: false }]
    );
}
