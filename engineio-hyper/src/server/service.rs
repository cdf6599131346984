//! Request handling and the tower `Service` / `Layer`.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use bytes::Bytes;
use engineio_proto::RequestId;
use engineio_proto::server::{RequestError, RequestInfo, Routed, SessionRequestKind};
use engineio_proto::static_files::not_found;
use http::{Request, header};
use http_body::Body;
use http_body_util::Either;
use tokio::sync::oneshot;
use tracing::Instrument;

use super::conn::{ArrivedAt, UpgradeNotice};
use super::driver::{Driver, boxed_ws};
use super::forward;
use super::http_glue::{self, PeerAddr, ResponseBody};
use super::socket::{ConnectRequest, Handler, Reply, SessionState, Socket, SocketShared};
use super::upgrade::ExternalUpgrade;
use super::{EngineIo, Shared};
use crate::runtime::Runtime;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<H: Handler, R: Runtime> EngineIo<H, R> {
    /// Answers one HTTP request on the Engine.IO path (and the static files). Bindings and
    /// the tower service call this; it never fails: errors are HTTP answers.
    ///
    /// The client's address comes from a [`PeerAddr`] in the request's extensions, when
    /// there is one (or, with the `axum` feature, from axum's `ConnectInfo<SocketAddr>`,
    /// which `into_make_service_with_connect_info::<SocketAddr>()` puts there).
    pub async fn handle<B>(&self, request: Request<B>) -> http::Response<ResponseBody>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let peer = peer_from(request.extensions());
        handle(Arc::clone(&self.shared), request, peer).await
    }

    /// Like [`handle`](Self::handle), with the client's address given directly (what a
    /// server loop that accepted the connection knows), which spares a map in the
    /// request's extensions for every request.
    pub async fn handle_from<B>(
        &self,
        request: Request<B>,
        peer: Option<PeerAddr>,
    ) -> http::Response<ResponseBody>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        handle(Arc::clone(&self.shared), request, peer).await
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

/// The client's address from a request's extensions: a [`PeerAddr`], or axum's
/// `ConnectInfo<SocketAddr>` (feature `axum`).
fn peer_from(extensions: &http::Extensions) -> Option<PeerAddr> {
    if let Some(peer) = extensions.get::<PeerAddr>() {
        return Some(*peer);
    }
    #[cfg(feature = "axum")]
    if let Some(axum::extract::ConnectInfo(addr)) =
        extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
    {
        return Some(PeerAddr::new(*addr));
    }
    None
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
    peer: Option<PeerAddr>,
) -> http::Response<ResponseBody>
where
    H: Handler,
    R: Runtime,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    // This future is moved around by hyper on every request: the common path (a request
    // for a live session) keeps little across its awaits, and the rare paths (static
    // files, handshakes) are boxed so that their state does not make it larger.
    let (mut parts, body) = request.into_parts();
    if !shared.server.matches_path(parts.uri.path()) {
        return Box::pin(static_or_not_found(shared, parts)).await;
    }
    // The instant the head arrived: the session judges the request by its state then.
    let arrived = match parts.extensions.get::<ArrivedAt>() {
        Some(at) => at.0,
        None => shared.runtime.now(),
    };
    let id = RequestId(shared.next_id.fetch_add(1, Ordering::Relaxed));
    let upgradable = parts
        .extensions
        .get::<hyper::upgrade::OnUpgrade>()
        .is_some()
        || parts
            .extensions
            .get::<ExternalUpgrade<R::WebSocket>>()
            .is_some();
    let mut info = RequestInfo::from_parts(&parts).with_upgradable(upgradable);
    if let Some(p) = peer {
        info = info.with_peer_addr(p.addr).with_secure(p.secure);
    }
    let routed = match shared.server.route_request(arrived, id, &info) {
        Ok(routed) => routed,
        Err(refused) => {
            // A handshake refused because this node shuts down may go to a live one.
            if let Some(address) = forward::handshake_address(&shared, &parts, refused.response()) {
                let refusal = refused.into_response();
                return Box::pin(forward::forward(
                    shared, parts, body, peer, address, refusal,
                ))
                .await;
            }
            shared.metrics.refused(&refused);
            Routed::Respond(refused.into_response())
        }
    };
    let answer = Answer {
        accept_encoding: parts.headers.get(header::ACCEPT_ENCODING).cloned(),
        compression: shared
            .config
            .http_compression
            .then_some(shared.config.compression_threshold),
        upgrade: None,
    };
    match routed {
        Routed::Respond(r) => {
            if r.status.is_client_error() || r.status.is_server_error() {
                tracing::debug!(
                    peer = ?peer.map(|p| p.addr),
                    method = %parts.method,
                    uri = %parts.uri,
                    status = %r.status,
                    body = %String::from_utf8_lossy(&r.body[..r.body.len().min(300)]),
                    "request refused"
                );
            }
            answer.respond(r)
        }
        Routed::Handshake(handshake) => {
            let upgrade = Upgrade::take(&mut parts);
            drop(parts);
            Box::pin(open_session(
                shared,
                handshake,
                id,
                peer,
                answer.with(upgrade),
            ))
            .await
        }
        Routed::Session(request) => {
            if let Some(address) = forward::owner_address(&shared, &request, &parts) {
                let fallback = request.unknown_session();
                return Box::pin(forward::forward(
                    shared, parts, body, peer, address, fallback,
                ))
                .await;
            }
            let upgrade = (request.kind() == SessionRequestKind::WebSocket)
                .then(|| Upgrade::take(&mut parts))
                .flatten();
            drop(parts);
            session_request(shared, request, id, body, answer.with(upgrade)).await
        }
    }
}

