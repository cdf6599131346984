//! The client state machine: [`Client`], the mirror image of the server's
//! [`Session`](crate::server::Session).
//!
//! # Shape
//!
//! The client decides everything; its binding only performs what it is told and reports
//! back:
//!
//! - it asks for HTTP requests ([`ClientAction::HttpRequest`], with ids the client
//!   chooses) and takes their outcomes in [`Client::handle_response`];
//! - it asks for WebSockets ([`ClientAction::WsConnect`]) and takes their life in
//!   [`Client::handle_ws_connected`], [`Client::handle_ws_connect_failed`],
//!   [`Client::handle_ws_message`] and [`Client::handle_ws_closed`]; the binding pulls the
//!   application's messages with [`Client::poll_ws_send`] as fast as the socket takes
//!   them, so that the client's bounded queue is where a slow server pushes back;
//! - it tells the application what happened through [`ClientEvent`]s.
//!
//! It opens a session by long-polling (or directly by WebSocket), keeps exactly one GET
//! and at most one POST in flight, packs queued messages into POSTs under the server's
//! `maxPayload`, answers the server's pings and declares the server gone when no ping
//! comes within `pingInterval + pingTimeout`, probes and upgrades to WebSocket (falling
//! back to polling when that fails), keeps the cookies the server sets, and, when
//! [`ClientConfig::reconnect`] is set, reconnects with exponential backoff and jitter.
//!
//! It never reads the clock nor a random source: time is an argument of every input, and
//! randomness comes from the seed given to [`Client::new`].
//!
//! # Driving the client
//!
//! After every input (`connect`, `handle_*`, `send`, `close`), drain
//! [`Client::poll_action`] until it returns `None`; then, while the session's WebSocket
//! (if any) can take more, write what [`Client::poll_ws_send`] gives (and drain the
//! actions again if it returns `None` with actions pending). Then sleep until
//! [`Client::poll_timeout`] (or the next input) and call [`Client::handle_timeout`]. Time
//! never goes backwards between calls; calling `handle_timeout` early or twice does
//! nothing. The client has finished when [`Client::is_closed`] is true.
//!
//! Every limit is the client's ([`ClientConfig`]): the queue of unsent messages
//! (`max_queued_messages`, `max_queued_bytes`), the response bodies it reads (each
//! [`HttpRequest`] carries its `max_response_body`, which the binding enforces from the
//! `Content-Length` header on), and the WebSocket message and frame sizes
//! ([`ClientAction::WsConnect`] carries them).
//!
//! ```
//! use std::time::{Duration, Instant};
//! use bytes::Bytes;
//! use http::{HeaderMap, Method, StatusCode};
//! use engineio_proto::client::{Client, ClientAction, ClientConfig, ClientEvent};
//! use engineio_proto::{CloseReason, Response, Transport};
//!
//! # #[allow(clippy::disallowed_methods)]
//! let start = Instant::now(); // a binding reads its clock; tests use a virtual one
//! let mut config = ClientConfig::new("http://localhost:3000")?;
//! config.transports = vec![Transport::Polling]; // no upgrade in this example
//! let mut client = Client::new(config, start, 42)?;
//! client.connect(start);
//! client.send("hello")?; // queued until the session opens
//!
//! let reply = |body: &'static [u8]| Response {
//!     status: StatusCode::OK,
//!     headers: HeaderMap::new(),
//!     body: Bytes::from_static(body),
//! };
//! let mut posted = Vec::new();
//! let mut events = Vec::new();
//! let mut now = start;
//! loop {
//!     // Drain every action; a binding performs them (here: a pretend server).
//!     while let Some(action) = client.poll_action() {
//!         match action {
//!             ClientAction::HttpRequest { id, request } => {
//!                 let query = request.uri.query().unwrap_or("");
//!                 if !query.contains("sid=") {
//!                     // The handshake.
//!                     client.handle_response(now, id, Ok(reply(
//!                         br#"0{"sid":"abc","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#,
//!                     )));
//!                 } else if request.method == Method::POST {
//!                     posted.push(request.body);
//!                     client.handle_response(now, id, Ok(reply(b"ok")));
//!                 }
//!                 // A long-poll GET: this pretend server never answers it.
//!             }
//!             ClientAction::AbortRequest { .. } => { /* drop the request */ }
//!             ClientAction::WsConnect { .. }
//!             | ClientAction::WsSend { .. }
//!             | ClientAction::WsClose { .. }
//!             | ClientAction::WsDrop { .. } => { /* WebSocket work */ }
//!             ClientAction::Event(event) => events.push(event),
//!         }
//!     }
//!     if client.is_closed() {
//!         break;
//!     }
//!     match client.poll_timeout() {
//!         Some(deadline) => {
//!             now = deadline; // a binding sleeps until then (or until the next input)
//!             client.handle_timeout(now);
//!         }
//!         None => break,
//!     }
//! }
//! assert!(matches!(events[0], ClientEvent::Connected(_)));
//! assert_eq!(posted, ["4hello"]);
//! // The server never pinged: after pingInterval + pingTimeout it is declared gone.
//! assert_eq!(events[1], ClientEvent::Disconnected(CloseReason::PingTimeout));
//! assert_eq!(now - start, Duration::from_secs(25 + 20));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Reconnection
//!
//! With [`ClientConfig::reconnect`] set, a session lost unexpectedly (ping timeout,
//! transport closed or failed, parse error; not [`Client::close`] and not a close from the
//! server) and a failed connection attempt are followed by
//! [`ClientEvent::Reconnecting`], a wait, and a fresh handshake: a new session with
//! nothing carried over from the old one but the application's unsent messages (within
//! the [`OfflinePolicy`]). Messages whose POST was in flight when the connection broke are
//! not sent again (at most once delivery). The new session is reported as
//! [`ClientEvent::Reconnected`]; [`ClientEvent::ReconnectFailed`] when
//! [`ReconnectConfig::max_attempts`] retries failed.

mod action;
mod batch;
mod config;
mod cookie;
mod machine;
mod options;
mod outbox;
mod proxy;
mod rng;

pub use action::{
    ClientAction, ClientEvent, ConnectError, HttpError, HttpRequest, WsConnectError, WsLimits,
};
pub use config::{ClientConfig, ConfigError, OfflinePolicy, ReconnectConfig};
pub use machine::Client;
pub use proxy::{Proxy, ProxyUrl, no_proxy_matches};
