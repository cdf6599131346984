//! Virtual-time pair harness: our proto `Client` wired to our proto `Server` and its
//! `Session`s, in memory (quinn-proto's `tests/util.rs` `Pair` is the model).
//!
//! Everything either side asks for (HTTP requests and responses, WebSocket connects,
//! messages and closes) travels through one in-flight queue with a configurable latency.
//! [`Pair::step`] delivers the next item that is due, or, when nothing is due, jumps the
//! virtual clock to the earliest deadline (an arrival, a client timer or a session timer)
//! and fires it. A 25 s heartbeat runs in microseconds.
//!
//! Knobs simulate a misbehaving network or server: `frozen` (the server swallows
//! everything and its timers stop: a dead server), `down` (connections are refused),
//! `restart_server` (every session is lost, connections reset), `refuse_websocket` and
//! `drop_probe` (upgrade failures), `handshakes` (accept, reject or ignore).
#![allow(
    dead_code,
    missing_docs,
    unreachable_pub,
    clippy::disallowed_methods,
    clippy::indexing_slicing
)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use engineio_proto::client::{
    Client, ClientAction, ClientConfig, ClientEvent, HttpError, HttpRequest, WsConnectError,
};
use engineio_proto::server::{Event, Rejection, SeededSidGenerator, Server, ServerConfig, Session};
use engineio_proto::testing::{Output, ServerEndpoint};
use engineio_proto::{
    CloseReason, IoError, Message, RequestId, Response, Sid, TransportEnd, TransportError,
    WsMessage,
};
use http::{HeaderMap, HeaderValue, Method, Uri, header};

/// What the server does with handshakes.
#[derive(Debug, Clone)]
pub enum Handshakes {
    Accept,
    Reject(Rejection),
    /// Never answer them.
    Ignore,
}

/// One item in flight between the two sides.
#[derive(Debug, Clone)]
enum Delivery {
    // client -> server
    Http {
        id: RequestId,
        request: HttpRequest,
    },
    Abort {
        id: RequestId,
    },
    WsConnect {
        id: RequestId,
        uri: Uri,
        headers: HeaderMap,
    },
    ToServerWs {
        ws: RequestId,
        message: WsMessage,
    },
    ToServerWsClose {
        ws: RequestId,
    },
    // server -> client
    Response {
        id: RequestId,
        result: Result<Response, HttpError>,
    },
    WsConnected {
        ws: RequestId,
    },
    WsConnectFailed {
        ws: RequestId,
        error: WsConnectError,
    },
    ToClientWs {
        ws: RequestId,
        message: WsMessage,
    },
    ToClientWsClosed {
        ws: RequestId,
        end: TransportEnd,
    },
}

pub struct Pair {
    pub client: Client,
    /// The server side: its sessions, drained by the shared in-memory endpoint.
    pub ep: ServerEndpoint,
    server_config: ServerConfig,
    pub start: Instant,
    pub now: Instant,
    /// One-way delay of everything in flight.
    pub latency: Duration,
    in_flight: Vec<(Instant, u64, Delivery)>,
    seq: u64,
    /// WebSocket connects waiting for the server's decision.
    pending_ws: BTreeSet<RequestId>,
    /// Open WebSockets (server side).
    ws_open: BTreeSet<RequestId>,
    /// Server events already copied into `server_events`.
    events_seen: usize,
    /// The client's session requests (with a sid) not answered nor aborted yet: the
    /// harness checks that at most one GET and one POST are in flight at any time.
    client_outstanding: BTreeMap<RequestId, Method>,

    // ---- logs
    /// Every HTTP request the client made, in order, with the time it was made.
    pub requests: Vec<(Instant, RequestId, HttpRequest)>,
    /// Every WebSocket connect the client asked for.
    pub ws_connects: Vec<(RequestId, Uri)>,
    /// Every message the client sent on a WebSocket.
    pub ws_sent: Vec<(RequestId, WsMessage)>,
    /// Every WebSocket the client closed, with the code.
    pub ws_closed_by_client: Vec<(RequestId, u16)>,
    /// Requests the client aborted.
    pub aborted: Vec<RequestId>,
    /// Every outcome handed to the client for an HTTP request.
    pub responses: Vec<(RequestId, Result<Response, HttpError>)>,
    /// The client's events, with the time they came out.
    pub events: Vec<(Instant, ClientEvent)>,
    /// The server sessions' events.
    pub server_events: Vec<(Sid, Event)>,
    /// Why each server session ended.
    pub server_closed: BTreeMap<Sid, CloseReason>,
    /// Server sessions ended and not released yet, or live.
    pub sessions: BTreeMap<Sid, ()>,
    /// Every session the server accepted, in order.
    pub accepted: Vec<Sid>,

