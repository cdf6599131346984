//! Serving one HTTP/1 connection, as both bindings' standalone servers do: hyper with
//! upgrades, and a write timeout so that a peer that stops reading an answer cannot hold
//! the connection.

use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::socket::Handler;
use super::{EngineIo, PeerAddr};
use crate::arrival::ArrivalStamp;
use crate::runtime::{Runtime, Timer};

/// Tells a connection's [`TimedIo`] that it was upgraded to a WebSocket: from then on the
/// session times the socket's writes itself (and ends with
/// [`CloseReason::WriteTimeout`](engineio_proto::CloseReason::WriteTimeout)), so the
/// connection-level timeout steps aside. Found in the extensions of the requests
/// [`serve_connection`] serves.
#[derive(Debug, Clone, Default)]
pub struct UpgradeNotice(Arc<AtomicBool>);

impl UpgradeNotice {
    /// The connection now carries a WebSocket.
    pub fn upgraded(&self) {
        self.0.store(true, Ordering::Release);
    }

    fn is_upgraded(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// When the bytes of a connection's next request were read: the request's arrival
/// instant, which its session judges it by. Put into the request's extensions by
/// [`serve_connection`]; requests without one (from another server stack) arrive when
/// the service sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArrivedAt(pub Instant);

/// A connection's byte stream whose writes time out: when the peer takes nothing for
/// `timeout` (it stopped reading an answer), writing fails with `TimedOut` and hyper
/// drops the connection. The limit is the server's `write_timeout`. It also notes when
/// the bytes of each request were read (see [`ArrivedAt`]).
pub struct TimedIo<T, R: Runtime> {
    inner: T,
    runtime: R,
    timeout: Duration,
    timer: Option<R::Timer>,
    stalled_until: Option<Instant>,
    notice: UpgradeNotice,
    stamp: ArrivalStamp,
}

impl<T, R: Runtime> TimedIo<T, R> {
    /// Wraps `inner`; `notice` turns the timeout off once the connection is upgraded;
    /// reads note their instant in `stamp` unless the stream noted a better one (the
    /// kernel's).
    pub fn new(
        inner: T,
        runtime: R,
        timeout: Duration,
        notice: UpgradeNotice,
        stamp: ArrivalStamp,
    ) -> Self {
        TimedIo {
            inner,
            runtime,
            timeout,
            timer: None,
            stalled_until: None,
            notice,
            stamp,
        }
    }

    /// Passes a ready result through (the peer took bytes: the stall is over), and
    /// turns a pending write into `TimedOut` once the stall lasted `timeout`.
    fn check<X>(&mut self, cx: &mut Context<'_>, r: Poll<io::Result<X>>) -> Poll<io::Result<X>> {
        if r.is_ready() {
            self.stalled_until = None;
            return r;
        }
        if self.notice.is_upgraded() {
            return r;
        }
        let deadline = match self.stalled_until {
            Some(d) => d,
            None => {
                let d = self.runtime.now() + self.timeout;
                self.stalled_until = Some(d);
                match &mut self.timer {
                    Some(t) => t.reset(d),
                    None => self.timer = Some(self.runtime.timer(d)),
                }
                d
            }
        };
        let expired = self.runtime.now() >= deadline
            || self
                .timer
                .as_mut()
                .is_some_and(|t| t.poll_expired(cx).is_ready());
        if expired {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the peer took nothing of the answer for write_timeout",
            )));
        }
        Poll::Pending
    }
}

impl<T: hyper::rt::Read + Unpin, R: Runtime> hyper::rt::Read for TimedIo<T, R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) {
            // Bytes arrived (or the end of the stream, after which nothing is judged).
            let runtime = &this.runtime;
            this.stamp.note(|| runtime.now());
        }
        r
    }
}

impl<T: hyper::rt::Write + Unpin, R: Runtime> hyper::rt::Write for TimedIo<T, R> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.check(cx, r)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_flush(cx);
        this.check(cx, r)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.check(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.check(cx, r)
    }
}

/// Serves one accepted connection (hyper's HTTP/1 server with upgrades) until the client
/// closes it, or stops reading for `write_timeout`. `io` is any byte stream in hyper's
/// I/O traits (the bindings adapt theirs); `timer` is the runtime's timer for hyper;
/// `peer` reaches the connect handler and says whether the connection is secure. Each
/// request arrives when its first bytes were read.
pub async fn serve_connection<IO, H, R, T>(io: IO, peer: PeerAddr, engine: EngineIo<H, R>, timer: T)
where
    IO: hyper::rt::Read + hyper::rt::Write + Send + Unpin + 'static,
    H: Handler,
    R: Runtime,
    T: hyper::rt::Timer + Send + Sync + 'static,
{
    serve_connection_with(io, ArrivalStamp::default(), peer, engine, timer).await
}

/// Like [`serve_connection`], for a stream that notes in `arrivals` when its bytes
/// arrived (the bindings' TCP streams ask the kernel).
pub async fn serve_connection_with<IO, H, R, T>(
    io: IO,
    arrivals: ArrivalStamp,
    peer: PeerAddr,
    engine: EngineIo<H, R>,
    timer: T,
) where
    IO: hyper::rt::Read + hyper::rt::Write + Send + Unpin + 'static,
    H: Handler,
    R: Runtime,
    T: hyper::rt::Timer + Send + Sync + 'static,
{
    let notice = UpgradeNotice::default();
    let io = TimedIo::new(
        io,
        engine.shared.runtime.clone(),
        engine.shared.config.engine.write_timeout,
        notice.clone(),
        arrivals.clone(),
    );
    let stamp = arrivals;
    let service =
        hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            let engine = engine.clone();
            let arrived = stamp.take().unwrap_or_else(|| engine.shared.runtime.now());
            request.extensions_mut().insert(notice.clone());
            request.extensions_mut().insert(ArrivedAt(arrived));
            async move { Ok::<_, Infallible>(engine.handle_from(request, Some(peer)).await) }
        });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(timer)
        .keep_alive(true)
        .serve_connection(io, service)
        .with_upgrades();
    if let Err(e) = connection.await {
        tracing::debug!(peer = %peer.addr, error = %e, "connection ended with an error");
    }
}
