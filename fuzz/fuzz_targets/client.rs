//! Fuzzes the client state machine, in its v4 and v3 modes: arbitrary server answers (HTTP
//! responses with any status and body, v3 text or binary payloads, well-formed open packets with fuzzed values, failures of every kind),
//! WebSocket frames, ends and connect failures, addressed to the ids the client used (or
//! not), mixed with application sends, closes, reconnects, WebSocket pulls and time that
//! never goes backwards.
//!
//! Checks, besides "no panic, no hang":
//! - `handle_timeout(now)` leaves no deadline at or before `now`;
//! - at most one long-poll GET and one POST of a session are in flight, and request and
//!   WebSocket ids are never reused;
//! - every request carries the configured response limit;
//! - the queue stays within `max_queued_messages` (or the offline bound) and
//!   `max_queued_bytes` (a message alone may be larger);
//! - messages go only to WebSockets that are open (connected, not closed by either side);
//! - once closed, the client asks for nothing until `connect` is called again, and no
//!   message is reported after a `Disconnected` before the next session opens.
#![no_main]

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use engineio_proto::client::{
    Client, ClientAction, ClientConfig, ClientEvent, HttpError, OfflinePolicy, ReconnectConfig,
    WsConnectError,
};
use engineio_proto::{
    IoError, ProtocolVersion, RequestId, Response, Transport, TransportEnd, TransportError,
    WsMessage,
};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
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

const MAX_QUEUED: usize = 4;
const MAX_BYTES: usize = 300;

fn config(selector: u8) -> ClientConfig {
    let mut c = ClientConfig::new("http://localhost:3000").expect("valid URL");
    c.transports = match selector % 3 {
        0 => vec![Transport::Polling, Transport::WebSocket],
        1 => vec![Transport::WebSocket],
        _ => vec![Transport::Polling],
    };
    if selector & 4 != 0 {
        let mut r = ReconnectConfig::default();
        r.initial_delay = Duration::from_millis(50);
        r.max_delay = Duration::from_millis(200);
        r.max_attempts = (selector & 8 != 0).then_some(3);
        c.reconnect = Some(r);
    }
    if selector & 16 != 0 {
        c.offline = OfflinePolicy::Refuse;
    } else {
        c.offline = OfflinePolicy::Queue { max: MAX_QUEUED };
    }
    c.request_timeout = Duration::from_millis(500);
    c.upgrade_timeout = Duration::from_millis(300);
    c.max_queued_messages = MAX_QUEUED;
    c.max_queued_bytes = MAX_BYTES;
    c.max_payload = 600;
    c.max_handshake_size = 400;
    c.max_ws_message_size = 500;
    c.max_ws_frame_size = 250;
    if selector & 32 != 0 {
        c.protocol_version = ProtocolVersion::V3;
    }
    c
}

/// `text` as one record of a v3 text payload (`<UTF-16 length>:<text>`).
fn v3_record(text: &[u8]) -> Vec<u8> {
    let units = String::from_utf8_lossy(text).encode_utf16().count();
    let mut out = format!("{units}:").into_bytes();
    out.extend_from_slice(text);
    out
}

/// A v3 binary payload record: `kind` 0 text, 1 binary, then the length digits and 0xFF.
fn v3_binary_record(kind: u8, data: &[u8]) -> Vec<u8> {
    let mut out = vec![kind];
    out.extend(data.len().to_string().bytes().map(|d| d - b'0'));
    out.push(0xff);
    out.extend_from_slice(data);
    out
}

/// An open packet with fuzzed values.
fn open_packet(input: &mut Input<'_>) -> String {
    let flags = input.byte().unwrap_or(0);
    let interval = u64::from(input.byte().unwrap_or(100)) * 4;
    let timeout = u64::from(input.byte().unwrap_or(100)) * 4;
    let upgrades = if flags & 1 != 0 {
        r#"["websocket"]"#
    } else {
        "[]"
    };
    let max_payload = match flags >> 1 & 3 {
        0 => String::new(),
        1 => r#","maxPayload":40"#.to_owned(),
        2 => r#","maxPayload":1000000"#.to_owned(),
        _ => r#","maxPayload":0"#.to_owned(),
    };
    format!(
        r#"0{{"sid":"s{flags}","upgrades":{upgrades},"pingInterval":{interval},"pingTimeout":{timeout}{max_payload}}}"#
    )
}