    // ---- knobs
    pub handshakes: Handshakes,
    /// The server swallows every delivery and its timers stop (a dead server whose
    /// connections stay open).
    pub frozen: bool,
    /// Connections are refused (the server process is gone).
    pub down: bool,
    /// WebSocket connects are answered 400.
    pub refuse_websocket: bool,
    /// The server never sees `2probe`.
    pub drop_probe: bool,
    /// The client's WebSockets take its messages (`poll_ws_send`); off, they stay queued
    /// in the client (a server that stopped reading).
    pub ws_writable: bool,
}

/// A refused connection, as a binding reports it.
pub fn refused() -> TransportError {
    TransportError::Connect(IoError::new(
        std::io::ErrorKind::ConnectionRefused,
        "connection refused",
    ))
}

/// A reset connection, as a binding reports it.
pub fn reset() -> TransportError {
    TransportError::Reset(IoError::new(
        std::io::ErrorKind::ConnectionReset,
        "connection reset by peer",
    ))
}

pub fn client_config() -> ClientConfig {
    ClientConfig::new("http://localhost:3000").expect("valid URL")
}

/// The official test suite's timings: ping 300 ms / 200 ms.
pub fn server_config() -> ServerConfig {
    let mut c = ServerConfig::default();
    c.ping_interval = Duration::from_millis(300);
    c.ping_timeout = Duration::from_millis(200);
    c
}

fn endpoint(config: &ServerConfig, seed: u64, now: Instant) -> ServerEndpoint {
    let server =
        Server::new(config.clone(), SeededSidGenerator::new(seed)).expect("valid server config");
    let mut ep = ServerEndpoint::new(server, now);
    ep.record_outputs = true;
    ep
}

impl Pair {
    pub fn new(client: ClientConfig, server: ServerConfig) -> Pair {
        let start = Instant::now();
        Pair {
            client: Client::new(client, start, 7).expect("valid client config"),
            ep: endpoint(&server, 42, start),
            server_config: server,
            sessions: BTreeMap::new(),
            start,
            now: start,
            latency: Duration::ZERO,
            in_flight: Vec::new(),
            seq: 0,
            pending_ws: BTreeSet::new(),
            ws_open: BTreeSet::new(),
            events_seen: 0,
            client_outstanding: BTreeMap::new(),
            requests: Vec::new(),
            ws_connects: Vec::new(),
            ws_sent: Vec::new(),
            ws_closed_by_client: Vec::new(),
            aborted: Vec::new(),
            responses: Vec::new(),
            events: Vec::new(),
            server_events: Vec::new(),
            server_closed: BTreeMap::new(),
            accepted: Vec::new(),
            handshakes: Handshakes::Accept,
            frozen: false,
            down: false,
            refuse_websocket: false,
            drop_probe: false,
            ws_writable: true,
        }
    }

