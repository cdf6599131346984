//! Request handling and the tower `Service` / `Layer`.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use bytes::Bytes;
use engineio_proto::RequestId;
use engineio_proto::server::{Rejection, RequestInfo, Routed, SessionRequestKind};
use http::{Request, StatusCode, header};
use http_body::Body;
use http_body_util::Either;
use tokio::sync::oneshot;

use super::driver::{Driver, boxed_ws};
use super::http_glue::{self, PeerAddr, ResponseBody};
use super::socket::{ConnectRequest, Handler, Reply, SessionState, Socket, SocketShared};
use super::{EngineIo, Shared};
use crate::runtime::Runtime;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<H: Handler, R: Runtime> EngineIo<H, R> {
    /// Answers one HTTP request on the Engine.IO path (and the static files). Bindings and
    /// the tower service call this; it never fails: errors are HTTP answers.
    pub async fn handle<B>(&self, request: Request<B>) -> http::Response<ResponseBody>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        handle(Arc::clone(&self.shared), request).await
    }

    /// A tower service answering Engine.IO (and static files) and 404 for anything else.
    pub fn service(&self) -> EngineIoService<H, R, NotFound> {
        EngineIoService {
            engine: self.clone(),
            inner: NotFound,
        }
    }

    /// A tower layer: Engine.IO requests (and static files) are answered here, everything
    /// else goes to the wrapped service (python's `WSGIApp`/`ASGIApp(eio, other_app)`).
    pub fn layer(&self) -> EngineIoLayer<H, R> {
        EngineIoLayer {
            engine: self.clone(),
        }
    }
}

/// Removes the request from its session when the HTTP exchange is dropped before an answer
/// (the client closed the connection).
struct PendingRequest<D> {
    socket: Option<Socket<D>>,
    id: RequestId,
}

impl<D> PendingRequest<D> {
    fn done(&mut self) {
        self.socket = None;
    }
}

impl<D> Drop for PendingRequest<D> {
    fn drop(&mut self) {
        if let Some(socket) = self.socket.take() {
            socket.request_dropped(self.id);
        }
    }
}

async fn handle<H, R, B>(
    shared: Arc<Shared<H, R>>,
    request: Request<B>,
) -> http::Response<ResponseBody>
where
    H: Handler,
    R: Runtime,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let (mut parts, body) = request.into_parts();
    if !shared.server.matches_path(parts.uri.path()) {
        let files = &shared.config.static_files;
        return match http_glue::static_file(&shared.runtime, files, &parts.method, parts.uri.path())
            .await
        {
            Some(r) => r,
            None => http_glue::plain(StatusCode::NOT_FOUND, "Not Found"),
        };
    }
    let peer = parts.extensions.get::<PeerAddr>().copied();
    let id = RequestId(shared.next_id.fetch_add(1, Ordering::Relaxed));
    let mut info = RequestInfo::from_parts(&parts);
    if let Some(p) = peer {
        info = info.with_peer_addr(p.addr).with_secure(p.secure);
    }
    let routed = shared.server.handle_request(id, &info);
    let accept_encoding = parts.headers.get(header::ACCEPT_ENCODING).cloned();
    let compression = shared
        .config
        .http_compression
        .then_some(shared.config.compression_threshold);
    let respond = |r| http_glue::to_http(r, accept_encoding.as_ref(), compression);
    let (socket, reply) = match routed {
        Routed::Respond(r) => return respond(r),
        Routed::Handshake(handshake) => {
            if shared.shutting_down.load(Ordering::SeqCst) {
                let r = shared.server.reject(
                    handshake,
                    Rejection::new(StatusCode::SERVICE_UNAVAILABLE, "server shutting down"),
                );
                return respond(r);
            }
            let decision = shared
                .handler
                .on_connect(&ConnectRequest { inner: &handshake })
                .await;
            let data = match decision {
                Ok(data) => data,
                Err(rejection) => return respond(shared.server.reject(handshake, rejection)),
            };
            let now = shared.runtime.now();
            let transport = handshake.transport();
            let session = shared.server.accept(now, handshake, ());
            let runtime = shared.runtime.clone();
            let socket = Socket {
                shared: Arc::new(SocketShared {
                    sid: session.sid(),
                    peer_addr: peer.map(|p| p.addr),
                    state: std::sync::Mutex::new(SessionState {
                        session,
                        replies: Vec::new(),
                        new_ws: None,
                    }),
                    wakeup: Default::default(),
                    data,
                    now: Box::new(move || runtime.now()),
                }),
            };
            tracing::debug!(sid = %socket.sid(), %transport, peer = ?peer, "session opened");
            let reply = socket.request(id, |_| {});
            shared.sessions.insert(socket.clone());
            shared
                .runtime
                .spawn(Driver::new(Arc::clone(&shared), socket.clone()));
            (socket, reply)
        }
        Routed::Session(request) => {
            let Some(socket) = shared.sessions.get(request.sid()) else {
                tracing::debug!(sid = %request.sid(), "request for an unknown session");
                return respond(request.unknown_session());
            };
            let kind = request.kind();
            let now = shared.runtime.now();
            let reply = socket.request(id, |s| s.handle_request(now, request));
            if let SessionRequestKind::Post { .. } = kind {
                let mut pending = PendingRequest {
                    socket: Some(socket.clone()),
                    id,
                };
                match http_glue::read_body(body, shared.server.body_read_limit()).await {
                    Ok(bytes) => {
                        pending.done();
                        socket.post_body(id, bytes);
                    }
                    Err(e) => {
                        let e: BoxError = e.into();
                        tracing::debug!(sid = %socket.sid(), error = %e, "reading a POST body failed");
                        // The guard tells the session the request went away.
                        drop(pending);
                        return http_glue::plain(StatusCode::BAD_REQUEST, "Bad Request");
                    }
                }
            }
            (socket, reply)
        }
    };
    let mut pending = PendingRequest {
        socket: Some(socket.clone()),
        id,
    };
    let answer = wait(reply).await;
    pending.done();
    match answer {
        Some(Reply::Response(r)) => respond(r),
        Some(Reply::AcceptWebSocket(extra)) => {
            match http_glue::websocket_accept(&parts.headers, extra) {
                Ok(response) => match parts.extensions.remove::<hyper::upgrade::OnUpgrade>() {
                    Some(on_upgrade) => {
                        let runtime = shared.runtime.clone();
                        let config = shared.ws_config;
                        shared.runtime.spawn(async move {
                            match on_upgrade.await {
                                Ok(upgraded) => {
                                    let ws = runtime
                                        .websocket(
                                            upgraded,
                                            tungstenite::protocol::Role::Server,
                                            config,
                                        )
                                        .await;
                                    socket.attach_websocket(id, boxed_ws(ws));
                                }
                                Err(e) => socket.websocket_failed(id, e.to_string()),
                            }
                        });
                        response
                    }
                    None => {
                        socket.websocket_failed(
                                id,
                                "the connection cannot be upgraded (HTTP/2, or a server without upgrade support)".into(),
                            );
                        http_glue::plain(
                            StatusCode::BAD_REQUEST,
                            "this connection cannot be upgraded to a WebSocket",
                        )
                    }
                },
                Err(why) => {
                    socket.websocket_failed(id, why.to_owned());
                    http_glue::plain(StatusCode::BAD_REQUEST, why)
                }
            }
        }
        None => {
            // The session ended without answering (cannot happen: every request is
            // answered before `Closed`); treat it as gone.
            http_glue::plain(StatusCode::BAD_REQUEST, "Session ID unknown")
        }
    }
}

