//! The `eio` binary against our server, in process, over loopback: `connect` on every
//! transport, its exit statuses, `doctor` on a healthy and a CORS-refusing server, and
//! both over TLS with a private CA.
//! (scripts/cli.sh runs the same commands against Node's and python-engineio's servers
//! and behind nginx.)

use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use engineio_tokio::proto::server::AllowedOrigins;
use engineio_tokio::{
    Config, ConnectRequest, EngineIo, Handler, Message, PeerAddr, Rejection, Socket, Tokio,
};
use serde_json::Value;

struct Echo;

impl Handler for Echo {
    type Data = ();

    async fn on_connect(&self, _request: &ConnectRequest<'_>) -> Result<(), Rejection> {
        Ok(())
    }

    fn on_message(&self, socket: &Socket<()>, message: Message) {
        if message.as_text() == Some("__close__") {
            socket.close();
        } else {
            let _ = socket.send(message);
        }
    }
}

/// Starts an echo server on 127.0.0.1 (a port of its own) on a thread of its own, for the
/// rest of the test process; returns its URL.
fn server(origins: AllowedOrigins) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let port = listener.local_addr().expect("local address").port();
    listener.set_nonblocking(true).expect("non-blocking");
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let mut config = Config::default();
            config.engine.ping_interval = Duration::from_millis(300);
            config.engine.ping_timeout = Duration::from_millis(200);
            config.engine.cors.origins = origins;
            let engine = EngineIo::new(Tokio, Echo, config).expect("valid config");
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            let _ = engineio_tokio::serve(listener, engine).await;
        });
    });
    format!("http://127.0.0.1:{port}")
}

