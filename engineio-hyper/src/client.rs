//! The Engine.IO client over hyper and tungstenite: [`Client`], driving the protocol's
//! [`engineio_proto::client::Client`] on any [`Runtime`].
//!
//! Every decision (what to request, when to ping back, when to upgrade, batching,
//! reconnecting) is the protocol's; the driver performs HTTP requests on a small pool of
//! keep-alive connections, opens WebSockets, moves frames, keeps one timer, and hands
//! events to the application.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use engineio_proto::client::{
    Client as Machine, ClientAction, ClientEvent, HttpRequest, WsConnectError,
};
use engineio_proto::{
    CloseReason, Handshake, Message, RequestId, Response, SendError, Sid, Transport,
};
use futures_core::Stream;
use futures_sink::Sink;
use futures_util::future::{AbortHandle, abortable};
use http::{HeaderValue, header};
use http_body_util::{BodyExt, Full};
use tokio::sync::mpsc;

pub use engineio_proto::client::{
    ClientConfig, ConfigError, ConnectError, OfflinePolicy, ReconnectConfig,
};

use crate::runtime::{DeadlineTimer, Runtime, Wakeup};
use crate::ws::{Incoming, from_tungstenite, send_close, to_tungstenite, transport_end};

/// The largest HTTP response body the client reads (a long-poll answer can hold many
/// queued messages; anything larger is treated as a transport error).
const MAX_RESPONSE_BODY: usize = 256 * 1024 * 1024;
/// Idle keep-alive connections kept per server.
const MAX_IDLE_CONNECTIONS: usize = 4;
/// How long a closing WebSocket may take to flush its close frame once the client ended.
const LINGER: Duration = Duration::from_secs(2);

/// Why [`Client::connect`] failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The configuration cannot be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The connection attempt failed (and no reconnection was configured).
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// Reconnection gave up after this many retries.
    #[error("gave up after {attempts} connection retries; last error: {last}")]
    GaveUp {
        /// The retries made.
        attempts: u32,
        /// The last attempt's error.
        last: ConnectError,
    },
    /// The client ended before it connected.
    #[error("the client closed before it connected")]
    Closed,
}

struct Shared {
    machine: Mutex<Machine>,
    wakeup: Wakeup,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Machine> {
        self.machine.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// An Engine.IO client connection (with its reconnections, when configured).
///
/// Created by [`Client::connect`]; sending is synchronous and never blocks (messages
/// queue in the protocol client, bounded), receiving is async. Dropping the `Client`
/// closes the connection.
pub struct Client<R: Runtime> {
    shared: Arc<Shared>,
    runtime: R,
    events: mpsc::UnboundedReceiver<ClientEvent>,
    handshake: Handshake,
    last_reason: Option<CloseReason>,
}

impl<R: Runtime> std::fmt::Debug for Client<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("handshake", &self.handshake)
            .finish_non_exhaustive()
    }
}

impl<R: Runtime> Client<R> {
    /// Connects: performs the handshake (by polling or WebSocket, as configured) and
    /// returns once the session is open. With reconnection configured, failed attempts are
    /// retried (with backoff) until one succeeds or the attempts run out.
    pub async fn connect(runtime: R, config: ClientConfig) -> Result<Client<R>, ClientError> {
        Self::connect_with_tls(runtime, config, R::TlsConfig::default()).await
    }

    /// Like [`connect`](Self::connect), with the runtime's TLS settings for `https` and
    /// `wss` (custom trusted roots, client certificates).
    pub async fn connect_with_tls(
        runtime: R,
        config: ClientConfig,
        tls: R::TlsConfig,
    ) -> Result<Client<R>, ClientError> {
        let now = runtime.now();
        let seed = getrandom::u64().unwrap_or(0x5eed_5eed_5eed_5eed);
        let mut machine = Machine::new(config, now, seed)?;
        machine.connect(now);
        let shared = Arc::new(Shared {
            machine: Mutex::new(machine),
            wakeup: Wakeup::default(),
        });
        let (events_tx, mut events) = mpsc::unbounded_channel();
        let (inputs_tx, inputs) = mpsc::unbounded_channel();
        let driver = Driver::<R> {
            runtime: runtime.clone(),
            shared: Arc::clone(&shared),
            inputs,
            inputs_tx,
            events: events_tx,
            requests: HashMap::new(),
            sockets: Vec::new(),
            closing: Vec::new(),
            pool: Arc::new(Pool::default()),
            tls,
            timer: DeadlineTimer::default(),
            finished: None,
        };
        runtime.spawn(driver);
        let mut last_error = None;
        loop {
            match events.recv().await {
                Some(ClientEvent::Connected(handshake) | ClientEvent::Reconnected(handshake)) => {
                    return Ok(Client {
                        shared,
                        runtime,
                        events,
                        handshake,
                        last_reason: None,
                    });
                }
                Some(ClientEvent::ConnectFailed { error }) => {
                    let retrying = shared.lock().config().reconnect.is_some();
                    if !retrying {
                        return Err(ClientError::Connect(error));
                    }
                    last_error = Some(error);
                }
                Some(ClientEvent::ReconnectFailed { attempts }) => {
                    return Err(match last_error {
                        Some(last) => ClientError::GaveUp { attempts, last },
                        None => ClientError::Closed,
                    });
                }
                Some(_) => {}
                None => return Err(ClientError::Closed),
            }
        }
    }

