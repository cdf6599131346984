//! The mio example server over real sockets: HTTP/1.1 framing (keep-alive, pipelining,
//! bodies in pieces, chunked bodies, bodies over the limit) and a WebSocket peer that
//! stops reading. The interop matrix covers the protocol against the real peers; these
//! cover what the example itself moves.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// The example server, started on a free port and killed (by its PID) when dropped.
struct ServerProcess {
    child: Child,
    addr: SocketAddr,
}

impl ServerProcess {
    fn start(args: &[&str]) -> ServerProcess {
        let bin = env!("CARGO_BIN_EXE_mio_server");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(bin)
            .args(["--port", &port.to_string()])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mio_server");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "mio_server did not listen within 10 s"
            );
            sleep(Duration::from_millis(20));
        }
        ServerProcess { child, addr }
    }

    fn connect(&self) -> TcpStream {
        let tcp = TcpStream::connect(self.addr).expect("connect");
        tcp.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        tcp
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One response read off a connection: status, headers (lowercase names), body.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Reads exactly one response (bodies by `Content-Length`, as the server sends them),
/// keeping what follows it in `buf`.
fn read_reply(tcp: &mut TcpStream, buf: &mut Vec<u8>) -> Reply {
    loop {
        let mut raw = [httparse::EMPTY_HEADER; 32];
        let mut res = httparse::Response::new(&mut raw);
        if let Ok(httparse::Status::Complete(head)) = res.parse(buf) {
            let headers: Vec<(String, String)> = res
                .headers
                .iter()
                .map(|h| {
                    let value = String::from_utf8_lossy(h.value).into_owned();
                    (h.name.to_ascii_lowercase(), value)
                })
                .collect();
            let status = res.code.expect("a status");
            let len: usize = headers
                .iter()
                .find(|(n, _)| n == "content-length")
                .map_or(0, |(_, v)| v.parse().expect("a length"));
            if buf.len() >= head + len {
                let body = buf[head..head + len].to_vec();
                buf.drain(..head + len);
                return Reply {
                    status,
                    headers,
                    body,
                };
            }
        }
        let mut chunk = [0u8; 64 * 1024];
        let n = tcp.read(&mut chunk).expect("a response within 5 s");
        assert!(n > 0, "the connection ended before a whole response");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Whether the peer closed the connection (EOF or reset) within `within`.
fn closed_within(tcp: &mut TcpStream, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    tcp.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let mut chunk = [0u8; 64 * 1024];
    while Instant::now() < deadline {
        match tcp.read(&mut chunk) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return true,
        }
    }
    false
}

fn handshake(tcp: &mut TcpStream, buf: &mut Vec<u8>) -> String {
    tcp.write_all(b"GET /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nhost: x\r\n\r\n")
        .expect("write");
    let reply = read_reply(tcp, buf);
    assert_eq!(reply.status, 200, "{}", reply.text());
    let open = reply.text();
    let sid = open
        .split("\"sid\":\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a sid in the open packet");
    sid.to_owned()
}

#[test]
fn keep_alive_and_pipelined_requests_are_answered_in_order() {
    let server = ServerProcess::start(&[]);
    let mut tcp = server.connect();
    let mut buf = Vec::new();
    // Three requests in one write: a handshake, a path that is not Engine.IO, and a v3
    // handshake the proto refuses. One connection, three answers, in order.
    tcp.write_all(
        b"GET /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nhost: x\r\n\r\n\
          GET /nothing-here HTTP/1.1\r\nhost: x\r\n\r\n\
          GET /engine.io/?EIO=3&transport=polling HTTP/1.1\r\nhost: x\r\n\r\n",
    )
    .expect("write");
    let first = read_reply(&mut tcp, &mut buf);
    assert_eq!(first.status, 200);
    assert!(first.text().starts_with("0{\"sid\":"), "{}", first.text());
    let second = read_reply(&mut tcp, &mut buf);
    assert_eq!((second.status, second.text().as_str()), (404, "Not Found"));
    let third = read_reply(&mut tcp, &mut buf);
    assert_eq!(third.status, 400);
    assert!(third.text().contains("\"code\":5"), "{}", third.text());
    // `Connection: close` is answered, then the connection ends.
    tcp.write_all(b"GET /nothing-here HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .expect("write");
    let last = read_reply(&mut tcp, &mut buf);
    assert_eq!(last.header("connection"), Some("close"));
    assert!(closed_within(&mut tcp, Duration::from_secs(2)));
    // Not HTTP: 400, then closed.
    let mut junk = server.connect();
    junk.write_all(b"\x16\x03\x01 not http\r\n\r\n")
        .expect("write");
    let reply = read_reply(&mut junk, &mut Vec::new());
    assert_eq!(reply.status, 400);
    assert!(closed_within(&mut junk, Duration::from_secs(2)));
}

#[test]
fn request_bodies_in_pieces_chunked_and_over_the_limit() {
    let server = ServerProcess::start(&[]);
    let mut tcp = server.connect();
    let mut buf = Vec::new();
    let sid = handshake(&mut tcp, &mut buf);
    let post =
        format!("POST /engine.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nhost: x\r\n");

    // A Content-Length body arriving in three pieces.
    let head = format!("{post}content-length: 13\r\n\r\n");
    for piece in [head.as_bytes(), b"4hel", b"lo\x1e4wor"] {
        tcp.write_all(piece).expect("write");
        sleep(Duration::from_millis(30));
    }
    tcp.write_all(b"ld").expect("write");
    let reply = read_reply(&mut tcp, &mut buf);
    assert_eq!((reply.status, reply.text().as_str()), (200, "ok"));

    // A chunked body, with an extension and a trailer.
    let chunked = format!(
        "{post}transfer-encoding: chunked\r\n\r\n3;x=y\r\n4ch\r\n5\r\nunked\r\n0\r\nx-t: 1\r\n\r\n"
    );
    tcp.write_all(chunked.as_bytes()).expect("write");
    let reply = read_reply(&mut tcp, &mut buf);
    assert_eq!((reply.status, reply.text().as_str()), (200, "ok"));

    // The echoes come back on the next GET, on the same kept-alive connection.
    let get =
        format!("GET /engine.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nhost: x\r\n\r\n");
    tcp.write_all(get.as_bytes()).expect("write");
    let reply = read_reply(&mut tcp, &mut buf);
    assert_eq!(reply.text(), "4hello\x1e4world\x1e4chunked");

    // A body over max_payload: the session sees max_payload + 1 bytes and answers 413
    // (ending the session); the rest of the body is discarded as it arrives, and the
    // connection goes on.
    let big = 1_000_100;
    let head = format!("{post}content-length: {big}\r\n\r\n");
    let mut body = vec![b'x'; big];
    body[0] = b'4';
    tcp.write_all(head.as_bytes()).expect("write");
    tcp.write_all(&body).expect("write");
    let reply = read_reply(&mut tcp, &mut buf);
    assert_eq!(reply.status, 413, "{}", reply.text());
    assert_eq!(reply.header("connection"), None);
    tcp.write_all(get.as_bytes()).expect("write");
    let reply = read_reply(&mut tcp, &mut buf);
    assert_eq!(reply.status, 400);
    assert!(
        reply.text().contains("\"code\":1"),
        "the session is gone: {}",
        reply.text()
    );
}

#[test]
fn a_websocket_peer_that_stops_reading_is_dropped_and_the_loop_goes_on() {
    // A heartbeat too slow to matter: only the write stall may end the session.
    let server = ServerProcess::start(&["--ping-interval", "60000", "--ping-timeout", "60000"]);
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    socket
        .set_recv_buffer_size(4096)
        .expect("small receive buffer");
    socket.connect(&server.addr.into()).expect("connect");
    let tcp: TcpStream = socket.into();
    tcp.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let url = format!("ws://{}/engine.io/?EIO=4&transport=websocket", server.addr);
    let (mut ws, _) = tungstenite::client(url.as_str(), tcp).expect("WebSocket handshake");
    let open = ws.read().expect("the open packet");
    assert!(open.to_text().expect("text").starts_with("0{"));

    // Send 100 KB messages to be echoed, never reading the echoes, until our own writes
    // stall for 2 s: the server stopped reading us once its writes blocked. (A server
    // that went on reading would take messages for as long as we send them.)
    ws.get_mut()
        .set_write_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    let message = format!("4{}", "x".repeat(100_000));
    let start = Instant::now();
    let mut sent = 0;
    while start.elapsed() < Duration::from_secs(15) {
        match ws.send(tungstenite::Message::text(message.clone())) {
            Ok(()) => sent += 1,
            Err(_) => break,
        }
    }
    assert!(sent > 0);
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "the server kept reading a peer that does not read ({sent} messages in {:?})",
        start.elapsed()
    );

    // The loop is not stuck on that socket: another client is served meanwhile.
    let mut other = server.connect();
    let sid = handshake(&mut other, &mut Vec::new());
    assert!(!sid.is_empty());

    // Reading now would unblock the server: wait past write_timeout (5 s), when the
    // session ends; its socket is dropped at the latest write_timeout later.
    sleep(Duration::from_secs(6));
    let mut tcp = ws.into_inner();
    let _ = tcp.shutdown(Shutdown::Write);
    assert!(
        closed_within(&mut tcp, Duration::from_secs(8)),
        "the server held a socket whose peer stopped reading"
    );
}

#[test]
fn request_heads_are_bounded_in_time_and_size() {
    let server = ServerProcess::start(&["--head-timeout-ms", "300", "--ping-interval", "1500"]);
    // A head that does not finish in time: the proto's 408, then the connection closes.
    let mut slow = server.connect();
    slow.write_all(b"GET /engine.io/?EIO=4&transport=polling HTTP/1.1\r\n")
        .expect("write");
    let reply = read_reply(&mut slow, &mut Vec::new());
    assert_eq!(reply.status, 408, "{}", reply.text());
    assert_eq!(reply.header("connection"), Some("close"));
    assert!(reply.text().contains("head_timeout"), "{}", reply.text());
    assert!(closed_within(&mut slow, Duration::from_secs(2)));
    // A connection that sends nothing is closed without an answer.
    let mut silent = server.connect();
    let mut byte = [0u8; 1];
    assert_eq!(silent.read(&mut byte).expect("closed, not reset"), 0);

    // A parked GET is not a head being waited for: it is answered (by the first ping,
    // 1.5 s later), and only then does the next head have 300 ms.
    let mut tcp = server.connect();
    let mut buf = Vec::new();
    let sid = handshake(&mut tcp, &mut buf);
    let get =
        format!("GET /engine.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nhost: x\r\n\r\n");
    tcp.write_all(get.as_bytes()).expect("write");
    let reply = read_reply(&mut tcp, &mut buf);
    assert_eq!((reply.status, reply.text().as_str()), (200, "2"));
    assert!(closed_within(&mut tcp, Duration::from_secs(2)));

    // A head over max_head_size (16 KiB): 431, then closed.
    let mut big = server.connect();
    let head = format!(
        "GET /engine.io/?EIO=4&transport=polling&x={} HTTP/1.1\r\n\r\n",
        "a".repeat(17 * 1024)
    );
    big.write_all(head.as_bytes()).expect("write");
    let reply = read_reply(&mut big, &mut Vec::new());
    assert_eq!(reply.status, 431);
    assert!(closed_within(&mut big, Duration::from_secs(2)));
}
