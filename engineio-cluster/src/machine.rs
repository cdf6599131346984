//! The cluster state machine: [`Cluster`].

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use engineio_proto::{Message, NodeId, Sid};

use crate::config::{ClusterConfig, ClusterConfigError};
use crate::wire::{Answer, Body, Command, Envelope};

/// Identifies an operation this node started ([`Cluster::send`] and the others); its
/// result comes back as [`Action::Complete`] with the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OpId(pub u64);

/// A request from another node that this node must carry out on its own sessions
/// ([`Action::Execute`]); hand it back to [`Cluster::reply`] with the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    from: NodeId,
    op: u64,
}

impl Ticket {
    /// The node that asked.
    pub fn from(&self) -> &NodeId {
        &self.from
    }
}

/// Why a cluster operation failed. None of them hangs: each is decided at once, or when
/// the owner answers, goes down, or `request_timeout` passes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// The sid names no node (it was not issued by a node of a cluster).
    #[error("session id {0} names no node: it was not issued by a node of this cluster")]
    NotRoutable(Sid),
    /// The sid is this node's own: serve it locally (the binding does; a local sid never
    /// goes through the bus).
    #[error("session id {0} belongs to this node")]
    Local(Sid),
    /// The node the sid names is not a live member: it left, stopped heartbeating
    /// (`node_timeout`), or never joined. Its sessions are gone.
    #[error(
        "node {node:?} is not a live member of the cluster (it left, stopped heartbeating or never joined)"
    )]
    UnknownNode {
        /// The node the sid names.
        node: String,
    },
    /// The node went down (expired, left or restarted) before it answered. Whether it
    /// carried the operation out is unknown.
    #[error("node {node} went down before it answered")]
    NodeDown {
        /// The node.
        node: NodeId,
    },
    /// The node did not answer within `request_timeout`. Whether it carried the
    /// operation out is unknown.
    #[error("node {node} did not answer within {after:?}")]
    Timeout {
        /// The node.
        node: NodeId,
        /// The timeout.
        after: Duration,
    },
    /// The bus is down: the operation was not sent. Retry once it is back
    /// ([`ClusterEvent::BusUp`]).
    #[error("the cluster bus is down; the operation was not sent")]
    BusDown,
    /// The bus dropped while the answer was awaited: whether the other node carried the
    /// operation out is unknown.
    #[error("the cluster bus dropped before the answer came; the outcome is unknown")]
    BusLost,
    /// Too many operations are waiting for answers (`max_pending`).
    #[error("{limit} cluster operations are already waiting for answers")]
    TooManyPending {
        /// The limit.
        limit: usize,
    },
    /// This node has left the cluster ([`Cluster::leave`]).
    #[error("this node has left the cluster")]
    Left,
}

/// Why a node left the membership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NodeDownReason {
    /// It said so (a graceful drain).
    Left,
    /// It was not heard from for `node_timeout` (killed, frozen, cut off from the bus).
    Expired,
    /// It came back with a new incarnation: the process restarted, and the sessions it
    /// had are gone.
    Restarted,
}

/// What happened to the cluster, for logs, metrics and the application.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClusterEvent {
    /// The bus is up (again). `outage` is how long it was down, `None` the first time.
    BusUp {
        /// How long it was down.
        outage: Option<Duration>,
    },
    /// The bus dropped. Operations waiting for answers failed with
    /// [`ClusterError::BusLost`] (`failed` of them); messages others publish until it is
    /// back are lost (pub/sub delivers at most once): they are reported as
    /// [`ClusterEvent::MessagesLost`] once their senders are heard again.
    BusDown {
        /// What the bus client said.
        error: String,
        /// Operations that failed with it.
        failed: usize,
    },
    /// A node joined (or was heard again after it had been dropped).
    NodeUp {
        /// The node.
        node: NodeId,
        /// Its internal HTTP address (where requests for its sessions are forwarded).
        address: String,
    },
    /// A node left the membership; operations waiting on it failed (`failed` of them).
    NodeDown {
        /// The node.
        node: NodeId,
        /// Why.
        reason: NodeDownReason,
        /// Operations that failed with [`ClusterError::NodeDown`].
        failed: usize,
    },
    /// Messages from `from` never arrived (a gap in its sequence numbers): requests and
    /// broadcasts it sent were not carried out here, or answers to our requests were lost
    /// (those operations failed with a timeout or [`ClusterError::BusLost`]).
    MessagesLost {
        /// The sender.
        from: NodeId,
        /// How many.
        count: u64,
    },
    /// Another process uses this node's id: its messages are ignored. Every node needs a
    /// distinct id.
    DuplicateNodeId {
        /// The id.
        node: NodeId,
    },
    /// A bus payload could not be decoded and was ignored.
    Undecodable {
        /// What was wrong.
        error: String,
    },
}

