//! The server state machine at its edges: peers that stop reading, requests judged at
//! the instant they arrived, refusals, close codes and failed upgrades (issues 10 and 11).
//! Driven by the scripted raw client in virtual time.
#![allow(missing_docs, clippy::disallowed_methods)]

mod util;

use std::time::Duration;

use bytes::Bytes;
use engineio_proto::server::{Event, RequestInfo, Routed};
use engineio_proto::{
    CloseCode, CloseReason, ProtocolError, RequestId, TransportEnd, UpgradeFailure, WsViolation,
};
use http::{HeaderMap, Method, StatusCode, Uri};
use util::{Harness, config, error_code, suite_config};

fn ws_headers() -> [(&'static str, &'static str); 4] {
    [
        ("connection", "Upgrade"),
        ("upgrade", "websocket"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ]
}

// ------------------------------------------------------------- peers that stop reading

#[test]
fn a_websocket_that_takes_no_writes_still_ends_on_time_and_is_answered_400() {
    let mut h = Harness::new(suite_config());
    let (ws, sid, _) = h.open_ws();
    h.ws_recv(ws);
    // The socket stops taking writes (its peer stopped reading): messages wait in the
    // bounded queue, and the queue pushes back.
    h.set_ws_blocked(ws, true);
    for i in 0..1024 {
        h.session(sid)
            .send(format!("m{i}"))
            .expect("room in the queue");
    }
    h.drain();
    assert!(
        h.ws_recv(ws).is_empty(),
        "nothing is sent to a blocked socket"
    );
    assert!(matches!(
        h.session(sid).send("one too many"),
        Err(engineio_proto::SendError::QueueFull { limit: 1024, .. })
    ));
    // The heartbeat ends it (300 + 200 ms) though nothing can be written: the close and
    // the event never wait for the socket.
    h.advance(Duration::from_millis(500));
    assert_eq!(h.closed[&sid], CloseReason::PingTimeout);
    assert_eq!(
        h.ws_state(ws).closed,
        Some((CloseCode::Normal, "ping timeout"))
    );
    // Its sid is answered at once, 400.
    let get = h.get(&Harness::poll_uri(sid));
    let r = h.response(get).expect("answered at once");
    assert_eq!((r.status.as_u16(), error_code(&r)), (400, 1));
    // And write_timeout later everything is dropped, whether the peer took its close
    // frame or not.
    assert!(!h.released.contains(&sid));
    h.advance(Duration::from_secs(5));
    assert!(h.released.contains(&sid));
    assert!(h.ws_state(ws).dropped);
    assert!(h.sessions.is_empty());
}

#[test]
fn a_websocket_that_takes_nothing_for_write_timeout_ends_the_session() {
    let mut c = config();
    c.write_timeout = Duration::from_secs(2);
    let mut h = Harness::new(c);
    let (ws, sid, _) = h.open_ws();
    h.set_ws_blocked(ws, true);
    h.advance(Duration::from_millis(1999));
    assert!(h.is_live(sid));
    // Taking writes again, even briefly, restarts the clock.
    h.set_ws_blocked(ws, false);
    h.set_ws_blocked(ws, true);
    h.advance(Duration::from_millis(1999));
    assert!(h.is_live(sid));
    h.advance(Duration::from_millis(1));
    assert_eq!(h.closed[&sid], CloseReason::WriteTimeout);
    h.advance(Duration::from_secs(2));
    assert!(h.ws_state(ws).dropped && h.sessions.is_empty());
}

#[test]
fn unblocking_delivers_what_waited_in_order() {
    let mut h = Harness::new(config());
    let (ws, sid, _) = h.open_ws();
    h.ws_recv(ws);
    h.set_ws_blocked(ws, true);
    h.send(sid, "a");
    h.send(sid, "b");
    assert!(h.ws_recv(ws).is_empty());
    h.set_ws_blocked(ws, false);
    assert_eq!(h.ws_recv_text(ws), ["4a", "4b"]);
}

// ------------------------------------------------------------- exact heartbeat

#[test]
fn a_poll_at_interval_plus_timeout_finds_the_session_closed_even_if_no_timer_ran() {
    let mut h = Harness::new(suite_config());
    let (sid, _) = h.open_polling();
    // The binding has not run any timer (a busy machine): the request itself applies
    // the expired ones first, each at its own deadline.
    h.now = h.start + Duration::from_millis(500);
    let get = h.get(&Harness::poll_uri(sid));
    let r = h.response(get).expect("answered");
    assert_eq!((r.status.as_u16(), error_code(&r)), (400, 1));
    assert_eq!(h.closed[&sid], CloseReason::PingTimeout);
}

#[test]
fn a_poll_just_before_the_deadline_gets_the_ping() {
    let mut h = Harness::new(suite_config());
    let (sid, _) = h.open_polling();
    h.now = h.start + Duration::from_millis(499);
    let get = h.get(&Harness::poll_uri(sid));
    assert_eq!(h.body(get), "2");
    assert!(h.is_live(sid));
}

#[test]
fn the_ping_timeout_is_anchored_to_when_the_ping_was_due() {
    let mut h = Harness::new(suite_config());
    let (sid, _) = h.open_polling();
    // The ping was due at 300 ms; the binding noticed at 450 ms.
    h.now = h.start + Duration::from_millis(450);
    h.ep.fire();
    // Its pong is still due by 300 + 200 ms, not 450 + 200 ms.
    assert_eq!(
        h.next_deadline(),
        Some(h.start + Duration::from_millis(500))
    );
    h.advance(Duration::from_millis(50));
    assert_eq!(h.closed[&sid], CloseReason::PingTimeout);
}

// ------------------------------------------------------------- arrival order

/// Routes a request head that arrived at `at`, without handing it to the session yet
/// (as a binding thread that read it and lost the race to the lock).
fn head_at(
    h: &mut Harness,
    at: std::time::Instant,
    id: u64,
    method: Method,
    uri: &str,
) -> engineio_proto::server::SessionRequest {
    let uri: Uri = uri.parse().unwrap();
    let headers = HeaderMap::new();
    let info = RequestInfo::new(&method, &uri, &headers);
    match h.server.handle_request(at, RequestId(id), &info) {
        Routed::Session(req) => req,
        other => panic!("not a session request: {other:?}"),
    }
}

#[test]
fn a_get_that_arrived_before_a_close_post_is_judged_as_parked_then() {
    let mut h = Harness::new(suite_config());
    let (sid, _) = h.open_polling();
    let t1 = h.now + Duration::from_millis(10);
    let get = head_at(&mut h, t1, 9000, Method::GET, &Harness::poll_uri(sid));
    // The POST `1` arrived after the GET but reached the session first.
    h.now = t1 + Duration::from_millis(1);
    let post = h.post(&Harness::poll_uri(sid), b"1");
    assert_eq!(h.body(post), "ok");
    assert_eq!(h.closed[&sid], CloseReason::ClientClose);
    // The GET gets what it would have got parked: the noop that releases it.
    let now = h.now;
    h.session(sid).handle_request(now, get);
    h.drain();
    assert_eq!(h.body(RequestId(9000)), "6");
    // A GET that arrived after the close finds the session gone.
    let late = h.get(&Harness::poll_uri(sid));
    let r = h.response(late).unwrap();
    assert_eq!((r.status.as_u16(), error_code(&r)), (400, 1));
}

#[test]
fn a_get_at_the_same_moment_as_a_client_close_is_released_with_the_noop() {
    let mut h = Harness::new(suite_config());
    let (sid, _) = h.open_polling();
    // The client sent a GET and a POST `1` together; the POST reached the server first.
    let post = h.post(&Harness::poll_uri(sid), b"1");
    assert_eq!(h.body(post), "ok");
    assert_eq!(h.closed[&sid], CloseReason::ClientClose);
    // The GET, arriving just after, still gets the noop that releases it...
    h.advance(Duration::from_millis(99));
    let get = h.get(&Harness::poll_uri(sid));
    assert_eq!(h.body(get), "6");
    // ...and any later GET finds the session gone.
    let next = h.get(&Harness::poll_uri(sid));
    assert_eq!(h.response(next).unwrap().status, 400);
}

#[test]
fn after_the_client_close_grace_a_get_finds_the_session_gone() {
    let mut h = Harness::new(suite_config());
    let (sid, _) = h.open_polling();
    h.post(&Harness::poll_uri(sid), b"1");
    h.advance(Duration::from_millis(100));
    let get = h.get(&Harness::poll_uri(sid));
    assert_eq!(h.response(get).unwrap().status, 400);
}

#[test]
fn no_grace_after_a_ping_timeout() {
    let mut h = Harness::new(suite_config());
    let (sid, _) = h.open_polling();
    h.advance(Duration::from_millis(500));
    assert_eq!(h.closed[&sid], CloseReason::PingTimeout);
    let get = h.get(&Harness::poll_uri(sid));
    assert_eq!(h.response(get).unwrap().status, 400);
}

#[test]
fn only_one_late_get_gets_the_last_packet() {
    let mut h = Harness::new(suite_config());
    let (sid, _) = h.open_polling();
    let t1 = h.now + Duration::from_millis(10);
    let a = head_at(&mut h, t1, 9000, Method::GET, &Harness::poll_uri(sid));
    let b = head_at(&mut h, t1, 9001, Method::GET, &Harness::poll_uri(sid));
    h.now = t1 + Duration::from_millis(1);
    h.close(sid);
    // Closing over polling waits for a GET; it takes a long close_timeout.
    assert!(h.is_live(sid));
    let now = h.now;
    h.session(sid).handle_request(now, a);
    h.drain();
    assert_eq!(h.body(RequestId(9000)), "1");
    assert_eq!(h.closed[&sid], CloseReason::ServerClose);
    h.session(sid).handle_request(now, b);
    h.drain();
    assert_eq!(h.response(RequestId(9001)).unwrap().status, 400);
}

#[test]
fn during_an_upgrade_a_poll_waits_until_the_websocket_was_read() {
    let mut h = Harness::new(suite_config());
    h.answer_reads = false;
    let (sid, _) = h.open_polling();
    let ws = h.ws(&Harness::ws_uri(sid));
    // The client sent 2probe and 5 on the WebSocket, then a GET; the binding got the
    // GET before it read the frames.
    let get = h.get(&Harness::poll_uri(sid));
    assert!(!h.answered(get), "judged before the WebSocket was read");
    assert_eq!(h.read_requests, [ws]);
    h.ws_text(ws, "2probe");
    h.ws_text(ws, "5");
    h.ep.ws_drained(ws);
    // The session had upgraded by the time the GET arrived.
    let r = h.response(get).expect("answered once the socket was read");
    assert_eq!((r.status.as_u16(), error_code(&r)), (400, 3));
    assert!(h.events.contains(&(sid, Event::Upgraded)));
}

#[test]
fn during_an_upgrade_a_poll_with_nothing_on_the_websocket_goes_on_as_usual() {
    let mut h = Harness::new(suite_config());
    h.answer_reads = false;
    let (sid, _) = h.open_polling();
    let ws = h.ws(&Harness::ws_uri(sid));
    let post = h.post(&Harness::poll_uri(sid), b"4hi");
    assert!(!h.answered(post));
    h.ep.ws_drained(ws);
    assert_eq!(h.body(post), "ok");
    assert_eq!(h.messages(sid), ["hi"]);
    assert!(h.session(sid).is_upgrading());
}

// ------------------------------------------------------------- refusals in proto

#[test]
fn websocket_handshakes_without_key_or_version_13_are_refused_before_any_session() {
    let mut h = Harness::new(config());
    for (name, value) in [("sec-websocket-version", "8"), ("sec-websocket-key", "")] {
        let headers: Vec<(&str, &str)> = ws_headers()
            .into_iter()
            .map(|(k, v)| if k == name { (k, value) } else { (k, v) })
            .collect();
        let id = h.request(
            Method::GET,
            "/engine.io/?EIO=4&transport=websocket",
            &headers,
            b"",
        );
        let r = h.response(id).expect("refused at once");
        assert_eq!((r.status.as_u16(), error_code(&r)), (400, 3), "{name}");
        assert_eq!(r.headers["content-type"], "application/json");
        assert!(r.body_text().contains("Sec-WebSocket"), "{}", r.body_text());
    }
    assert!(h.sessions.is_empty(), "no session for a refused handshake");
}

#[test]
fn a_connection_that_cannot_upgrade_is_refused_before_any_session() {
    let h = Harness::new(config());
    let uri: Uri = "/engine.io/?EIO=4&transport=websocket".parse().unwrap();
    let mut headers = HeaderMap::new();
    for (k, v) in ws_headers() {
        headers.insert(k, v.parse().unwrap());
    }
    let info = RequestInfo::new(&Method::GET, &uri, &headers).with_upgradable(false);
    let Routed::Respond(r) = h.server.handle_request(h.now, RequestId(1), &info) else {
        panic!("not refused")
    };
    assert_eq!((r.status.as_u16(), error_code(&r)), (400, 3));
    assert!(r.body_text().contains("HTTP/1.1"));
}

#[test]
fn an_unreadable_post_body_is_answered_in_json_and_ends_the_session() {
    let mut h = Harness::new(suite_config());
    let (sid, _) = h.open_polling();
    let post = h.raw_post_head(sid);
    h.ep.post_body_failed(post);
    let r = h.response(post).expect("answered");
    assert_eq!((r.status.as_u16(), error_code(&r)), (400, 3));
    assert!(matches!(h.closed[&sid], CloseReason::TransportError(_)));
}

#[test]
fn shutdown_refuses_handshakes_including_those_being_decided() {
    let mut h = Harness::new(suite_config());
    h.policy = util::ConnectPolicy::Defer;
    h.get("/engine.io/?EIO=4&transport=polling");
    let deciding = h.pending_handshakes.pop().unwrap();
    h.server.begin_shutdown();
    // A new handshake is refused by the server itself.
    let id = h.get("/engine.io/?EIO=4&transport=polling");
    let r = h.response(id).unwrap();
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(error_code(&r), 4);
    // One the application was still deciding on is refused when accepted.
    let id = deciding.id();
    h.accept(deciding);
    assert_eq!(
        h.response(id).unwrap().status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert!(h.sessions.is_empty());
}

// ------------------------------------------------------------- close codes

#[test]
fn the_session_decides_the_close_code_of_every_websocket_end() {
    let cases = [
        (
            TransportEnd::MessageTooLarge { size: 2_000_000 },
            Some(CloseCode::TooBig),
        ),
        (
            TransportEnd::Violation(WsViolation::ReservedBits),
            Some(CloseCode::Protocol),
        ),
        (
            TransportEnd::Violation(WsViolation::UnmaskedFrame),
            Some(CloseCode::Protocol),
        ),
        (
            TransportEnd::Violation(WsViolation::InvalidUtf8),
            Some(CloseCode::InvalidPayload),
        ),
        (TransportEnd::Closed, None),
        (
            TransportEnd::Error(engineio_proto::TransportError::Reset(
                engineio_proto::IoError::other("reset"),
            )),
            None,
        ),
    ];
    for (end, code) in cases {
        let mut h = Harness::new(config());
        let (ws, sid, _) = h.open_ws();
        h.ws_client_close(ws, end.clone());
        assert_eq!(h.ws_state(ws).closed.map(|c| c.0), code, "{end:?}");
        let reason = &h.closed[&sid];
        match end {
            TransportEnd::Violation(v) => assert_eq!(
                *reason,
                CloseReason::ParseError(ProtocolError::WebSocket(v))
            ),
            TransportEnd::MessageTooLarge { .. } => {
                assert!(matches!(reason, CloseReason::PayloadTooLarge { .. }))
            }
            _ => {}
        }
    }
}

// ------------------------------------------------------------- failed upgrades

#[test]
fn failed_upgrades_are_reported_and_the_session_goes_on() {
    type Script = fn(&mut Harness, RequestId);
    let cases: [(Script, UpgradeFailure); 4] = [
        (
            |h, _| h.advance(Duration::from_secs(10)),
            UpgradeFailure::Timeout,
        ),
        (
            |h, ws| h.ws_client_close(ws, TransportEnd::Closed),
            UpgradeFailure::WebSocketClosed,
        ),
        (
            |h, ws| h.ws_text(ws, "4nope"),
            UpgradeFailure::UnexpectedPacket,
        ),
        (
            |h, ws| {
                h.ws_send(
                    ws,
                    engineio_proto::WsMessage::Binary(Bytes::from(vec![0u8; 1_000_001])),
                )
            },
            UpgradeFailure::TooLarge,
        ),
    ];
    for (script, failure) in cases {
        let mut c = config();
        c.ping_interval = Duration::from_secs(60);
        let mut h = Harness::new(c);
        let (sid, _) = h.open_polling();
        let ws = h.ws(&Harness::ws_uri(sid));
        script(&mut h, ws);
        assert!(
            h.events
                .contains(&(sid, Event::UpgradeFailed(failure.clone()))),
            "{failure:?}: {:?}",
            h.events
        );
        assert!(h.is_live(sid), "{failure:?}");
        assert!(!h.session(sid).is_upgrading());
        let post = h.post(&Harness::poll_uri(sid), b"4still polling");
        assert_eq!(h.body(post), "ok");
    }
}

#[test]
fn a_retired_session_judges_late_requests_like_the_session_did() {
    let mut h = Harness::new(suite_config());
    let (sid, _) = h.open_polling();
    let t1 = h.now + Duration::from_millis(10);
    let late = head_at(&mut h, t1, 9000, Method::GET, &Harness::poll_uri(sid));
    let later = head_at(&mut h, t1, 9001, Method::GET, &Harness::poll_uri(sid));
    h.now = t1 + Duration::from_millis(1);
    h.post(&Harness::poll_uri(sid), b"1");
    // Nothing left to do: the binding may keep only the record.
    assert!(h.session(sid).retire().is_some());
    let mut ended = h.session(sid).retire().unwrap();
    assert_eq!(ended.sid(), sid);
    assert_eq!(*ended.reason(), CloseReason::ClientClose);
    assert_eq!(
        ended.expires_at(),
        h.now + Duration::from_secs(5),
        "write_timeout after the close"
    );
    assert_eq!(ended.answer(&late).body_text(), "6");
    assert_eq!(ended.answer(&later).status, StatusCode::BAD_REQUEST);
}

#[test]
fn a_live_or_busy_session_cannot_retire() {
    let mut h = Harness::new(suite_config());
    let (ws, sid, _) = h.open_ws();
    assert!(h.session(sid).retire().is_none(), "live");
    // Ended by its transport: nothing is left to do.
    h.ws_client_close(
        ws,
        TransportEnd::Error(engineio_proto::TransportError::Aborted("x")),
    );
    assert!(h.session(sid).retire().is_some());
    // A session with a socket it closed and that has not ended yet must wait for it.
    let (sid2, _) = h.open_polling();
    let probe = h.ws(&Harness::ws_uri(sid2));
    h.ws_text(probe, "4not the probe");
    h.close(sid2);
    let get = h.get(&Harness::poll_uri(sid2));
    assert_eq!(h.body(get), "1");
    assert!(h.session(sid2).is_closed());
    assert!(
        h.session(sid2).retire().is_none(),
        "its probe socket lingers"
    );
    h.ws_client_close(probe, TransportEnd::Closed);
    assert!(h.session(sid2).retire().is_some());
}

// ------------------------------------------------------------- what a binding measures

#[test]
fn the_ping_round_trip_runs_from_when_the_ping_was_due_to_its_pong() {
    let mut h = Harness::new(suite_config());
    let (ws, sid, _) = h.open_ws();
    assert_eq!(h.session(sid).take_ping_rtt(), None, "no pong yet");
    // The ping is due at 300 ms; the binding noticed at 310 ms; the pong came at 345 ms.
    h.now = h.start + Duration::from_millis(310);
    h.ep.fire();
    assert_eq!(h.ws_recv_text(ws), ["2"]);
    h.now = h.start + Duration::from_millis(345);
    h.ws_text(ws, "3");
    assert_eq!(
        h.session(sid).take_ping_rtt(),
        Some(Duration::from_millis(45))
    );
    assert_eq!(h.session(sid).take_ping_rtt(), None, "taken once");
    // A stray pong measures nothing.
    h.ws_text(ws, "3");
    assert_eq!(h.session(sid).take_ping_rtt(), None);
    // The next ping, over polling as well: due 300 ms after the pong.
    let (psid, _) = h.open_polling();
    let get = h.get(&Harness::poll_uri(psid));
    h.advance(Duration::from_millis(300));
    assert_eq!(h.body(get), "2");
    h.advance(Duration::from_millis(20));
    let post = h.post(&Harness::poll_uri(psid), b"3");
    assert_eq!(h.body(post), "ok");
    assert_eq!(
        h.session(psid).take_ping_rtt(),
        Some(Duration::from_millis(20))
    );
}

#[test]
fn a_ping_outstanding_when_an_upgrade_pauses_the_heartbeat_is_not_measured() {
    let mut h = Harness::new(suite_config());
    let (sid, _) = h.open_polling();
    let get = h.get(&Harness::poll_uri(sid));
    h.advance(Duration::from_millis(300));
    assert_eq!(h.body(get), "2");
    // The client upgrades before it answers; its pong comes over the new WebSocket.
    let ws = h.upgrade(sid);
    h.advance(Duration::from_millis(150));
    h.ws_text(ws, "3");
    assert_eq!(h.session(sid).take_ping_rtt(), None);
    assert!(h.is_live(sid));
}

/// The refusal of a request routed with [`Server::route_request`].
fn refusal(
    h: &Harness,
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
) -> engineio_proto::server::Refused {
    let uri: Uri = uri.parse().unwrap();
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        map.insert(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    let info = RequestInfo::new(&method, &uri, &map);
    match h.server.route_request(h.now, RequestId(1), &info) {
        Err(refused) => *refused,
        Ok(routed) => panic!("not refused: {routed:?}"),
    }
}

#[test]
fn route_request_says_why_it_refused_and_whether_it_was_a_handshake() {
    use engineio_proto::Transport;
    use engineio_proto::server::{AllowedOrigins, RequestError};
    let mut c = config();
    c.cors.origins = AllowedOrigins::list(["https://app.example"]);
    let h = Harness::new(c);
    let evil = [("origin", "https://evil.example")];
    let r = refusal(
        &h,
        Method::GET,
        "/engine.io/?EIO=4&transport=polling",
        &evil,
    );
    assert!(matches!(r.error(), RequestError::OriginNotAllowed(_)));
    assert!(r.is_handshake());
    assert_eq!(r.transport(), Some(Transport::Polling));
    assert_eq!(r.response().status, StatusCode::BAD_REQUEST);
    // The answer is the one handle_request gives.
    let uri: Uri = "/engine.io/?EIO=4&transport=polling".parse().unwrap();
    let mut map = HeaderMap::new();
    map.insert("origin", "https://evil.example".parse().unwrap());
    let Routed::Respond(same) = h.server.handle_request(
        h.now,
        RequestId(2),
        &RequestInfo::new(&Method::GET, &uri, &map),
    ) else {
        panic!("not refused")
    };
    assert_eq!(&same, r.response());
    // A preflight for a session's POST.
    let r = refusal(
        &h,
        Method::OPTIONS,
        "/engine.io/?EIO=4&transport=polling&sid=abc",
        &evil,
    );
    assert!(matches!(r.error(), RequestError::OriginNotAllowed(_)));
    assert!(!r.is_handshake());
    // A session's request with the wrong method, and a malformed sid.
    let r = refusal(
        &h,
        Method::PUT,
        "/engine.io/?EIO=4&transport=polling&sid=abc",
        &[],
    );
    assert!(matches!(r.error(), RequestError::MethodNotAllowed { .. }));
    assert!(!r.is_handshake());
    let r = refusal(
        &h,
        Method::GET,
        "/engine.io/?EIO=4&transport=websocket&sid=%00",
        &[
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ],
    );
    assert!(matches!(r.error(), RequestError::UnknownSid(_)));
    assert_eq!(r.transport(), Some(Transport::WebSocket));
    // An unknown transport names none.
    let r = refusal(
        &h,
        Method::GET,
        "/engine.io/?EIO=4&transport=carrier-pigeon",
        &[],
    );
    assert!(matches!(r.error(), RequestError::UnknownTransport(_)));
    assert_eq!(r.transport(), None);
    // What is not a refusal stays in Ok: a preflight allowed, a path not Engine.IO's.
    let uri: Uri = "/elsewhere".parse().unwrap();
    let headers = HeaderMap::new();
    assert!(matches!(
        h.server.route_request(
            h.now,
            RequestId(3),
            &RequestInfo::new(&Method::GET, &uri, &headers)
        ),
        Ok(Routed::Respond(_))
    ));
}

// ------------------------------------------------------------- permessage-deflate

#[test]
fn the_session_reports_the_deflate_its_websocket_agreed() {
    use engineio_proto::websocket::DeflateConfig;
    let mut c = config();
    c.websocket_deflate = Some(DeflateConfig::default());
    let mut h = Harness::new(c);
    let offer: Vec<(&str, &str)> = ws_headers()
        .into_iter()
        .chain([(
            "sec-websocket-extensions",
            "permessage-deflate; client_max_window_bits",
        )])
        .collect();
    let agreed = Some(
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover".to_owned(),
    );
    let header = |h: &mut Harness, sid| {
        h.session(sid)
            .websocket_deflate()
            .map(|p: engineio_proto::websocket::DeflateParams| p.to_header())
    };

    // A session opened over WebSocket knows it from the start.
    let ws = h.request(
        Method::GET,
        "/engine.io/?EIO=4&transport=websocket",
        &offer,
        b"",
    );
    assert!(h.ws_state(ws).accepted);
    let open = h.ws_recv_text(ws);
    let sid = match open
        .first()
        .map(|t| engineio_proto::Packet::decode_text(t.as_str().into()))
    {
        Some(Ok(engineio_proto::Packet::Open(hs))) => hs.sid,
        other => panic!("no open packet: {other:?}"),
    };
    assert_eq!(header(&mut h, sid), agreed);

    // An upgraded one: nothing on polling and while upgrading, then its WebSocket's.
    let (sid, _) = h.open_polling();
    assert_eq!(header(&mut h, sid), None);
    let ws = h.request(Method::GET, &Harness::ws_uri(sid), &offer, b"");
    assert!(h.ws_state(ws).accepted);
    h.ws_text(ws, "2probe");
    assert_eq!(h.ws_recv_text(ws), ["3probe"]);
    assert_eq!(header(&mut h, sid), None, "still on polling");
    h.ws_text(ws, "5");
    assert_eq!(header(&mut h, sid), agreed);
    // A second WebSocket for it (refused with 1008 after its 101) changes nothing.
    let second = h.request(Method::GET, &Harness::ws_uri(sid), &ws_headers(), b"");
    assert!(h.ws_state(second).accepted);
    assert_eq!(header(&mut h, sid), agreed);

    // A client that offers nothing compresses nothing.
    let (_, sid, _) = h.open_ws();
    assert_eq!(header(&mut h, sid), None);
}
