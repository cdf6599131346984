//! What a binding supplies: time, timers, spawning, WebSocket streams and file reads.

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_core::Stream;
use futures_sink::Sink;
use tungstenite::protocol::{Role, WebSocketConfig};

/// A WebSocket stream as tokio-tungstenite and async-tungstenite provide it.
pub trait WebSocketIo:
    Stream<Item = Result<tungstenite::Message, tungstenite::Error>>
    + Sink<tungstenite::Message, Error = tungstenite::Error>
    + Send
    + Unpin
    + 'static
{
}

impl<T> WebSocketIo for T where
    T: Stream<Item = Result<tungstenite::Message, tungstenite::Error>>
        + Sink<tungstenite::Message, Error = tungstenite::Error>
        + Send
        + Unpin
        + 'static
{
}

/// A resettable timer owned by one driver.
pub trait Timer: Send + Unpin + 'static {
    /// Moves the deadline.
    fn reset(&mut self, deadline: Instant);
    /// Ready once the deadline has passed; registers the waker otherwise.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()>;
}

/// An async runtime, as the bindings (`engineio-tokio`, `engineio-smol`) implement it.
///
/// This is the only place where the shared code touches a runtime, in the manner of
/// quinn's `Runtime` trait. Everything else here is runtime-agnostic: hyper, tungstenite
/// and `tokio::sync` (which needs no tokio runtime).
pub trait Runtime: Clone + Send + Sync + Unpin + 'static {
    /// The runtime's timer.
    type Timer: Timer;
    /// The WebSocket stream type over an upgraded hyper connection.
    type WebSocket: WebSocketIo;
    /// A WebSocket client connection (TCP, possibly TLS).
    type ClientWebSocket: WebSocketIo;
    /// A connection for hyper's HTTP/1 client (TCP, possibly TLS).
    type ClientIo: hyper::rt::Read + hyper::rt::Write + Send + Unpin + 'static;
    /// The client's TLS settings (trusted roots, client certificates...); the default
    /// trusts the usual public roots, when the binding has TLS support.
    type TlsConfig: Clone + Default + Send + Sync + Unpin + 'static;

    /// The current time.
    fn now(&self) -> Instant;
    /// A timer that fires at `deadline`.
    fn timer(&self, deadline: Instant) -> Self::Timer;
    /// Runs a future in the background.
    fn spawn<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static;
    /// Wraps an upgraded HTTP connection as a WebSocket.
    fn websocket(
        &self,
        upgraded: hyper::upgrade::Upgraded,
        role: Role,
        config: WebSocketConfig,
    ) -> impl Future<Output = Self::WebSocket> + Send;
    /// Reads a whole file and resolves symbolic links of its path, off the async threads
    /// when the runtime needs that. Returns the canonical path and the contents.
    fn read_file(
        &self,
        path: PathBuf,
    ) -> impl Future<Output = io::Result<(PathBuf, Vec<u8>)>> + Send;
    /// Resolves symbolic links of a folder path.
    fn canonicalize(&self, path: PathBuf) -> impl Future<Output = io::Result<PathBuf>> + Send;
    /// Opens an HTTP connection to `host:port` (TLS when `secure`).
    fn connect_http(
        &self,
        host: String,
        port: u16,
        secure: bool,
        tls: &Self::TlsConfig,
    ) -> impl Future<Output = io::Result<Self::ClientIo>> + Send;
    /// Opens a WebSocket client connection to `request`'s URI (TLS for `wss`).
    fn connect_websocket(
        &self,
        request: http::Request<()>,
        config: WebSocketConfig,
        tls: &Self::TlsConfig,
    ) -> impl Future<Output = Result<Self::ClientWebSocket, tungstenite::Error>> + Send;
}

/// Waits until `deadline` on the runtime's timer.
pub(crate) async fn sleep_until<R: Runtime>(runtime: &R, deadline: Instant) {
    let mut timer = runtime.timer(deadline);
    std::future::poll_fn(|cx| timer.poll_expired(cx)).await
}
