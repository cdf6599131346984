//! One flat set of `with_*` methods over every server option, so that a configuration
//! reads as a list (`Config` and its parts are `#[non_exhaustive]`, which forbids struct
//! literals outside their crates).

use std::time::Duration;

use engineio_proto::Transport;
use engineio_proto::server::{AllowedOrigins, CookieConfig, Transports};
use engineio_proto::static_files::StaticFiles;
use engineio_proto::websocket::DeflateConfig;

use super::Config;

/// Every option, flat: each method sets one field of [`Config`] (or of its
/// [`engine`](Config::engine) part) and returns the configuration. The names of the
/// same options in python-engineio and Node's `engine.io` are given with each method, and
/// in the [configuration reference](https://github.com/engineio-rs/engineio-rs/blob/main/docs/configuration.md).
///
/// ```
/// use std::time::Duration;
/// use engineio_hyper::server::Config;
/// use engineio_hyper::proto::Transport;
/// use engineio_hyper::proto::server::{AllowedOrigins, CookieConfig};
/// use engineio_hyper::proto::static_files::StaticFiles;
///
/// let config = Config::default()
///     .with_ping_interval(Duration::from_secs(10))
///     .with_ping_timeout(Duration::from_secs(5))
///     .with_max_payload(100_000)
///     .with_transports([Transport::WebSocket])
///     .with_cors_allowed_origins(AllowedOrigins::list(["https://example.com"]))
///     .with_cookie(CookieConfig::named("io"))
///     .with_static_files(StaticFiles::new().file("/", "www/index.html"));
/// assert_eq!(config.engine.ping_interval, Duration::from_secs(10));
/// assert!(!config.engine.transports.polling);
/// ```
impl Config {
    /// The URL path Engine.IO answers on, with or without its trailing slash. Default
    /// `/engine.io/`. python-engineio: `engineio_path`; Node: `path` (+ `addTrailingSlash`).
    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        self.engine.path = path.into();
        self
    }

    /// Time between two pings. Default 25 s. python-engineio: `ping_interval` (seconds);
    /// Node: `pingInterval` (ms).
    pub fn with_ping_interval(mut self, interval: Duration) -> Self {
        self.engine.ping_interval = interval;
        self
    }

    /// How long a ping waits for its pong. Default 20 s. python-engineio: `ping_timeout`;
    /// Node: `pingTimeout`.
    pub fn with_ping_timeout(mut self, timeout: Duration) -> Self {
        self.engine.ping_timeout = timeout;
        self
    }

    /// How long an upgrade to WebSocket may take. Default 10 s. Node: `upgradeTimeout`;
    /// python-engineio has none.
    pub fn with_upgrade_timeout(mut self, timeout: Duration) -> Self {
        self.engine.upgrade_timeout = timeout;
        self
    }

    /// How long a server close over polling waits for a GET to carry it. Default 30 s.
    /// Node: the polling transport's `closeTimeout`; python-engineio has none.
    pub fn with_close_timeout(mut self, timeout: Duration) -> Self {
        self.engine.close_timeout = timeout;
        self
    }

    /// How long a peer may leave what the server writes unread. Default 5 s. Neither
    /// peer has it (a peer that never reads holds its socket there).
    pub fn with_write_timeout(mut self, timeout: Duration) -> Self {
        self.engine.write_timeout = timeout;
        self
    }

    /// How long a GET sent together with a client's close still gets its noop. Default
    /// 100 ms. Neither peer has it.
    pub fn with_client_close_grace(mut self, grace: Duration) -> Self {
        self.engine.client_close_grace = grace;
        self
    }

    /// How long a request's head may take to arrive; a started head that does not gets
    /// `408`, an idle connection is closed without an answer. Default 30 s. Node:
    /// `http.Server` `headersTimeout` (60 s); python-engineio has none of its own.
    pub fn with_head_timeout(mut self, timeout: Duration) -> Self {
        self.engine.head_timeout = timeout;
        self
    }

    /// The largest request head (request line and headers) accepted, in bytes; larger
    /// gets `431`. Default 16 KiB, at least 8192. Node: `maxHeaderSize` (16 KiB).
    pub fn with_max_head_size(mut self, bytes: usize) -> Self {
        self.engine.max_head_size = bytes;
        self
    }

    /// Whether Engine.IO v3 clients (socket.io-client 1.x/2.x, engine.io-client up to 3)
    /// are served beside v4 ones. Default false. Node: `allowEIO3`; python-engineio 4
    /// serves v4 only.
    pub fn with_allow_eio3(mut self, allow: bool) -> Self {
        self.engine.allow_eio3 = allow;
        self
    }

    /// permessage-deflate (RFC 7692) on the WebSockets of clients that offer it, with
    /// `settings` (`DeflateConfig::default()`: messages from 1024 bytes compressed at
    /// level 1, no compression context kept between messages); `None` turns it off, the
    /// default. Node: `perMessageDeflate` (off since engine.io 4); python-engineio: its
    /// WebSocket server decides (uvicorn and aiohttp accept it). See
    /// [`DeflateConfig`] for what it costs.
    pub fn with_websocket_deflate(mut self, settings: Option<DeflateConfig>) -> Self {
        self.engine.websocket_deflate = settings;
        self
    }

    /// The largest POST body and WebSocket message accepted, in bytes, advertised as
    /// `maxPayload`. Default 1,000,000. python-engineio: `max_http_buffer_size`; Node:
    /// `maxHttpBufferSize`.
    pub fn with_max_payload(mut self, bytes: usize) -> Self {
        self.engine.max_payload = bytes;
        self
    }

    /// The largest number of packets in one POST. Default unlimited (python-engineio
    /// refuses more than 16; Node has no limit).
    pub fn with_max_packets_per_payload(mut self, packets: usize) -> Self {
        self.engine.max_packets_per_payload = packets;
        self
    }

    /// The largest number of packets waiting to be sent to one client; `send` refuses
    /// more. Default 1024. Both peers buffer without bound.
    pub fn with_max_buffered_packets(mut self, packets: usize) -> Self {
        self.engine.max_buffered_packets = packets;
        self
    }

    /// The transports clients may use. Default both. python-engineio and Node:
    /// `transports`.
    pub fn with_transports(mut self, transports: impl IntoIterator<Item = Transport>) -> Self {
        let mut enabled = Transports {
            polling: false,
            websocket: false,
        };
        for t in transports {
            match t {
                Transport::Polling => enabled.polling = true,
                Transport::WebSocket => enabled.websocket = true,
            }
        }
        self.engine.transports = enabled;
        self
    }

    /// Whether polling sessions may upgrade to WebSocket. Default true. python-engineio:
    /// `allow_upgrades`; Node: `allowUpgrades`.
    pub fn with_allow_upgrades(mut self, allow: bool) -> Self {
        self.engine.allow_upgrades = allow;
        self
    }

    /// Which origins may connect. Default [`AllowedOrigins::SameOrigin`].
    /// python-engineio: `cors_allowed_origins`; Node: `cors.origin`.
    pub fn with_cors_allowed_origins(mut self, origins: impl Into<AllowedOrigins>) -> Self {
        self.engine.cors.origins = origins.into();
        self
    }

    /// Whether browsers may send credentials. Default true. python-engineio:
    /// `cors_credentials`; Node: `cors.credentials`.
    pub fn with_cors_credentials(mut self, credentials: bool) -> Self {
        self.engine.cors.credentials = credentials;
        self
    }

    /// The sid cookie for sticky load balancers. Default none. python-engineio and
    /// Node: `cookie`.
    pub fn with_cookie(mut self, cookie: CookieConfig) -> Self {
        self.engine.cookie = Some(cookie);
        self
    }

    /// Whether `X-Forwarded-Proto`/`-Host` count in the same-origin check. Default false
    /// (python-engineio always believes them; Node does not check origins).
    pub fn with_trust_forwarded_headers(mut self, trust: bool) -> Self {
        self.engine.trust_forwarded_headers = trust;
        self
    }

    /// Files served outside the Engine.IO path. Default none. python-engineio:
    /// `static_files`; Node has none.
    pub fn with_static_files(mut self, files: StaticFiles) -> Self {
        self.static_files = files;
        self
    }

    /// Whether polling answers are compressed. Default true. python-engineio:
    /// `http_compression`; Node: `httpCompression`.
    pub fn with_http_compression(mut self, compress: bool) -> Self {
        self.http_compression = compress;
        self
    }

    /// The smallest polling answer compressed, in bytes. Default 1024. python-engineio:
    /// `compression_threshold`; Node: `httpCompression.threshold`.
    pub fn with_compression_threshold(mut self, bytes: usize) -> Self {
        self.compression_threshold = bytes;
        self
    }

    /// Each WebSocket's read buffer, in bytes. Default 1024.
    pub fn with_websocket_read_buffer(mut self, bytes: usize) -> Self {
        self.websocket_read_buffer = bytes;
        self
    }

    /// How long `shutdown` waits for sessions to close. Default 5 s.
    pub fn with_shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// The listen backlog of the listeners the bindings bind (`bind`, `listen`). Default
    /// 1024 (Linux caps it at `net.core.somaxconn`). Node: `server.listen`'s `backlog`
    /// (511); uvicorn: `--backlog` (2048).
    pub fn with_listen_backlog(mut self, connections: u32) -> Self {
        self.listen_backlog = connections;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_sets_its_field() {
        let mut deflate = DeflateConfig::default();
        deflate.threshold = 16;
        let c = Config::default()
            .with_path("/socket/")
            .with_ping_interval(Duration::from_secs(1))
            .with_ping_timeout(Duration::from_secs(2))
            .with_upgrade_timeout(Duration::from_secs(3))
            .with_close_timeout(Duration::from_secs(4))
            .with_write_timeout(Duration::from_secs(5))
            .with_client_close_grace(Duration::from_secs(6))
            .with_max_payload(7)
            .with_max_packets_per_payload(8)
            .with_max_buffered_packets(9)
            .with_transports([Transport::Polling])
            .with_allow_upgrades(false)
            .with_cors_allowed_origins("*")
            .with_cors_credentials(false)
            .with_cookie(CookieConfig::named("sticky"))
            .with_trust_forwarded_headers(true)
            .with_static_files(StaticFiles::new().file("/", "x.html"))
            .with_http_compression(false)
            .with_compression_threshold(10)
            .with_websocket_read_buffer(11)
            .with_shutdown_timeout(Duration::from_secs(12))
            .with_head_timeout(Duration::from_secs(13))
            .with_max_head_size(14_000)
            .with_allow_eio3(true)
            .with_listen_backlog(15)
            .with_websocket_deflate(Some(deflate));
        let e = &c.engine;
        assert_eq!(e.path, "/socket/");
        assert_eq!(
            [
                e.ping_interval,
                e.ping_timeout,
                e.upgrade_timeout,
                e.close_timeout,
                e.write_timeout,
                e.client_close_grace,
                c.shutdown_timeout
            ],
            [1, 2, 3, 4, 5, 6, 12].map(Duration::from_secs)
        );
        assert_eq!(
            [
                e.max_payload,
                e.max_packets_per_payload,
                e.max_buffered_packets,
                c.compression_threshold,
                c.websocket_read_buffer
            ],
            [7, 8, 9, 10, 11]
        );
        assert_eq!(
            e.transports,
            Transports {
                polling: true,
                websocket: false
            }
        );
        assert!(!e.allow_upgrades && !e.cors.credentials && !c.http_compression);
        assert!(matches!(e.cors.origins, AllowedOrigins::Any));
        assert_eq!(e.cookie.as_ref().map(|c| c.name.as_str()), Some("sticky"));
        assert!(e.trust_forwarded_headers);
        assert!(!c.static_files.is_empty());
        assert_eq!(e.head_timeout, Duration::from_secs(13));
        assert_eq!(e.max_head_size, 14_000);
        assert!(e.allow_eio3);
        assert_eq!(c.listen_backlog, 15);
        assert_eq!(e.websocket_deflate.map(|d| d.threshold), Some(16));
    }
}
