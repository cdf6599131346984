//! Our client (both runtimes) through HTTP proxies on loopback: a small scripted proxy in
//! the test, which forwards absolute-form requests and `CONNECT` tunnels to our server, or
//! refuses them, or breaks the protocol. The real proxy (tinyproxy) is in the interop
//! matrix (scripts/interop.sh); these cases cover what a real proxy will not do on demand:
//! every refusal status, garbage after the answer, a proxy that is not there.
#![allow(missing_docs, clippy::indexing_slicing)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use engineio_hyper::Runtime;
use engineio_hyper::client::{Client, ClientConfig, ClientError, ConnectError, Proxy};
use engineio_hyper::server::{Config, ConnectRequest, Handler, Rejection, Socket};
use engineio_proto::{Message, ProtocolVersion, Transport, TransportError};
use engineio_tests::binding::{Binding, TokioBinding, engine};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(10);

struct Echo;

impl Handler for Echo {
    type Data = ();

    async fn on_connect(&self, _request: &ConnectRequest<'_>) -> Result<(), Rejection> {
        Ok(())
    }

    fn on_message(&self, socket: &Socket<()>, message: Message) {
        let _ = socket.send(message);
    }
}

#[derive(Clone, Copy, Debug)]
enum Behaviour {
    /// Forward everything (credentials `u:p` required: 407 without them).
    Forward,
    /// Answer every request with this status.
    Refuse(u16),
    /// Answer CONNECT with 200 and bytes the server did not send.
    Garbage,
}

/// A scripted HTTP proxy on a free loopback port; it records the request lines it saw.
struct FakeProxy {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
}

const CREDENTIALS: &str = "Basic dTpw"; // base64("u:p")

impl FakeProxy {
    async fn start(behaviour: Behaviour) -> FakeProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(serve(client, behaviour, Arc::clone(&log)));
            }
        });
        FakeProxy { addr, seen }
    }

    fn url(&self, credentials: bool) -> String {
        if credentials {
            format!("http://u:p@{}", self.addr)
        } else {
            format!("http://{}", self.addr)
        }
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

/// One client connection: reads the request head (bounded), then acts.
async fn serve(mut client: TcpStream, behaviour: Behaviour, log: Arc<Mutex<Vec<String>>>) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match client.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > 16 * 1024 {
            return;
        }
    }
    let end = head.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let text = String::from_utf8_lossy(&head[..end]).into_owned();
    let line = text.lines().next().unwrap_or("").to_owned();
    log.lock().unwrap().push(line.clone());
    let authorized = text.lines().any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.eq_ignore_ascii_case("proxy-authorization") && v.trim() == CREDENTIALS
        })
    });
    match behaviour {
        Behaviour::Refuse(status) => refuse(&mut client, status).await,
        Behaviour::Forward if !authorized => refuse(&mut client, 407).await,
        Behaviour::Garbage => {
            let _ = client
                .write_all(b"HTTP/1.1 200 Connection established\r\n\r\nnot from the server")
                .await;
        }
        Behaviour::Forward => {
            let mut parts = line.split(' ');
            let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let authority = if method == "CONNECT" {
                target.to_owned()
            } else {
                // Absolute form: http://host:port/path...
                let rest = target.strip_prefix("http://").unwrap_or(target);
                rest.split('/').next().unwrap_or("").to_owned()
            };
            let Ok(mut upstream) = TcpStream::connect(&authority).await else {
                return refuse(&mut client, 502).await;
            };
            if method == "CONNECT" {
                let _ = client
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await;
                let _ = upstream.write_all(&head[end..]).await;
            } else {
                // Origin servers accept the absolute form too: pass the request on as is.
                let _ = upstream.write_all(&head).await;
            }
            let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
        }
    }
}

