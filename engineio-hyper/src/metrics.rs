//! Metrics through the [`metrics`](https://docs.rs/metrics) facade, with the `metrics`
//! feature (forwarded by `engineio-tokio` and `engineio-smol`).
//!
//! The server and the client count what an operator needs to see the usual production
//! problems: sessions by transport, handshakes and why they were refused, requests for
//! unknown sessions (sticky sessions that are not sticky), upgrades that fail, how
//! sessions end, messages and bytes, full send queues, the heartbeat's round trip. They go
//! to whatever recorder the application installed (`metrics-exporter-prometheus`,
//! StatsD, OpenTelemetry...); the names and what they mean are in
//! `docs/operating.md` and in the constants below.
//!
//! - **Install the recorder before creating the server or connecting a client.** The
//!   handles are registered once, when [`EngineIo`](crate::server::EngineIo) is created
//!   (and when [`Client::connect`](crate::client::Client::connect) starts), under the
//!   recorder in force then (the global one, or a `metrics::with_local_recorder` scope).
//!   Every label value is registered at that moment, so every series exists from the start
//!   at 0 (rates and absence alerts work before the first event).
//! - **Cheap when on**: the message path adds to plain integers in the session's own
//!   state (under the lock it already holds) and the driver adds them to the shared
//!   counters once per wake-up; everything else is one atomic operation on a handle.
//! - **Nothing when off** (the default): the `metrics` crate is not compiled in, the
//!   types below are empty and their methods do nothing, so no counter, atomic or
//!   allocation remains on any path.
//!
//! Several servers in one process add to the same series (the recorder keys them by name
//! and labels).
//!
//! # Conventions (for crates that add their own metrics, like the cluster's bus)
//!
//! Names start with `engineio_` (the client's with `engineio_client_`, the cluster's with
//! `engineio_cluster_`), counters end in `_total`, units are suffixes (`_seconds`,
//! `_bytes`), label values are the snake_case names of the enum variants below, with
//! `other` for a variant added later. Register every handle and label value when the
//! component is created, keep the counting behind a `metrics` feature that forwards
//! `engineio-hyper/metrics`, and document the metrics in the table of `docs/operating.md`.

use engineio_proto::client::ConnectError;
use engineio_proto::server::RequestError;
use engineio_proto::{CloseReason, UpgradeFailure};

// ------------------------------------------------------------------------ server names

/// Gauge, label `transport`: sessions open now, by the transport they use (a session
/// that upgrades moves from `polling` to `websocket`).
pub const SESSIONS_OPEN: &str = "engineio_sessions_open";
/// Counter, label `transport`: handshakes that opened a session.
pub const HANDSHAKES: &str = "engineio_handshakes_total";
/// Counter, label `reason` ([`refusal_label`]): handshakes refused, no session made
/// (origin, a bad request, the connect hook, shutdown...).
pub const HANDSHAKES_REJECTED: &str = "engineio_handshakes_rejected_total";
/// Counter, label `reason` ([`refusal_label`]): requests naming a session, refused before
/// reaching it (a bad method, origin, version...). Unknown sessions are
/// [`UNKNOWN_SID`].
pub const REQUESTS_REFUSED: &str = "engineio_requests_refused_total";
/// Counter, label `transport`: requests naming a session this server does not have
/// (answered 400 "Session ID unknown"): behind a load balancer, the sign that sessions
/// are not sticky.
pub const UNKNOWN_SID: &str = "engineio_unknown_sid_total";
/// Counter: upgrades from polling to WebSocket that completed.
pub const UPGRADES: &str = "engineio_upgrades_total";
/// Counter, label `reason` ([`upgrade_failure_label`]): upgrades that failed (the session
/// went on over polling).
pub const UPGRADES_FAILED: &str = "engineio_upgrades_failed_total";
/// Counter, label `reason` ([`close_reason_label`]): sessions that ended, by why.
pub const SESSIONS_CLOSED: &str = "engineio_sessions_closed_total";
/// Counter: messages received from clients.
pub const MESSAGES_RECEIVED: &str = "engineio_messages_received_total";
/// Counter: payload bytes of the messages received (text or binary data, no framing).
pub const RECEIVED_BYTES: &str = "engineio_received_bytes_total";
/// Counter: messages the application queued for clients (`send` accepted them).
pub const MESSAGES_SENT: &str = "engineio_messages_sent_total";
/// Counter: payload bytes of the messages queued for clients.
pub const SENT_BYTES: &str = "engineio_sent_bytes_total";
/// Counter: sends refused because the session's queue was full
/// ([`SendError::QueueFull`](engineio_proto::SendError::QueueFull)): clients that do not
/// read.
pub const SEND_QUEUE_FULL: &str = "engineio_send_queue_full_total";
/// Histogram, seconds, label `transport`: the heartbeat's round trip, from the instant a
/// ping was due to the instant its pong arrived.
pub const PING_RTT: &str = "engineio_ping_rtt_seconds";

