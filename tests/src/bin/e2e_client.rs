//! Our client as an interop driver: runs the interop cases (see tests/interop/README.md)
//! against an echo server and prints one JSON line per case, like the peers' drivers.
//!
//! ```sh
//! cargo run -p engineio-tests --bin e2e_client -- --runtime tokio \
//!     --url http://127.0.0.1:3000 --transport upgrade [--cases text,binary]
//! ```
//!
//! For the matrix's v3 and proxy rows: `--eio 3` (Engine.IO v3), `--proxy URL` (an HTTP
//! proxy) or `--proxy-env` (the `HTTP_PROXY`/`HTTPS_PROXY`/`NO_PROXY` environment),
//! `--cacert PEM` (trust this CA for https/wss), and the case `proxy_refused`: the proxy
//! refuses this client (the `--proxy` URL without its credentials, or the environment as
//! given), and connecting must fail with a typed proxy error naming the proxy's status
//! (407).
//!
//! For the deflate rows: `--deflate` offers permessage-deflate (the default
//! `DeflateConfig`) and then expects it: in `websocket` and `upgrade` mode every case fails
//! when the session's WebSocket did not agree it (run it only against servers that
//! compress). The cases `deflate` and `no_deflate` check the negotiation on both sides:
//! [`Client::websocket_deflate`] on ours, and the server's answer to the text
//! `__deflate__` (our server and tests/interop/node-server.js answer with their
//! `Sec-WebSocket-Extensions` value or `off`; a server that echoes it does not say).
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::time::{Duration, Instant};

use engineio_hyper::Runtime;
use engineio_hyper::client::{Client, ClientConfig, ClientError, ConnectError, Proxy, ProxyUrl};
use engineio_hyper::tls::TlsConfig;
use engineio_proto::client::ClientEvent;
use engineio_proto::websocket::DeflateConfig;
use engineio_proto::{CloseReason, Message, ProtocolVersion, SendError, Transport, TransportError};

/// The cases run when `--cases` does not say; `deflate` and `no_deflate` are asked for.
const CASES: [&str; 9] = [
    "connect",
    "text",
    "binary",
    "text_100k",
    "binary_100k",
    "heartbeat",
    "over_limit",
    "client_close",
    "server_close",
];
const STEP: Duration = Duration::from_secs(5);

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn text_100k() -> String {
    "abcdefghij€😀".repeat(5883)
}

fn binary_100k() -> Vec<u8> {
    (0..100_000u32)
        .map(|i| ((i * 31 + 7) % 256) as u8)
        .collect()
}

/// How the client connects, from the command line.
#[derive(Clone)]
struct Options {
    protocol: ProtocolVersion,
    proxy: Proxy,
    tls: TlsConfig,
    /// `--deflate`: offer permessage-deflate, and fail a WebSocket that did not agree it.
    deflate: bool,
}

struct Case<R: Runtime> {
    runtime: R,
    url: String,
    transport: String,
    options: Options,
}

impl<R: Runtime<TlsConfig = TlsConfig>> Case<R> {
    fn config(&self) -> Result<ClientConfig, String> {
        let mut c = ClientConfig::new(&self.url).map_err(|e| e.to_string())?;
        c.transports = match self.transport.as_str() {
            "polling" => vec![Transport::Polling],
            "websocket" => vec![Transport::WebSocket],
            "upgrade" => vec![Transport::Polling, Transport::WebSocket],
            other => return Err(format!("unknown transport {other}")),
        };
        c.protocol_version = self.options.protocol;
        c.proxy = self.options.proxy.clone();
        if self.options.deflate {
            c.websocket_deflate = Some(DeflateConfig::default());
        }
        Ok(c)
    }

    async fn connect(&self, config: ClientConfig) -> Option<Result<Client<R>, ClientError>> {
        let tls = self.options.tls.clone();
        with_timeout(
            &self.runtime,
            STEP,
            Client::connect_with_tls(self.runtime.clone(), config, tls),
        )
        .await
    }