/// How to turn the session's reply into the HTTP answer.
struct Answer<W> {
    accept_encoding: Option<http::HeaderValue>,
    compression: Option<usize>,
    upgrade: Option<Upgrade<W>>,
}

/// What a WebSocket handshake answer needs from the request (the protocol checked that
/// both are there before accepting it).
struct Upgrade<W> {
    key: http::HeaderValue,
    source: UpgradeSource<W>,
    notice: Option<UpgradeNotice>,
}

/// Who turns the connection into a WebSocket once the 101 is sent.
enum UpgradeSource<W> {
    /// hyper's own upgrade.
    Hyper(hyper::upgrade::OnUpgrade),
    /// Another HTTP stack's ([`ExternalUpgrade`]).
    External(ExternalUpgrade<W>),
}

impl<W: Send + 'static> Upgrade<W> {
    fn take(parts: &mut http::request::Parts) -> Option<Upgrade<W>> {
        let source = match parts.extensions.remove::<hyper::upgrade::OnUpgrade>() {
            Some(on_upgrade) => UpgradeSource::Hyper(on_upgrade),
            None => UpgradeSource::External(parts.extensions.remove::<ExternalUpgrade<W>>()?),
        };
        let key = parts.headers.get(header::SEC_WEBSOCKET_KEY)?.clone();
        let notice = parts.extensions.remove::<UpgradeNotice>();
        Some(Upgrade {
            key,
            source,
            notice,
        })
    }
}

impl<W> Answer<W> {
    fn with(mut self, upgrade: Option<Upgrade<W>>) -> Self {
        self.upgrade = upgrade;
        self
    }

    fn respond(&self, r: engineio_proto::Response) -> http::Response<ResponseBody> {
        http_glue::to_http(r, self.accept_encoding.as_ref(), self.compression)
    }
}

async fn static_or_not_found<H: Handler, R: Runtime>(
    shared: Arc<Shared<H, R>>,
    parts: http::request::Parts,
) -> http::Response<ResponseBody> {
    let files = &shared.config.static_files;
    let r = http_glue::static_file(&shared.runtime, files, &parts.method, parts.uri.path())
        .await
        .unwrap_or_else(not_found);
    http_glue::to_http(r, None, None)
}

async fn open_session<H: Handler, R: Runtime>(
    shared: Arc<Shared<H, R>>,
    handshake: engineio_proto::server::HandshakeRequest,
    id: RequestId,
    peer: Option<PeerAddr>,
    answer: Answer<R::WebSocket>,
) -> http::Response<ResponseBody> {
    tracing::debug!(
        sid = %handshake.sid(),
        transport = %handshake.transport(),
        peer = ?peer.map(|p| p.addr),
        "handshake"
    );
    let decision = shared
        .handler
        .on_connect(&ConnectRequest { inner: &handshake })
        .await;
    let data = match decision {
        Ok(data) => data,
        Err(rejection) => {
            tracing::debug!(sid = %handshake.sid(), peer = ?peer.map(|p| p.addr), status = %rejection.status, message = %rejection.message, "handshake rejected by on_connect");
            shared.metrics.handshake_rejected_by_handler();
            return answer.respond(shared.server.reject(handshake, rejection));
        }
    };
    let now = shared.runtime.now();
    let transport = handshake.transport();
    let session = match shared.server.accept(now, handshake) {
        Ok(session) => session,
        // The server began shutting down while the application decided.
        Err(refusal) => {
            shared
                .metrics
                .handshake_rejected(&RequestError::ShuttingDown);
            return answer.respond(*refusal);
        }
    };
    shared.metrics.handshake(transport);
    let sid = session.sid();
    // A root span: the session outlives the request that opened it.
    let span = tracing::info_span!(parent: None, "engineio_session", sid = %sid);
    span.follows_from(tracing::Span::current());
    let runtime = shared.runtime.clone();
    let socket = Socket {
        shared: Arc::new(SocketShared {
            sid,
            peer_addr: peer.map(|p| p.addr),
            state: std::sync::Mutex::new(SessionState::new(session)),
            wakeup: Default::default(),
            data,
            now: Box::new(move || runtime.now()),
            span: span.clone(),
            metrics: shared.metrics.clone(),
        }),
    };
    span.in_scope(|| tracing::debug!(%transport, peer = ?peer.map(|p| p.addr), "session opened"));
    let reply = socket.expect_reply(id);
    shared.session_started(socket.clone());
    // Before the session's task starts: nothing of the session happens before this.
    span.in_scope(|| shared.handler.on_open(&socket));
    let driver = Driver::new(Arc::clone(&shared), socket.clone(), transport);
    shared.runtime.spawn(driver.instrument(span));
    // Only a driver that died (its runtime shutting down) leaves a handshake unanswered.
    let lost = || RequestError::ShuttingDown.to_response();
    finish(&shared, socket, id, reply, answer, lost).await
}

