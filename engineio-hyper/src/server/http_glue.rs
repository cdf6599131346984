//! HTTP details around the protocol: response conversion, compression, request bodies,
//! the WebSocket handshake answer and static files.

use std::io::Write as _;
use std::net::SocketAddr;
use std::pin::pin;

use bytes::{Bytes, BytesMut};
use flate2::Compression;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use http_body::Body;
use http_body_util::{BodyExt, Full};

use crate::runtime::Runtime;

/// The body type of every response this crate makes.
pub type ResponseBody = Full<Bytes>;

/// Facts about the connection a request came on, inserted into the request's extensions
/// by the binding's server loop (or by your own, when you serve the tower service
/// yourself): the peer address for the connect handler and logs, and whether the
/// connection is TLS (for the same-origin check).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr {
    /// The client's address.
    pub addr: SocketAddr,
    /// Whether the connection is secure (TLS).
    pub secure: bool,
}

impl PeerAddr {
    /// A plain-TCP peer.
    pub fn new(addr: SocketAddr) -> Self {
        PeerAddr {
            addr,
            secure: false,
        }
    }
}

/// Converts a protocol response, compressing polling payloads when allowed.
pub(crate) fn to_http(
    response: engineio_proto::Response,
    accept_encoding: Option<&HeaderValue>,
    compression: Option<usize>,
) -> http::Response<ResponseBody> {
    let engineio_proto::Response {
        status,
        mut headers,
        mut body,
    } = response;
    if let (Some(threshold), Some(accept)) = (compression, accept_encoding)
        && status == StatusCode::OK
        && body.len() >= threshold
        && let Some(encoding) = choose_encoding(accept)
        && let Some(compressed) = compress(&body, encoding)
    {
        body = compressed;
        headers.insert(
            header::CONTENT_ENCODING,
            HeaderValue::from_static(encoding.name()),
        );
        headers.append(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    }
    build(status, headers, body)
}

pub(crate) fn build(
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
) -> http::Response<ResponseBody> {
    let mut r = http::Response::new(Full::new(body));
    *r.status_mut() = status;
    *r.headers_mut() = headers;
    r
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    Gzip,
    Deflate,
}

impl Encoding {
    fn name(self) -> &'static str {
        match self {
            Encoding::Gzip => "gzip",
            Encoding::Deflate => "deflate",
        }
    }
}

/// Picks gzip, else deflate, among the encodings `Accept-Encoding` allows (q > 0).
pub(crate) fn choose_encoding(accept: &HeaderValue) -> Option<Encoding> {
    let accept = accept.to_str().ok()?;
    let allowed = |name: &str| {
        accept.split(',').any(|item| {
            let mut parts = item.split(';');
            let token = parts.next().unwrap_or("").trim();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .filter_map(|q| q.trim().parse::<f32>().ok())
                .next()
                .unwrap_or(1.0);
            (token.eq_ignore_ascii_case(name) || token == "*") && q > 0.0
        })
    };
    if allowed("gzip") {
        Some(Encoding::Gzip)
    } else if allowed("deflate") {
        Some(Encoding::Deflate)
    } else {
        None
    }
}

fn compress(data: &[u8], encoding: Encoding) -> Option<Bytes> {
    let out = Vec::with_capacity(data.len() / 2);
    let out = match encoding {
        Encoding::Gzip => {
            let mut e = flate2::write::GzEncoder::new(out, Compression::fast());
            e.write_all(data).ok()?;
            e.finish().ok()?
        }
        Encoding::Deflate => {
            // HTTP's "deflate" is the zlib format.
            let mut e = flate2::write::ZlibEncoder::new(out, Compression::fast());
            e.write_all(data).ok()?;
            e.finish().ok()?
        }
    };
    Some(Bytes::from(out))
}