    /// The handshake of the session that [`connect`](Self::connect) opened.
    pub fn handshake(&self) -> &Handshake {
        &self.handshake
    }

    /// The current session's id (`None` while reconnecting or once closed).
    pub fn sid(&self) -> Option<Sid> {
        self.shared.lock().sid()
    }

    /// The transport in use (`None` while reconnecting or once closed).
    pub fn transport(&self) -> Option<Transport> {
        self.shared.lock().transport()
    }

    /// Whether the client has ended for good.
    pub fn is_closed(&self) -> bool {
        self.shared.lock().is_closed()
    }

    /// Queues a message (text from `String`/`&str`, binary from `Vec<u8>`/`Bytes`).
    /// Errors hand the message back: closed, queue full, over the server's `maxPayload`,
    /// or text holding `U+001E` on polling.
    pub fn send(&self, message: impl Into<Message>) -> Result<(), SendError> {
        let result = self.shared.lock().send(message);
        if result.is_ok() {
            self.shared.wakeup.wake();
        }
        result
    }

    /// Queues a value serialised as JSON, as a text message.
    pub fn send_json<V: serde::Serialize + ?Sized>(&self, value: &V) -> Result<(), SendError> {
        let result = self.shared.lock().send_json(value);
        if result.is_ok() {
            self.shared.wakeup.wake();
        }
        result
    }

    /// The next event (messages, upgrades, disconnections, reconnections...). `None` once
    /// the client has ended and every event was read.
    pub async fn next_event(&mut self) -> Option<ClientEvent> {
        let event = self.events.recv().await;
        if let Some(ClientEvent::Disconnected(reason)) = &event {
            self.last_reason = Some(reason.clone());
        }
        event
    }

    /// The next message from the server. `None` once the client has ended (other events
    /// are skipped; see [`next_event`](Self::next_event) to see them).
    pub async fn recv(&mut self) -> Option<Message> {
        loop {
            match self.next_event().await? {
                ClientEvent::Message(m) => return Some(m),
                ClientEvent::Reconnected(hs) => self.handshake = hs,
                _ => {}
            }
        }
    }

    /// Closes the connection (queued messages are sent first) without waiting.
    pub fn close(&self) {
        let now = self.runtime.now();
        self.shared.lock().close(now);
        self.shared.wakeup.wake();
    }

    /// Closes the connection and waits until it has ended; returns why it ended.
    pub async fn disconnect(mut self) -> Option<CloseReason> {
        self.close();
        self.wait().await
    }

    /// Waits until the client has ended for good (skipping the events not yet read);
    /// returns why the last session ended.
    pub async fn wait(&mut self) -> Option<CloseReason> {
        while self.next_event().await.is_some() {}
        self.last_reason
            .clone()
            .or_else(|| self.shared.lock().last_close_reason().cloned())
    }
}

impl<R: Runtime> Drop for Client<R> {
    fn drop(&mut self) {
        let now = self.runtime.now();
        let mut machine = self.shared.lock();
        if !machine.is_closed() {
            machine.close(now);
        }
        drop(machine);
        self.shared.wakeup.wake();
    }
}

// ------------------------------------------------------------------- driver

enum Input<W> {
    Response(RequestId, Result<Response, String>),
    WsConnected(RequestId, W),
    WsFailed(RequestId, WsConnectError),
}

enum Ws<W> {
    Connecting(AbortHandle),
    Open {
        ws: W,
        out: std::collections::VecDeque<tungstenite::Message>,
        flush: bool,
    },
}