async fn wait(reply: oneshot::Receiver<Reply>) -> Option<Reply> {
    reply.await.ok()
}

/// The inner service of a standalone server: 404 for anything that is not Engine.IO or a
/// static file.
#[derive(Debug, Clone, Copy, Default)]
pub struct NotFound;

impl<B: Send + 'static> tower_service::Service<Request<B>> for NotFound {
    type Response = http::Response<ResponseBody>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _req: Request<B>) -> Self::Future {
        std::future::ready(Ok(http_glue::plain(StatusCode::NOT_FOUND, "Not Found")))
    }
}

/// A tower service: Engine.IO and static files here, everything else to `S`.
pub struct EngineIoService<H: Handler, R: Runtime, S> {
    engine: EngineIo<H, R>,
    inner: S,
}

impl<H: Handler, R: Runtime, S: Clone> Clone for EngineIoService<H, R, S> {
    fn clone(&self) -> Self {
        EngineIoService {
            engine: self.engine.clone(),
            inner: self.inner.clone(),
        }
    }
}

impl<H: Handler, R: Runtime, S> std::fmt::Debug for EngineIoService<H, R, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineIoService").finish_non_exhaustive()
    }
}

impl<H, R, S, B, SB> tower_service::Service<Request<B>> for EngineIoService<H, R, S>
where
    H: Handler,
    R: Runtime,
    S: tower_service::Service<Request<B>, Response = http::Response<SB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = http::Response<Either<ResponseBody, SB>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        // Readiness of the inner service is awaited in `call`, only for requests it takes.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let shared = Arc::clone(&self.engine.shared);
        let path = request.uri().path();
        let ours = shared.server.matches_path(path)
            || ((request.method() == http::Method::GET || request.method() == http::Method::HEAD)
                && shared.config.static_files.resolve(path).is_some());
        if ours {
            return Box::pin(async move { Ok(handle(shared, request).await.map(Either::Left)) });
        }
        let mut inner = self.inner.clone();
        Box::pin(async move {
            std::future::poll_fn(|cx| inner.poll_ready(cx)).await?;
            let response = inner.call(request).await?;
            Ok(response.map(Either::Right))
        })
    }
}

/// A tower layer wrapping a service in an [`EngineIoService`].
pub struct EngineIoLayer<H: Handler, R: Runtime> {
    engine: EngineIo<H, R>,
}

impl<H: Handler, R: Runtime> Clone for EngineIoLayer<H, R> {
    fn clone(&self) -> Self {
        EngineIoLayer {
            engine: self.engine.clone(),
        }
    }
}

impl<H: Handler, R: Runtime> std::fmt::Debug for EngineIoLayer<H, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineIoLayer").finish_non_exhaustive()
    }
}

impl<H: Handler, R: Runtime, S> tower_layer::Layer<S> for EngineIoLayer<H, R> {
    type Service = EngineIoService<H, R, S>;

    fn layer(&self, inner: S) -> Self::Service {
        EngineIoService {
            engine: self.engine.clone(),
            inner,
        }
    }
}
