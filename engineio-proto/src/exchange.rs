//! What crosses the boundary between the state machines and a binding's HTTP stack.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};

/// Identifies one HTTP request (or the WebSocket it was upgraded to) between a binding and
/// a state machine.
///
/// On the server side the binding chooses the ids (a counter is enough) and must not
/// reuse one while the request or its WebSocket is alive; the session stores them and
/// names them again in its actions, for example to answer a parked long-poll request
/// later. On the client side the client state machine chooses them for the requests and
/// WebSockets it asks for, and the binding reports back with the same ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// An HTTP response for the binding to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: StatusCode,
    /// Headers, including `Content-Type`; the binding adds `Content-Length` (and may
    /// compress the body, adjusting the headers).
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

pub(crate) const TEXT_PLAIN: HeaderValue = HeaderValue::from_static("text/plain; charset=UTF-8");
pub(crate) const APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");

impl Response {
    /// A response with a body and a content type.
    pub(crate) fn new(status: StatusCode, content_type: HeaderValue, body: Bytes) -> Response {
        let mut headers = HeaderMap::with_capacity(4);
        headers.insert(header::CONTENT_TYPE, content_type);
        Response {
            status,
            headers,
            body,
        }
    }

    /// A `200 OK` polling payload (`text/plain; charset=UTF-8`, not cacheable).
    pub(crate) fn payload(body: Bytes) -> Response {
        let mut r = Response::new(StatusCode::OK, TEXT_PLAIN, body);
        r.headers
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        r
    }

    /// A `200 OK` Engine.IO v3 binary polling payload (`application/octet-stream`, not
    /// cacheable).
    pub(crate) fn payload_octets(body: Bytes) -> Response {
        let mut r = Response::new(
            StatusCode::OK,
            HeaderValue::from_static(crate::v3::OCTET_STREAM),
            body,
        );
        r.headers
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        r
    }

    /// A response with no body.
    pub(crate) fn empty(status: StatusCode) -> Response {
        Response {
            status,
            headers: HeaderMap::new(),
            body: Bytes::new(),
        }
    }

    /// The body as text, for tests and logs (lossy).
    pub fn body_text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }
}
