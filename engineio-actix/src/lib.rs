//! # engineio-actix
//!
//! Engine.IO v4 in an [actix-web](https://actix.rs) application: polling and WebSocket
//! on the Engine.IO path (and the configured static files), beside the application's
//! other routes.
//!
//! actix-web does not speak tower, and its WebSocket upgrades do not go through hyper,
//! so this crate adapts each request: it copies the request into the `http` types the
//! server takes, reads a POST body (up to the server's limit), and for a WebSocket
//! upgrade hands the server an
//! [`ExternalUpgrade`] over actix's upgraded
//! byte stream. Every protocol decision stays in [`engineio_proto`]; the WebSocket
//! framing is the one of the other bindings (`engineio_hyper::ws`). Sessions are driven on the tokio
//! runtime that actix-web runs on ([`Actix`]).
//!
//! ```no_run
//! use actix_web::{App, HttpServer, web};
//! use engineio_actix::{Config, ConnectRequest, EngineIo, Handler, Message, Rejection, Socket};
//!
//! struct Echo;
//!
//! impl Handler for Echo {
//!     type Data = ();
//!     async fn on_connect(&self, _request: &ConnectRequest<'_>) -> Result<(), Rejection> {
//!         Ok(())
//!     }
//!     fn on_message(&self, socket: &Socket<()>, message: Message) {
//!         let _ = socket.send(message);
//!     }
//! }
//!
//! #[actix_web::main]
//! async fn main() -> std::io::Result<()> {
//!     let engine = EngineIo::new(engineio_actix::Actix, Echo, Config::default())
//!         .expect("valid config");
//!     HttpServer::new(move || {
//!         App::new()
//!             .service(engineio_actix::service(engine.clone()))
//!             .route("/hello", web::get().to(|| async { "hello" }))
//!     })
//!     .bind("127.0.0.1:3000")?
//!     .run()
//!     .await
//! }
//! ```
//!
//! The client side is `engineio-tokio`'s (re-exported as [`engineio_tokio`]): it runs on
//! actix's runtime as on any tokio runtime.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;

use actix_web::dev::HttpServiceFactory;
use actix_web::{HttpRequest, HttpResponse, guard, web};
use bytes::{Bytes, BytesMut};
use engineio_hyper::server::ExternalUpgrade;
use engineio_hyper::ws::{Role, WebSocket, WsConfig};
use engineio_proto::client::WsConnectError;
use futures_util::StreamExt;
use http_body_util::BodyExt;
use tokio::io::AsyncWriteExt;

pub use engineio_hyper;
pub use engineio_hyper::server::{
    AllowedOrigins, Config, ConnectRequest, CookieConfig, CorsConfig, Handler, OsSidGenerator,
    PeerAddr, Rejection, SameSite, ServerConfig, Socket, StaticFiles, Transports,
};
/// The protocol core.
pub use engineio_proto as proto;
pub use engineio_proto::{CloseReason, Message, SendError, Sid, Transport};
/// The tokio binding, for its client (which runs on actix's runtime too).
pub use engineio_tokio;
/// The `http` crate (status codes, headers) as the handler sees them.
pub use http;
pub use http::StatusCode;

/// An Engine.IO server mounted in actix-web.
pub type EngineIo<H> = engineio_hyper::server::EngineIo<H, Actix>;

/// Bytes buffered between actix's connection and an upgraded session's WebSocket.
const WS_PIPE: usize = 64 * 1024;

/// The [`Runtime`](engineio_hyper::Runtime) of sessions mounted in actix-web: tokio's
/// (actix-web runs on tokio), with WebSockets over actix's upgraded connections.
#[derive(Debug, Clone, Copy, Default)]
pub struct Actix;

type TokioRuntime = engineio_tokio::Tokio;

impl engineio_hyper::Runtime for Actix {
    type Timer = engineio_tokio::TokioSleep;
    type WebSocket = WebSocket;
    type ClientWebSocket = <TokioRuntime as engineio_hyper::Runtime>::ClientWebSocket;
    type ClientIo = <TokioRuntime as engineio_hyper::Runtime>::ClientIo;
    type TlsConfig = <TokioRuntime as engineio_hyper::Runtime>::TlsConfig;

    fn now(&self) -> Instant {
        engineio_tokio::Tokio.now()
    }

    fn timer(&self, deadline: Instant) -> Self::Timer {
        engineio_tokio::Tokio.timer(deadline)
    }

    fn spawn<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        engineio_tokio::Tokio.spawn(future)
    }

    async fn websocket(&self, upgraded: hyper::upgrade::Upgraded, config: WsConfig) -> WebSocket {
        WebSocket::from_upgraded(upgraded, &config)
    }

    async fn read_file(&self, path: PathBuf) -> io::Result<(PathBuf, Vec<u8>)> {
        engineio_tokio::Tokio.read_file(path).await
    }

    async fn canonicalize(&self, path: PathBuf) -> io::Result<PathBuf> {
        engineio_tokio::Tokio.canonicalize(path).await
    }

    async fn connect_http(
        &self,
        host: String,
        port: u16,
        secure: bool,
        tls: &Self::TlsConfig,
    ) -> io::Result<Self::ClientIo> {
        engineio_tokio::Tokio
            .connect_http(host, port, secure, tls)
            .await
    }

    async fn connect_websocket(
        &self,
        request: http::Request<()>,
        config: WsConfig,
        tls: &Self::TlsConfig,
    ) -> Result<Self::ClientWebSocket, WsConnectError> {
        engineio_tokio::Tokio
            .connect_websocket(request, config, tls)
            .await
    }
}

