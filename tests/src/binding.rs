//! One trait over the two server bindings, so that a test body runs on both.

use std::net::SocketAddr;

use engineio_hyper::Runtime;
use engineio_hyper::server::{Config, EngineIo, Handler};

/// A server binding: its runtime and how to serve on a listener.
pub trait Binding: 'static {
    /// The binding's runtime.
    type Runtime: Runtime;
    /// Its name, for messages.
    const NAME: &'static str;
    /// The runtime value.
    fn runtime() -> Self::Runtime;
    /// Serves `engine` on a fresh 127.0.0.1 port in the background; returns the address.
    fn serve<H: Handler>(engine: EngineIo<H, Self::Runtime>) -> SocketAddr;
}

/// engineio-tokio. Its server runs on the calling test's tokio runtime.
pub struct TokioBinding;

impl Binding for TokioBinding {
    type Runtime = engineio_tokio::Tokio;
    const NAME: &'static str = "tokio";

    fn runtime() -> Self::Runtime {
        engineio_tokio::Tokio
    }

    fn serve<H: Handler>(engine: EngineIo<H, Self::Runtime>) -> SocketAddr {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        std_listener.set_nonblocking(true).expect("nonblocking");
        let addr = std_listener.local_addr().expect("addr");
        let listener = tokio::net::TcpListener::from_std(std_listener).expect("tokio listener");
        tokio::spawn(engineio_tokio::serve(listener, engine));
        addr
    }
}

/// engineio-smol. Its server runs on smol's global executor (its own threads), so the
/// tokio-based test clients talk to it across runtimes, like real clients would.
pub struct SmolBinding;

impl Binding for SmolBinding {
    type Runtime = engineio_smol::Smol;
    const NAME: &'static str = "smol";

    fn runtime() -> Self::Runtime {
        engineio_smol::Smol
    }

    fn serve<H: Handler>(engine: EngineIo<H, Self::Runtime>) -> SocketAddr {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = std_listener.local_addr().expect("addr");
        let listener = smol::net::TcpListener::try_from(std_listener).expect("smol listener");
        smol::spawn(async move {
            if let Err(e) = engineio_smol::serve(listener, engine).await {
                eprintln!("smol server stopped: {e}");
            }
        })
        .detach();
        addr
    }
}

/// Creates an engine for binding `B`.
pub fn engine<B: Binding, H: Handler>(handler: H, config: Config) -> EngineIo<H, B::Runtime> {
    EngineIo::new(B::runtime(), handler, config).expect("valid config")
}