struct Driver<R: Runtime> {
    runtime: R,
    shared: Arc<Shared>,
    inputs: mpsc::UnboundedReceiver<Input<R::ClientWebSocket>>,
    inputs_tx: mpsc::UnboundedSender<Input<R::ClientWebSocket>>,
    events: mpsc::UnboundedSender<ClientEvent>,
    requests: HashMap<RequestId, AbortHandle>,
    sockets: Vec<(RequestId, Ws<R::ClientWebSocket>)>,
    closing: Vec<R::ClientWebSocket>,
    pool: Arc<Pool<R>>,
    tls: R::TlsConfig,
    timer: DeadlineTimer<R::Timer>,
    finished: Option<Instant>,
}

impl<R: Runtime> Driver<R> {
    fn blocked(&self) -> bool {
        self.sockets
            .iter()
            .any(|(_, ws)| matches!(ws, Ws::Open { out, .. } if !out.is_empty()))
    }

    fn inputs(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progress = false;
        while let Poll::Ready(Some(input)) = self.inputs.poll_recv(cx) {
            progress = true;
            let now = self.runtime.now();
            match input {
                Input::Response(id, result) => {
                    self.requests.remove(&id);
                    self.shared.lock().handle_response(now, id, result);
                }
                Input::WsConnected(id, ws) => {
                    match self.sockets.iter_mut().find(|(i, _)| *i == id) {
                        Some((_, slot @ Ws::Connecting(_))) => {
                            *slot = Ws::Open {
                                ws,
                                out: Default::default(),
                                flush: false,
                            };
                            self.shared.lock().handle_ws_connected(now, id);
                        }
                        // Given up meanwhile: close it.
                        _ => self.closing.push(ws),
                    }
                }
                Input::WsFailed(id, error) => {
                    self.sockets.retain(|(i, _)| *i != id);
                    self.shared.lock().handle_ws_connect_failed(now, id, error);
                }
            }
        }
        progress
    }

    fn read(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progress = false;
        let mut ended = Vec::new();
        for (id, ws) in self.sockets.iter_mut() {
            let Ws::Open { ws, flush, .. } = ws else {
                continue;
            };
            for _ in 0..64 {
                match Pin::new(&mut *ws).poll_next(cx) {
                    Poll::Pending => break,
                    Poll::Ready(Some(Ok(m))) => {
                        progress = true;
                        match from_tungstenite(m) {
                            Incoming::Data(m) => {
                                let now = self.runtime.now();
                                self.shared.lock().handle_ws_message(now, *id, m);
                            }
                            Incoming::Close => {
                                ended.push((*id, engineio_proto::TransportEnd::Closed));
                                break;
                            }
                            Incoming::Ping => *flush = true,
                            Incoming::Ignore => {}
                        }
                    }
                    Poll::Ready(Some(Err(e))) => {
                        progress = true;
                        ended.push((*id, transport_end(e)));
                        break;
                    }
                    Poll::Ready(None) => {
                        progress = true;
                        ended.push((*id, engineio_proto::TransportEnd::Closed));
                        break;
                    }
                }
            }
        }
        for (id, end) in ended {
            if let Some(pos) = self.sockets.iter().position(|(i, _)| *i == id)
                && let (_, Ws::Open { ws, .. }) = self.sockets.swap_remove(pos)
            {
                self.closing.push(ws);
            }
            let now = self.runtime.now();
            self.shared.lock().handle_ws_closed(now, id, end);
        }
        progress
    }

    fn write(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progress = false;
        let mut failed = Vec::new();
        for (id, ws) in self.sockets.iter_mut() {
            let Ws::Open { ws, out, flush } = ws else {
                continue;
            };
            while !out.is_empty() {
                match Pin::new(&mut *ws).poll_ready(cx) {
                    Poll::Pending => break,
                    Poll::Ready(Err(e)) => {
                        failed.push((*id, transport_end(e)));
                        break;
                    }
                    Poll::Ready(Ok(())) => {}
                }
                let Some(m) = out.pop_front() else { break };
                if let Err(e) = Pin::new(&mut *ws).start_send(m) {
                    failed.push((*id, transport_end(e)));
                    break;
                }
                *flush = true;
                progress = true;
            }
            if *flush {
                match Pin::new(&mut *ws).poll_flush(cx) {
                    Poll::Ready(Ok(())) => *flush = false,
                    Poll::Ready(Err(e)) => failed.push((*id, transport_end(e))),
                    Poll::Pending => {}
                }
            }
        }
        for (id, end) in failed {
            self.sockets.retain(|(i, _)| *i != id);
            let now = self.runtime.now();
            self.shared.lock().handle_ws_closed(now, id, end);
            progress = true;
        }
        self.closing
            .retain_mut(|ws| matches!(Pin::new(ws).poll_close(cx), Poll::Pending));
        progress
    }

