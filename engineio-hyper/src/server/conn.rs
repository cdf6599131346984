//! Serving one HTTP/1 connection, as both bindings' standalone servers do: hyper with
//! upgrades, a write timeout so that a peer that stops reading an answer cannot hold the
//! connection, and the request head's limits (time, with its `408`, and size).

use std::convert::Infallible;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
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
///
/// A request head must arrive within
/// [`head_timeout`](engineio_proto::server::ServerConfig::head_timeout); when it does not,
/// and the client had started sending it, the connection gets the answer of
/// [`Server::head_timeout_response`](engineio_proto::server::Server::head_timeout_response)
/// (`408`) if the socket takes it at once (a peer that does not read is never waited for),
/// and is closed; a connection that sent nothing since its last answer is closed silently.
/// A head larger than
/// [`max_head_size`](engineio_proto::server::ServerConfig::max_head_size) gets `431`.
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
    let limits = &engine.shared.config.engine;
    let (head_timeout, max_head_size) = (limits.head_timeout, limits.max_head_size);
    let notice = UpgradeNotice::default();
    let io = TimedIo::new(
        io,
        engine.shared.runtime.clone(),
        engine.shared.config.engine.write_timeout,
        notice.clone(),
        arrivals.clone(),
    );
    let slot = Arc::new(Mutex::new(None));
    let io = HandBack {
        io: Some(io),
        last_write: None,
        runtime: engine.shared.runtime.clone(),
        notice: notice.clone(),
        slot: Arc::downgrade(&slot),
    };
    let stamp = arrivals.clone();
    let service_engine = engine.clone();
    let service =
        hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            let engine = service_engine.clone();
            let arrived = stamp.take().unwrap_or_else(|| engine.shared.runtime.now());
            request.extensions_mut().insert(notice.clone());
            request.extensions_mut().insert(ArrivedAt(arrived));
            async move { Ok::<_, Infallible>(engine.handle_from(request, Some(peer)).await) }
        });
    // The connection future (and with it the IO) is dropped at the end of this statement,
    // which puts the IO in `slot` unless it went to an upgrade.
    let result = hyper::server::conn::http1::Builder::new()
        .timer(timer)
        .keep_alive(true)
        .header_read_timeout(head_timeout)
        // hyper's read buffer limit: a head that does not fit gets 431. Server::new checked
        // it against hyper's minimum of 8192.
        .max_buf_size(max_head_size.max(engineio_proto::server::MIN_HEAD_SIZE))
        .serve_connection(io, service)
        .with_upgrades()
        .await;
    match result {
        Ok(()) => {}
        Err(e) if e.is_timeout() => {
            let returned = slot.lock().ok().and_then(|mut s| s.take());
            // A request has started to arrive when bytes were read (and not yet handed to
            // a request) after the last answer was written.
            let started = match (arrivals.take(), &returned) {
                (Some(at), Some((_, last_write))) => last_write.is_none_or(|w| at >= w),
                _ => false,
            };
            match returned {
                Some((mut io, _)) if started => {
                    let response = engine.shared.server.head_timeout_response();
                    let written = write_without_waiting(&mut io, &encode_http1(&response)).await;
                    tracing::debug!(peer = %peer.addr, answered = written, "request head timed out");
                }
                _ => tracing::debug!(peer = %peer.addr, "idle connection closed (head timeout)"),
            }
        }
        Err(e) => {
            tracing::debug!(peer = %peer.addr, error = %e, "connection ended with an error")
        }
    }
}

/// An HTTP/1.1 response as bytes on the wire, for a connection hyper has given up (hyper
/// writes no answer of its own when the head times out). `Content-Length` is added.
fn encode_http1(response: &engineio_proto::Response) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + response.body.len());
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(response.status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(
        response
            .status
            .canonical_reason()
            .unwrap_or("Unknown")
            .as_bytes(),
    );
    out.extend_from_slice(b"\r\n");
    for (name, value) in &response.headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("content-length: {}\r\n\r\n", response.body.len()).as_bytes());
    out.extend_from_slice(&response.body);
    out
}

