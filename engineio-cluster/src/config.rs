//! The cluster's settings.

use std::time::Duration;

/// How a node takes part in the cluster. Every node of one cluster should use the same
/// values.
///
/// | setting | default | Socket.IO's cluster adapter | `@socket.io/cluster-engine` |
/// |---|---|---|---|
/// | [`heartbeat_interval`](Self::heartbeat_interval) | 5 s | `heartbeatInterval: 5000` | – |
/// | [`node_timeout`](Self::node_timeout) | 10 s | `heartbeatTimeout: 10000` | – |
/// | [`request_timeout`](Self::request_timeout) | 2 s | `requestsTimeout: 5000` | `responseTimeout: 1000` |
/// | [`max_pending`](Self::max_pending) | 10,000 | – | – |
/// | [`connect_timeout`](Self::connect_timeout) | 5 s | (the Redis client's) | – |
/// | [`reconnect_delay`](Self::reconnect_delay) / [`reconnect_max_delay`](Self::reconnect_max_delay) | 100 ms / 5 s | (the Redis client's) | – |
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClusterConfig {
    /// The prefix of the bus channels (`<prefix>:all`, `<prefix>:node:<id>`), so that
    /// several clusters can share one Redis. Default `engineio`.
    pub channel_prefix: String,
    /// How often a node says it is alive. Default 5 s.
    pub heartbeat_interval: Duration,
    /// A node not heard from for this long is dropped from the membership: operations aimed
    /// at its sessions then fail at once with
    /// [`ClusterError::UnknownNode`](crate::ClusterError::UnknownNode) and forwarding to it
    /// stops. Must be longer than `heartbeat_interval` (two or three of them). Default 10 s.
    pub node_timeout: Duration,
    /// How long a node waits for another's answer before the operation fails with
    /// [`ClusterError::Timeout`](crate::ClusterError::Timeout). Default 2 s.
    pub request_timeout: Duration,
    /// The most operations waiting for answers at once; more fail with
    /// [`ClusterError::TooManyPending`](crate::ClusterError::TooManyPending). Default 10,000.
    pub max_pending: usize,
    /// How long connecting to the bus may take before the attempt is dropped and retried.
    /// Default 5 s.
    pub connect_timeout: Duration,
    /// The first delay before reconnecting to a bus that dropped (doubled each failed
    /// attempt, with ±25% jitter). Default 100 ms.
    pub reconnect_delay: Duration,
    /// The longest delay between two reconnection attempts. Default 5 s.
    pub reconnect_max_delay: Duration,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            channel_prefix: "engineio".into(),
            heartbeat_interval: Duration::from_secs(5),
            node_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(2),
            max_pending: 10_000,
            connect_timeout: Duration::from_secs(5),
            reconnect_delay: Duration::from_millis(100),
            reconnect_max_delay: Duration::from_secs(5),
        }
    }
}

/// A [`ClusterConfig`] that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterConfigError {
    /// A duration that must be positive is zero.
    #[error("{0} must be greater than zero")]
    Zero(&'static str),
    /// `node_timeout` is not longer than `heartbeat_interval`: every node would be
    /// dropped between two heartbeats.
    #[error(
        "node_timeout ({node_timeout:?}) must be longer than heartbeat_interval ({heartbeat_interval:?}); two or three intervals is usual"
    )]
    TimeoutNotAboveInterval {
        /// The heartbeat interval.
        heartbeat_interval: Duration,
        /// The node timeout.
        node_timeout: Duration,
    },
    /// The channel prefix is empty or holds whitespace.
    #[error("channel_prefix {0:?} must be non-empty, without whitespace")]
    ChannelPrefix(String),
    /// `max_pending` is zero.
    #[error("max_pending must be at least 1")]
    MaxPending,
}

impl ClusterConfig {
    pub(crate) fn validate(&self) -> Result<(), ClusterConfigError> {
        for (name, d) in [
            ("heartbeat_interval", self.heartbeat_interval),
            ("node_timeout", self.node_timeout),
            ("request_timeout", self.request_timeout),
            ("connect_timeout", self.connect_timeout),
            ("reconnect_delay", self.reconnect_delay),
            ("reconnect_max_delay", self.reconnect_max_delay),
        ] {
            if d.is_zero() {
                return Err(ClusterConfigError::Zero(name));
            }
        }
        if self.node_timeout <= self.heartbeat_interval {
            return Err(ClusterConfigError::TimeoutNotAboveInterval {
                heartbeat_interval: self.heartbeat_interval,
                node_timeout: self.node_timeout,
            });
        }
        if self.channel_prefix.is_empty() || self.channel_prefix.contains(char::is_whitespace) {
            return Err(ClusterConfigError::ChannelPrefix(
                self.channel_prefix.clone(),
            ));
        }
        if self.max_pending == 0 {
            return Err(ClusterConfigError::MaxPending);
        }
        Ok(())
    }
}