fn transport_error(kind: u8) -> TransportError {
    let io = IoError::new(std::io::ErrorKind::ConnectionReset, "reset");
    match kind % 4 {
        0 => TransportError::Reset(io),
        1 => TransportError::Connect(IoError::new(
            std::io::ErrorKind::ConnectionRefused,
            "refused",
        )),
        2 => TransportError::Io(io),
        _ => TransportError::Aborted("gone"),
    }
}

#[derive(Default)]
struct Tracker {
    /// Every id the client chose, in order.
    ids: Vec<RequestId>,
    seen: BTreeSet<RequestId>,
    /// Session requests (with a sid) in flight, by method.
    in_flight: BTreeMap<RequestId, Method>,
    /// WebSockets asked for and not ended.
    connecting: BTreeSet<RequestId>,
    open: BTreeSet<RequestId>,
    /// No session since the last `Disconnected`.
    disconnected: bool,
}

impl Tracker {
    fn pick(&self, i: u8) -> RequestId {
        if self.ids.is_empty() || i == 255 {
            RequestId(u64::from(i))
        } else {
            self.ids[usize::from(i) % self.ids.len()]
        }
    }

    fn new_id(&mut self, id: RequestId) {
        assert!(self.seen.insert(id), "id {id} reused");
        self.ids.push(id);
    }

    /// The harness delivered the outcome of `id`.
    fn answered(&mut self, id: RequestId) {
        self.in_flight.remove(&id);
    }

    fn ws_gone(&mut self, id: RequestId) {
        self.connecting.remove(&id);
        self.open.remove(&id);
    }

