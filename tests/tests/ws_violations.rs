//! WebSocket protocol errors are answered with a close frame saying why (RFC 6455 7.1.7,
//! 7.4.1): 1002 for framing violations, 1007 for invalid UTF-8, 1009 for a message over
//! the limit. Raw frames written by hand over a real socket, on both bindings.
#![allow(missing_docs, clippy::disallowed_methods)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use engineio_hyper::server::{Config, ConnectRequest, Handler, Rejection, Socket};
use engineio_proto::{CloseReason, Message, ProtocolError, WsViolation};
use engineio_tests::binding::{Binding, SmolBinding, TokioBinding, engine};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

#[derive(Default)]
struct Recorder(Mutex<Vec<CloseReason>>);

struct Echo(Arc<Recorder>);

impl Handler for Echo {
    type Data = ();
    async fn on_connect(&self, _: &ConnectRequest<'_>) -> Result<(), Rejection> {
        Ok(())
    }
    fn on_message(&self, socket: &Socket<()>, message: Message) {
        let _ = socket.send(message);
    }
    fn on_disconnect(&self, _: &Socket<()>, reason: &CloseReason) {
        self.0.0.lock().unwrap().push(reason.clone());
    }
}

/// A frame: FIN + `first` bits and opcode, masked unless `unmasked`.
fn frame(first: u8, payload: &[u8], unmasked: bool) -> Vec<u8> {
    let mut f = vec![first];
    let mask_bit = if unmasked { 0 } else { 0x80 };
    match payload.len() {
        n if n < 126 => f.push(mask_bit | n as u8),
        n => {
            f.push(mask_bit | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
    }
    if unmasked {
        f.extend_from_slice(payload);
    } else {
        let key = [0x11u8, 0x22, 0x33, 0x44];
        f.extend_from_slice(&key);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    }
    f
}

/// Opens a WebSocket session by hand; returns the stream after the open packet.
async fn open(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET /engine.io/?EIO=4&transport=websocket HTTP/1.1\r\nhost: {addr}\r\nconnection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    // The 101 head, then the open packet frame.
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") {
        timeout(Duration::from_secs(5), s.read_exact(&mut byte))
            .await
            .unwrap()
            .unwrap();
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{head:?}");
    let (op, payload) = read_frame(&mut s).await.expect("open packet");
    assert_eq!(op, 1);
    assert!(payload.starts_with(b"0{"));
    s
}

/// Reads one server frame: (opcode, payload), or `None` at the end of the stream.
async fn read_frame(s: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let mut h = [0u8; 2];
    timeout(Duration::from_secs(5), s.read_exact(&mut h))
        .await
        .expect("a frame in time")
        .ok()?;
    let mut len = u64::from(h[1] & 0x7f);
    if len == 126 {
        let mut b = [0u8; 2];
        s.read_exact(&mut b).await.ok()?;
        len = u64::from(u16::from_be_bytes(b));
    } else if len == 127 {
        let mut b = [0u8; 8];
        s.read_exact(&mut b).await.ok()?;
        len = u64::from_be_bytes(b);
    }
    let mut payload = vec![0u8; len as usize];
    s.read_exact(&mut payload).await.ok()?;
    Some((h[0] & 0x0f, payload))
}

/// The close code the server answers `bytes` with.
async fn close_code_for<B: Binding>(bytes: Vec<u8>, config: Config) -> (u16, Vec<CloseReason>) {
    let recorder = Arc::new(Recorder::default());
    let engine = engine::<B, _>(Echo(recorder.clone()), config);
    let addr = B::serve(engine.clone());
    let mut s = open(addr).await;
    s.write_all(&bytes).await.unwrap();
    let code = loop {
        match read_frame(&mut s).await {
            Some((8, payload)) => {
                assert!(payload.len() >= 2, "a close frame with a code");
                break u16::from_be_bytes([payload[0], payload[1]]);
            }
            Some(_) => continue,
            None => panic!("the stream ended without a close frame"),
        }
    };
    engineio_tests::net::wait_until(|| engine.count() == 0).await;
    let reasons = recorder.0.lock().unwrap().clone();
    (code, reasons)
}

async fn violations_get_1002_or_1007<B: Binding>() {
    let violation = |v| vec![CloseReason::ParseError(ProtocolError::WebSocket(v))];
    let cases: Vec<(&str, Vec<u8>, u16, Vec<CloseReason>)> = vec![
        // The framing library (yawc) reports an unmasked frame and a continuation
        // without a message with one error: the session hears `Other` for both.
        (
            "unmasked",
            frame(0x81, b"4hi", true),
            1002,
            violation(WsViolation::Other),
        ),
        (
            "RSV1 without an extension",
            frame(0xc1, b"4hi", false),
            1002,
            violation(WsViolation::ReservedBits),
        ),
        // The framing library closes a violation itself, before the session can: for
        // an opcode it does not know with 1003 (the session's choice would be 1002).
        (
            "reserved data opcode",
            frame(0x83, b"4hi", false),
            1003,
            violation(WsViolation::ReservedOpcode),
        ),
        (
            "reserved control opcode",
            frame(0x8b, b"", false),
            1003,
            violation(WsViolation::ReservedOpcode),
        ),
        (
            "fragmented ping",
            frame(0x09, b"x", false),
            1002,
            violation(WsViolation::BadControlFrame),
        ),
        (
            "ping over 125 bytes",
            frame(0x89, &[0u8; 126], false),
            1002,
            violation(WsViolation::BadControlFrame),
        ),
        (
            "continuation without a message",
            frame(0x80, b"x", false),
            1002,
            violation(WsViolation::Other),
        ),
        (
            "invalid UTF-8 text",
            frame(0x81, &[b'4', 0xff, 0xfe], false),
            1007,
            violation(WsViolation::InvalidUtf8),
        ),
    ];
    for (name, bytes, code, reasons) in cases {
        let (got, why) = close_code_for::<B>(bytes, Config::default()).await;
        assert_eq!(got, code, "{name} on {}", B::NAME);
        assert_eq!(why, reasons, "{name} on {}", B::NAME);
    }
}

async fn a_message_over_the_limit_gets_1009<B: Binding>() {
    let mut config = Config::default();
    config.engine.max_payload = 100;
    // Larger than the WebSocket library's own cut-off (max_payload + 1): the library
    // stops reading, and the session still says why.
    let (code, reasons) = close_code_for::<B>(frame(0x82, &[7u8; 500], false), config).await;
    assert_eq!(code, 1009);
    assert!(
        matches!(
            reasons[..],
            [CloseReason::PayloadTooLarge { limit: 100, .. }]
        ),
        "{reasons:?}"
    );
}

macro_rules! for_each_binding {
    ($($name:ident),* $(,)?) => {
        mod tokio_binding {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name::<super::TokioBinding>().await
                }
            )*
        }
        mod smol_binding {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name::<super::SmolBinding>().await
                }
            )*
        }
    };
}

for_each_binding!(
    violations_get_1002_or_1007,
    a_message_over_the_limit_gets_1009
);