    async fn open(&self) -> Result<Client<R>, String> {
        let config = self.config()?;
        let mut client = self
            .connect(config)
            .await
            .ok_or("no handshake within 5 s")?
            .map_err(|e| e.to_string())?;
        if self.transport == "upgrade" {
            loop {
                match with_timeout(&self.runtime, STEP, client.next_event()).await {
                    Some(Some(ClientEvent::Upgraded)) => break,
                    Some(Some(_)) => continue,
                    Some(None) => return Err("ended before the upgrade".into()),
                    None => return Err("no upgrade within 5 s".into()),
                }
            }
        }
        let want = if self.transport == "polling" {
            Transport::Polling
        } else {
            Transport::WebSocket
        };
        match client.transport() {
            Some(t) if t == want => {}
            other => return Err(format!("transport is {other:?}, expected {want}")),
        }
        if self.options.deflate
            && want == Transport::WebSocket
            && client.websocket_deflate().is_none()
        {
            client.disconnect().await;
            return Err(
                "the WebSocket did not agree permessage-deflate (--deflate expects it)".into(),
            );
        }
        Ok(client)
    }

    /// The `deflate` (`want`) and `no_deflate` cases: what our client agreed, what the
    /// server says it agreed (its answer to `__deflate__`), and for `deflate` a 100 kB
    /// echo over the compressed WebSocket.
    async fn deflate_case(&self, want: bool) -> Result<String, String> {
        let mut client = self.open().await?;
        let ours = client.websocket_deflate();
        let mut detail = format!(
            "client: {}",
            ours.map_or_else(|| "off".to_owned(), |d| d.to_header())
        );
        client.send("__deflate__").map_err(|e| e.to_string())?;
        let answer = match with_timeout(&self.runtime, STEP, client.recv()).await {
            Some(Some(Message::Text(t))) => t.to_string(),
            Some(Some(other)) => {
                return Err(format!(
                    "__deflate__ answered with {} bytes of binary",
                    other.len()
                ));
            }
            Some(None) => return Err("connection ended before __deflate__ was answered".into()),
            None => return Err("no answer to __deflate__ within 5 s".into()),
        };
        let result = if ours.is_some() != want {
            Err(if want {
                "permessage-deflate was not agreed".to_owned()
            } else {
                "permessage-deflate was agreed although not offered".to_owned()
            })
        } else if answer == "__deflate__" {
            detail.push_str("; server: echoed (does not report)");
            Ok(())
        } else {
            detail.push_str(&format!("; server: {answer:?}"));
            let theirs = (answer != "off").then(|| extension_params(&answer));
            match (ours, theirs) {
                (None, None) => Ok(()),
                (Some(d), Some(t)) if extension_params(&d.to_header()) == t => Ok(()),
                _ => Err("the server's view differs from the client's".to_owned()),
            }
        };
        let result = match result {
            Ok(()) if want => self
                .echo(&mut client, Message::from(text_100k()))
                .await
                .map(|e| format!("{detail}; then {e} with permessage-deflate agreed")),
            Ok(()) => Ok(detail),
            Err(e) => Err(format!("{e}; {detail}")),
        };
        client.disconnect().await;
        result
    }

    async fn echo(&self, client: &mut Client<R>, message: Message) -> Result<String, String> {
        client.send(message.clone()).map_err(|e| e.to_string())?;
        match with_timeout(&self.runtime, STEP, client.recv()).await {
            Some(Some(back)) if back == message => Ok(format!("echoed {} bytes", message.len())),
            Some(Some(back)) => Err(format!("echo differs: {} bytes came back", back.len())),
            Some(None) => Err("connection ended".into()),
            None => Err("no echo within 5 s".into()),
        }
    }

