//! hyper's I/O traits seen as futures-io: the direction smol-hyper does not provide,
//! for running a futures-io library over hyper's upgraded connection (the WebSockets
//! themselves run over tokio's I/O traits, `engineio_hyper::ws`).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Wraps a type implementing `hyper::rt::Read + Write` (such as
/// `hyper::upgrade::Upgraded`) as `futures_io::AsyncRead + AsyncWrite`.
#[derive(Debug)]
pub struct HyperIo<T>(T);

impl<T> HyperIo<T> {
    /// Wraps `io`.
    pub fn new(io: T) -> Self {
        HyperIo(io)
    }

    /// Unwraps.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T: hyper::rt::Read + Unpin> futures_util::io::AsyncRead for HyperIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let mut read_buf = hyper::rt::ReadBuf::new(buf);
        match Pin::new(&mut self.0).poll_read(cx, read_buf.unfilled()) {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(read_buf.filled().len())),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: hyper::rt::Write + Unpin> futures_util::io::AsyncWrite for HyperIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
