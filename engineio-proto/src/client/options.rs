//! `with_*` methods over every client option, so that a configuration reads as a list
//! (`ClientConfig` is `#[non_exhaustive]`: no struct literals outside this crate).

use std::time::Duration;

use http::{HeaderName, HeaderValue};

use super::{ClientConfig, OfflinePolicy, Proxy, ReconnectConfig};
use crate::{ProtocolVersion, Transport};

/// Every option, flat: each method sets one field and returns the configuration. The
/// names of the same options in engine.io-client and python-engineio are given with each.
///
/// ```
/// use std::time::Duration;
/// use engineio_proto::Transport;
/// use engineio_proto::client::{ClientConfig, ReconnectConfig};
///
/// let config = ClientConfig::new("http://127.0.0.1:3000")?
///     .with_transports([Transport::WebSocket])
///     .with_header(http::header::AUTHORIZATION, http::HeaderValue::from_static("Bearer x"))
///     .with_query("room", "7")
///     .with_request_timeout(Duration::from_secs(5))
///     .with_reconnect(ReconnectConfig::default());
/// assert_eq!(config.transports, [Transport::WebSocket]);
/// assert_eq!(config.query, [("room".to_owned(), "7".to_owned())]);
/// # Ok::<(), engineio_proto::client::ConfigError>(())
/// ```
impl ClientConfig {
    /// The Engine.IO path. engine.io-client and python-engineio: `path` / `engineio_path`.
    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// Adds a query parameter sent on every request. engine.io-client: `query`.
    pub fn with_query(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.query.push((name.into(), value.into()));
        self
    }

    /// Adds a header sent on every request. engine.io-client: `extraHeaders`;
    /// python-engineio: `headers`.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }

    /// The transports, in order (the first opens the session). engine.io-client and
    /// python-engineio: `transports`.
    pub fn with_transports(mut self, transports: impl IntoIterator<Item = Transport>) -> Self {
        self.transports = transports.into_iter().collect();
        self
    }

    /// Whether to upgrade from polling to WebSocket. engine.io-client: `upgrade`.
    pub fn with_upgrade(mut self, upgrade: bool) -> Self {
        self.upgrade = upgrade;
        self
    }

    /// The handshake's and each POST's timeout. engine.io-client: `requestTimeout`;
    /// python-engineio: `request_timeout`.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// How long an upgrade may take.
    pub fn with_upgrade_timeout(mut self, timeout: Duration) -> Self {
        self.upgrade_timeout = timeout;
        self
    }

    /// Whether requests carry a cache-busting parameter, and its name.
    /// engine.io-client: `timestampRequests`, `timestampParam`; python-engineio:
    /// `timestamp_requests`.
    pub fn with_timestamp_requests(mut self, on: bool, param: impl Into<String>) -> Self {
        self.timestamp_requests = on;
        self.timestamp_param = param.into();
        self
    }

    /// The most messages and bytes waiting to be sent.
    pub fn with_max_queued(mut self, messages: usize, bytes: usize) -> Self {
        self.max_queued_messages = messages;
        self.max_queued_bytes = bytes;
        self
    }

    /// The largest long-poll answer read.
    pub fn with_max_payload(mut self, bytes: usize) -> Self {
        self.max_payload = bytes;
        self
    }

    /// The largest handshake answer read.
    pub fn with_max_handshake_size(mut self, bytes: usize) -> Self {
        self.max_handshake_size = bytes;
        self
    }

    /// The largest WebSocket message and frame read.
    pub fn with_max_ws_message(mut self, message: usize, frame: usize) -> Self {
        self.max_ws_message_size = message;
        self.max_ws_frame_size = frame;
        self
    }

    /// Reconnection with backoff and jitter (socket.io-client's and python-socketio's
    /// default; their Engine.IO clients have none).
    pub fn with_reconnect(mut self, reconnect: ReconnectConfig) -> Self {
        self.reconnect = Some(reconnect);
        self
    }

    /// What `send` does while the connection is lost and being re-made.
    pub fn with_offline(mut self, offline: OfflinePolicy) -> Self {
        self.offline = offline;
        self
    }

    /// The Engine.IO revision spoken: [`ProtocolVersion::V4`] (the default) or
    /// [`ProtocolVersion::V3`] for servers of Socket.IO 2.x (engine.io 3.x, or later ones
    /// with `allowEIO3`). engine.io-client 3.x speaks v3 only; python-engineio 4 only v4.
    pub fn with_protocol_version(mut self, version: ProtocolVersion) -> Self {
        self.protocol_version = version;
        self
    }

    /// permessage-deflate (RFC 7692) offered on the client's WebSockets, with `settings`
    /// (`DeflateConfig::default()`: messages from 1024 bytes compressed at level 1, and
    /// neither side keeping a compression context, which the server must grant);
    /// `None`, the default, offers nothing. engine.io-client in Node: `perMessageDeflate`
    /// (on, threshold 1024); browsers always offer it; python-engineio: aiohttp's
    /// `compress=15` through `websocket_extra_options` (off).
    pub fn with_websocket_deflate(
        mut self,
        settings: Option<crate::websocket::DeflateConfig>,
    ) -> Self {
        self.websocket_deflate = settings;
        self
    }

    /// The HTTP proxy to go through ([`Proxy::None`] by default; [`Proxy::Environment`]
    /// reads `HTTP_PROXY`/`HTTPS_PROXY`/`NO_PROXY` when the client connects).
    /// engine.io-client in Node: an `agent`; python-engineio: `http_session` settings.
    pub fn with_proxy(mut self, proxy: Proxy) -> Self {
        self.proxy = proxy;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_and_proxy_methods_set_their_fields() {
        let c = ClientConfig::new("http://127.0.0.1:3000")
            .unwrap()
            .with_protocol_version(ProtocolVersion::V3)
            .with_proxy(Proxy::Environment)
            .with_websocket_deflate(Some(crate::websocket::DeflateConfig::default()));
        assert_eq!(c.protocol_version, ProtocolVersion::V3);
        assert!(matches!(c.proxy, Proxy::Environment));
        assert_eq!(
            c.websocket_deflate,
            Some(crate::websocket::DeflateConfig::default())
        );
    }
}
