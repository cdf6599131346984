//! The cluster state machine in virtual time: nodes on an in-memory bus with latency,
//! a shared clock that jumps to the next deadline, bus outages and dead nodes.
#![allow(clippy::indexing_slicing, missing_docs)]

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use engineio_cluster::{
    Action, Answer, Cluster, ClusterConfig, ClusterError, ClusterEvent, Command, NodeDownReason,
    NotSent, OpId, Outcome, Owner, Ticket,
};
use engineio_proto::{Message, NodeId, Sid};

const LATENCY: Duration = Duration::from_millis(1);

struct Node {
    cluster: Cluster,
    /// Whether the node's bus connection works (publishes go out, messages come in).
    bus_ok: bool,
    /// A dead node is never driven again.
    alive: bool,
    /// Its subscription delivers nothing (a half-open connection), publishing works.
    deaf: bool,
    /// Whether the node answers requests (a frozen application).
    answers: bool,
    /// Sessions this node owns (what Execute acts on).
    sessions: Vec<Sid>,
    /// Messages delivered to its sessions.
    delivered: Vec<(Sid, Message)>,
    completed: BTreeMap<OpId, Outcome>,
    events: Vec<ClusterEvent>,
    connects: usize,
    disconnects: usize,
    unanswered: Vec<Ticket>,
}

struct Net {
    now: Instant,
    start: Instant,
    nodes: BTreeMap<String, Node>,
    /// (deliver at, channel, payload)
    wire: VecDeque<(Instant, String, Bytes)>,
}

fn config() -> ClusterConfig {
    let mut c = ClusterConfig::default();
    c.heartbeat_interval = Duration::from_secs(5);
    c.node_timeout = Duration::from_secs(10);
    c.request_timeout = Duration::from_secs(2);
    c
}

fn sid_of(node: &str, n: u8) -> Sid {
    Sid::routable(&NodeId::new(node).unwrap(), [n; 15])
}

impl Net {
    fn new(names: &[&str]) -> Net {
        Self::with_config(names, config())
    }

    fn with_config(names: &[&str], config: ClusterConfig) -> Net {
        #[allow(clippy::disallowed_methods)]
        let start = Instant::now();
        let mut net = Net {
            now: start,
            start,
            nodes: BTreeMap::new(),
            wire: VecDeque::new(),
        };
        for (i, name) in names.iter().enumerate() {
            net.add(name, i as u64 + 1, config.clone());
        }
        net.settle();
        net
    }

    fn add(&mut self, name: &str, incarnation: u64, config: ClusterConfig) {
        let cluster = Cluster::new(
            NodeId::new(name).unwrap(),
            format!("127.0.0.1:{}", 3000 + incarnation),
            config,
            self.now,
            incarnation,
        )
        .unwrap();
        self.nodes.insert(
            name.to_owned(),
            Node {
                cluster,
                bus_ok: true,
                alive: true,
                deaf: false,
                answers: true,
                sessions: (1..=3).map(|n| sid_of(name, n)).collect(),
                delivered: Vec::new(),
                completed: BTreeMap::new(),
                events: Vec::new(),
                connects: 0,
                disconnects: 0,
                unanswered: Vec::new(),
            },
        );
    }

    fn node(&mut self, name: &str) -> &mut Node {
        self.nodes.get_mut(name).unwrap()
    }

    fn cluster(&mut self, name: &str) -> &mut Cluster {
        &mut self.node(name).cluster
    }

    /// Runs every node's actions until none is left.
    fn drain(&mut self) {
        let now = self.now;
        loop {
            let mut progress = false;
            for node in self.nodes.values_mut().filter(|n| n.alive) {
                while let Some(action) = node.cluster.poll_action() {
                    progress = true;
                    match action {
                        Action::Connect => {
                            node.connects += 1;
                            if node.bus_ok {
                                node.cluster.handle_bus_connected(now);
                            } else {
                                node.cluster.handle_bus_error(now, "connection refused");
                            }
                        }
                        Action::Disconnect => node.disconnects += 1,
                        Action::Publish { channel, payload } => {
                            if node.bus_ok {
                                self.wire.push_back((now + LATENCY, channel, payload));
                            } else {
                                node.cluster.handle_bus_error(now, "publish failed");
                            }
                        }
                        Action::Execute { ticket, command } => {
                            if !node.answers {
                                node.unanswered.push(ticket);
                                continue;
                            }
                            let answer = execute(node, command);
                            node.cluster.reply(now, ticket, answer);
                        }
                        Action::Complete { op, outcome } => {
                            assert!(node.completed.insert(op, outcome).is_none(), "{op:?} twice");
                        }
                        Action::Event(e) => node.events.push(e),
                    }
                }
            }
            if !progress {
                return;
            }
        }
    }

