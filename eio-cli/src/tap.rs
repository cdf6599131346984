//! A [`Runtime`] that is tokio's plus a tap: every HTTP exchange and WebSocket frame the
//! client makes is reported on a channel, so that `eio connect` can show pings, pongs and
//! (with `--trace`) the wire, which the client's events do not carry.
//!
//! The client's HTTP connections are in-memory pipes to a hyper server in this process,
//! which forwards each request on its own upstream connection (one per client connection,
//! so keep-alive, aborts and connection counts are the client's own) and reports the
//! exchange. WebSockets are the binding's, wrapped to report each frame.

use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use engineio_hyper::Runtime;
use engineio_tokio::engineio_hyper::ws::{Frame, WsConfig, WsError};
use engineio_tokio::proto::client::WsConnectError;
use engineio_tokio::{TlsConfig, Tokio};
use futures_core::Stream;
use futures_sink::Sink;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::DuplexStream;
use tokio::sync::mpsc;

/// The largest response body forwarded (the client's own limit is the same).
const MAX_BODY: usize = 256 * 1024 * 1024;

/// What the tap saw, and when.
#[derive(Debug)]
pub(crate) struct Wire {
    /// When.
    pub(crate) at: Instant,
    /// What.
    pub(crate) kind: WireKind,
}

/// One observation.
#[derive(Debug)]
pub(crate) enum WireKind {
    /// An HTTP request went out.
    Request {
        /// GET or POST.
        method: http::Method,
        /// The request target.
        target: String,
        /// Its body.
        body: Bytes,
    },
    /// Its answer came back.
    Response {
        /// The request's method.
        method: http::Method,
        /// The request's target.
        target: String,
        /// The status.
        status: http::StatusCode,
        /// The body.
        body: Bytes,
        /// When the request went out.
        sent: Instant,
    },
    /// It failed.
    RequestFailed {
        /// The request's method.
        method: http::Method,
        /// The request's target.
        target: String,
        /// Why.
        error: String,
    },
    /// A WebSocket connect started.
    WsConnect {
        /// The URI.
        uri: String,
    },
    /// It failed (refused with a status, or an I/O error).
    WsConnectFailed {
        /// Why.
        error: String,
    },
    /// A frame arrived.
    WsIn(Frame),
    /// A frame went out.
    WsOut(Frame),
}

/// Tokio, with every exchange reported on `wire`.
#[derive(Debug, Clone)]
pub(crate) struct Tap {
    wire: mpsc::UnboundedSender<Wire>,
}

impl Tap {
    /// A tap and the receiving end of its reports.
    pub(crate) fn new() -> (Tap, mpsc::UnboundedReceiver<Wire>) {
        let (wire, rx) = mpsc::unbounded_channel();
        (Tap { wire }, rx)
    }
}

fn report(wire: &mpsc::UnboundedSender<Wire>, kind: WireKind) {
    // Nobody listening (the command is ending) is fine.
    let _ = wire.send(Wire {
        at: Instant::now(),
        kind,
    });
}

impl Runtime for Tap {
    type Timer = <Tokio as Runtime>::Timer;
    type WebSocket = <Tokio as Runtime>::WebSocket;
    type ClientWebSocket = TapWebSocket;
    type ClientIo = TokioIo<DuplexStream>;
    type TlsConfig = TlsConfig;

    fn now(&self) -> Instant {
        Tokio.now()
    }

    fn timer(&self, deadline: Instant) -> Self::Timer {
        Tokio.timer(deadline)
    }

