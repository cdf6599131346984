//! HTTP requests of the client on a small pool of keep-alive connections, with the
//! response body bounded by the limit each request carries, directly or through an HTTP
//! proxy (absolute-form requests for `http://`, a `CONNECT` tunnel for `https://`).

use std::collections::HashMap;
use std::io;
use std::sync::Mutex;

use bytes::{Bytes, BytesMut};
use engineio_proto::client::{HttpError, HttpRequest, ProxyUrl};
use engineio_proto::{IoError, ProxyRefusal, Response, TransportError};
use http::{HeaderValue, header};
use http_body_util::{BodyExt, Full};

use crate::runtime::Runtime;

/// Idle keep-alive connections kept per server.
const MAX_IDLE_CONNECTIONS: usize = 4;

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// `(host, port, secure)`.
type Key = (String, u16, bool);

/// Idle keep-alive connections, by server (one client always takes the same route, so
/// the server is the key even through a proxy).
pub(super) struct Pool<R> {
    idle: Mutex<HashMap<Key, Vec<Sender>>>,
    proxy: Option<ProxyUrl>,
    _runtime: std::marker::PhantomData<fn() -> R>,
}

impl<R> Pool<R> {
    /// A pool whose connections go through `proxy`, or directly.
    pub(super) fn new(proxy: Option<ProxyUrl>) -> Self {
        Pool {
            idle: Mutex::new(HashMap::new()),
            proxy,
            _runtime: std::marker::PhantomData,
        }
    }
}

impl<R: Runtime> Pool<R> {
    fn take(&self, key: &Key) -> Option<Sender> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let senders = idle.get_mut(key)?;
        while let Some(s) = senders.pop() {
            if !s.is_closed() {
                return Some(s);
            }
        }
        None
    }

    fn put(&self, key: Key, sender: Sender) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let senders = idle.entry(key).or_default();
        if senders.len() < MAX_IDLE_CONNECTIONS {
            senders.push(sender);
        }
    }

    async fn connect(
        &self,
        runtime: &R,
        tls: &R::TlsConfig,
        key: &Key,
    ) -> Result<Sender, TransportError> {
        let connected = match (&self.proxy, key.2) {
            (None, _) => runtime.connect_http(key.0.clone(), key.1, key.2, tls).await,
            // http:// through a proxy: absolute-form requests on a connection to it.
            (Some(proxy), false) => {
                crate::proxy::connect_to_proxy(
                    proxy,
                    runtime.connect_http(proxy.host().to_owned(), proxy.port(), false, tls),
                )
                .await
            }
            // https:// through a proxy: TLS to the server in a CONNECT tunnel.
            (Some(proxy), true) => {
                runtime
                    .connect_http_tunnel(proxy, key.0.clone(), key.1, true, tls)
                    .await
            }
        };
        let io = connected.map_err(connect_error)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(hyper_error)?;
        runtime.spawn(async move {
            let _ = connection.await;
        });
        Ok(sender)
    }

    /// Performs `request`: a pooled connection (or a new one), the request, and the
    /// response with its body read up to `request.max_response_body`. A response whose
    /// `Content-Length` already says more is refused without reading it; its connection
    /// is dropped, as is any connection whose response was not read to the end.
    pub(super) async fn perform(
        &self,
        runtime: &R,
        tls: &R::TlsConfig,
        request: HttpRequest,
    ) -> Result<Response, HttpError> {
        let uri = request.uri;
        let secure = uri.scheme_str() == Some("https");
        let Some(host) = uri.host() else {
            let e = io::Error::new(io::ErrorKind::InvalidInput, "request URI without a host");
            return Err(TransportError::Connect(e.into()).into());
        };
        let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
        let key = (host.to_owned(), port, secure);
        let authority = uri
            .authority()
            .map(|a| a.as_str().to_owned())
            .unwrap_or_default();
        let path = uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| "/".to_owned());
        // Through a proxy, an http:// request names the whole URL (absolute form).
        let forward = self.proxy.as_ref().filter(|_| !secure);
        let target = match forward {
            Some(_) => uri.to_string(),
            None => path,
        };
        let build = || {
            let mut builder = http::Request::builder()
                .method(request.method.clone())
                .uri(target.as_str());
            if let Some(h) = builder.headers_mut() {
                *h = request.headers.clone();
                if let Ok(v) = HeaderValue::from_str(&authority) {
                    h.insert(header::HOST, v);
                }
                if let Some(auth) = forward.and_then(ProxyUrl::authorization) {
                    h.insert(header::PROXY_AUTHORIZATION, auth.clone());
                }
            }
            builder
                .body(Full::new(request.body.clone()))
                .map_err(|e| TransportError::Io(IoError::new(io::ErrorKind::InvalidInput, e)))
        };
        // A kept-alive connection can be closed by the server (its idle timeout: Node's
        // 5 s, gunicorn's 2 s) just as a request goes out on it. A request that got no
        // answer at all on a reused connection was not read, so it is sent once more, on a
        // new connection (as browsers do). A new connection's failure is final.
        let answered_on_reused = match self.take(&key) {
            Some(mut sender) => match send(&mut sender, build()?).await {
                Ok(response) => Some((sender, response)),
                Err(e) if unanswered(&e) => None,
                Err(e) => return Err(hyper_error(e).into()),
            },
            None => None,
        };
        let (sender, response) = match answered_on_reused {
            Some(answered) => answered,
            None => {
                let mut sender = self.connect(runtime, tls, &key).await?;
                let response = send(&mut sender, build()?).await.map_err(hyper_error)?;
                (sender, response)
            }
        };
        let limit = request.max_response_body;
        let (parts, mut body) = response.into_parts();
        // A forward proxy may close the connection after each answer without saying so
        // (tinyproxy does): keep it only when the answer says keep-alive.
        let reusable = forward.is_none() || says_keep_alive(&parts.headers);
        if let Some(proxy) = forward
            && parts.status == http::StatusCode::PROXY_AUTHENTICATION_REQUIRED
        {
            // Only a proxy answers 407: the request never reached the server.
            return Err(TransportError::Proxy(ProxyRefusal {
                proxy: proxy.authority(),
                target: authority,
                status: parts.status,
                tunnel: false,
            })
            .into());
        }
        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if let Some(size) = declared
            && size > limit as u64
        {
            return Err(HttpError::BodyTooLarge { size, limit });
        }
        let capacity = declared.map_or(0, |d| usize::try_from(d).unwrap_or(limit).min(limit));
        let mut data = BytesMut::with_capacity(capacity);
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(hyper_error)?;
            if let Ok(chunk) = frame.into_data() {
                let size = data.len().saturating_add(chunk.len());
                if size > limit {
                    return Err(HttpError::BodyTooLarge {
                        size: size as u64,
                        limit,
                    });
                }
                data.extend_from_slice(&chunk);
            }
        }
        if reusable {
            self.put(key, sender);
        }
        Ok(Response {
            status: parts.status,
            headers: parts.headers,
            body: data.freeze(),
        })
    }
}

