//! Client connections: plain TCP, or TLS through rustls with the `rustls` feature.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// TLS settings of the client (the runtime's [`Runtime::TlsConfig`](crate::Runtime)).
///
/// The default trusts the Mozilla root certificates shipped by `webpki-roots` (with the
/// `rustls` feature). [`TlsConfig::with_rustls`] uses your own `rustls::ClientConfig`:
/// private roots, client certificates, ALPN...
#[derive(Clone, Default)]
pub struct TlsConfig {
    #[cfg(feature = "rustls")]
    client: Option<std::sync::Arc<rustls::ClientConfig>>,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig").finish_non_exhaustive()
    }
}

#[cfg(feature = "rustls")]
impl TlsConfig {
    /// Uses this rustls client configuration for `https` and `wss`.
    pub fn with_rustls(config: std::sync::Arc<rustls::ClientConfig>) -> Self {
        TlsConfig {
            client: Some(config),
        }
    }

    fn client(&self) -> std::sync::Arc<rustls::ClientConfig> {
        static DEFAULT: std::sync::OnceLock<std::sync::Arc<rustls::ClientConfig>> =
            std::sync::OnceLock::new();
        match &self.client {
            Some(c) => c.clone(),
            None => DEFAULT
                .get_or_init(|| {
                    let roots = rustls::RootCertStore::from_iter(
                        webpki_roots::TLS_SERVER_ROOTS.iter().cloned(),
                    );
                    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
                    std::sync::Arc::new(
                        rustls::ClientConfig::builder_with_provider(provider)
                            .with_safe_default_protocol_versions()
                            .map(|b| b.with_root_certificates(roots).with_no_client_auth())
                            .unwrap_or_else(|_| {
                                rustls::ClientConfig::builder()
                                    .with_root_certificates(rustls::RootCertStore::empty())
                                    .with_no_client_auth()
                            }),
                    )
                })
                .clone(),
        }
    }
}

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
    if !secure {
        return Ok(ClientStream::Plain(stream));
    }
    #[cfg(feature = "rustls")]
    {
        let name = rustls::pki_types::ServerName::try_from(host.to_owned())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let connector = tokio_rustls::TlsConnector::from(tls.client());
        let tls_stream = connector.connect(name, stream).await?;
        Ok(ClientStream::Tls(Box::new(tls_stream)))
    }
    #[cfg(not(feature = "rustls"))]
    {
        let _ = tls;
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "https and wss need the `rustls` feature of engineio-tokio",
        ))
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
