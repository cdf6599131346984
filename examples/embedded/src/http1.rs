//! HTTP/1.1 over httparse, for both sides of the examples: requests taken from a
//! connection's input and responses written for the server; requests written and
//! responses read for the client. Bodies are delimited by `Content-Length` or chunked
//! encoding and never read past the limit the caller gives (the state machines' limits).

use bytes::Bytes;
use engineio_proto::Response;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};

/// The largest response head the client reads (status line and headers); a server's
/// requests are bounded by its `ServerConfig::max_head_size`.
pub const MAX_HEAD: usize = 16 * 1024;
/// The most headers a head may have.
const MAX_HEADERS: usize = 64;

/// httparse's headers as a `HeaderMap`; `None` if one is not a valid header.
pub fn header_map(raw: &[httparse::Header<'_>]) -> Option<HeaderMap> {
    let mut headers = HeaderMap::with_capacity(raw.len());
    for h in raw {
        let name = HeaderName::from_bytes(h.name.as_bytes()).ok()?;
        headers.append(name, HeaderValue::from_bytes(h.value).ok()?);
    }
    Some(headers)
}

/// How an HTTP/1.1 message's body is delimited (RFC 9112, 6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `Content-Length` bytes (0 for a request without either header).
    Length(usize),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the connection closes (a response without either header).
    UntilClose,
}

/// The framing the headers declare; `None` when it cannot be read (the connection must
/// be closed).
pub fn framing(headers: &HeaderMap, request: bool) -> Option<Framing> {
    if let Some(te) = headers.get(header::TRANSFER_ENCODING) {
        let chunked = te.to_str().ok()?.rsplit(',').next()?.trim();
        return chunked
            .eq_ignore_ascii_case("chunked")
            .then_some(Framing::Chunked);
    }
    match headers.get(header::CONTENT_LENGTH) {
        Some(v) => v.to_str().ok()?.trim().parse().ok().map(Framing::Length),
        None if request => Some(Framing::Length(0)),
        None => Some(Framing::UntilClose),
    }
}

/// What [`decode_chunked`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Chunked {
    /// More bytes are needed.
    Incomplete,
    /// The body, and how many bytes of the buffer it took. Decoding stops early, with a
    /// body over the limit, once it is over the limit (so a caller never buffers more than
    /// it allows).
    Body(Vec<u8>, usize),
    /// Not valid chunked encoding.
    Invalid,
}

/// Decodes a chunked body at the start of `buf`, reading at most `limit + 1` bytes of it.
pub fn decode_chunked(buf: &[u8], limit: usize) -> Chunked {
    let mut body = Vec::new();
    let mut at = 0;
    loop {
        let rest = buf.get(at..).unwrap_or_default();
        let (n, size) = match httparse::parse_chunk_size(rest) {
            Ok(httparse::Status::Complete(found)) => found,
            Ok(httparse::Status::Partial) => return Chunked::Incomplete,
            Err(_) => return Chunked::Invalid,
        };
        at += n;
        if size == 0 {
            // Trailers (ignored) up to an empty line.
            let rest = buf.get(at..).unwrap_or_default();
            if rest.starts_with(b"\r\n") {
                return Chunked::Body(body, at + 2);
            }
            return match rest.windows(4).position(|w| w == b"\r\n\r\n") {
                Some(p) => Chunked::Body(body, at + p + 4),
                None => Chunked::Incomplete,
            };
        }
        let Ok(size) = usize::try_from(size) else {
            return Chunked::Invalid;
        };
        let Some(chunk) = buf.get(at..at.saturating_add(size)) else {
            return Chunked::Incomplete;
        };
        let room = (limit + 1).saturating_sub(body.len()).min(size);
        body.extend_from_slice(chunk.get(..room).unwrap_or(chunk));
        if body.len() > limit {
            return Chunked::Body(body, at + size);
        }
        match buf.get(at + size..at + size + 2) {
            Some(b"\r\n") => at += size + 2,
            Some(_) => return Chunked::Invalid,
            None => return Chunked::Incomplete,
        }
    }
}