/// Runs `eio ARGS` with `stdin`. Every run here passes `--timeout` or ends on its own;
/// a run still going after 60 s is killed (our own child, through its handle).
fn eio(args: &[&str], stdin: &str) -> Output {
    use std::io::{Read, Write};
    let mut child = Command::new(env!("CARGO_BIN_EXE_eio"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run eio");
    if let Some(mut input) = child.stdin.take() {
        input.write_all(stdin.as_bytes()).expect("write stdin");
    }
    let read = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let stdout = read(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = read(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for eio") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            break child.wait().expect("wait for eio");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn events<'a>(lines: &'a [Value], kind: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["event"] == kind).collect()
}

#[test]
fn connect_echoes_text_binary_and_json_on_every_transport() {
    let url = server(AllowedOrigins::Any);
    for transport in ["polling", "websocket", "upgrade"] {
        let mut input = String::new();
        if transport == "upgrade" {
            input.push_str(":sleep 500\n"); // the upgrade first
        }
        input.push_str("héllo\n:hex 00 ff\n:json {\"a\": 1}\n");
        let out = eio(
            &[
                "connect",
                &url,
                "-t",
                transport,
                "--json",
                "--count",
                "3",
                "--timeout",
                "20",
            ],
            &input,
        );
        let lines = json_lines(&out);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{transport}: {lines:?} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let open = events(&lines, "open");
        let opened_on = if transport == "websocket" {
            "websocket"
        } else {
            "polling"
        };
        assert_eq!(open.len(), 1, "{transport}: {lines:?}");
        assert_eq!(open[0]["transport"], opened_on);
        assert_eq!(open[0]["pingInterval"], 300);
        assert_eq!(
            events(&lines, "upgrade").len(),
            usize::from(transport == "upgrade"),
            "{transport}: {lines:?}"
        );
        let messages: Vec<(String, String)> = events(&lines, "message")
            .iter()
            .map(|m| {
                (
                    m["type"].as_str().unwrap_or("").to_owned(),
                    m["data"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        assert_eq!(
            messages,
            [
                ("text".to_owned(), "héllo".to_owned()),
                ("binary".to_owned(), "AP8=".to_owned()),
                ("text".to_owned(), r#"{"a":1}"#.to_owned()),
            ],
            "{transport}"
        );
        let json = events(&lines, "message")[2];
        assert_eq!(json["json"]["a"], 1, "{transport}: the JSON text is parsed");
        assert_eq!(events(&lines, "sent").len(), 3);
        assert_eq!(events(&lines, "close")[0]["reason"], "client_close");
    }
}

#[test]
fn connect_prints_pings_and_says_how_it_ended() {
    let url = server(AllowedOrigins::Any);
    // --timeout ends it: status 5, with the heartbeat shown.
    let out = eio(
        &[
            "connect",
            &url,
            "--json",
            "--pings",
            "--listen",
            "--timeout",
            "1.2",
        ],
        "",
    );
    let lines = json_lines(&out);
    assert_eq!(out.status.code(), Some(5), "{lines:?}");
    assert!(events(&lines, "ping").len() >= 2, "{lines:?}");
    assert!(events(&lines, "pong").len() >= 2, "{lines:?}");
    // The server closes the session: status 1.
    let out = eio(
        &[
            "connect",
            &url,
            "--json",
            "-t",
            "websocket",
            "--send",
            "__close__",
            "--listen",
            "--timeout",
            "10",
        ],
        "",
    );
    let lines = json_lines(&out);
    assert_eq!(out.status.code(), Some(1), "{lines:?}");
    assert_eq!(events(&lines, "close")[0]["reason"], "server_close");
    // Nothing listens: status 3.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let out = eio(
        &[
            "connect",
            &format!("http://127.0.0.1:{port}"),
            "--json",
            "--timeout",
            "10",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(events(&json_lines(&out), "error").len(), 1);
    // A bad command: status 2, nothing sent.
    let out = eio(&["connect", &url, "--eio", "3"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("v3"));
}

fn doctor(url: &str, args: &[&str]) -> (Option<i32>, Vec<Value>) {
    let mut all = vec!["doctor", url, "--json", "--max-wait", "10"];
    all.extend_from_slice(args);
    let out = eio(&all, "");
    (out.status.code(), json_lines(&out))
}

fn status_of<'a>(lines: &'a [Value], check: &str) -> &'a str {
    lines
        .iter()
        .find(|l| l["check"] == check)
        .and_then(|l| l["status"].as_str())
        .unwrap_or("missing")
}

#[test]
fn doctor_passes_a_healthy_server() {
    let url = server(AllowedOrigins::Any);
    let (code, lines) = doctor(&url, &["--echo", "--origin", "https://app.example"]);
    for check in [
        "handshake",
        "cors",
        "polling",
        "websocket",
        "upgrade",
        "sticky",
        "long-poll",
    ] {
        assert_eq!(status_of(&lines, check), "pass", "{check}: {lines:?}");
    }
    // A busy machine may deliver a ping late: a warning, never a failure.
    assert!(
        ["pass", "warn"].contains(&status_of(&lines, "heartbeat")),
        "{lines:?}"
    );
    assert_eq!(code, Some(0), "{lines:?}");
    let summary = lines.last().expect("a summary line");
    assert_eq!(summary["summary"]["failed"], 0);
}

#[test]
fn doctor_reports_a_cors_refusal_with_the_fix() {
    let url = server(AllowedOrigins::list(["https://good.example"]));
    let (code, lines) = doctor(
        &url,
        &["--only", "cors", "--origin", "https://evil.example"],
    );
    assert_eq!(code, Some(1), "{lines:?}");
    assert_eq!(status_of(&lines, "cors"), "fail");
    let cors = lines.iter().find(|l| l["check"] == "cors").expect("cors");
    assert!(
        cors["fix"]
            .as_str()
            .unwrap_or("")
            .contains("AllowedOrigins::list([\"https://evil.example\"])"),
        "{cors}"
    );
    let (code, lines) = doctor(
        &url,
        &["--only", "cors", "--origin", "https://good.example"],
    );
    assert_eq!(code, Some(0), "{lines:?}");
    assert_eq!(status_of(&lines, "cors"), "pass");
    assert_eq!(status_of(&lines, "sticky"), "skip");
}

/// An echo server behind a rustls acceptor with a certificate for `localhost` made here;
/// returns its URL and the certificate's PEM.
fn tls_server() -> (String, String) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
    let pem = cert.cert.pem();
    let cert_der = cert.cert.der().clone();
    let key =
        rustls::pki_types::PrivateKeyDer::try_from(cert.signing_key.serialize_der()).expect("key");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server_config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert_der], key)
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_config));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let port = listener.local_addr().expect("local address").port();
    listener.set_nonblocking(true).expect("non-blocking");
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let mut config = Config::default();
            config.engine.ping_interval = Duration::from_millis(300);
            config.engine.ping_timeout = Duration::from_millis(200);
            let engine = EngineIo::new(Tokio, Echo, config).expect("valid config");
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            loop {
                let Ok((stream, peer)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                let engine = engine.clone();
                tokio::spawn(async move {
                    if let Ok(tls) = acceptor.accept(stream).await {
                        let peer = PeerAddr {
                            addr: peer,
                            secure: true,
                        };
                        engineio_tokio::serve_connection(tls, peer, engine).await;
                    }
                });
            }
        });
    });
    (format!("https://localhost:{port}"), pem)
}

#[test]
fn tls_with_a_private_ca() {
    let (url, pem) = tls_server();
    let ca = std::env::temp_dir().join(format!("eio-cli-test-ca-{}.pem", std::process::id()));
    std::fs::write(&ca, pem).expect("write the CA file");
    let ca_arg = ca.to_string_lossy().into_owned();
    // Trusted through --cacert: polling, then the upgrade to wss.
    let out = eio(
        &[
            "connect",
            &url,
            "--cacert",
            &ca_arg,
            "--json",
            "--send",
            ":sleep 400",
            "--send",
            "over tls",
            "--count",
            "1",
            "--timeout",
            "20",
        ],
        "",
    );
    let lines = json_lines(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{lines:?} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(events(&lines, "upgrade").len(), 1, "{lines:?}");
    assert_eq!(events(&lines, "message")[0]["data"], "over tls");
    // The doctor over https and wss.
    let (code, report) = doctor(&url, &["--cacert", &ca_arg, "--only", "websocket,upgrade"]);
    assert_eq!(code, Some(0), "{report:?}");
    assert_eq!(status_of(&report, "upgrade"), "pass");
    // Without it, the certificate is not trusted: status 3, and the reason.
    let out = eio(&["connect", &url, "--json", "--timeout", "20"], "");
    assert_eq!(out.status.code(), Some(3));
    let error = events(&json_lines(&out), "error")[0]["message"].to_string();
    assert!(error.to_lowercase().contains("certificate"), "{error}");
    // A file without a certificate is refused up front.
    std::fs::write(&ca, "not a certificate").expect("write");
    let out = eio(&["connect", &url, "--cacert", &ca_arg], "");
    assert_eq!(out.status.code(), Some(2));
    let _ = std::fs::remove_file(&ca);
}
