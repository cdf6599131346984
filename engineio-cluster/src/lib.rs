//! # engineio-cluster
//!
//! The decisions of an Engine.IO server that runs as several nodes, as a *sans-IO* state
//! machine: which node owns a session, who is alive, which request an answer belongs to,
//! when a request has waited too long, and what to do when the bus drops. No sockets, no
//! clock, no randomness, no runtime and no Redis client: the binding (`engineio-redis`)
//! connects to the bus, moves payloads in and out, and reads the clock.
//!
//! ## The model
//!
//! - Every node has a [`NodeId`] and issues sids that name it
//!   ([`Sid::routable`](engineio_proto::Sid::routable): `<node>.<120 random bits>`), so
//!   [`Cluster::owner`] tells a session's owner from its sid alone.
//! - Nodes talk over a publish/subscribe bus with two kinds of channel: one shared by all
//!   (`<prefix>:all`: heartbeats, joins, leaves, fan-out requests) and one per node
//!   (`<prefix>:node:<id>`: requests for its sessions, answers to its requests).
//! - **Membership**: a node publishes a heartbeat every `heartbeat_interval`; a node not
//!   heard from for `node_timeout` is dropped ([`ClusterEvent::NodeDown`]), and so is one
//!   that says it leaves or comes back with a new incarnation (restarted). Operations
//!   aimed at a node that is not a live member fail at once with
//!   [`ClusterError::UnknownNode`]; those waiting on a node that goes down fail with
//!   [`ClusterError::NodeDown`]. Nothing waits longer than `request_timeout`.
//! - **Delivery** is at most once (Redis pub/sub). Every message carries a sequence number
//!   per sender and channel, so a receiver that missed messages (its bus connection
//!   dropped, Redis restarted) reports how many ([`ClusterEvent::MessagesLost`]) as soon as
//!   it hears from the sender again (within a heartbeat on the shared channel).
//! - **Bus down**: pending operations fail with [`ClusterError::BusLost`] (outcome
//!   unknown), new ones with [`ClusterError::BusDown`] (not sent); the membership is kept
//!   but not expired while the bus is down (nodes are still reachable over HTTP for
//!   forwarding); reconnection follows with backoff and jitter, and a node that is back
//!   says hello so that everyone's membership is fresh within one round trip.
//!
//! ## Driving it
//!
//! Like the session state machines of `engineio-proto`: after every input, drain
//! [`Cluster::poll_action`] until `None`, then sleep until [`Cluster::poll_timeout`] (or
//! the next input) and call [`Cluster::handle_timeout`]. Time never goes backwards.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use engineio_cluster::{Action, Answer, Cluster, ClusterConfig, Command, Outcome};
//! use engineio_proto::{NodeId, Sid};
//!
//! # #[allow(clippy::disallowed_methods)]
//! let start = Instant::now(); // a binding reads its clock; tests use a virtual one
//! let a_id: NodeId = "a".parse()?;
//! let mut a = Cluster::new(a_id, "10.0.0.1:3000", ClusterConfig::default(), start, 1)?;
//! let mut b = Cluster::new("b".parse()?, "10.0.0.2:3000", ClusterConfig::default(), start, 2)?;
//!
//! // An in-memory bus: every node subscribes to its two channels.
//! let mut bus: Vec<(String, bytes::Bytes)> = Vec::new();
//! let mut pump = |nodes: &mut [&mut Cluster], bus: &mut Vec<(String, bytes::Bytes)>, now| {
//!     let mut done = Vec::new();
//!     loop {
//!         for n in nodes.iter_mut() {
//!             while let Some(action) = n.poll_action() {
//!                 match action {
//!                     Action::Connect => n.handle_bus_connected(now),
//!                     Action::Publish { channel, payload } => bus.push((channel, payload)),
//!                     Action::Execute { ticket, command: Command::Count } => {
//!                         n.reply(now, ticket, Answer::Count(3)) // this node's sessions
//!                     }
//!                     Action::Complete { outcome, .. } => done.push(outcome),
//!                     _ => {}
//!                 }
//!             }
//!         }
//!         if bus.is_empty() {
//!             return done;
//!         }
//!         for (channel, payload) in bus.drain(..).collect::<Vec<_>>() {
//!             for n in nodes.iter_mut() {
//!                 if n.channels().contains(&channel.as_str()) {
//!                     n.handle_bus_message(now, &channel, &payload);
//!                 }
//!             }
//!         }
//!     }
//! };
//! pump(&mut [&mut a, &mut b], &mut bus, start);
//! assert_eq!(a.members().count(), 1); // they found each other
//!
//! let sid = Sid::routable(&"b".parse()?, [9; 15]);
//! assert!(matches!(a.owner(&sid), engineio_cluster::Owner::Remote(m) if m.address() == "10.0.0.2:3000"));
//!
//! a.count(start)?;
//! let done = pump(&mut [&mut a, &mut b], &mut bus, start);
//! let Some(Outcome::FanOut(fan)) = done.first() else { panic!("{done:?}") };
//! assert_eq!(fan.answers[0].1, Answer::Count(3));
//!
//! // B goes silent: A drops it after node_timeout, and operations on its sessions fail
//! // at once instead of waiting.
//! let later = start + Duration::from_secs(11);
//! a.handle_timeout(start + Duration::from_secs(5));
//! a.handle_timeout(later);
//! assert_eq!(a.members().count(), 0);
//! assert!(a.send(later, sid, "hi".into()).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(unsafe_code)]
#![warn(clippy::indexing_slicing)]
#![cfg_attr(test, allow(clippy::indexing_slicing))]

mod config;
mod machine;
mod wire;

pub use config::{ClusterConfig, ClusterConfigError};
pub use engineio_proto::{NodeId, Sid};
pub use machine::{
    Action, Cluster, ClusterError, ClusterEvent, Counters, FanOut, Member, NodeDownReason, OpId,
    Outcome, Owner, Ticket,
};
pub use wire::{Answer, Command, NotSent, WireError};