/// Whether the connection stays open after this message (RFC 9112, 9.3).
fn keep_alive(http11: bool, headers: &HeaderMap) -> bool {
    let connection = headers
        .get(header::CONNECTION)
        .and_then(|v| v.to_str().ok());
    let connection = connection.unwrap_or_default().to_ascii_lowercase();
    match http11 {
        true => !connection.contains("close"),
        false => connection.contains("keep-alive"),
    }
}

/// A request taken from the start of a connection's input.
#[derive(Debug)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The request target.
    pub uri: Uri,
    /// The headers.
    pub headers: HeaderMap,
    /// The body, at most `limit` bytes (more only when it was over the limit).
    pub body: Bytes,
    /// How many bytes of the input the request took.
    pub used: usize,
    /// Body bytes the request declared but were not read (over the limit): the caller
    /// discards them as they arrive, or closes the connection.
    pub unread: usize,
    /// Whether another request may follow on the connection.
    pub keep_alive: bool,
}

/// What [`parse_request`] found.
#[derive(Debug)]
pub enum Parsed {
    /// More bytes are needed.
    Incomplete,
    /// Not HTTP/1.1 (`400`), or a head over the limit or with too many headers (`431`):
    /// answer [`refusal`] with this status, and close.
    Invalid(StatusCode),
    /// A whole request.
    Request(Box<Request>),
}

/// Takes the request at the start of `input`: a head of at most `max_head` bytes (the
/// server's `max_head_size`) and at most `limit` body bytes (its `body_read_limit`).
pub fn parse_request(input: &[u8], max_head: usize, limit: usize) -> Parsed {
    const TOO_LARGE: StatusCode = StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE;
    let mut raw = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut raw);
    let head = match req.parse(input) {
        Ok(httparse::Status::Complete(n)) if n <= max_head => n,
        Ok(httparse::Status::Partial) if input.len() <= max_head => return Parsed::Incomplete,
        Ok(_) | Err(httparse::Error::TooManyHeaders) => return Parsed::Invalid(TOO_LARGE),
        Err(_) => return Parsed::Invalid(StatusCode::BAD_REQUEST),
    };
    let method = req
        .method
        .and_then(|m| Method::from_bytes(m.as_bytes()).ok());
    let uri = req.path.and_then(|p| p.parse::<Uri>().ok());
    let (Some(method), Some(uri), Some(headers)) = (method, uri, header_map(req.headers)) else {
        return Parsed::Invalid(StatusCode::BAD_REQUEST);
    };
    let mut keep_alive = keep_alive(req.version == Some(1), &headers);
    let rest = input.get(head..).unwrap_or_default();
    let (body, used, unread) = match framing(&headers, true) {
        Some(Framing::Length(len)) => match rest.get(..len.min(limit)) {
            Some(body) => (body.to_vec(), body.len(), len - body.len()),
            None => return Parsed::Incomplete,
        },
        Some(Framing::Chunked) => match decode_chunked(rest, limit) {
            Chunked::Body(body, used) => {
                // Over the limit, the rest of a chunked body cannot be skipped by count.
                keep_alive &= body.len() <= limit;
                (body, used, 0)
            }
            Chunked::Incomplete if input.len() < max_head + limit => return Parsed::Incomplete,
            _ => return Parsed::Invalid(StatusCode::BAD_REQUEST),
        },
        _ => return Parsed::Invalid(StatusCode::BAD_REQUEST),
    };
    Parsed::Request(Box::new(Request {
        method,
        uri,
        headers,
        body: Bytes::from(body),
        used: head + used,
        unread,
        keep_alive,
    }))
}

/// Writes a response: the proto's status, headers and body, plus `Content-Length`
/// (except on a 101) and `Connection: close` when the connection ends after it.
pub fn encode_response(response: &Response, close: bool, out: &mut Vec<u8>) {
    let status = response.status;
    let reason = status.canonical_reason().unwrap_or_default();
    out.extend_from_slice(format!("HTTP/1.1 {} {reason}\r\n", status.as_u16()).as_bytes());
    encode_headers(&response.headers, out);
    if status != StatusCode::SWITCHING_PROTOCOLS {
        out.extend_from_slice(format!("content-length: {}\r\n", response.body.len()).as_bytes());
    }
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&response.body);
}

