//! Request errors: what the server answers when no session can take a request.

use bytes::{BufMut, BytesMut};
use http::{Method, StatusCode};

use crate::Transport;
use crate::exchange::{APPLICATION_JSON, Response};

/// The protocol's error codes, sent as `{"code":N,"message":"..."}` with status 400 (403
/// for [`Forbidden`](ErrorCode::Forbidden)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ErrorCode {
    /// 0, `Transport unknown`.
    UnknownTransport = 0,
    /// 1, `Session ID unknown`.
    UnknownSid = 1,
    /// 2, `Bad handshake method`.
    BadHandshakeMethod = 2,
    /// 3, `Bad request`.
    BadRequest = 3,
    /// 4, `Forbidden`.
    Forbidden = 4,
    /// 5, `Unsupported protocol version`.
    UnsupportedProtocolVersion = 5,
}

impl ErrorCode {
    /// Node's message for the code, which clients may compare against.
    pub const fn message(self) -> &'static str {
        match self {
            ErrorCode::UnknownTransport => "Transport unknown",
            ErrorCode::UnknownSid => "Session ID unknown",
            ErrorCode::BadHandshakeMethod => "Bad handshake method",
            ErrorCode::BadRequest => "Bad request",
            ErrorCode::Forbidden => "Forbidden",
            ErrorCode::UnsupportedProtocolVersion => "Unsupported protocol version",
        }
    }
}

/// Why the server refused a request before any session took it.
///
/// Each error maps to a status and a protocol [`ErrorCode`]; the JSON body carries Node's
/// `message` for the code plus a `detail` key with the explanation below, so that a person
/// reading a failed request sees what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// `transport` was missing or not `polling`/`websocket`.
    #[error("unknown transport {0:?}: use transport=polling or transport=websocket")]
    UnknownTransport(Option<String>),
    /// The transport is disabled in the server's configuration.
    #[error("transport {0} is disabled on this server")]
    TransportDisabled(Transport),
    /// The session id is not a live session.
    #[error(
        "session {0:?} is unknown: it closed, timed out, or this request reached a different server process (are sticky sessions configured?)"
    )]
    UnknownSid(String),
    /// A handshake (no `sid`) with a method other than GET.
    #[error("a handshake must be a GET request, not {0}")]
    BadHandshakeMethod(Method),
    /// `transport=websocket` on a request that is not a WebSocket upgrade.
    #[error(
        "transport=websocket needs a WebSocket upgrade request (Upgrade: websocket); if a proxy is in front of this server, make it forward the Upgrade and Connection headers"
    )]
    WebSocketWithoutUpgrade,
    /// A WebSocket upgrade request that says `transport=polling`.
    #[error("a WebSocket upgrade request must say transport=websocket")]
    UpgradeOnPolling,
    /// A request for a session on a method the transport does not use.
    #[error("method {method} is not used by the {transport} transport")]
    MethodNotAllowed {
        /// The method.
        method: Method,
        /// The transport asked for.
        transport: Transport,
    },
    /// The `Origin` is not accepted by the CORS policy.
    #[error("origin {0:?} is not accepted (see ServerConfig::cors)")]
    OriginNotAllowed(String),
    /// JSONP polling (`j=`) was requested; it is not offered.
    #[error(
        "JSONP polling (j=) is not supported: use XHR/fetch polling or WebSocket (engine.io-client 6 removed JSONP too)"
    )]
    JsonpNotSupported,
    /// The request names a session whose transport it does not match (for example polling
    /// after the upgrade to WebSocket, or a second WebSocket).
    #[error("{0}")]
    TransportMismatch(&'static str),
    /// `EIO` was not `4`.
    #[error(transparent)]
    UnsupportedProtocolVersion(#[from] crate::UnsupportedProtocolVersion),
    /// A WebSocket upgrade request the WebSocket protocol refuses (RFC 6455, 4.2.1).
    #[error("invalid WebSocket handshake: {0}")]
    BadWebSocketHandshake(&'static str),
    /// The connection cannot be upgraded to a WebSocket (HTTP/2, or a server stack
    /// without upgrade support).
    #[error(
        "this connection cannot be upgraded to a WebSocket (HTTP/2, or a server without upgrade support): use HTTP/1.1"
    )]
    CannotUpgrade,
    /// The body of a polling POST could not be read.
    #[error(
        "the polling POST body could not be read (the connection failed or its framing was invalid)"
    )]
    BodyUnreadable,
    /// The server is shutting down and takes no new sessions.
    #[error(
        "the server is shutting down and takes no new sessions: connect again (to another node)"
    )]
    ShuttingDown,
    /// The application refused the handshake.
    #[error("connection refused: {message}")]
    Rejected {
        /// The status to answer with (403 unless the application chose another).
        status: StatusCode,
        /// The application's message.
        message: String,
    },
}

