//! What the client asks its binding to do, and what it tells the application.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, Uri};

use crate::close::{CloseReason, ProtocolError, SendError};
use crate::close_code::CloseCode;
use crate::exchange::{RequestId, Response};
use crate::transport_error::TransportError;
use crate::{Handshake, Message, WsMessage};

/// Something the binding must do, or tell the application. Drain with
/// [`Client::poll_action`](super::Client::poll_action) after every input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientAction {
    /// Perform an HTTP request, then hand its outcome to
    /// [`Client::handle_response`](super::Client::handle_response) with the same `id`.
    /// Its response body may hold at most [`HttpRequest::max_response_body`] bytes.
    HttpRequest {
        /// The request's id, chosen by the client.
        id: RequestId,
        /// The request.
        request: HttpRequest,
    },
    /// Give up on HTTP request `id` (it timed out, or the connection ended): drop it; its
    /// outcome, if it still arrives, is ignored.
    AbortRequest {
        /// The request.
        id: RequestId,
    },
    /// Open a WebSocket, then call
    /// [`Client::handle_ws_connected`](super::Client::handle_ws_connected) or
    /// [`Client::handle_ws_connect_failed`](super::Client::handle_ws_connect_failed) with
    /// this id, which names the WebSocket from then on.
    WsConnect {
        /// The WebSocket's id, chosen by the client.
        id: RequestId,
        /// The `ws://` or `wss://` URI.
        uri: Uri,
        /// Headers for the upgrade request (besides the WebSocket handshake's own).
        headers: HeaderMap,
        /// The sizes the WebSocket library must refuse (reported as
        /// [`TransportEnd::MessageTooLarge`](crate::TransportEnd::MessageTooLarge)).
        limits: WsLimits,
        /// The permessage-deflate offer made (its `Sec-WebSocket-Extensions` header is in
        /// `headers`): check the server's answer with
        /// [`accept_deflate_answer`](crate::websocket::accept_deflate_answer).
        deflate: Option<crate::websocket::DeflateConfig>,
    },
    /// Send a control message on WebSocket `ws` (a pong, the probe, the upgrade or close
    /// packet), in order with the other actions. Application messages are pulled with
    /// [`Client::poll_ws_send`](super::Client::poll_ws_send) instead, when the WebSocket
    /// can take them.
    WsSend {
        /// The WebSocket.
        ws: RequestId,
        /// The message.
        message: WsMessage,
    },
    /// Close WebSocket `ws` with a close frame after what was sent on it (or cancel its
    /// connect if it is still connecting), then drop it once the close is written. The
    /// client has forgotten it: later inputs about it are ignored, but for its end
    /// ([`Client::handle_ws_closed`](super::Client::handle_ws_closed)). If it has not
    /// ended within `write_timeout`, [`WsDrop`](Self::WsDrop) follows.
    WsClose {
        /// The WebSocket.
        ws: RequestId,
        /// The close code.
        code: CloseCode,
        /// The close reason.
        reason: &'static str,
    },
    /// Drop WebSocket `ws` now, whatever it still has to write: the server did not take
    /// its close frame within `write_timeout`.
    WsDrop {
        /// The WebSocket.
        ws: RequestId,
    },
    /// Tell the application.
    Event(ClientEvent),
}

/// An HTTP request to perform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// `GET` (long-poll and handshake) or `POST` (sending packets).
    pub method: Method,
    /// The absolute URI: scheme, authority, path and query.
    pub uri: Uri,
    /// The headers to send (the configured ones, cookies, and `Content-Type` for a POST).
    /// The binding adds `Host`, `Content-Length` and what its HTTP stack needs.
    pub headers: HeaderMap,
    /// The body (empty for a GET).
    pub body: Bytes,
    /// The largest response body the client accepts, in bytes: refuse a response whose
    /// `Content-Length` says more at once, stop reading one that grows past it, and report
    /// [`HttpError::BodyTooLarge`]. From [`ClientConfig::max_handshake_size`] for the
    /// handshake and POSTs, [`ClientConfig::max_payload`] for long-poll GETs.
    ///
    /// [`ClientConfig::max_handshake_size`]: super::ClientConfig::max_handshake_size
    /// [`ClientConfig::max_payload`]: super::ClientConfig::max_payload
    pub max_response_body: usize,
}