async fn session_request<H, R, B>(
    shared: Arc<Shared<H, R>>,
    request: engineio_proto::server::SessionRequest,
    id: RequestId,
    body: B,
    answer: Answer<R::WebSocket>,
) -> http::Response<ResponseBody>
where
    H: Handler,
    R: Runtime,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let Some(socket) = shared.sessions.get(request.sid()) else {
        return answer.respond(ended_or_unknown(&shared, &request));
    };
    let kind = request.kind();
    // Answers the request if the session's driver is gone without answering it.
    let fallback = request.clone();
    let Some(reply) = socket.request(shared.runtime.now(), request) else {
        // Retired meanwhile: its record answers.
        return answer.respond(ended_or_unknown(&shared, &fallback));
    };
    if let SessionRequestKind::Post { .. } = kind {
        let mut pending = PendingRequest {
            socket: Some(socket.clone()),
            id,
        };
        let read = http_glue::read_body(body, shared.server.body_read_limit()).await;
        pending.done();
        match read {
            Ok(bytes) => {
                tracing::trace!(sid = %socket.sid(), request = id.0, body = %crate::log::Body(&bytes), "polling POST body");
                socket.post_body(id, bytes)
            }
            Err(e) => {
                let e: BoxError = e.into();
                socket
                    .span()
                    .in_scope(|| tracing::debug!(error = %e, "reading a POST body failed"));
                socket.post_body_failed(id, &e.to_string());
            }
        }
    } else {
        drop(body);
    }
    finish(&shared, socket, id, reply, answer, move || {
        fallback.unknown_session()
    })
    .await
}

/// The answer for a request whose session is not live here: the record of how it ended,
/// while it is kept, else 400 "Session ID unknown".
fn ended_or_unknown<H: Handler, R: Runtime>(
    shared: &Shared<H, R>,
    request: &engineio_proto::server::SessionRequest,
) -> engineio_proto::Response {
    match shared.sessions.answer_ended(shared.runtime.now(), request) {
        Some(answer) => answer,
        None => {
            tracing::debug!(sid = %request.sid(), "request for an unknown session");
            shared.metrics.unknown_sid(request.kind());
            request.unknown_session()
        }
    }
}

/// Waits for the session's reply and turns it into the HTTP answer (a 101 for a
/// WebSocket the session accepted).
async fn finish<H: Handler, R: Runtime>(
    shared: &Arc<Shared<H, R>>,
    socket: Socket<H::Data>,
    id: RequestId,
    reply: oneshot::Receiver<Reply>,
    mut answer: Answer<R::WebSocket>,
    lost: impl FnOnce() -> engineio_proto::Response,
) -> http::Response<ResponseBody> {
    let mut pending = PendingRequest {
        socket: Some(socket.clone()),
        id,
    };
    let reply = reply.await.ok();
    pending.done();
    match reply {
        Some(Reply::Response(r)) => answer.respond(r),
        Some(Reply::AcceptWebSocket(extra, deflate)) => {
            let Some(upgrade) = answer.upgrade.take() else {
                // The protocol accepts only upgradable requests with a key; if the binding
                // lost them anyway, the session hears that the socket failed.
                socket.websocket_failed(id, "the connection could not be upgraded".into());
                return answer.respond(RequestError::CannotUpgrade.to_response());
            };
            let response = http_glue::websocket_accept(&upgrade.key, extra);
            if let Some(notice) = &upgrade.notice {
                // The session times the WebSocket's writes from now on.
                notice.upgraded();
            }
            let runtime = shared.runtime.clone();
            let mut config = shared.ws_config;
            config.deflate = deflate;
            shared.runtime.spawn(async move {
                let ws = match upgrade.source {
                    UpgradeSource::Hyper(on_upgrade) => match on_upgrade.await {
                        Ok(upgraded) => Ok(runtime.websocket(upgraded, config).await),
                        Err(e) => Err(e.to_string()),
                    },
                    UpgradeSource::External(external) => {
                        external.complete(config).await.map_err(|e| e.to_string())
                    }
                };
                match ws {
                    Ok(ws) => socket.attach_websocket(id, boxed_ws(ws)),
                    Err(e) => socket.websocket_failed(id, e),
                }
            });
            response
        }
        None => answer.respond(lost()),
    }
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
        std::future::ready(Ok(http_glue::to_http(not_found(), None, None)))
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
            let peer = peer_from(request.extensions());
            return Box::pin(
                async move { Ok(handle(shared, request, peer).await.map(Either::Left)) },
            );
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