impl RequestError {
    /// The protocol error code.
    pub fn code(&self) -> ErrorCode {
        match self {
            RequestError::UnknownTransport(_) | RequestError::TransportDisabled(_) => {
                ErrorCode::UnknownTransport
            }
            RequestError::UnknownSid(_) => ErrorCode::UnknownSid,
            RequestError::BadHandshakeMethod(_) => ErrorCode::BadHandshakeMethod,
            RequestError::WebSocketWithoutUpgrade
            | RequestError::UpgradeOnPolling
            | RequestError::MethodNotAllowed { .. }
            | RequestError::OriginNotAllowed(_)
            | RequestError::JsonpNotSupported
            | RequestError::TransportMismatch(_)
            | RequestError::BadWebSocketHandshake(_)
            | RequestError::CannotUpgrade
            | RequestError::BodyUnreadable => ErrorCode::BadRequest,
            RequestError::Rejected { .. } | RequestError::ShuttingDown => ErrorCode::Forbidden,
            RequestError::UnsupportedProtocolVersion(_) => ErrorCode::UnsupportedProtocolVersion,
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            RequestError::Rejected { status, .. } => *status,
            RequestError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// The JSON response: `{"code":N,"message":"<Node's text>","detail":"<why>"}`. For a
    /// rejected handshake the message is the application's.
    pub fn to_response(&self) -> Response {
        let code = self.code();
        let message = match self {
            RequestError::Rejected { message, .. } => message.as_str(),
            _ => code.message(),
        };
        let mut body = BytesMut::with_capacity(96);
        body.put_slice(b"{\"code\":");
        body.put_u8(b'0' + code as u8);
        body.put_slice(b",\"message\":");
        put_json_string(&mut body, message);
        if !matches!(self, RequestError::Rejected { .. }) {
            body.put_slice(b",\"detail\":");
            put_json_string(&mut body, &self.to_string());
        }
        body.put_u8(b'}');
        Response::new(self.status(), APPLICATION_JSON, body.freeze())
    }
}

fn put_json_string(out: &mut BytesMut, s: &str) {
    match serde_json::to_string(s) {
        Ok(quoted) => out.put_slice(quoted.as_bytes()),
        Err(_) => out.put_slice(b"\"\""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_bodies_carry_node_messages_and_a_detail() {
        let r = RequestError::UnknownSid("abc".into()).to_response();
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(r.headers["content-type"], "application/json");
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["code"], 1);
        assert_eq!(v["message"], "Session ID unknown");
        assert!(v["detail"].as_str().unwrap().contains("sticky sessions"));

        let r = RequestError::Rejected {
            status: StatusCode::FORBIDDEN,
            message: "no \"token\"".into(),
        }
        .to_response();
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["code"], 4);
        assert_eq!(v["message"], "no \"token\"");
        assert!(v.get("detail").is_none());
    }

    #[test]
    fn codes_match_the_protocol() {
        let cases = [
            (RequestError::UnknownTransport(None), 0),
            (RequestError::TransportDisabled(Transport::Polling), 0),
            (RequestError::UnknownSid(String::new()), 1),
            (RequestError::BadHandshakeMethod(Method::POST), 2),
            (RequestError::WebSocketWithoutUpgrade, 3),
            (RequestError::JsonpNotSupported, 3),
            (
                RequestError::UnsupportedProtocolVersion(crate::UnsupportedProtocolVersion {
                    found: Some("3".into()),
                }),
                5,
            ),
        ];
        for (e, code) in cases {
            assert_eq!(e.code() as u8, code, "{e}");
            assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        }
    }
}