    fn drain(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progress = false;
        while !self.blocked() {
            let Some(action) = self.shared.lock().poll_action() else {
                break;
            };
            progress = true;
            match action {
                ClientAction::HttpRequest { id, request } => self.http(id, request),
                ClientAction::AbortRequest { id } => {
                    if let Some(handle) = self.requests.remove(&id) {
                        handle.abort();
                    }
                }
                ClientAction::WsConnect { id, uri, headers } => self.ws_connect(id, uri, headers),
                ClientAction::WsSend { ws, message } => {
                    if let Some((_, Ws::Open { out, .. })) =
                        self.sockets.iter_mut().find(|(i, _)| *i == ws)
                    {
                        out.push_back(to_tungstenite(message));
                    }
                    self.write(cx);
                }
                ClientAction::WsClose { ws, code, reason } => {
                    if let Some(pos) = self.sockets.iter().position(|(i, _)| *i == ws) {
                        match self.sockets.swap_remove(pos).1 {
                            Ws::Connecting(handle) => handle.abort(),
                            Ws::Open { mut ws, out, .. } => {
                                for m in out {
                                    if let Poll::Ready(Ok(())) = Pin::new(&mut ws).poll_ready(cx) {
                                        let _ = Pin::new(&mut ws).start_send(m);
                                    }
                                }
                                send_close(cx, &mut ws, code, reason);
                                self.closing.push(ws);
                            }
                        }
                    }
                }
                ClientAction::Event(event) => {
                    // The application may have dropped its side; then nobody listens.
                    let _ = self.events.send(event);
                }
            }
        }
        progress
    }

    fn http(&mut self, id: RequestId, request: HttpRequest) {
        let runtime = self.runtime.clone();
        let pool = Arc::clone(&self.pool);
        let tls = self.tls.clone();
        let tx = self.inputs_tx.clone();
        let (task, handle) = abortable(async move {
            let result = perform(&runtime, &pool, &tls, request).await;
            let _ = tx.send(Input::Response(id, result));
        });
        self.requests.insert(id, handle);
        self.runtime.spawn(async move {
            let _ = task.await;
        });
    }

    fn ws_connect(&mut self, id: RequestId, uri: http::Uri, headers: http::HeaderMap) {
        let runtime = self.runtime.clone();
        let tls = self.tls.clone();
        let tx = self.inputs_tx.clone();
        let (task, handle) = abortable(async move {
            let input = match websocket_request(&uri, headers) {
                Ok(request) => {
                    let config = tungstenite::protocol::WebSocketConfig::default()
                        .read_buffer_size(16 * 1024)
                        .write_buffer_size(64 * 1024);
                    match runtime.connect_websocket(request, config, &tls).await {
                        Ok(ws) => Input::WsConnected(id, ws),
                        Err(tungstenite::Error::Http(response)) => {
                            let (parts, body) = response.into_parts();
                            Input::WsFailed(
                                id,
                                WsConnectError::Rejected(Response {
                                    status: parts.status,
                                    headers: parts.headers,
                                    body: Bytes::from(body.unwrap_or_default()),
                                }),
                            )
                        }
                        Err(e) => Input::WsFailed(id, WsConnectError::Io(e.to_string())),
                    }
                }
                Err(e) => Input::WsFailed(id, WsConnectError::Io(e)),
            };
            let _ = tx.send(input);
        });
        self.sockets.push((id, Ws::Connecting(handle)));
        self.runtime.spawn(async move {
            let _ = task.await;
        });
    }

    fn poll_timer(&mut self, cx: &mut Context<'_>) -> bool {
        let deadline = match self.finished {
            Some(linger) => Some(linger),
            None => self.shared.lock().poll_timeout(),
        };
        if !self.timer.expired(&self.runtime, deadline, cx) {
            return false;
        }
        if self.finished.is_some() {
            self.closing.clear();
            self.sockets.clear();
            return true;
        }
        let now = self.runtime.now();
        self.shared.lock().handle_timeout(now);
        true
    }
}

