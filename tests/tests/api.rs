//! The application-facing API over real sockets (issue 14): the hook once a session
//! exists, the client's sender handle, `wait` and `run`, the server's explanation in
//! client errors, the 401 rejection, `bind` with port 0, and tokio's blocking client.
#![allow(missing_docs)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use engineio_tokio::{
    ClientConfig, ClientError, ClientHandler, ClientSender, CloseReason, Config, ConnectError,
    ConnectRequest, EngineIo, Handler, Handshake, Message, Rejection, Sid, Socket, StatusCode,
    Tokio, Transport,
};

/// Records the sids it saw in `on_connect` and `on_open`, and sends a welcome from
/// `on_open`; echoes, and answers `__burst_close__` with three messages and a close.
#[derive(Default)]
struct Recorder {
    seen_in_connect: Mutex<Vec<Sid>>,
    seen_in_open: Mutex<Vec<(Sid, Transport)>>,
}

struct Rec(Arc<Recorder>);

impl Handler for Rec {
    type Data = ();

    async fn on_connect(&self, request: &ConnectRequest<'_>) -> Result<(), Rejection> {
        if request.query("token").as_deref() == Some("bad") {
            return Err(Rejection::unauthorized("a valid token is needed"));
        }
        self.0.seen_in_connect.lock().unwrap().push(request.sid());
        Ok(())
    }

    fn on_open(&self, socket: &Socket<()>) {
        self.0
            .seen_in_open
            .lock()
            .unwrap()
            .push((socket.sid(), socket.transport()));
        socket.send(format!("welcome {}", socket.sid())).unwrap();
    }

    fn on_message(&self, socket: &Socket<()>, message: Message) {
        if message.as_text() == Some("__burst_close__") {
            for i in 0..3 {
                let _ = socket.send(format!("burst {i}"));
            }
            socket.close();
        } else {
            let _ = socket.send(message);
        }
    }
}

async fn server(config: Config) -> (std::net::SocketAddr, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::default());
    let engine = EngineIo::new(Tokio, Rec(Arc::clone(&recorder)), config).unwrap();
    let server = engineio_tokio::bind("127.0.0.1:0", engine).await.unwrap();
    let addr = server.local_addr();
    assert_ne!(addr.port(), 0, "bind reports the port the system chose");
    tokio::spawn(server.into_future());
    (addr, recorder)
}

fn fast() -> Config {
    Config::default()
        .with_ping_interval(Duration::from_millis(500))
        .with_ping_timeout(Duration::from_millis(500))
}

async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .expect("within 10 s")
}