async fn refuse(client: &mut TcpStream, status: u16) {
    let reply = format!("HTTP/1.1 {status} Nope\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    let _ = client.write_all(reply.as_bytes()).await;
}

fn config(addr: SocketAddr, transports: &[Transport], proxy: &str) -> ClientConfig {
    let mut c = ClientConfig::new(&format!("http://{addr}")).unwrap();
    c.transports = transports.to_vec();
    c.proxy = Proxy::url(proxy).unwrap();
    c
}

fn server() -> SocketAddr {
    let mut c = Config::default();
    c.engine.ping_interval = Duration::from_millis(300);
    c.engine.ping_timeout = Duration::from_millis(200);
    c.engine.allow_eio3 = true;
    TokioBinding::serve(engine::<TokioBinding, _>(Echo, c))
}

async fn echo<R: Runtime>(runtime: R, config: ClientConfig) -> Transport {
    let mut client = timeout(WAIT, Client::connect(runtime, config))
        .await
        .expect("connect in time")
        .expect("connected through the proxy");
    client.send("through the proxy").unwrap();
    client.send(vec![1u8, 2, 3]).unwrap();
    for want in [
        Message::from("through the proxy"),
        Message::from(vec![1u8, 2, 3]),
    ] {
        let got = timeout(WAIT, client.recv()).await.expect("echo in time");
        assert_eq!(got, Some(want));
    }
    let transport = client.transport().expect("open");
    client.disconnect().await;
    transport
}

async fn refused<R: Runtime>(runtime: R, config: ClientConfig) -> ClientError {
    match timeout(WAIT, Client::connect(runtime, config)).await {
        Ok(Err(e)) => e,
        Ok(Ok(_)) => panic!("connected through a refusing proxy"),
        Err(_) => panic!("no answer in time"),
    }
}

#[tokio::test]
async fn polling_websocket_and_upgrade_through_a_proxy_on_both_runtimes() {
    let addr = server();
    let proxy = FakeProxy::start(Behaviour::Forward).await;
    for (transports, want) in [
        (&[Transport::Polling][..], Transport::Polling),
        (&[Transport::WebSocket], Transport::WebSocket),
    ] {
        let c = config(addr, transports, &proxy.url(true));
        assert_eq!(echo(engineio_tokio::Tokio, c.clone()).await, want);
        assert_eq!(echo(engineio_smol::Smol, c).await, want);
    }
    // Upgrade: wait until the WebSocket carries the session.
    let c = config(
        addr,
        &[Transport::Polling, Transport::WebSocket],
        &proxy.url(true),
    );
    let mut client = Client::connect(engineio_tokio::Tokio, c).await.unwrap();
    timeout(WAIT, async {
        while client.transport() != Some(Transport::WebSocket) {
            let _ = client.next_event().await;
        }
    })
    .await
    .expect("upgraded through the proxy");
    client.disconnect().await;
    // Polling went in absolute form, the WebSockets through CONNECT, to our server.
    let seen = proxy.seen();
    let target = addr.to_string();
    assert!(
        seen.iter().any(|l| l.starts_with(&format!(
            "GET http://{target}/engine.io/?EIO=4&transport=polling"
        ))),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|l| l.starts_with(&format!("POST http://{target}/engine.io/"))),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|l| *l == format!("CONNECT {target} HTTP/1.1")),
        "{seen:?}"
    );
}

#[tokio::test]
async fn v3_through_a_proxy() {
    let addr = server();
    let proxy = FakeProxy::start(Behaviour::Forward).await;
    for transports in [&[Transport::Polling][..], &[Transport::WebSocket]] {
        let mut c = config(addr, transports, &proxy.url(true));
        c.protocol_version = ProtocolVersion::V3;
        echo(engineio_smol::Smol, c).await;
    }
}

#[tokio::test]
async fn a_refusing_proxy_is_a_typed_error_naming_its_status() {
    let addr = server();
    // Without credentials: 407, in absolute form (polling) and for CONNECT (WebSocket).
    let proxy = FakeProxy::start(Behaviour::Forward).await;
    for (transports, tunnel) in [
        (&[Transport::Polling][..], false),
        (&[Transport::WebSocket], true),
    ] {
        let c = config(addr, transports, &proxy.url(false));
        let e = refused(engineio_tokio::Tokio, c).await;
        let ClientError::Connect(ConnectError::Transport(TransportError::Proxy(r))) = &e else {
            panic!("{e:?}")
        };
        assert_eq!(r.status, 407);
        assert_eq!(r.tunnel, tunnel);
        assert_eq!(r.proxy, proxy.addr.to_string());
        assert_eq!(r.target, addr.to_string());
        let text = e.to_string();
        assert!(
            text.contains("407") && text.contains("credentials"),
            "{text}"
        );
    }
    // Every refusal of a tunnel is the proxy's, whatever the status.
    for status in [403, 502, 503] {
        let proxy = FakeProxy::start(Behaviour::Refuse(status)).await;
        let c = config(addr, &[Transport::WebSocket], &proxy.url(true));
        let e = refused(engineio_smol::Smol, c).await;
        let ClientError::Connect(ConnectError::Transport(TransportError::Proxy(r))) = &e else {
            panic!("{status}: {e:?}")
        };
        assert_eq!(r.status, status);
        assert!(e.to_string().contains(&status.to_string()), "{e}");
    }
    // In absolute form, a non-407 answer may be the server's: it is a refusal with the status.
    let proxy = FakeProxy::start(Behaviour::Refuse(403)).await;
    let c = config(addr, &[Transport::Polling], &proxy.url(true));
    let e = refused(engineio_tokio::Tokio, c).await;
    assert!(
        matches!(
            e,
            ClientError::Connect(ConnectError::Refused { status, .. }) if status == 403
        ),
        "{e:?}"
    );
}

#[tokio::test]
async fn a_proxy_that_sends_more_than_its_answer_or_is_not_there() {
    let addr = server();
    let proxy = FakeProxy::start(Behaviour::Garbage).await;
    let c = config(addr, &[Transport::WebSocket], &proxy.url(true));
    let e = refused(engineio_tokio::Tokio, c).await;
    assert!(e.to_string().contains("after its answer"), "{e}");
    // Nobody listens on the proxy's port: the error names the proxy.
    let gone = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = gone.local_addr().unwrap().port();
    drop(gone);
    for transports in [&[Transport::Polling][..], &[Transport::WebSocket]] {
        let c = config(addr, transports, &format!("http://127.0.0.1:{port}"));
        let e = refused(engineio_smol::Smol, c).await;
        assert!(
            matches!(
                e,
                ClientError::Connect(ConnectError::Transport(TransportError::Connect(_)))
            ),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .contains(&format!("cannot reach the proxy 127.0.0.1:{port}")),
            "{e}"
        );
    }
}