fn encode_headers(headers: &HeaderMap, out: &mut Vec<u8>) {
    for (name, value) in headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

/// The 101 answering a WebSocket handshake: the session's extra headers, and the
/// `Sec-WebSocket-Accept` derived from the request's key (the proto accepts only requests
/// that have one).
pub fn switching_protocols(key: Option<&HeaderValue>, extra: HeaderMap) -> Response {
    let mut response = Response {
        status: StatusCode::SWITCHING_PROTOCOLS,
        headers: extra,
        body: Bytes::new(),
    };
    let key = key.map_or(&[][..], |k| k.as_bytes());
    let accept = tungstenite::handshake::derive_accept_key(key);
    let h = &mut response.headers;
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(accept) = HeaderValue::from_str(&accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    response
}

/// The answer to a head or body that is not HTTP/1.1, or to a head too large (below
/// Engine.IO, so not the proto's to decide): the status, its reason as the body, and then
/// the connection is closed.
pub fn refusal(status: StatusCode) -> Response {
    let mut response = engineio_proto::static_files::not_found();
    response.status = status;
    response.body = Bytes::from_static(status.canonical_reason().unwrap_or("").as_bytes());
    response
}

/// Writes a client request: `uri`'s path and query as the target, its authority as
/// `Host`, the headers the state machine gave, and `Content-Length`.
pub fn encode_request(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    out: &mut Vec<u8>,
) {
    let target = uri.path_and_query().map_or("/", |p| p.as_str());
    out.extend_from_slice(format!("{method} {target} HTTP/1.1\r\n").as_bytes());
    if let Some(authority) = uri.authority() {
        out.extend_from_slice(format!("host: {authority}\r\n").as_bytes());
    }
    encode_headers(headers, out);
    out.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
    out.extend_from_slice(body);
}

/// What [`parse_response`] found.
#[derive(Debug)]
pub enum ParsedResponse {
    /// More bytes are needed.
    Incomplete,
    /// Not a valid HTTP/1.1 response, or the connection ended in its middle.
    Invalid,
    /// The body is over the limit (as declared, or as read so far): at least this size.
    TooLarge(u64),
    /// A whole response, whether the connection may carry another request, and how many
    /// bytes of the input it took.
    Complete(Response, bool, usize),
}

/// Reads the response at the start of `input`, with a body of at most `limit` bytes
/// (the request's `max_response_body`). `closed`: the peer ended the connection after
/// `input`, which completes a body delimited by the end of the connection.
pub fn parse_response(input: &[u8], limit: usize, closed: bool) -> ParsedResponse {
    let mut raw = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut res = httparse::Response::new(&mut raw);
    let head = match res.parse(input) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if !closed && input.len() <= MAX_HEAD => {
            return ParsedResponse::Incomplete;
        }
        _ => return ParsedResponse::Invalid,
    };
    let status = res.code.and_then(|c| StatusCode::from_u16(c).ok());
    let (Some(status), Some(headers)) = (status, header_map(res.headers)) else {
        return ParsedResponse::Invalid;
    };
    let keep_alive = keep_alive(res.version == Some(1), &headers);
    let rest = input.get(head..).unwrap_or_default();
    let no_body = status.is_informational() || status == 204 || status == 304;
    let framing = if no_body {
        Some(Framing::Length(0))
    } else {
        framing(&headers, false)
    };
    let (body, used, keep_alive) = match framing {
        Some(Framing::Length(len)) if len > limit => return ParsedResponse::TooLarge(len as u64),
        Some(Framing::Length(len)) => match rest.get(..len) {
            Some(body) => (body.to_vec(), len, keep_alive),
            None if closed => return ParsedResponse::Invalid,
            None => return ParsedResponse::Incomplete,
        },
        Some(Framing::Chunked) => match decode_chunked(rest, limit) {
            Chunked::Body(body, _) if body.len() > limit => {
                return ParsedResponse::TooLarge(body.len() as u64);
            }
            Chunked::Body(body, used) => (body, used, keep_alive),
            Chunked::Incomplete if !closed => return ParsedResponse::Incomplete,
            _ => return ParsedResponse::Invalid,
        },
        Some(Framing::UntilClose) if rest.len() > limit => {
            return ParsedResponse::TooLarge(rest.len() as u64);
        }
        Some(Framing::UntilClose) if closed => (rest.to_vec(), rest.len(), false),
        Some(Framing::UntilClose) => return ParsedResponse::Incomplete,
        None => return ParsedResponse::Invalid,
    };
    let response = Response {
        status,
        headers,
        body: Bytes::from(body),
    };
    ParsedResponse::Complete(response, keep_alive, head + used)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies() {
        let wire = b"4\r\nWiki\r\n6;ext=1\r\npedia \r\n0\r\n\r\nNEXT";
        let Chunked::Body(body, used) = decode_chunked(wire, 100) else {
            panic!("a complete body")
        };
        assert_eq!(body, b"Wikipedia ");
        assert_eq!(&wire[used..], b"NEXT");
        // Every prefix is incomplete, never an error.
        for end in 0..wire.len() - 4 {
            assert_eq!(
                decode_chunked(&wire[..end], 100),
                Chunked::Incomplete,
                "{end}"
            );
        }
        // Trailers are skipped.
        let trailers = b"1\r\na\r\n0\r\nX-T: 1\r\n\r\n";
        assert_eq!(
            decode_chunked(trailers, 10),
            Chunked::Body(b"a".to_vec(), 19)
        );
        // Over the limit: stops with limit + 1 bytes.
        let big = b"a\r\n0123456789\r\n";
        assert_eq!(decode_chunked(big, 3), Chunked::Body(b"0123".to_vec(), 13));
        assert_eq!(decode_chunked(b"zz\r\n", 10), Chunked::Invalid);
        assert_eq!(decode_chunked(b"1\r\nab\r\n", 10), Chunked::Invalid);
    }

    #[test]
    fn body_framing() {
        let mut h = HeaderMap::new();
        assert_eq!(framing(&h, true), Some(Framing::Length(0)));
        assert_eq!(framing(&h, false), Some(Framing::UntilClose));
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("12"));
        assert_eq!(framing(&h, true), Some(Framing::Length(12)));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("gzip, chunked"),
        );
        assert_eq!(framing(&h, true), Some(Framing::Chunked));
        h.insert(header::TRANSFER_ENCODING, HeaderValue::from_static("gzip"));
        assert_eq!(framing(&h, true), None);
    }

    fn request(input: &[u8], limit: usize) -> Request {
        match parse_request(input, 1024, limit) {
            Parsed::Request(r) => *r,
            other => panic!("not a request: {other:?}"),
        }
    }

    #[test]
    fn requests() {
        let get = b"GET /engine.io/?EIO=4 HTTP/1.1\r\nHost: x\r\n\r\nPOST";
        let r = request(get, 100);
        assert_eq!(
            (r.method, r.used, r.keep_alive),
            (Method::GET, get.len() - 4, true)
        );
        assert_eq!(r.uri.query(), Some("EIO=4"));
        // HTTP/1.0 closes unless asked; HTTP/1.1 stays unless asked.
        assert!(!request(b"GET / HTTP/1.0\r\n\r\n", 10).keep_alive);
        assert!(request(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 10).keep_alive);
        assert!(!request(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", 10).keep_alive);
        // A body: incomplete until all of it (or the limit) is there.
        let post = b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello";
        for end in 0..post.len() {
            assert!(
                matches!(parse_request(&post[..end], 1024, 100), Parsed::Incomplete),
                "{end}"
            );
        }
        assert_eq!(&request(post, 100).body[..], b"hello");
        // Over the limit: limit bytes are taken, the rest is left unread.
        let r = request(b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhel", 3);
        assert_eq!(
            (&r.body[..], r.unread, r.keep_alive),
            (&b"hel"[..], 2, true)
        );
        // A chunked body over the limit cannot be skipped: the connection closes after.
        let r = request(
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
            3,
        );
        assert_eq!((&r.body[..], r.keep_alive), (&b"hell"[..], false));
        // Not HTTP, or a head too long.
        assert!(matches!(
            parse_request(b"\x16\x03\x01 hello\r\n\r\n", 1024, 10),
            Parsed::Invalid(s) if s == 400
        ));
        // Over max_head, complete or not; too many headers.
        let mut huge = b"GET /".to_vec();
        huge.extend_from_slice(&[b'a'; 1024]);
        assert!(matches!(parse_request(&huge, 1024, 10), Parsed::Invalid(s) if s == 431));
        huge.extend_from_slice(b" HTTP/1.1\r\n\r\n");
        assert!(matches!(parse_request(&huge, 1024, 10), Parsed::Invalid(s) if s == 431));
        let many = format!("GET / HTTP/1.1\r\n{}\r\n", "a: b\r\n".repeat(65));
        assert!(matches!(parse_request(many.as_bytes(), 1024, 10), Parsed::Invalid(s) if s == 431));
        let bad_length = b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n";
        assert!(matches!(parse_request(bad_length, 1024, 10), Parsed::Invalid(s) if s == 400));
    }

    #[test]
    fn responses() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP";
        let ParsedResponse::Complete(r, keep_alive, used) = parse_response(ok, 10, false) else {
            panic!("complete")
        };
        assert_eq!(
            (r.status, &r.body[..], keep_alive, used),
            (StatusCode::OK, &b"ok"[..], true, ok.len() - 4)
        );
        // Declared too large: refused before the body is read.
        let big = b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n";
        assert!(matches!(
            parse_response(big, 10, false),
            ParsedResponse::TooLarge(11)
        ));
        // Chunked, and chunked too large.
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n";
        assert!(
            matches!(parse_response(chunked, 10, false), ParsedResponse::Complete(r, true, _) if &r.body[..] == b"ok")
        );
        assert!(matches!(
            parse_response(chunked, 1, false),
            ParsedResponse::TooLarge(2)
        ));
        // Until the connection closes: complete only then, and not reusable.
        let eof = b"HTTP/1.1 200 OK\r\n\r\nsome";
        assert!(matches!(
            parse_response(eof, 10, false),
            ParsedResponse::Incomplete
        ));
        assert!(
            matches!(parse_response(eof, 10, true), ParsedResponse::Complete(r, false, 23) if &r.body[..] == b"some")
        );
        assert!(matches!(
            parse_response(eof, 3, false),
            ParsedResponse::TooLarge(4)
        ));
        // The connection ended in the middle.
        let cut = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nok";
        assert!(matches!(
            parse_response(cut, 10, true),
            ParsedResponse::Invalid
        ));
        assert!(matches!(
            parse_response(b"HTTP/1.1 20", 10, true),
            ParsedResponse::Invalid
        ));
        // No body for a 204.
        let empty = b"HTTP/1.1 204 No Content\r\n\r\n";
        assert!(matches!(
            parse_response(empty, 10, false),
            ParsedResponse::Complete(_, true, 27)
        ));
    }

    #[test]
    fn encoded_answers() {
        let mut out = Vec::new();
        let mut response = refusal(StatusCode::BAD_REQUEST);
        response
            .headers
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        encode_response(&response, true, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{text}");
        assert!(text.contains("cache-control: no-store\r\n"));
        assert!(
            text.ends_with("content-length: 11\r\nconnection: close\r\n\r\nBad Request"),
            "{text}"
        );
        // RFC 6455's example key.
        let key = HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ==");
        let r = switching_protocols(Some(&key), HeaderMap::new());
        assert_eq!(
            r.headers[header::SEC_WEBSOCKET_ACCEPT],
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        let mut out = Vec::new();
        encode_response(&r, false, &mut out);
        assert!(!String::from_utf8(out).unwrap().contains("content-length"));
        let mut out = Vec::new();
        let uri: Uri = "http://h:1/p?q=1".parse().unwrap();
        encode_request(&Method::POST, &uri, &HeaderMap::new(), b"ab", &mut out);
        assert_eq!(
            out,
            b"POST /p?q=1 HTTP/1.1\r\nhost: h:1\r\ncontent-length: 2\r\n\r\nab"
        );
    }
}