    /// Delivers what is due, fires timers, and advances the clock to the next event, until
    /// `until`.
    fn run_until(&mut self, until: Instant) {
        for _ in 0..1_000_000 {
            self.drain();
            let next_wire = self.wire.front().map(|w| w.0);
            let next_timer = self
                .nodes
                .values()
                .filter(|n| n.alive)
                .filter_map(|n| n.cluster.poll_timeout())
                .min();
            let next = [next_wire, next_timer].into_iter().flatten().min();
            let Some(next) = next.filter(|t| *t <= until) else {
                self.now = self.now.max(until);
                self.drain();
                return;
            };
            self.now = self.now.max(next);
            while self.wire.front().is_some_and(|w| w.0 <= self.now) {
                let (_, channel, payload) = self.wire.pop_front().unwrap();
                for node in self
                    .nodes
                    .values_mut()
                    .filter(|n| n.alive && n.bus_ok && !n.deaf)
                {
                    if node.cluster.channels().contains(&channel.as_str()) {
                        node.cluster
                            .handle_bus_message(self.now, &channel, &payload);
                    }
                }
            }
            let now = self.now;
            for node in self.nodes.values_mut().filter(|n| n.alive) {
                node.cluster.handle_timeout(now);
            }
        }
        panic!("the network did not settle");
    }

    fn advance(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until(until);
    }

    fn settle(&mut self) {
        self.advance(Duration::from_millis(50));
    }

    fn members(&self, name: &str) -> Vec<String> {
        self.nodes[name]
            .cluster
            .members()
            .map(|m| m.node().to_string())
            .collect()
    }

    fn outcome(&mut self, name: &str, op: OpId) -> Outcome {
        self.node(name)
            .completed
            .remove(&op)
            .unwrap_or_else(|| panic!("{op:?} not complete on {name}"))
    }

    fn events(&mut self, name: &str) -> Vec<ClusterEvent> {
        std::mem::take(&mut self.node(name).events)
    }

    fn elapsed(&self) -> Duration {
        self.now - self.start
    }
}

fn execute(node: &mut Node, command: Command) -> Answer {
    match command {
        Command::Send { sid, message } => {
            if node.sessions.contains(&sid) {
                node.delivered.push((sid, message));
                Answer::Sent
            } else {
                Answer::NotSent(NotSent::NoSession)
            }
        }
        Command::Close { sid } => {
            let before = node.sessions.len();
            node.sessions.retain(|s| *s != sid);
            Answer::Closed(node.sessions.len() != before)
        }
        Command::Broadcast { message, except } => {
            let targets: Vec<Sid> = node
                .sessions
                .iter()
                .filter(|s| !except.contains(s))
                .copied()
                .collect();
            for s in &targets {
                node.delivered.push((*s, message.clone()));
            }
            Answer::Delivered(targets.len() as u64)
        }
        Command::Count => Answer::Count(node.sessions.len() as u64),
        Command::Sids => Answer::Sids(node.sessions.clone()),
        _ => Answer::NotSent(NotSent::Refused),
    }
}

#[test]
fn nodes_find_each_other_at_once_and_stay_members_for_hours() {
    let mut net = Net::new(&["a", "b", "c"]);
    assert_eq!(net.members("a"), ["b", "c"]);
    assert_eq!(net.members("b"), ["a", "c"]);
    assert_eq!(net.members("c"), ["a", "b"]);
    net.advance(Duration::from_secs(3 * 3600));
    assert_eq!(net.members("a"), ["b", "c"]);
    for name in ["a", "b", "c"] {
        let events = net.events(name);
        assert!(
            !events.iter().any(|e| matches!(
                e,
                ClusterEvent::NodeDown { .. } | ClusterEvent::MessagesLost { .. }
            )),
            "{name}: {events:?}"
        );
        assert_eq!(net.nodes[name].cluster.counters().lost, 0);
    }
    // A node that joins later is known to everyone within one round trip.
    net.add("d", 9, config());
    net.settle();
    assert_eq!(net.members("a"), ["b", "c", "d"]);
    assert_eq!(net.members("d"), ["a", "b", "c"]);
}

