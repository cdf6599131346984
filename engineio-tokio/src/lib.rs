//! # engineio-tokio
//!
//! Engine.IO v4 server (and client) on the [tokio](https://tokio.rs) runtime.
//!
//! The protocol lives in [`engineio_proto`]; the HTTP and WebSocket plumbing shared with
//! `engineio-smol` lives in [`engineio_hyper`]; this crate adds the tokio [`Runtime`]
//! ([`Tokio`]) and the standalone server loop ([`serve`], [`listen`]).
//!
//! ## A server in a few lines
//!
//! ```no_run
//! use engineio_tokio::{Config, ConnectRequest, EngineIo, Handler, Message, Rejection, Socket, Tokio};
//!
//! struct Echo;
//!
//! impl Handler for Echo {
//!     type Data = ();
//!     async fn on_connect(&self, _request: &ConnectRequest<'_>) -> Result<(), Rejection> {
//!         Ok(())
//!     }
//!     fn on_message(&self, socket: &Socket<()>, message: Message) {
//!         let _ = socket.send(message); // echo
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() -> std::io::Result<()> {
//!     let engine = EngineIo::new(Tokio, Echo, Config::default()).expect("valid config");
//!     engineio_tokio::listen("127.0.0.1:3000", engine).await
//! }
//! ```
//!
//! ## In axum (or any tower stack)
//!
//! [`EngineIo::layer`] answers requests on the Engine.IO path (`/engine.io/` by default)
//! and the configured static files, and passes everything else to the wrapped service:
//!
//! ```no_run
//! # use engineio_tokio::{Config, ConnectRequest, EngineIo, Handler, Message, Rejection, Socket, Tokio};
//! # struct Echo;
//! # impl Handler for Echo {
//! #     type Data = ();
//! #     async fn on_connect(&self, _: &ConnectRequest<'_>) -> Result<(), Rejection> { Ok(()) }
//! #     fn on_message(&self, s: &Socket<()>, m: Message) { let _ = s.send(m); }
//! # }
//! # #[tokio::main]
//! # async fn main() -> std::io::Result<()> {
//! let engine = EngineIo::new(Tokio, Echo, Config::default()).expect("valid config");
//! let app = axum::Router::new()
//!     .route("/hello", axum::routing::get(|| async { "hello" }))
//!     .layer(engine.layer());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await
//! # }
//! ```

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use engineio_hyper::ws::{WebSocket, WsConfig};
use engineio_proto::client::WsConnectError;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, ToSocketAddrs};

/// The runtime-agnostic HTTP/WebSocket layer this crate builds on.
pub use engineio_hyper;
/// The server's configuration types, for [`Config`]'s `with_*` methods and fields.
pub use engineio_hyper::server::{
    AllowedOrigins, CookieConfig, CorsConfig, SameSite, ServerConfig, StaticFiles, Transports,
};
pub use engineio_hyper::server::{
    Config, ConnectRequest, EngineIoLayer, EngineIoService, Handler, NodeSidGenerator, NotFound,
    OsSidGenerator, PeerAddr, Rejection, ResponseBody, Socket,
};
pub use engineio_hyper::{Runtime, Timer};
/// The protocol core.
pub use engineio_proto as proto;
pub use engineio_proto::{CloseReason, Message, NodeId, SendError, Sid, Transport};
/// The `http` crate (status codes, headers, methods) as the handler sees them.
pub use http;
pub use http::StatusCode;

mod net;
pub use net::{ClientStream, TlsConfig};

mod bind;
pub use bind::{Listening, bind};
pub mod blocking;

/// An Engine.IO server on tokio.
pub type EngineIo<H> = engineio_hyper::server::EngineIo<H, Tokio>;

