//! Failures below the protocol (sockets, TLS, HTTP and WebSocket framing), as a binding
//! reports them, kept with their source error.

use std::error::Error;
use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;

/// An I/O failure as a binding saw it: its [`io::ErrorKind`] and the error itself.
///
/// Cheap to clone (the error is shared), comparable (by kind and message, so that
/// reasons and events holding one stay `PartialEq`), and transparent: it displays as the
/// error it holds, and [`Error::source`] is that error's source.
///
/// ```
/// use std::io;
/// use engineio_proto::IoError;
///
/// let e = IoError::from(io::Error::new(io::ErrorKind::ConnectionReset, "reset by peer"));
/// assert_eq!(e.kind(), io::ErrorKind::ConnectionReset);
/// assert_eq!(e.to_string(), "reset by peer");
/// assert!(e.get_ref().downcast_ref::<io::Error>().is_some());
/// ```
#[derive(Clone)]
pub struct IoError {
    kind: io::ErrorKind,
    error: Arc<dyn Error + Send + Sync>,
}

impl IoError {
    /// An error of `kind` (an error of a library, or a message).
    pub fn new<E>(kind: io::ErrorKind, error: E) -> IoError
    where
        E: Into<Box<dyn Error + Send + Sync>>,
    {
        IoError {
            kind,
            error: Arc::from(error.into()),
        }
    }

    /// An error of kind [`io::ErrorKind::Other`].
    pub fn other<E>(error: E) -> IoError
    where
        E: Into<Box<dyn Error + Send + Sync>>,
    {
        IoError::new(io::ErrorKind::Other, error)
    }

    /// The kind of failure.
    pub fn kind(&self) -> io::ErrorKind {
        self.kind
    }

    /// The error itself (downcast it to the binding's error type for its details).
    pub fn get_ref(&self) -> &(dyn Error + Send + Sync + 'static) {
        &*self.error
    }
}

impl From<io::Error> for IoError {
    fn from(error: io::Error) -> IoError {
        IoError {
            kind: error.kind(),
            error: Arc::new(error),
        }
    }
}

impl fmt::Debug for IoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IoError")
            .field("kind", &self.kind)
            .field("error", &self.error.to_string())
            .finish()
    }
}

impl fmt::Display for IoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl Error for IoError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.error.source()
    }
}

impl PartialEq for IoError {
    fn eq(&self, other: &IoError) -> bool {
        self.kind == other.kind && self.error.to_string() == other.error.to_string()
    }
}

impl Eq for IoError {}

/// Why a transport (an HTTP request, a WebSocket) failed: the detail of
/// [`CloseReason::TransportError`](crate::CloseReason::TransportError),
/// [`TransportEnd::Error`](crate::TransportEnd::Error) and the client's
/// [`ConnectError::Transport`](crate::client::ConnectError::Transport).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The connection could not be made (refused, unreachable, DNS, TLS handshake...).
    #[error("cannot connect: {0}")]
    Connect(IoError),
    /// The connection was reset, or dropped without the protocol's close: a TCP reset, the
    /// end of the stream in the middle of an HTTP response, a WebSocket that ended without
    /// a close frame (RFC 6455's abnormal closure, 1006).
    #[error("connection reset: {0}")]
    Reset(IoError),
    /// Reading or writing failed otherwise, or the peer broke HTTP or WebSocket framing.
    #[error("{0}")]
    Io(IoError),
    /// The peer went away while one of its requests was unanswered (server side: a
    /// polling request closed by its client).
    #[error("{0}")]
    Aborted(&'static str),
    /// A request got no answer in time.
    #[error("{request} got no answer within {after:?}")]
    Timeout {
        /// Which request (`"polling POST"`...).
        request: &'static str,
        /// The timeout.
        after: Duration,
    },
    /// The server answered a polling request with an HTTP error (client side; the
    /// handshake's refusal is a [`ConnectError::Refused`](crate::client::ConnectError::Refused)
    /// instead). Engine.IO servers send a JSON body `{"code":N,"message":"..."}`.
    #[error("{request} answered HTTP {status}{}{}{}",
        code.map(|c| format!(", code {c}")).unwrap_or_default(),
        message.as_deref().map(|m| format!(": {m}")).unwrap_or_default(),
        detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Http {
        /// Which request (`"polling GET"` or `"polling POST"`).
        request: &'static str,
        /// The HTTP status.
        status: StatusCode,
        /// The protocol's error code from the JSON body.
        code: Option<i64>,
        /// The JSON body's `message`, or the plain-text body.
        message: Option<String>,
        /// The JSON body's `detail` (our servers' explanation), when there is one.
        detail: Option<String>,
    },
    /// The HTTP proxy between the client and the server refused the connection (client
    /// side).
    #[error(transparent)]
    Proxy(ProxyRefusal),
}