#[tokio::test]
async fn on_open_comes_first_with_the_sid_on_connect_saw_and_can_send() {
    let (addr, recorder) = server(fast()).await;
    for transports in [
        vec![Transport::Polling, Transport::WebSocket],
        vec![Transport::WebSocket],
    ] {
        let mut config = ClientConfig::new(&format!("http://{addr}")).unwrap();
        config.transports = transports.clone();
        let mut client = within(engineio_tokio::connect_with(config)).await.unwrap();
        let sid = client.sid().unwrap();
        // The welcome sent from on_open is the first message, before any echo.
        client.send("after").unwrap();
        assert_eq!(
            within(client.recv()).await,
            Some(Message::from(format!("welcome {sid}")))
        );
        assert_eq!(within(client.recv()).await, Some(Message::from("after")));
        assert_eq!(recorder.seen_in_connect.lock().unwrap().last(), Some(&sid));
        assert_eq!(
            recorder.seen_in_open.lock().unwrap().last(),
            Some(&(sid, transports[0]))
        );
        client.disconnect().await;
    }
    assert_eq!(recorder.seen_in_open.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn a_sender_sends_from_another_task_while_this_one_receives() {
    let (addr, _) = server(fast()).await;
    let mut client = within(engineio_tokio::connect(&format!("http://{addr}")))
        .await
        .unwrap();
    assert!(
        within(client.recv())
            .await
            .unwrap()
            .as_text()
            .unwrap()
            .starts_with("welcome")
    );
    let sender: ClientSender = client.sender();
    let background = tokio::spawn({
        let sender = sender.clone();
        async move {
            for i in 0..50 {
                sender.send(format!("n{i}")).unwrap();
                tokio::task::yield_now().await;
            }
        }
    });
    for i in 0..50 {
        assert_eq!(
            within(client.recv()).await,
            Some(Message::from(format!("n{i}")))
        );
    }
    background.await.unwrap();
    // A sender can close the connection; the receiving side sees the end.
    sender.close();
    assert_eq!(within(client.wait()).await, Some(CloseReason::ClientClose));
    assert!(matches!(
        sender.send("late"),
        Err(engineio_tokio::SendError::Closed(_))
    ));
}

#[tokio::test]
async fn wait_keeps_the_messages_it_did_not_hand_out() {
    let (addr, _) = server(fast()).await;
    let mut client = within(engineio_tokio::connect(&format!("http://{addr}")))
        .await
        .unwrap();
    client.send("__burst_close__").unwrap();
    assert_eq!(within(client.wait()).await, Some(CloseReason::ServerClose));
    // Everything that arrived while waiting is still there, in order.
    let mut after = Vec::new();
    while let Some(m) = within(client.recv()).await {
        after.push(m.as_text().unwrap().to_owned());
    }
    assert_eq!(after.len(), 4, "{after:?}");
    assert!(after[0].starts_with("welcome"));
    assert_eq!(after[1..], ["burst 0", "burst 1", "burst 2"]);
}

/// Collects what `run` hands it; sends on open, closes after the third burst message.
#[derive(Default)]
struct Collect {
    opened: Vec<Sid>,
    messages: Vec<String>,
    disconnects: Vec<CloseReason>,
}

impl ClientHandler for &mut Collect {
    fn on_open(&mut self, sender: &ClientSender, handshake: &Handshake) {
        self.opened.push(handshake.sid);
        sender.send("__burst_close__").unwrap();
    }

    fn on_message(&mut self, _sender: &ClientSender, message: Message) {
        self.messages
            .push(message.as_text().unwrap_or("").to_owned());
    }

    fn on_disconnect(&mut self, reason: &CloseReason) {
        self.disconnects.push(reason.clone());
    }
}

#[tokio::test]
async fn run_calls_the_handler_for_every_event() {
    let (addr, _) = server(fast()).await;
    let mut client = within(engineio_tokio::connect(&format!("http://{addr}")))
        .await
        .unwrap();
    let sid = client.sid().unwrap();
    let mut collected = Collect::default();
    let reason = within(client.run(&mut collected)).await;
    assert_eq!(reason, Some(CloseReason::ServerClose));
    assert_eq!(collected.opened, [sid]);
    assert_eq!(
        collected.messages,
        [
            format!("welcome {sid}"),
            "burst 0".into(),
            "burst 1".into(),
            "burst 2".into()
        ]
    );
    assert_eq!(collected.disconnects, [CloseReason::ServerClose]);
}

#[tokio::test]
async fn client_errors_keep_the_servers_explanation_and_401_rejections() {
    let (addr, _) = server(fast().with_transports([Transport::WebSocket])).await;
    // Polling is disabled: the client says so, not just "Transport unknown".
    let mut config = ClientConfig::new(&format!("http://{addr}")).unwrap();
    config.transports = vec![Transport::Polling];
    let error = within(engineio_tokio::connect_with(config))
        .await
        .unwrap_err();
    match &error {
        ClientError::Connect(ConnectError::Refused {
            status,
            code: Some(0),
            message: Some(message),
            detail: Some(detail),
        }) => {
            assert_eq!(*status, StatusCode::BAD_REQUEST);
            assert_eq!(message, "Transport unknown");
            assert_eq!(detail, "transport polling is disabled on this server");
        }
        other => panic!("{other:?}"),
    }
    assert!(error.to_string().contains("polling is disabled"), "{error}");

    // python-engineio's 401 for a refused connect, over polling.
    let (addr, _) = server(fast()).await;
    let error = within(engineio_tokio::connect(&format!(
        "http://{addr}/?token=bad"
    )))
    .await
    .unwrap_err();
    assert!(
        matches!(&error, ClientError::Connect(ConnectError::Refused {
            status: StatusCode::UNAUTHORIZED, code: Some(4), message: Some(m), ..
        }) if m == "a valid token is needed"),
        "{error:?}"
    );
}

#[test]
fn the_tokio_blocking_client_needs_no_runtime_from_its_caller() {
    let server_runtime = tokio::runtime::Runtime::new().unwrap();
    let (addr, _) = server_runtime.block_on(server(fast()));
    // A plain thread: no runtime here.
    let handle = std::thread::spawn(move || {
        let mut client =
            engineio_tokio::blocking::Client::connect(&format!("http://{addr}")).unwrap();
        let welcome = client.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(welcome.as_text().unwrap().starts_with("welcome"));
        client.send("hello").unwrap();
        assert_eq!(
            client.recv_timeout(Duration::from_secs(5)),
            Some(Message::from("hello"))
        );
        // Nothing more comes: the timeout is honoured, and the session outlives the
        // server's ping interval meanwhile (the runtime's thread answers the pings).
        assert_eq!(client.recv_timeout(Duration::from_millis(1200)), None);
        assert!(!client.is_closed());
        let sender = client.sender();
        std::thread::spawn(move || sender.send("from a thread").unwrap())
            .join()
            .unwrap();
        assert_eq!(
            client.recv_timeout(Duration::from_secs(5)),
            Some(Message::from("from a thread"))
        );
        client.disconnect()
    });
    assert_eq!(handle.join().unwrap(), Some(CloseReason::ClientClose));
}
