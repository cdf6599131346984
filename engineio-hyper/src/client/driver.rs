//! The task that drives the client state machine: it performs the machine's actions,
//! feeds it what happened (responses, WebSocket frames and ends, time), and hands its
//! events to the application.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use engineio_proto::client::{
    ClientAction, ClientEvent, HttpError, HttpRequest, ProxyUrl, WsConnectError, WsLimits,
};
use engineio_proto::{RequestId, Response, TransportError};
use futures_util::future::{AbortHandle, abortable};
use tokio::sync::mpsc;

use super::Shared;
use super::http::Pool;
use super::ws::{Outcome, PULL_BYTES, PULL_MESSAGES, Sockets};
use crate::metrics::ConnectionMetrics;
use crate::runtime::{DeadlineTimer, Runtime};

/// Rounds of work in one poll before the driver lets other tasks run.
const ROUNDS: usize = 32;

/// While a WebSocket has something waiting to go out, the driver also looks again this
/// often, whatever the socket's wake-up says. On smol (async-tungstenite over async-net, before the switch to yawc),
/// a client whose server stops reading and then reads again was seen parked for good
/// with frames still to write (`client_faults`
/// `a_websocket_server_that_stops_reading_pushes_back`: 2 runs in 120 with three runs in
/// parallel; never on tokio), and any wake-up made it go on: a wake-up of the socket's
/// writability is lost somewhere below the link. Until that is found, a blocked socket is
/// retried on this period (an attempt that finds it still blocked costs one write call).
const WRITING_RECHECK: Duration = Duration::from_millis(100);

/// What the driver's helper tasks report.
enum Input<W> {
    Response(RequestId, Result<Response, HttpError>),
    WsConnected(RequestId, W),
    WsFailed(RequestId, WsConnectError),
}

pub(super) struct Driver<R: Runtime> {
    runtime: R,
    shared: Arc<Shared>,
    inputs: mpsc::UnboundedReceiver<Input<R::ClientWebSocket>>,
    inputs_tx: mpsc::UnboundedSender<Input<R::ClientWebSocket>>,
    /// To the application; dropped once the machine has finished, which ends its events.
    events: Option<mpsc::UnboundedSender<ClientEvent>>,
    requests: HashMap<RequestId, AbortHandle>,
    sockets: Sockets<R::ClientWebSocket>,
    pool: Arc<Pool<R>>,
    tls: R::TlsConfig,
    /// The HTTP proxy the connections go through, if any.
    proxy: Option<ProxyUrl>,
    timer: DeadlineTimer<R::Timer>,
    /// When to look at a socket with something to write again (see [`WRITING_RECHECK`]).
    writing_recheck: Option<std::time::Instant>,
    /// The machine has finished: what is left is closing sockets, until they are closed
    /// or the machine drops them.
    finished: bool,
    /// The span the driver runs in: one per session, with its sid (and one without a sid
    /// while connecting).
    span: tracing::Span,
    /// The connection's share of the metrics (nothing without the `metrics` feature).
    metrics: ConnectionMetrics,
}

/// The span of a session (or, with no sid, of the attempts before one).
fn session_span(sid: Option<engineio_proto::Sid>) -> tracing::Span {
    match sid {
        Some(sid) => tracing::info_span!(parent: None, "engineio_client_session", sid = %sid),
        None => {
            tracing::info_span!(parent: None, "engineio_client_session", sid = tracing::field::Empty)
        }
    }
}

impl<R: Runtime> Driver<R> {
    pub(super) fn new(
        runtime: R,
        shared: Arc<Shared>,
        events: mpsc::UnboundedSender<ClientEvent>,
        tls: R::TlsConfig,
        proxy: Option<ProxyUrl>,
    ) -> Driver<R> {
        let (inputs_tx, inputs) = mpsc::unbounded_channel();
        let metrics = ConnectionMetrics::new(&shared.metrics);
        Driver {
            runtime,
            shared,
            inputs,
            inputs_tx,
            events: Some(events),
            requests: HashMap::new(),
            sockets: Sockets::default(),
            pool: Arc::new(Pool::new(proxy.clone())),
            tls,
            proxy,
            timer: DeadlineTimer::default(),
            writing_recheck: None,
            finished: false,
            span: session_span(None),
            metrics,
        }
    }

