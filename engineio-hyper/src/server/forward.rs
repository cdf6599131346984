//! Forwarding requests for sessions of other nodes to their owner (a reverse proxy), so
//! that a plain round-robin load balancer works in front of a cluster.
//!
//! The router ([`SessionRouter`], implemented by the cluster binding) says which live
//! node owns a sid that is not in this node's table, and where that node listens. A
//! polling request is sent on to it over a pooled HTTP/1 connection and its answer
//! relayed; a WebSocket upgrade is sent on a fresh connection and, once the owner
//! answered 101, the two upgraded connections are joined byte for byte. A request that
//! was forwarded once carries `x-engineio-forwarded` and is never forwarded again (no
//! loops when two nodes disagree about the membership). When the owner cannot be reached
//! the client gets the protocol's own answer for an unknown session, so it opens a new
//! one.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use engineio_proto::Sid;
use engineio_proto::server::SessionRequest;
use http::{HeaderName, HeaderValue, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Full};

use super::Shared;
use super::http_glue::{self, PeerAddr, ResponseBody};
use super::socket::Handler;
use crate::runtime::Runtime;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// The header a forwarded request carries (the forwarding node's name, or `1`).
pub const FORWARDED_HEADER: HeaderName = HeaderName::from_static("x-engineio-forwarded");

/// The largest answer relayed from an owner (polling answers batch queued messages).
const MAX_FORWARDED_BODY: usize = 256 * 1024 * 1024;
/// Idle connections kept per owner.
const MAX_IDLE: usize = 16;
/// How long a forwarded request may wait beyond the longest a long-poll is held.
const SLACK: Duration = Duration::from_secs(5);
/// Bytes buffered per direction of a tunnelled WebSocket.
const TUNNEL_BUFFER: usize = 16 * 1024;

/// Tells where requests for sessions of other nodes go; set with
/// [`EngineIo::set_router`](super::EngineIo::set_router) (the cluster binding does).
pub trait SessionRouter: Send + Sync + 'static {
    /// The internal address (`host:port`) of the live node that owns `sid`, when that is
    /// another node; `None` when the request is to be answered here (a sid of this node,
    /// of no node, or of a node that is not a live member: the client is told the
    /// session is unknown and opens a new one).
    fn owner_address(&self, sid: &Sid) -> Option<String>;

    /// While this node shuts down: a live node to hand new handshakes to, so that a
    /// round-robin balancer that still sends clients here loses none. `None` refuses them
    /// (503), as a single server does.
    fn handshake_address(&self) -> Option<String> {
        None
    }

    /// A name for this node in the `x-engineio-forwarded` header and in logs.
    fn node_name(&self) -> &str {
        "1"
    }
}

/// What forwarding needs: the router and the idle connections to each owner.
pub(crate) struct Forwarder {
    router: OnceLock<Arc<dyn SessionRouter>>,
    idle: Mutex<Vec<(String, Sender)>>,
    pub(crate) forwarded: AtomicU64,
    pub(crate) failed: AtomicU64,
}

impl Default for Forwarder {
    fn default() -> Self {
        Forwarder {
            router: OnceLock::new(),
            idle: Mutex::new(Vec::new()),
            forwarded: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        }
    }
}

impl Forwarder {
    pub(crate) fn set_router(&self, router: Arc<dyn SessionRouter>) -> bool {
        self.router.set(router).is_ok()
    }

    fn take(&self, address: &str) -> Option<Sender> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.retain(|(_, s)| !s.is_closed());
        let pos = idle.iter().position(|(a, _)| a == address)?;
        Some(idle.swap_remove(pos).1)
    }

    fn put(&self, address: String, sender: Sender) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if !sender.is_closed() && idle.iter().filter(|(a, _)| *a == address).count() < MAX_IDLE {
            idle.push((address, sender));
        }
    }
}

fn was_forwarded(parts: &http::request::Parts) -> bool {
    parts.headers.contains_key(&FORWARDED_HEADER)
}