/// An actix-web service answering the Engine.IO path (with or without its trailing
/// slash) and the configured static files; every other request goes on to the
/// application's other routes. Register it with `App::service`.
pub fn service<H: Handler>(engine: EngineIo<H>) -> impl HttpServiceFactory {
    let guard_engine = engine.clone();
    web::resource("/{tail:.*}")
        .guard(guard::fn_guard(move |ctx| {
            let head = ctx.head();
            let path = head.uri.path();
            guard_engine.matches_path(path)
                || ((head.method == actix_web::http::Method::GET
                    || head.method == actix_web::http::Method::HEAD)
                    && guard_engine.config().static_files.resolve(path).is_some())
        }))
        .default_service(web::to(move |req: HttpRequest, payload: web::Payload| {
            let engine = engine.clone();
            async move { handle(&engine, req, payload).await }
        }))
}

/// Answers one request for `engine` (what [`service`] routes to it): for mounting it on
/// routes of your own.
pub async fn handle<H: Handler>(
    engine: &EngineIo<H>,
    req: HttpRequest,
    mut payload: web::Payload,
) -> HttpResponse {
    let mut request = match to_http_request(&req) {
        Ok(request) => request,
        Err(e) => {
            return HttpResponse::BadRequest()
                .content_type("text/plain")
                .body(format!("the request could not be read: {e}"));
        }
    };
    let websocket = is_websocket_upgrade(request.headers());
    // Our side of actix's upgraded connection, if the server accepts the upgrade.
    let mut pipe = None;
    if websocket {
        let (ours, theirs) = tokio::io::duplex(WS_PIPE);
        pipe = Some(theirs);
        request
            .extensions_mut()
            .insert(ExternalUpgrade::new(move |config| async move {
                Ok::<_, io::Error>(WebSocket::new(ours, Role::Server, &config))
            }));
    } else {
        // The whole body, up to one byte over the limit (the protocol then answers 413).
        let limit = engine.body_read_limit();
        let mut body = BytesMut::new();
        while let Some(chunk) = payload.next().await {
            match chunk {
                Ok(chunk) => {
                    body.extend_from_slice(&chunk);
                    if body.len() > limit {
                        break;
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "reading a request body failed");
                    return HttpResponse::BadRequest()
                        .content_type("text/plain")
                        .body(format!("the request body could not be read: {e}"));
                }
            }
        }
        *request.body_mut() = http_body_util::Full::new(body.freeze());
    }
    let peer = peer_addr(&req);
    let response = engine.handle_from(request, peer).await;
    let (parts, body) = response.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(never) => match never {},
    };
    let mut builder = HttpResponse::build(
        actix_web::http::StatusCode::from_u16(parts.status.as_u16())
            .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR),
    );
    let upgraded = parts.status == http::StatusCode::SWITCHING_PROTOCOLS;
    for (name, value) in &parts.headers {
        if upgraded && (name == http::header::CONNECTION || name == http::header::UPGRADE) {
            continue; // `upgrade` below sets both
        }
        builder.append_header((name.as_str(), value.as_bytes()));
    }
    match (upgraded, pipe) {
        (true, Some(pipe)) => {
            builder.upgrade("websocket");
            let (from_session, mut to_session) = tokio::io::split(pipe);
            // What the client sends after the upgrade arrives as the request's payload.
            actix_web::rt::spawn(async move {
                while let Some(Ok(chunk)) = payload.next().await {
                    if to_session.write_all(&chunk).await.is_err() {
                        return;
                    }
                }
                let _ = to_session.shutdown().await;
            });
            builder.streaming(tokio_util::io::ReaderStream::new(from_session))
        }
        _ => builder.body(body),
    }
}

fn is_websocket_upgrade(headers: &http::HeaderMap) -> bool {
    headers
        .get_all(http::header::UPGRADE)
        .iter()
        .any(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"))
}

/// The request in the `http` crate's types (actix-web 4 uses `http` 0.2).
fn to_http_request(
    req: &HttpRequest,
) -> Result<http::Request<http_body_util::Full<Bytes>>, http::Error> {
    let mut builder = http::Request::builder()
        .method(req.method().as_str())
        .uri(req.uri().to_string());
    for (name, value) in req.headers() {
        builder = builder.header(name.as_str(), value.as_bytes());
    }
    builder.body(http_body_util::Full::new(Bytes::new()))
}

/// The peer address actix-web saw, as a [`PeerAddr`] (for handlers of your own).
pub fn peer_addr(req: &HttpRequest) -> Option<PeerAddr> {
    req.peer_addr().map(|addr: SocketAddr| PeerAddr {
        addr,
        secure: req.app_config().secure(),
    })
}
