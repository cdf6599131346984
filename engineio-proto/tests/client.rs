//! The client state machine, driven against the real server state machine in virtual
//! time (see `pair/mod.rs`), plus "no input panics" property tests.
#![allow(missing_docs, clippy::disallowed_methods, clippy::indexing_slicing)]

mod pair;

use std::time::{Duration, Instant};

use bytes::Bytes;
use engineio_proto::client::{
    Client, ClientAction, ClientConfig, ClientEvent, ConnectError, HttpError, OfflinePolicy,
    ReconnectConfig, WsConnectError, WsLimits,
};
use engineio_proto::server::{CookieConfig, Rejection};
use engineio_proto::{
    CloseReason, Message, PayloadLimits, RequestId, Response, SendError, Transport, TransportEnd,
    TransportError, WsMessage, decode_payload,
};
use http::{Method, StatusCode};
use pair::{Handshakes, Pair, client_config, refused, reset, server_config};
use proptest::prelude::*;

fn polling_only() -> ClientConfig {
    let mut c = client_config();
    c.transports = vec![Transport::Polling];
    c
}

fn websocket_only() -> ClientConfig {
    let mut c = client_config();
    c.transports = vec![Transport::WebSocket];
    c
}

fn with_reconnect(mut c: ClientConfig, r: ReconnectConfig) -> ClientConfig {
    c.reconnect = Some(r);
    c
}

fn no_jitter() -> ReconnectConfig {
    let mut r = ReconnectConfig::default();
    r.randomization_factor = 0.0;
    r
}

fn packets_of(body: &Bytes) -> usize {
    decode_payload(body.clone(), PayloadLimits::default())
        .unwrap()
        .count()
}

// ------------------------------------------------------------------ connecting

#[test]
fn connects_by_polling_and_exchanges_text_and_binary() {
    let mut p = Pair::new(polling_only(), server_config());
    let sid = p.connect();
    assert_eq!(p.client.transport(), Some(Transport::Polling));
    assert_eq!(p.accepted, [sid]);
    let hs = p.client.handshake().unwrap().clone();
    assert_eq!(hs.ping_interval, Duration::from_millis(300));
    assert!(matches!(p.client_events()[0], ClientEvent::Connected(ref h) if *h == hs));
    // The handshake was a GET with EIO=4, transport=polling, the timestamp, no sid.
    let (_, _, first) = &p.requests[0];
    assert_eq!(first.method, Method::GET);
    let q = first.uri.query().unwrap();
    assert!(q.starts_with("EIO=4&transport=polling&t="), "{q}");
    assert!(!q.contains("sid="));
    assert_eq!(first.uri.scheme_str(), Some("http"));
    assert_eq!(first.uri.path(), "/engine.io/");

    p.client.send("hello").unwrap();
    p.client.send(vec![1u8, 2, 3]).unwrap();
    p.client.send(Vec::<u8>::new()).unwrap();
    p.server_send(sid, "from server");
    p.server_send(sid, Bytes::from_static(&[9, 8]));
    p.run_for(Duration::from_millis(10));
    assert_eq!(
        p.server_received(),
        ["hello", "<binary [1, 2, 3]>", "<binary []>"]
    );
    assert_eq!(p.client_received(), ["from server", "<binary [9, 8]>"]);
    // Polling carries binary as base64 and marks POSTs as text.
    let post = p
        .requests
        .iter()
        .find(|(_, _, r)| r.method == Method::POST)
        .unwrap();
    assert_eq!(post.2.headers["content-type"], "text/plain;charset=UTF-8");
    // "hello" left at once; the two binaries waited for its POST and went together.
    let bodies: Vec<_> = p.posts().into_iter().map(|(_, b)| b).collect();
    assert_eq!(bodies[..2], ["4hello", "bAQID\x1eb"]);
    assert!(post.2.uri.query().unwrap().contains(&format!("sid={sid}")));
    // Every request has a fresh cache-busting token.
    let stamps: std::collections::BTreeSet<String> = p
        .requests
        .iter()
        .map(|(_, _, r)| {
            let q = r.uri.query().unwrap();
            let t = q.split('&').find_map(|kv| kv.strip_prefix("t=")).unwrap();
            assert_eq!(t.len(), 11, "{q}");
            t.to_owned()
        })
        .collect();
    assert_eq!(stamps.len(), p.requests.len());
}

#[test]
fn connects_by_websocket_directly() {
    let mut p = Pair::new(websocket_only(), server_config());
    let sid = p.connect();
    assert!(p.requests.is_empty(), "no HTTP request at all");
    assert_eq!(p.ws_connects.len(), 1);
    let uri = &p.ws_connects[0].1;
    assert_eq!(uri.scheme_str(), Some("ws"));
    assert!(
        uri.query()
            .unwrap()
            .starts_with("EIO=4&transport=websocket&t=")
    );
    assert_eq!(p.client.transport(), Some(Transport::WebSocket));
    assert!(p.client.handshake().unwrap().upgrades.is_empty());

    p.client.send("text").unwrap();
    p.client.send(vec![0u8, 255]).unwrap();
    // U+001E is fine over WebSocket.
    p.client.send("a\u{1e}b").unwrap();
    p.server_send(sid, "back");
    p.server_send(sid, vec![7u8]);
    p.run_for(Duration::from_millis(1));
    assert_eq!(
        p.server_received(),
        ["text", "<binary [0, 255]>", "a\u{1e}b"]
    );
    assert_eq!(p.client_received(), ["back", "<binary [7]>"]);
    // Binary goes as a raw binary frame.
    assert!(
        p.ws_sent
            .iter()
            .any(|(_, m)| *m == WsMessage::Binary(Bytes::from_static(&[0, 255])))
    );
}

#[test]
fn upgrades_from_polling_to_websocket() {
    let mut p = Pair::default_pair();
    let sid = p.connect();
    assert_eq!(p.client.transport(), Some(Transport::Polling));
    p.wait_upgraded();
    assert!(p.count_events(|e| *e == ClientEvent::Upgraded) == 1);
    // The probe sequence on the WebSocket: 2probe then 5.
    let ws = p.ws_connects[0].0;
    let uri = &p.ws_connects[0].1;
    assert!(uri.query().unwrap().contains(&format!("sid={sid}")));
    assert!(uri.query().unwrap().contains("transport=websocket"));
    let sent: Vec<_> = p
        .ws_sent
        .iter()
        .filter(|(w, _)| *w == ws)
        .map(|(_, m)| m.clone())
        .collect();
    assert_eq!(
        sent,
        [
            WsMessage::Text("2probe".into()),
            WsMessage::Text("5".into())
        ]
    );
    assert_eq!(p.session(sid).transport(), Transport::WebSocket);
    // Traffic now flows over the WebSocket, both ways, and no more HTTP requests are made.
    let requests_before = p.requests.len();
    p.client.send("over ws").unwrap();
    p.client.send(vec![1u8]).unwrap();
    p.server_send(sid, "down ws");
    p.run_for(Duration::from_secs(2));
    assert_eq!(p.server_received(), ["over ws", "<binary [1]>"]);
    assert_eq!(p.client_received(), ["down ws"]);
    assert_eq!(p.requests.len(), requests_before);
    assert!(p.client.is_connected());
    // Pings were answered over the WebSocket.
    assert!(
        p.ws_sent
            .iter()
            .any(|(w, m)| *w == ws && *m == WsMessage::Text("3".into()))
    );
    // The text with U+001E is now allowed.
    p.client.send("a\u{1e}").unwrap();
}

#[test]
fn a_slow_network_keeps_the_session_alive_and_upgrades() {
    let mut p = Pair::default_pair();
    p.latency = Duration::from_millis(40);
    let sid = p.connect();
    p.wait_upgraded();
    for i in 0..50 {
        p.client.send(format!("c{i}")).unwrap();
        p.server_send(sid, format!("s{i}"));
        p.run_for(Duration::from_millis(700));
    }
    p.run_for(Duration::from_secs(30));
    assert!(p.client.is_connected());
    assert!(p.is_live(sid));
    assert_eq!(p.server_received().len(), 50);
    assert_eq!(p.client_received().len(), 50);
    assert_eq!(p.accepted.len(), 1);
}

#[test]
fn upgrade_is_skipped_when_disabled_or_not_offered() {
    let mut c = client_config();
    c.upgrade = false;
    let mut p = Pair::new(c, server_config());
    p.connect();
    p.run_for(Duration::from_secs(2));
    assert!(p.ws_connects.is_empty());
    assert_eq!(p.client.transport(), Some(Transport::Polling));

    let mut s = server_config();
    s.allow_upgrades = false;
    let mut p = Pair::new(client_config(), s);
    p.connect();
    p.run_for(Duration::from_secs(2));
    assert!(p.ws_connects.is_empty());
    assert!(p.client.is_connected());
}

// ------------------------------------------------------------------ batching

#[test]
fn a_burst_is_batched_under_max_payload_complete_and_in_order() {
    let mut s = server_config();
    s.max_payload = 200;
    let mut p = Pair::new(polling_only(), s);
    p.connect();
    let mut expected = Vec::new();
    for i in 0..300 {
        let text = format!("m{i}-{}", "x".repeat(i % 50));
        p.client.send(text.clone()).unwrap();
        expected.push(text);
        if i % 7 == 0 {
            let bin = vec![i as u8; i % 60];
            p.client.send(bin.clone()).unwrap();
            expected.push(format!("<binary {:?}>", &bin[..]));
        }
    }
    p.run_for(Duration::from_secs(1));
    assert_eq!(p.server_received(), expected);
    let posts = p.posts();
    assert!(posts.len() > 10, "{} POSTs", posts.len());
    for (_, body) in &posts {
        assert!(body.len() <= 200, "POST of {} bytes", body.len());
    }
    // Batches are full: most POSTs carry several packets.
    assert!(posts.iter().filter(|(_, b)| packets_of(b) > 1).count() > posts.len() / 2);
    assert!(p.client.is_connected());
}