#[test]
fn send_and_close_reach_the_owner_and_come_back_with_its_answer() {
    let mut net = Net::new(&["a", "b"]);
    let now = net.now;
    let target = sid_of("b", 2);
    let op = net.cluster("a").send(now, target, "hello".into()).unwrap();
    net.settle();
    assert_eq!(net.outcome("a", op), Outcome::Single(Ok(Answer::Sent)));
    assert_eq!(net.nodes["b"].delivered, [(target, Message::from("hello"))]);

    // A session the owner does not have (any more).
    let now = net.now;
    let op = net
        .cluster("a")
        .send(now, sid_of("b", 99), "x".into())
        .unwrap();
    net.settle();
    assert_eq!(
        net.outcome("a", op),
        Outcome::Single(Ok(Answer::NotSent(NotSent::NoSession)))
    );

    let now = net.now;
    let op = net.cluster("a").close(now, target).unwrap();
    net.settle();
    assert_eq!(
        net.outcome("a", op),
        Outcome::Single(Ok(Answer::Closed(true)))
    );
    assert!(!net.nodes["b"].sessions.contains(&target));
}

#[test]
fn local_and_unroutable_sids_never_go_on_the_bus() {
    let mut net = Net::new(&["a", "b"]);
    let now = net.now;
    let published = net.nodes["a"].cluster.counters().published;
    let local = sid_of("a", 1);
    assert_eq!(net.cluster("a").owner(&local), Owner::Local);
    assert_eq!(
        net.cluster("a").send(now, local, "x".into()),
        Err(ClusterError::Local(local))
    );
    let plain = Sid::from_entropy([1; 15]);
    assert_eq!(net.cluster("a").owner(&plain), Owner::NotRoutable);
    assert_eq!(
        net.cluster("a").send(now, plain, "x".into()),
        Err(ClusterError::NotRoutable(plain))
    );
    let stranger = sid_of("zz", 1);
    assert_eq!(
        net.cluster("a").close(now, stranger),
        Err(ClusterError::UnknownNode { node: "zz".into() })
    );
    assert_eq!(net.nodes["a"].cluster.counters().published, published);
}

#[test]
fn fan_out_gathers_every_node_and_reports_the_silent_one() {
    let mut net = Net::new(&["a", "b", "c"]);
    let now = net.now;
    let except = vec![sid_of("b", 1), sid_of("c", 3)];
    let op = net
        .cluster("a")
        .broadcast(now, "all".into(), except.clone())
        .unwrap();
    net.settle();
    let Outcome::FanOut(fan) = net.outcome("a", op) else {
        panic!()
    };
    assert!(fan.failed.is_empty());
    let mut answers = fan.answers.clone();
    answers.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(
        answers,
        [
            (NodeId::new("b").unwrap(), Answer::Delivered(2)),
            (NodeId::new("c").unwrap(), Answer::Delivered(2))
        ]
    );
    for name in ["b", "c"] {
        let got: Vec<Sid> = net.nodes[name].delivered.iter().map(|d| d.0).collect();
        assert_eq!(got.len(), 2);
        assert!(got.iter().all(|s| !except.contains(s)));
    }
    // Nothing for a's own sessions: the binding delivers those itself.
    assert!(net.nodes["a"].delivered.is_empty());

    // c stops answering (a frozen application): the count gives up on it after
    // request_timeout, with b's answer.
    net.node("c").answers = false;
    let now = net.now;
    let op = net.cluster("a").count(now).unwrap();
    net.advance(Duration::from_secs(1));
    assert!(!net.nodes["a"].completed.contains_key(&op));
    net.advance(Duration::from_millis(1100));
    let Outcome::FanOut(fan) = net.outcome("a", op) else {
        panic!()
    };
    assert_eq!(fan.answers, [(NodeId::new("b").unwrap(), Answer::Count(3))]);
    assert_eq!(
        fan.failed,
        [(
            NodeId::new("c").unwrap(),
            ClusterError::Timeout {
                node: NodeId::new("c").unwrap(),
                after: Duration::from_secs(2)
            }
        )]
    );
    // The late answer is counted, not confused with another operation.
    let tickets = std::mem::take(&mut net.node("c").unanswered);
    let now = net.now;
    for t in tickets {
        net.cluster("c").reply(now, t, Answer::Count(3));
    }
    net.settle();
    assert_eq!(net.nodes["a"].cluster.counters().late_answers, 1);
}

