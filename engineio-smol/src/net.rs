//! Client connections: plain TCP, or TLS through rustls with the `rustls` feature.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::io::{AsyncRead, AsyncWrite};
use smol::net::TcpStream;

pub use engineio_hyper::tls::TlsConfig;

/// A client connection: plain TCP or TLS.
#[derive(Debug)]
pub enum ClientStream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    #[cfg(feature = "rustls")]
    Tls(Box<futures_rustls::client::TlsStream<TcpStream>>),
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
    if !secure {
        return Ok(ClientStream::Plain(stream));
    }
    #[cfg(feature = "rustls")]
    {
        let name = TlsConfig::server_name(host)?;
        let connector = futures_rustls::TlsConnector::from(tls.rustls_config());
        let tls_stream = connector.connect(name, stream).await?;
        Ok(ClientStream::Tls(Box::new(tls_stream)))
    }
    #[cfg(not(feature = "rustls"))]
    {
        let _ = tls;
        Err(engineio_hyper::tls::unsupported("engineio-smol"))
    }
}

impl AsyncRead for ClientStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
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

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_close(cx),
            #[cfg(feature = "rustls")]
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_close(cx),
        }
    }
}