pub use engineio_hyper::client::{
    ClientConfig, ClientError, ClientHandler, ClientSender, ConnectError, OfflinePolicy,
    ReconnectConfig,
};
pub use engineio_proto::Handshake;
pub use engineio_proto::client::ClientEvent;
/// The client's HTTP proxy settings ([`ClientConfig::proxy`]).
pub use engineio_proto::client::{Proxy, ProxyUrl};
/// What a transport failure holds ([`CloseReason::TransportError`],
/// [`ConnectError::Transport`]): its kind and the source error.
pub use engineio_proto::{IoError, ProxyRefusal, TransportError};

/// An Engine.IO client on tokio.
pub type Client = engineio_hyper::client::Client<Tokio>;

/// Connects to an Engine.IO server (`http://`, `https://`, `ws://` or `wss://` URL; the
/// path defaults to `/engine.io/`) with the default options: polling first, then an
/// upgrade to WebSocket. See [`connect_with`] for options.
pub async fn connect(url: &str) -> Result<Client, ClientError> {
    connect_with(ClientConfig::new(url)?).await
}

/// Connects with explicit options (transports, headers, query, timeouts, reconnection).
pub async fn connect_with(config: ClientConfig) -> Result<Client, ClientError> {
    Client::connect(Tokio, config).await
}

/// Connects with explicit options and TLS settings (for `https`/`wss` servers with
/// private roots or client certificates; needs the `rustls` feature to be useful).
pub async fn connect_with_tls(config: ClientConfig, tls: TlsConfig) -> Result<Client, ClientError> {
    Client::connect_with_tls(Tokio, config, tls).await
}

/// The tokio [`Runtime`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Tokio;

/// [`Tokio`]'s timer: one `tokio::time::Sleep`, reset in place.
#[derive(Debug)]
pub struct TokioSleep(Pin<Box<tokio::time::Sleep>>);

impl Timer for TokioSleep {
    fn reset(&mut self, deadline: Instant) {
        self.0.as_mut().reset(deadline.into());
    }

    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.0.as_mut().poll(cx)
    }
}

impl Runtime for Tokio {
    type Timer = TokioSleep;
    type WebSocket = WebSocket;
    type ClientWebSocket = WebSocket;
    type ClientIo = TokioIo<ClientStream>;
    type TlsConfig = TlsConfig;

    fn now(&self) -> Instant {
        Instant::now()
    }

    fn timer(&self, deadline: Instant) -> TokioSleep {
        TokioSleep(Box::pin(tokio::time::sleep_until(deadline.into())))
    }

    fn spawn<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        tokio::spawn(future);
    }

    async fn websocket(&self, upgraded: hyper::upgrade::Upgraded, config: WsConfig) -> WebSocket {
        WebSocket::from_upgraded(upgraded, &config)
    }

    async fn read_file(&self, path: PathBuf) -> io::Result<(PathBuf, Vec<u8>)> {
        let canonical = tokio::fs::canonicalize(&path).await?;
        let contents = tokio::fs::read(&canonical).await?;
        Ok((canonical, contents))
    }

    async fn canonicalize(&self, path: PathBuf) -> io::Result<PathBuf> {
        tokio::fs::canonicalize(path).await
    }

    async fn connect_http(
        &self,
        host: String,
        port: u16,
        secure: bool,
        tls: &TlsConfig,
    ) -> io::Result<Self::ClientIo> {
        Ok(TokioIo::new(net::connect(&host, port, secure, tls).await?))
    }

    async fn connect_websocket(
        &self,
        request: http::Request<()>,
        config: WsConfig,
        tls: &TlsConfig,
    ) -> Result<WebSocket, WsConnectError> {
        engineio_hyper::ws::connect_over(request, &config, |host, port, secure| {
            self.connect_http(host, port, secure, tls)
        })
        .await
    }

    async fn connect_http_tunnel(
        &self,
        proxy: &ProxyUrl,
        host: String,
        port: u16,
        secure: bool,
        tls: &TlsConfig,
    ) -> io::Result<Self::ClientIo> {
        Ok(TokioIo::new(
            net::connect_via(proxy, &host, port, secure, tls).await?,
        ))
    }

    async fn connect_websocket_via(
        &self,
        proxy: &ProxyUrl,
        request: http::Request<()>,
        config: WsConfig,
        tls: &TlsConfig,
    ) -> Result<WebSocket, WsConnectError> {
        engineio_hyper::ws::connect_over(request, &config, |host, port, secure| {
            self.connect_http_tunnel(proxy, host, port, secure, tls)
        })
        .await
    }
}