#[test]
fn a_dead_node_is_dropped_within_node_timeout_and_nothing_waits_on_it() {
    let mut net = Net::new(&["a", "b", "c"]);
    let killed_at = net.now;
    net.node("b").alive = false; // kill -9: no goodbye, no more heartbeats

    // An operation sent to it right away times out after request_timeout...
    let op = net
        .cluster("a")
        .send(killed_at, sid_of("b", 1), "x".into())
        .unwrap();
    net.advance(Duration::from_millis(2001));
    assert!(matches!(
        net.outcome("a", op),
        Outcome::Single(Err(ClusterError::Timeout { .. }))
    ));
    // ...a fan-out started just before it expires ends when it does...
    net.run_until(killed_at + Duration::from_secs(9));
    let now = net.now;
    let op = net.cluster("a").sids(now).unwrap();
    // ...and it is dropped no later than node_timeout after its last heartbeat.
    net.run_until(killed_at + Duration::from_secs(10) + Duration::from_millis(10));
    assert_eq!(net.members("a"), ["c"]);
    assert_eq!(net.members("c"), ["a"]);
    let events = net.events("a");
    assert!(events.contains(&ClusterEvent::NodeDown {
        node: NodeId::new("b").unwrap(),
        reason: NodeDownReason::Expired,
        failed: 1,
    }));
    let Outcome::FanOut(fan) = net.outcome("a", op) else {
        panic!()
    };
    assert_eq!(fan.answers.len(), 1);
    assert_eq!(
        fan.failed,
        [(
            NodeId::new("b").unwrap(),
            ClusterError::NodeDown {
                node: NodeId::new("b").unwrap()
            }
        )]
    );
    // From now on its sessions fail at once.
    let now = net.now;
    assert_eq!(
        net.cluster("a").send(now, sid_of("b", 1), "x".into()),
        Err(ClusterError::UnknownNode { node: "b".into() })
    );
    assert_eq!(net.nodes["a"].cluster.counters().nodes_expired, 1);
}

#[test]
fn a_restarted_node_is_a_new_member_and_its_old_sessions_are_gone() {
    let mut net = Net::new(&["a", "b"]);
    net.node("b").alive = false;
    net.add("b", 77, config()); // same id, new process
    net.settle();
    let events = net.events("a");
    assert!(events.contains(&ClusterEvent::NodeDown {
        node: NodeId::new("b").unwrap(),
        reason: NodeDownReason::Restarted,
        failed: 0,
    }));
    assert_eq!(net.members("a"), ["b"]);
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, ClusterEvent::MessagesLost { .. })),
        "a new numbering is not a loss: {events:?}"
    );
}

#[test]
fn leaving_tells_everyone_at_once() {
    let mut net = Net::new(&["a", "b", "c"]);
    let now = net.now;
    let op = net.cluster("b").count(now).unwrap();
    net.node("a").answers = false;
    net.node("c").answers = false;
    net.drain();
    net.cluster("b").leave(now);
    net.settle();
    assert!(net.nodes["b"].disconnects >= 1);
    let Outcome::FanOut(fan) = net.outcome("b", op) else {
        panic!()
    };
    assert!(fan.failed.iter().all(|(_, e)| *e == ClusterError::Left));
    for name in ["a", "c"] {
        assert!(!net.members(name).contains(&"b".to_owned()));
        assert!(net.events(name).iter().any(|e| matches!(
            e,
            ClusterEvent::NodeDown {
                reason: NodeDownReason::Left,
                ..
            }
        )));
    }
    let now = net.now;
    assert_eq!(net.cluster("b").count(now), Err(ClusterError::Left));
    // A node that left sends no more heartbeats.
    let published = net.nodes["b"].cluster.counters().published;
    net.advance(Duration::from_secs(60));
    assert_eq!(net.nodes["b"].cluster.counters().published, published);
}