    pub fn default_pair() -> Pair {
        Pair::new(client_config(), server_config())
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    // ------------------------------------------------------------ driving

    fn send(&mut self, delivery: Delivery) {
        self.seq += 1;
        self.in_flight
            .push((self.now + self.latency, self.seq, delivery));
    }

    /// Moves every pending output of both sides into flight.
    pub fn drain(&mut self) {
        loop {
            self.drain_client_actions();
            // Then what the client's WebSockets take, as a binding pulls it.
            let mut pulled = false;
            if self.ws_writable {
                let ids: BTreeSet<RequestId> = self.ws_connects.iter().map(|(id, _)| *id).collect();
                for ws in ids {
                    while let Some(message) = self.client.poll_ws_send(ws) {
                        pulled = true;
                        self.ws_sent.push((ws, message.clone()));
                        self.send(Delivery::ToServerWs { ws, message });
                    }
                }
            }
            if !pulled {
                break;
            }
        }
        self.drain_server();
    }

    fn drain_client_actions(&mut self) {
        while let Some(action) = self.client.poll_action() {
            match action {
                ClientAction::HttpRequest { id, request } => {
                    if request.uri.query().is_some_and(|q| q.contains("&sid=")) {
                        let method = request.method.clone();
                        let same = self
                            .client_outstanding
                            .values()
                            .filter(|m| **m == method)
                            .count();
                        assert_eq!(same, 0, "a second {method} in flight");
                        self.client_outstanding.insert(id, method);
                    }
                    self.requests.push((self.now, id, request.clone()));
                    self.send(Delivery::Http { id, request });
                }
                ClientAction::AbortRequest { id } => {
                    self.client_outstanding.remove(&id);
                    self.aborted.push(id);
                    self.send(Delivery::Abort { id });
                }
                ClientAction::WsConnect {
                    id, uri, headers, ..
                } => {
                    self.ws_connects.push((id, uri.clone()));
                    self.send(Delivery::WsConnect { id, uri, headers });
                }
                ClientAction::WsSend { ws, message } => {
                    self.ws_sent.push((ws, message.clone()));
                    self.send(Delivery::ToServerWs { ws, message });
                }
                ClientAction::WsClose { ws, code, .. } => {
                    self.ws_closed_by_client.push((ws, code.as_u16()));
                    self.send(Delivery::ToServerWsClose { ws });
                    // The closing handshake completes: the client hears its socket end.
                    self.send(Delivery::ToClientWsClosed {
                        ws,
                        end: TransportEnd::Closed,
                    });
                }
                ClientAction::WsDrop { .. } => {}
                ClientAction::Event(e) => self.events.push((self.now, e)),
            }
        }
    }

    fn drain_server(&mut self) {
        self.ep.drain();
        while let Some(output) = self.ep.outputs.pop_front() {
            let delivery = match output {
                Output::Response { id, response } => {
                    if self.pending_ws.remove(&id) {
                        Delivery::WsConnectFailed {
                            ws: id,
                            error: WsConnectError::Rejected(response),
                        }
                    } else {
                        Delivery::Response {
                            id,
                            result: Ok(response),
                        }
                    }
                }
                Output::WsAccepted { ws } => {
                    self.pending_ws.remove(&ws);
                    self.ws_open.insert(ws);
                    Delivery::WsConnected { ws }
                }
                Output::WsMessage { ws, message } => {
                    assert!(self.ws_open.contains(&ws), "server sends on a closed ws");
                    Delivery::ToClientWs { ws, message }
                }
                Output::WsClosed { ws, .. } | Output::WsDropped { ws } => {
                    if !self.ws_open.remove(&ws) {
                        continue;
                    }
                    Delivery::ToClientWsClosed {
                        ws,
                        end: TransportEnd::Closed,
                    }
                }
            };
            self.send(delivery);
        }
        for (sid, event) in self.ep.events.iter().skip(self.events_seen) {
            if let Event::Closed(reason) = event {
                self.server_closed.insert(*sid, reason.clone());
            }
            self.server_events.push((*sid, event.clone()));
        }
        self.events_seen = self.ep.events.len();
        self.sessions = self.ep.sessions.keys().map(|sid| (*sid, ())).collect();
    }

    /// The earliest time something happens: an arrival or a timer.
    pub fn next_wakeup(&self) -> Option<Instant> {
        let arrivals = self.in_flight.iter().map(|(t, _, _)| *t);
        let client = self.client.poll_timeout();
        let server = if self.frozen {
            None
        } else {
            self.ep.next_deadline()
        };
        arrivals.chain(client).chain(server).min()
    }

    /// Delivers the next due item, or jumps to the next deadline and fires it. Returns
    /// false when nothing at all is left to happen.
    pub fn step(&mut self) -> bool {
        self.drain();
        let due = self
            .in_flight
            .iter()
            .enumerate()
            .filter(|(_, (t, _, _))| *t <= self.now)
            .min_by_key(|(_, (t, seq, _))| (*t, *seq))
            .map(|(i, _)| i);
        if let Some(i) = due {
            let (_, _, delivery) = self.in_flight.remove(i);
            self.deliver(delivery);
            self.drain();
            return true;
        }
        let Some(next) = self.next_wakeup() else {
            return false;
        };
        self.now = self.now.max(next);
        self.fire();
        true
    }

    fn fire(&mut self) {
        let now = self.now;
        self.client.handle_timeout(now);
        if !self.frozen {
            self.ep.now = now;
            self.ep.fire();
        }
        self.drain();
    }

    /// Runs everything up to `now + d` (inclusive), then sets the clock there.
    pub fn run_for(&mut self, d: Duration) {
        let target = self.now + d;
        let mut steps = 0;
        self.drain();
        while self.next_wakeup().is_some_and(|t| t <= target) || self.has_due() {
            self.step();
            steps += 1;
            assert!(steps < 1_000_000, "run_for did not settle");
        }
        self.now = target;
        self.fire();
    }

    fn has_due(&self) -> bool {
        self.in_flight.iter().any(|(t, _, _)| *t <= self.now)
    }

    /// Delivers everything that is due now, without moving the clock.
    pub fn settle(&mut self) {
        let mut steps = 0;
        loop {
            self.drain();
            if !self.has_due() {
                break;
            }
            self.step();
            steps += 1;
            assert!(steps < 1_000_000, "settle did not settle");
        }
    }

    /// Steps until `done` holds (checked after every step); panics after `max` of
    /// virtual time.
    pub fn run_until(&mut self, max: Duration, mut done: impl FnMut(&Pair) -> bool) {
        let limit = self.now + max;
        let mut steps = 0;
        while !done(self) {
            assert!(
                self.step(),
                "nothing left to happen at {:?}",
                self.elapsed()
            );
            assert!(
                self.now <= limit,
                "condition not met within {max:?}; events: {:#?}",
                self.events
            );
            steps += 1;
            assert!(steps < 1_000_000, "run_until did not settle");
        }
    }

    /// Connects and runs until the client reports its first session.
    pub fn connect(&mut self) -> Sid {
        let now = self.now;
        self.client.connect(now);
        self.run_until(Duration::from_secs(5), |p| p.client.is_connected());
        self.client.sid().expect("connected")
    }

    /// Runs until the client has upgraded (and the server agrees).
    pub fn wait_upgraded(&mut self) {
        self.run_until(Duration::from_secs(5), |p| {
            p.client.transport() == Some(engineio_proto::Transport::WebSocket)
                && p.server_events
                    .iter()
                    .any(|(_, e)| matches!(e, Event::Upgraded))
        });
    }

    // ------------------------------------------------------------ delivery

    fn deliver(&mut self, delivery: Delivery) {
        let now = self.now;
        match delivery {
            Delivery::Response { id, result } => {
                self.client_outstanding.remove(&id);
                self.responses.push((id, result.clone()));
                self.client.handle_response(now, id, result)
            }
            Delivery::WsConnected { ws } => self.client.handle_ws_connected(now, ws),
            Delivery::WsConnectFailed { ws, error } => {
                self.client.handle_ws_connect_failed(now, ws, error)
            }
            Delivery::ToClientWs { ws, message } => self.client.handle_ws_message(now, ws, message),
            Delivery::ToClientWsClosed { ws, end } => self.client.handle_ws_closed(now, ws, end),
            other => self.deliver_to_server(other),
        }
    }

    fn deliver_to_server(&mut self, delivery: Delivery) {
        if self.frozen {
            return;
        }
        self.ep.now = self.now;
        if self.down {
            match delivery {
                Delivery::Http { id, .. } => self.send(Delivery::Response {
                    id,
                    result: Err(refused().into()),
                }),
                Delivery::WsConnect { id, .. } => self.send(Delivery::WsConnectFailed {
                    ws: id,
                    error: WsConnectError::Transport(refused()),
                }),
                _ => {}
            }
            return;
        }
        match delivery {
            Delivery::Http { id, request } => self.route(
                id,
                &request.method,
                &request.uri,
                &request.headers,
                Some(request.body),
            ),
            Delivery::WsConnect {
                id,
                uri,
                mut headers,
            } => {
                if self.refuse_websocket {
                    let response = Response {
                        status: http::StatusCode::BAD_REQUEST,
                        headers: HeaderMap::new(),
                        body: Bytes::from_static(b"no websocket here"),
                    };
                    self.send(Delivery::WsConnectFailed {
                        ws: id,
                        error: WsConnectError::Rejected(response),
                    });
                    return;
                }
                for (k, v) in [
                    (header::CONNECTION, "Upgrade"),
                    (header::UPGRADE, "websocket"),
                    (header::SEC_WEBSOCKET_VERSION, "13"),
                    (header::SEC_WEBSOCKET_KEY, "dGhlIHNhbXBsZSBub25jZQ=="),
                ] {
                    headers.insert(k, HeaderValue::from_static(v));
                }
                self.pending_ws.insert(id);
                self.route(id, &Method::GET, &uri, &headers, None);
            }
            Delivery::Abort { id } => self.ep.drop_request(id),
            Delivery::ToServerWs { ws, message } => {
                if self.drop_probe && message == WsMessage::Text("2probe".into()) {
                    return;
                }
                if self.ws_open.contains(&ws) {
                    self.ep.ws_message(ws, message);
                }
            }
            Delivery::ToServerWsClose { ws } => {
                if self.ws_open.remove(&ws) {
                    self.ep.ws_closed(ws, TransportEnd::Closed);
                }
                self.pending_ws.remove(&ws);
            }
            _ => unreachable!("client-bound delivery"),
        }
    }

    fn route(
        &mut self,
        id: RequestId,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: Option<Bytes>,
    ) {
        let hs = self
            .ep
            .request(id, method.clone(), &uri.to_string(), headers, body);
        let Some(hs) = hs else {
            return;
        };
        match self.handshakes.clone() {
            Handshakes::Accept => {
                if let Some(sid) = self.ep.accept(hs) {
                    self.accepted.push(sid);
                }
            }
            Handshakes::Reject(rejection) => self.ep.reject(hs, rejection),
            Handshakes::Ignore => {}
        }
    }

    // ------------------------------------------------------------ scenarios

    /// The server process dies and comes back empty: every session is gone, every open
    /// connection is reset. With `down`, it also refuses new connections until cleared.
    pub fn restart_server(&mut self) {
        for (id, _) in std::mem::take(&mut self.ep.outstanding) {
            if self.pending_ws.remove(&id) {
                self.send(Delivery::WsConnectFailed {
                    ws: id,
                    error: WsConnectError::Transport(reset()),
                });
            } else {
                self.send(Delivery::Response {
                    id,
                    result: Err(reset().into()),
                });
            }
        }
        for ws in std::mem::take(&mut self.ws_open) {
            self.send(Delivery::ToClientWsClosed {
                ws,
                end: TransportEnd::Error(reset()),
            });
        }
        self.sessions.clear();
        self.pending_ws.clear();
        self.ep = endpoint(
            &self.server_config,
            1000 + self.accepted.len() as u64,
            self.now,
        );
        self.events_seen = 0;
    }

    // ------------------------------------------------------------ observations

    pub fn client_events(&self) -> Vec<ClientEvent> {
        self.events.iter().map(|(_, e)| e.clone()).collect()
    }

    /// Messages the client application received, as text.
    pub fn client_received(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|(_, e)| match e {
                ClientEvent::Message(m) => Some(show(m)),
                _ => None,
            })
            .collect()
    }