// ------------------------------------------------------------------------ cluster names

/// Counter: requests for a session of another node of the cluster, sent on to it and
/// answered (see `EngineIo::set_router`), and handshakes handed to a live node while this
/// one shuts down.
pub const CLUSTER_FORWARDS: &str = "engineio_cluster_forwards_total";
/// Counter: forwards that failed (the owner could not be reached or did not answer): the
/// client was told its session is unknown, and opens a new one.
pub const CLUSTER_FORWARD_FAILURES: &str = "engineio_cluster_forward_failures_total";

// ------------------------------------------------------------------------ client names

/// Gauge, label `transport`: client connections with an open session now.
pub const CLIENT_SESSIONS_OPEN: &str = "engineio_client_sessions_open";
/// Counter: first sessions opened by `Client::connect`.
pub const CLIENT_CONNECTS: &str = "engineio_client_connects_total";
/// Counter: sessions opened again after one was lost (reconnection).
pub const CLIENT_RECONNECTS: &str = "engineio_client_reconnects_total";
/// Counter, label `reason` ([`connect_error_label`]): connection attempts that failed.
pub const CLIENT_CONNECT_FAILURES: &str = "engineio_client_connect_failures_total";
/// Counter: retries scheduled after a failed attempt or a lost session.
pub const CLIENT_RECONNECT_ATTEMPTS: &str = "engineio_client_reconnect_attempts_total";
/// Counter: clients that gave up reconnecting (`max_attempts` retries failed).
pub const CLIENT_GAVE_UP: &str = "engineio_client_reconnects_given_up_total";
/// Counter: upgrades from polling to WebSocket that completed.
pub const CLIENT_UPGRADES: &str = "engineio_client_upgrades_total";
/// Counter, label `reason` ([`close_reason_label`]): sessions that ended, by why.
pub const CLIENT_DISCONNECTS: &str = "engineio_client_disconnects_total";
/// Counter: messages received from servers.
pub const CLIENT_MESSAGES_RECEIVED: &str = "engineio_client_messages_received_total";
/// Counter: payload bytes of the messages received.
pub const CLIENT_RECEIVED_BYTES: &str = "engineio_client_received_bytes_total";
/// Counter: messages the application queued (`send` accepted them).
pub const CLIENT_MESSAGES_SENT: &str = "engineio_client_messages_sent_total";
/// Counter: payload bytes of the messages queued.
pub const CLIENT_SENT_BYTES: &str = "engineio_client_sent_bytes_total";
/// Counter: sends refused because the queue was full (the server or the network does
/// not take messages as fast as they are sent).
pub const CLIENT_SEND_QUEUE_FULL: &str = "engineio_client_send_queue_full_total";
/// Counter: messages `send` accepted that could not be delivered and were handed back
/// (`ClientEvent::SendFailed`).
pub const CLIENT_SEND_FAILED: &str = "engineio_client_send_failed_total";

// ------------------------------------------------------------------------ label values

/// Every refusal reason: the values of the `reason` label of [`HANDSHAKES_REJECTED`]
/// (all but `method_not_allowed`) and of [`REQUESTS_REFUSED`] (all but
/// `bad_handshake_method`, `shutting_down` and `connect_hook`, which only handshakes get).
pub const REFUSAL_REASONS: [&str; 14] = [
    "unknown_transport",
    "transport_disabled",
    "origin_not_allowed",
    "jsonp",
    "bad_handshake_method",
    "method_not_allowed",
    "websocket_without_upgrade",
    "upgrade_on_polling",
    "bad_websocket_handshake",
    "cannot_upgrade",
    "unsupported_version",
    "shutting_down",
    "connect_hook",
    "other",
];

/// The index of `connect_hook` in [`REFUSAL_REASONS`].
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
const CONNECT_HOOK: usize = 12;

fn refusal_index(e: &RequestError) -> usize {
    match e {
        RequestError::UnknownTransport(_) => 0,
        RequestError::TransportDisabled(_) => 1,
        RequestError::OriginNotAllowed(_) => 2,
        RequestError::JsonpNotSupported => 3,
        RequestError::BadHandshakeMethod(_) => 4,
        RequestError::MethodNotAllowed { .. } => 5,
        RequestError::WebSocketWithoutUpgrade => 6,
        RequestError::UpgradeOnPolling => 7,
        RequestError::BadWebSocketHandshake(_) => 8,
        RequestError::CannotUpgrade => 9,
        RequestError::UnsupportedProtocolVersion(_) => 10,
        RequestError::ShuttingDown => 11,
        RequestError::Rejected { .. } => CONNECT_HOOK,
        _ => 13,
    }
}

