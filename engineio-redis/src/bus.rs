//! The bus trait: what the cluster needs from a publish/subscribe system, and the Redis
//! implementation.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream;

/// A bus connection failed. The cluster reconnects by itself; the text is for logs and
/// [`ClusterEvent::BusDown`](engineio_cluster::ClusterEvent::BusDown).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BusError(pub String);

/// A message received on a subscribed channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusMessage {
    /// The channel.
    pub channel: String,
    /// The payload.
    pub payload: Bytes,
}

/// A publish/subscribe system the cluster's nodes talk over (Redis here; NATS or
/// PostgreSQL's LISTEN/NOTIFY would implement the same three operations).
///
/// It is only IO: every decision (when to reconnect, what a timeout is, what was lost)
/// is the cluster state machine's ([`engineio_cluster::Cluster`]).
pub trait Bus: Send + Sync + 'static {
    /// Publishes batches of messages, in order.
    type Publisher: BusPublisher;
    /// The messages of the subscribed channels; it ends (or yields an error) when the
    /// connection is lost.
    type Subscription: Stream<Item = Result<BusMessage, BusError>> + Send + Unpin + 'static;

    /// Opens a connection subscribed to `channels` and one to publish on.
    fn connect(
        &self,
        channels: Vec<String>,
    ) -> impl Future<Output = Result<(Self::Publisher, Self::Subscription), BusError>> + Send + 'static;
}

/// The publishing side of a bus connection.
pub trait BusPublisher: Send + Sized + 'static {
    /// Publishes `batch` in order (pipelined where the bus allows), and hands the
    /// publisher back.
    fn publish(
        self,
        batch: Vec<(String, Bytes)>,
    ) -> impl Future<Output = (Self, Result<(), BusError>)> + Send + 'static;
}

/// Redis pub/sub as the bus: one multiplexed connection to publish (a batch is one
/// pipeline, one round trip), one connection subscribed to the node's channels.
///
/// Pub/sub delivers at most once: what is published while a subscriber is disconnected
/// never reaches it. The cluster numbers its messages to tell when that happened (see
/// [`ClusterEvent::MessagesLost`](engineio_cluster::ClusterEvent::MessagesLost)).
///
/// ```
/// let bus = engineio_redis::RedisBus::new("redis://127.0.0.1:6379/")?;
/// # Ok::<(), engineio_redis::BusError>(())
/// ```
#[derive(Debug, Clone)]
pub struct RedisBus {
    client: redis::Client,
    response_timeout: Duration,
}

impl RedisBus {
    /// A bus on the Redis server at `url` (`redis://host:port/db`, `redis+unix:///path`;
    /// `rediss://` needs the redis crate's TLS features). Nothing connects yet.
    pub fn new(url: &str) -> Result<RedisBus, BusError> {
        let client = redis::Client::open(url)
            .map_err(|e| BusError(format!("invalid Redis URL {url:?}: {e}")))?;
        Ok(RedisBus {
            client,
            response_timeout: Duration::from_secs(2),
        })
    }

    /// How long a publish may wait for Redis's answer before the connection counts as
    /// lost. Default 2 s.
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }
}

/// [`RedisBus`]'s publisher.
pub struct RedisPublisher(redis::aio::MultiplexedConnection);

impl std::fmt::Debug for RedisPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisPublisher").finish_non_exhaustive()
    }
}

/// [`RedisBus`]'s subscription.
pub struct RedisSubscription(redis::aio::PubSubStream);

impl std::fmt::Debug for RedisSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSubscription").finish_non_exhaustive()
    }
}

impl Stream for RedisSubscription {
    type Item = Result<BusMessage, BusError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.0).poll_next(cx).map(|m| {
            m.map(|m| {
                Ok(BusMessage {
                    channel: m.get_channel_name().to_owned(),
                    payload: Bytes::copy_from_slice(m.get_payload_bytes()),
                })
            })
        })
    }
}

fn redis_error(what: &str, e: redis::RedisError) -> BusError {
    BusError(format!("{what}: {e}"))
}

impl Bus for RedisBus {
    type Publisher = RedisPublisher;
    type Subscription = RedisSubscription;

    fn connect(
        &self,
        channels: Vec<String>,
    ) -> impl Future<Output = Result<(RedisPublisher, RedisSubscription), BusError>> + Send + 'static
    {
        let client = self.client.clone();
        let timeout = self.response_timeout;
        async move {
            let config = redis::AsyncConnectionConfig::new()
                .set_connection_timeout(Some(timeout))
                .set_response_timeout(Some(timeout));
            let publisher = client
                .get_multiplexed_async_connection_with_config(&config)
                .await
                .map_err(|e| redis_error("connecting to Redis", e))?;
            let mut pubsub = client
                .get_async_pubsub()
                .await
                .map_err(|e| redis_error("connecting to Redis for pub/sub", e))?;
            for channel in &channels {
                pubsub
                    .subscribe(channel)
                    .await
                    .map_err(|e| redis_error("subscribing", e))?;
            }
            Ok((
                RedisPublisher(publisher),
                RedisSubscription(pubsub.into_on_message()),
            ))
        }
    }
}

impl BusPublisher for RedisPublisher {
    #[allow(clippy::manual_async_fn)] // the trait's future must be Send + 'static
    fn publish(
        mut self,
        batch: Vec<(String, Bytes)>,
    ) -> impl Future<Output = (Self, Result<(), BusError>)> + Send + 'static {
        async move {
            let mut pipe = redis::pipe();
            for (channel, payload) in &batch {
                pipe.publish(channel, payload.as_ref()).ignore();
            }
            let result = pipe
                .query_async::<()>(&mut self.0)
                .await
                .map_err(|e| redis_error("publishing", e));
            (self, result)
        }
    }
}