#[test]
fn oversized_and_unframeable_messages_are_refused_locally() {
    let mut s = server_config();
    s.max_payload = 100;
    let mut p = Pair::new(client_config(), s);
    p.connect();
    // Polling: "4" + 99 bytes = 100 fits; 100 bytes does not.
    p.client.send("a".repeat(99)).unwrap();
    let err = p.client.send("a".repeat(100)).unwrap_err();
    assert!(matches!(
        err,
        SendError::TooLarge {
            size: 101,
            limit: 100,
            ..
        }
    ));
    // Binary counts as base64 while polling: 73 bytes -> "b" + 100 chars.
    let err = p.client.send(vec![0u8; 73]).unwrap_err();
    assert!(matches!(err, SendError::TooLarge { size: 101, .. }));
    assert_eq!(err.into_message(), Some(Message::from(vec![0u8; 73])));
    p.client.send(vec![0u8; 72]).unwrap();
    assert!(matches!(
        p.client.send("a\u{1e}b"),
        Err(SendError::RecordSeparator(_))
    ));
    // Over WebSocket the binary frame is raw: 100 bytes fit.
    p.wait_upgraded();
    p.client.send(vec![0u8; 100]).unwrap();
    assert!(matches!(
        p.client.send(vec![0u8; 101]),
        Err(SendError::TooLarge { size: 101, .. })
    ));
    p.run_for(Duration::from_millis(50));
    assert_eq!(p.server_received().len(), 3);
    assert!(p.client.is_connected());
}

#[test]
fn the_outgoing_queue_is_bounded() {
    let mut c = polling_only();
    c.max_queued_messages = 3;
    let mut p = Pair::new(c, server_config());
    p.connect();
    // The first message leaves at once in a POST; three more wait for it.
    for i in 0..4 {
        p.client.send(format!("{i}")).unwrap();
    }
    assert_eq!(p.client.queued(), 3);
    assert!(matches!(
        p.client.send("x"),
        Err(SendError::QueueFull { limit: 3, .. })
    ));
    p.run_for(Duration::from_millis(1));
    assert_eq!(p.server_received(), ["0", "1", "2", "3"]);
    assert_eq!(p.client.queued(), 0);
    p.client.send("x").unwrap();
}

// ------------------------------------------------------------------ closing

#[test]
fn server_close_over_polling_is_not_followed_by_reconnection() {
    let mut p = Pair::new(
        with_reconnect(polling_only(), ReconnectConfig::default()),
        server_config(),
    );
    let sid = p.connect();
    p.run_for(Duration::from_millis(10));
    p.server_send(sid, "bye");
    let now = p.now;
    p.session(sid).close(now);
    p.run_for(Duration::from_secs(30));
    assert_eq!(p.client_received(), ["bye"]);
    assert_eq!(
        p.client.last_close_reason(),
        Some(&CloseReason::ServerClose)
    );
    assert!(p.client.is_closed());
    assert_eq!(p.server_closed[&sid], CloseReason::ServerClose);
    assert_eq!(
        p.count_events(|e| matches!(e, ClientEvent::Reconnecting { .. })),
        0
    );
    assert_eq!(p.accepted.len(), 1);
    assert_eq!(p.client.poll_timeout(), None);
}

#[test]
fn server_shutdown_is_followed_by_reconnection_with_jitter_on_both_transports() {
    for (name, config) in [("polling", polling_only()), ("websocket", websocket_only())] {
        let mut p = Pair::new(
            with_reconnect(config, ReconnectConfig::default()),
            server_config(),
        );
        let sid = p.connect();
        p.run_for(Duration::from_millis(10));
        p.server_send(sid, "bye");
        let now = p.now;
        p.session(sid).shutdown(now);
        let closed_at = p.now;
        p.run_until(Duration::from_secs(5), |p| p.accepted.len() == 2);
        assert_eq!(p.client_received(), ["bye"], "{name}");
        assert_eq!(p.server_closed[&sid], CloseReason::ServerShutdown, "{name}");
        let events = p.client_events();
        let reason = events.iter().find_map(|e| match e {
            ClientEvent::Disconnected(r) => Some(r.clone()),
            _ => None,
        });
        let want = if name == "polling" {
            // The close packet came marked as a shutdown.
            CloseReason::ServerShutdown
        } else {
            // The WebSocket ended with 1001 and no close packet.
            CloseReason::TransportClose
        };
        assert_eq!(reason, Some(want), "{name}");
        let delay = events.iter().find_map(|e| match e {
            ClientEvent::Reconnecting { delay, .. } => Some(*delay),
            _ => None,
        });
        // The first retry waits initial_delay (1 s) with the 0.5 jitter: 0.5 s to 1.5 s,
        // so that the clients of a drained server do not all come back at once.
        let delay = delay.unwrap_or_else(|| panic!("{name}: no reconnection: {events:?}"));
        assert!(
            (Duration::from_millis(500)..=Duration::from_millis(1500)).contains(&delay),
            "{name}: {delay:?}"
        );
        assert_eq!(p.accepted.len(), 2, "{name}: reconnected");
        assert!(p.now - closed_at <= Duration::from_secs(2), "{name}");
    }
}

#[test]
fn server_close_over_websocket() {
    let mut p = Pair::new(websocket_only(), server_config());
    let sid = p.connect();
    let now = p.now;
    p.session(sid).close(now);
    p.run_for(Duration::from_secs(1));
    assert!(p.client.is_closed());
    assert!(
        p.client_events()
            .contains(&ClientEvent::Disconnected(CloseReason::ServerClose))
    );
}

#[test]
fn client_close_over_polling_delivers_queued_messages_first() {
    let mut p = Pair::new(polling_only(), server_config());
    let sid = p.connect();
    p.client.send("one").unwrap();
    p.client.send("two").unwrap();
    let now = p.now;
    p.client.close(now);
    assert!(matches!(p.client.send("late"), Err(SendError::Closed(_))));
    p.run_for(Duration::from_secs(1));
    assert_eq!(p.server_received(), ["one", "two"]);
    assert_eq!(p.server_closed[&sid], CloseReason::ClientClose);
    assert!(p.client.is_closed());
    assert_eq!(
        p.client_events().last(),
        Some(&ClientEvent::Disconnected(CloseReason::ClientClose))
    );
    // The last POST carried the close packet.
    let last = p.posts().last().unwrap().1.clone();
    assert!(last.ends_with(b"1"), "{last:?}");
    assert_eq!(p.client.poll_timeout(), None);
}

/// Once the application closes, the heartbeat no longer decides how the session ends: a
/// close POST slower than pingInterval + pingTimeout (a busy machine) still ends it as a
/// client close, bounded by the request timeout.
#[test]
fn a_slow_close_over_polling_is_a_client_close_not_a_ping_timeout() {
    let mut p = Pair::new(polling_only(), server_config());
    p.connect();
    p.frozen = true;
    let now = p.now;
    p.client.close(now);
    let timeout = client_config().request_timeout;
    p.run_for(timeout + Duration::from_secs(1));
    assert!(p.client.is_closed());
    let ends: Vec<_> = p
        .client_events()
        .into_iter()
        .filter(|e| matches!(e, ClientEvent::Disconnected(_)))
        .collect();
    assert_eq!(ends, [ClientEvent::Disconnected(CloseReason::ClientClose)]);
}

#[test]
fn client_close_over_websocket() {
    let mut p = Pair::default_pair();
    let sid = p.connect();
    p.wait_upgraded();
    p.client.send("last words").unwrap();
    let now = p.now;
    p.client.close(now);
    p.run_for(Duration::from_secs(1));
    assert_eq!(p.server_received(), ["last words"]);
    assert_eq!(p.server_closed[&sid], CloseReason::ClientClose);
    assert!(p.client.is_closed());
    let ws = p.ws_connects[0].0;
    assert_eq!(p.ws_sent.last(), Some(&(ws, WsMessage::Text("1".into()))));
    assert_eq!(p.ws_closed_by_client.last(), Some(&(ws, 1000)));
}

// ------------------------------------------------------------------ heartbeat

#[test]
fn heartbeat_keeps_a_quiet_connection_alive() {
    let mut p = Pair::new(polling_only(), server_config());
    let sid = p.connect();
    p.run_for(Duration::from_secs(600));
    assert!(p.client.is_connected());
    assert!(p.is_live(sid));
    // About one pong per 300 ms.
    let pongs = p.posts().iter().filter(|(_, b)| b.as_ref() == b"3").count();
    assert!((1900..=2001).contains(&pongs), "{pongs} pongs");
}

#[test]
fn a_dead_server_is_detected_after_interval_plus_timeout() {
    for config in [polling_only(), websocket_only()] {
        let mut p = Pair::new(config, server_config());
        p.connect();
        p.run_for(Duration::from_secs(1));
        // The last ping the client saw.
        let last_ping = p.now;
        p.frozen = true;
        p.run_until(Duration::from_secs(5), |p| p.client.is_closed());
        assert_eq!(
            p.client.last_close_reason(),
            Some(&CloseReason::PingTimeout)
        );
        // Pings come every 300 ms (answered at once): the last one arrived at most
        // 300 ms before the freeze, and the client waits 300 + 200 ms after it.
        let waited = p.now - last_ping;
        assert!(
            waited <= Duration::from_millis(500) && waited > Duration::from_millis(200),
            "{waited:?}"
        );
        let (t, e) = p.events.last().unwrap().clone();
        assert_eq!(e, ClientEvent::Disconnected(CloseReason::PingTimeout));
        assert_eq!(t, p.now);
    }
}

#[test]
fn ping_timeout_is_exactly_interval_plus_timeout_after_the_last_ping() {
    let mut p = Pair::new(polling_only(), server_config());
    p.connect();
    // Let the first ping arrive at 300 ms, then freeze the server right after.
    p.run_until(Duration::from_secs(1), |p| {
        p.requests
            .iter()
            .any(|(_, _, r)| r.method == Method::POST && r.body.as_ref() == b"3")
    });
    let ping_at = p.now;
    assert_eq!(ping_at - p.start, Duration::from_millis(300));
    p.frozen = true;
    p.run_until(Duration::from_secs(5), |p| p.client.is_closed());
    assert_eq!(p.now - ping_at, Duration::from_millis(500));
}