/// The `reason` label of a refusal: `origin_not_allowed`, `websocket_without_upgrade`
/// (a proxy that drops the `Upgrade` header), `connect_hook` (the application's
/// `on_connect` refused)... one of [`REFUSAL_REASONS`].
pub fn refusal_label(error: &RequestError) -> &'static str {
    REFUSAL_REASONS[refusal_index(error)]
}

/// Every value of the `reason` label of [`SESSIONS_CLOSED`] and [`CLIENT_DISCONNECTS`].
pub const CLOSE_REASONS: [&str; 10] = [
    "server_close",
    "client_close",
    "ping_timeout",
    "transport_close",
    "transport_error",
    "parse_error",
    "payload_too_large",
    "write_timeout",
    "server_shutdown",
    "other",
];

fn close_index(reason: &CloseReason) -> usize {
    match reason {
        CloseReason::ServerClose => 0,
        CloseReason::ClientClose => 1,
        CloseReason::PingTimeout => 2,
        CloseReason::TransportClose => 3,
        CloseReason::TransportError(_) => 4,
        CloseReason::ParseError(_) => 5,
        CloseReason::PayloadTooLarge { .. } => 6,
        CloseReason::WriteTimeout => 7,
        CloseReason::ServerShutdown => 8,
        _ => 9,
    }
}

/// The `reason` label of a session's end: the [`CloseReason`] variant in snake_case, one
/// of [`CLOSE_REASONS`].
pub fn close_reason_label(reason: &CloseReason) -> &'static str {
    CLOSE_REASONS[close_index(reason)]
}

/// Every value of the `reason` label of [`UPGRADES_FAILED`].
pub const UPGRADE_FAILURES: [&str; 6] = [
    "timeout",
    "websocket_closed",
    "unexpected_packet",
    "too_large",
    "session_closed",
    "other",
];

fn upgrade_failure_index(failure: &UpgradeFailure) -> usize {
    match failure {
        UpgradeFailure::Timeout => 0,
        UpgradeFailure::WebSocketClosed => 1,
        UpgradeFailure::UnexpectedPacket => 2,
        UpgradeFailure::TooLarge => 3,
        UpgradeFailure::SessionClosed => 4,
        _ => 5,
    }
}

/// The `reason` label of a failed upgrade: the [`UpgradeFailure`] variant in snake_case,
/// one of [`UPGRADE_FAILURES`].
pub fn upgrade_failure_label(failure: &UpgradeFailure) -> &'static str {
    UPGRADE_FAILURES[upgrade_failure_index(failure)]
}

/// Every value of the `reason` label of [`CLIENT_CONNECT_FAILURES`].
pub const CONNECT_FAILURES: [&str; 6] = [
    "refused",
    "transport",
    "response_too_large",
    "timeout",
    "invalid_handshake",
    "other",
];

fn connect_failure_index(error: &ConnectError) -> usize {
    match error {
        ConnectError::Refused { .. } => 0,
        ConnectError::Transport(_) => 1,
        ConnectError::ResponseTooLarge { .. } => 2,
        ConnectError::Timeout(_) => 3,
        ConnectError::InvalidHandshake(_) => 4,
        _ => 5,
    }
}

/// The `reason` label of a failed connection attempt: the [`ConnectError`] variant in
/// snake_case, one of [`CONNECT_FAILURES`].
pub fn connect_error_label(error: &ConnectError) -> &'static str {
    CONNECT_FAILURES[connect_failure_index(error)]
}

#[cfg(feature = "metrics")]
pub(crate) use on::*;

#[cfg(not(feature = "metrics"))]
pub(crate) use off::*;

/// The feature on: handles registered once, counted into.
#[cfg(feature = "metrics")]
mod on {
    use std::sync::Arc;

    use engineio_proto::client::{Client as Machine, ClientEvent};
    use engineio_proto::server::{Refused, RequestError, Session, SessionRequestKind};
    use engineio_proto::{CloseReason, Message, SendError, Transport, UpgradeFailure};
    use metrics::{Counter, Gauge, Histogram, Unit};

    use super::*;

    const TRANSPORTS: [Transport; 2] = [Transport::Polling, Transport::WebSocket];

    fn transport_index(t: Transport) -> usize {
        match t {
            Transport::Polling => 0,
            Transport::WebSocket => 1,
        }
    }

    /// One counter per refusal reason, the reasons that do not apply to this metric
    /// sharing `other`'s (so that nothing is lost, and no series stays at 0 for ever).
    fn refusal_counters(name: &'static str, not_applicable: &[&str]) -> [Counter; 14] {
        let other = metrics::counter!(name, "reason" => "other");
        REFUSAL_REASONS.map(|r| match r {
            "other" => other.clone(),
            r if not_applicable.contains(&r) => other.clone(),
            r => metrics::counter!(name, "reason" => r),
        })
    }

