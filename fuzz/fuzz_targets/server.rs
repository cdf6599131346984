//! Fuzzes the server state machine: an arbitrary sequence of inputs (requests of every
//! kind with arbitrary bodies, WebSocket messages, closes, dropped requests, application
//! sends and closes) with non-decreasing time.
//!
//! Checks, besides "no panic, no hang": every request is answered at most once; after its
//! `Closed` event a session only answers requests still delivered to it; `handle_timeout(now)` leaves no
//! deadline at or before `now`.
#![no_main]

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use engineio_proto::server::{
    Action, Event, RequestInfo, Routed, SeededSidGenerator, Server, ServerConfig, Session,
};
use engineio_proto::{RequestId, TransportEnd, WsMessage};
use http::{HeaderMap, HeaderValue, Method, Uri};
use libfuzzer_sys::fuzz_target;

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn bytes(&mut self) -> Vec<u8> {
        let n = self.byte().unwrap_or(0) as usize;
        let n = n.min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a.to_vec()
    }
}

fuzz_target!(|data: &[u8]| {
    let mut config = ServerConfig::default();
    config.ping_interval = Duration::from_millis(300);
    config.ping_timeout = Duration::from_millis(200);
    config.max_payload = 200;
    config.max_buffered_packets = 8;
    let server = Server::new(config, SeededSidGenerator::new(1)).expect("config");
    let mut now = Instant::now();
    let mut sessions: Vec<Session> = Vec::new();
    let mut closed: Vec<bool> = Vec::new();
    let mut answered: BTreeSet<RequestId> = BTreeSet::new();
    let mut sockets: BTreeMap<RequestId, usize> = BTreeMap::new();
    let mut next = 0u64;
    let mut input = Input(data);
    let mut steps = 0;
    while let Some(op) = input.byte() {
        steps += 1;
        if steps > 2000 {
            break;
        }
        let pick = input.byte().unwrap_or(0) as usize;
        next += 1;
        let id = RequestId(next);
        match op % 12 {
            0 | 1 => {
                // handshake, polling or websocket
                let ws = op % 12 == 1;
                let uri: Uri = if ws {
                    "/engine.io/?EIO=4&transport=websocket".parse().unwrap()
                } else {
                    "/engine.io/?EIO=4&transport=polling".parse().unwrap()
                };
                let mut headers = HeaderMap::new();
                if ws {
                    headers.insert("upgrade", HeaderValue::from_static("websocket"));
                }
                if let Routed::Handshake(hs) =
                    server.handle_request(id, &RequestInfo::new(&Method::GET, &uri, &headers))
                {
                    let s = server.accept(now, hs, ());
                    if ws {
                        sockets.insert(id, sessions.len());
                    }
                    sessions.push(s);
                    closed.push(false);
                }
            }
            2..=4 if !sessions.is_empty() => {
                // GET, POST with a body, or a WebSocket upgrade for a session
                let i = pick % sessions.len();
                let sid = sessions[i].sid();
                let kind = op % 12;
                let transport = if kind == 4 { "websocket" } else { "polling" };
                let uri: Uri = format!("/engine.io/?EIO=4&transport={transport}&sid={sid}")
                    .parse()
                    .unwrap();
                let mut headers = HeaderMap::new();
                if kind == 4 {
                    headers.insert("upgrade", HeaderValue::from_static("websocket"));
                }
                let method = if kind == 3 { Method::POST } else { Method::GET };
                let body = input.bytes();
                if let Routed::Session(req) =
                    server.handle_request(id, &RequestInfo::new(&method, &uri, &headers))
                {
                    sessions[i].handle_request(now, req);
                    if kind == 3 && input.byte().unwrap_or(0) % 4 != 0 {
                        sessions[i].handle_post_body(now, id, Bytes::from(body));
                    }
                    if kind == 4 {
                        sockets.insert(id, i);
                    }
                }
            }
            5 | 6 if !sockets.is_empty() => {
                let (&ws, &i) = sockets.iter().nth(pick % sockets.len()).unwrap();
                let body = input.bytes();
                let msg = if op % 12 == 5 {
                    match String::from_utf8(body) {
                        Ok(s) => WsMessage::Text(s.into()),
                        Err(_) => WsMessage::Text("2probe".into()),
                    }
                } else {
                    WsMessage::Binary(Bytes::from(body))
                };
                sessions[i].handle_ws_message(now, ws, msg);
            }
            7 if !sockets.is_empty() => {
                let (&ws, &i) = sockets.iter().nth(pick % sockets.len()).unwrap();
                let end = match input.byte().unwrap_or(0) % 3 {
                    0 => TransportEnd::Closed,
                    1 => TransportEnd::Error("x".into()),
                    _ => TransportEnd::MessageTooLarge { size: 999 },
                };
                sessions[i].handle_ws_closed(now, ws, end);
            }
            8 if !sessions.is_empty() => {
                let i = pick % sessions.len();
                sessions[i].handle_request_dropped(
                    now,
                    RequestId(input.byte().unwrap_or(0) as u64 % next.max(1)),
                );
            }
            9 => {
                now += Duration::from_millis(u64::from(input.byte().unwrap_or(0)) * 7);
                for s in &mut sessions {
                    s.handle_timeout(now);
                    if let Some(t) = s.poll_timeout() {
                        assert!(t > now, "overdue deadline after handle_timeout");
                    }
                }
            }
            10 if !sessions.is_empty() => {
                let i = pick % sessions.len();
                let body = input.bytes();
                let _ = sessions[i].send(String::from_utf8_lossy(&body).into_owned());
            }
            11 if !sessions.is_empty() => {
                let i = pick % sessions.len();
                if input.byte().unwrap_or(0) % 2 == 0 {
                    sessions[i].close(now);
                } else {
                    sessions[i].shutdown(now);
                }
            }
            _ => {}
        }
        for (i, s) in sessions.iter_mut().enumerate() {
            while let Some(action) = s.poll_action() {
                // A closed session still answers requests delivered to it (400, unknown
                // sid), but does nothing else.
                assert!(
                    !closed[i] || matches!(action, Action::Respond { .. }),
                    "action after Closed: {action:?}"
                );
                match action {
                    Action::Respond { request, .. } => {
                        assert!(answered.insert(request), "request {request} answered twice");
                    }
                    Action::AcceptWebSocket { request, .. } => {
                        assert!(answered.insert(request), "request {request} answered twice");
                    }
                    Action::Event(Event::Closed(_)) => closed[i] = true,
                    _ => {}
                }
            }
        }
    }
});
