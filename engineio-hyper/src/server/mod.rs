//! The Engine.IO server over hyper: [`EngineIo`], its [`Handler`] and [`Socket`] handles,
//! and the tower [`EngineIoService`] / [`EngineIoLayer`].

mod conn;
mod driver;
mod forward;
mod http_glue;
mod options;
mod service;
mod socket;
mod table;
mod upgrade;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use engineio_proto::server::{ConfigError, Server, SidGenerator};
use engineio_proto::{Message, NodeId, SendError, Sid};

pub use crate::arrival::ArrivalStamp;
pub use conn::{ArrivedAt, TimedIo, UpgradeNotice, serve_connection, serve_connection_with};
pub use engineio_proto::server::{
    AllowedOrigins, CookieConfig, CorsConfig, Rejection, SameSite, ServerConfig, Transports,
};
pub use engineio_proto::static_files::StaticFiles;
pub use forward::{FORWARDED_HEADER, SessionRouter};
pub use http_glue::{PeerAddr, ResponseBody};
pub use service::{EngineIoLayer, EngineIoService, NotFound};
pub use socket::{ConnectRequest, Handler, Socket};
pub use upgrade::ExternalUpgrade;

use crate::runtime::Runtime;
use table::SessionTable;

/// Everything a server binding can be configured with: the protocol options of
/// [`ServerConfig`] plus what only exists at the HTTP level.
///
/// ```
/// use engineio_hyper::server::Config;
/// use engineio_hyper::proto::static_files::StaticFiles;
///
/// let mut config = Config::default();
/// config.engine.ping_interval = std::time::Duration::from_secs(10);
/// config.static_files = StaticFiles::new().file("/", "demo/index.html");
/// config.compression_threshold = 4096;
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// The protocol options (path, heartbeat, limits, CORS, cookie...).
    pub engine: ServerConfig,
    /// Files served outside the Engine.IO path (python-engineio's `static_files`).
    /// Requests that match no rule go to the inner service (or get 404 standalone).
    pub static_files: StaticFiles,
    /// Whether polling responses are compressed (gzip or deflate, as the client's
    /// `Accept-Encoding` allows). Default true, as python-engineio's `http_compression`.
    pub http_compression: bool,
    /// The smallest polling response body that is compressed, in bytes. Default 1024, as
    /// python-engineio's `compression_threshold` and Node's `httpCompression.threshold`.
    pub compression_threshold: usize,
    /// The WebSocket read buffer of each idle connection, in bytes. Default 1024 (at
    /// least 256): it grows for a frame larger than it and goes back to this size after
    /// it, so it bounds the memory of idle connections without slowing large messages.
    pub websocket_read_buffer: usize,
    /// How long [`EngineIo::shutdown`] waits for sessions to close. Default 5 s.
    pub shutdown_timeout: Duration,
    /// The listen backlog of the socket the bindings' `listen` binds: how many connections
    /// the kernel completes and queues before the server accepts them. Default 1024 (the
    /// standard library and mio ask for 128, which a burst of connects overflows: the
    /// dropped SYNs stall those clients for a second or more). Linux caps it at
    /// `net.core.somaxconn` (4096 since 5.4). Node's `server.listen` asks for 511; python
    /// servers: aiohttp 128, uvicorn 2048, eventlet 50.
    pub listen_backlog: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            engine: ServerConfig::default(),
            static_files: StaticFiles::new(),
            http_compression: true,
            compression_threshold: 1024,
            websocket_read_buffer: 1024,
            shutdown_timeout: Duration::from_secs(5),
            listen_backlog: 1024,
        }
    }
}

impl From<ServerConfig> for Config {
    fn from(engine: ServerConfig) -> Self {
        Config {
            engine,
            ..Config::default()
        }
    }
}

/// Session ids from the operating system's CSPRNG (`getrandom`): 120 bits each.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsSidGenerator;

impl SidGenerator for OsSidGenerator {
    fn generate(&self) -> Sid {
        let mut bytes = [0u8; 15];
        if getrandom::fill(&mut bytes).is_err() {
            // The OS random source failing is not recoverable safely: ids would be
            // guessable. Refuse to continue rather than hand out weak ids.
            panic!("the operating system's random source failed; cannot create session ids");
        }
        Sid::from_entropy(bytes)
    }
}