/// The owner to forward a session request to, if it is not this node's.
pub(crate) fn owner_address<H: Handler, R: Runtime>(
    shared: &Shared<H, R>,
    request: &SessionRequest,
    parts: &http::request::Parts,
) -> Option<String> {
    let router = shared.forwarder.router.get()?;
    if was_forwarded(parts) || shared.sessions.knows(shared.runtime.now(), request.sid()) {
        return None;
    }
    router.owner_address(&request.sid())
}

/// The node to hand a handshake to while this one shuts down: `refusal` is the
/// protocol's answer to the request here (503 for a handshake during a shutdown).
pub(crate) fn handshake_address<H: Handler, R: Runtime>(
    shared: &Shared<H, R>,
    parts: &http::request::Parts,
    refusal: &engineio_proto::Response,
) -> Option<String> {
    let router = shared.forwarder.router.get()?;
    let has_sid = parts
        .uri
        .query()
        .unwrap_or("")
        .split('&')
        .any(|kv| kv.split('=').next() == Some("sid"));
    if !shared.server.is_shutting_down()
        || refusal.status != StatusCode::SERVICE_UNAVAILABLE
        || has_sid
        || was_forwarded(parts)
    {
        return None;
    }
    router.handshake_address()
}

/// Sends the request on to `address` and relays the answer; `fallback` (the protocol's
/// answer for this request when there is no owner) if the owner cannot be reached.
pub(crate) async fn forward<H, R, B>(
    shared: Arc<Shared<H, R>>,
    mut parts: http::request::Parts,
    body: B,
    peer: Option<PeerAddr>,
    address: String,
    fallback: engineio_proto::Response,
) -> http::Response<ResponseBody>
where
    H: Handler,
    R: Runtime,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let Some(router) = shared.forwarder.router.get().cloned() else {
        return http_glue::to_http(fallback, None, None);
    };
    let on_upgrade = parts.extensions.remove::<hyper::upgrade::OnUpgrade>();
    let mut headers = std::mem::take(&mut parts.headers);
    if let Ok(v) = HeaderValue::from_str(router.node_name()) {
        headers.insert(FORWARDED_HEADER, v);
    }
    if let Some(p) = peer {
        append_forwarded_for(&mut headers, p);
    }
    let target = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".into());
    let engine = &shared.server.config();
    let limit = engine.ping_interval + engine.ping_timeout + SLACK;
    let result = match on_upgrade {
        Some(on_upgrade) => {
            let work = tunnel(
                &shared.runtime,
                &address,
                parts.method,
                target,
                headers,
                on_upgrade,
            );
            with_timeout(&shared.runtime, limit, work).await
        }
        None => {
            let body = match http_glue::read_body(body, shared.server.body_read_limit()).await {
                Ok(b) => b,
                Err(e) => {
                    let e: BoxError = e.into();
                    tracing::debug!(error = %e, "reading a forwarded request's body failed");
                    return http_glue::to_http(fallback, None, None);
                }
            };
            let work = relay(&shared, &address, parts.method, target, headers, body);
            with_timeout(&shared.runtime, limit, work).await
        }
    };
    match result {
        Ok(response) => {
            shared.forwarder.forwarded.fetch_add(1, Ordering::Relaxed);
            shared.metrics.forwarded();
            response
        }
        Err(e) => {
            shared.forwarder.failed.fetch_add(1, Ordering::Relaxed);
            shared.metrics.forward_failed();
            tracing::warn!(owner = %address, error = %e, "forwarding to the session's owner failed");
            http_glue::to_http(fallback, None, None)
        }
    }
}

fn append_forwarded_for(headers: &mut http::HeaderMap, peer: PeerAddr) {
    let ip = peer.addr.ip().to_string();
    let value = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(prior) => format!("{prior}, {ip}"),
        None => ip,
    };
    if let Ok(v) = HeaderValue::from_str(&value) {
        headers.insert(HeaderName::from_static("x-forwarded-for"), v);
    }
    if peer.secure && !headers.contains_key("x-forwarded-proto") {
        headers.insert(
            HeaderName::from_static("x-forwarded-proto"),
            HeaderValue::from_static("https"),
        );
    }
}

