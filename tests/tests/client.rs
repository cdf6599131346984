//! Our client against our server over loopback: both client runtimes × both server
//! bindings × every transport mode.
#![allow(missing_docs)]

use std::time::Duration;

use engineio_hyper::Runtime;
use engineio_hyper::client::{Client, ClientConfig, ClientError};
use engineio_hyper::server::{Config, ConnectRequest, Handler, Rejection, Socket};
use engineio_proto::client::ClientEvent;
use engineio_proto::{CloseReason, Message, SendError, Transport};
use engineio_tests::binding::{Binding, SmolBinding, TokioBinding, engine};
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(10);

struct Echo;

impl Handler for Echo {
    type Data = ();

    async fn on_connect(&self, request: &ConnectRequest<'_>) -> Result<(), Rejection> {
        if request.query("token").as_deref() == Some("bad") {
            return Err(Rejection::forbidden());
        }
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

#[derive(Clone, Copy, Debug)]
enum Mode {
    Polling,
    WebSocket,
    Upgrade,
}

fn server_config() -> Config {
    let mut c = Config::default();
    c.engine.ping_interval = Duration::from_millis(300);
    c.engine.ping_timeout = Duration::from_millis(200);
    c
}

fn client_config(addr: std::net::SocketAddr, mode: Mode) -> ClientConfig {
    let mut c = ClientConfig::new(&format!("http://{addr}")).unwrap();
    match mode {
        Mode::Polling => c.transports = vec![Transport::Polling],
        Mode::WebSocket => c.transports = vec![Transport::WebSocket],
        Mode::Upgrade => c.transports = vec![Transport::Polling, Transport::WebSocket],
    }
    c
}

async fn echo_round<R: Runtime>(client: &mut Client<R>, message: Message) {
    client.send(message.clone()).unwrap();
    let back = timeout(WAIT, client.recv()).await.expect("echo in time");
    assert_eq!(back, Some(message));
}

async fn full_session<S: Binding, C: Runtime>(client_runtime: C, mode: Mode) {
    let engine = engine::<S, _>(Echo, server_config());
    let addr = S::serve(engine.clone());
    let mut client = timeout(
        WAIT,
        Client::connect(client_runtime.clone(), client_config(addr, mode)),
    )
    .await
    .expect("connect in time")
    .expect("connected");
    assert_eq!(client.handshake().ping_interval, Duration::from_millis(300));
    if let Mode::Upgrade = mode {
        // The first event after connecting is the upgrade.
        match timeout(WAIT, client.next_event())
            .await
            .expect("upgrade in time")
        {
            Some(ClientEvent::Upgraded) => {}
            other => panic!("expected the upgrade, got {other:?}"),
        }
    }
    let expected = match mode {
        Mode::Polling => Transport::Polling,
        _ => Transport::WebSocket,
    };
    assert_eq!(client.transport(), Some(expected));
    echo_round(&mut client, Message::from("hello €😀")).await;
    echo_round(&mut client, Message::from((0..=255u8).collect::<Vec<u8>>())).await;
    echo_round(&mut client, Message::from("x".repeat(100_000))).await;
    echo_round(&mut client, Message::from(vec![9u8; 100_000])).await;
    // Several in a row arrive in order.
    for i in 0..50 {
        client.send(format!("m{i}")).unwrap();
    }
    for i in 0..50 {
        let m = timeout(WAIT, client.recv()).await.unwrap().unwrap();
        assert_eq!(m.as_text(), Some(format!("m{i}").as_str()));
    }
    // Survives several heartbeats.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    echo_round(&mut client, Message::from("still here")).await;
    // Over the limit is refused locally.
    assert!(matches!(
        client.send(vec![0u8; 1_000_001]),
        Err(SendError::TooLarge { .. })
    ));
    assert_eq!(engine.count(), 1);
    // Server close.
    client.send("__close__").unwrap();
    let reason = timeout(WAIT, client.wait()).await.expect("closed in time");
    assert_eq!(reason, Some(CloseReason::ServerClose));
    // Client close.
    let client = Client::connect(client_runtime, client_config(addr, mode))
        .await
        .unwrap();
    let reason = timeout(WAIT, client.disconnect()).await.unwrap();
    assert_eq!(reason, Some(CloseReason::ClientClose));
    engineio_tests::net::wait_until(|| engine.count() == 0).await;
}

async fn refused<S: Binding, C: Runtime>(client_runtime: C) {
    let engine = engine::<S, _>(Echo, server_config());
    let addr = S::serve(engine);
    let mut config = client_config(addr, Mode::Polling);
    config.query.push(("token".into(), "bad".into()));
    match timeout(WAIT, Client::connect(client_runtime, config))
        .await
        .unwrap()
    {
        Err(ClientError::Connect(e)) => assert!(e.to_string().contains("403"), "{e}"),
        other => panic!("{other:?}"),
    }
}

macro_rules! matrix {
    ($($name:ident: $server:ty, $client:expr, $mode:expr;)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                full_session::<$server, _>($client, $mode).await
            }
        )*
    };
}

matrix! {
    tokio_server_tokio_client_polling: TokioBinding, engineio_tokio::Tokio, Mode::Polling;
    tokio_server_tokio_client_websocket: TokioBinding, engineio_tokio::Tokio, Mode::WebSocket;
    tokio_server_tokio_client_upgrade: TokioBinding, engineio_tokio::Tokio, Mode::Upgrade;
    smol_server_smol_client_polling: SmolBinding, engineio_smol::Smol, Mode::Polling;
    smol_server_smol_client_websocket: SmolBinding, engineio_smol::Smol, Mode::WebSocket;
    smol_server_smol_client_upgrade: SmolBinding, engineio_smol::Smol, Mode::Upgrade;
    tokio_server_smol_client_upgrade: TokioBinding, engineio_smol::Smol, Mode::Upgrade;
    smol_server_tokio_client_upgrade: SmolBinding, engineio_tokio::Tokio, Mode::Upgrade;
}

#[tokio::test]
async fn refused_handshake_is_a_typed_error_tokio() {
    refused::<TokioBinding, _>(engineio_tokio::Tokio).await;
}

#[tokio::test]
async fn refused_handshake_is_a_typed_error_smol() {
    refused::<SmolBinding, _>(engineio_smol::Smol).await;
}
