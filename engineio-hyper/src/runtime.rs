//! What a binding supplies: time, timers, spawning, WebSocket streams and file reads.

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::task::{Context, Poll};
use std::time::Instant;

use engineio_proto::client::{ProxyUrl, WsConnectError};
use futures_core::Stream;
use futures_sink::Sink;

use crate::ws::{Frame, WsConfig, WsError};

/// A WebSocket as the drivers use it: a stream of received [`Frame`]s and a sink of frames
/// to send ([`crate::ws::WebSocket`], or a wrapper of it).
pub trait WebSocketIo:
    Stream<Item = Result<Frame, WsError>> + Sink<Frame, Error = WsError> + Send + Unpin + 'static
{
}

impl<T> WebSocketIo for T where
    T: Stream<Item = Result<Frame, WsError>>
        + Sink<Frame, Error = WsError>
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
/// quinn's `Runtime` trait. Everything else here is runtime-agnostic: hyper, the
/// WebSocket framing over tokio's I/O traits, and `tokio::sync` (none of which needs a
/// tokio runtime).
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
    /// Wraps an upgraded HTTP connection as the server's WebSocket (normally
    /// [`WebSocket::from_upgraded`](crate::ws::WebSocket::from_upgraded)).
    fn websocket(
        &self,
        upgraded: hyper::upgrade::Upgraded,
        config: WsConfig,
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
    /// Opens a WebSocket client connection to `request`'s URI (TLS for `wss`): normally
    /// [`connect_http`](Self::connect_http) to its host, then
    /// [`ws::connect`](crate::ws::connect) with the request ([`ws::connect_over`](crate::ws::connect_over)
    /// does both).
    fn connect_websocket(
        &self,
        request: http::Request<()>,
        config: WsConfig,
        tls: &Self::TlsConfig,
    ) -> impl Future<Output = Result<Self::ClientWebSocket, WsConnectError>> + Send;

    /// Opens an HTTP connection to `host:port` through a `CONNECT` tunnel of `proxy` (TLS
    /// to `host` inside it when `secure`): connect to the proxy, then
    /// [`proxy::tunnel`](crate::proxy::tunnel). A refusal carries the proxy's
    /// [`ProxyRefusal`](engineio_proto::ProxyRefusal). The default refuses: a runtime
    /// without proxy support.
    fn connect_http_tunnel(
        &self,
        proxy: &ProxyUrl,
        host: String,
        port: u16,
        secure: bool,
        tls: &Self::TlsConfig,
    ) -> impl Future<Output = io::Result<Self::ClientIo>> + Send {
        let _ = (proxy, host, port, secure, tls);
        async { Err(no_proxy_support()) }
    }

    /// Opens a WebSocket client connection to `request`'s URI through a `CONNECT` tunnel
    /// of `proxy`, as [`connect_http_tunnel`](Self::connect_http_tunnel) does. The
    /// default refuses.
    fn connect_websocket_via(
        &self,
        proxy: &ProxyUrl,
        request: http::Request<()>,
        config: WsConfig,
        tls: &Self::TlsConfig,
    ) -> impl Future<Output = Result<Self::ClientWebSocket, WsConnectError>> + Send {
        let _ = (proxy, request, config, tls);
        async { Err(crate::ws::connect_io_error(no_proxy_support())) }
    }
}

fn no_proxy_support() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "this runtime cannot connect through an HTTP proxy",
    )
}

/// Waits until `deadline` on the runtime's timer.
pub(crate) async fn sleep_until<R: Runtime>(runtime: &R, deadline: Instant) {
    let mut timer = runtime.timer(deadline);
    std::future::poll_fn(|cx| timer.poll_expired(cx)).await
}

/// One driver's timer, moved to the state machine's next deadline.
///
/// The runtime's timer is polled only when its deadline changed (to register the waker)
/// and the clock is read to tell when the deadline has passed: polling a timer on every
/// wake-up of a busy connection costs more than the rest of the work.
pub(crate) struct DeadlineTimer<T> {
    timer: Option<T>,
    deadline: Option<Instant>,
    registered: bool,
}

impl<T: Timer> Default for DeadlineTimer<T> {
    fn default() -> Self {
        DeadlineTimer {
            timer: None,
            deadline: None,
            registered: false,
        }
    }
}

impl<T: Timer> DeadlineTimer<T> {
    /// Follows `deadline`; true (once) when it has passed.
    pub(crate) fn expired<R: Runtime<Timer = T>>(
        &mut self,
        runtime: &R,
        deadline: Option<Instant>,
        cx: &mut Context<'_>,
    ) -> bool {
        if deadline != self.deadline {
            self.deadline = deadline;
            self.registered = false;
            if let Some(d) = deadline {
                match &mut self.timer {
                    Some(t) => t.reset(d),
                    None => self.timer = Some(runtime.timer(d)),
                }
            }
        }
        let (Some(d), Some(timer)) = (self.deadline, &mut self.timer) else {
            return false;
        };
        if runtime.now() >= d {
            self.deadline = None;
            return true;
        }
        if !self.registered {
            // Registers the waker; it stays registered until the deadline moves.
            if timer.poll_expired(cx).is_ready() {
                self.deadline = None;
                return true;
            }
            self.registered = true;
        }
        false
    }
}

/// Wakes a driver from other tasks, without waking it for work it is already doing.
///
/// A handle that queues work (a send, an HTTP request) calls [`wake`](Self::wake). While
/// the driver is inside its poll it will see that work anyway, so waking its task again
/// would only cost a spurious poll (a read system call that returns `WouldBlock`). Before
/// going idle the driver checks whether work arrived meanwhile
/// ([`idle`](Self::idle)); with sequentially consistent flags one side always sees the
/// other, so no wake-up is lost.
#[derive(Default)]
pub(crate) struct Wakeup {
    waker: futures_util::task::AtomicWaker,
    driving: std::sync::atomic::AtomicBool,
    pending: std::sync::atomic::AtomicBool,
}

impl Wakeup {
    /// Work was queued for the driver.
    pub(crate) fn wake(&self) {
        use std::sync::atomic::Ordering::SeqCst;
        self.pending.store(true, SeqCst);
        if !self.driving.load(SeqCst) {
            self.waker.wake();
        }
    }

    /// The driver's poll starts.
    pub(crate) fn enter(&self, cx: &Context<'_>) {
        use std::sync::atomic::Ordering::SeqCst;
        self.waker.register(cx.waker());
        self.driving.store(true, SeqCst);
        self.pending.store(false, SeqCst);
    }

    /// The driver made no progress and would return `Pending`: true when work arrived
    /// meanwhile and it must go on instead.
    pub(crate) fn idle(&self) -> bool {
        use std::sync::atomic::Ordering::SeqCst;
        self.driving.store(false, SeqCst);
        if self.pending.swap(false, SeqCst) {
            self.driving.store(true, SeqCst);
            return true;
        }
        false
    }

    /// The driver finished for good.
    pub(crate) fn exit(&self) {
        self.driving
            .store(false, std::sync::atomic::Ordering::SeqCst);
    }
}