/// What an operation came to ([`Action::Complete`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `send` and `close`: the owner's answer, or why there is none.
    Single(Result<Answer, ClusterError>),
    /// `broadcast`, `count` and `sids`: the answers of every node that was a member when
    /// the operation started (this node's own part is the binding's), and the nodes that
    /// gave none.
    FanOut(FanOut),
}

/// The answers of a fan-out operation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FanOut {
    /// The nodes that answered, and what.
    pub answers: Vec<(NodeId, Answer)>,
    /// The nodes that did not, and why.
    pub failed: Vec<(NodeId, ClusterError)>,
}

/// What the binding must do next; see the [crate documentation](crate) for the loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Connect to the bus and subscribe to [`Cluster::channels`]; then call
    /// [`Cluster::handle_bus_connected`] or [`Cluster::handle_bus_error`].
    Connect,
    /// Drop the bus connection or the connection attempt (it timed out, or the node left).
    Disconnect,
    /// Publish `payload` on `channel`, in order with the other publishes. A failure is
    /// [`Cluster::handle_bus_error`].
    Publish {
        /// The channel.
        channel: String,
        /// The payload.
        payload: Bytes,
    },
    /// Carry out `command` on this node's sessions, then [`Cluster::reply`].
    Execute {
        /// Who asked.
        ticket: Ticket,
        /// What.
        command: Command,
    },
    /// An operation started here is done.
    Complete {
        /// Its id.
        op: OpId,
        /// Its result.
        outcome: Outcome,
    },
    /// Something to log or count.
    Event(ClusterEvent),
}

/// A live member of the cluster (this node excluded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    node: NodeId,
    address: String,
    incarnation: u64,
    last_seen: Instant,
}

impl Member {
    /// Its id.
    pub fn node(&self) -> &NodeId {
        &self.node
    }

    /// Its internal HTTP address (`host:port`), where requests for its sessions go.
    pub fn address(&self) -> &str {
        &self.address
    }
}