    async fn run(&self, case: &str) -> Result<String, String> {
        match case {
            "connect" => {
                let client = self.open().await?;
                let detail = format!(
                    "sid {:?} over {:?}, permessage-deflate {}",
                    client.sid(),
                    client.transport(),
                    client
                        .websocket_deflate()
                        .map_or_else(|| "off".to_owned(), |d| d.to_header())
                );
                client.disconnect().await;
                Ok(detail)
            }
            "text" | "binary" | "text_100k" | "binary_100k" => {
                let mut client = self.open().await?;
                let message = match case {
                    "text" => Message::from("hello €😀"),
                    "binary" => Message::from((0..=255u8).collect::<Vec<u8>>()),
                    "text_100k" => Message::from(text_100k()),
                    _ => Message::from(binary_100k()),
                };
                let result = self.echo(&mut client, message).await;
                client.disconnect().await;
                result
            }
            "heartbeat" => {
                let mut client = self.open().await?;
                let until = self.runtime.now() + Duration::from_millis(1500);
                loop {
                    let left = until.saturating_duration_since(self.runtime.now());
                    if left.is_zero() {
                        break;
                    }
                    match with_timeout(&self.runtime, left, client.next_event()).await {
                        None => break,
                        Some(Some(ClientEvent::Disconnected(r))) => {
                            return Err(format!("disconnected during the heartbeat: {r}"));
                        }
                        Some(Some(_)) => {}
                        Some(None) => return Err("ended during the heartbeat".into()),
                    }
                }
                let result = self
                    .echo(&mut client, Message::from("after heartbeat"))
                    .await;
                client.disconnect().await;
                result.map(|d| format!("1.5 s without disconnect, then {d}"))
            }
            "over_limit" => {
                let mut client = self.open().await?;
                match client.send("x".repeat(1_000_001)) {
                    Err(SendError::TooLarge { size, limit, .. }) => {
                        // Ours refuses before sending (the server's maxPayload is known);
                        // the connection stays usable.
                        let after = self.echo(&mut client, Message::from("ok")).await?;
                        client.disconnect().await;
                        Ok(format!("refused locally ({size} > {limit}), then {after}"))
                    }
                    Err(e) => Err(format!("refused with an unexpected error: {e}")),
                    Ok(()) => match with_timeout(&self.runtime, STEP, client.wait()).await {
                        Some(reason) => Ok(format!("server closed the connection: {reason:?}")),
                        None => Err("over-limit message neither refused nor closed".into()),
                    },
                }
            }
            "deflate" => self.deflate_case(true).await,
            "no_deflate" => self.deflate_case(false).await,
            "client_close" => {
                let client = self.open().await?;
                match with_timeout(&self.runtime, STEP, client.disconnect()).await {
                    Some(Some(CloseReason::ClientClose)) => Ok("reason ClientClose".into()),
                    Some(other) => Err(format!("closed with {other:?}")),
                    None => Err("no close within 5 s".into()),
                }
            }
            "proxy_refused" => {
                let mut config = self.config()?;
                config.proxy = match &self.options.proxy {
                    Proxy::Url(url) => Proxy::url(&without_credentials(url))
                        .map_err(|e| format!("cannot build the refused proxy URL: {e}"))?,
                    Proxy::Environment => Proxy::Environment,
                    _ => return Err("proxy_refused needs --proxy URL or --proxy-env".into()),
                };
                match self.connect(config).await {
                    None => Err("no answer within 5 s (the proxy should refuse at once)".into()),
                    Some(Ok(client)) => {
                        client.disconnect().await;
                        Err("connected although the proxy should refuse".into())
                    }
                    Some(Err(ClientError::Connect(ConnectError::Transport(
                        TransportError::Proxy(refusal),
                    )))) if refusal.status == http::StatusCode::PROXY_AUTHENTICATION_REQUIRED => {
                        Ok(format!("refused as expected: {refusal}"))
                    }
                    Some(Err(e)) => Err(format!("failed, but not with a proxy refusal: {e}")),
                }
            }
            "server_close" => {
                let mut client = self.open().await?;
                client.send("__close__").map_err(|e| e.to_string())?;
                match with_timeout(&self.runtime, Duration::from_secs(2), client.wait()).await {
                    Some(Some(r)) => Ok(format!("closed: {r}")),
                    Some(None) => Err("ended without a reason".into()),
                    None => Err("no close within 2 s".into()),
                }
            }
            other => Err(format!("unknown case {other}")),
        }
    }
}