async fn with_timeout<R: Runtime, T>(
    runtime: &R,
    limit: Duration,
    work: impl Future<Output = Result<T, String>>,
) -> Result<T, String> {
    let deadline = runtime.now() + limit;
    let timer = crate::runtime::sleep_until(runtime, deadline);
    let work = std::pin::pin!(work);
    let timer = std::pin::pin!(timer);
    match futures_util::future::select(work, timer).await {
        futures_util::future::Either::Left((r, _)) => r,
        futures_util::future::Either::Right(_) => Err(format!("no answer within {limit:?}")),
    }
}

fn split(address: &str) -> Result<(String, u16), String> {
    let (host, port) = address
        .rsplit_once(':')
        .ok_or_else(|| format!("owner address {address:?} has no port"))?;
    let port = port
        .parse()
        .map_err(|_| format!("owner address {address:?} has a bad port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Ok((host.to_owned(), port))
}

async fn connect<R: Runtime>(runtime: &R, address: &str, upgrades: bool) -> Result<Sender, String> {
    let (host, port) = split(address)?;
    let io = runtime
        .connect_http(host, port, false, &R::TlsConfig::default())
        .await
        .map_err(|e| format!("cannot connect to {address}: {e}"))?;
    let (sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| e.to_string())?;
    if upgrades {
        runtime.spawn(async move {
            let _ = connection.with_upgrades().await;
        });
    } else {
        runtime.spawn(async move {
            let _ = connection.await;
        });
    }
    Ok(sender)
}

fn build_request(
    method: http::Method,
    target: String,
    headers: http::HeaderMap,
    body: Bytes,
) -> Result<http::Request<Full<Bytes>>, String> {
    let mut request = http::Request::builder()
        .method(method)
        .uri(target)
        .body(Full::new(body))
        .map_err(|e| e.to_string())?;
    *request.headers_mut() = headers;
    Ok(request)
}

/// A polling request: one exchange on a pooled connection.
async fn relay<H: Handler, R: Runtime>(
    shared: &Shared<H, R>,
    address: &str,
    method: http::Method,
    target: String,
    headers: http::HeaderMap,
    body: Bytes,
) -> Result<http::Response<ResponseBody>, String> {
    let forwarder = &shared.forwarder;
    let request = build_request(method, target, headers, body)?;
    // A pooled connection may have been closed by the owner meanwhile: then try a new one
    // (the request did not reach it, so sending it again is safe).
    let mut sender = match forwarder.take(address) {
        Some(s) => s,
        None => connect(&shared.runtime, address, false).await?,
    };
    let response = match ready_and_send(&mut sender, clone_request(&request)).await {
        Ok(r) => r,
        Err(retry) if retry => {
            sender = connect(&shared.runtime, address, false).await?;
            ready_and_send(&mut sender, request)
                .await
                .map_err(|_| format!("the owner {address} closed the connection"))?
        }
        Err(_) => return Err(format!("the owner {address} failed the request")),
    };
    let (parts, mut body) = response.into_parts();
    let mut data = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| e.to_string())?;
        if let Ok(chunk) = frame.into_data() {
            if data.len() + chunk.len() > MAX_FORWARDED_BODY {
                return Err(format!("answer over {MAX_FORWARDED_BODY} bytes"));
            }
            data.extend_from_slice(&chunk);
        }
    }
    forwarder.put(address.to_owned(), sender);
    Ok(http_glue::build(parts.status, parts.headers, data.freeze()))
}

fn clone_request(r: &http::Request<Full<Bytes>>) -> http::Request<Full<Bytes>> {
    let mut c = http::Request::new(r.body().clone());
    *c.method_mut() = r.method().clone();
    *c.uri_mut() = r.uri().clone();
    *c.headers_mut() = r.headers().clone();
    c
}

/// Sends on a connection; `Err(true)` when the connection was already closed (the
/// request can be sent again elsewhere), `Err(false)` when it failed after sending.
async fn ready_and_send(
    sender: &mut Sender,
    request: http::Request<Full<Bytes>>,
) -> Result<http::Response<hyper::body::Incoming>, bool> {
    if std::future::poll_fn(|cx| sender.poll_ready(cx))
        .await
        .is_err()
    {
        return Err(true);
    }
    match sender.send_request(request).await {
        Ok(r) => Ok(r),
        Err(e) => Err(e.is_canceled() || e.is_closed()),
    }
}