    /// Hands the helper tasks' reports to the machine.
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
                    // What Client::websocket_deflate reports once this socket carries the
                    // session: the parameters it runs with (the bindings' client
                    // WebSocket is ours; another type says nothing).
                    let agreed = (&ws as &dyn std::any::Any)
                        .downcast_ref::<crate::ws::WebSocket>()
                        .and_then(crate::ws::WebSocket::deflate);
                    *self
                        .shared
                        .websocket_deflate
                        .lock()
                        .unwrap_or_else(|e| e.into_inner()) = agreed;
                    if self.sockets.connected(id, ws) {
                        self.shared.lock().handle_ws_connected(now, id);
                    }
                }
                Input::WsFailed(id, error) => {
                    self.sockets.failed(id);
                    self.shared.lock().handle_ws_connect_failed(now, id, error);
                }
            }
        }
        progress
    }

    /// Performs every action the machine has (none waits for a socket to be writable).
    fn drain(&mut self) -> bool {
        let mut progress = false;
        loop {
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
                ClientAction::WsConnect {
                    id,
                    uri,
                    headers,
                    limits,
                    deflate,
                } => self.ws_connect(id, uri, headers, limits, deflate),
                ClientAction::WsSend { ws, message } => self.sockets.send(ws, message),
                ClientAction::WsClose { ws, code, reason } => {
                    self.sockets.close(ws, code, reason);
                }
                ClientAction::WsDrop { ws } => self.sockets.drop_socket(ws),
                ClientAction::Event(event) => {
                    let shared = &self.shared;
                    self.metrics.event(&event, || shared.lock().transport());
                    match &event {
                        ClientEvent::Connected(hs) | ClientEvent::Reconnected(hs) => {
                            self.span = session_span(Some(hs.sid));
                        }
                        ClientEvent::Disconnected(_) => self.span = session_span(None),
                        _ => {}
                    }
                    // The application may have dropped its side; then nobody listens.
                    if let Some(events) = &self.events {
                        let _ = events.send(event);
                    }
                }
            }
        }
        progress
    }

    /// Writes and reads the WebSockets; tells the machine what was read and what ended.
    fn sockets(&mut self, cx: &mut Context<'_>) -> (bool, bool) {
        let mut outcome = Outcome::default();
        let shared = &self.shared;
        self.sockets.write(
            cx,
            |id, batch| {
                let mut machine = shared.lock();
                let mut bytes = 0;
                while batch.len() < PULL_MESSAGES && bytes < PULL_BYTES {
                    match machine.poll_ws_send(id) {
                        Some(m) => {
                            bytes += m.len();
                            batch.push(m);
                        }
                        None => break,
                    }
                }
            },
            &mut outcome,
        );
        self.sockets.read(cx, &mut outcome);
        if !outcome.received.is_empty() || !outcome.ended.is_empty() {
            // One lock and one clock reading for the whole batch.
            let now = self.runtime.now();
            let mut machine = self.shared.lock();
            for (id, message) in outcome.received {
                machine.handle_ws_message(now, id, message);
            }
            for (id, end) in outcome.ended {
                machine.handle_ws_closed(now, id, end);
            }
        }
        (outcome.progress, outcome.more)
    }

    fn http(&mut self, id: RequestId, request: HttpRequest) {
        let runtime = self.runtime.clone();
        let pool = Arc::clone(&self.pool);
        let tls = self.tls.clone();
        let tx = self.inputs_tx.clone();
        let (task, handle) = abortable(async move {
            let result = pool.perform(&runtime, &tls, request).await;
            let _ = tx.send(Input::Response(id, result));
        });
        self.requests.insert(id, handle);
        self.runtime.spawn(async move {
            let _ = task.await;
        });
    }

    fn ws_connect(
        &mut self,
        id: RequestId,
        uri: http::Uri,
        headers: http::HeaderMap,
        limits: WsLimits,
        deflate: Option<engineio_proto::websocket::DeflateConfig>,
    ) {
        let runtime = self.runtime.clone();
        let tls = self.tls.clone();
        let proxy = self.proxy.clone();
        let tx = self.inputs_tx.clone();
        let (task, handle) = abortable(async move {
            let input = match websocket_request(&uri, headers) {
                Ok(request) => {
                    let mut config = crate::ws::WsConfig::new(limits.max_message_size);
                    config.max_frame_size = limits.max_frame_size;
                    config.deflate_config = deflate;
                    let connected = match &proxy {
                        None => runtime.connect_websocket(request, config, &tls).await,
                        Some(proxy) => {
                            runtime
                                .connect_websocket_via(proxy, request, config, &tls)
                                .await
                        }
                    };
                    match connected {
                        Ok(ws) => Input::WsConnected(id, ws),
                        Err(e) => Input::WsFailed(id, e),
                    }
                }
                Err(e) => Input::WsFailed(id, WsConnectError::Transport(e)),
            };
            let _ = tx.send(input);
        });
        self.sockets.connecting(id, handle);
        self.runtime.spawn(async move {
            let _ = task.await;
        });
    }

    fn poll_timer(&mut self, cx: &mut Context<'_>) -> bool {
        let mut deadline = self.shared.lock().poll_timeout();
        if self.sockets.is_writing() {
            // Kept in place while writing goes on, so that the timer is not moved on
            // every poll.
            let now = self.runtime.now();
            let recheck = match self.writing_recheck {
                Some(at) if at > now => at,
                _ => now + WRITING_RECHECK,
            };
            self.writing_recheck = Some(recheck);
            deadline = Some(deadline.map_or(recheck, |d| d.min(recheck)));
        } else {
            self.writing_recheck = None;
        }
        if !self.timer.expired(&self.runtime, deadline, cx) {
            return false;
        }
        let now = self.runtime.now();
        self.shared.lock().handle_timeout(now);
        true
    }

    /// The machine has finished: stop the requests still running, and end the
    /// application's events; closing sockets go on closing (the machine drops them when
    /// they take too long).
    fn finish(&mut self) {
        for (_, handle) in self.requests.drain() {
            handle.abort();
        }
        self.sockets.shutdown();
        self.events = None;
        self.finished = true;
    }
}