#[test]
fn bus_outage_fails_what_waits_refuses_what_comes_reconnects_and_reports_the_loss() {
    let mut net = Net::new(&["a", "b", "c"]);
    let now = net.now;
    net.node("b").answers = false;
    let waiting = net
        .cluster("a")
        .send(now, sid_of("b", 1), "x".into())
        .unwrap();
    net.drain();
    net.node("b").answers = true;

    // a's connection to Redis drops.
    net.node("a").bus_ok = false;
    let now = net.now;
    net.cluster("a")
        .handle_bus_error(now, "connection reset by peer");
    net.drain();
    assert_eq!(
        net.outcome("a", waiting),
        Outcome::Single(Err(ClusterError::BusLost))
    );
    assert!(net.events("a").contains(&ClusterEvent::BusDown {
        error: "connection reset by peer".into(),
        failed: 1
    }));
    assert_eq!(
        net.cluster("a").send(now, sid_of("b", 1), "x".into()),
        Err(ClusterError::BusDown)
    );

    // Meanwhile the others broadcast (a misses these) and heartbeat for a minute; a keeps
    // retrying with growing delays and keeps its membership.
    let now = net.now;
    let op_b = net
        .cluster("b")
        .broadcast(now, "missed".into(), vec![])
        .unwrap();
    net.advance(Duration::from_secs(60));
    let connects = net.nodes["a"].connects;
    assert!((6..=20).contains(&connects), "{connects} attempts in 60 s");
    assert_eq!(net.members("a"), ["b", "c"]);
    // b's broadcast got c's answer and gave up on a.
    let Outcome::FanOut(fan) = net.outcome("b", op_b) else {
        panic!()
    };
    assert_eq!(fan.answers.len(), 1);
    assert_eq!(fan.failed.len(), 1);
    // Others dropped a (it stopped heartbeating): its sessions fail at once there.
    assert_eq!(net.members("b"), ["c"]);

    // The bus comes back: a reconnects by itself within the backoff cap, says hello, and
    // everyone knows everyone again.
    net.node("a").bus_ok = true;
    let back = net.now;
    net.advance(Duration::from_secs(6));
    assert_eq!(net.members("a"), ["b", "c"]);
    assert_eq!(net.members("b"), ["a", "c"]);
    let events = net.events("a");
    let outage = events
        .iter()
        .find_map(|e| match e {
            ClusterEvent::BusUp { outage } => *outage,
            _ => None,
        })
        .expect("BusUp with the outage");
    assert!(outage >= Duration::from_secs(60), "{outage:?}");
    let _ = back;
    // What a missed is reported, not hidden: b's broadcast and the heartbeats of b and c.
    let lost: u64 = events
        .iter()
        .filter_map(|e| match e {
            ClusterEvent::MessagesLost { count, .. } => Some(*count),
            _ => None,
        })
        .sum();
    // One broadcast, and about 11 heartbeats each from b and c.
    assert!(lost > 2 * 11, "lost {lost}: {events:?}");
    assert_eq!(net.nodes["a"].cluster.counters().lost, lost);

    // And it works again.
    let now = net.now;
    let op = net
        .cluster("a")
        .send(now, sid_of("b", 1), "back".into())
        .unwrap();
    net.settle();
    assert_eq!(net.outcome("a", op), Outcome::Single(Ok(Answer::Sent)));
}

#[test]
fn a_connection_attempt_that_hangs_is_dropped_and_retried() {
    let mut net = Net::new(&["a"]);
    let now = net.now;
    net.cluster("a").handle_bus_error(now, "subscription ended");
    // Connect actions from now on get no answer at all (a black-holed address).
    let mut c = net.nodes.remove("a").unwrap().cluster;
    let mut t = now;
    let mut connects = 0;
    let mut disconnects = 0;
    for _ in 0..100 {
        while let Some(a) = c.poll_action() {
            match a {
                Action::Connect => connects += 1,
                Action::Disconnect => disconnects += 1,
                _ => {}
            }
        }
        t = c
            .poll_timeout()
            .expect("always a deadline while the bus is down");
        c.handle_timeout(t);
        if connects >= 3 {
            break;
        }
    }
    assert_eq!(connects, 3);
    assert!(disconnects >= 2);
    assert!(
        t - now >= Duration::from_secs(10),
        "two connect timeouts of 5 s"
    );
}

