//! Client connections: plain TCP, or TLS through rustls with the `rustls` feature.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use engineio_hyper::proto::client::ProxyUrl;
use engineio_hyper::server::ArrivalStamp;
pub use engineio_hyper::tls::TlsConfig;

/// A client connection: plain TCP or TLS.
#[derive(Debug)]
pub enum ClientStream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    #[cfg(feature = "rustls")]
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

/// Opens a TCP connection to `host:port`, with TLS when `secure`.
pub(crate) async fn connect(
    host: &str,
    port: u16,
    secure: bool,
    tls: &TlsConfig,
) -> io::Result<ClientStream> {
    let stream = TcpStream::connect((host, port)).await?;
    stream.set_nodelay(true)?;
    secure_over(stream, host, secure, tls).await
}

/// Opens a connection to `host:port` through a `CONNECT` tunnel of the HTTP proxy
/// `proxy`, with TLS to `host` inside it when `secure`.
pub(crate) async fn connect_via(
    proxy: &ProxyUrl,
    host: &str,
    port: u16,
    secure: bool,
    tls: &TlsConfig,
) -> io::Result<ClientStream> {
    let stream = engineio_hyper::proxy::connect_to_proxy(
        proxy,
        TcpStream::connect((proxy.host(), proxy.port())),
    )
    .await?;
    stream.set_nodelay(true)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let tunnel =
        engineio_hyper::proxy::tunnel(hyper_util::rt::TokioIo::new(stream), proxy, host, port)
            .await?;
    secure_over(tunnel.into_inner(), host, secure, tls).await
}

/// `stream` as is, or with TLS to `host` when `secure`.
async fn secure_over(
    stream: TcpStream,
    host: &str,
    secure: bool,
    tls: &TlsConfig,
) -> io::Result<ClientStream> {
    if !secure {
        return Ok(ClientStream::Plain(stream));
    }
    #[cfg(feature = "rustls")]
    {
        let name = TlsConfig::server_name(host)?;
        let connector = tokio_rustls::TlsConnector::from(tls.rustls_config());
        let tls_stream = connector.connect(name, stream).await?;
        Ok(ClientStream::Tls(Box::new(tls_stream)))
    }
    #[cfg(not(feature = "rustls"))]
    {
        let _ = (tls, host);
        Err(engineio_hyper::tls::unsupported("engineio-tokio"))
    }
}

impl AsyncRead for ClientStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            #[cfg(feature = "rustls")]
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ClientStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            #[cfg(feature = "rustls")]
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_flush(cx),
            #[cfg(feature = "rustls")]
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            #[cfg(feature = "rustls")]
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// A TCP connection the standalone server serves, in hyper's I/O traits: its reads note
/// in its [`ArrivalStamp`] when the kernel received the bytes (Linux; elsewhere, and if
/// the kernel refuses, plain reads, and the request arrives when it is read).
pub(crate) struct ServerTcp {
    inner: TcpStream,
    stamp: ArrivalStamp,
    kernel: bool,
}

impl ServerTcp {
    pub(crate) fn new(inner: TcpStream, stamp: ArrivalStamp) -> Self {
        #[cfg(target_os = "linux")]
        let kernel = {
            use std::os::fd::AsFd;
            engineio_hyper::arrival::kernel::enable(inner.as_fd()).is_ok()
        };
        #[cfg(not(target_os = "linux"))]
        let kernel = false;
        ServerTcp {
            inner,
            stamp,
            kernel,
        }
    }
}

impl hyper::rt::Read for ServerTcp {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        #[cfg(target_os = "linux")]
        if this.kernel {
            use std::os::fd::AsFd;
            loop {
                std::task::ready!(this.inner.poll_read_ready(cx))?;
                let inner = &this.inner;
                let read = inner.try_io(tokio::io::Interest::READABLE, || {
                    engineio_hyper::arrival::kernel::recv_into(inner.as_fd(), &mut buf)
                });
                match read {
                    Ok(at) => {
                        if let Some(at) = at {
                            this.stamp
                                .note(|| engineio_hyper::arrival::wall_time_to_instant(at));
                        }
                        return Poll::Ready(Ok(()));
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(e) => return Poll::Ready(Err(e)),
                }
            }
        }
        let _ = this.kernel;
        let mut io = hyper_util::rt::TokioIo::new(&mut this.inner);
        Pin::new(&mut io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for ServerTcp {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }
}