// ------------------------------------------------------------------ reconnection

#[test]
fn reconnects_after_a_server_restart_with_backoff() {
    let mut p = Pair::new(with_reconnect(polling_only(), no_jitter()), server_config());
    let first = p.connect();
    p.client.send("before").unwrap();
    p.run_for(Duration::from_millis(10));
    // The server restarts and stays down for a while.
    p.down = true;
    p.restart_server();
    p.run_until(Duration::from_secs(1), |p| p.client.is_reconnecting());
    let lost_at = p.now;
    assert!(matches!(
        p.client.last_close_reason(),
        Some(CloseReason::TransportError(_))
    ));
    // Messages sent while reconnecting are queued.
    p.client.send("while down 1").unwrap();
    p.client.send(vec![5u8]).unwrap();
    p.run_for(Duration::from_millis(10_500));
    p.down = false;
    p.run_until(Duration::from_secs(10), |p| p.client.is_connected());
    let second = p.client.sid().unwrap();
    assert_ne!(first, second);
    p.client.send("after").unwrap();
    p.run_for(Duration::from_millis(10));
    assert_eq!(
        p.server_received(),
        ["before", "while down 1", "<binary [5]>", "after"]
    );

    // Attempts at 1 s, then 2, 4, 5, 5... after each failure.
    let reconnecting: Vec<(Instant, u32, Duration)> = p
        .events
        .iter()
        .filter_map(|(t, e)| match e {
            ClientEvent::Reconnecting { attempt, delay } => Some((*t, *attempt, *delay)),
            _ => None,
        })
        .collect();
    let delays: Vec<u64> = reconnecting
        .iter()
        .map(|(_, _, d)| d.as_millis() as u64)
        .collect();
    assert_eq!(&delays[..4], &[1000, 2000, 4000, 5000]);
    assert!(delays[4..].iter().all(|d| *d == 5000));
    let attempts: Vec<u32> = reconnecting.iter().map(|(_, a, _)| *a).collect();
    assert_eq!(attempts, (1..=attempts.len() as u32).collect::<Vec<_>>());
    assert_eq!(reconnecting[0].0, lost_at);
    // Each attempt's handshake GET left exactly `delay` after the Reconnecting event.
    let handshakes: Vec<Instant> = p
        .requests
        .iter()
        .filter(|(_, _, r)| !r.uri.query().unwrap().contains("sid="))
        .map(|(t, _, _)| *t)
        .collect();
    assert_eq!(handshakes.len(), reconnecting.len() + 1);
    for ((t, _, delay), hs) in reconnecting.iter().zip(&handshakes[1..]) {
        assert_eq!(*hs - *t, *delay);
    }
    // Failed attempts were reported; the last one succeeded as a reconnection.
    assert_eq!(
        p.count_events(|e| matches!(
            e,
            ClientEvent::ConnectFailed {
                error: ConnectError::Transport(_)
            }
        )),
        reconnecting.len() - 1
    );
    assert!(matches!(
        p.client_events().iter().rev().find(|e| matches!(e, ClientEvent::Reconnected(_))),
        Some(ClientEvent::Reconnected(h)) if h.sid == second
    ));
    assert_eq!(
        p.count_events(|e| matches!(e, ClientEvent::Connected(_))),
        1
    );
}

#[test]
fn reconnection_jitter_stays_within_the_randomization_factor() {
    let mut r = ReconnectConfig::default();
    r.max_delay = Duration::from_secs(60);
    let mut p = Pair::new(with_reconnect(polling_only(), r), server_config());
    p.connect();
    p.down = true;
    p.restart_server();
    p.run_for(Duration::from_secs(120));
    let delays: Vec<(u32, Duration)> = p
        .client_events()
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Reconnecting { attempt, delay } => Some((*attempt, *delay)),
            _ => None,
        })
        .collect();
    assert!(delays.len() >= 5);
    let mut exact = 0;
    for (attempt, delay) in &delays {
        let base = 1000.0 * 2f64.powi(*attempt as i32 - 1);
        let ms = delay.as_secs_f64() * 1000.0;
        assert!(
            ms >= (base * 0.5).min(60_000.0) - 1.0 && ms <= (base * 1.5).min(60_000.0) + 1.0,
            "attempt {attempt}: {ms} ms; {delays:?}"
        );
        if (ms - base).abs() < 1.0 {
            exact += 1;
        }
    }
    assert!(exact < delays.len(), "the delays are randomised");
}

#[test]
fn reconnection_gives_up_after_max_attempts() {
    let mut r = no_jitter();
    r.max_attempts = Some(3);
    let mut p = Pair::new(with_reconnect(polling_only(), r), server_config());
    p.connect();
    p.client.send("queued").unwrap();
    p.run_for(Duration::from_millis(1));
    p.down = true;
    p.restart_server();
    p.run_until(Duration::from_secs(1), |p| p.client.is_reconnecting());
    p.client.send("lost").unwrap();
    p.run_until(Duration::from_secs(60), |p| p.client.is_closed());
    let events = p.client_events();
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, ClientEvent::Reconnecting { .. }))
            .count(),
        3
    );
    assert!(events.contains(&ClientEvent::ReconnectFailed { attempts: 3 }));
    assert!(
        events.contains(&ClientEvent::SendFailed(SendError::Closed(Message::from(
            "lost"
        ))))
    );
    assert_eq!(p.client.poll_timeout(), None);
    assert!(matches!(p.client.send("x"), Err(SendError::Closed(_))));
    // 1 + 2 + 4 s of waiting.
    assert!(p.elapsed() >= Duration::from_secs(7));
}

#[test]
fn reconnects_after_a_ping_timeout_with_a_fresh_session() {
    let mut p = Pair::new(
        with_reconnect(client_config(), no_jitter()),
        server_config(),
    );
    let first = p.connect();
    p.wait_upgraded();
    p.frozen = true;
    p.run_until(Duration::from_secs(2), |p| p.client.is_reconnecting());
    assert_eq!(
        p.client.last_close_reason(),
        Some(&CloseReason::PingTimeout)
    );
    p.frozen = false;
    p.run_until(Duration::from_secs(5), |p| {
        p.client.is_connected() && p.client.transport() == Some(Transport::WebSocket)
    });
    let second = p.client.sid().unwrap();
    assert_ne!(first, second);
    // The new session went through its own handshake and upgrade.
    assert_eq!(p.ws_connects.len(), 2);
    assert!(
        p.ws_connects[1]
            .1
            .query()
            .unwrap()
            .contains(&format!("sid={second}"))
    );
    assert_eq!(p.count_events(|e| *e == ClientEvent::Upgraded), 2);
}

#[test]
fn no_stale_packets_cross_a_reconnection() {
    // When the connection breaks, a pong is owed (queued behind a POST in flight) and a
    // message waits behind that POST. The new session must get the waiting message, but
    // neither the old session's pong nor the message whose POST was in flight (at most
    // once).
    let now = Instant::now();
    let (mut client, get) = open_polling_client(now);
    client.send("in flight").unwrap();
    client.send("waiting").unwrap();
    let actions = drain(&mut client);
    assert_eq!(posts_in(&actions), ["4in flight"]);
    client.handle_response(now, get, Ok(ok(b"2")));
    // The pong waits for the POST; the GET is re-issued.
    let actions = drain(&mut client);
    assert!(posts_in(&actions).is_empty());
    let get = gets_in(&actions)[0];
    client.handle_response(now, get, Err(reset().into()));
    let actions = drain(&mut client);
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, ClientAction::AbortRequest { .. }))
    );
    assert!(client.is_reconnecting());
    assert_eq!(client.queued(), 1);
    let retry = client.poll_timeout().unwrap();
    client.handle_timeout(retry);
    let hs = expect_http(&mut client);
    client.handle_response(
        retry,
        hs,
        Ok(ok(br#"0{"sid":"new","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000}"#)),
    );
    let actions = drain(&mut client);
    assert!(matches!(
        actions.first(),
        Some(ClientAction::Event(ClientEvent::Reconnected(h))) if h.sid.as_str() == "new"
    ));
    assert_eq!(posts_in(&actions), ["4waiting"]);
    for a in &actions {
        if let ClientAction::HttpRequest { request, .. } = a {
            assert!(request.uri.query().unwrap().contains("sid=new"));
        }
    }
}

fn posts_in(actions: &[ClientAction]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            ClientAction::HttpRequest { request, .. } if request.method == Method::POST => {
                Some(String::from_utf8_lossy(&request.body).into_owned())
            }
            _ => None,
        })
        .collect()
}

fn gets_in(actions: &[ClientAction]) -> Vec<RequestId> {
    actions
        .iter()
        .filter_map(|a| match a {
            ClientAction::HttpRequest { id, request } if request.method == Method::GET => Some(*id),
            _ => None,
        })
        .collect()
}

#[test]
fn connect_failure_retries_when_reconnection_is_on() {
    let mut p = Pair::new(with_reconnect(polling_only(), no_jitter()), server_config());
    p.down = true;
    let now = p.now;
    p.client.connect(now);
    p.run_for(Duration::from_millis(3500));
    // Failed at 0, 1 s and 3 s.
    assert_eq!(
        p.count_events(|e| matches!(e, ClientEvent::ConnectFailed { .. })),
        3
    );
    p.down = false;
    p.run_until(Duration::from_secs(5), |p| p.client.is_connected());
    // The first session since connect() is `Connected`, even after retries.
    assert_eq!(
        p.count_events(|e| matches!(e, ClientEvent::Connected(_))),
        1
    );
    assert_eq!(
        p.count_events(|e| matches!(e, ClientEvent::Reconnected(_))),
        0
    );
}

