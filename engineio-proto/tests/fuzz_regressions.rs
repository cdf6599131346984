//! Inputs the fuzzers found, replayed as plain tests through the same in-memory endpoint
//! the fuzz targets drive (`engineio_proto::testing::ServerEndpoint`, which checks the
//! binding contract on every action). The raw inputs are in `fuzz/regressions/<target>/`.
#![allow(missing_docs, clippy::disallowed_methods)]

use std::time::{Duration, Instant};

use engineio_proto::RequestId;
use engineio_proto::server::{RequestInfo, Routed, SeededSidGenerator, Server, ServerConfig};
use engineio_proto::testing::ServerEndpoint;
use http::{HeaderMap, Method, Uri};

/// The fuzz target's configuration (fuzz/fuzz_targets/server.rs).
fn endpoint() -> ServerEndpoint {
    let mut config = ServerConfig::default();
    config.ping_interval = Duration::from_millis(300);
    config.ping_timeout = Duration::from_millis(200);
    config.write_timeout = Duration::from_millis(400);
    config.max_payload = 200;
    config.max_buffered_packets = 8;
    let server = Server::new(config, SeededSidGenerator::new(1)).expect("config");
    #[allow(clippy::disallowed_methods)]
    ServerEndpoint::new(server, Instant::now())
}

/// `fuzz/regressions/server/acted-after-release-late-get` (found by the 2026-12-01
/// campaign after 53,715 runs; minimised to 14 bytes), step by step:
///
/// 1. a polling handshake;
/// 2. a polling GET for the session is read (its head arrives now) but handed to the
///    session later, as when another request of the session holds its lock;
/// 3. the application closes the session (`Session::close`);
/// 4. 595 ms pass (the release comes `write_timeout`, 400 ms, after the close);
/// 5. the late GET is handed to the session;
/// 6. a WebSocket upgrade request for the session arrives.
///
/// The session answers the upgrade request (400, "Session ID unknown") after it has
/// queued `Action::Release`: an action after its release, which the binding contract
/// forbids (a driver has dropped the session by then, so that request is never answered
/// by it).
#[test]
fn a_late_get_after_the_close_is_answered_before_the_release() {
    let mut ep = endpoint();
    let handshake = ep
        .request(
            RequestId(1),
            Method::GET,
            "/engine.io/?EIO=4&transport=polling",
            &HeaderMap::new(),
            None,
        )
        .expect("a handshake");
    let sid = ep.accept(handshake).expect("accepted");

    let uri: Uri = format!("/engine.io/?EIO=4&transport=polling&sid={sid}")
        .parse()
        .unwrap();
    let headers = HeaderMap::new();
    let info = RequestInfo::new(&Method::GET, &uri, &headers);
    let Routed::Session(late) = ep.server.handle_request(ep.now, RequestId(2), &info) else {
        panic!("routed to the session");
    };

    let now = ep.now;
    ep.session_mut(sid).expect("live").close(now);
    ep.drain();

    let later = ep.now + Duration::from_millis(595);
    ep.advance_to(later);

    let now = ep.now;
    if let Some(session) = ep.session_mut(sid) {
        session.handle_request(now, late);
        ep.outstanding.insert(RequestId(2), sid);
    }
    ep.drain();

    // Panics "session ... acted after its release: Respond { .. 400 .. }" today.
    let mut ws = HeaderMap::new();
    for (k, v) in [
        ("connection", "Upgrade"),
        ("upgrade", "websocket"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ] {
        ws.insert(k, v.parse().unwrap());
    }
    ep.request(
        RequestId(6),
        Method::GET,
        &format!("/engine.io/?EIO=4&transport=websocket&sid={sid}"),
        &ws,
        None,
    );
    let end = ep.now + Duration::from_secs(3600);
    ep.advance_to(end);
    assert!(
        ep.sessions.is_empty(),
        "sessions left after every deadline ran"
    );
}
