//! Our client (on both runtimes) against a misbehaving server: silence, trickles, bad
//! handshakes, no pings, huge frames and bodies, resets, a lost probe, a server that stops
//! reading, and a `connect` cancelled by the application. The server is the hand-written
//! one of `engineio_tests::fault_server`; every test body is generic over the client's
//! runtime and instantiated for tokio and smol at the end. Every wait is bounded.
#![allow(missing_docs, clippy::disallowed_methods)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use engineio_hyper::Runtime;
use engineio_hyper::client::{Client, ClientConfig, ClientError, ConnectError, ReconnectConfig};
use engineio_proto::client::ClientEvent;
use engineio_proto::{CloseReason, Message, SendError, Transport, TransportError};
use engineio_tests::fault_server::{FaultServer, Frame, Options, Peer, open_packet, rss_bytes};
use tokio::time::timeout;

/// The longest any single step of a test may take.
const WAIT: Duration = Duration::from_secs(10);

fn config(server: &FaultServer, transport: Transport) -> ClientConfig {
    let mut c = ClientConfig::new(&server.url()).unwrap();
    c.transports = vec![transport];
    c.request_timeout = Duration::from_secs(10);
    c
}

const BOTH: [Transport; 2] = [Transport::Polling, Transport::WebSocket];

async fn connect<R: Runtime>(runtime: &R, config: ClientConfig) -> Result<Client<R>, ClientError> {
    timeout(WAIT, Client::connect(runtime.clone(), config))
        .await
        .expect("connect ended in time")
}

/// The next event that is not a message; panics after [`WAIT`].
async fn next_event<R: Runtime>(client: &mut Client<R>) -> Option<ClientEvent> {
    timeout(WAIT, client.next_event())
        .await
        .expect("an event in time")
}

/// Waits until the client ends; the reason of its last session.
async fn ended<R: Runtime>(client: &mut Client<R>) -> Option<CloseReason> {
    timeout(WAIT, client.wait()).await.expect("ended in time")
}

/// Serves a session whose handshake is `open` (on whichever transport is asked),
/// answering POSTs `ok` and holding long-poll GETs for `hold`; WebSocket sessions get
/// `after_open`.
fn session_script(
    open: String,
    hold: Duration,
    after_open: impl Fn(engineio_tests::fault_server::WsPeer) + Send + Sync + 'static,
) -> impl Fn(Peer) + Send + Sync + 'static {
    move |mut peer| {
        while let Some(request) = peer.read_request() {
            if request.is_websocket() {
                let mut ws = peer.accept_websocket(&request);
                ws.send_text(&open);
                after_open(ws);
                return;
            }
            if request.is_handshake() {
                peer.respond(200, "text/plain; charset=UTF-8", open.as_bytes());
            } else if request.method == "POST" {
                peer.respond(200, "text/plain; charset=UTF-8", b"ok");
            } else {
                peer.hold(hold);
                return;
            }
        }
    }
}

// ------------------------------------------------------------------ silence, trickles