/// A WebSocket upgrade: the handshake goes to the owner on a connection of its own; when
/// the owner switches protocols, the client's connection is joined to it.
async fn tunnel<R: Runtime>(
    runtime: &R,
    address: &str,
    method: http::Method,
    target: String,
    headers: http::HeaderMap,
    client: hyper::upgrade::OnUpgrade,
) -> Result<http::Response<ResponseBody>, String> {
    let mut sender = connect(runtime, address, true).await?;
    let request = build_request(method, target, headers, Bytes::new())?;
    std::future::poll_fn(|cx| sender.poll_ready(cx))
        .await
        .map_err(|e| e.to_string())?;
    let mut response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        // The owner refused (the session ended meanwhile...): relay its answer.
        let (parts, body) = response.into_parts();
        let data = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
        return Ok(http_glue::build(parts.status, parts.headers, data));
    }
    let upstream = hyper::upgrade::on(&mut response);
    let owner = address.to_owned();
    runtime.spawn(async move {
        let (client, upstream) = match (client.await, upstream.await) {
            (Ok(c), Ok(u)) => (c, u),
            (c, u) => {
                tracing::debug!(%owner, client = c.is_ok(), owner_side = u.is_ok(), "a tunnelled upgrade did not complete");
                return;
            }
        };
        if let Err(e) = Join::new(client, upstream).await {
            tracing::debug!(%owner, error = %e, "a tunnelled WebSocket ended with an error");
        }
    });
    let (parts, _) = response.into_parts();
    Ok(http_glue::build(parts.status, parts.headers, Bytes::new()))
}

/// One direction of a tunnel.
struct Half {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    read_done: bool,
    shut: bool,
}

impl Half {
    fn new() -> Half {
        Half {
            buf: vec![0u8; TUNNEL_BUFFER].into_boxed_slice(),
            start: 0,
            end: 0,
            read_done: false,
            shut: false,
        }
    }

    /// Moves bytes from `from` to `to`; ready once `from` ended and `to` was shut down.
    fn poll<A, B>(&mut self, cx: &mut Context<'_>, from: &mut A, to: &mut B) -> Poll<io::Result<()>>
    where
        A: hyper::rt::Read + Unpin,
        B: hyper::rt::Write + Unpin,
    {
        loop {
            if self.start == self.end && !self.read_done {
                let mut rb = hyper::rt::ReadBuf::new(&mut self.buf);
                ready!(Pin::new(&mut *from).poll_read(cx, rb.unfilled()))?;
                let n = rb.filled().len();
                if n == 0 {
                    self.read_done = true;
                } else {
                    self.start = 0;
                    self.end = n;
                }
            }
            if self.start < self.end {
                let chunk = self.buf.get(self.start..self.end).unwrap_or(&[]);
                let n = ready!(Pin::new(&mut *to).poll_write(cx, chunk))?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                self.start += n;
                if self.start == self.end {
                    ready!(Pin::new(&mut *to).poll_flush(cx))?;
                }
                continue;
            }
            if self.read_done && !self.shut {
                ready!(Pin::new(&mut *to).poll_shutdown(cx))?;
                self.shut = true;
            }
            return Poll::Ready(Ok(()));
        }
    }
}

/// Both directions of a tunnel, until both ended.
struct Join {
    a: hyper::upgrade::Upgraded,
    b: hyper::upgrade::Upgraded,
    a_to_b: Half,
    b_to_a: Half,
    a_done: bool,
    b_done: bool,
}

impl Join {
    fn new(a: hyper::upgrade::Upgraded, b: hyper::upgrade::Upgraded) -> Join {
        Join {
            a,
            b,
            a_to_b: Half::new(),
            b_to_a: Half::new(),
            a_done: false,
            b_done: false,
        }
    }
}

impl Future for Join {
    type Output = io::Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.a_done
            && let Poll::Ready(r) = this.a_to_b.poll(cx, &mut this.a, &mut this.b)
        {
            r?;
            this.a_done = true;
        }
        if !this.b_done
            && let Poll::Ready(r) = this.b_to_a.poll(cx, &mut this.b, &mut this.a)
        {
            r?;
            this.b_done = true;
        }
        if this.a_done && this.b_done {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    }
}