/// Session ids that name this node (`<node>.<120 random bits>`, see
/// [`Sid::routable`]), from the OS CSPRNG: what every node of a cluster uses, so that any
/// node and the load balancer can tell a session's owner from its sid alone.
///
/// ```
/// use engineio_hyper::proto::NodeId;
/// use engineio_hyper::proto::server::SidGenerator;
/// use engineio_hyper::server::NodeSidGenerator;
///
/// let sids = NodeSidGenerator::new("web-1".parse::<NodeId>()?);
/// assert_eq!(sids.generate().node(), Some("web-1"));
/// # Ok::<(), engineio_hyper::proto::InvalidNodeId>(())
/// ```
#[derive(Debug, Clone)]
pub struct NodeSidGenerator {
    node: NodeId,
}

impl NodeSidGenerator {
    /// Ids for node `node`.
    pub fn new(node: NodeId) -> Self {
        NodeSidGenerator { node }
    }

    /// The node named in the ids.
    pub fn node(&self) -> &NodeId {
        &self.node
    }
}

impl SidGenerator for NodeSidGenerator {
    fn generate(&self) -> Sid {
        let mut bytes = [0u8; 15];
        if getrandom::fill(&mut bytes).is_err() {
            panic!("the operating system's random source failed; cannot create session ids");
        }
        Sid::routable(&self.node, bytes)
    }
}

pub(crate) struct Shared<H: Handler, R: Runtime> {
    pub(crate) server: Server,
    pub(crate) handler: H,
    pub(crate) runtime: R,
    pub(crate) sessions: SessionTable<H::Data>,
    pub(crate) config: Config,
    pub(crate) ws_config: crate::ws::WsConfig,
    pub(crate) next_id: AtomicU64,
    /// Sessions that have not ended (the table also holds ended ones until they are
    /// released).
    pub(crate) live: AtomicUsize,
    pub(crate) forwarder: forward::Forwarder,
    /// The metrics' handles (nothing without the `metrics` feature).
    pub(crate) metrics: crate::metrics::ServerMetrics,
}

impl<H: Handler, R: Runtime> Shared<H, R> {
    pub(crate) fn session_started(&self, socket: Socket<H::Data>) {
        self.live.fetch_add(1, Ordering::SeqCst);
        self.sessions.insert(self.runtime.now(), socket);
    }

    pub(crate) fn session_ended(&self) {
        self.live.fetch_sub(1, Ordering::SeqCst);
    }
}

/// An Engine.IO server: the protocol state machines driven on runtime `R`, answering
/// through the application's [`Handler`].
///
/// Mount it as a tower service ([`EngineIo::layer`], [`EngineIo::service`]) or serve it
/// alone with the binding's `serve` function. Cloning is cheap and shares the server.
pub struct EngineIo<H: Handler, R: Runtime> {
    pub(crate) shared: Arc<Shared<H, R>>,
}