/// Who owns a session, from its sid ([`Cluster::owner`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner<'a> {
    /// This node.
    Local,
    /// A live member.
    Remote(&'a Member),
    /// A node that is not a live member (gone, or never joined).
    Unknown(&'a str),
    /// The sid names no node.
    NotRoutable,
}

/// Counters of what went through the bus, for metrics (all since the start).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Counters {
    /// Messages published.
    pub published: u64,
    /// Messages received from other nodes.
    pub received: u64,
    /// Messages from other nodes that never arrived (sequence gaps).
    pub lost: u64,
    /// Payloads that could not be decoded.
    pub undecodable: u64,
    /// Requests sent to other nodes (one per node for fan-outs).
    pub requests: u64,
    /// Requests that got no answer within `request_timeout`.
    pub timeouts: u64,
    /// Requests that failed because their node went down.
    pub node_down_failures: u64,
    /// Requests that failed because the bus dropped.
    pub bus_failures: u64,
    /// Operations refused at once because the bus was down.
    pub refused_bus_down: u64,
    /// Answers that came after their operation had ended.
    pub late_answers: u64,
    /// Answers this node could not send (bus down).
    pub unsent_answers: u64,
    /// Times the bus dropped.
    pub bus_drops: u64,
    /// Nodes dropped because they stopped heartbeating.
    pub nodes_expired: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bus {
    /// Waiting to (re)connect at `retry_at`.
    Down {
        since: Instant,
        retry_at: Instant,
        failures: u32,
    },
    /// `Action::Connect` was given; waiting for the binding's answer.
    Connecting {
        since: Instant,
        deadline: Instant,
        failures: u32,
    },
    Up,
    /// Left the cluster: nothing more.
    Gone,
}

enum Waiting {
    One(NodeId),
    FanOut {
        waiting: BTreeSet<NodeId>,
        result: FanOut,
    },
}

struct Pending {
    deadline: Instant,
    waiting: Waiting,
}

/// What was last heard from a node on each channel.
#[derive(Default)]
struct Seen {
    incarnation: u64,
    shared: u64,
    direct: u64,
}

/// One node's view of the cluster: membership, owner lookup, the operations waiting
/// for answers, the bus connection. See the [crate documentation](crate).
pub struct Cluster {
    node: NodeId,
    address: String,
    incarnation: u64,
    config: ClusterConfig,
    shared_channel: String,
    own_channel: String,
    bus: Bus,
    first_up: bool,
    members: BTreeMap<NodeId, Member>,
    seen: BTreeMap<NodeId, Seen>,
    pending: BTreeMap<u64, Pending>,
    deadlines: BTreeSet<(Instant, u64)>,
    next_op: u64,
    seq_shared: u64,
    seq_direct: BTreeMap<NodeId, u64>,
    next_heartbeat: Option<Instant>,
    actions: VecDeque<Action>,
    counters: Counters,
    rng: u64,
    left: bool,
    /// When the bus came up, and when this node last heard its own shared messages back:
    /// a subscription that stays silent for `node_timeout` is dead (a half-open
    /// connection), even if publishing still works.
    up_since: Instant,
    last_echo: Option<Instant>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("node", &self.node)
            .field("bus", &self.bus)
            .field("members", &self.members.keys().collect::<Vec<_>>())
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// A node named `node`, reachable by the other nodes at `address` (`host:port` of its
    /// HTTP server), taking part with `config`. `incarnation` must be random per process
    /// start (it tells a restarted node from its previous life, and seeds the reconnect
    /// jitter). The first action is [`Action::Connect`].
    pub fn new(
        node: NodeId,
        address: impl Into<String>,
        config: ClusterConfig,
        now: Instant,
        incarnation: u64,
    ) -> Result<Cluster, ClusterConfigError> {
        config.validate()?;
        let shared_channel = format!("{}:all", config.channel_prefix);
        let own_channel = format!("{}:node:{}", config.channel_prefix, node);
        let mut actions = VecDeque::new();
        actions.push_back(Action::Connect);
        Ok(Cluster {
            bus: Bus::Connecting {
                since: now,
                deadline: now + config.connect_timeout,
                failures: 0,
            },
            node,
            address: address.into(),
            incarnation,
            shared_channel,
            own_channel,
            config,
            first_up: true,
            members: BTreeMap::new(),
            seen: BTreeMap::new(),
            pending: BTreeMap::new(),
            deadlines: BTreeSet::new(),
            next_op: 1,
            seq_shared: 0,
            seq_direct: BTreeMap::new(),
            next_heartbeat: None,
            actions,
            counters: Counters::default(),
            rng: incarnation ^ 0x9e37_79b9_7f4a_7c15,
            left: false,
            up_since: now,
            last_echo: None,
        })
    }

    // ------------------------------------------------------------------ getters

    /// This node's id.
    pub fn node(&self) -> &NodeId {
        &self.node
    }

    /// The configuration.
    pub fn config(&self) -> &ClusterConfig {
        &self.config
    }

    /// The channels to subscribe to: the shared one and this node's own.
    pub fn channels(&self) -> [&str; 2] {
        [&self.shared_channel, &self.own_channel]
    }

    /// Whether the bus is up.
    pub fn is_bus_up(&self) -> bool {
        self.bus == Bus::Up
    }

    /// The live members (this node excluded), by id.
    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.members.values()
    }

    /// A live member.
    pub fn member(&self, node: &str) -> Option<&Member> {
        self.members.get(node)
    }

    /// Who owns the session `sid`, from the node its id names.
    pub fn owner<'a>(&'a self, sid: &'a Sid) -> Owner<'a> {
        match sid.node() {
            None => Owner::NotRoutable,
            Some(n) if n == self.node.as_str() => Owner::Local,
            Some(n) => match self.members.get(n) {
                Some(m) => Owner::Remote(m),
                None => Owner::Unknown(n),
            },
        }
    }

    /// The counters.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// How many operations wait for answers.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    // ------------------------------------------------------------------ bus inputs

    /// The bus is connected and subscribed ([`Action::Connect`] succeeded).
    pub fn handle_bus_connected(&mut self, now: Instant) {
        let outage = match self.bus {
            Bus::Connecting { since, .. } if !self.first_up => {
                Some(now.saturating_duration_since(since))
            }
            Bus::Connecting { .. } => None,
            _ => return,
        };
        self.first_up = false;
        self.bus = Bus::Up;
        self.up_since = now;
        self.last_echo = None;
        // Nothing was heard while the bus was down: give every member a full timeout to be
        // heard again rather than dropping them all for our own outage.
        for m in self.members.values_mut() {
            m.last_seen = now;
        }
        self.actions
            .push_back(Action::Event(ClusterEvent::BusUp { outage }));
        let address = self.address.clone();
        self.publish_shared(Body::Hello { address });
        self.next_heartbeat = Some(now + self.config.heartbeat_interval);
    }

    /// The bus failed: connecting, subscribing or publishing did not work, or the
    /// subscription ended. Operations waiting for answers fail with
    /// [`ClusterError::BusLost`]; reconnection follows (an [`Action::Connect`] after the
    /// backoff).
    pub fn handle_bus_error(&mut self, now: Instant, error: impl Into<String>) {
        let (since, failures) = match self.bus {
            Bus::Up => {
                self.counters.bus_drops += 1;
                (now, 0)
            }
            Bus::Connecting {
                since, failures, ..
            } => (since, failures.saturating_add(1)),
            Bus::Down { .. } | Bus::Gone => return,
        };
        let failed = self.fail_all(ClusterError::BusLost);
        self.counters.bus_failures += failed as u64;
        let was_up = self.bus == Bus::Up;
        let retry_at = now + self.backoff(failures);
        self.bus = Bus::Down {
            since,
            retry_at,
            failures,
        };
        self.next_heartbeat = None;
        if was_up || failures == 1 {
            self.actions.push_back(Action::Event(ClusterEvent::BusDown {
                error: error.into(),
                failed,
            }));
        }
    }

    /// A payload arrived on one of [`channels`](Self::channels).
    pub fn handle_bus_message(&mut self, now: Instant, channel: &str, payload: &Bytes) {
        if self.bus != Bus::Up {
            return;
        }
        let envelope = match Envelope::decode(payload) {
            Ok(e) => e,
            Err(e) => {
                self.counters.undecodable += 1;
                self.actions
                    .push_back(Action::Event(ClusterEvent::Undecodable {
                        error: e.to_string(),
                    }));
                return;
            }
        };
        if envelope.sender == self.node {
            if envelope.incarnation == self.incarnation {
                self.last_echo = Some(now);
            } else {
                self.actions
                    .push_back(Action::Event(ClusterEvent::DuplicateNodeId {
                        node: self.node.clone(),
                    }));
            }
            return;
        }
        self.counters.received += 1;
        let direct = channel == self.own_channel;
        self.track_sequence(now, &envelope, direct);
        let sender = envelope.sender;
        let incarnation = envelope.incarnation;
        match envelope.body {
            Body::Heartbeat { address } => self.heard(now, sender, incarnation, address, false),
            Body::Hello { address } => self.heard(now, sender, incarnation, address, true),
            Body::Leave => {
                if self.members.contains_key(&sender) {
                    self.node_down(&sender, NodeDownReason::Left);
                }
            }
            Body::Request { op, command } => {
                if let Some(m) = self.members.get_mut(&sender) {
                    m.last_seen = now;
                }
                self.actions.push_back(Action::Execute {
                    ticket: Ticket { from: sender, op },
                    command,
                });
            }
            Body::Response { op, answer } => self.answered(sender, op, answer),
        }
    }

    // ------------------------------------------------------------------ time

    /// The next deadline: a heartbeat, a member's expiry, a request's timeout or a
    /// reconnection.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut next = self.deadlines.first().map(|(t, _)| *t);
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        match self.bus {
            Bus::Down { retry_at, .. } => consider(Some(retry_at)),
            Bus::Connecting { deadline, .. } => consider(Some(deadline)),
            Bus::Up => {
                consider(self.next_heartbeat);
                consider(Some(self.echo_deadline()));
                consider(
                    self.members
                        .values()
                        .map(|m| m.last_seen + self.config.node_timeout)
                        .min(),
                );
            }
            Bus::Gone => {}
        }
        next
    }

    /// Handles what is due at `now`. Early or repeated calls do nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&(t, op)) = self.deadlines.first() {
            if t > now {
                break;
            }
            self.deadlines.pop_first();
            self.request_timed_out(op);
        }
        match self.bus {
            Bus::Down {
                retry_at,
                since,
                failures,
            } if retry_at <= now => {
                self.bus = Bus::Connecting {
                    since,
                    deadline: now + self.config.connect_timeout,
                    failures,
                };
                self.actions.push_back(Action::Connect);
            }
            Bus::Connecting { deadline, .. } if deadline <= now => {
                self.actions.push_back(Action::Disconnect);
                self.handle_bus_error(now, "connecting to the bus timed out");
            }
            Bus::Up => {
                if self.next_heartbeat.is_some_and(|t| t <= now) {
                    let address = self.address.clone();
                    self.publish_shared(Body::Heartbeat { address });
                    self.next_heartbeat = Some(now + self.config.heartbeat_interval);
                }
                let expired: Vec<NodeId> = self
                    .members
                    .values()
                    .filter(|m| m.last_seen + self.config.node_timeout <= now)
                    .map(|m| m.node.clone())
                    .collect();
                for node in expired {
                    self.counters.nodes_expired += 1;
                    self.node_down(&node, NodeDownReason::Expired);
                }
                if self.bus == Bus::Up && self.echo_deadline() <= now {
                    self.actions.push_back(Action::Disconnect);
                    let silent = self.config.node_timeout;
                    self.handle_bus_error(
                        now,
                        format!("the subscription delivered nothing for {silent:?}, not even this node's own heartbeats"),
                    );
                }
            }
            _ => {}
        }
    }

    // ------------------------------------------------------------------ operations

    /// Sends `message` to the session `sid` of another node. Errors at once when the sid
    /// is local or names no live member, or the bus is down.
    pub fn send(&mut self, now: Instant, sid: Sid, message: Message) -> Result<OpId, ClusterError> {
        let node = self.remote_owner(&sid)?;
        self.request_one(now, node, Command::Send { sid, message })
    }

    /// Closes the session `sid` of another node.
    pub fn close(&mut self, now: Instant, sid: Sid) -> Result<OpId, ClusterError> {
        let node = self.remote_owner(&sid)?;
        self.request_one(now, node, Command::Close { sid })
    }

    /// Sends `message` to every session of every other live node except `except` (the
    /// binding delivers to this node's own sessions itself). The outcome is a
    /// [`FanOut`] of [`Answer::Delivered`].
    pub fn broadcast(
        &mut self,
        now: Instant,
        message: Message,
        except: Vec<Sid>,
    ) -> Result<OpId, ClusterError> {
        self.request_all(now, Command::Broadcast { message, except })
    }

    /// Asks every other live node how many sessions it has ([`Answer::Count`]).
    pub fn count(&mut self, now: Instant) -> Result<OpId, ClusterError> {
        self.request_all(now, Command::Count)
    }

    /// Asks every other live node for its session ids ([`Answer::Sids`]).
    pub fn sids(&mut self, now: Instant) -> Result<OpId, ClusterError> {
        self.request_all(now, Command::Sids)
    }

    /// Answers a request from another node ([`Action::Execute`]).
    pub fn reply(&mut self, now: Instant, ticket: Ticket, answer: Answer) {
        let _ = now;
        if self.bus != Bus::Up {
            self.counters.unsent_answers += 1;
            return;
        }
        let channel = self.channel_of(&ticket.from);
        let seq = self.next_direct_seq(&ticket.from);
        self.publish(
            channel,
            seq,
            Body::Response {
                op: ticket.op,
                answer,
            },
        );
    }

    /// Leaves the cluster (the end of a graceful drain): tells the others, stops
    /// heartbeating, fails what still waits with [`ClusterError::Left`], and ends with
    /// [`Action::Disconnect`] once the goodbye is published.
    pub fn leave(&mut self, now: Instant) {
        let _ = now;
        if self.left {
            return;
        }
        self.left = true;
        if self.bus == Bus::Up {
            self.publish_shared(Body::Leave);
        }
        self.fail_all(ClusterError::Left);
        self.bus = Bus::Gone;
        self.next_heartbeat = None;
        self.actions.push_back(Action::Disconnect);
    }

    /// Whether [`leave`](Self::leave) was called.
    pub fn has_left(&self) -> bool {
        self.left
    }

    /// The next thing to do.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    // ------------------------------------------------------------------ internals

    fn echo_deadline(&self) -> Instant {
        self.last_echo.unwrap_or(self.up_since).max(self.up_since) + self.config.node_timeout
    }

    fn remote_owner(&self, sid: &Sid) -> Result<NodeId, ClusterError> {
        match self.owner(sid) {
            Owner::Local => Err(ClusterError::Local(*sid)),
            Owner::NotRoutable => Err(ClusterError::NotRoutable(*sid)),
            Owner::Unknown(n) => Err(ClusterError::UnknownNode { node: n.to_owned() }),
            Owner::Remote(m) => Ok(m.node.clone()),
        }
    }

    fn ready(&mut self) -> Result<(), ClusterError> {
        if self.left {
            return Err(ClusterError::Left);
        }
        if self.bus != Bus::Up {
            self.counters.refused_bus_down += 1;
            return Err(ClusterError::BusDown);
        }
        if self.pending.len() >= self.config.max_pending {
            return Err(ClusterError::TooManyPending {
                limit: self.config.max_pending,
            });
        }
        Ok(())
    }

    fn new_op(&mut self, now: Instant, waiting: Waiting) -> u64 {
        let op = self.next_op;
        self.next_op += 1;
        let deadline = now + self.config.request_timeout;
        self.deadlines.insert((deadline, op));
        self.pending.insert(op, Pending { deadline, waiting });
        op
    }

    fn request_one(
        &mut self,
        now: Instant,
        node: NodeId,
        command: Command,
    ) -> Result<OpId, ClusterError> {
        self.ready()?;
        let op = self.new_op(now, Waiting::One(node.clone()));
        let channel = self.channel_of(&node);
        let seq = self.next_direct_seq(&node);
        self.counters.requests += 1;
        self.publish(channel, seq, Body::Request { op, command });
        Ok(OpId(op))
    }

    fn request_all(&mut self, now: Instant, command: Command) -> Result<OpId, ClusterError> {
        self.ready()?;
        let waiting: BTreeSet<NodeId> = self.members.keys().cloned().collect();
        let empty = waiting.is_empty();
        self.counters.requests += waiting.len() as u64;
        let op = self.new_op(
            now,
            Waiting::FanOut {
                waiting,
                result: FanOut::default(),
            },
        );
        if empty {
            // Nobody else: done at once (the binding adds its own part).
            self.finish(op);
        } else {
            self.publish_shared(Body::Request { op, command });
        }
        Ok(OpId(op))
    }

    fn channel_of(&self, node: &NodeId) -> String {
        format!("{}:node:{}", self.config.channel_prefix, node)
    }

    fn next_direct_seq(&mut self, node: &NodeId) -> u64 {
        let seq = self.seq_direct.entry(node.clone()).or_insert(0);
        *seq += 1;
        *seq
    }

    fn publish_shared(&mut self, body: Body) {
        self.seq_shared += 1;
        let channel = self.shared_channel.clone();
        self.publish(channel, self.seq_shared, body);
    }

    fn publish(&mut self, channel: String, seq: u64, body: Body) {
        let payload = Envelope {
            sender: self.node.clone(),
            incarnation: self.incarnation,
            seq,
            body,
        }
        .encode();
        self.counters.published += 1;
        self.actions.push_back(Action::Publish { channel, payload });
    }

    fn track_sequence(&mut self, now: Instant, e: &Envelope, direct: bool) {
        let _ = now;
        let seen = self.seen.entry(e.sender.clone()).or_default();
        if seen.incarnation != e.incarnation {
            // A new process (or the first we hear of it): its numbering starts again.
            *seen = Seen {
                incarnation: e.incarnation,
                ..Seen::default()
            };
        }
        let last = if direct {
            &mut seen.direct
        } else {
            &mut seen.shared
        };
        // The first message heard from a sender tells nothing about what came before it
        // (we may have just started); after that, a jump is a loss.
        let gap = if *last == 0 {
            0
        } else {
            e.seq.saturating_sub(*last + 1)
        };
        if e.seq > *last {
            *last = e.seq;
        }
        if gap > 0 {
            self.counters.lost += gap;
            self.actions
                .push_back(Action::Event(ClusterEvent::MessagesLost {
                    from: e.sender.clone(),
                    count: gap,
                }));
        }
    }

    fn heard(
        &mut self,
        now: Instant,
        node: NodeId,
        incarnation: u64,
        address: String,
        hello: bool,
    ) {
        if let Some(m) = self.members.get(&node)
            && m.incarnation != incarnation
        {
            self.node_down(&node, NodeDownReason::Restarted);
        }
        match self.members.get_mut(&node) {
            Some(m) => {
                m.last_seen = now;
                m.address = address;
            }
            None => {
                self.members.insert(
                    node.clone(),
                    Member {
                        node: node.clone(),
                        address: address.clone(),
                        incarnation,
                        last_seen: now,
                    },
                );
                self.actions
                    .push_back(Action::Event(ClusterEvent::NodeUp { node, address }));
            }
        }
        if hello && self.bus == Bus::Up {
            // A node joined or came back: tell it about us now rather than at our next
            // heartbeat.
            let address = self.address.clone();
            self.publish_shared(Body::Heartbeat { address });
        }
    }

    fn node_down(&mut self, node: &NodeId, reason: NodeDownReason) {
        if self.members.remove(node).is_none() {
            return;
        }
        let mut failed = 0;
        let ops: Vec<u64> = self.pending.keys().copied().collect();
        for op in ops {
            let Some(p) = self.pending.get_mut(&op) else {
                continue;
            };
            match &mut p.waiting {
                Waiting::One(n) if n == node => {
                    failed += 1;
                    self.complete_one(op, Err(ClusterError::NodeDown { node: node.clone() }));
                }
                Waiting::One(_) => {}
                Waiting::FanOut { waiting, result } => {
                    if waiting.remove(node) {
                        failed += 1;
                        result
                            .failed
                            .push((node.clone(), ClusterError::NodeDown { node: node.clone() }));
                        if waiting.is_empty() {
                            self.finish(op);
                        }
                    }
                }
            }
        }
        self.counters.node_down_failures += failed as u64;
        self.actions
            .push_back(Action::Event(ClusterEvent::NodeDown {
                node: node.clone(),
                reason,
                failed,
            }));
    }

    fn answered(&mut self, from: NodeId, op: u64, answer: Answer) {
        let Some(p) = self.pending.get_mut(&op) else {
            self.counters.late_answers += 1;
            return;
        };
        match &mut p.waiting {
            Waiting::One(n) if *n == from => self.complete_one(op, Ok(answer)),
            Waiting::One(_) => self.counters.late_answers += 1,
            Waiting::FanOut { waiting, result } => {
                if waiting.remove(&from) {
                    result.answers.push((from, answer));
                    if waiting.is_empty() {
                        self.finish(op);
                    }
                } else {
                    self.counters.late_answers += 1;
                }
            }
        }
    }

    fn take(&mut self, op: u64) -> Option<Pending> {
        let p = self.pending.remove(&op)?;
        self.deadlines.remove(&(p.deadline, op));
        Some(p)
    }

    fn complete_one(&mut self, op: u64, result: Result<Answer, ClusterError>) {
        if self.take(op).is_some() {
            self.actions.push_back(Action::Complete {
                op: OpId(op),
                outcome: Outcome::Single(result),
            });
        }
    }

    fn finish(&mut self, op: u64) {
        if let Some(p) = self.take(op) {
            let outcome = match p.waiting {
                Waiting::One(node) => Outcome::Single(Err(ClusterError::NodeDown { node })),
                Waiting::FanOut { result, .. } => Outcome::FanOut(result),
            };
            self.actions.push_back(Action::Complete {
                op: OpId(op),
                outcome,
            });
        }
    }

    fn request_timed_out(&mut self, op: u64) {
        let after = self.config.request_timeout;
        let Some(p) = self.take(op) else {
            return;
        };
        let outcome = match p.waiting {
            Waiting::One(node) => {
                self.counters.timeouts += 1;
                Outcome::Single(Err(ClusterError::Timeout { node, after }))
            }
            Waiting::FanOut {
                waiting,
                mut result,
            } => {
                self.counters.timeouts += waiting.len() as u64;
                for node in waiting {
                    result
                        .failed
                        .push((node.clone(), ClusterError::Timeout { node, after }));
                }
                Outcome::FanOut(result)
            }
        };
        self.actions.push_back(Action::Complete {
            op: OpId(op),
            outcome,
        });
    }

    /// Fails every pending operation with `error`; returns how many nodes' answers were
    /// given up on.
    fn fail_all(&mut self, error: ClusterError) -> usize {
        let mut failed = 0;
        let ops: Vec<u64> = self.pending.keys().copied().collect();
        for op in ops {
            let Some(p) = self.take(op) else { continue };
            let outcome = match p.waiting {
                Waiting::One(_) => {
                    failed += 1;
                    Outcome::Single(Err(error.clone()))
                }
                Waiting::FanOut {
                    waiting,
                    mut result,
                } => {
                    failed += waiting.len();
                    for node in waiting {
                        result.failed.push((node, error.clone()));
                    }
                    Outcome::FanOut(result)
                }
            };
            self.actions.push_back(Action::Complete {
                op: OpId(op),
                outcome,
            });
        }
        failed
    }

    fn backoff(&mut self, failures: u32) -> Duration {
        let base = self
            .config
            .reconnect_delay
            .saturating_mul(1u32 << failures.min(16))
            .min(self.config.reconnect_max_delay);
        // splitmix64: ±25% jitter, so that nodes that lost the same bus do not all come back
        // in the same millisecond.
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        let unit = (z >> 11) as f64 / (1u64 << 53) as f64; // [0, 1)
        base.mul_f64(0.75 + unit * 0.5)
    }
}