    fn drain(&mut self, client: &mut Client, config: &ClientConfig, closed_before: bool) {
        while let Some(action) = client.poll_action() {
            match action {
                ClientAction::HttpRequest { id, request } => {
                    assert!(!closed_before, "a request after the client closed");
                    self.new_id(id);
                    let session = request.uri.query().is_some_and(|q| q.contains("&sid="));
                    let expected = if request.method == Method::GET && session {
                        config.max_payload
                    } else {
                        config.max_handshake_size
                    };
                    assert_eq!(request.max_response_body, expected);
                    if session {
                        let same = self
                            .in_flight
                            .values()
                            .filter(|m| **m == request.method)
                            .count();
                        assert_eq!(same, 0, "a second {} in flight", request.method);
                        self.in_flight.insert(id, request.method);
                    }
                }
                ClientAction::AbortRequest { id } => {
                    self.in_flight.remove(&id);
                }
                ClientAction::WsConnect { id, limits, .. } => {
                    assert!(!closed_before, "a WebSocket after the client closed");
                    self.new_id(id);
                    assert_eq!(limits.max_message_size, config.max_ws_message_size);
                    assert_eq!(limits.max_frame_size, config.max_ws_frame_size);
                    self.connecting.insert(id);
                }
                ClientAction::WsSend { ws, .. } => {
                    assert!(
                        self.open.contains(&ws),
                        "a message on WebSocket {ws}, not open"
                    );
                }
                ClientAction::WsClose { ws, .. } => self.ws_gone(ws),
                ClientAction::WsDrop { ws } => self.ws_gone(ws),
                ClientAction::Event(event) => match event {
                    ClientEvent::Disconnected(_) => self.disconnected = true,
                    ClientEvent::Connected(_) | ClientEvent::Reconnected(_) => {
                        self.disconnected = false;
                    }
                    ClientEvent::Message(_) => {
                        assert!(!self.disconnected, "a message after Disconnected");
                    }
                    _ => {}
                },
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let selector = input.byte().unwrap_or(0);
    let config = config(selector);
    let v3 = config.protocol_version == ProtocolVersion::V3;
    let start = Instant::now();
    let mut now = start;
    let Ok(mut client) = Client::new(config.clone(), now, u64::from(selector)) else {
        panic!("the configuration is valid");
    };
    let mut t = Tracker::default();
    client.connect(now);
    t.drain(&mut client, &config, false);
    let mut steps = 0;
    while let Some(op) = input.byte() {
        steps += 1;
        if steps > 2000 {
            break;
        }
        let closed_before = client.is_closed();
        let mut reconnecting = false;
        match op % 16 {
            0 => {
                let id = t.pick(input.byte().unwrap_or(0));
                let status = match input.byte().unwrap_or(0) % 8 {
                    0 => StatusCode::BAD_REQUEST,
                    1 => StatusCode::INTERNAL_SERVER_ERROR,
                    2 => StatusCode::FORBIDDEN,
                    _ => StatusCode::OK,
                };
                let kind = input.byte().unwrap_or(0);
                let mut headers = HeaderMap::new();
                let body = match kind % 5 {
                    0 if v3 => v3_record(open_packet(&mut input).as_bytes()),
                    3 if v3 => {
                        let mut b = v3_record(open_packet(&mut input).as_bytes());
                        b.extend(input.bytes());
                        b
                    }
                    4 if v3 && kind & 0x80 != 0 => {
                        // A v3 binary payload.
                        headers.insert(
                            "content-type",
                            HeaderValue::from_static("application/octet-stream"),
                        );
                        let mut b = Vec::new();
                        for _ in 0..input.byte().unwrap_or(0) % 6 {
                            match input.byte().unwrap_or(0) % 5 {
                                0 => b.extend(v3_binary_record(0, b"2")),
                                1 => b.extend(v3_binary_record(0, b"4hello")),
                                2 => b.extend(v3_binary_record(1, &[4, 1, 2, 3])),
                                3 => b.extend(v3_binary_record(0, b"3")),
                                _ => b.extend(input.bytes()),
                            }
                        }
                        b
                    }
                    4 if v3 => {
                        // v3 text records.
                        let mut b = Vec::new();
                        for _ in 0..input.byte().unwrap_or(0) % 6 {
                            match input.byte().unwrap_or(0) % 6 {
                                0 => b.extend(v3_record(b"3")),
                                1 => b.extend(v3_record(b"6")),
                                2 => b.extend(v3_record(b"1")),
                                3 => b.extend(v3_record("4h€😀".as_bytes())),
                                4 => b.extend(v3_record(b"b4AQID")),
                                _ => b.extend(input.bytes()),
                            }
                        }
                        b
                    }
                    0 => open_packet(&mut input).into_bytes(),
                    1 => b"ok".to_vec(),
                    2 => input.bytes(),
                    3 => {
                        let mut b = open_packet(&mut input).into_bytes();
                        b.push(0x1e);
                        b.extend(input.bytes());
                        b
                    }
                    _ => {
                        // Packets joined by record separators.
                        let mut b = Vec::new();
                        for _ in 0..input.byte().unwrap_or(0) % 6 {
                            if !b.is_empty() {
                                b.push(0x1e);
                            }
                            match input.byte().unwrap_or(0) % 6 {
                                0 => b.push(b'2'),
                                1 => b.push(b'6'),
                                2 => b.push(b'1'),
                                3 => b.extend(b"4hello"),
                                4 => b.extend(b"bAQID"),
                                _ => b.extend(input.bytes()),
                            }
                        }
                        b
                    }
                };
                let response = Response {
                    status,
                    headers,
                    body: Bytes::from(body),
                };
                t.answered(id);
                client.handle_response(now, id, Ok(response));
            }
            1 => {
                let id = t.pick(input.byte().unwrap_or(0));
                let kind = input.byte().unwrap_or(0);
                let error = if kind & 0x80 != 0 {
                    HttpError::BodyTooLarge {
                        size: u64::from(kind) * 1000,
                        limit: 400,
                    }
                } else {
                    HttpError::Transport(transport_error(kind))
                };
                t.answered(id);
                client.handle_response(now, id, Err(error));
            }
            2 => {
                let id = t.pick(input.byte().unwrap_or(0));
                if t.connecting.remove(&id) {
                    t.open.insert(id);
                }
                client.handle_ws_connected(now, id);
            }
            3 => {
                let id = t.pick(input.byte().unwrap_or(0));
                let kind = input.byte().unwrap_or(0);
                let error = if kind & 1 == 0 {
                    WsConnectError::Rejected(Response {
                        status: StatusCode::BAD_REQUEST,
                        headers: HeaderMap::new(),
                        body: Bytes::from(input.bytes()),
                    })
                } else {
                    WsConnectError::Transport(transport_error(kind >> 1))
                };
                // Ignored for a WebSocket that is open (a binding's mistake).
                t.connecting.remove(&id);
                client.handle_ws_connect_failed(now, id, error);
            }
            4 => {
                let id = t.pick(input.byte().unwrap_or(0));
                let text = match input.byte().unwrap_or(0) % 9 {
                    0 => open_packet(&mut input),
                    // The server's heartbeat packet: v4 pings, v3 pongs.
                    1 if v3 => "3".to_owned(),
                    1 => "2".to_owned(),
                    2 => "3probe".to_owned(),
                    3 => "6".to_owned(),
                    4 => "1".to_owned(),
                    5 => format!("4{}", String::from_utf8_lossy(&input.bytes())),
                    6 => "2probe".to_owned(),
                    7 => "4".repeat(usize::from(input.byte().unwrap_or(0)) * 4),
                    _ => String::from_utf8_lossy(&input.bytes()).into_owned(),
                };
                client.handle_ws_message(now, id, WsMessage::Text(text.into()));
            }
            5 => {
                let id = t.pick(input.byte().unwrap_or(0));
                let body = input.bytes();
                client.handle_ws_message(now, id, WsMessage::Binary(Bytes::from(body)));
            }
            6 => {
                let id = t.pick(input.byte().unwrap_or(0));
                let kind = input.byte().unwrap_or(0);
                let end = match kind % 3 {
                    0 => TransportEnd::Closed,
                    1 => TransportEnd::Error(transport_error(kind >> 2)),
                    _ => TransportEnd::MessageTooLarge {
                        size: usize::from(kind) * 100,
                    },
                };
                t.ws_gone(id);
                client.handle_ws_closed(now, id, end);
            }
            7 => {
                let b = input.byte().unwrap_or(0);
                let ms = if b & 0x80 != 0 {
                    u64::from(b & 0x7f) * 100
                } else {
                    u64::from(b)
                };
                now += Duration::from_millis(ms);
                client.handle_timeout(now);
                if let Some(deadline) = client.poll_timeout() {
                    assert!(deadline > now, "an overdue deadline after handle_timeout");
                }
            }
            8 | 9 => {
                let body = input.bytes();
                let message = if op % 16 == 8 {
                    engineio_proto::Message::from(String::from_utf8_lossy(&body).into_owned())
                } else {
                    engineio_proto::Message::from(body)
                };
                let _ = client.send(message);
                let queued = client.queued();
                assert!(queued <= MAX_QUEUED, "{queued} messages queued");
                assert!(
                    queued <= 1 || client.queued_bytes() <= MAX_BYTES,
                    "{} bytes queued",
                    client.queued_bytes()
                );
            }
            10 => client.close(now),
            11 => {
                client.connect(now);
                reconnecting = true;
            }
            12 => {
                let ws = t.pick(input.byte().unwrap_or(0));
                for _ in 0..input.byte().unwrap_or(1) % 8 {
                    if let Some(_message) = client.poll_ws_send(ws) {
                        assert!(t.open.contains(&ws), "pulled for WebSocket {ws}, not open");
                    }
                    t.drain(&mut client, &config, false);
                }
            }
            _ => {}
        }
        // `connect` starts afresh.
        let still_closed = closed_before && !reconnecting && client.is_closed();
        t.drain(&mut client, &config, still_closed);
    }
});