    fn counters<const N: usize>(
        name: &'static str,
        label: &'static str,
        values: [&'static str; N],
    ) -> [Counter; N] {
        values.map(|v| metrics::counter!(name, label => v))
    }

    fn per_transport_counters(name: &'static str) -> [Counter; 2] {
        TRANSPORTS.map(|t| metrics::counter!(name, "transport" => t.as_str()))
    }

    fn per_transport_gauges(name: &'static str) -> [Gauge; 2] {
        TRANSPORTS.map(|t| metrics::gauge!(name, "transport" => t.as_str()))
    }

    fn describe_server() {
        use metrics::{describe_counter, describe_gauge, describe_histogram};
        describe_gauge!(SESSIONS_OPEN, "Engine.IO sessions open, by transport");
        describe_counter!(HANDSHAKES, "Engine.IO handshakes that opened a session");
        describe_counter!(
            HANDSHAKES_REJECTED,
            "Engine.IO handshakes refused (no session made), by reason"
        );
        describe_counter!(
            REQUESTS_REFUSED,
            "Engine.IO requests naming a session refused before reaching it, by reason"
        );
        describe_counter!(
            UNKNOWN_SID,
            "Engine.IO requests naming a session this server does not have (sticky sessions?)"
        );
        describe_counter!(UPGRADES, "Engine.IO upgrades from polling to WebSocket");
        describe_counter!(UPGRADES_FAILED, "Engine.IO upgrades that failed, by reason");
        describe_counter!(SESSIONS_CLOSED, "Engine.IO sessions that ended, by reason");
        describe_counter!(
            MESSAGES_RECEIVED,
            "Engine.IO messages received from clients"
        );
        describe_counter!(
            RECEIVED_BYTES,
            Unit::Bytes,
            "Payload bytes of the Engine.IO messages received"
        );
        describe_counter!(MESSAGES_SENT, "Engine.IO messages queued for clients");
        describe_counter!(
            SENT_BYTES,
            Unit::Bytes,
            "Payload bytes of the Engine.IO messages queued for clients"
        );
        describe_counter!(
            SEND_QUEUE_FULL,
            "Engine.IO sends refused because the session's queue was full"
        );
        describe_counter!(
            CLUSTER_FORWARDS,
            "Engine.IO requests forwarded to the cluster node that owns their session"
        );
        describe_counter!(
            CLUSTER_FORWARD_FAILURES,
            "Engine.IO requests whose forwarding to another cluster node failed"
        );
        describe_histogram!(
            PING_RTT,
            Unit::Seconds,
            "Engine.IO heartbeat round trip: from a ping due to its pong, by transport"
        );
    }

    struct ServerHandles {
        sessions_open: [Gauge; 2],
        handshakes: [Counter; 2],
        handshakes_rejected: [Counter; 14],
        requests_refused: [Counter; 14],
        unknown_sid: [Counter; 2],
        upgrades: Counter,
        upgrades_failed: [Counter; 6],
        closed: [Counter; 10],
        messages_received: Counter,
        received_bytes: Counter,
        messages_sent: Counter,
        sent_bytes: Counter,
        send_queue_full: Counter,
        ping_rtt: [Histogram; 2],
        forwards: Counter,
        forward_failures: Counter,
    }

    /// A server's handles, shared by its sessions.
    #[derive(Clone)]
    pub(crate) struct ServerMetrics(Arc<ServerHandles>);

    impl ServerMetrics {
        pub(crate) fn new() -> Self {
            describe_server();
            ServerMetrics(Arc::new(ServerHandles {
                sessions_open: per_transport_gauges(SESSIONS_OPEN),
                handshakes: per_transport_counters(HANDSHAKES),
                handshakes_rejected: refusal_counters(HANDSHAKES_REJECTED, &["method_not_allowed"]),
                requests_refused: refusal_counters(
                    REQUESTS_REFUSED,
                    &["bad_handshake_method", "shutting_down", "connect_hook"],
                ),
                unknown_sid: per_transport_counters(UNKNOWN_SID),
                upgrades: metrics::counter!(UPGRADES),
                upgrades_failed: counters(UPGRADES_FAILED, "reason", UPGRADE_FAILURES),
                closed: counters(SESSIONS_CLOSED, "reason", CLOSE_REASONS),
                messages_received: metrics::counter!(MESSAGES_RECEIVED),
                received_bytes: metrics::counter!(RECEIVED_BYTES),
                messages_sent: metrics::counter!(MESSAGES_SENT),
                sent_bytes: metrics::counter!(SENT_BYTES),
                send_queue_full: metrics::counter!(SEND_QUEUE_FULL),
                forwards: metrics::counter!(CLUSTER_FORWARDS),
                forward_failures: metrics::counter!(CLUSTER_FORWARD_FAILURES),
                ping_rtt: TRANSPORTS
                    .map(|t| metrics::histogram!(PING_RTT, "transport" => t.as_str())),
            }))
        }

        /// A handshake opened a session.
        pub(crate) fn handshake(&self, transport: Transport) {
            self.0.handshakes[transport_index(transport)].increment(1);
        }

        /// A handshake the protocol accepted was refused after all (the application's
        /// connect hook, or shutdown while it decided).
        pub(crate) fn handshake_rejected(&self, error: &RequestError) {
            self.0.handshakes_rejected[refusal_index(error)].increment(1);
        }

        /// The application's connect hook refused a handshake.
        pub(crate) fn handshake_rejected_by_handler(&self) {
            self.0.handshakes_rejected[CONNECT_HOOK].increment(1);
        }

        /// The protocol refused a request before any session.
        pub(crate) fn refused(&self, refused: &Refused) {
            let error = refused.error();
            if let RequestError::UnknownSid(_) = error {
                let t = refused.transport().unwrap_or(Transport::Polling);
                self.0.unknown_sid[transport_index(t)].increment(1);
            } else if refused.is_handshake() {
                self.0.handshakes_rejected[refusal_index(error)].increment(1);
            } else {
                self.0.requests_refused[refusal_index(error)].increment(1);
            }
        }

        /// `send` refused a message (counted at once: a refusal does not wake the
        /// driver).
        pub(crate) fn send_refused(&self, error: &SendError) {
            if let SendError::QueueFull { .. } = error {
                self.0.send_queue_full.increment(1);
            }
        }

        /// A request was forwarded to another node and answered.
        pub(crate) fn forwarded(&self) {
            self.0.forwards.increment(1);
        }

        /// Forwarding a request to another node failed.
        pub(crate) fn forward_failed(&self) {
            self.0.forward_failures.increment(1);
        }

        /// A request named a session this server does not have.
        pub(crate) fn unknown_sid(&self, kind: SessionRequestKind) {
            let t = match kind {
                SessionRequestKind::WebSocket => Transport::WebSocket,
                _ => Transport::Polling,
            };
            self.0.unknown_sid[transport_index(t)].increment(1);
        }
    }

    /// What the application queued on a session, counted under the session's lock and
    /// handed to the shared counters by its driver (which a queued message wakes).
    #[derive(Debug, Default)]
    pub(crate) struct SendTally {
        messages: u64,
        bytes: u64,
    }

    impl SendTally {
        /// `session.send(message)`, counted.
        pub(crate) fn send(
            &mut self,
            session: &mut Session,
            message: Message,
        ) -> Result<(), SendError> {
            let len = message.len();
            let result = session.send(message);
            if result.is_ok() {
                self.messages += 1;
                self.bytes += len as u64;
            }
            result
        }

        /// `session.send_json(value)`, counted.
        pub(crate) fn send_json<V: serde::Serialize + ?Sized>(
            &mut self,
            session: &mut Session,
            value: &V,
        ) -> Result<(), SendError> {
            let text = serde_json::to_string(value).map_err(|e| SendError::Json(e.to_string()))?;
            self.send(session, Message::Text(text.into()))
        }
    }

    /// One session's share, kept by its driver: the transport it counts in the gauge,
    /// and what it received and sent since the last flush.
    pub(crate) struct SessionMetrics {
        metrics: ServerMetrics,
        open: Option<Transport>,
        received: u64,
        received_bytes: u64,
        sent: SendTally,
    }

    impl SessionMetrics {
        /// A session opened on `transport`: it counts in the gauge until it ends (or its
        /// driver is dropped).
        pub(crate) fn open(metrics: &ServerMetrics, transport: Transport) -> Self {
            metrics.0.sessions_open[transport_index(transport)].increment(1.0);
            SessionMetrics {
                metrics: metrics.clone(),
                open: Some(transport),
                received: 0,
                received_bytes: 0,
                sent: SendTally::default(),
            }
        }

        /// A message from the client.
        pub(crate) fn received(&mut self, message: &Message) {
            self.received += 1;
            self.received_bytes += message.len() as u64;
        }

        /// Takes what the application queued and the heartbeat's round trip (under the
        /// session's lock).
        pub(crate) fn take(&mut self, sent: &mut SendTally, session: &mut Session) {
            let taken = std::mem::take(sent);
            self.sent.messages += taken.messages;
            self.sent.bytes += taken.bytes;
            if let Some(rtt) = session.take_ping_rtt() {
                let t = self.open.unwrap_or_else(|| session.transport());
                self.metrics.0.ping_rtt[transport_index(t)].record(rtt.as_secs_f64());
            }
        }

        pub(crate) fn upgraded(&mut self) {
            let m = &self.metrics.0;
            m.upgrades.increment(1);
            if self.open == Some(Transport::Polling) {
                m.sessions_open[transport_index(Transport::Polling)].decrement(1.0);
                m.sessions_open[transport_index(Transport::WebSocket)].increment(1.0);
                self.open = Some(Transport::WebSocket);
            }
        }

        pub(crate) fn upgrade_failed(&self, failure: &UpgradeFailure) {
            self.metrics.0.upgrades_failed[upgrade_failure_index(failure)].increment(1);
        }

        pub(crate) fn closed(&mut self, reason: &CloseReason) {
            self.metrics.0.closed[close_index(reason)].increment(1);
            self.leave_gauge();
        }

        fn leave_gauge(&mut self) {
            if let Some(t) = self.open.take() {
                self.metrics.0.sessions_open[transport_index(t)].decrement(1.0);
            }
        }

        /// Adds what was counted since the last flush to the shared counters.
        pub(crate) fn flush(&mut self) {
            let m = &self.metrics.0;
            if self.received > 0 {
                m.messages_received
                    .increment(std::mem::take(&mut self.received));
                m.received_bytes
                    .increment(std::mem::take(&mut self.received_bytes));
            }
            let sent = std::mem::take(&mut self.sent);
            if sent.messages > 0 {
                m.messages_sent.increment(sent.messages);
                m.sent_bytes.increment(sent.bytes);
            }
        }
    }

    impl Drop for SessionMetrics {
        fn drop(&mut self) {
            self.flush();
            // A driver dropped without its session's end (its runtime shut down).
            self.leave_gauge();
        }
    }

    // -------------------------------------------------------------------- client

    fn describe_client() {
        use metrics::{describe_counter, describe_gauge};
        describe_gauge!(
            CLIENT_SESSIONS_OPEN,
            "Engine.IO client connections with an open session, by transport"
        );
        describe_counter!(CLIENT_CONNECTS, "Engine.IO client first sessions opened");
        describe_counter!(
            CLIENT_RECONNECTS,
            "Engine.IO client sessions opened again after one was lost"
        );
        describe_counter!(
            CLIENT_CONNECT_FAILURES,
            "Engine.IO client connection attempts that failed, by reason"
        );
        describe_counter!(
            CLIENT_RECONNECT_ATTEMPTS,
            "Engine.IO client reconnection attempts scheduled"
        );
        describe_counter!(
            CLIENT_GAVE_UP,
            "Engine.IO clients that gave up reconnecting"
        );
        describe_counter!(CLIENT_UPGRADES, "Engine.IO client upgrades to WebSocket");
        describe_counter!(
            CLIENT_DISCONNECTS,
            "Engine.IO client sessions that ended, by reason"
        );
        describe_counter!(
            CLIENT_MESSAGES_RECEIVED,
            "Engine.IO client messages received from servers"
        );
        describe_counter!(
            CLIENT_RECEIVED_BYTES,
            Unit::Bytes,
            "Payload bytes of the Engine.IO client messages received"
        );
        describe_counter!(CLIENT_MESSAGES_SENT, "Engine.IO client messages queued");
        describe_counter!(
            CLIENT_SENT_BYTES,
            Unit::Bytes,
            "Payload bytes of the Engine.IO client messages queued"
        );
        describe_counter!(
            CLIENT_SEND_QUEUE_FULL,
            "Engine.IO client sends refused because the queue was full"
        );
        describe_counter!(
            CLIENT_SEND_FAILED,
            "Engine.IO client messages accepted but not delivered (handed back)"
        );
    }

    struct ClientHandles {
        sessions_open: [Gauge; 2],
        connects: Counter,
        reconnects: Counter,
        connect_failures: [Counter; 6],
        reconnect_attempts: Counter,
        gave_up: Counter,
        upgrades: Counter,
        disconnects: [Counter; 10],
        messages_received: Counter,
        received_bytes: Counter,
        messages_sent: Counter,
        sent_bytes: Counter,
        send_queue_full: Counter,
        send_failed: Counter,
    }

    /// A client's handles, shared by its handle and its driver.
    #[derive(Clone)]
    pub(crate) struct ClientMetrics(Arc<ClientHandles>);

    impl ClientMetrics {
        pub(crate) fn new() -> Self {
            describe_client();
            ClientMetrics(Arc::new(ClientHandles {
                sessions_open: per_transport_gauges(CLIENT_SESSIONS_OPEN),
                connects: metrics::counter!(CLIENT_CONNECTS),
                reconnects: metrics::counter!(CLIENT_RECONNECTS),
                connect_failures: counters(CLIENT_CONNECT_FAILURES, "reason", CONNECT_FAILURES),
                reconnect_attempts: metrics::counter!(CLIENT_RECONNECT_ATTEMPTS),
                gave_up: metrics::counter!(CLIENT_GAVE_UP),
                upgrades: metrics::counter!(CLIENT_UPGRADES),
                disconnects: counters(CLIENT_DISCONNECTS, "reason", CLOSE_REASONS),
                messages_received: metrics::counter!(CLIENT_MESSAGES_RECEIVED),
                received_bytes: metrics::counter!(CLIENT_RECEIVED_BYTES),
                messages_sent: metrics::counter!(CLIENT_MESSAGES_SENT),
                sent_bytes: metrics::counter!(CLIENT_SENT_BYTES),
                send_queue_full: metrics::counter!(CLIENT_SEND_QUEUE_FULL),
                send_failed: metrics::counter!(CLIENT_SEND_FAILED),
            }))
        }

        fn count(&self, len: usize, result: &Result<(), SendError>) {
            match result {
                Ok(()) => {
                    self.0.messages_sent.increment(1);
                    self.0.sent_bytes.increment(len as u64);
                }
                Err(SendError::QueueFull { .. }) => self.0.send_queue_full.increment(1),
                Err(_) => {}
            }
        }

        /// `machine.send(message)`, counted.
        pub(crate) fn send(
            &self,
            machine: &mut Machine,
            message: Message,
        ) -> Result<(), SendError> {
            let len = message.len();
            let result = machine.send(message);
            self.count(len, &result);
            result
        }

        /// `machine.send_json(value)`, counted.
        pub(crate) fn send_json<V: serde::Serialize + ?Sized>(
            &self,
            machine: &mut Machine,
            value: &V,
        ) -> Result<(), SendError> {
            let text = serde_json::to_string(value).map_err(|e| SendError::Json(e.to_string()))?;
            self.send(machine, Message::Text(text.into()))
        }
    }

    /// One client's share, kept by its driver: the transport it counts in the gauge,
    /// and the messages received since the last flush.
    pub(crate) struct ConnectionMetrics {
        metrics: ClientMetrics,
        open: Option<Transport>,
        received: u64,
        received_bytes: u64,
    }

    impl ConnectionMetrics {
        pub(crate) fn new(metrics: &ClientMetrics) -> Self {
            ConnectionMetrics {
                metrics: metrics.clone(),
                open: None,
                received: 0,
                received_bytes: 0,
            }
        }

        /// An event the machine reported; `transport` is the machine's current one.
        pub(crate) fn event(
            &mut self,
            event: &ClientEvent,
            transport: impl FnOnce() -> Option<Transport>,
        ) {
            let m = &self.metrics.0;
            match event {
                ClientEvent::Message(message) => {
                    self.received += 1;
                    self.received_bytes += message.len() as u64;
                }
                ClientEvent::Connected(_) | ClientEvent::Reconnected(_) => {
                    if matches!(event, ClientEvent::Connected(_)) {
                        m.connects.increment(1);
                    } else {
                        m.reconnects.increment(1);
                    }
                    leave_client_gauge(m, &mut self.open);
                    let t = transport().unwrap_or(Transport::Polling);
                    m.sessions_open[transport_index(t)].increment(1.0);
                    self.open = Some(t);
                }
                ClientEvent::Upgraded => {
                    m.upgrades.increment(1);
                    if self.open == Some(Transport::Polling) {
                        m.sessions_open[transport_index(Transport::Polling)].decrement(1.0);
                        m.sessions_open[transport_index(Transport::WebSocket)].increment(1.0);
                        self.open = Some(Transport::WebSocket);
                    }
                }
                ClientEvent::Disconnected(reason) => {
                    m.disconnects[close_index(reason)].increment(1);
                    leave_client_gauge(m, &mut self.open);
                }
                ClientEvent::ConnectFailed { error } => {
                    m.connect_failures[connect_failure_index(error)].increment(1);
                }
                ClientEvent::Reconnecting { .. } => m.reconnect_attempts.increment(1),
                ClientEvent::ReconnectFailed { .. } => m.gave_up.increment(1),
                ClientEvent::SendFailed(_) => m.send_failed.increment(1),
                _ => {}
            }
        }

        /// Adds the messages received since the last flush to the shared counters.
        pub(crate) fn flush(&mut self) {
            if self.received > 0 {
                let m = &self.metrics.0;
                m.messages_received
                    .increment(std::mem::take(&mut self.received));
                m.received_bytes
                    .increment(std::mem::take(&mut self.received_bytes));
            }
        }
    }

    /// The connection no longer counts in the gauge.
    fn leave_client_gauge(m: &ClientHandles, open: &mut Option<Transport>) {
        if let Some(t) = open.take() {
            m.sessions_open[transport_index(t)].decrement(1.0);
        }
    }

    impl Drop for ConnectionMetrics {
        fn drop(&mut self) {
            self.flush();
            leave_client_gauge(&self.metrics.0, &mut self.open);
        }
    }
}

/// The feature off: empty types whose methods do nothing (or only what the caller would
/// have done), so that the call sites compile to what they were without metrics.
#[cfg(not(feature = "metrics"))]
mod off {
    use engineio_proto::client::{Client as Machine, ClientEvent};
    use engineio_proto::server::{Refused, RequestError, Session, SessionRequestKind};
    use engineio_proto::{CloseReason, Message, SendError, Transport, UpgradeFailure};