/// Serves `engine` on an already bound listener until [`EngineIo::shutdown`] is called
/// (then it stops accepting and returns; the sessions are closed by `shutdown`).
///
/// Each connection is served by hyper's HTTP/1 server with upgrades, with the peer
/// address given to the connect handler ([`ConnectRequest::peer_addr`]). Everything that
/// is not Engine.IO or a static file gets 404.
pub async fn serve<H: Handler>(listener: TcpListener, engine: EngineIo<H>) -> io::Result<()> {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown_requested(&engine) => return Ok(()),
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) if is_transient(&e) => {
                // Out of file descriptors and the like: wait a little instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        let _ = stream.set_nodelay(true);
        let arrivals = engineio_hyper::server::ArrivalStamp::default();
        tokio::spawn(engineio_hyper::server::serve_connection_with(
            net::ServerTcp::new(stream, arrivals.clone()),
            arrivals,
            PeerAddr::new(peer),
            engine.clone(),
            TokioTimer::new(),
        ));
    }
}

async fn shutdown_requested<H: Handler>(engine: &EngineIo<H>) {
    while !engine.is_shutting_down() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn is_transient(e: &io::Error) -> bool {
    !matches!(
        e.kind(),
        io::ErrorKind::InvalidInput | io::ErrorKind::PermissionDenied
    )
}

/// Serves one accepted connection (any byte stream: a `TcpStream`, a TLS stream from
/// your own acceptor...) until the client closes it, or stops reading what it is sent for
/// `write_timeout`. `peer` reaches the connect handler and says whether the connection is
/// secure (for the same-origin check).
///
/// This is what [`serve`] runs for each TCP connection; use it to add TLS on the server:
/// accept with `tokio_rustls::TlsAcceptor`, then call this with the TLS stream and
/// `PeerAddr { addr, secure: true }`. A request head that does not arrive within
/// [`head_timeout`](engineio_proto::server::ServerConfig::head_timeout) is answered `408`
/// (see [`engineio_hyper::server::serve_connection`]).
pub async fn serve_connection<I, H>(io: I, peer: PeerAddr, engine: EngineIo<H>)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
    H: Handler,
{
    engineio_hyper::server::serve_connection(TokioIo::new(io), peer, engine, TokioTimer::new())
        .await
}

/// Binds a bare listener on `addr` with a listen backlog of `backlog` connections (tokio's
/// own `TcpListener::bind` always asks for 128), for a server you accept on yourself;
/// [`bind`] and [`listen`] use it with [`Config::listen_backlog`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let listener = engineio_tokio::bind_listener("127.0.0.1:0", 4096).await?;
/// assert!(listener.local_addr()?.port() != 0);
/// # Ok(())
/// # }
/// ```
pub async fn bind_listener(addr: impl ToSocketAddrs, backlog: u32) -> io::Result<TcpListener> {
    let addrs = tokio::net::lookup_host(addr).await?;
    TcpListener::from_std(engineio_hyper::listener::bind_first(addrs, backlog)?)
}

/// Binds `addr` (with the backlog of [`Config::listen_backlog`]) and [`serve`]s `engine`
/// on it: the one-line standalone server.
pub async fn listen<H: Handler>(addr: impl ToSocketAddrs, engine: EngineIo<H>) -> io::Result<()> {
    let listener = bind_listener(addr, engine.config().listen_backlog).await?;
    tracing::info!(addr = %listener.local_addr()?, "engine.io server listening");
    serve(listener, engine).await
}
