//! Fuzzes the server state machine: an arbitrary sequence of inputs (requests of every
//! kind with arbitrary bodies, on Engine.IO v4 and v3 sessions side by side (`allow_eio3`;
//! v3 POSTs as text or binary payloads), request heads that arrived earlier than they are handed
//! over, WebSocket messages, closes and protocol violations, sockets that stop taking
//! writes, dropped requests and unreadable bodies, application sends and closes) with
//! non-decreasing time.
//!
//! Driven through `engineio_proto::testing::ServerEndpoint`, which checks the binding
//! contract on every action: no request answered twice, no frame on a socket that was
//! never accepted or already closed, nothing after `Release`, one `Closed` per session,
//! a release deadline after `Closed`, and `handle_timeout(now)` leaving no deadline at or
//! before `now`. At the end, every session is run to its release: nothing is left.
#![no_main]

use std::time::{Duration, Instant};

use bytes::Bytes;
use engineio_proto::server::{RequestInfo, Routed, SeededSidGenerator, Server, ServerConfig};
use engineio_proto::testing::ServerEndpoint;
use engineio_proto::{
    IoError, RequestId, Sid, TransportEnd, TransportError, WsMessage, WsViolation,
};
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

fn ws_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("connection", HeaderValue::from_static("Upgrade"));
    h.insert("upgrade", HeaderValue::from_static("websocket"));
    h.insert("sec-websocket-version", HeaderValue::from_static("13"));
    h.insert(
        "sec-websocket-key",
        HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="),
    );
    h
}