#[test]
fn a_refused_handshake_reports_the_servers_code_and_message() {
    let mut p = Pair::new(polling_only(), server_config());
    p.handshakes = Handshakes::Reject(Rejection::new(StatusCode::FORBIDDEN, "bad token"));
    let now = p.now;
    p.client.connect(now);
    p.run_until(Duration::from_secs(1), |p| p.client.is_closed());
    assert_eq!(
        p.client_events(),
        [ClientEvent::ConnectFailed {
            error: ConnectError::Refused {
                status: StatusCode::FORBIDDEN,
                code: Some(4),
                message: Some("bad token".into()),
                detail: None,
            }
        }]
    );

    // Over WebSocket too.
    let mut p = Pair::new(websocket_only(), server_config());
    p.handshakes = Handshakes::Reject(Rejection::forbidden());
    let now = p.now;
    p.client.connect(now);
    p.run_until(Duration::from_secs(1), |p| p.client.is_closed());
    assert!(matches!(
        p.client_events()[0],
        ClientEvent::ConnectFailed {
            error: ConnectError::Refused { code: Some(4), .. }
        }
    ));
}

#[test]
fn an_unanswered_handshake_times_out() {
    for config in [polling_only(), websocket_only()] {
        let mut c = config;
        c.request_timeout = Duration::from_secs(3);
        let mut p = Pair::new(c, server_config());
        p.handshakes = Handshakes::Ignore;
        let now = p.now;
        p.client.connect(now);
        p.run_until(Duration::from_secs(10), |p| p.client.is_closed());
        assert_eq!(p.elapsed(), Duration::from_secs(3));
        assert_eq!(
            p.client_events(),
            [ClientEvent::ConnectFailed {
                error: ConnectError::Timeout(Duration::from_secs(3))
            }]
        );
    }
}

#[test]
fn offline_queue_is_bounded() {
    let mut c = with_reconnect(polling_only(), no_jitter());
    c.offline = OfflinePolicy::Queue { max: 2 };
    let mut p = Pair::new(c, server_config());
    // Before the first handshake completes, the offline policy applies too.
    p.client.send("early").unwrap();
    p.connect();
    p.run_for(Duration::from_millis(10));
    assert_eq!(p.server_received(), ["early"]);
    p.down = true;
    p.restart_server();
    p.run_until(Duration::from_secs(1), |p| p.client.is_reconnecting());
    p.client.send("a").unwrap();
    p.client.send("b").unwrap();
    assert!(matches!(
        p.client.send("c"),
        Err(SendError::QueueFull { limit: 2, .. })
    ));
    // Polling comes first: U+001E is refused while offline too.
    assert!(matches!(
        p.client.send("\u{1e}"),
        Err(SendError::RecordSeparator(_))
    ));
    p.down = false;
    p.run_until(Duration::from_secs(10), |p| p.client.is_connected());
    p.run_for(Duration::from_millis(10));
    assert_eq!(p.server_received(), ["early", "a", "b"]);
}

#[test]
fn offline_refuse_policy() {
    let mut c = with_reconnect(websocket_only(), no_jitter());
    c.offline = OfflinePolicy::Refuse;
    let mut p = Pair::new(c, server_config());
    assert!(matches!(p.client.send("early"), Err(SendError::Offline(_))));
    p.connect();
    p.client.send("ok").unwrap();
    p.run_for(Duration::from_millis(1));
    p.down = true;
    p.restart_server();
    p.run_until(Duration::from_secs(1), |p| p.client.is_reconnecting());
    assert!(matches!(
        p.client.send("while down"),
        Err(SendError::Offline(m)) if m == Message::from("while down")
    ));
    p.down = false;
    p.run_until(Duration::from_secs(10), |p| p.client.is_connected());
    p.client.send("again").unwrap();
    p.run_for(Duration::from_millis(1));
    assert_eq!(p.server_received(), ["ok", "again"]);
}

// ------------------------------------------------------------------ upgrade failures

#[test]
fn a_refused_upgrade_falls_back_to_polling() {
    let mut p = Pair::default_pair();
    p.refuse_websocket = true;
    let sid = p.connect();
    p.run_for(Duration::from_secs(2));
    assert_eq!(p.ws_connects.len(), 1, "the upgrade is tried once");
    assert_eq!(p.client.transport(), Some(Transport::Polling));
    assert!(!p.client.is_upgrading());
    assert!(p.client.is_connected());
    p.client.send("still polling").unwrap();
    p.server_send(sid, "yes");
    p.run_for(Duration::from_millis(10));
    assert_eq!(p.server_received(), ["still polling"]);
    assert_eq!(p.client_received(), ["yes"]);
    assert_eq!(p.count_events(|e| *e == ClientEvent::Upgraded), 0);
    assert!(
        !p.client_events()
            .iter()
            .any(|e| matches!(e, ClientEvent::Disconnected(_)))
    );
}

#[test]
fn an_ignored_probe_times_out_and_polling_goes_on() {
    let mut c = client_config();
    c.upgrade_timeout = Duration::from_secs(3);
    let mut p = Pair::new(c, server_config());
    p.drop_probe = true;
    let sid = p.connect();
    p.run_for(Duration::from_millis(2900));
    assert!(p.client.is_upgrading());
    // Polling keeps working during the probe.
    p.client.send("during probe").unwrap();
    p.run_for(Duration::from_millis(200));
    assert!(!p.client.is_upgrading());
    let ws = p.ws_connects[0].0;
    assert!(p.ws_closed_by_client.iter().any(|(w, _)| *w == ws));
    assert_eq!(p.elapsed(), Duration::from_millis(3100));
    p.run_for(Duration::from_secs(20));
    assert!(p.client.is_connected());
    assert_eq!(p.client.transport(), Some(Transport::Polling));
    assert_eq!(p.session(sid).transport(), Transport::Polling);
    assert!(!p.session(sid).is_upgrading());
    assert_eq!(p.server_received(), ["during probe"]);
}