/// Runs `f`, giving up after `d` on the runtime's own timer.
async fn with_timeout<R: Runtime, F: std::future::Future>(
    runtime: &R,
    d: Duration,
    f: F,
) -> Option<F::Output> {
    let deadline = runtime.now() + d;
    let mut timer = runtime.timer(deadline);
    let mut f = std::pin::pin!(f);
    std::future::poll_fn(|cx| {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(cx) {
            return std::task::Poll::Ready(Some(v));
        }
        engineio_hyper::Timer::poll_expired(&mut timer, cx).map(|_| None)
    })
    .await
}

/// The parameters of a `Sec-WebSocket-Extensions` value (`permessage-deflate; a; b=9`),
/// sorted and without spaces, to compare two sides' views.
fn extension_params(header: &str) -> Vec<String> {
    let mut params: Vec<String> = header
        .split(';')
        .skip(1)
        .map(|p| p.chars().filter(|c| !c.is_whitespace()).collect())
        .filter(|p: &String| !p.is_empty())
        .collect();
    params.sort();
    params
}

/// `url` without its credentials, so that a proxy that wants them refuses (407).
fn without_credentials(url: &ProxyUrl) -> String {
    format!("http://{}", url.authority())
}

async fn run_all<R: Runtime<TlsConfig = TlsConfig>>(
    runtime: R,
    peer: &str,
    url: String,
    transport: String,
    cases: Vec<String>,
    options: Options,
) {
    let case = Case {
        runtime,
        url,
        transport: transport.clone(),
        options,
    };
    for name in cases {
        let start = Instant::now();
        let result = case.run(&name).await;
        let (ok, detail) = match result {
            Ok(d) => (true, d),
            Err(d) => (false, d),
        };
        let line = serde_json::json!({
            "peer": peer,
            "transport": transport,
            "case": name,
            "ok": ok,
            "ms": start.elapsed().as_millis() as u64,
            "detail": detail,
        });
        println!("{line}");
    }
}

/// `--eio`, `--proxy`/`--proxy-env` and `--cacert`.
fn options() -> Result<Options, String> {
    let protocol = match arg("--eio").as_deref() {
        None | Some("4") => ProtocolVersion::V4,
        Some("3") => ProtocolVersion::V3,
        Some(other) => return Err(format!("--eio {other}: use 3 or 4")),
    };
    let proxy = match (arg("--proxy"), std::env::args().any(|a| a == "--proxy-env")) {
        (Some(url), _) => Proxy::url(&url).map_err(|e| format!("--proxy: {e}"))?,
        (None, true) => Proxy::Environment,
        (None, false) => Proxy::None,
    };
    let tls = match arg("--cacert") {
        None => TlsConfig::default(),
        Some(file) => tls_with_ca(&file)?,
    };
    Ok(Options {
        protocol,
        proxy,
        tls,
        deflate: std::env::args().any(|a| a == "--deflate"),
    })
}

/// A TLS configuration trusting the certificates in `file` (PEM).
fn tls_with_ca(file: &str) -> Result<TlsConfig, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(file).map_err(|e| format!("--cacert {file}: {e}"))? {
        let cert = cert.map_err(|e| format!("--cacert {file}: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("--cacert {file}: {e}"))?;
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("--cacert {file}: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConfig::with_rustls(std::sync::Arc::new(config)))
}

fn main() {
    let (Some(url), Some(transport)) = (arg("--url"), arg("--transport")) else {
        eprintln!(
            "usage: e2e_client --url URL --transport polling|websocket|upgrade [--runtime tokio|smol] [--cases a,b]"
        );
        std::process::exit(2);
    };
    let cases: Vec<String> = match arg("--cases") {
        Some(c) => c.split(',').map(str::to_owned).collect(),
        None => CASES.iter().map(|c| (*c).to_owned()).collect(),
    };
    let options = match options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let runtime = arg("--runtime").unwrap_or_else(|| "tokio".into());
    match runtime.as_str() {
        "tokio" => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("tokio runtime");
            rt.block_on(run_all(
                engineio_tokio::Tokio,
                "rust-tokio",
                url,
                transport,
                cases,
                options,
            ));
        }
        "smol" => smol::block_on(run_all(
            engineio_smol::Smol,
            "rust-smol",
            url,
            transport,
            cases,
            options,
        )),
        other => {
            eprintln!("unknown --runtime {other:?}: use tokio or smol");
            std::process::exit(2);
        }
    }
}
