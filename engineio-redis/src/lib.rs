//! # engineio-redis
//!
//! Engine.IO servers on several nodes (processes, machines) that act as one, over Redis,
//! behind any load balancer. On tokio (`engineio-tokio`) and smol (`engineio-smol`).
//!
//! - **Routable sids**: every node issues sids that name it
//!   ([`NodeSidGenerator`](engineio_hyper::server::NodeSidGenerator)), so any node, and a
//!   load balancer's rule, tells a session's owner from its sid.
//! - **Cluster-wide operations** from any node: [`ClusterNode::send`],
//!   [`close`](ClusterNode::close), [`broadcast`](ClusterNode::broadcast) (with an
//!   exclusion list), [`count`](ClusterNode::count) and [`sids`](ClusterNode::sids),
//!   each bounded by `request_timeout` and failing with a typed
//!   [`ClusterError`](engineio_cluster::ClusterError), never hanging. A local sid never
//!   goes through Redis.
//! - **Membership** by heartbeats: a node that stops heartbeating is dropped after
//!   `node_timeout`, and operations aimed at its sessions fail at once.
//! - **Forwarding**: a polling request or WebSocket upgrade for a session of another live
//!   node is sent on to it (HTTP reverse proxy to the address it publishes, the upgrade
//!   tunnelled), so a plain round-robin balancer works. With sid routing at the balancer
//!   no request is ever forwarded.
//! - **Graceful drain** ([`ClusterNode::drain`]): new handshakes go to the other nodes,
//!   sessions close with a reason that makes clients reconnect, the node leaves.
//!
//! The decisions live in [`engineio_cluster`] (sans-IO, tested in virtual time); this
//! crate is the IO around it: the [`Bus`] trait, its Redis implementation
//! ([`RedisBus`]), and the driver, a short loop like the session drivers.
//!
//! ## What Redis pub/sub does and does not deliver
//!
//! Pub/sub is *at most once*. When Redis restarts, or a node's connection to it drops:
//!
//! - operations waiting for an answer fail with `BusLost` (the outcome is unknown: the
//!   other node may have carried it out), and operations started while the bus is down
//!   fail at once with `BusDown` (nothing was sent);
//! - messages other nodes publish meanwhile (broadcasts, sends to this node's sessions)
//!   are lost for this node; each is counted and reported as
//!   [`ClusterEvent::MessagesLost`](engineio_cluster::ClusterEvent::MessagesLost) when the
//!   sender is heard again (messages carry per-sender sequence numbers);
//! - the sessions themselves are not affected (they live in their node, and forwarding
//!   uses HTTP, not Redis), and the bus reconnects by itself with backoff
//!   ([`ClusterEvent::BusUp`](engineio_cluster::ClusterEvent::BusUp) gives the outage).
//!
//! When a node dies, its sessions die with it (their clients reconnect and get new
//! sessions elsewhere); what was queued for them is lost. The others drop it after
//! `node_timeout`, and answer requests for its sids as for any unknown session, so
//! clients start over at once.
//!
//! ## A node
//!
//! ```no_run
//! use engineio_cluster::ClusterConfig;
//! use engineio_redis::{ClusterNode, RedisBus};
//! use engineio_tokio::{Config, ConnectRequest, EngineIo, Handler, Message, NodeId,
//!     NodeSidGenerator, Rejection, Socket, Tokio};
//!
//! struct Chat;
//!
//! impl Handler for Chat {
//!     type Data = ();
//!     async fn on_connect(&self, _: &ConnectRequest<'_>) -> Result<(), Rejection> { Ok(()) }
//!     fn on_message(&self, _socket: &Socket<()>, _message: Message) {}
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let node: NodeId = std::env::var("NODE_ID")?.parse()?;
//!     let engine = EngineIo::with_sid_generator(
//!         Tokio, Chat, Config::default(), NodeSidGenerator::new(node.clone()))?;
//!     let bus = RedisBus::new("redis://127.0.0.1:6379/")?;
//!     let cluster = ClusterNode::start(
//!         engine.clone(), Tokio, bus, node, "10.0.0.5:3000", ClusterConfig::default())?;
//!
//!     let server = tokio::spawn(engineio_tokio::listen("0.0.0.0:3000", engine));
//!     tokio::signal::ctrl_c().await?;
//!     let report = cluster.drain().await; // on SIGTERM: hand the clients to the others
//!     println!("{report:?}");
//!     server.await??;
//!     Ok(())
//! }
//! ```
#![deny(unsafe_code)]

mod bus;
mod node;

pub use bus::{
    Bus, BusError, BusMessage, BusPublisher, RedisBus, RedisPublisher, RedisSubscription,
};
pub use engineio_cluster;
pub use node::{
    BroadcastReport, ClusterNode, ClusterSendError, DrainReport, Incomplete, StartError,
};