/// An HTTP proxy refused to carry a connection: it answered a `CONNECT` tunnel request,
/// or an absolute-form polling request, with an error status (the detail of
/// [`TransportError::Proxy`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the proxy {proxy} refused {}: HTTP {status}{}",
    if *tunnel { format!("to open a tunnel (CONNECT {target})") } else { format!("to forward the request to {target}") },
    refusal_hint(*status))]
pub struct ProxyRefusal {
    /// The proxy's `host:port`.
    pub proxy: String,
    /// The server the request was for (`host:port`).
    pub target: String,
    /// The proxy's status.
    pub status: StatusCode,
    /// Whether it was a `CONNECT` tunnel (`https://`, `ws://`, `wss://`) rather than a
    /// forwarded `http://` polling request.
    pub tunnel: bool,
}

fn refusal_hint(status: StatusCode) -> &'static str {
    match status.as_u16() {
        407 => {
            ": it wants credentials (put user:password in the proxy URL) or refused the ones given"
        }
        403 => ": its rules forbid this destination (many proxies tunnel only to port 443)",
        502..=504 => ": it could not reach the server",
        _ => "",
    }
}

impl TransportError {
    /// The I/O error inside, for the variants that hold one.
    pub fn io_error(&self) -> Option<&IoError> {
        match self {
            TransportError::Connect(e) | TransportError::Reset(e) | TransportError::Io(e) => {
                Some(e)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_compare_by_kind_and_message_and_keep_their_source() {
        let a = IoError::from(io::Error::new(io::ErrorKind::BrokenPipe, "pipe"));
        let b = IoError::new(io::ErrorKind::BrokenPipe, "pipe");
        assert_eq!(a, b);
        assert_ne!(a, IoError::other("pipe"));
        assert_eq!(format!("{a}"), "pipe");
        assert!(format!("{a:?}").contains("BrokenPipe"));
        assert!(a.get_ref().downcast_ref::<io::Error>().is_some());
        let t = TransportError::Reset(a.clone());
        assert_eq!(t.to_string(), "connection reset: pipe");
        assert_eq!(t.io_error(), Some(&a));
        let h = TransportError::Http {
            request: "polling GET",
            status: StatusCode::BAD_REQUEST,
            code: Some(1),
            message: Some("Session ID unknown".into()),
            detail: None,
        };
        assert_eq!(
            h.to_string(),
            "polling GET answered HTTP 400 Bad Request, code 1: Session ID unknown"
        );
        assert_eq!(h.io_error(), None);
        let p = TransportError::Proxy(ProxyRefusal {
            proxy: "127.0.0.1:8888".into(),
            target: "example.com:443".into(),
            status: StatusCode::PROXY_AUTHENTICATION_REQUIRED,
            tunnel: true,
        });
        assert_eq!(
            p.to_string(),
            "the proxy 127.0.0.1:8888 refused to open a tunnel (CONNECT example.com:443): HTTP 407 Proxy Authentication Required: it wants credentials (put user:password in the proxy URL) or refused the ones given"
        );
    }
}