    fn spawn<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        tokio::spawn(future);
    }

    async fn websocket(
        &self,
        upgraded: hyper::upgrade::Upgraded,
        config: WsConfig,
    ) -> Self::WebSocket {
        Tokio.websocket(upgraded, config).await
    }

    async fn read_file(&self, path: PathBuf) -> io::Result<(PathBuf, Vec<u8>)> {
        Tokio.read_file(path).await
    }

    async fn canonicalize(&self, path: PathBuf) -> io::Result<PathBuf> {
        Tokio.canonicalize(path).await
    }

    async fn connect_http(
        &self,
        host: String,
        port: u16,
        secure: bool,
        tls: &TlsConfig,
    ) -> io::Result<Self::ClientIo> {
        let upstream = Tokio.connect_http(host, port, secure, tls).await?;
        let (sender, connection) = hyper::client::conn::http1::handshake(upstream)
            .await
            .map_err(io::Error::other)?;
        // When the server closes the upstream connection (an idle keep-alive timeout), the
        // client's side closes too, so that its pool does not reuse a dead connection.
        let upstream_closed = Arc::new(tokio::sync::Notify::new());
        let closed = Arc::clone(&upstream_closed);
        tokio::spawn(async move {
            let _ = connection.await;
            closed.notify_one();
        });
        let (near, far) = tokio::io::duplex(64 * 1024);
        let sender = Arc::new(tokio::sync::Mutex::new(sender));
        let wire = self.wire.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                forward(Arc::clone(&sender), wire.clone(), request)
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(None)
                .keep_alive(true);
            let serving = builder.serve_connection(TokioIo::new(far), service);
            tokio::pin!(serving);
            tokio::select! {
                _ = &mut serving => {}
                _ = upstream_closed.notified() => {
                    serving.as_mut().graceful_shutdown();
                    let _ = serving.await;
                }
            }
        });
        Ok(TokioIo::new(near))
    }

    async fn connect_websocket(
        &self,
        request: http::Request<()>,
        config: WsConfig,
        tls: &TlsConfig,
    ) -> Result<Self::ClientWebSocket, WsConnectError> {
        report(
            &self.wire,
            WireKind::WsConnect {
                uri: request.uri().to_string(),
            },
        );
        match Tokio.connect_websocket(request, config, tls).await {
            Ok(inner) => Ok(TapWebSocket {
                inner,
                wire: self.wire.clone(),
            }),
            Err(e) => {
                let error = match &e {
                    WsConnectError::Rejected(response) => {
                        let body = String::from_utf8_lossy(&response.body);
                        format!("HTTP {} {}", response.status, body.trim())
                    }
                    WsConnectError::Transport(other) => other.to_string(),
                    other => format!("{other:?}"),
                };
                report(&self.wire, WireKind::WsConnectFailed { error });
                Err(e)
            }
        }
    }
}

type Upstream = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// Forwards one request on the upstream connection and reports both halves.
async fn forward(
    upstream: Arc<tokio::sync::Mutex<Upstream>>,
    wire: mpsc::UnboundedSender<Wire>,
    request: http::Request<hyper::body::Incoming>,
) -> Result<http::Response<Full<Bytes>>, io::Error> {
    let (parts, body) = request.into_parts();
    let body = Limited::new(body, MAX_BODY)
        .collect()
        .await
        .map_err(|e| io::Error::other(e.to_string()))?
        .to_bytes();
    let target = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".to_owned());
    let method = parts.method.clone();
    let sent = Instant::now();
    report(
        &wire,
        WireKind::Request {
            method: method.clone(),
            target: target.clone(),
            body: body.clone(),
        },
    );
    let result = async {
        let mut sender = upstream.lock().await;
        std::future::poll_fn(|cx| sender.poll_ready(cx))
            .await
            .map_err(|e| e.to_string())?;
        let request = http::Request::from_parts(parts, Full::new(body));
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let (parts, body) = response.into_parts();
        let body = Limited::new(body, MAX_BODY)
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok::<_, String>((parts, body))
    }
    .await;
    match result {
        Ok((mut parts, body)) => {
            report(
                &wire,
                WireKind::Response {
                    method,
                    target,
                    status: parts.status,
                    body: body.clone(),
                    sent,
                },
            );
            // The body is whole now: its framing is hyper's to choose again.
            for h in [
                http::header::TRANSFER_ENCODING,
                http::header::CONTENT_LENGTH,
                http::header::CONNECTION,
            ] {
                parts.headers.remove(h);
            }
            parts.headers.remove("keep-alive");
            Ok(http::Response::from_parts(parts, Full::new(body)))
        }
        Err(error) => {
            report(
                &wire,
                WireKind::RequestFailed {
                    method,
                    target,
                    error: error.clone(),
                },
            );
            Err(io::Error::other(error))
        }
    }
}

/// The binding's WebSocket, reporting each frame.
pub(crate) struct TapWebSocket {
    inner: <Tokio as Runtime>::ClientWebSocket,
    wire: mpsc::UnboundedSender<Wire>,
}

impl Stream for TapWebSocket {
    type Item = Result<Frame, WsError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let item = Pin::new(&mut self.inner).poll_next(cx);
        if let Poll::Ready(Some(Ok(message))) = &item {
            report(&self.wire, WireKind::WsIn(message.clone()));
        }
        item
    }
}

impl Sink<Frame> for TapWebSocket {
    type Error = WsError;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.inner).poll_ready(cx)
    }

    fn start_send(mut self: Pin<&mut Self>, item: Frame) -> Result<(), Self::Error> {
        report(&self.wire, WireKind::WsOut(item.clone()));
        Pin::new(&mut self.inner).start_send(item)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}