fuzz_target!(|data: &[u8]| {
    let mut config = ServerConfig::default();
    config.ping_interval = Duration::from_millis(300);
    config.ping_timeout = Duration::from_millis(200);
    config.write_timeout = Duration::from_millis(400);
    config.max_payload = 200;
    config.max_buffered_packets = 8;
    config.allow_eio3 = true;
    let server = Server::new(config, SeededSidGenerator::new(1)).expect("config");
    let mut ep = ServerEndpoint::new(server, Instant::now());
    let mut input = Input(data);
    let mut next = 0u64;
    let mut steps = 0;
    // Every session, with the EIO it was opened with.
    let mut sids: Vec<(Sid, &str)> = Vec::new();
    let mut sockets: Vec<RequestId> = Vec::new();
    // Heads read earlier and not handed over yet.
    let mut late: Vec<(Sid, engineio_proto::server::SessionRequest)> = Vec::new();
    while let Some(op) = input.byte() {
        steps += 1;
        if steps > 2000 {
            break;
        }
        let pick = input.byte().unwrap_or(0) as usize;
        next += 1;
        let id = RequestId(next);
        match op % 16 {
            0 | 1 => {
                // handshake, polling or websocket
                let ws = op % 16 == 1;
                let eio = if pick & 0x40 != 0 { "3" } else { "4" };
                let b64 = if pick & 0x20 != 0 { "&b64=1" } else { "" };
                let (transport, headers) = if ws {
                    ("websocket", ws_headers())
                } else {
                    ("polling", HeaderMap::new())
                };
                let uri = format!("/engine.io/?EIO={eio}&transport={transport}{b64}");
                if let Some(hs) = ep.request(id, Method::GET, &uri, &headers, None) {
                    if pick % 8 == 0 {
                        ep.server.begin_shutdown();
                    }
                    if let Some(sid) = ep.accept(hs) {
                        sids.push((sid, eio));
                        if ws {
                            sockets.push(id);
                        }
                    }
                }
            }
            2..=4 if !sids.is_empty() => {
                // GET, POST (with its body now, later, or never), or a WebSocket upgrade
                let (sid, eio) = sids[pick % sids.len()];
                let kind = op % 16;
                let transport = if kind == 4 { "websocket" } else { "polling" };
                let uri = format!("/engine.io/?EIO={eio}&transport={transport}&sid={sid}");
                let mut headers = if kind == 4 {
                    ws_headers()
                } else {
                    HeaderMap::new()
                };
                let method = if kind == 3 { Method::POST } else { Method::GET };
                let body = input.bytes();
                let flags = if kind == 3 { input.byte().unwrap_or(0) } else { 0 };
                let with_body = kind == 3 && flags % 4 != 0;
                if flags & 0x10 != 0 {
                    // A binary payload (v3 XHR2 clients; refused by v4 sessions).
                    headers.insert(
                        "content-type",
                        HeaderValue::from_static("application/octet-stream"),
                    );
                }
                ep.request(
                    id,
                    method,
                    &uri,
                    &headers,
                    with_body.then(|| Bytes::from(body)),
                );
                if kind == 4 {
                    sockets.push(id);
                }
            }
            5 | 6 if !sockets.is_empty() => {
                let ws = sockets[pick % sockets.len()];
                let body = input.bytes();
                let msg = if op % 16 == 5 {
                    match String::from_utf8(body) {
                        Ok(s) => WsMessage::Text(s.into()),
                        Err(_) => WsMessage::Text("2probe".into()),
                    }
                } else {
                    WsMessage::Binary(Bytes::from(body))
                };
                ep.ws_message(ws, msg);
            }
            7 if !sockets.is_empty() => {
                let ws = sockets[pick % sockets.len()];
                let end = match input.byte().unwrap_or(0) % 5 {
                    0 => TransportEnd::Closed,
                    1 => TransportEnd::Error(TransportError::Reset(IoError::other("x"))),
                    2 => TransportEnd::Violation(WsViolation::ReservedBits),
                    3 => TransportEnd::Violation(WsViolation::InvalidUtf8),
                    _ => TransportEnd::MessageTooLarge { size: 999 },
                };
                ep.ws_closed(ws, end);
            }
            8 => {
                let victim = RequestId(u64::from(input.byte().unwrap_or(0)) % next.max(1));
                if pick % 2 == 0 {
                    ep.drop_request(victim);
                } else {
                    ep.post_body_failed(victim);
                }
            }
            9 => {
                let target =
                    ep.now + Duration::from_millis(u64::from(input.byte().unwrap_or(0)) * 7);
                ep.advance_to(target);
            }
            10 if !sids.is_empty() => {
                let (sid, _) = sids[pick % sids.len()];
                let body = input.bytes();
                let binary = body.first().is_some_and(|b| b & 1 != 0);
                if let Some(s) = ep.session_mut(sid) {
                    let _ = if binary {
                        s.send(body)
                    } else {
                        s.send(String::from_utf8_lossy(&body).into_owned())
                    };
                }
                ep.drain();
            }
            11 if !sids.is_empty() => {
                let (sid, _) = sids[pick % sids.len()];
                let now = ep.now;
                let shutdown = input.byte().unwrap_or(0) % 2 == 0;
                if let Some(s) = ep.session_mut(sid) {
                    if shutdown {
                        s.shutdown(now);
                    } else {
                        s.close(now);
                    }
                }
                ep.drain();
            }
            12 if !sockets.is_empty() => {
                let ws = sockets[pick % sockets.len()];
                ep.set_ws_blocked(ws, input.byte().unwrap_or(0) % 2 == 0);
            }
            13 if !sids.is_empty() => {
                // A head read now, handed over later (another thread won the lock).
                let (sid, eio) = sids[pick % sids.len()];
                let method = if input.byte().unwrap_or(0) % 2 == 0 {
                    Method::GET
                } else {
                    Method::POST
                };
                let uri: Uri = format!("/engine.io/?EIO={eio}&transport=polling&sid={sid}")
                    .parse()
                    .expect("uri");
                let headers = HeaderMap::new();
                let info = RequestInfo::new(&method, &uri, &headers);
                if let Routed::Session(req) = ep.server.handle_request(ep.now, id, &info) {
                    late.push((sid, req));
                }
            }
            14 if !late.is_empty() => {
                let (sid, req) = late.remove(pick % late.len());
                let now = ep.now;
                let id = req.id();
                match ep.session_mut(sid) {
                    Some(s) => {
                        s.handle_request(now, req);
                        ep.outstanding.insert(id, sid);
                    }
                    None => {
                        let _ = req.unknown_session();
                    }
                }
                ep.drain();
            }
            15 => {
                // Toggle whether reads asked for during upgrades are answered at once.
                ep.answer_reads = !ep.answer_reads;
                for ws in std::mem::take(&mut ep.read_requests) {
                    ep.ws_drained(ws);
                }
            }
            _ => {}
        }
    }
    // Everything ends, and then nothing is left.
    ep.answer_reads = true;
    for ws in std::mem::take(&mut ep.read_requests) {
        ep.ws_drained(ws);
    }
    for (sid, _) in sids {
        let now = ep.now;
        if let Some(s) = ep.session_mut(sid) {
            s.close(now);
        }
    }
    ep.drain();
    let end = ep.now + Duration::from_secs(3600);
    ep.advance_to(end);
    assert!(
        ep.sessions.is_empty(),
        "sessions left after every deadline ran"
    );
});