    #[derive(Clone, Default)]
    pub(crate) struct ServerMetrics;

    impl ServerMetrics {
        #[inline(always)]
        pub(crate) fn new() -> Self {
            ServerMetrics
        }
        #[inline(always)]
        pub(crate) fn handshake(&self, _: Transport) {}
        #[inline(always)]
        pub(crate) fn handshake_rejected(&self, _: &RequestError) {}
        #[inline(always)]
        pub(crate) fn handshake_rejected_by_handler(&self) {}
        #[inline(always)]
        pub(crate) fn refused(&self, _: &Refused) {}
        #[inline(always)]
        pub(crate) fn send_refused(&self, _: &SendError) {}
        #[inline(always)]
        pub(crate) fn forwarded(&self) {}
        #[inline(always)]
        pub(crate) fn forward_failed(&self) {}
        #[inline(always)]
        pub(crate) fn unknown_sid(&self, _: SessionRequestKind) {}
    }

    #[derive(Debug, Default)]
    pub(crate) struct SendTally;

    impl SendTally {
        #[inline(always)]
        pub(crate) fn send(
            &mut self,
            session: &mut Session,
            message: Message,
        ) -> Result<(), SendError> {
            session.send(message)
        }
        #[inline(always)]
        pub(crate) fn send_json<V: serde::Serialize + ?Sized>(
            &mut self,
            session: &mut Session,
            value: &V,
        ) -> Result<(), SendError> {
            session.send_json(value)
        }
    }

