//! Our clients over https/wss (the `rustls` feature of both bindings) against our server
//! behind a rustls acceptor, with a certificate made for the test and trusted through
//! `TlsConfig::with_rustls`.
#![allow(missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use engineio_hyper::server::{Config, ConnectRequest, Handler, PeerAddr, Rejection, Socket};
use engineio_proto::{Message, Transport};
use tokio::time::timeout;

struct Echo;

impl Handler for Echo {
    type Data = ();

    async fn on_connect(&self, request: &ConnectRequest<'_>) -> Result<(), Rejection> {
        assert!(request.peer_addr().is_some());
        Ok(())
    }

    fn on_message(&self, socket: &Socket<()>, message: Message) {
        let _ = socket.send(message);
    }
}

struct TlsServer {
    addr: std::net::SocketAddr,
    roots: rustls::RootCertStore,
}

/// A certificate for `localhost` made for the test, and a server configuration with it.
fn test_certificate() -> (
    rustls::pki_types::CertificateDer<'static>,
    Arc<rustls::ServerConfig>,
) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_der = cert.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::try_from(cert.signing_key.serialize_der()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server_config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert_der.clone()], key)
        .unwrap();
    (cert_der, Arc::new(server_config))
}

/// Our tokio server behind tokio-rustls, through `engineio_tokio::serve_connection`.
async fn tls_server() -> TlsServer {
    let (cert_der, server_config) = test_certificate();
    let acceptor = tokio_rustls::TlsAcceptor::from(server_config);
    let engine =
        engineio_tokio::EngineIo::new(engineio_tokio::Tokio, Echo, Config::default()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
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
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert_der).unwrap();
    TlsServer { addr, roots }
}

fn client_tls(roots: rustls::RootCertStore) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

fn config(server: &TlsServer, transports: Vec<Transport>) -> engineio_tokio::ClientConfig {
    let mut c =
        engineio_tokio::ClientConfig::new(&format!("https://localhost:{}", server.addr.port()))
            .unwrap();
    c.transports = transports;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_client_over_https_and_wss() {
    let server = tls_server().await;
    for transports in [
        vec![Transport::Polling],
        vec![Transport::WebSocket],
        vec![Transport::Polling, Transport::WebSocket],
    ] {
        let tls = engineio_tokio::TlsConfig::with_rustls(client_tls(server.roots.clone()));
        let mut client = timeout(
            Duration::from_secs(10),
            engineio_tokio::connect_with_tls(config(&server, transports.clone()), tls),
        )
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{transports:?}: {e}"));
        client.send("secret").unwrap();
        assert_eq!(
            timeout(Duration::from_secs(5), client.recv())
                .await
                .unwrap(),
            Some(Message::from("secret")),
            "{transports:?}"
        );
        client.disconnect().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smol_client_over_wss() {
    let server = tls_server().await;
    let tls = engineio_smol::TlsConfig::with_rustls(client_tls(server.roots.clone()));
    let mut client = timeout(
        Duration::from_secs(10),
        engineio_smol::connect_with_tls(
            config(&server, vec![Transport::Polling, Transport::WebSocket]),
            tls,
        ),
    )
    .await
    .unwrap()
    .unwrap();
    client.send(vec![1u8, 2, 3]).unwrap();
    assert_eq!(
        timeout(Duration::from_secs(5), client.recv())
            .await
            .unwrap(),
        Some(Message::from(vec![1u8, 2, 3]))
    );
}

/// Our smol server behind futures-rustls, through `engineio_smol::serve_connection`: a
/// TLS server with no tokio runtime anywhere on the server side.
fn smol_tls_server() -> TlsServer {
    let (cert_der, server_config) = test_certificate();
    let acceptor = futures_rustls::TlsAcceptor::from(server_config);
    let engine =
        engineio_smol::EngineIo::new(engineio_smol::Smol, Echo, Config::default()).unwrap();
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = std_listener.local_addr().unwrap();
    let listener = smol::net::TcpListener::try_from(std_listener).unwrap();
    smol::spawn(async move {
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let engine = engine.clone();
            smol::spawn(async move {
                if let Ok(tls) = acceptor.accept(stream).await {
                    let peer = PeerAddr {
                        addr: peer,
                        secure: true,
                    };
                    engineio_smol::serve_connection(tls, peer, engine).await;
                }
            })
            .detach();
        }
    })
    .detach();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert_der).unwrap();
    TlsServer { addr, roots }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smol_tls_server_over_https_and_wss() {
    let server = smol_tls_server();
    for transports in [
        vec![Transport::Polling],
        vec![Transport::WebSocket],
        vec![Transport::Polling, Transport::WebSocket],
    ] {
        let tls = engineio_tokio::TlsConfig::with_rustls(client_tls(server.roots.clone()));
        let mut client = timeout(
            Duration::from_secs(10),
            engineio_tokio::connect_with_tls(config(&server, transports.clone()), tls),
        )
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{transports:?}: {e}"));
        client.send("over smol tls").unwrap();
        assert_eq!(
            timeout(Duration::from_secs(5), client.recv())
                .await
                .unwrap(),
            Some(Message::from("over smol tls")),
            "{transports:?}"
        );
        client.disconnect().await;
    }
}

#[tokio::test]
async fn an_untrusted_certificate_is_refused() {
    let server = tls_server().await;
    // The default roots (webpki) do not trust the test certificate.
    let err = timeout(
        Duration::from_secs(10),
        engineio_tokio::connect_with(config(&server, vec![Transport::Polling])),
    )
    .await
    .unwrap()
    .unwrap_err();
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );
}