#[test]
fn a_wrong_probe_answer_aborts_the_upgrade() {
    // Drive the client by hand: the probe WebSocket answers something else.
    let now = Instant::now();
    let mut client = Client::new(client_config(), now, 1).unwrap();
    client.connect(now);
    let get = expect_http(&mut client);
    client.handle_response(
        now,
        get,
        Ok(ok(br#"0{"sid":"s","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#)),
    );
    let actions = drain(&mut client);
    let ws = actions
        .iter()
        .find_map(|a| match a {
            ClientAction::WsConnect { id, .. } => Some(*id),
            _ => None,
        })
        .unwrap();
    client.handle_ws_connected(now, ws);
    assert_eq!(
        drain(&mut client),
        [ClientAction::WsSend {
            ws,
            message: WsMessage::Text("2probe".into())
        }]
    );
    client.handle_ws_message(now, ws, WsMessage::Text("4nope".into()));
    let actions = drain(&mut client);
    assert!(actions.contains(&ClientAction::WsClose {
        ws,
        code: engineio_proto::CloseCode::Normal,
        reason: "upgrade aborted"
    }));
    assert!(client.is_connected() && !client.is_upgrading());
    assert_eq!(client.transport(), Some(Transport::Polling));
    // Later frames on that socket are ignored.
    client.handle_ws_message(now, ws, WsMessage::Text("3probe".into()));
    assert_eq!(drain(&mut client), []);
}

#[test]
fn polling_pauses_after_the_probe_until_the_get_and_post_return() {
    let now = Instant::now();
    let mut client = Client::new(client_config(), now, 1).unwrap();
    client.connect(now);
    let hs = expect_http(&mut client);
    client.handle_response(
        now,
        hs,
        Ok(ok(br#"0{"sid":"s","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000}"#)),
    );
    let actions = drain(&mut client);
    let get = gets_in(&actions)[0];
    let ws = actions
        .iter()
        .find_map(|a| match a {
            ClientAction::WsConnect { id, .. } => Some(*id),
            _ => None,
        })
        .unwrap();
    client.send("before").unwrap();
    let post = drain(&mut client)
        .iter()
        .find_map(|a| match a {
            ClientAction::HttpRequest { id, request } if request.method == Method::POST => {
                Some(*id)
            }
            _ => None,
        })
        .unwrap();
    client.handle_ws_connected(now, ws);
    drain(&mut client);
    client.handle_ws_message(now, ws, WsMessage::Text("3probe".into()));
    // Paused: nothing new goes out, not even for new messages.
    client.send("during").unwrap();
    assert_eq!(drain(&mut client), []);
    client.handle_response(now, get, Ok(ok(b"6")));
    assert_eq!(drain(&mut client), [], "the POST is still in flight");
    client.handle_response(now, post, Ok(ok(b"ok")));
    // The upgrade packet first: queued messages are not handed out while actions wait.
    assert_eq!(client.poll_ws_send(ws), None);
    assert_eq!(
        drain(&mut client),
        [
            ClientAction::WsSend {
                ws,
                message: WsMessage::Text("5".into())
            },
            ClientAction::Event(ClientEvent::Upgraded),
        ]
    );
    assert_eq!(
        client.poll_ws_send(ws),
        Some(WsMessage::Text("4during".into()))
    );
    assert_eq!(client.poll_ws_send(ws), None);
    assert_eq!(client.transport(), Some(Transport::WebSocket));
}

#[test]
fn messages_sent_during_the_upgrade_arrive_in_order() {
    let mut p = Pair::default_pair();
    p.latency = Duration::from_millis(3);
    let sid = p.connect();
    let mut n = 0;
    let mut expected = Vec::new();
    // Send a message between every delivery until well after the upgrade.
    let mut steps = 0;
    let mut during = 0;
    while steps < 400 {
        if p.client.is_upgrading() {
            during += 1;
        }
        let text = format!("m{n}");
        p.client.send(text.clone()).unwrap();
        expected.push(text);
        n += 1;
        if n % 5 == 0 {
            p.server_send(sid, format!("s{n}"));
        }
        p.step();
        steps += 1;
    }
    assert_eq!(p.client.transport(), Some(Transport::WebSocket));
    assert!(during >= 3, "{during} messages sent during the upgrade");
    p.run_for(Duration::from_millis(100));
    assert_eq!(p.server_received(), expected);
    let down: Vec<String> = (1..=n / 5).map(|i| format!("s{}", i * 5)).collect();
    assert_eq!(p.client_received(), down);
    // Some went over polling, some over the WebSocket.
    assert!(p.posts().iter().any(|(_, b)| b.starts_with(b"4m")));
    assert!(
        p.ws_sent
            .iter()
            .any(|(_, m)| matches!(m, WsMessage::Text(t) if t.starts_with("4m")))
    );
}

#[test]
fn the_paused_get_answered_with_noop_completes_the_upgrade() {
    // The classic order: GET parked, probe answered, then the server releases the GET
    // with a noop; no GET may be issued after 3probe.
    let mut p = Pair::default_pair();
    let sid = p.connect();
    p.wait_upgraded();
    let ws = p.ws_connects[0].0;
    let probe_at = p
        .ws_sent
        .iter()
        .position(|(w, m)| *w == ws && *m == WsMessage::Text("2probe".into()))
        .unwrap();
    assert!(probe_at < p.ws_sent.len());
    let gets_with_sid: Vec<RequestId> = p
        .requests
        .iter()
        .filter(|(_, _, r)| {
            r.method == Method::GET && r.uri.query().unwrap().contains(&format!("sid={sid}"))
        })
        .map(|(_, id, _)| *id)
        .collect();
    // One long-poll GET, released by the upgrade with a noop: the server never sees a
    // polling request after the upgrade (which would be answered 400 code 3).
    assert_eq!(gets_with_sid.len(), 1);
    assert_eq!(p.response_body(gets_with_sid[0]).as_deref(), Some("6"));
    assert!(p.aborted.is_empty());
    assert!(
        !p.client_events()
            .iter()
            .any(|e| matches!(e, ClientEvent::Disconnected(_)))
    );
}

// ------------------------------------------------------------------ misc

#[test]
fn cookies_set_by_the_server_are_sent_back() {
    let mut s = server_config();
    s.cookie = Some(CookieConfig::named("io"));
    let mut c = polling_only();
    c.headers
        .insert(http::header::AUTHORIZATION, "Bearer x".parse().unwrap());
    c.reconnect = Some(no_jitter());
    let mut p = Pair::new(c, s);
    let sid = p.connect();
    p.client.send("x").unwrap();
    p.run_for(Duration::from_millis(10));
    let (_, _, handshake) = &p.requests[0];
    assert!(handshake.headers.get("cookie").is_none());
    assert_eq!(handshake.headers["authorization"], "Bearer x");
    let later: Vec<_> = p.requests[1..].iter().map(|(_, _, r)| r).collect();
    assert!(!later.is_empty());
    for r in later {
        assert_eq!(r.headers["cookie"], format!("io={sid}"));
        assert_eq!(r.headers["authorization"], "Bearer x");
    }
    // A new session starts with an empty jar: a stale affinity cookie could pin the
    // client to a dead server.
    let before = p.requests.len();
    p.restart_server();
    p.run_until(Duration::from_secs(5), |p| {
        p.client.sid().is_some_and(|s| s != sid) && p.client.is_connected()
    });
    let (_, _, rehandshake) = &p.requests[before];
    assert!(!rehandshake.uri.query().unwrap().contains("sid="));
    assert!(rehandshake.headers.get("cookie").is_none());
    let new_sid = p.client.sid().unwrap();
    p.client.send("y").unwrap();
    p.run_for(Duration::from_millis(10));
    let (_, _, last) = p.requests.last().unwrap();
    assert_eq!(last.headers["cookie"], format!("io={new_sid}"));
}

#[test]
fn handle_timeout_is_a_no_op_when_early_or_repeated() {
    let mut p = Pair::new(polling_only(), server_config());
    p.connect();
    p.settle();
    let deadline = p.client.poll_timeout().unwrap();
    let before = p.events.len();
    let now = p.now;
    p.client.handle_timeout(now);
    p.client.handle_timeout(now);
    p.drain();
    assert_eq!(p.events.len(), before);
    assert_eq!(p.client.poll_timeout(), Some(deadline));
    // The heartbeat deadline, fired twice, ends the session once.
    p.frozen = true;
    p.client.handle_timeout(deadline);
    p.client.handle_timeout(deadline);
    p.drain();
    assert_eq!(
        p.count_events(|e| matches!(e, ClientEvent::Disconnected(_))),
        1
    );
}

#[test]
fn close_while_connecting_or_reconnecting() {
    let mut p = Pair::new(polling_only(), server_config());
    p.handshakes = Handshakes::Ignore;
    p.client.send("queued").unwrap();
    let now = p.now;
    p.client.connect(now);
    p.settle();
    p.client.close(now);
    p.drain();
    assert!(p.client.is_closed());
    assert_eq!(p.aborted.len(), 1);
    assert_eq!(
        p.client_events(),
        [ClientEvent::SendFailed(SendError::Closed(Message::from(
            "queued"
        )))]
    );
    assert_eq!(p.client.poll_timeout(), None);

    let mut p = Pair::new(with_reconnect(polling_only(), no_jitter()), server_config());
    p.connect();
    p.restart_server();
    p.down = true;
    p.run_until(Duration::from_secs(1), |p| p.client.is_reconnecting());
    let now = p.now;
    p.client.close(now);
    assert!(p.client.is_closed());
    assert_eq!(p.client.poll_timeout(), None);
    // connect() starts afresh.
    p.down = false;
    let now = p.now;
    p.client.connect(now);
    p.run_until(Duration::from_secs(1), |p| p.client.is_connected());
}

#[test]
fn urls_carry_the_configured_path_query_and_scheme() {
    let mut c = ClientConfig::new("https://example.com:8443/socket.io/?token=a%20b").unwrap();
    c.timestamp_requests = false;
    let now = Instant::now();
    let mut client = Client::new(c, now, 1).unwrap();
    client.connect(now);
    let Some(ClientAction::HttpRequest { request, .. }) = client.poll_action() else {
        panic!("no request")
    };
    assert_eq!(
        request.uri.to_string(),
        "https://example.com:8443/socket.io/?EIO=4&transport=polling&token=a%20b"
    );
    let mut c = ClientConfig::new("wss://example.com").unwrap();
    c.transports = vec![Transport::WebSocket];
    c.timestamp_param = "ts".into();
    let mut client = Client::new(c, now, 1).unwrap();
    client.connect(now);
    let Some(ClientAction::WsConnect { uri, .. }) = client.poll_action() else {
        panic!("no connect")
    };
    let s = uri.to_string();
    assert!(
        s.starts_with("wss://example.com/engine.io/?EIO=4&transport=websocket&ts="),
        "{s}"
    );
}

#[test]
fn same_seed_same_run() {
    let run = || {
        let mut p = Pair::new(
            with_reconnect(client_config(), ReconnectConfig::default()),
            server_config(),
        );
        p.connect();
        p.wait_upgraded();
        p.down = true;
        p.restart_server();
        p.run_for(Duration::from_secs(20));
        p.down = false;
        p.run_for(Duration::from_secs(10));
        (
            p.requests
                .iter()
                .map(|(t, id, r)| (*t - p.start, *id, r.uri.to_string()))
                .collect::<Vec<_>>(),
            p.client_events(),
        )
    };
    assert_eq!(run(), run());
}

// ------------------------------------------------------------------ helpers for hand-driven tests

fn ok(body: &'static [u8]) -> Response {
    Response {
        status: StatusCode::OK,
        headers: http::HeaderMap::new(),
        body: Bytes::from_static(body),
    }
}

fn drain(client: &mut Client) -> Vec<ClientAction> {
    std::iter::from_fn(|| client.poll_action()).collect()
}

fn expect_http(client: &mut Client) -> RequestId {
    match client.poll_action() {
        Some(ClientAction::HttpRequest { id, .. }) => id,
        other => panic!("expected a request, got {other:?}"),
    }
}

/// A client with an open polling session ("s", ping 25 s / 20 s) and one GET in flight.
fn open_polling_client(now: Instant) -> (Client, RequestId) {
    let mut c = polling_only();
    c.reconnect = Some(ReconnectConfig::default());
    let mut client = Client::new(c, now, 9).unwrap();
    client.connect(now);
    let hs = expect_http(&mut client);
    client.handle_response(
        now,
        hs,
        Ok(ok(br#"0{"sid":"s","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000}"#)),
    );
    let get = drain(&mut client)
        .iter()
        .find_map(|a| match a {
            ClientAction::HttpRequest { id, request } if request.method == Method::GET => Some(*id),
            _ => None,
        })
        .unwrap();
    (client, get)
}

#[test]
fn a_close_packet_marked_as_a_shutdown_or_timeout_is_followed_by_reconnection() {
    use engineio_proto::server::CLOSE_HEADER;
    let now = Instant::now();
    type Check = fn(&CloseReason) -> bool;
    let cases: &[(Option<&str>, Check, bool)] = &[
        (
            Some("shutdown"),
            |r| *r == CloseReason::ServerShutdown,
            true,
        ),
        (
            Some("ping timeout"),
            |r| *r == CloseReason::PingTimeout,
            true,
        ),
        (
            Some("write timeout"),
            |r| *r == CloseReason::WriteTimeout,
            true,
        ),
        (
            Some("parse error"),
            |r| matches!(r, CloseReason::TransportError(_)),
            true,
        ),
        // Unmarked: the application closed the session for good.
        (None, |r| *r == CloseReason::ServerClose, false),
    ];
    for (value, check, reconnects) in cases {
        let (mut client, get) = open_polling_client(now);
        let mut headers = http::HeaderMap::new();
        if let Some(v) = value {
            headers.insert(CLOSE_HEADER, v.parse().unwrap());
        }
        client.handle_response(
            now,
            get,
            Ok(Response {
                status: StatusCode::OK,
                headers,
                body: Bytes::from_static(b"1"),
            }),
        );
        let reason = client.last_close_reason().cloned().unwrap();
        assert!(check(&reason), "{value:?}: {reason:?}");
        assert_eq!(client.is_reconnecting(), *reconnects, "{value:?}");
    }
}

#[test]
fn bad_server_answers_end_the_session_with_typed_reasons() {
    let now = Instant::now();
    type Check = fn(&CloseReason) -> bool;
    let cases: &[(&[u8], Check)] = &[
        (b"", |r| matches!(r, CloseReason::ParseError(_))),
        (b"x", |r| matches!(r, CloseReason::ParseError(_))),
        (b"5", |r| matches!(r, CloseReason::ParseError(_))),
        (b"4a\x1e\x1e", |r| matches!(r, CloseReason::ParseError(_))),
        (b"1", |r| *r == CloseReason::ServerClose),
        (b"6\x1e1", |r| *r == CloseReason::ServerClose),
    ];
    for (body, check) in cases {
        let (mut client, get) = open_polling_client(now);
        client.handle_response(
            now,
            get,
            Ok(Response {
                status: StatusCode::OK,
                headers: http::HeaderMap::new(),
                body: Bytes::copy_from_slice(body),
            }),
        );
        let reason = client.last_close_reason().cloned().unwrap();
        assert!(check(&reason), "{body:?}: {reason:?}");
    }
    // An HTTP error on the long-poll is a transport error that names the code.
    let (mut client, get) = open_polling_client(now);
    client.handle_response(
        now,
        get,
        Ok(Response {
            status: StatusCode::BAD_REQUEST,
            headers: http::HeaderMap::new(),
            body: Bytes::from_static(br#"{"code":1,"message":"Session ID unknown"}"#),
        }),
    );
    let reason = client.last_close_reason().cloned().unwrap();
    assert!(
        matches!(&reason, CloseReason::TransportError(TransportError::Http {
            request: "polling GET", status: StatusCode::BAD_REQUEST, code: Some(1), message: Some(m), ..
        }) if m == "Session ID unknown"),
        "{reason:?}"
    );
    assert!(client.is_reconnecting());
    // A stale answer for that GET is ignored.
    client.handle_response(now, get, Ok(ok(b"4late")));
    assert!(
        !drain(&mut client)
            .iter()
            .any(|a| matches!(a, ClientAction::Event(ClientEvent::Message(_))))
    );
}

#[test]
fn packets_after_the_open_packet_are_processed() {
    let now = Instant::now();
    let mut client = Client::new(polling_only(), now, 1).unwrap();
    client.connect(now);
    let hs = expect_http(&mut client);
    client.handle_response(
        now,
        hs,
        Ok(ok(
            b"0{\"sid\":\"s\",\"pingInterval\":100,\"pingTimeout\":50}\x1e4welcome\x1e2",
        )),
    );
    let actions = drain(&mut client);
    assert!(matches!(
        actions[0],
        ClientAction::Event(ClientEvent::Connected(ref h)) if h.max_payload.is_none()
    ));
    assert_eq!(
        actions[1],
        ClientAction::Event(ClientEvent::Message(Message::from("welcome")))
    );
    // The ping in the same body is answered.
    assert_eq!(posts_in(&actions), ["3"]);
    // No maxPayload: no limit.
    client.send("x".repeat(5_000_000)).unwrap();
    // The heartbeat was re-armed by that ping: 150 ms from now.
    assert_eq!(
        client.poll_timeout(),
        Some(now + Duration::from_millis(150))
    );
    client.send_json(&serde_json::json!({"a": [1, 2]})).unwrap();
    assert_eq!(client.queued(), 2);
}

#[test]
fn queued_messages_over_the_new_servers_limit_are_reported_not_sent() {
    let now = Instant::now();
    let mut c = websocket_only();
    c.transports = vec![Transport::WebSocket];
    let mut client = Client::new(c, now, 1).unwrap();
    client.send("small").unwrap();
    client.send("x".repeat(50)).unwrap();
    client.connect(now);
    let Some(ClientAction::WsConnect { id, .. }) = client.poll_action() else {
        panic!()
    };
    client.handle_ws_connected(now, id);
    client.handle_ws_message(
        now,
        id,
        WsMessage::Text(
            r#"0{"sid":"s","upgrades":[],"pingInterval":100,"pingTimeout":50,"maxPayload":20}"#
                .into(),
        ),
    );
    assert!(matches!(
        &drain(&mut client)[..],
        [ClientAction::Event(ClientEvent::Connected(_))]
    ));
    // The binding pulls the queue: the small one goes, the other is handed back.
    assert_eq!(
        client.poll_ws_send(id),
        Some(WsMessage::Text("4small".into()))
    );
    assert_eq!(client.poll_ws_send(id), None);
    assert!(matches!(
        &drain(&mut client)[..],
        [ClientAction::Event(ClientEvent::SendFailed(
            SendError::TooLarge {
                size: 51,
                limit: 20,
                ..
            }
        ))]
    ));
    assert_eq!(client.poll_ws_send(id), None);
    assert_eq!(client.queued(), 0);
}

#[test]
fn a_post_that_times_out_is_a_transport_error() {
    let now = Instant::now();
    let (mut client, _get) = open_polling_client(now);
    client.send("x").unwrap();
    let post = drain(&mut client)
        .iter()
        .find_map(|a| match a {
            ClientAction::HttpRequest { id, request } if request.method == Method::POST => {
                Some(*id)
            }
            _ => None,
        })
        .unwrap();
    let deadline = client.poll_timeout().unwrap();
    assert_eq!(deadline - now, Duration::from_secs(20));
    client.handle_timeout(deadline);
    let actions = drain(&mut client);
    assert!(actions.contains(&ClientAction::AbortRequest { id: post }));
    assert!(matches!(
        client.last_close_reason(),
        Some(CloseReason::TransportError(TransportError::Timeout { request: "polling POST", after }))
            if *after == Duration::from_secs(20)
    ));
}

#[test]
fn a_broken_websocket_ends_the_session_as_transport_close() {
    let mut p = Pair::new(websocket_only(), server_config());
    p.connect();
    let ws = p.ws_connects[0].0;
    let now = p.now;
    p.client.handle_ws_closed(now, ws, TransportEnd::Closed);
    assert_eq!(
        p.client.last_close_reason(),
        Some(&CloseReason::TransportClose)
    );
    let mut p = Pair::new(websocket_only(), server_config());
    p.connect();
    let ws = p.ws_connects[0].0;
    let now = p.now;
    p.client
        .handle_ws_closed(now, ws, TransportEnd::Error(reset()));
    assert_eq!(
        p.client.last_close_reason(),
        Some(&CloseReason::TransportError(reset()))
    );
    // A WebSocket that fails to connect during the handshake.
    let now = Instant::now();
    let mut client = Client::new(websocket_only(), now, 3).unwrap();
    client.connect(now);
    let Some(ClientAction::WsConnect { id, .. }) = client.poll_action() else {
        panic!()
    };
    client.handle_ws_connect_failed(now, id, WsConnectError::Transport(refused()));
    assert_eq!(
        drain(&mut client),
        [ClientAction::Event(ClientEvent::ConnectFailed {
            error: ConnectError::Transport(refused())
        })]
    );
    assert!(client.is_closed());
}

// ------------------------------------------------------------------ back-pressure and limits

#[test]
fn a_websocket_that_takes_nothing_makes_send_push_back_in_messages_and_bytes() {
    let mut c = websocket_only();
    c.max_queued_messages = 4;
    let mut p = Pair::new(c, server_config());
    let sid = p.connect();
    p.ws_writable = false;
    for i in 0..4 {
        p.client.send(format!("m{i}")).unwrap();
    }
    p.run_for(Duration::from_millis(50));
    // Nothing was taken: the fifth is refused, and handed back.
    assert_eq!(p.client.queued(), 4);
    assert_eq!(
        p.client.send("m4"),
        Err(SendError::QueueFull {
            message: Message::from("m4"),
            limit: 4
        })
    );
    // The socket takes them again: all arrive, in order, and sending works again.
    p.ws_writable = true;
    p.run_for(Duration::from_millis(50));
    assert_eq!(p.client.queued(), 0);
    p.client.send("m4").unwrap();
    p.run_for(Duration::from_millis(50));
    assert_eq!(p.server_received(), ["m0", "m1", "m2", "m3", "m4"]);
    assert!(p.sessions.contains_key(&sid));

    // The byte bound: 3 messages of 400 bytes within 1000 bytes; one alone always fits.
    let mut c = websocket_only();
    c.max_queued_bytes = 1000;
    let mut p = Pair::new(c, server_config());
    p.connect();
    p.ws_writable = false;
    p.client.send(vec![1u8; 400]).unwrap();
    p.client.send(vec![2u8; 400]).unwrap();
    assert_eq!(p.client.queued_bytes(), 800);
    assert!(matches!(
        p.client.send(vec![3u8; 400]),
        Err(SendError::QueueFull { limit: 2, message }) if message.len() == 400
    ));
    p.client.send(vec![4u8; 200]).unwrap();
    p.ws_writable = true;
    p.run_for(Duration::from_millis(50));
    assert_eq!(p.client.queued_bytes(), 0);
    p.client.send(vec![5u8; 5000]).unwrap();
    assert_eq!(p.client.queued_bytes(), 5000);
}

#[test]
fn the_byte_bound_holds_on_polling_and_offline_too() {
    let mut c = polling_only();
    c.max_queued_bytes = 100;
    let now = Instant::now();
    let mut client = Client::new(c, now, 1).unwrap();
    // Offline (before the handshake).
    client.send("a".repeat(60)).unwrap();
    assert!(matches!(
        client.send("b".repeat(60)),
        Err(SendError::QueueFull { limit: 1, .. })
    ));
    client.send("c".repeat(40)).unwrap();
    // Polling: the queue goes into the first POST; while it is in flight, the bound
    // holds again.
    client.connect(now);
    let hs = expect_http(&mut client);
    client.handle_response(
        now,
        hs,
        Ok(ok(br#"0{"sid":"s","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":100000}"#)),
    );
    let posts = posts_in(&drain(&mut client));
    assert_eq!(posts.len(), 1);
    assert_eq!(client.queued_bytes(), 0);
    client.send("d".repeat(70)).unwrap();
    assert!(matches!(
        client.send("e".repeat(31)),
        Err(SendError::QueueFull { limit: 1, .. })
    ));
    client.send("f".repeat(30)).unwrap();
    assert_eq!((client.queued(), client.queued_bytes()), (2, 100));
}

#[test]
fn a_close_on_a_websocket_that_takes_nothing_ends_within_the_request_timeout() {
    let mut c = websocket_only();
    c.request_timeout = Duration::from_secs(2);
    let mut p = Pair::new(c, server_config());
    p.connect();
    // Keep the server pinging so that only the close can end it.
    p.ws_writable = false;
    p.client.send("stuck").unwrap();
    let closed_at = p.now;
    p.client.close(p.now);
    p.run_until(Duration::from_secs(5), |p| p.client.is_closed());
    assert!(p.client.is_closed());
    assert_eq!(p.now - closed_at, Duration::from_secs(2));
    assert_eq!(
        p.client.last_close_reason(),
        Some(&CloseReason::ClientClose)
    );
    assert_eq!(
        p.count_events(|e| matches!(e, ClientEvent::SendFailed(SendError::Closed(m)) if m.as_text() == Some("stuck"))),
        1
    );
    // With a socket that takes them, the queue goes first, then the close packet.
    let mut p = Pair::new(websocket_only(), server_config());
    let sid = p.connect();
    p.client.send("last words").unwrap();
    p.client.close(p.now);
    p.run_for(Duration::from_millis(20));
    assert_eq!(p.server_received(), ["last words"]);
    assert_eq!(p.server_closed[&sid], CloseReason::ClientClose);
    let sent: Vec<_> = p.ws_sent.iter().map(|(_, m)| m.clone()).collect();
    assert_eq!(
        sent[sent.len() - 2..],
        [
            WsMessage::Text("4last words".into()),
            WsMessage::Text("1".into())
        ]
    );
}

#[test]
fn requests_carry_their_response_limits() {
    let mut c = client_config();
    c.max_handshake_size = 1000;
    c.max_payload = 50_000;
    c.max_ws_message_size = 7000;
    c.max_ws_frame_size = 3000;
    let mut p = Pair::new(c, server_config());
    p.connect();
    p.client.send("x").unwrap();
    p.run_for(Duration::from_millis(10));
    let limit_of = |method: Method, sid: bool| {
        p.requests
            .iter()
            .find(|(_, _, r)| r.method == method && r.uri.query().unwrap().contains("sid=") == sid)
            .map(|(_, _, r)| r.max_response_body)
    };
    assert_eq!(limit_of(Method::GET, false), Some(1000), "the handshake");
    assert_eq!(limit_of(Method::GET, true), Some(50_000), "a long-poll");
    assert_eq!(limit_of(Method::POST, true), Some(1000), "a POST's answer");
    let now = Instant::now();
    let mut client = Client::new(websocket_only(), now, 1).unwrap();
    client.connect(now);
    assert!(matches!(
        client.poll_action(),
        Some(ClientAction::WsConnect { limits: WsLimits { max_message_size, max_frame_size }, .. })
            if max_message_size == 16 << 20 && max_frame_size == 16 << 20
    ));
}

#[test]
fn oversized_answers_are_typed_errors() {
    let now = Instant::now();
    // The handshake, refused by the binding from its Content-Length.
    let mut client = Client::new(polling_only(), now, 1).unwrap();
    client.connect(now);
    let hs = expect_http(&mut client);
    client.handle_response(
        now,
        hs,
        Err(HttpError::BodyTooLarge {
            size: 300_000_000,
            limit: 65536,
        }),
    );
    assert_eq!(
        drain(&mut client),
        [ClientAction::Event(ClientEvent::ConnectFailed {
            error: ConnectError::ResponseTooLarge {
                size: 300_000_000,
                limit: 65536
            }
        })]
    );
    // ...and by the client itself when a binding hands it over anyway.
    let mut c = polling_only();
    c.max_handshake_size = 10;
    let mut client = Client::new(c, now, 1).unwrap();
    client.connect(now);
    let hs = expect_http(&mut client);
    client.handle_response(
        now,
        hs,
        Ok(ok(
            br#"0{"sid":"s","upgrades":[],"pingInterval":1,"pingTimeout":1}"#,
        )),
    );
    assert!(matches!(
        &drain(&mut client)[..],
        [ClientAction::Event(ClientEvent::ConnectFailed {
            error: ConnectError::ResponseTooLarge { limit: 10, .. }
        })]
    ));
    // A long-poll over the limit ends the session as PayloadTooLarge.
    let (mut client, get) = open_polling_client(now);
    client.handle_response(
        now,
        get,
        Err(HttpError::BodyTooLarge {
            size: 200_000_000,
            limit: 16 << 20,
        }),
    );
    assert_eq!(
        client.last_close_reason(),
        Some(&CloseReason::PayloadTooLarge {
            size: 200_000_000,
            limit: 16 << 20
        })
    );
    // The open packet over WebSocket, and a message on the open WebSocket.
    let mut c = websocket_only();
    c.max_handshake_size = 20;
    c.max_ws_message_size = 100;
    let mut client = Client::new(c, now, 1).unwrap();
    client.connect(now);
    let Some(ClientAction::WsConnect { id, .. }) = client.poll_action() else {
        panic!()
    };
    client.handle_ws_connected(now, id);
    client.handle_ws_message(now, id, WsMessage::Text("0".repeat(21).into()));
    assert!(matches!(
        &drain(&mut client)[..],
        [
            ClientAction::WsClose { .. },
            ClientAction::Event(ClientEvent::ConnectFailed {
                error: ConnectError::ResponseTooLarge {
                    size: 21,
                    limit: 20
                }
            })
        ]
    ));
    let mut c = websocket_only();
    c.max_ws_message_size = 100;
    c.max_ws_frame_size = 50;
    let mut p = Pair::new(c.clone(), server_config());
    p.connect();
    let ws = p.ws_connects[0].0;
    let now = p.now;
    p.client
        .handle_ws_message(now, ws, WsMessage::Binary(vec![0u8; 101].into()));
    assert_eq!(
        p.client.last_close_reason(),
        Some(&CloseReason::PayloadTooLarge {
            size: 101,
            limit: 100
        })
    );
    // The library's refusals: over the frame limit, or over the message limit.
    for (size, limit) in [(70, 50), (5000, 100)] {
        let mut p = Pair::new(c.clone(), server_config());
        p.connect();
        let ws = p.ws_connects[0].0;
        let now = p.now;
        p.client
            .handle_ws_closed(now, ws, TransportEnd::MessageTooLarge { size });
        assert_eq!(
            p.client.last_close_reason(),
            Some(&CloseReason::PayloadTooLarge { size, limit })
        );
    }
}

#[test]
fn a_websocket_that_ends_before_the_open_packet_is_a_typed_connect_error() {
    use engineio_proto::{ProtocolError, WsViolation};
    // (how it ended, the error, whether the socket still gets a close frame)
    for (end, expected, closes) in [
        (
            TransportEnd::Closed,
            ConnectError::Transport(TransportError::Aborted(
                "the WebSocket closed before the open packet",
            )),
            false,
        ),
        (
            TransportEnd::Error(reset()),
            ConnectError::Transport(reset()),
            false,
        ),
        (
            TransportEnd::MessageTooLarge { size: 1 << 30 },
            ConnectError::ResponseTooLarge {
                size: 1 << 30,
                limit: 16 << 20,
            },
            true,
        ),
        (
            TransportEnd::Violation(WsViolation::ReservedBits),
            ConnectError::InvalidHandshake(ProtocolError::WebSocket(WsViolation::ReservedBits)),
            true,
        ),
    ] {
        let now = Instant::now();
        let mut client = Client::new(websocket_only(), now, 1).unwrap();
        client.connect(now);
        let Some(ClientAction::WsConnect { id, .. }) = client.poll_action() else {
            panic!()
        };
        client.handle_ws_connected(now, id);
        client.handle_ws_closed(now, id, end);
        let mut want = Vec::new();
        if closes {
            want.push(ClientAction::WsClose {
                ws: id,
                code: engineio_proto::CloseCode::Normal,
                reason: "",
            });
        }
        want.push(ClientAction::Event(ClientEvent::ConnectFailed {
            error: expected,
        }));
        assert_eq!(drain(&mut client), want);
    }
}

#[test]
fn a_server_breaking_the_websocket_protocol_gets_a_close_frame_saying_why() {
    use engineio_proto::{ProtocolError, WsViolation};
    for (end, code, reason) in [
        (
            TransportEnd::Violation(WsViolation::InvalidUtf8),
            1007,
            CloseReason::ParseError(ProtocolError::WebSocket(WsViolation::InvalidUtf8)),
        ),
        (
            TransportEnd::Violation(WsViolation::ReservedOpcode),
            1002,
            CloseReason::ParseError(ProtocolError::WebSocket(WsViolation::ReservedOpcode)),
        ),
        (
            TransportEnd::MessageTooLarge { size: 1 << 25 },
            1009,
            CloseReason::PayloadTooLarge {
                size: 1 << 25,
                limit: 16 << 20,
            },
        ),
    ] {
        let mut p = Pair::new(websocket_only(), server_config());
        p.connect();
        let ws = p.ws_connects[0].0;
        let now = p.now;
        p.client.handle_ws_closed(now, ws, end);
        assert_eq!(p.client.last_close_reason(), Some(&reason));
        p.drain();
        assert_eq!(p.ws_closed_by_client, [(ws, code)]);
    }
}

#[test]
fn an_open_packet_before_the_websocket_connected_is_ignored() {
    let now = Instant::now();
    let mut client = Client::new(websocket_only(), now, 1).unwrap();
    client.connect(now);
    let Some(ClientAction::WsConnect { id, .. }) = client.poll_action() else {
        panic!()
    };
    let open = r#"0{"sid":"s","upgrades":[],"pingInterval":100,"pingTimeout":50}"#;
    client.handle_ws_message(now, id, WsMessage::Text(open.into()));
    assert_eq!(drain(&mut client), []);
    assert!(!client.is_connected());
    client.handle_ws_connected(now, id);
    client.handle_ws_message(now, id, WsMessage::Text(open.into()));
    assert!(client.is_connected());
}

// ------------------------------------------------------------------ no input panics

#[derive(Debug, Clone)]
enum Input {
    Response(u8, u16, Vec<u8>),
    ResponseErr(u8),
    WsConnected(u8),
    WsConnectFailed(u8),
    WsText(u8, String),
    WsBinary(u8, Vec<u8>),
    WsClosed(u8),
    Timeout(u32),
    Send(String),
    Close,
    Connect,
}

fn arb_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..64),
        "[0-6b]{0,3}(\u{1e}[0-6b][a-zA-Z0-9=]{0,6}){0,4}".prop_map(String::into_bytes),
        Just(br#"0{"sid":"x","upgrades":["websocket"],"pingInterval":10,"pingTimeout":5,"maxPayload":20}"#.to_vec()),
        Just(br#"0{"sid":"y","upgrades":[],"pingInterval":1e300,"pingTimeout":0}"#.to_vec()),
        Just(b"3probe".to_vec()),
    ]
}

fn arb_input() -> impl Strategy<Value = Input> {
    prop_oneof![
        (
            any::<u8>(),
            prop_oneof![Just(200u16), 100u16..600],
            arb_body()
        )
            .prop_map(|(i, s, b)| Input::Response(i, s, b)),
        any::<u8>().prop_map(Input::ResponseErr),
        any::<u8>().prop_map(Input::WsConnected),
        any::<u8>().prop_map(Input::WsConnectFailed),
        (
            any::<u8>(),
            prop_oneof![
                Just("3probe".to_owned()),
                Just("2".to_owned()),
                ".{0,12}".prop_map(|s| s),
                arb_body().prop_map(|b| String::from_utf8_lossy(&b).into_owned())
            ]
        )
            .prop_map(|(i, t)| Input::WsText(i, t)),
        (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..16))
            .prop_map(|(i, b)| Input::WsBinary(i, b)),
        any::<u8>().prop_map(Input::WsClosed),
        (0u32..100_000).prop_map(Input::Timeout),
        ".{0,30}".prop_map(Input::Send),
        Just(Input::Close),
        Just(Input::Connect),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Arbitrary bytes as HTTP responses and WebSocket frames, in any order, addressed to
    /// the ids the client actually used (or not), never panic the client, and its
    /// deadline never goes backwards past `now`.
    #[test]
    fn arbitrary_inputs_never_panic(inputs in proptest::collection::vec(arb_input(), 1..60), transports in 0u8..3) {
        let start = Instant::now();
        let mut config = with_reconnect(client_config(), ReconnectConfig::default());
        config.transports = match transports {
            0 => vec![Transport::Polling, Transport::WebSocket],
            1 => vec![Transport::WebSocket],
            _ => vec![Transport::Polling],
        };
        let mut client = Client::new(config, start, 5).unwrap();
        let mut now = start;
        client.connect(now);
        let mut ids: Vec<RequestId> = Vec::new();
        let record = |client: &mut Client, ids: &mut Vec<RequestId>| {
            while let Some(a) = client.poll_action() {
                match a {
                    ClientAction::HttpRequest { id, .. } | ClientAction::WsConnect { id, .. } => ids.push(id),
                    _ => {}
                }
            }
        };
        record(&mut client, &mut ids);
        let pick = |ids: &[RequestId], i: u8| -> RequestId {
            if ids.is_empty() || i == 255 {
                RequestId(u64::from(i))
            } else {
                ids[usize::from(i) % ids.len()]
            }
        };
        for input in inputs {
            match input {
                Input::Response(i, status, body) => {
                    let r = Response {
                        status: StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
                        headers: http::HeaderMap::new(),
                        body: Bytes::from(body),
                    };
                    client.handle_response(now, pick(&ids, i), Ok(r));
                }
                Input::ResponseErr(i) => client.handle_response(now, pick(&ids, i), Err(reset().into())),
                Input::WsConnected(i) => client.handle_ws_connected(now, pick(&ids, i)),
                Input::WsConnectFailed(i) => client.handle_ws_connect_failed(now, pick(&ids, i), WsConnectError::Transport(refused())),
                Input::WsText(i, t) => client.handle_ws_message(now, pick(&ids, i), WsMessage::Text(t.into())),
                Input::WsBinary(i, b) => client.handle_ws_message(now, pick(&ids, i), WsMessage::Binary(b.into())),
                Input::WsClosed(i) => client.handle_ws_closed(now, pick(&ids, i), TransportEnd::Closed),
                Input::Timeout(ms) => {
                    now += Duration::from_millis(u64::from(ms));
                    client.handle_timeout(now);
                }
                Input::Send(s) => { let _ = client.send(s); }
                Input::Close => client.close(now),
                Input::Connect => client.connect(now),
            }
            record(&mut client, &mut ids);
            // Nothing is overdue after handle_timeout(now): every expired timer fired.
            client.handle_timeout(now);
            record(&mut client, &mut ids);
            prop_assert!(client.poll_timeout().is_none_or(|t| t > now));
        }
    }
}

// ------------------------------------------------------------------ close races

/// A response with this status and body.
fn answer(
    status: StatusCode,
    body: &'static [u8],
) -> Result<Response, engineio_proto::client::HttpError> {
    Ok(Response {
        status,
        headers: http::HeaderMap::new(),
        body: Bytes::from_static(body),
    })
}

/// Drives a polling client by hand through its handshake; returns the long-poll GET's id.
fn handshaken_polling_client(now: Instant) -> (Client, engineio_proto::RequestId) {
    let mut config = ClientConfig::new("http://localhost:3000").unwrap();
    config.transports = vec![Transport::Polling];
    let mut client = Client::new(config, now, 7).unwrap();
    client.connect(now);
    let Some(ClientAction::HttpRequest { id, .. }) = client.poll_action() else {
        panic!("handshake request expected")
    };
    client.handle_response(
        now,
        id,
        answer(StatusCode::OK, br#"0{"sid":"abc","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#),
    );
    let mut get = None;
    while let Some(action) = client.poll_action() {
        if let ClientAction::HttpRequest { id, request } = action {
            assert_eq!(request.method, Method::GET);
            get = Some(id);
        }
    }
    (client, get.expect("a long-poll GET"))
}

/// Found by the interop run against Node: closing over polling while the long-poll GET
/// came back made the client start a new GET, which Node (having closed the session on
/// the POSTed close packet) refused with 400; the client then reported a transport
/// error instead of its own close.
#[test]
fn closing_over_polling_starts_no_new_get_and_ignores_a_refused_one() {
    #[allow(clippy::disallowed_methods)]
    let now = Instant::now();
    let (mut client, get) = handshaken_polling_client(now);
    client.close(now);
    let mut post = None;
    while let Some(action) = client.poll_action() {
        if let ClientAction::HttpRequest { id, request } = action {
            assert_eq!(request.method, Method::POST, "no new GET while closing");
            assert_eq!(&request.body[..], b"1");
            post = Some(id);
        }
    }
    let post = post.expect("the close POST");
    // The parked GET comes back with a noop: still no new GET.
    client.handle_response(now, get, answer(StatusCode::OK, b"6"));
    while let Some(action) = client.poll_action() {
        assert!(
            !matches!(action, ClientAction::HttpRequest { .. }),
            "no request after the close: {action:?}"
        );
    }
    client.handle_response(now, post, answer(StatusCode::OK, b"ok"));
    let events: Vec<_> = std::iter::from_fn(|| client.poll_action()).collect();
    assert!(
        events.contains(&ClientAction::Event(ClientEvent::Disconnected(
            CloseReason::ClientClose
        ))),
        "{events:?}"
    );

    // The same with the GET refused (the server closed first): still a client close.
    let (mut client, get) = handshaken_polling_client(now);
    client.close(now);
    let post = std::iter::from_fn(|| client.poll_action())
        .find_map(|a| match a {
            ClientAction::HttpRequest { id, .. } => Some(id),
            _ => None,
        })
        .unwrap();
    client.handle_response(
        now,
        get,
        answer(
            StatusCode::BAD_REQUEST,
            br#"{"code":1,"message":"Session ID unknown"}"#,
        ),
    );
    assert!(client.is_connected() || !client.is_closed());
    client.handle_response(now, post, answer(StatusCode::OK, b"ok"));
    let events: Vec<_> = std::iter::from_fn(|| client.poll_action()).collect();
    assert!(
        events.contains(&ClientAction::Event(ClientEvent::Disconnected(
            CloseReason::ClientClose
        ))),
        "{events:?}"
    );
}

#[test]
fn a_closed_websocket_the_server_never_takes_is_dropped_after_write_timeout() {
    let now = std::time::Instant::now();
    let mut c = websocket_only();
    c.write_timeout = Duration::from_secs(3);
    let mut client = Client::new(c, now, 1).unwrap();
    client.connect(now);
    let Some(ClientAction::WsConnect { id, .. }) = client.poll_action() else {
        panic!("no connect")
    };
    client.handle_ws_connected(now, id);
    let open = r#"0{"sid":"abcdefghijklmnopqrst","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;
    client.handle_ws_message(now, id, WsMessage::Text(open.into()));
    drain(&mut client);
    client.close(now);
    let actions = drain(&mut client);
    assert!(
        actions.contains(&ClientAction::WsClose {
            ws: id,
            code: engineio_proto::CloseCode::Normal,
            reason: "",
        }),
        "{actions:?}"
    );
    assert!(client.is_closed());
    // The server never takes the close frame (nor closes): the client still bounds how
    // long the socket is kept.
    assert_eq!(client.poll_timeout(), Some(now + Duration::from_secs(3)));
    client.handle_timeout(now + Duration::from_secs(3));
    assert_eq!(drain(&mut client), [ClientAction::WsDrop { ws: id }]);
    assert_eq!(client.poll_timeout(), None);
    // A socket whose close completes in time is not dropped.
    let mut client = Client::new(websocket_only(), now, 1).unwrap();
    client.connect(now);
    let Some(ClientAction::WsConnect { id, .. }) = client.poll_action() else {
        panic!("no connect")
    };
    client.handle_ws_connected(now, id);
    client.handle_ws_message(now, id, WsMessage::Text(open.into()));
    client.close(now);
    drain(&mut client);
    client.handle_ws_closed(now, id, TransportEnd::Closed);
    assert_eq!(client.poll_timeout(), None);
}