    pub(crate) struct SessionMetrics;

    impl SessionMetrics {
        #[inline(always)]
        pub(crate) fn open(_: &ServerMetrics, _: Transport) -> Self {
            SessionMetrics
        }
        #[inline(always)]
        pub(crate) fn received(&mut self, _: &Message) {}
        #[inline(always)]
        pub(crate) fn take(&mut self, _: &mut SendTally, _: &mut Session) {}
        #[inline(always)]
        pub(crate) fn upgraded(&mut self) {}
        #[inline(always)]
        pub(crate) fn upgrade_failed(&self, _: &UpgradeFailure) {}
        #[inline(always)]
        pub(crate) fn closed(&mut self, _: &CloseReason) {}
        #[inline(always)]
        pub(crate) fn flush(&mut self) {}
    }

    #[derive(Clone)]
    pub(crate) struct ClientMetrics;

    impl ClientMetrics {
        #[inline(always)]
        pub(crate) fn new() -> Self {
            ClientMetrics
        }
        #[inline(always)]
        pub(crate) fn send(
            &self,
            machine: &mut Machine,
            message: Message,
        ) -> Result<(), SendError> {
            machine.send(message)
        }
        #[inline(always)]
        pub(crate) fn send_json<V: serde::Serialize + ?Sized>(
            &self,
            machine: &mut Machine,
            value: &V,
        ) -> Result<(), SendError> {
            machine.send_json(value)
        }
    }