#[test]
fn losses_on_the_direct_channel_are_counted_once_heard_again() {
    let mut net = Net::new(&["a", "b"]);
    // b's subscription silently misses messages for a moment (publishes still work).
    for i in 0..5u8 {
        let now = net.now;
        net.cluster("a")
            .send(now, sid_of("b", 1), format!("m{i}").into())
            .unwrap();
        net.drain();
        if i == 1 || i == 2 {
            net.wire.clear(); // lost in transit
        }
        net.settle();
    }
    assert_eq!(net.nodes["b"].delivered.len(), 3);
    assert_eq!(net.nodes["b"].cluster.counters().lost, 2);
    assert!(net.events("b").contains(&ClusterEvent::MessagesLost {
        from: NodeId::new("a").unwrap(),
        count: 2
    }));
}

#[test]
fn a_second_process_with_the_same_id_is_reported() {
    let mut net = Net::new(&["a", "b"]);
    net.add("a2", 50, config());
    // Rename: build a node with id "a" but another incarnation, under another key.
    let dup = Cluster::new(
        NodeId::new("a").unwrap(),
        "127.0.0.1:9",
        config(),
        net.now,
        4242,
    )
    .unwrap();
    net.node("a2").cluster = dup;
    net.settle();
    assert!(net.events("a").contains(&ClusterEvent::DuplicateNodeId {
        node: NodeId::new("a").unwrap()
    }));
}

#[test]
fn max_pending_bounds_the_waiting_operations() {
    let mut c = config();
    c.max_pending = 2;
    let mut net = Net::with_config(&["a", "b"], c);
    net.node("b").answers = false;
    let now = net.now;
    net.cluster("a").count(now).unwrap();
    net.cluster("a").count(now).unwrap();
    assert_eq!(
        net.cluster("a").count(now),
        Err(ClusterError::TooManyPending { limit: 2 })
    );
    net.advance(Duration::from_secs(3));
    let now = net.now;
    assert!(net.cluster("a").count(now).is_ok());
    assert_eq!(net.nodes["a"].cluster.pending(), 1);
    let _ = net.elapsed();
}

#[test]
fn garbage_on_the_channels_is_reported_and_ignored() {
    let mut net = Net::new(&["a", "b"]);
    let now = net.now;
    net.cluster("a").handle_bus_message(
        now,
        "engineio:all",
        &Bytes::from_static(b"hello from someone else"),
    );
    net.drain();
    assert!(
        net.events("a")
            .iter()
            .any(|e| matches!(e, ClusterEvent::Undecodable { .. }))
    );
    assert_eq!(net.members("a"), ["b"]);
}

#[test]
fn a_subscription_that_goes_silent_is_noticed_and_replaced() {
    let mut net = Net::new(&["a", "b"]);
    net.advance(Duration::from_secs(30));
    assert!(
        net.events("a")
            .iter()
            .all(|e| !matches!(e, ClusterEvent::BusDown { .. }))
    );
    let connects = net.nodes["a"].connects;
    net.node("a").deaf = true;
    net.advance(Duration::from_secs(11));
    let events = net.events("a");
    assert!(
        events.iter().any(|e| matches!(e, ClusterEvent::BusDown { error, .. } if error.contains("delivered nothing"))),
        "{events:?}"
    );
    assert!(net.nodes["a"].connects > connects);
    assert!(net.nodes["a"].disconnects >= 1);
    net.node("a").deaf = false;
    net.advance(Duration::from_secs(30));
    assert!(
        net.events("a")
            .iter()
            .all(|e| !matches!(e, ClusterEvent::BusDown { .. }))
    );
    assert_eq!(net.members("a"), ["b"]);
    assert_eq!(net.members("b"), ["a"]);
}
