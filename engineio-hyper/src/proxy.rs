//! HTTP proxy tunnels for the bindings' client connectors.
//!
//! Which proxy, if any, is the protocol crate's decision
//! ([`Proxy`](engineio_proto::client::Proxy)); this module opens a `CONNECT` tunnel through
//! one on a connection the binding already made to the proxy, with hyper's HTTP/1 client
//! (no HTTP parsing of our own), and hands the connection back once the proxy has said
//! yes. The binding then speaks TLS or the WebSocket handshake inside it.

use std::io;
use std::pin::pin;
use std::task::Poll;

use bytes::Bytes;
use engineio_proto::ProxyRefusal;
use engineio_proto::client::ProxyUrl;
use http::{Method, Request, header};
use http_body_util::Empty;

/// Opens a `CONNECT host:port` tunnel through `proxy` on `io`, a connection to the proxy,
/// and returns the connection, ready to carry bytes to `host:port`.
///
/// A refusal (any status but 2xx) is an [`io::Error`] of kind
/// [`ConnectionRefused`](io::ErrorKind::ConnectionRefused) holding a [`ProxyRefusal`]
/// (see [`proxy_refusal`]); a proxy that breaks HTTP or closes the connection is an
/// [`InvalidData`](io::ErrorKind::InvalidData) or reset error naming the proxy.
pub async fn tunnel<T>(io: T, proxy: &ProxyUrl, host: &str, port: u16) -> io::Result<T>
where
    T: hyper::rt::Read + hyper::rt::Write + Send + Unpin + 'static,
{
    let target = authority(host, port);
    let failed = |what: &str, e: hyper::Error| {
        let kind = if e.is_incomplete_message() || e.is_closed() {
            io::ErrorKind::ConnectionReset
        } else {
            io::ErrorKind::InvalidData
        };
        io::Error::new(
            kind,
            format!("proxy {}: {what} CONNECT {target}: {e}", proxy.authority()),
        )
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake::<T, Empty<Bytes>>(io)
        .await
        .map_err(|e| failed("cannot send", e))?;
    let mut request = Request::builder()
        .method(Method::CONNECT)
        .uri(target.as_str())
        .header(header::HOST, target.as_str());
    if let Some(auth) = proxy.authorization() {
        request = request.header(header::PROXY_AUTHORIZATION, auth.clone());
    }
    let request = request
        .body(Empty::new())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // Drive the connection and the request together; the connection finishes (without
    // shutting the socket down) once the proxy's answer to CONNECT has switched it to a
    // tunnel, and hands the socket back.
    let mut conn = pin!(conn.without_shutdown());
    let mut send = pin!(sender.send_request(request));
    let mut parts = None;
    let response = std::future::poll_fn(|cx| {
        if parts.is_none()
            && let Poll::Ready(done) = conn.as_mut().poll(cx)
        {
            parts = Some(done);
        }
        send.as_mut().poll(cx)
    })
    .await
    .map_err(|e| failed("no answer to", e))?;
    let status = response.status();
    if !status.is_success() {
        return Err(io::Error::new(
            io::ErrorKind::ConnectionRefused,
            ProxyRefusal {
                proxy: proxy.authority(),
                target,
                status,
                tunnel: true,
            },
        ));
    }
    let parts = match parts {
        Some(done) => done,
        None => conn.await,
    }
    .map_err(|e| failed("broken answer to", e))?;
    if !parts.read_buf.is_empty() {
        // The server speaks after the client (TLS, the WebSocket handshake): a proxy that
        // sent more than its answer is not a tunnel.
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "proxy {}: {} bytes after its answer to CONNECT {target}",
                proxy.authority(),
                parts.read_buf.len()
            ),
        ));
    }
    Ok(parts.io)
}

/// Opens a TCP connection to the proxy with `connect` (the binding's), naming the proxy in
/// the error when it fails.
pub async fn connect_to_proxy<F, S>(proxy: &ProxyUrl, connect: F) -> io::Result<S>
where
    F: Future<Output = io::Result<S>>,
{
    connect.await.map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot reach the proxy {}: {e}", proxy.authority()),
        )
    })
}

/// The [`ProxyRefusal`] inside an error from [`tunnel`] (or from a binding's connector),
/// if that is what it is.
pub fn proxy_refusal(error: &io::Error) -> Option<&ProxyRefusal> {
    error.get_ref()?.downcast_ref::<ProxyRefusal>()
}

/// `host:port`, with an IPv6 address in brackets.
fn authority(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}