    pub(crate) struct ConnectionMetrics;

    impl ConnectionMetrics {
        #[inline(always)]
        pub(crate) fn new(_: &ClientMetrics) -> Self {
            ConnectionMetrics
        }
        #[inline(always)]
        pub(crate) fn event(&mut self, _: &ClientEvent, _: impl FnOnce() -> Option<Transport>) {}
        #[inline(always)]
        pub(crate) fn flush(&mut self) {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_the_variants_in_snake_case() {
        assert_eq!(
            close_reason_label(&CloseReason::PingTimeout),
            "ping_timeout"
        );
        assert_eq!(
            close_reason_label(&CloseReason::WriteTimeout),
            "write_timeout"
        );
        assert_eq!(
            upgrade_failure_label(&UpgradeFailure::WebSocketClosed),
            "websocket_closed"
        );
        assert_eq!(
            refusal_label(&RequestError::OriginNotAllowed("x".into())),
            "origin_not_allowed"
        );
        assert_eq!(
            refusal_label(&RequestError::Rejected {
                status: http::StatusCode::FORBIDDEN,
                message: String::new()
            }),
            "connect_hook"
        );
        assert_eq!(refusal_label(&RequestError::ShuttingDown), "shutting_down");
        assert_eq!(
            connect_error_label(&ConnectError::Timeout(std::time::Duration::ZERO)),
            "timeout"
        );
        // Every value is a distinct label.
        for values in [
            &REFUSAL_REASONS[..],
            &CLOSE_REASONS,
            &UPGRADE_FAILURES,
            &CONNECT_FAILURES,
        ] {
            let mut sorted = values.to_vec();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), values.len());
        }
    }
}
