//! A [`Runtime`] for testing the drivers in virtual time: a manual clock the test moves,
//! timers that fire when it passes their deadline, and connections that are in-memory
//! pipes with a fixed capacity (so a peer that does not read really blocks the server's
//! writes). Tasks run on the calling tokio runtime; nothing waits for real time except
//! hyper's own header timer.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use std::time::Duration;
//! use engineio_tests::virtual_rt::ManualClock;
//!
//! let clock = ManualClock::new();
//! let start = clock.now();
//! clock.advance(Duration::from_secs(25)).await;
//! assert_eq!(clock.now() - start, Duration::from_secs(25));
//! # }
//! ```

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use engineio_hyper::Runtime;
use engineio_hyper::server::{EngineIo, Handler, PeerAddr};
use engineio_hyper::ws::{WebSocket, WsConfig};
use engineio_proto::client::WsConnectError;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::DuplexStream;

#[derive(Debug)]
struct ClockState {
    now: Instant,
    waiting: Vec<(Instant, Waker)>,
}

/// The test's clock: it only moves when the test says so.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<ClockState>>);

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl ManualClock {
    /// A clock starting now.
    pub fn new() -> Self {
        ManualClock(Arc::new(Mutex::new(ClockState {
            now: Instant::now(),
            waiting: Vec::new(),
        })))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, ClockState> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The virtual time.
    pub fn now(&self) -> Instant {
        self.state().now
    }

    /// Moves the clock forward by `d`, in steps that stop at every timer's deadline on
    /// the way (so that what a timer causes happens before the next one fires), letting
    /// the tasks run after each.
    pub async fn advance(&self, d: Duration) {
        let target = self.now() + d;
        loop {
            settle().await;
            let next = {
                let mut s = self.state();
                let next = s
                    .waiting
                    .iter()
                    .map(|(at, _)| *at)
                    .filter(|at| *at <= target)
                    .min();
                s.now = next.unwrap_or(target).max(s.now);
                let now = s.now;
                let (due, rest): (Vec<_>, Vec<_>) =
                    s.waiting.drain(..).partition(|(at, _)| *at <= now);
                s.waiting = rest;
                drop(s);
                for (_, waker) in due {
                    waker.wake();
                }
                next
            };
            if next.is_none() {
                settle().await;
                return;
            }
        }
    }

    fn register(&self, deadline: Instant, waker: &Waker) {
        let mut s = self.state();
        s.waiting.retain(|(_, w)| !w.will_wake(waker));
        s.waiting.push((deadline, waker.clone()));
    }
}

/// Lets every ready task run (a bounded number of scheduler turns).
pub async fn settle() {
    for _ in 0..200 {
        tokio::task::yield_now().await;
    }
}

/// A timer on the [`ManualClock`].
#[derive(Debug)]
pub struct ManualTimer {
    clock: ManualClock,
    deadline: Instant,
}

impl engineio_hyper::Timer for ManualTimer {
    fn reset(&mut self, deadline: Instant) {
        self.deadline = deadline;
    }

    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.clock.now() >= self.deadline {
            return Poll::Ready(());
        }
        self.clock.register(self.deadline, cx.waker());
        Poll::Pending
    }
}

/// The virtual runtime: the manual clock, tokio's executor, in-memory connections.
#[derive(Debug, Clone)]
pub struct VirtualRuntime {
    /// Its clock.
    pub clock: ManualClock,
}

impl Runtime for VirtualRuntime {
    type Timer = ManualTimer;
    type WebSocket = WebSocket;
    /// Never made: the tests drive their own clients.
    type ClientWebSocket = WebSocket;
    type ClientIo = TokioIo<DuplexStream>;
    type TlsConfig = ();

    fn now(&self) -> Instant {
        self.clock.now()
    }

    fn timer(&self, deadline: Instant) -> ManualTimer {
        ManualTimer {
            clock: self.clock.clone(),
            deadline,
        }
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
        let canonical = std::fs::canonicalize(&path)?;
        let contents = std::fs::read(&canonical)?;
        Ok((canonical, contents))
    }

    async fn canonicalize(&self, path: PathBuf) -> io::Result<PathBuf> {
        std::fs::canonicalize(path)
    }

    async fn connect_http(
        &self,
        _host: String,
        _port: u16,
        _secure: bool,
        _tls: &(),
    ) -> io::Result<Self::ClientIo> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "the virtual runtime serves; its tests bring their own clients",
        ))
    }

    async fn connect_websocket(
        &self,
        _request: http::Request<()>,
        _config: WsConfig,
        _tls: &(),
    ) -> Result<WebSocket, WsConnectError> {
        Err(engineio_hyper::ws::connect_io_error(io::Error::new(
            io::ErrorKind::Unsupported,
            "the virtual runtime serves; its tests bring their own clients",
        )))
    }
}

/// Opens an in-memory connection to `engine` (served by `serve_connection`, with the
/// server's write timeout on the virtual clock) whose pipe holds `capacity` bytes each
/// way; returns the client's end.
pub fn connect<H: Handler>(engine: &EngineIo<H, VirtualRuntime>, capacity: usize) -> DuplexStream {
    let (client, server) = tokio::io::duplex(capacity);
    let peer = PeerAddr::new("127.0.0.1:40000".parse().expect("address"));
    tokio::spawn(engineio_hyper::server::serve_connection(
        TokioIo::new(server),
        peer,
        engine.clone(),
        TokioTimer::new(),
    ));
    client
}