async fn silent_server_times_the_handshake_out<R: Runtime>(runtime: R) {
    for transport in BOTH {
        let server = FaultServer::start(|mut peer| {
            if peer.read_request().is_some() {
                peer.hold(Duration::from_secs(5));
            }
        });
        let mut c = config(&server, transport);
        c.request_timeout = Duration::from_millis(300);
        let started = Instant::now();
        let result = connect(&runtime, c).await;
        assert!(
            matches!(result, Err(ClientError::Connect(ConnectError::Timeout(t))) if t == Duration::from_millis(300)),
            "{transport:?}: {result:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(3), "{transport:?}");
    }
}

async fn trickling_server_times_the_handshake_out<R: Runtime>(runtime: R) {
    let open = open_packet("trickle", &[], 25_000, 20_000, 1_000_000);
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n",
        open.len()
    );
    // A head that trickles, and a body that trickles.
    for whole_head in [false, true] {
        let (head, open) = (head.clone(), open.clone());
        let server = FaultServer::start(move |mut peer| {
            if peer.read_request().is_some() {
                if whole_head {
                    peer.write_raw(head.as_bytes());
                    peer.trickle(open.as_bytes(), Duration::from_millis(100));
                } else {
                    peer.trickle(head.as_bytes(), Duration::from_millis(100));
                }
            }
        });
        let mut c = config(&server, Transport::Polling);
        c.request_timeout = Duration::from_millis(400);
        let started = Instant::now();
        let result = connect(&runtime, c).await;
        assert!(
            matches!(result, Err(ClientError::Connect(ConnectError::Timeout(_)))),
            "{result:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(3));
    }
}

// ------------------------------------------------------------------ bad handshakes

async fn bad_handshakes_are_refused_with_typed_errors<R: Runtime>(runtime: R) {
    enum Answer {
        Http(u16, &'static str),
        Raw(&'static [u8]),
        Close,
    }
    type Expected = fn(&ConnectError) -> bool;
    let cases: Vec<(Answer, Expected)> = vec![
        (Answer::Http(200, "garbage"), |e| {
            matches!(e, ConnectError::InvalidHandshake(_))
        }),
        (Answer::Http(200, r#"0{"sid":1}"#), |e| {
            matches!(e, ConnectError::InvalidHandshake(_))
        }),
        (Answer::Http(200, "4hello"), |e| {
            matches!(e, ConnectError::InvalidHandshake(_))
        }),
        (Answer::Http(200, ""), |e| {
            matches!(e, ConnectError::InvalidHandshake(_))
        }),
        (Answer::Http(500, r#"{"code":0,"message":"boom"}"#), |e| {
            matches!(e, ConnectError::Refused { status, code: Some(0), message: Some(m), .. }
                if status.as_u16() == 500 && m == "boom")
        }),
        (Answer::Raw(b"SSH-2.0-OpenSSH\r\n\r\n"), |e| {
            matches!(e, ConnectError::Transport(TransportError::Io(_)))
        }),
        (Answer::Close, |e| {
            matches!(e, ConnectError::Transport(TransportError::Reset(_)))
        }),
    ];
    for (answer, expected) in cases {
        let answer = Arc::new(answer);
        let a = Arc::clone(&answer);
        let server = FaultServer::start(move |mut peer| {
            if peer.read_request().is_some() {
                match &*a {
                    Answer::Http(status, body) => {
                        peer.respond(*status, "text/plain", body.as_bytes())
                    }
                    Answer::Raw(bytes) => peer.write_raw(bytes),
                    Answer::Close => return peer.close(),
                }
                peer.hold(Duration::from_secs(2));
            }
        });
        let started = Instant::now();
        match connect(&runtime, config(&server, Transport::Polling)).await {
            Err(ClientError::Connect(e)) => assert!(expected(&e), "{e:?}"),
            other => panic!("{other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(3));
    }
    // Over WebSocket: an upgrade answered with an HTTP error, and a first message that is
    // not the open packet.
    let server = FaultServer::start(|mut peer| {
        if peer.read_request().is_some() {
            peer.respond(
                400,
                "application/json",
                br#"{"code":3,"message":"Bad request"}"#,
            );
        }
    });
    match connect(&runtime, config(&server, Transport::WebSocket)).await {
        Err(ClientError::Connect(ConnectError::Refused { status, code, .. })) => {
            assert_eq!((status.as_u16(), code), (400, Some(3)));
        }
        other => panic!("{other:?}"),
    }
    for first in [Frame::Text("4hello".into()), Frame::Binary(vec![1, 2, 3])] {
        let first = Arc::new(first);
        let f = Arc::clone(&first);
        let server = FaultServer::start(move |mut peer| {
            if let Some(request) = peer.read_request() {
                let mut ws = peer.accept_websocket(&request);
                match &*f {
                    Frame::Text(t) => ws.send_text(t),
                    Frame::Binary(b) => ws.send_frame(0x2, b),
                    _ => {}
                }
                ws.hold(Duration::from_secs(2));
            }
        });
        match connect(&runtime, config(&server, Transport::WebSocket)).await {
            Err(ClientError::Connect(ConnectError::InvalidHandshake(_))) => {}
            other => panic!("{first:?}: {other:?}"),
        }
    }
}

// ------------------------------------------------------------------ heartbeat

async fn a_server_that_never_pings_is_timed_out<R: Runtime>(runtime: R) {
    for transport in BOTH {
        let open = open_packet("silent", &[], 200, 100, 1_000_000);
        let server = FaultServer::start(session_script(open, Duration::from_secs(3), |mut ws| {
            ws.hold(Duration::from_secs(3))
        }));
        let started = Instant::now();
        let mut client = connect(&runtime, config(&server, transport)).await.unwrap();
        assert_eq!(
            next_event(&mut client).await,
            Some(ClientEvent::Disconnected(CloseReason::PingTimeout)),
            "{transport:?}"
        );
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_secs(3),
            "{transport:?}: {took:?}"
        );
    }
}

// ------------------------------------------------------------------ huge frames

async fn a_100_mb_frame_ends_the_connection_without_buffering_it<R: Runtime>(runtime: R) {
    let open = open_packet("huge", &[], 25_000, 20_000, 1_000_000);
    let server = FaultServer::start(session_script(open, Duration::from_secs(3), |mut ws| {
        // A text frame announcing 100 MB, then 1 MB of it, then nothing.
        ws.send_header(0x1, 100_000_000);
        ws.write_raw(&vec![b'a'; 1_000_000]);
        ws.hold(Duration::from_secs(3));
    }));
    let rss = rss_bytes();
    let mut client = connect(&runtime, config(&server, Transport::WebSocket))
        .await
        .unwrap();
    let started = Instant::now();
    let reason = ended(&mut client).await;
    assert!(
        matches!(reason, Some(CloseReason::PayloadTooLarge { size, limit }) if size > limit),
        "{reason:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    if let (Some(before), Some(after)) = (rss, rss_bytes()) {
        eprintln!(
            "RSS before {} MB, after a 100 MB frame {} MB",
            before >> 20,
            after >> 20
        );
    }
}

// ------------------------------------------------------------------ resets

async fn a_reset_websocket_is_a_transport_error<R: Runtime>(runtime: R) {
    let open = open_packet("reset", &[], 25_000, 20_000, 1_000_000);
    let server = FaultServer::start(session_script(open, Duration::from_secs(3), |mut ws| {
        ws.hold(Duration::from_millis(100));
        ws.reset();
    }));
    let mut client = connect(&runtime, config(&server, Transport::WebSocket))
        .await
        .unwrap();
    let reason = ended(&mut client).await;
    assert!(
        matches!(&reason, Some(CloseReason::TransportError(TransportError::Reset(e)))
            if e.kind() == std::io::ErrorKind::ConnectionReset),
        "{reason:?}"
    );
    // A WebSocket dropped without a close frame (FIN, no closing handshake) is abnormal
    // too (RFC 6455 1006).
    let open = open_packet("fin", &[], 25_000, 20_000, 1_000_000);
    let server = FaultServer::start(session_script(open, Duration::from_secs(3), |mut ws| {
        ws.hold(Duration::from_millis(100));
        ws.close();
    }));
    let mut client = connect(&runtime, config(&server, Transport::WebSocket))
        .await
        .unwrap();
    let reason = ended(&mut client).await;
    assert!(
        matches!(&reason, Some(CloseReason::TransportError(TransportError::Reset(e)))
            if e.kind() == std::io::ErrorKind::UnexpectedEof),
        "{reason:?}"
    );
    // A close frame is a clean close.
    let open = open_packet("clean", &[], 25_000, 20_000, 1_000_000);
    let server = FaultServer::start(session_script(open, Duration::from_secs(3), |mut ws| {
        ws.send_frame(0x8, &1000u16.to_be_bytes());
        ws.wait_closed(Duration::from_secs(2));
    }));
    let mut client = connect(&runtime, config(&server, Transport::WebSocket))
        .await
        .unwrap();
    assert_eq!(ended(&mut client).await, Some(CloseReason::TransportClose));
}

async fn a_reset_long_poll_is_a_transport_error<R: Runtime>(runtime: R) {
    let open = open_packet("reset", &[], 25_000, 20_000, 1_000_000);
    let server = FaultServer::start(move |mut peer| {
        while let Some(request) = peer.read_request() {
            if request.is_handshake() {
                peer.respond(200, "text/plain", open.as_bytes());
            } else {
                peer.hold(Duration::from_millis(100));
                return peer.reset();
            }
        }
    });
    let mut client = connect(&runtime, config(&server, Transport::Polling))
        .await
        .unwrap();
    let reason = ended(&mut client).await;
    assert!(
        matches!(
            reason,
            Some(CloseReason::TransportError(TransportError::Reset(_)))
        ),
        "{reason:?}"
    );
}

/// A server closes an idle keep-alive connection just as the client sends a request on it
/// (Node's `keepAliveTimeout` is 5 s, gunicorn's 2 s): the request was never read, so it
/// is sent again, once, on a new connection, and the session goes on.
async fn a_request_on_a_keep_alive_connection_the_server_closed_is_sent_again<R: Runtime>(
    runtime: R,
) {
    request_on_a_connection_that_goes_away_is_sent_again(runtime, false).await;
}

/// The same when the server resets the kept-alive connection (the client may be writing
/// the body then: "error writing a body to connection", seen against Node).
async fn a_request_on_a_keep_alive_connection_the_server_reset_is_sent_again<R: Runtime>(
    runtime: R,
) {
    request_on_a_connection_that_goes_away_is_sent_again(runtime, true).await;
}

async fn request_on_a_connection_that_goes_away_is_sent_again<R: Runtime>(runtime: R, reset: bool) {
    let open = open_packet("idle", &[], 25_000, 20_000, 1_000_000);
    let first = Arc::new(AtomicBool::new(true));
    let server = FaultServer::start(move |mut peer| {
        let closes_under_a_request = first.swap(false, Ordering::SeqCst);
        while let Some(request) = peer.read_request() {
            if request.is_handshake() {
                peer.respond(200, "text/plain", open.as_bytes());
            } else if closes_under_a_request {
                // The request on the kept-alive connection arrives as it goes away.
                return if reset { peer.reset() } else { peer.close() };
            } else if request.method == "GET" {
                peer.respond(200, "text/plain", b"4hello");
                peer.hold(Duration::from_secs(5));
                return;
            } else {
                peer.respond(200, "text/plain", b"ok");
            }
        }
    });
    let mut client = connect(&runtime, config(&server, Transport::Polling))
        .await
        .unwrap();
    let message = timeout(WAIT, client.recv())
        .await
        .expect("a message in time");
    assert_eq!(message, Some(Message::from("hello")));
    assert!(
        server.connections() >= 2,
        "{} connections",
        server.connections()
    );
}

// ------------------------------------------------------------------ upgrade

async fn a_lost_probe_leaves_the_session_on_polling<R: Runtime>(runtime: R) {
    let posts = Arc::new(Mutex::new(Vec::<Vec<u8>>::new()));
    let probe_closed = Arc::new(AtomicBool::new(false));
    let open = open_packet("probe", &["websocket"], 25_000, 20_000, 1_000_000);
    let server = {
        let (posts, probe_closed) = (Arc::clone(&posts), Arc::clone(&probe_closed));
        FaultServer::start(move |mut peer| {
            while let Some(request) = peer.read_request() {
                if request.is_websocket() {
                    let mut ws = peer.accept_websocket(&request);
                    // The probe is read and never answered.
                    assert_eq!(ws.read_text().as_deref(), Some("2probe"));
                    if ws.wait_closed(Duration::from_secs(5)) {
                        probe_closed.store(true, Ordering::SeqCst);
                    }
                    return;
                }
                if request.is_handshake() {
                    peer.respond(200, "text/plain", open.as_bytes());
                } else if request.method == "POST" {
                    posts.lock().unwrap().push(request.body.clone());
                    peer.respond(200, "text/plain", b"ok");
                } else {
                    peer.hold(Duration::from_secs(3));
                    return;
                }
            }
        })
    };
    let mut c = config(&server, Transport::Polling);
    c.transports = vec![Transport::Polling, Transport::WebSocket];
    c.upgrade_timeout = Duration::from_millis(300);
    let mut client = connect(&runtime, c).await.unwrap();
    let waited = Instant::now();
    while waited.elapsed() < Duration::from_millis(600) {
        if let Ok(event) = timeout(Duration::from_millis(50), client.next_event()).await {
            assert!(!matches!(event, Some(ClientEvent::Upgraded)), "{event:?}");
        }
    }
    assert_eq!(client.transport(), Some(Transport::Polling));
    client.send("still polling").unwrap();
    for _ in 0..200 {
        if !posts.lock().unwrap().is_empty() && probe_closed.load(Ordering::SeqCst) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(*posts.lock().unwrap(), [b"4still polling".to_vec()]);
    assert!(
        probe_closed.load(Ordering::SeqCst),
        "the probe WebSocket is closed"
    );
}

// ------------------------------------------------------------------ back-pressure

/// What the reading side of a "stops reading" server saw once it read again.
#[derive(Default)]
struct Received {
    messages: AtomicUsize,
    bytes: AtomicUsize,
    in_order: AtomicBool,
    done: AtomicBool,
    /// The server's reading ended (the client closed, or a frame it could not parse).
    reader_ended: AtomicBool,
}

/// The client sends 64 KiB messages to a server that does not read: `send` must refuse
/// with `QueueFull` (handing the message back) within the configured bounds, keep
/// refusing while the server does not read, and everything accepted must arrive in order
/// once the server reads again.
async fn a_server_that_stops_reading_pushes_back<R: Runtime>(
    runtime: R,
    transport: Transport,
    bound: Bound,
) {
    const SIZE: usize = 64 * 1024;
    let resume = Arc::new(AtomicBool::new(false));
    let received = Arc::new(Received::default());
    let open = open_packet("stuck", &[], 60_000, 60_000, 100_000_000);
    let server = {
        let (resume, received) = (Arc::clone(&resume), Arc::clone(&received));
        FaultServer::start_with(
            Options {
                recv_buffer: Some(4096),
            },
            move |mut peer| {
                let check = |data: &[u8], received: &Received| {
                    let seq = received.messages.fetch_add(1, Ordering::SeqCst);
                    let got = data
                        .get(..8)
                        .map(|b| u64::from_be_bytes(b.try_into().unwrap()));
                    if got != Some(seq as u64) {
                        received.in_order.store(false, Ordering::SeqCst);
                    }
                    received.bytes.fetch_add(data.len(), Ordering::SeqCst);
                };
                received.in_order.store(true, Ordering::SeqCst);
                while let Some(request) = peer.read_request() {
                    if request.is_websocket() {
                        let mut ws = peer.accept_websocket(&request);
                        ws.send_text(&open);
                        let until = Instant::now() + WAIT;
                        while !resume.load(Ordering::SeqCst) && Instant::now() < until {
                            ws.hold(Duration::from_millis(10));
                        }
                        while let Some(frame) = ws.read_frame() {
                            match frame {
                                Frame::Binary(b) => check(&b, &received),
                                Frame::Text(t) if t == "4done" => {
                                    received.done.store(true, Ordering::SeqCst);
                                }
                                _ => {}
                            }
                        }
                        received.reader_ended.store(true, Ordering::SeqCst);
                        return;
                    }
                    if request.is_handshake() {
                        peer.respond(200, "text/plain", open.as_bytes());
                    } else if request.method == "POST" {
                        let until = Instant::now() + WAIT;
                        while !resume.load(Ordering::SeqCst) && Instant::now() < until {
                            peer.hold(Duration::from_millis(10));
                        }
                        let body = String::from_utf8_lossy(&request.body).into_owned();
                        for packet in body.split('\u{1e}') {
                            if packet == "4done" {
                                received.done.store(true, Ordering::SeqCst);
                            } else if let Some(b64) = packet.strip_prefix('b') {
                                let data = base64_decode(b64);
                                check(&data, &received);
                            }
                        }
                        peer.respond(200, "text/plain", b"ok");
                    } else {
                        peer.hold(Duration::from_secs(5));
                        return;
                    }
                }
            },
        )
    };
    let mut c = config(&server, transport);
    match bound {
        Bound::Messages => c.max_queued_messages = 64,
        Bound::Bytes => c.max_queued_bytes = 1 << 20,
    }
    let client = connect(&runtime, c).await.unwrap();
    let rss_before = rss_bytes();
    let mut accepted = 0usize;
    let mut refused_since: Option<Instant> = None;
    let started = Instant::now();
    let mut refusals = 0;
    // At most 128 MiB offered; stop once `send` kept refusing for half a second.
    while accepted < 2048 && started.elapsed() < WAIT {
        // Not zeroes: the pages are really touched, so RSS shows what is held.
        let mut message = vec![0x5au8; SIZE];
        message[..8].copy_from_slice(&(accepted as u64).to_be_bytes());
        let message = Message::from(message);
        match client.send(message.clone()) {
            Ok(()) => {
                accepted += 1;
                refused_since = None;
            }
            Err(SendError::QueueFull { message: back, .. }) => {
                assert_eq!(back, message, "the refused message is handed back");
                refusals += 1;
                let since = *refused_since.get_or_insert_with(Instant::now);
                if since.elapsed() > Duration::from_millis(500) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err(e) => panic!("{e:?}"),
        }
        if accepted.is_multiple_of(16) {
            // Let the driver write what it can.
            tokio::task::yield_now().await;
        }
    }
    let rss_full = rss_bytes();
    if let (Some(a), Some(b)) = (rss_before, rss_full) {
        eprintln!(
            "{transport:?}, {bound:?}: {accepted} messages of 64 KiB accepted before send \
             pushed back ({refusals} refusals); RSS {} MB -> {} MB",
            a >> 20,
            b >> 20
        );
    }
    assert!(
        refused_since.is_some_and(|s| s.elapsed() > Duration::from_millis(500)),
        "{transport:?}: send never pushed back ({accepted} messages accepted)"
    );
    // The queue's bound, plus what the socket buffers (the kernel's send buffer, the
    // WebSocket library's write buffer): a few MB at most.
    let bound_messages = match bound {
        Bound::Messages => 64,
        Bound::Bytes => 16,
    };
    assert!(
        accepted >= bound_messages && accepted < bound_messages + 160,
        "{transport:?}: {accepted} messages of 64 KiB accepted by a server that does not read"
    );
    // The server reads again: everything accepted arrives, in order, then `done`.
    resume.store(true, Ordering::SeqCst);
    let deadline = Instant::now() + WAIT;
    loop {
        match client.send("done") {
            Ok(()) => break,
            Err(SendError::QueueFull { .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => panic!("{e:?}"),
        }
    }
    for _ in 0..1000 {
        if received.done.load(Ordering::SeqCst) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    if !received.done.load(Ordering::SeqCst) {
        let messages = received.messages.load(Ordering::SeqCst);
        let reader_ended = received.reader_ended.load(Ordering::SeqCst);
        let mut client = client;
        let event = timeout(Duration::from_millis(200), client.next_event()).await;
        panic!(
            "{transport:?}: `done` not received; {messages} of {accepted} messages arrived, \
             the server's reading ended: {reader_ended}, the client's next event: {event:?}"
        );
    }
    assert_eq!(received.messages.load(Ordering::SeqCst), accepted);
    assert_eq!(received.bytes.load(Ordering::SeqCst), accepted * SIZE);
    assert!(received.in_order.load(Ordering::SeqCst));
    drop(client);
}

fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.bytes().filter(|&c| c != b'=') {
        let v = ALPHABET.iter().position(|&a| a == c).unwrap_or(0) as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

// ------------------------------------------------------------------ cancelled connect

async fn a_cancelled_connect_stops_reconnecting<R: Runtime>(runtime: R) {
    let server = FaultServer::start(|mut peer| {
        while peer.read_request().is_some() {
            peer.respond(500, "application/json", br#"{"code":0,"message":"down"}"#);
        }
    });
    let mut c = config(&server, Transport::Polling);
    let mut r = ReconnectConfig::default();
    r.initial_delay = Duration::from_millis(10);
    r.max_delay = Duration::from_millis(20);
    r.randomization_factor = 0.0;
    c.reconnect = Some(r);
    // The usual pattern: a timeout around `connect`.
    let attempt = timeout(
        Duration::from_millis(300),
        Client::connect(runtime.clone(), c),
    )
    .await;
    assert!(attempt.is_err(), "the server never accepts");
    assert!(server.requests() >= 3, "{} attempts", server.requests());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after_cancel = server.requests();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        server.requests(),
        after_cancel,
        "the dropped connect went on reconnecting"
    );
}

async fn a_cancelled_connect_closes_its_connection<R: Runtime>(runtime: R) {
    for transport in BOTH {
        let server = FaultServer::start(|mut peer| {
            if peer.read_request().is_some() {
                peer.wait_closed(Duration::from_secs(8));
            }
        });
        let mut c = config(&server, transport);
        c.request_timeout = Duration::from_secs(20);
        let attempt = timeout(
            Duration::from_millis(200),
            Client::connect(runtime.clone(), c),
        )
        .await;
        assert!(attempt.is_err());
        let dropped = Instant::now();
        while server.peer_closed() == 0 && dropped.elapsed() < Duration::from_secs(3) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(
            server.peer_closed(),
            1,
            "{transport:?}: the abandoned handshake's connection is still open after {:?}",
            dropped.elapsed()
        );
    }
}

/// The race: `connect` dropped at any moment (before the handshake, during it, just as the
/// session opens, during the upgrade) or the client dropped right after, 40 times per
/// transport mode: every connection the client opened must be closed soon after.
async fn a_connect_cancelled_at_any_moment_leaves_no_connection<R: Runtime>(runtime: R) {
    let open = open_packet("race", &["websocket"], 25_000, 20_000, 1_000_000);
    let server = FaultServer::start(move |mut peer| {
        while let Some(request) = peer.read_request() {
            if request.is_websocket() {
                let mut ws = peer.accept_websocket(&request);
                if request.is_handshake() {
                    ws.send_text(&open);
                } else if ws.read_text().as_deref() == Some("2probe") {
                    ws.send_text("3probe");
                }
                ws.wait_closed(Duration::from_secs(8));
                return;
            }
            if request.is_handshake() {
                peer.respond(200, "text/plain", open.as_bytes());
            } else if request.method == "POST" {
                peer.respond(200, "text/plain", b"ok");
            } else {
                peer.wait_closed(Duration::from_secs(8));
                return;
            }
        }
    });
    let modes = [
        vec![Transport::Polling],
        vec![Transport::WebSocket],
        vec![Transport::Polling, Transport::WebSocket],
    ];
    for transports in modes {
        let (mut opened, mut cancelled) = (0, 0);
        for i in 0..40u64 {
            let mut c = config(&server, Transport::Polling);
            c.transports = transports.clone();
            let delay = Duration::from_micros(i * 100);
            match timeout(delay, Client::connect(runtime.clone(), c)).await {
                Ok(Ok(client)) => {
                    opened += 1;
                    drop(client);
                }
                Ok(Err(e)) => panic!("{transports:?}: {e}"),
                Err(_) => cancelled += 1,
            }
        }
        eprintln!("{transports:?}: {opened} opened then dropped, {cancelled} cancelled");
        assert!(cancelled > 0, "no attempt was cancelled");
        let waited = Instant::now();
        while server.open_connections() > 0 && waited.elapsed() < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(
            server.open_connections(),
            0,
            "{transports:?}: connections still open {:?} after the last attempt",
            waited.elapsed()
        );
    }
}

// ------------------------------------------------------------------ body limits

async fn an_oversized_handshake_is_refused_from_its_content_length<R: Runtime>(runtime: R) {
    let server = FaultServer::start(|mut peer| {
        if peer.read_request().is_some() {
            peer.write_raw(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 300000000\r\n\r\n0",
            );
            peer.wait_closed(Duration::from_secs(8));
        }
    });
    let started = Instant::now();
    let result = connect(&runtime, config(&server, Transport::Polling)).await;
    let took = started.elapsed();
    assert_eq!(
        result.unwrap_err(),
        ClientError::Connect(ConnectError::ResponseTooLarge {
            size: 300_000_000,
            limit: 64 * 1024
        })
    );
    assert!(
        took < Duration::from_secs(2),
        "refused after {took:?}, not from the header"
    );
}

async fn an_oversized_poll_is_refused_from_its_content_length<R: Runtime>(runtime: R) {
    let open = open_packet("big", &[], 25_000, 20_000, 1_000_000);
    let server = FaultServer::start(move |mut peer| {
        while let Some(request) = peer.read_request() {
            if request.is_handshake() {
                peer.respond(200, "text/plain", open.as_bytes());
            } else {
                peer.write_raw(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 200000000\r\n\r\n4",
                );
                peer.wait_closed(Duration::from_secs(8));
                return;
            }
        }
    });
    let mut client = connect(&runtime, config(&server, Transport::Polling))
        .await
        .unwrap();
    let started = Instant::now();
    let reason = ended(&mut client).await;
    assert_eq!(
        reason,
        Some(CloseReason::PayloadTooLarge {
            size: 200_000_000,
            limit: 16 << 20
        })
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

async fn an_endless_chunked_handshake_is_cut_at_the_limit<R: Runtime>(runtime: R) {
    let server = FaultServer::start(|mut peer| {
        if peer.read_request().is_some() {
            peer.write_raw(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n",
            );
            let chunk = format!("10000\r\n{}\r\n", "a".repeat(0x10000));
            // 4 MiB, then nothing more.
            for _ in 0..64 {
                peer.write_raw(chunk.as_bytes());
            }
            peer.wait_closed(Duration::from_secs(8));
        }
    });
    let started = Instant::now();
    let result = connect(&runtime, config(&server, Transport::Polling)).await;
    assert!(
        matches!(result, Err(ClientError::Connect(ConnectError::ResponseTooLarge { size, limit: 65536 }))
            if size > 65536 && size <= 65536 + 0x10000),
        "{result:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

// ------------------------------------------------------------------ both runtimes

macro_rules! both_runtimes {
    ($($name:ident;)*) => {
        mod tokio_client {

            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(engineio_tokio::Tokio).await
                }
            )*
        }
        mod smol_client {

            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(engineio_smol::Smol).await
                }
            )*
        }
    };
}

/// Which of the queue's bounds a test runs into.
#[derive(Debug, Clone, Copy)]
enum Bound {
    /// `max_queued_messages` (64).
    Messages,
    /// `max_queued_bytes` (1 MiB: 16 messages of 64 KiB).
    Bytes,
}

async fn a_websocket_server_that_stops_reading_pushes_back<R: Runtime>(runtime: R) {
    a_server_that_stops_reading_pushes_back(runtime, Transport::WebSocket, Bound::Messages).await;
}

async fn a_websocket_server_that_stops_reading_pushes_back_in_bytes<R: Runtime>(runtime: R) {
    a_server_that_stops_reading_pushes_back(runtime, Transport::WebSocket, Bound::Bytes).await;
}

async fn a_polling_server_that_stops_reading_pushes_back<R: Runtime>(runtime: R) {
    a_server_that_stops_reading_pushes_back(runtime, Transport::Polling, Bound::Messages).await;
}

async fn a_polling_server_that_stops_reading_pushes_back_in_bytes<R: Runtime>(runtime: R) {
    a_server_that_stops_reading_pushes_back(runtime, Transport::Polling, Bound::Bytes).await;
}

both_runtimes! {
    silent_server_times_the_handshake_out;
    trickling_server_times_the_handshake_out;
    bad_handshakes_are_refused_with_typed_errors;
    a_server_that_never_pings_is_timed_out;
    a_100_mb_frame_ends_the_connection_without_buffering_it;
    a_reset_websocket_is_a_transport_error;
    a_reset_long_poll_is_a_transport_error;
    a_request_on_a_keep_alive_connection_the_server_closed_is_sent_again;
    a_request_on_a_keep_alive_connection_the_server_reset_is_sent_again;
    a_lost_probe_leaves_the_session_on_polling;
    a_websocket_server_that_stops_reading_pushes_back;
    a_websocket_server_that_stops_reading_pushes_back_in_bytes;
    a_polling_server_that_stops_reading_pushes_back;
    a_polling_server_that_stops_reading_pushes_back_in_bytes;
    a_cancelled_connect_stops_reconnecting;
    a_cancelled_connect_closes_its_connection;
    a_connect_cancelled_at_any_moment_leaves_no_connection;
    an_oversized_handshake_is_refused_from_its_content_length;
    an_oversized_poll_is_refused_from_its_content_length;
    an_endless_chunked_handshake_is_cut_at_the_limit;
}