/// The size limits a WebSocket connection enforces, from
/// [`ClientConfig::max_ws_message_size`](super::ClientConfig::max_ws_message_size) and
/// [`ClientConfig::max_ws_frame_size`](super::ClientConfig::max_ws_frame_size).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WsLimits {
    /// The largest message, in bytes (its frames together).
    pub max_message_size: usize,
    /// The largest frame, in bytes.
    pub max_frame_size: usize,
}

/// Why an HTTP request produced no usable response, as a binding reports it to
/// [`Client::handle_response`](super::Client::handle_response).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The request failed below HTTP (connect, reset, I/O, malformed response).
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The response body is over the request's
    /// [`max_response_body`](HttpRequest::max_response_body): as its `Content-Length`
    /// announced, or as read so far.
    #[error("response body of {size} bytes or more is over the limit of {limit} bytes")]
    BodyTooLarge {
        /// The announced size, or the bytes read when the limit was passed.
        size: u64,
        /// The limit.
        limit: usize,
    },
}

/// What the application hears from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// The first session since [`Client::connect`](super::Client::connect) is open.
    Connected(Handshake),
    /// The server sent a message.
    Message(Message),
    /// The connection moved from polling to WebSocket.
    Upgraded,
    /// The open session ended. [`ClientEvent::Reconnecting`] follows when the client will
    /// try again.
    Disconnected(CloseReason),
    /// A connection attempt failed. [`ClientEvent::Reconnecting`] follows when the client
    /// will try again.
    ConnectFailed {
        /// Why.
        error: ConnectError,
    },
    /// The client will make connection attempt `attempt` (1 for the first retry) after
    /// `delay`.
    Reconnecting {
        /// The retry's number, from 1.
        attempt: u32,
        /// How long the client waits before it.
        delay: Duration,
    },
    /// A new session is open after an earlier one was lost: a fresh session, with a new
    /// id; messages queued while disconnected follow.
    Reconnected(Handshake),
    /// The client gave up reconnecting after `attempts` failed retries
    /// ([`ReconnectConfig::max_attempts`](super::ReconnectConfig::max_attempts)).
    ReconnectFailed {
        /// How many retries failed.
        attempts: u32,
    },
    /// A message accepted by [`Client::send`](super::Client::send) could not be sent and
    /// was dropped: the connection ended for good before it went out
    /// ([`SendError::Closed`]), it did not fit the offline queue when the connection was
    /// lost ([`SendError::QueueFull`]), or it was queued while disconnected and the new
    /// session's server accepts less ([`SendError::TooLarge`]). The message is inside.
    SendFailed(SendError),
}

/// Why a connection attempt failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The server answered the handshake with an HTTP error. Engine.IO servers send a
    /// JSON body `{"code":N,"message":"..."}` (code 4 with status 403 when the
    /// application refused the connection); `code` and `message` hold it when present,
    /// `message` holds a plain-text body otherwise. Our servers add a `detail` saying
    /// what to change ("transport polling is disabled on this server"), kept in `detail`.
    #[error("the server refused the connection: HTTP {status}{}{}{}",
        code.map(|c| format!(", code {c}")).unwrap_or_default(),
        message.as_deref().map(|m| format!(": {m}")).unwrap_or_default(),
        detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Refused {
        /// The HTTP status.
        status: StatusCode,
        /// The protocol's error code from the JSON body.
        code: Option<i64>,
        /// The JSON body's `message`, or the plain-text body.
        message: Option<String>,
        /// The JSON body's `detail`: the server's explanation, when it gives one.
        detail: Option<String>,
    },
    /// The request or WebSocket connect failed (refused, reset, DNS, TLS...).
    #[error("transport error: {0}")]
    Transport(TransportError),
    /// The handshake's answer is larger than
    /// [`max_handshake_size`](super::ClientConfig::max_handshake_size): refused without
    /// reading it.
    #[error("handshake response of {size} bytes or more is over the limit of {limit} bytes")]
    ResponseTooLarge {
        /// The announced size, or the bytes read when the limit was passed.
        size: u64,
        /// The limit.
        limit: usize,
    },
    /// No handshake within [`request_timeout`](super::ClientConfig::request_timeout).
    #[error("no handshake within {0:?}")]
    Timeout(Duration),
    /// The server's answer was not a valid handshake.
    #[error("invalid handshake: {0}")]
    InvalidHandshake(ProtocolError),
}

