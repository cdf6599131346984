//! # engineio-smol
//!
//! Engine.IO v4 server (and client) on the [smol](https://docs.rs/smol) runtime.
//!
//! The same capabilities as `engineio-tokio`, from the same code: the protocol is
//! [`engineio_proto`], the HTTP and WebSocket plumbing is [`engineio_hyper`] (hyper through
//! smol-hyper's adapters; WebSockets framed by `engineio_hyper::ws` over tokio's I/O
//! traits, which need no tokio runtime), and this crate adds the smol
//! [`Runtime`] ([`Smol`]) and the standalone server loop ([`serve`], [`listen`]). No
//! tokio runtime is started: hyper only pulls in tokio's `sync` module.
//!
//! [`blocking::Client`] is a client for code without an async runtime (python-engineio's
//! threaded `Client`).
//!
//! ```no_run
//! use engineio_smol::{Config, ConnectRequest, EngineIo, Handler, Message, Rejection, Smol, Socket};
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
//! fn main() -> std::io::Result<()> {
//!     smol::block_on(async {
//!         let engine = EngineIo::new(Smol, Echo, Config::default()).expect("valid config");
//!         engineio_smol::listen("127.0.0.1:3000", engine).await
//!     })
//! }
//! ```

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use engineio_hyper::ws::{WebSocket, WsConfig};
use engineio_proto::client::WsConnectError;
use smol::net::{AsyncToSocketAddrs, TcpListener};
use smol_hyper::rt::{FuturesIo, SmolTimer};

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

pub mod blocking;
mod io_adapter;
pub use io_adapter::HyperIo;

mod net;
pub use net::{ClientStream, TlsConfig};

mod bind;
pub use bind::{Listening, bind};

/// An Engine.IO server on smol.
pub type EngineIo<H> = engineio_hyper::server::EngineIo<H, Smol>;

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

/// An Engine.IO client on smol.
pub type Client = engineio_hyper::client::Client<Smol>;

/// Connects to an Engine.IO server (`http://`, `https://`, `ws://` or `wss://` URL; the
/// path defaults to `/engine.io/`) with the default options: polling first, then an
/// upgrade to WebSocket. See [`connect_with`] for options.
pub async fn connect(url: &str) -> Result<Client, ClientError> {
    connect_with(ClientConfig::new(url)?).await
}

/// Connects with explicit options (transports, headers, query, timeouts, reconnection).
pub async fn connect_with(config: ClientConfig) -> Result<Client, ClientError> {
    Client::connect(Smol, config).await
}

/// Connects with explicit options and TLS settings (for `https`/`wss` servers with
/// private roots or client certificates; needs the `rustls` feature to be useful).
pub async fn connect_with_tls(config: ClientConfig, tls: TlsConfig) -> Result<Client, ClientError> {
    Client::connect_with_tls(Smol, config, tls).await
}

/// The smol [`Runtime`]: tasks on smol's global executor, `async_io` timers.
#[derive(Debug, Clone, Copy, Default)]
pub struct Smol;

/// [`Smol`]'s timer: one `async_io::Timer`, moved in place.
#[derive(Debug)]
pub struct SmolSleep(async_io::Timer);

impl Timer for SmolSleep {
    fn reset(&mut self, deadline: Instant) {
        self.0.set_at(deadline);
    }

    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx).map(|_| ())
    }
}

impl Runtime for Smol {
    type Timer = SmolSleep;
    type WebSocket = WebSocket;
    type ClientWebSocket = WebSocket;
    type ClientIo = FuturesIo<ClientStream>;
    type TlsConfig = TlsConfig;

    fn now(&self) -> Instant {
        Instant::now()
    }

    fn timer(&self, deadline: Instant) -> SmolSleep {
        SmolSleep(async_io::Timer::at(deadline))
    }