/// Reads a request body, stopping once it is longer than `limit` (what was read so far,
/// at least `limit + 1` bytes, is returned so the protocol can answer 413).
pub(crate) async fn read_body<B>(body: B, limit: usize) -> Result<Bytes, B::Error>
where
    B: Body<Data = Bytes>,
{
    let mut body = pin!(body);
    let mut first: Option<Bytes> = None;
    let mut rest = BytesMut::new();
    while let Some(frame) = body.as_mut().frame().await {
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        match &first {
            None if rest.is_empty() => first = Some(data),
            _ => {
                if let Some(f) = first.take() {
                    rest.extend_from_slice(&f);
                }
                rest.extend_from_slice(&data);
            }
        }
        let len = first.as_ref().map_or(rest.len(), Bytes::len);
        if len > limit {
            break;
        }
    }
    Ok(first.unwrap_or_else(|| rest.freeze()))
}

/// The 101 answer to a WebSocket handshake the session accepted (the protocol checked
/// the request's `Sec-WebSocket-Key` and version before).
pub(crate) fn websocket_accept(
    key: &HeaderValue,
    extra: HeaderMap,
) -> http::Response<ResponseBody> {
    let accept = engineio_proto::websocket::accept_key(key.as_bytes());
    let mut headers = extra;
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(accept) = HeaderValue::from_str(&accept) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    build(StatusCode::SWITCHING_PROTOCOLS, headers, Bytes::new())
}

/// Serves a static file, if a rule matches the path: the file's answer, or the
/// protocol's 404 when it cannot be read or leads outside its folder.
pub(crate) async fn static_file<R: Runtime>(
    runtime: &R,
    files: &engineio_proto::static_files::StaticFiles,
    method: &http::Method,
    path: &str,
) -> Option<engineio_proto::Response> {
    use engineio_proto::static_files::{is_inside, not_found};
    if files.is_empty() || (method != http::Method::GET && method != http::Method::HEAD) {
        return None;
    }
    let resolved = files.resolve(path)?;
    let (canonical, contents) = match runtime.read_file(resolved.path.clone()).await {
        Ok(found) => found,
        Err(_) => return Some(not_found()),
    };
    if let Some(root) = &resolved.root {
        // A symbolic link inside the folder must not lead outside it.
        let inside = match runtime.canonicalize(root.clone()).await {
            Ok(root) => is_inside(&root, &canonical),
            Err(_) => false,
        };
        if !inside {
            return Some(not_found());
        }
    }
    Some(resolved.response(method, Bytes::from(contents)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    #[test]
    fn accept_encoding_negotiation() {
        let c = |s: &'static str| choose_encoding(&HeaderValue::from_static(s));
        assert_eq!(c("gzip, deflate, br"), Some(Encoding::Gzip));
        assert_eq!(c("deflate"), Some(Encoding::Deflate));
        assert_eq!(c("gzip;q=0, deflate;q=0.5"), Some(Encoding::Deflate));
        assert_eq!(c("br"), None);
        assert_eq!(c("*"), Some(Encoding::Gzip));
        assert_eq!(c("identity"), None);
    }

    #[test]
    fn compressed_bodies_decompress_to_the_original() {
        let body = Bytes::from("4hello\u{1e}".repeat(300));
        let proto = engineio_proto::Response {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            body: body.clone(),
        };
        let r = to_http(
            proto.clone(),
            Some(&HeaderValue::from_static("gzip")),
            Some(1024),
        );
        assert_eq!(r.headers()["content-encoding"], "gzip");
        let compressed = futures_util::FutureExt::now_or_never(r.into_body().collect())
            .unwrap()
            .unwrap()
            .to_bytes();
        assert!(compressed.len() < body.len());
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&compressed[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, body);
        // Below the threshold, or not accepted: untouched.
        let r = to_http(
            proto.clone(),
            Some(&HeaderValue::from_static("gzip")),
            Some(1 << 20),
        );
        assert!(r.headers().get("content-encoding").is_none());
        let r = to_http(proto, None, Some(10));
        assert!(r.headers().get("content-encoding").is_none());
    }

    #[test]
    fn websocket_accept_key() {
        let key = HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ==");
        let r = websocket_accept(&key, HeaderMap::new());
        assert_eq!(r.status(), 101);
        // RFC 6455's example.
        assert_eq!(
            r.headers()["sec-websocket-accept"],
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}