impl<H: Handler, R: Runtime> Clone for EngineIo<H, R> {
    fn clone(&self) -> Self {
        EngineIo {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<H: Handler, R: Runtime> std::fmt::Debug for EngineIo<H, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineIo")
            .field("sessions", &self.count())
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl<H: Handler, R: Runtime> EngineIo<H, R> {
    /// A server with session ids from the OS CSPRNG.
    ///
    /// With the `metrics` feature, the server's metrics are registered now, under the
    /// recorder in force (see [`crate::metrics`]): install yours before.
    pub fn new(runtime: R, handler: H, config: impl Into<Config>) -> Result<Self, ConfigError> {
        Self::with_sid_generator(runtime, handler, config, OsSidGenerator)
    }

    /// A server with a custom session-id generator.
    pub fn with_sid_generator(
        runtime: R,
        handler: H,
        config: impl Into<Config>,
        sids: impl SidGenerator,
    ) -> Result<Self, ConfigError> {
        let mut config: Config = config.into();
        config.engine.websocket_deflate =
            crate::ws::supported_deflate(config.engine.websocket_deflate);
        let server = Server::new(config.engine.clone(), sids)?;
        // Let the protocol see messages just over the limit (to answer them with 1009 and a
        // typed reason); anything larger is cut off by the framing library itself.
        let limit = config.engine.max_payload.saturating_add(1);
        // Frames queue in the write buffer and go out with the driver's one flush per
        // wake-up (a write buffer of 0 would cost one write system call per message).
        let mut ws_config = crate::ws::WsConfig::new(limit);
        ws_config.read_buffer = config.websocket_read_buffer.max(256);
        ws_config.deflate_config = config.engine.websocket_deflate;
        Ok(EngineIo {
            shared: Arc::new(Shared {
                server,
                handler,
                runtime,
                sessions: SessionTable::default(),
                config,
                ws_config,
                next_id: AtomicU64::new(1),
                live: AtomicUsize::new(0),
                forwarder: forward::Forwarder::default(),
                metrics: crate::metrics::ServerMetrics::new(),
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// The application's handler.
    pub fn handler(&self) -> &H {
        &self.shared.handler
    }

    /// Every live session.
    pub fn sockets(&self) -> Vec<Socket<H::Data>> {
        let mut all = self.shared.sessions.all();
        all.retain(|s| !s.is_closed());
        all
    }

    /// The live session with this id.
    pub fn socket(&self, sid: Sid) -> Option<Socket<H::Data>> {
        self.shared.sessions.get(sid).filter(|s| !s.is_closed())
    }

    /// How many sessions are live.
    pub fn count(&self) -> usize {
        self.shared.live.load(Ordering::SeqCst)
    }

    /// Sends to one session. An unknown or closed session is
    /// [`SendError::Closed`], with the message handed back.
    pub fn send(&self, sid: Sid, message: impl Into<Message>) -> Result<(), SendError> {
        match self.socket(sid) {
            Some(socket) => socket.send(message),
            None => Err(SendError::Closed(message.into())),
        }
    }

    /// Closes one session; false if there was no such session.
    pub fn close(&self, sid: Sid) -> bool {
        match self.socket(sid) {
            Some(socket) => {
                socket.close();
                true
            }
            None => false,
        }
    }

    /// Refuses new sessions, closes every session (reason `ServerShutdown`, WebSocket
    /// close code 1001) and waits until they have ended or `shutdown_timeout` passed.
    /// Returns how many sessions were still live at the deadline.
    pub async fn shutdown(&self) -> usize {
        self.shared.server.begin_shutdown();
        for socket in self.sockets() {
            socket.shutdown();
        }
        let deadline = self.shared.runtime.now() + self.shared.config.shutdown_timeout;
        let step = Duration::from_millis(10);
        while self.count() > 0 && self.shared.runtime.now() < deadline {
            let next = self.shared.runtime.now() + step;
            crate::runtime::sleep_until(&self.shared.runtime, next).await;
        }
        self.count()
    }

    /// Forwards requests for sessions this node does not have to the node `router`
    /// names (see [`SessionRouter`]; the cluster binding sets it). Returns false, and
    /// changes nothing, when a router was already set.
    pub fn set_router(&self, router: Arc<dyn SessionRouter>) -> bool {
        self.shared.forwarder.set_router(router)
    }

    /// Requests forwarded to their session's owner so far, and forwards that failed (the
    /// owner could not be reached; the client was told the session is unknown).
    pub fn forwarded(&self) -> (u64, u64) {
        let f = &self.shared.forwarder;
        (
            f.forwarded.load(Ordering::Relaxed),
            f.failed.load(Ordering::Relaxed),
        )
    }

    /// Whether [`shutdown`](Self::shutdown) was called.
    pub fn is_shutting_down(&self) -> bool {
        self.shared.server.is_shutting_down()
    }

    /// Whether a request path is the Engine.IO path (with or without its trailing slash).
    pub fn matches_path(&self, path: &str) -> bool {
        self.shared.server.matches_path(path)
    }

    /// How many bytes of a POST body to read at most before calling
    /// [`handle`](Self::handle) with a body that is already in memory (what an
    /// integration with another HTTP stack does): one more than `max_payload`, enough
    /// for the protocol to answer 413.
    pub fn body_read_limit(&self) -> usize {
        self.shared.server.body_read_limit()
    }
}