impl<R: Runtime> Future for Driver<R> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        this.shared.wakeup.enter(cx);
        loop {
            let mut progress = this.inputs(cx);
            progress |= this.write(cx);
            if !this.blocked() {
                progress |= this.read(cx);
                progress |= this.drain(cx);
            }
            progress |= this.poll_timer(cx);
            if this.finished.is_none() && this.shared.lock().is_closed() && !progress {
                // Ended: stop the requests still running, let closing sockets flush.
                for (_, handle) in this.requests.drain() {
                    handle.abort();
                }
                for (_, ws) in this.sockets.drain(..) {
                    match ws {
                        Ws::Connecting(handle) => handle.abort(),
                        Ws::Open { ws, .. } => this.closing.push(ws),
                    }
                }
                this.finished = Some(this.runtime.now() + LINGER);
                continue;
            }
            if this.finished.is_some() && this.closing.is_empty() {
                this.shared.wakeup.exit();
                return Poll::Ready(());
            }
            if !progress && !this.shared.wakeup.idle() {
                return Poll::Pending;
            }
        }
    }
}

/// Builds the WebSocket upgrade request: tungstenite's handshake headers plus ours.
fn websocket_request(
    uri: &http::Uri,
    headers: http::HeaderMap,
) -> Result<http::Request<()>, String> {
    use tungstenite::client::IntoClientRequest;
    let mut request = uri
        .clone()
        .into_client_request()
        .map_err(|e| e.to_string())?;
    for (name, value) in headers.iter() {
        request.headers_mut().append(name.clone(), value.clone());
    }
    Ok(request)
}

// ------------------------------------------------------------------- HTTP

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// Idle keep-alive connections, by server.
struct Pool<R> {
    idle: Mutex<HashMap<(String, u16, bool), Vec<Sender>>>,
    _runtime: std::marker::PhantomData<fn() -> R>,
}

impl<R> Default for Pool<R> {
    fn default() -> Self {
        Pool {
            idle: Mutex::new(HashMap::new()),
            _runtime: std::marker::PhantomData,
        }
    }
}

impl<R: Runtime> Pool<R> {
    fn take(&self, key: &(String, u16, bool)) -> Option<Sender> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let senders = idle.get_mut(key)?;
        while let Some(s) = senders.pop() {
            if !s.is_closed() {
                return Some(s);
            }
        }
        None
    }

    fn put(&self, key: (String, u16, bool), sender: Sender) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let senders = idle.entry(key).or_default();
        if senders.len() < MAX_IDLE_CONNECTIONS {
            senders.push(sender);
        }
    }

    async fn connect(
        &self,
        runtime: &R,
        tls: &R::TlsConfig,
        key: &(String, u16, bool),
    ) -> Result<Sender, String> {
        let io = runtime
            .connect_http(key.0.clone(), key.1, key.2, tls)
            .await
            .map_err(|e| format!("cannot connect to {}:{}: {e}", key.0, key.1))?;
        let (sender, connection) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| e.to_string())?;
        runtime.spawn(async move {
            let _ = connection.await;
        });
        Ok(sender)
    }
}

async fn perform<R: Runtime>(
    runtime: &R,
    pool: &Pool<R>,
    tls: &R::TlsConfig,
    request: HttpRequest,
) -> Result<Response, String> {
    let uri = request.uri;
    let secure = uri.scheme_str() == Some("https");
    let host = uri.host().ok_or("request URI without a host")?.to_owned();
    let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
    let key = (host, port, secure);
    let mut sender = match pool.take(&key) {
        Some(s) => s,
        None => pool.connect(runtime, tls, &key).await?,
    };
    std::future::poll_fn(|cx| sender.poll_ready(cx))
        .await
        .map_err(|e| e.to_string())?;
    let authority = uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .unwrap_or_default();
    let path = uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".to_owned());
    let mut builder = http::Request::builder().method(request.method).uri(path);
    if let Some(h) = builder.headers_mut() {
        *h = request.headers;
        if let Ok(v) = HeaderValue::from_str(&authority) {
            h.insert(header::HOST, v);
        }
    }
    let req = builder
        .body(Full::new(request.body))
        .map_err(|e| e.to_string())?;
    let response = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let (parts, mut body) = response.into_parts();
    let mut data = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| e.to_string())?;
        if let Ok(chunk) = frame.into_data() {
            if data.len() + chunk.len() > MAX_RESPONSE_BODY {
                return Err(format!("response body over {MAX_RESPONSE_BODY} bytes"));
            }
            data.extend_from_slice(&chunk);
        }
    }
    pool.put(key, sender);
    Ok(Response {
        status: parts.status,
        headers: parts.headers,
        body: data.freeze(),
    })
}