/// Sends `request` once the connection is ready, up to the response's head.
async fn send(
    sender: &mut Sender,
    request: http::Request<Full<Bytes>>,
) -> Result<http::Response<hyper::body::Incoming>, hyper::Error> {
    std::future::poll_fn(|cx| sender.poll_ready(cx)).await?;
    sender.send_request(request).await
}

/// Whether the connection ended before any of the response came: the request was not
/// answered (hyper's "connection closed before message completed", a connection it
/// already knew to be closed, or one reset under the request: "error writing a body to
/// connection", "connection reset by peer").
fn unanswered(error: &hyper::Error) -> bool {
    error.is_incomplete_message()
        || error.is_canceled()
        || error.is_closed()
        || io_kind(error).is_some_and(|kind| {
            matches!(
                kind,
                io::ErrorKind::ConnectionReset
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::ConnectionAborted
            )
        })
}

/// Whether a response says its connection stays open (`Connection: keep-alive`, or the
/// `Proxy-Connection` of old proxies).
fn says_keep_alive(headers: &http::HeaderMap) -> bool {
    [
        header::CONNECTION,
        header::HeaderName::from_static("proxy-connection"),
    ]
    .iter()
    .flat_map(|name| headers.get_all(name))
    .filter_map(|v| v.to_str().ok())
    .flat_map(|v| v.split(','))
    .any(|token| token.trim().eq_ignore_ascii_case("keep-alive"))
}

/// A connection that could not be made: a proxy's refusal, or a failure to connect.
pub(super) fn connect_error(error: io::Error) -> TransportError {
    match crate::proxy::proxy_refusal(&error) {
        Some(refusal) => TransportError::Proxy(refusal.clone()),
        None => TransportError::Connect(IoError::from(error)),
    }
}

/// A hyper error as a transport failure: a reset when the connection went away in the
/// middle of a message, an I/O error (with the I/O error's kind when there is one)
/// otherwise.
fn hyper_error(error: hyper::Error) -> TransportError {
    let kind = io_kind(&error);
    let reset =
        error.is_incomplete_message() || error.is_closed() || kind.is_some_and(crate::ws::is_reset);
    let error = IoError::new(kind.unwrap_or(io::ErrorKind::Other), error);
    if reset {
        TransportError::Reset(error)
    } else {
        TransportError::Io(error)
    }
}

/// The kind of the first I/O error in `error`'s source chain.
fn io_kind(error: &(dyn std::error::Error + 'static)) -> Option<io::ErrorKind> {
    let mut source = Some(error);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            return Some(io.kind());
        }
        source = e.source();
    }
    None
}
