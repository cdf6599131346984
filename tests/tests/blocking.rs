//! The blocking client (engineio-smol::blocking) from plain threads, no async runtime in
//! the test itself.
#![allow(missing_docs)]

use std::time::{Duration, Instant};

use engineio_hyper::server::{Config, ConnectRequest, Handler, Rejection, Socket};
use engineio_proto::{CloseReason, Message, Transport};
use engineio_smol::ClientConfig;
use engineio_smol::blocking::Client;
use engineio_tests::binding::{Binding, SmolBinding, engine};

struct Echo;

impl Handler for Echo {
    type Data = ();

    async fn on_connect(&self, _request: &ConnectRequest<'_>) -> Result<(), Rejection> {
        Ok(())
    }

    fn on_message(&self, socket: &Socket<()>, message: Message) {
        if message.as_text() == Some("__close__") {
            socket.close();
        } else if message.as_text() != Some("__silence__") {
            let _ = socket.send(message);
        }
    }
}

fn server() -> std::net::SocketAddr {
    let mut config = Config::default();
    config.engine.ping_interval = Duration::from_millis(300);
    config.engine.ping_timeout = Duration::from_millis(200);
    SmolBinding::serve(engine::<SmolBinding, _>(Echo, config))
}

#[test]
fn blocking_round_trips_timeouts_and_close() {
    let addr = server();
    let mut client = Client::connect(&format!("http://{addr}")).expect("connect");
    assert_eq!(client.handshake().ping_interval, Duration::from_millis(300));
    client.send("hello").unwrap();
    assert_eq!(
        client.recv_timeout(Duration::from_secs(5)),
        Some(Message::from("hello"))
    );
    client.send(vec![1u8, 2, 3]).unwrap();
    assert_eq!(
        client.recv_timeout(Duration::from_secs(5)),
        Some(Message::from(vec![1u8, 2, 3]))
    );
    // Nothing comes back: the timeout is honoured, and the connection survives it.
    client.send("__silence__").unwrap();
    let start = Instant::now();
    assert_eq!(client.recv_timeout(Duration::from_millis(700)), None);
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(650) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    assert!(!client.is_closed());
    // Server close is seen by wait().
    client.send("__close__").unwrap();
    assert_eq!(client.wait(), Some(CloseReason::ServerClose));
    assert!(client.is_closed());
}

#[test]
fn blocking_disconnect_over_websocket_only() {
    let addr = server();
    let mut config = ClientConfig::new(&format!("http://{addr}")).unwrap();
    config.transports = vec![Transport::WebSocket];
    let mut client = Client::connect_with(config).expect("connect");
    assert_eq!(client.transport(), Some(Transport::WebSocket));
    client.send("x").unwrap();
    assert_eq!(
        client.recv_timeout(Duration::from_secs(5)),
        Some(Message::from("x"))
    );
    assert_eq!(client.disconnect(), Some(CloseReason::ClientClose));
}

#[test]
fn blocking_connect_failure_is_an_error() {
    // A port nothing listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let err = Client::connect(&format!("http://{addr}")).unwrap_err();
    assert!(err.to_string().contains("connect"), "{err}");
}