impl ConnectError {
    /// The error for an HTTP error response.
    pub(crate) fn refused(response: &Response) -> ConnectError {
        let ErrorBody {
            code,
            message,
            detail,
        } = error_body(&response.body);
        ConnectError::Refused {
            status: response.status,
            code,
            message,
            detail,
        }
    }
}

/// What an HTTP error body says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ErrorBody {
    pub(crate) code: Option<i64>,
    pub(crate) message: Option<String>,
    pub(crate) detail: Option<String>,
}

/// Reads an error body: the protocol's JSON `{"code","message"}` (with our servers'
/// `detail`), or short plain text.
pub(crate) fn error_body(body: &[u8]) -> ErrorBody {
    if let Ok(serde_json::Value::Object(obj)) = serde_json::from_slice::<serde_json::Value>(body) {
        let text = |key: &str| {
            obj.get(key)
                .and_then(serde_json::Value::as_str)
                .map(|s| s.chars().take(500).collect::<String>())
        };
        return ErrorBody {
            code: obj.get("code").and_then(serde_json::Value::as_i64),
            message: text("message"),
            detail: text("detail"),
        };
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return ErrorBody::default();
    }
    let short: String = text.chars().take(200).collect();
    ErrorBody {
        message: Some(short),
        ..ErrorBody::default()
    }
}

/// Why a WebSocket connect failed, as a binding reports it to
/// [`Client::handle_ws_connect_failed`](super::Client::handle_ws_connect_failed).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WsConnectError {
    /// The server answered the upgrade request with an HTTP response instead of `101`
    /// (Engine.IO servers send their error there).
    Rejected(Response),
    /// Connecting failed before any HTTP answer (refused, reset, DNS, TLS...).
    Transport(TransportError),
}

impl WsConnectError {
    pub(crate) fn into_connect_error(self) -> ConnectError {
        match self {
            WsConnectError::Rejected(r) => ConnectError::refused(&r),
            WsConnectError::Transport(e) => ConnectError::Transport(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies() {
        assert_eq!(
            error_body(br#"{"code":1,"message":"Session ID unknown","detail":"x"}"#),
            ErrorBody {
                code: Some(1),
                message: Some("Session ID unknown".into()),
                detail: Some("x".into()),
            }
        );
        assert_eq!(
            error_body(b"Session ID unknown\r\n"),
            ErrorBody {
                message: Some("Session ID unknown".into()),
                ..ErrorBody::default()
            }
        );
        assert_eq!(error_body(b""), ErrorBody::default());
        assert_eq!(error_body(&[b'x'; 500]).message.unwrap().len(), 200);
        let e = ConnectError::Refused {
            status: StatusCode::FORBIDDEN,
            code: Some(4),
            message: Some("no".into()),
            detail: None,
        };
        assert_eq!(
            e.to_string(),
            "the server refused the connection: HTTP 403 Forbidden, code 4: no"
        );
        // The server's explanation is kept and shown.
        let e = ConnectError::refused(&Response {
            status: StatusCode::BAD_REQUEST,
            headers: http::HeaderMap::new(),
            body: bytes::Bytes::from_static(
                br#"{"code":0,"message":"Transport unknown","detail":"transport polling is disabled on this server"}"#,
            ),
        });
        assert_eq!(
            e.to_string(),
            "the server refused the connection: HTTP 400 Bad Request, code 0: Transport unknown \
             (transport polling is disabled on this server)"
        );
    }
}