/// Writes `bytes` as far as the socket takes them without waiting, then shuts the writing
/// side down the same way; true when everything was written.
async fn write_without_waiting<I: hyper::rt::Write + Unpin>(io: &mut I, bytes: &[u8]) -> bool {
    let mut written = 0;
    poll_fn(|cx| {
        while written < bytes.len() {
            match Pin::new(&mut *io).poll_write(cx, &bytes[written..]) {
                Poll::Ready(Ok(n)) if n > 0 => written += n,
                _ => return Poll::Ready(false),
            }
        }
        let _ = Pin::new(&mut *io).poll_flush(cx);
        let _ = Pin::new(&mut *io).poll_shutdown(cx);
        Poll::Ready(true)
    })
    .await
}

/// The connection's IO as hyper sees it: when hyper drops it without upgrading (after an
/// error), it hands the IO back through `slot`, with the instant of the last write, so
/// that the server can still answer `408`. Reads pass straight through.
struct HandBack<I, R> {
    io: Option<I>,
    /// When hyper last wrote (the end of the last answer, for an idle connection).
    last_write: Option<Instant>,
    runtime: R,
    /// Once the connection carries a WebSocket no head is read again: writes are not timed.
    notice: UpgradeNotice,
    slot: Weak<Returned<I>>,
}

/// Where a [`HandBack`] puts the IO (and the instant of its last write) when dropped.
type Returned<I> = Mutex<Option<(I, Option<Instant>)>>;

impl<I, R> Drop for HandBack<I, R> {
    fn drop(&mut self) {
        if let (Some(io), Some(slot)) = (self.io.take(), self.slot.upgrade())
            && let Ok(mut slot) = slot.lock()
        {
            *slot = Some((io, self.last_write));
        }
    }
}

fn gone() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "connection already handed back",
    )
}

impl<I, R: Runtime> HandBack<I, R> {
    fn wrote(&mut self, r: &Poll<io::Result<usize>>) {
        if matches!(r, Poll::Ready(Ok(n)) if *n > 0) && !self.notice.is_upgraded() {
            self.last_write = Some(self.runtime.now());
        }
    }
}

impl<I: hyper::rt::Read + Unpin, R: Unpin> hyper::rt::Read for HandBack<I, R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut().io.as_mut() {
            Some(io) => Pin::new(io).poll_read(cx, buf),
            None => Poll::Ready(Err(gone())),
        }
    }
}

impl<I: hyper::rt::Write + Unpin, R: Runtime> hyper::rt::Write for HandBack<I, R> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let Some(io) = this.io.as_mut() else {
            return Poll::Ready(Err(gone()));
        };
        let r = Pin::new(io).poll_write(cx, buf);
        this.wrote(&r);
        r
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let Some(io) = this.io.as_mut() else {
            return Poll::Ready(Err(gone()));
        };
        let r = Pin::new(io).poll_write_vectored(cx, bufs);
        this.wrote(&r);
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.io.as_ref().is_some_and(|io| io.is_write_vectored())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut().io.as_mut() {
            Some(io) => Pin::new(io).poll_flush(cx),
            None => Poll::Ready(Err(gone())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut().io.as_mut() {
            Some(io) => Pin::new(io).poll_shutdown(cx),
            None => Poll::Ready(Err(gone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_408_goes_out_as_http1_with_its_length() {
        let server = engineio_proto::server::Server::new(
            engineio_proto::server::ServerConfig::default(),
            engineio_proto::server::SeededSidGenerator::new(1),
        )
        .unwrap();
        let bytes = encode_http1(&server.head_timeout_response());
        let text = String::from_utf8(bytes).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(
            head.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
            "{head}"
        );
        assert!(head.contains("\r\nconnection: close"), "{head}");
        assert!(
            head.contains(&format!("\r\ncontent-length: {}", body.len())),
            "{head}"
        );
        assert!(body.contains("head_timeout"), "{body}");
    }
}
