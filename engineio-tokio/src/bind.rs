//! [`bind`]: a standalone server that tells the address it bound before serving.

use std::future::{Future, IntoFuture};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;

use tokio::net::{TcpListener, ToSocketAddrs};

use crate::{EngineIo, Handler};

/// A server bound to its address and not serving yet, made by [`bind`]: read
/// [`local_addr`](Self::local_addr) (the port the system chose for port 0), then
/// `.await` it (or call [`serve`](Self::serve)) to serve until
/// [`EngineIo::shutdown`](engineio_hyper::server::EngineIo::shutdown).
///
/// ```no_run
/// # use engineio_tokio::{Config, ConnectRequest, EngineIo, Handler, Message, Rejection, Socket, Tokio};
/// # struct Echo;
/// # impl Handler for Echo {
/// #     type Data = ();
/// #     async fn on_connect(&self, _: &ConnectRequest<'_>) -> Result<(), Rejection> { Ok(()) }
/// #     fn on_message(&self, s: &Socket<()>, m: Message) { let _ = s.send(m); }
/// # }
/// # #[tokio::main]
/// # async fn main() -> std::io::Result<()> {
/// let engine = EngineIo::new(Tokio, Echo, Config::default()).expect("valid config");
/// let server = engineio_tokio::bind("127.0.0.1:0", engine).await?;
/// println!("listening on {}", server.local_addr());
/// server.await
/// # }
/// ```
pub struct Listening<H: Handler> {
    listener: TcpListener,
    addr: SocketAddr,
    engine: EngineIo<H>,
}

impl<H: Handler> std::fmt::Debug for Listening<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listening")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl<H: Handler> Listening<H> {
    /// The address the server is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until [`EngineIo::shutdown`](engineio_hyper::server::EngineIo::shutdown)
    /// ([`serve`](crate::serve) on the bound listener).
    pub async fn serve(self) -> io::Result<()> {
        tracing::info!(addr = %self.addr, "engine.io server listening");
        crate::serve(self.listener, self.engine).await
    }
}

impl<H: Handler> IntoFuture for Listening<H> {
    type Output = io::Result<()>;
    type IntoFuture = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.serve())
    }
}

/// Binds `addr` for `engine` (with the backlog of
/// [`Config::listen_backlog`](crate::Config::listen_backlog)) without serving yet: the bound address can be read first
/// (for port 0), then the [`Listening`] server is awaited. [`listen`](crate::listen) is
/// `bind` and serve in one call.
pub async fn bind<H: Handler>(
    addr: impl ToSocketAddrs,
    engine: EngineIo<H>,
) -> io::Result<Listening<H>> {
    let listener = crate::bind_listener(addr, engine.config().listen_backlog).await?;
    let addr = listener.local_addr()?;
    Ok(Listening {
        listener,
        addr,
        engine,
    })
}
