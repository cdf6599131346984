//! The listening socket and the request head, on both bindings, against the e2e server as
//! a child process: the listen backlog holds a burst of connects while the server accepts
//! nothing (it is stopped with SIGSTOP), a request whose head does not arrive in time is
//! answered `408`, and one whose head is too large `431`.
#![allow(clippy::disallowed_methods)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use engineio_tests::child::ServerProcess;

const E2E_SERVER: &str = env!("CARGO_BIN_EXE_e2e_server");

/// Connects up to `n` times to a stopped server, keeping every connection open, until a
/// connect does not complete within 300 ms (its SYN was dropped: the accept queue is full).
/// Returns how many completed.
fn connects_while_stopped(runtime: &str, args: &[&str], n: usize) -> usize {
    let mut server = ServerProcess::start(E2E_SERVER.as_ref(), runtime, args);
    server.stop();
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        match TcpStream::connect_timeout(&server.addr(), Duration::from_millis(300)) {
            Ok(stream) => held.push(stream),
            Err(_) => break,
        }
    }
    server.cont();
    held.len()
}

fn default_backlog_holds_a_burst(runtime: &str) {
    // 128 (what std and mio ask for) held 129 connections and dropped the SYNs after.
    let completed = connects_while_stopped(runtime, &[], 600);
    assert_eq!(
        completed, 600,
        "{runtime}: only {completed} of 600 connects completed while the server accepted nothing"
    );
}

fn configured_backlog_is_used(runtime: &str) {
    let completed = connects_while_stopped(runtime, &["--backlog", "32"], 100);
    // Linux queues backlog + 1; one more may complete while the queue fills.
    assert!(
        (32..=34).contains(&completed),
        "{runtime}: {completed} connects completed with a backlog of 32"
    );
}

/// Reads until the server closes (5 s at most); what it sent and how long it took.
fn read_to_close(stream: &mut TcpStream) -> (String, Duration) {
    let start = Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            // SIGCHLD from the servers other tests stop and continue.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => panic!(
                "no close within 5 s ({e}); got {:?}",
                String::from_utf8_lossy(&got)
            ),
        }
    }
    (String::from_utf8_lossy(&got).into_owned(), start.elapsed())
}

const HEAD_TIMEOUT: &[&str] = &["--head-timeout-ms", "300"];

fn a_head_that_times_out_gets_408(runtime: &str) {
    let server = ServerProcess::start(E2E_SERVER.as_ref(), runtime, HEAD_TIMEOUT);
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    // The request line and one header, and then nothing: the head never ends.
    stream
        .write_all(b"GET /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .unwrap();
    let (got, took) = read_to_close(&mut stream);
    assert!(
        got.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{runtime}: got {got:?}"
    );
    assert!(
        got.to_ascii_lowercase()
            .contains("\r\nconnection: close\r\n"),
        "{got:?}"
    );
    assert!(
        got.contains("head_timeout"),
        "{runtime}: the body says which option: {got:?}"
    );
    assert!(
        took >= Duration::from_millis(250),
        "{runtime}: closed after {took:?}"
    );
}

fn a_second_head_that_times_out_gets_408(runtime: &str) {
    let server = ServerProcess::start(E2E_SERVER.as_ref(), runtime, HEAD_TIMEOUT);
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    // A whole exchange on a kept-alive connection, then half of the next head.
    stream
        .write_all(b"GET /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    stream
        .write_all(b"GET /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: 1")
        .unwrap();
    let (got, _) = read_to_close(&mut stream);
    assert!(
        got.starts_with("HTTP/1.1 200 OK\r\n"),
        "{runtime}: got {got:?}"
    );
    assert_eq!(
        got.matches("HTTP/1.1 408 Request Timeout\r\n").count(),
        1,
        "{runtime}: got {got:?}"
    );
}

fn an_idle_connection_is_closed_without_an_answer(runtime: &str) {
    let server = ServerProcess::start(E2E_SERVER.as_ref(), runtime, HEAD_TIMEOUT);
    // A fresh connection that sends nothing (a browser's preconnect).
    let mut fresh = TcpStream::connect(server.addr()).unwrap();
    let (got, _) = read_to_close(&mut fresh);
    assert_eq!(
        got, "",
        "{runtime}: a connection that sent nothing got an answer"
    );

    // A kept-alive connection after a full exchange: only the first answer, then close.
    let mut kept = TcpStream::connect(server.addr()).unwrap();
    kept.write_all(b"GET /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let (got, _) = read_to_close(&mut kept);
    assert!(
        got.starts_with("HTTP/1.1 200 OK\r\n"),
        "{runtime}: got {got:?}"
    );
    assert!(
        !got.contains("408"),
        "{runtime}: an idle kept-alive connection got {got:?}"
    );
}

fn a_head_over_max_head_size_gets_431(runtime: &str) {
    let server = ServerProcess::start(E2E_SERVER.as_ref(), runtime, &[]);
    // A handshake with a 20 KB header: over the default 16 KiB (hyper alone took ~400 KB).
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    let big = "a".repeat(20_000);
    let request = format!(
        "GET /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: {big}\r\n\r\n"
    );
    // The server may close while the head is still being written.
    let _ = stream.write_all(request.as_bytes());
    let (got, _) = read_to_close(&mut stream);
    assert!(
        got.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
        "{runtime}: got {:?}",
        got.get(..100)
    );
    // A head just under the limit is served.
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    let fits = "a".repeat(12_000);
    stream
        .write_all(
            format!(
                "GET /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: {fits}\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        )
        .unwrap();
    let (got, _) = read_to_close(&mut stream);
    assert!(
        got.starts_with("HTTP/1.1 200 OK\r\n"),
        "{runtime}: got {got:?}"
    );
}

fn an_idle_connection_after_a_long_body_gets_no_408(runtime: &str) {
    let server = ServerProcess::start(E2E_SERVER.as_ref(), runtime, HEAD_TIMEOUT);
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    stream
        .write_all(b"GET /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let mut head = [0u8; 4096];
    let n = stream.read(&mut head).unwrap();
    let text = String::from_utf8_lossy(&head[..n]).into_owned();
    let sid = text
        .split("\"sid\":\"")
        .nth(1)
        .and_then(|t| t.split('"').next())
        .unwrap_or_else(|| panic!("{runtime}: no sid in {text:?}"))
        .to_owned();
    // A POST whose 200 KB body arrives in two parts (two reads), then nothing.
    let body = format!("4{}", "x".repeat(200_000));
    let (first, second) = body.as_bytes().split_at(100_000);
    stream
        .write_all(
            format!(
                "POST /engine.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: 127.0.0.1\r\n\
                 Content-Length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        )
        .unwrap();
    stream.write_all(first).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    stream.write_all(second).unwrap();
    let (got, _) = read_to_close(&mut stream);
    assert!(
        got.starts_with("HTTP/1.1 200 OK\r\n"),
        "{runtime}: got {got:?}"
    );
    assert!(
        !got.contains("408"),
        "{runtime}: an idle connection got {got:?}"
    );
}

macro_rules! on_both_bindings {
    ($($name:ident),* $(,)?) => {
        mod tokio {
            $(#[test] fn $name() { super::$name("tokio") })*
        }
        mod smol {
            $(#[test] fn $name() { super::$name("smol") })*
        }
    };
}

on_both_bindings!(
    default_backlog_holds_a_burst,
    configured_backlog_is_used,
    a_head_that_times_out_gets_408,
    a_second_head_that_times_out_gets_408,
    an_idle_connection_is_closed_without_an_answer,
    an_idle_connection_after_a_long_body_gets_no_408,
    a_head_over_max_head_size_gets_431,
);