impl<R: Runtime> Future for Driver<R> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        // The session this wake-up starts in (a new one takes over from the next).
        let span = this.span.clone();
        let _in_session = span.enter();
        this.shared.wakeup.enter(cx);
        this.sockets.new_wakeup();
        for _ in 0..ROUNDS {
            let mut progress = this.inputs(cx);
            progress |= this.drain();
            let (moved, more) = this.sockets(cx);
            progress |= moved | more;
            // What reading and writing made the machine do.
            progress |= this.drain();
            progress |= this.poll_timer(cx);
            if !this.finished && !progress && this.shared.lock().is_closed() {
                this.finish();
                continue;
            }
            if this.finished && this.sockets.is_empty() {
                this.shared.wakeup.exit();
                this.metrics.flush();
                return Poll::Ready(());
            }
            if !progress && !this.shared.wakeup.idle() {
                this.metrics.flush();
                return Poll::Pending;
            }
        }
        // Busy: come back after the other tasks had a turn.
        this.metrics.flush();
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// The WebSocket upgrade request: the URL and our headers (the handshake's own headers
/// are added by [`crate::ws::connect`]).
fn websocket_request(
    uri: &http::Uri,
    headers: http::HeaderMap,
) -> Result<http::Request<()>, TransportError> {
    let mut request = http::Request::new(());
    *request.uri_mut() = uri.clone();
    *request.headers_mut() = headers;
    Ok(request)
}