    /// Messages the server application received (all sessions), as text.
    pub fn server_received(&self) -> Vec<String> {
        self.server_events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::Message(m) => Some(show(m)),
                _ => None,
            })
            .collect()
    }

    pub fn server_send(&mut self, sid: Sid, message: impl Into<Message>) {
        self.session(sid).send(message).expect("server send");
        self.drain();
    }

    pub fn session(&mut self, sid: Sid) -> &mut Session {
        self.ep.session_mut(sid).expect("known session")
    }

    /// Whether server session `sid` exists and has not ended.
    pub fn is_live(&self, sid: Sid) -> bool {
        self.ep.sessions.get(&sid).is_some_and(|s| !s.is_closed())
    }

    /// The POSTs the client made: (time, body).
    pub fn posts(&self) -> Vec<(Instant, Bytes)> {
        self.requests
            .iter()
            .filter(|(_, _, r)| r.method == Method::POST)
            .map(|(t, _, r)| (*t, r.body.clone()))
            .collect()
    }

    /// The body the client got for request `id`.
    pub fn response_body(&self, id: RequestId) -> Option<String> {
        self.responses.iter().find_map(|(i, r)| match r {
            Ok(r) if *i == id => Some(r.body_text().into_owned()),
            _ => None,
        })
    }

    pub fn count_events(&self, f: impl Fn(&ClientEvent) -> bool) -> usize {
        self.events.iter().filter(|(_, e)| f(e)).count()
    }
}

pub fn show(m: &Message) -> String {
    match m {
        Message::Text(t) => t.to_string(),
        Message::Binary(b) => format!("<binary {:?}>", &b[..]),
    }
}
