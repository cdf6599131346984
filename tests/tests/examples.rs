//! python-engineio's examples, ported (engineio-tokio/examples), run as a user runs them:
//! the quickstart server with the quickstart client, the latency server with the latency
//! client, the static-file rules, the 401 refusal and the logging example. Each process is
//! started on a free 127.0.0.1 port, waited for with a bound, and killed by its PID (only
//! the ones started here) when the test ends.
#![allow(clippy::disallowed_methods)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The longest any example may take.
const WAIT: Duration = Duration::from_secs(30);

/// `target/<profile>/examples/NAME`, built by a workspace build with `--all-targets` (the
/// test command); built here when it is missing (`cargo test -p engineio-tests` alone).
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's path");
    // target/<profile>/deps/examples-<hash>
    let profile = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    let path = profile.join("examples").join(name);
    if !path.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--workspace", "--examples"])
            .status()
            .expect("cargo build --examples");
        assert!(
            status.success(),
            "cargo build --workspace --examples failed"
        );
    }
    assert!(path.exists(), "no example binary at {}", path.display());
    path
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A server example, killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start(name: &str) -> Server {
        let port = free_port();
        let child = Command::new(example(name))
            .env("PORT", port.to_string())
            .env("HOST", "127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + WAIT;
        while TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "{name} did not listen on {addr}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Server { child, addr }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A GET of `path` on a fresh connection: the status and the body.
    fn get(&self, path: &str) -> (u16, String) {
        let mut s = TcpStream::connect(self.addr).expect("connect");
        s.set_read_timeout(Some(WAIT)).expect("timeout");
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        )
        .expect("write");
        let mut answer = String::new();
        s.read_to_string(&mut answer).expect("read");
        let status = answer
            .get(9..12)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"));
        let body = answer
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (status, body)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a client example to its end (at most [`WAIT`]); panics if it does not end.
fn run(name: &str, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut child = Command::new(example(name))
        .args(args)
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {name}: {e}"));
    let deadline = Instant::now() + WAIT;
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "{name} did not end within {WAIT:?}; stdout: {}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_quickstart_client_talks_to_the_quickstart_server() {
    let server = Server::start("quickstart_server");
    let out = run("quickstart_client", &[&server.url()], &[("MESSAGES", "3")]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("connection established"), "{text}");
    assert_eq!(text.matches("message received with").count(), 3, "{text}");
    assert!(text.contains("disconnected from server"), "{text}");
    // The page at `/`, as python's static_files rule gives it.
    let (status, body) = server.get("/");
    assert_eq!(status, 200);
    assert!(body.contains("<html") || body.contains("<!"), "{body}");
}

#[test]
fn the_latency_client_measures_round_trips_on_the_latency_server() {
    let server = Server::start("latency");
    let out = run("latency_client", &[&server.url()], &[("ROUNDS", "2")]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("connected to server"), "{text}");
    assert_eq!(
        text.lines().filter(|l| l.contains("ms")).count(),
        2,
        "{text}"
    );
}

#[test]
fn the_static_file_rules_serve_what_python_serves_and_nothing_outside() {
    let server = Server::start("static_files");
    assert_eq!(server.get("/").0, 200);
    assert_eq!(server.get("/static/style.css").0, 200);
    assert_eq!(server.get("/public/notes.txt").0, 200);
    assert_eq!(server.get("/public/").0, 200);
    assert_eq!(server.get("/data").0, 200);
    assert_eq!(server.get("/raw/index.html").0, 200);
    assert_eq!(server.get("/public/../static_files.rs").0, 404);
    assert_eq!(server.get("/public/%2e%2e/static_files.rs").0, 404);
    assert_eq!(server.get("/nothing-here").0, 404);
}

#[test]
fn the_401_example_refuses_without_a_token_and_accepts_with_it() {
    let out = run("reject_401", &[], &[]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("without a token:"), "{text}");
    assert!(text.contains("401"), "{text}");
    assert!(
        text.contains("with the token: connected as Some("),
        "{text}"
    );
}

#[test]
fn the_logging_example_logs_the_lifecycle_at_debug() {
    let out = run("logging", &[], &[("RUST_LOG", "engineio_hyper=debug")]);
    let all = format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{all}");
    assert!(all.contains("session opened"), "{all}");
    assert!(all.contains("client connected"), "{all}");
}