    fn spawn<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        smol::spawn(future).detach();
    }

    async fn websocket(&self, upgraded: hyper::upgrade::Upgraded, config: WsConfig) -> WebSocket {
        WebSocket::from_upgraded(upgraded, &config)
    }

    async fn read_file(&self, path: PathBuf) -> io::Result<(PathBuf, Vec<u8>)> {
        smol::unblock(move || {
            let canonical = std::fs::canonicalize(&path)?;
            let contents = std::fs::read(&canonical)?;
            Ok((canonical, contents))
        })
        .await
    }

    async fn canonicalize(&self, path: PathBuf) -> io::Result<PathBuf> {
        smol::unblock(move || std::fs::canonicalize(path)).await
    }

    async fn connect_http(
        &self,
        host: String,
        port: u16,
        secure: bool,
        tls: &TlsConfig,
    ) -> io::Result<Self::ClientIo> {
        Ok(FuturesIo::new(
            net::connect(&host, port, secure, tls).await?,
        ))
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
        Ok(FuturesIo::new(
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

/// Serves `engine` on an already bound listener until [`EngineIo::shutdown`] is called.
/// Connection tasks run on smol's global executor.
pub async fn serve<H: Handler>(listener: TcpListener, engine: EngineIo<H>) -> io::Result<()> {
    loop {
        let accepted = smol::future::or(async { Some(listener.accept().await) }, async {
            shutdown_requested(&engine).await;
            None
        })
        .await;
        let Some(accepted) = accepted else {
            return Ok(());
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e)
                if !matches!(
                    e.kind(),
                    io::ErrorKind::InvalidInput | io::ErrorKind::PermissionDenied
                ) =>
            {
                tracing::warn!(error = %e, "accept failed");
                async_io::Timer::after(Duration::from_millis(50)).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        let _ = stream.set_nodelay(true);
        let arrivals = engineio_hyper::server::ArrivalStamp::default();
        smol::spawn(engineio_hyper::server::serve_connection_with(
            net::ServerTcp::new(stream, arrivals.clone()),
            arrivals,
            PeerAddr::new(peer),
            EngineIo::clone(&engine),
            SmolTimer::new(),
        ))
        .detach();
    }
}

async fn shutdown_requested<H: Handler>(engine: &EngineIo<H>) {
    while !engine.is_shutting_down() {
        async_io::Timer::after(Duration::from_millis(100)).await;
    }
}

/// Serves one accepted connection (any byte stream: a `TcpStream`, a TLS stream from
/// your own acceptor such as `futures_rustls::TlsAcceptor`...) until the client closes
/// it, or stops reading what it is sent for `write_timeout`. `peer` reaches the connect
/// handler and says whether the connection is secure (for the same-origin check).
///
/// This is what [`serve`] runs for each TCP connection; use it to add TLS on the server.
pub async fn serve_connection<I, H>(io: I, peer: PeerAddr, engine: EngineIo<H>)
where
    I: smol::io::AsyncRead + smol::io::AsyncWrite + Send + Unpin + 'static,
    H: Handler,
{
    engineio_hyper::server::serve_connection(FuturesIo::new(io), peer, engine, SmolTimer::new())
        .await
}

/// Binds a bare listener on `addr` with a listen backlog of `backlog` connections (smol's
/// own `TcpListener::bind` always asks for 128), for a server you accept on yourself;
/// [`bind`] and [`listen`] use it with [`Config::listen_backlog`].
///
/// ```
/// # smol::block_on(async {
/// let listener = engineio_smol::bind_listener("127.0.0.1:0", 4096).await?;
/// assert!(listener.local_addr()?.port() != 0);
/// # Ok::<(), std::io::Error>(())
/// # })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub async fn bind_listener(addr: impl AsyncToSocketAddrs, backlog: u32) -> io::Result<TcpListener> {
    let addrs = addr.to_socket_addrs().await?;
    TcpListener::try_from(engineio_hyper::listener::bind_first(addrs, backlog)?)
}

/// Binds `addr` (with the backlog of [`Config::listen_backlog`]) and [`serve`]s `engine`
/// on it.
pub async fn listen<H: Handler>(
    addr: impl AsyncToSocketAddrs,
    engine: EngineIo<H>,
) -> io::Result<()> {
    let listener = bind_listener(addr, engine.config().listen_backlog).await?;
    tracing::info!(addr = %listener.local_addr()?, "engine.io server listening");
    serve(listener, engine).await
}
