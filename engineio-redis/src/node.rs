//! [`ClusterNode`]: one server process taking part in a cluster, and its driver (a short
//! loop around [`engineio_cluster::Cluster`]).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use engineio_cluster::{
    Action, Answer, Cluster, ClusterConfig, ClusterConfigError, ClusterError, ClusterEvent,
    Command, Counters, FanOut, NotSent, OpId, Outcome, Owner,
};
use engineio_hyper::server::{EngineIo, Handler, SessionRouter};
use engineio_hyper::{Runtime, Timer};
use engineio_proto::{Message, NodeId, SendError, Sid};
use futures_core::Stream;
use futures_util::task::AtomicWaker;
use tokio::sync::{broadcast, oneshot};

use crate::bus::{Bus, BusError, BusPublisher};

/// How long [`ClusterNode::drain`] waits for the goodbye to be published.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(2);
/// Cluster events kept for slow readers of [`ClusterNode::events`].
const EVENT_BUFFER: usize = 1024;

/// [`ClusterNode::send`] failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterSendError {
    /// The session is this node's and refused the message (closed, queue full...); the
    /// message is handed back.
    #[error(transparent)]
    Local(#[from] SendError),
    /// The owner answered that it did not queue the message.
    #[error("the owner did not queue the message: {0:?}")]
    NotSent(NotSent),
    /// The cluster could not deliver the request or its answer.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

/// A cluster-wide answer that some nodes did not give: the part that came, and the nodes
/// that failed and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} node(s) did not answer: {failed:?}", failed.len())]
pub struct Incomplete<T> {
    /// What the other nodes (and this one) answered.
    pub partial: T,
    /// The nodes that did not, and why.
    pub failed: Vec<(NodeId, ClusterError)>,
}

/// What [`ClusterNode::broadcast`] reached.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BroadcastReport {
    /// Sessions of this node the message was queued on.
    pub local: usize,
    /// Sessions of other nodes the message was queued on (as they answered).
    pub remote: usize,
    /// The other nodes that answered.
    pub nodes: Vec<NodeId>,
    /// The nodes that did not (their sessions may or may not have it), and why; with the
    /// bus down, every member with [`ClusterError::BusDown`].
    pub failed: Vec<(NodeId, ClusterError)>,
}

/// What [`ClusterNode::drain`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrainReport {
    /// Sessions closed (with `ServerShutdown`, WebSocket close code 1001).
    pub closed: usize,
    /// Sessions still open when `shutdown_timeout` passed.
    pub still_open: usize,
    /// Whether the goodbye reached the bus (otherwise the others drop this node after
    /// `node_timeout`).
    pub left: bool,
}

/// [`ClusterNode::start`] failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The cluster configuration cannot work.
    #[error(transparent)]
    Config(#[from] ClusterConfigError),
    /// The engine already forwards to another cluster.
    #[error("this EngineIo already has a session router (a cluster was started on it before)")]
    AlreadyClustered,
}

struct Inner<H: Handler, R: Runtime> {
    machine: Arc<Mutex<Cluster>>,
    engine: EngineIo<H, R>,
    runtime: R,
    waiters: Mutex<HashMap<OpId, oneshot::Sender<Outcome>>>,
    events: broadcast::Sender<ClusterEvent>,
    wakeup: Wakeup,
    finished: AtomicBool,
    finished_waker: AtomicWaker,
    draining: Arc<AtomicBool>,
}

impl<H: Handler, R: Runtime> Inner<H, R> {
    fn machine(&self) -> MutexGuard<'_, Cluster> {
        self.machine.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One node of a cluster: the local [`EngineIo`] plus cluster-wide operations over a
/// [`Bus`] (Redis: [`RedisBus`](crate::RedisBus)), the membership, forwarding of requests
/// for other nodes' sessions, and a graceful [`drain`](Self::drain). Cheap to clone.
///
/// The engine must issue sids that name this node: build it with
/// [`NodeSidGenerator`](engineio_hyper::server::NodeSidGenerator) for the same
/// [`NodeId`].
pub struct ClusterNode<H: Handler, R: Runtime> {
    inner: Arc<Inner<H, R>>,
}

impl<H: Handler, R: Runtime> Clone for ClusterNode<H, R> {
    fn clone(&self) -> Self {
        ClusterNode {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<H: Handler, R: Runtime> std::fmt::Debug for ClusterNode<H, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterNode")
            .field("machine", &*self.inner.machine())
            .finish_non_exhaustive()
    }
}

struct Router {
    machine: Arc<Mutex<Cluster>>,
    node: String,
    draining: Arc<AtomicBool>,
    next: AtomicUsize,
}

impl SessionRouter for Router {
    fn owner_address(&self, sid: &Sid) -> Option<String> {
        let machine = self.machine.lock().unwrap_or_else(|e| e.into_inner());
        match machine.owner(sid) {
            Owner::Remote(m) => Some(m.address().to_owned()),
            _ => None,
        }
    }

    fn handshake_address(&self) -> Option<String> {
        if !self.draining.load(Ordering::SeqCst) {
            return None;
        }
        let machine = self.machine.lock().unwrap_or_else(|e| e.into_inner());
        let n = machine.members().count();
        if n == 0 {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % n;
        machine.members().nth(i).map(|m| m.address().to_owned())
    }

    fn node_name(&self) -> &str {
        &self.node
    }
}

impl<H: Handler, R: Runtime> ClusterNode<H, R> {
    /// Joins the cluster as `node`, reachable by the other nodes at `advertise` (the
    /// `host:port` of this process's HTTP server on the internal network), and starts the
    /// driver on the engine's runtime. It connects to the bus in the background (and
    /// reconnects by itself); until then cluster operations fail with
    /// [`ClusterError::BusDown`] while local ones work.
    pub fn start<B: Bus>(
        engine: EngineIo<H, R>,
        runtime: R,
        bus: B,
        node: NodeId,
        advertise: impl Into<String>,
        config: ClusterConfig,
    ) -> Result<Self, StartError> {
        let now = runtime.now();
        let incarnation = getrandom::u64().unwrap_or(0x1234_5678_9abc_def0) | 1;
        let machine = Cluster::new(node.clone(), advertise, config, now, incarnation)?;
        let machine = Arc::new(Mutex::new(machine));
        let draining = Arc::new(AtomicBool::new(false));
        let router = Router {
            machine: Arc::clone(&machine),
            node: node.to_string(),
            draining: Arc::clone(&draining),
            next: AtomicUsize::new(0),
        };
        if !engine.set_router(Arc::new(router)) {
            return Err(StartError::AlreadyClustered);
        }
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let inner = Arc::new(Inner {
            machine,
            engine,
            runtime: runtime.clone(),
            waiters: Mutex::new(HashMap::new()),
            events,
            wakeup: Wakeup::default(),
            finished: AtomicBool::new(false),
            finished_waker: AtomicWaker::new(),
            draining,
        });
        let driver = Driver::<H, R, B> {
            inner: Arc::clone(&inner),
            bus,
            connecting: None,
            publisher: None,
            subscription: None,
            publishing: None,
            outbox: Vec::new(),
            timer: None,
            deadline: None,
        };
        runtime.spawn(driver);
        Ok(ClusterNode { inner })
    }

    /// The local engine.
    pub fn engine(&self) -> &EngineIo<H, R> {
        &self.inner.engine
    }

    /// This node's id.
    pub fn node(&self) -> NodeId {
        self.inner.machine().node().clone()
    }

    /// The live members (this node excluded) and their internal addresses.
    pub fn members(&self) -> Vec<(NodeId, String)> {
        self.inner
            .machine()
            .members()
            .map(|m| (m.node().clone(), m.address().to_owned()))
            .collect()
    }

    /// Whether the bus is connected.
    pub fn is_bus_up(&self) -> bool {
        self.inner.machine().is_bus_up()
    }

    /// The bus counters (messages, losses, timeouts...).
    pub fn counters(&self) -> Counters {
        self.inner.machine().counters()
    }

    /// The cluster's events from now on (nodes up and down, bus down and up, messages
    /// lost...). A reader that falls more than 1,024 events behind misses the oldest
    /// (and is told so by the channel).
    pub fn events(&self) -> broadcast::Receiver<ClusterEvent> {
        self.inner.events.subscribe()
    }

    /// Sends `message` to the session `sid`, wherever it lives. A session of this node is
    /// served directly (never through the bus); another node's through the bus, resolved
    /// when the owner answered (the message is then queued on the session) or failed.
    pub async fn send(
        &self,
        sid: Sid,
        message: impl Into<Message>,
    ) -> Result<(), ClusterSendError> {
        let message = message.into();
        if self.is_local(&sid) {
            return Ok(self.inner.engine.send(sid, message)?);
        }
        let outcome = self.request(|m, now| m.send(now, sid, message))?.await;
        match single(outcome)? {
            Answer::Sent => Ok(()),
            Answer::NotSent(why) => Err(ClusterSendError::NotSent(why)),
            _ => Err(ClusterSendError::NotSent(NotSent::Refused)),
        }
    }

    /// Closes the session `sid`, wherever it lives; true if it existed.
    pub async fn close(&self, sid: Sid) -> Result<bool, ClusterError> {
        if self.is_local(&sid) {
            return Ok(self.inner.engine.close(sid));
        }
        let outcome = self.request(|m, now| m.close(now, sid))?.await;
        match single(outcome)? {
            Answer::Closed(existed) => Ok(existed),
            _ => Ok(false),
        }
    }

    /// Sends `message` to every session of every live node except the sessions in
    /// `except`: this node's directly, the others' through one bus message. Resolves once
    /// every node answered, went down or `request_timeout` passed.
    pub async fn broadcast(&self, message: impl Into<Message>, except: &[Sid]) -> BroadcastReport {
        let message = message.into();
        let local = deliver_local(&self.inner.engine, &message, except);
        let mut report = BroadcastReport {
            local,
            ..BroadcastReport::default()
        };
        let pending = self.request(|m, now| m.broadcast(now, message, except.to_vec()));
        let fan = match pending {
            Ok(rx) => fan_out(rx.await),
            Err(e) => FanOut {
                answers: Vec::new(),
                failed: self
                    .members()
                    .into_iter()
                    .map(|(n, _)| (n, e.clone()))
                    .collect(),
            },
        };
        for (node, answer) in fan.answers {
            if let Answer::Delivered(n) = answer {
                report.remote += n as usize;
            }
            report.nodes.push(node);
        }
        report.failed = fan.failed;
        report
    }

    /// How many sessions the whole cluster has. Nodes that do not answer make it
    /// [`Incomplete`], with the count of those that did.
    pub async fn count(&self) -> Result<usize, Incomplete<usize>> {
        let local = self.inner.engine.count();
        let fan = self.fan(|m, now| m.count(now)).await;
        let mut total = local;
        for (_, a) in &fan.answers {
            if let Answer::Count(n) = a {
                total += *n as usize;
            }
        }
        complete(total, fan.failed)
    }

    /// Every session id in the cluster. Nodes that do not answer make it [`Incomplete`].
    pub async fn sids(&self) -> Result<Vec<Sid>, Incomplete<Vec<Sid>>> {
        let mut all: Vec<Sid> = self
            .inner
            .engine
            .sockets()
            .iter()
            .map(|s| s.sid())
            .collect();
        let fan = self.fan(|m, now| m.sids(now)).await;
        for (_, a) in fan.answers {
            if let Answer::Sids(s) = a {
                all.extend(s);
            }
        }
        complete(all, fan.failed)
    }

    /// Gracefully takes this node out: new handshakes go to other live nodes (or get 503
    /// when there is none), every session is closed with `ServerShutdown` (WebSocket
    /// close code 1001; clients with reconnection reconnect, through the balancer, to the
    /// others), and once they are closed (or `shutdown_timeout` passed) the node leaves
    /// the membership and its driver stops. The caller exits afterwards.
    pub async fn drain(&self) -> DrainReport {
        self.inner.draining.store(true, Ordering::SeqCst);
        let before = self.inner.engine.count();
        let still_open = self.inner.engine.shutdown().await;
        let left = {
            let mut m = self.inner.machine();
            let up = m.is_bus_up();
            m.leave(self.inner.runtime.now());
            up
        };
        self.inner.wakeup.wake();
        let deadline = self.inner.runtime.now() + LEAVE_TIMEOUT;
        let mut timer = self.inner.runtime.timer(deadline);
        std::future::poll_fn(|cx| {
            self.inner.finished_waker.register(cx.waker());
            if self.inner.finished.load(Ordering::SeqCst) {
                return Poll::Ready(());
            }
            timer.poll_expired(cx)
        })
        .await;
        DrainReport {
            closed: before.saturating_sub(still_open),
            still_open,
            left: left && self.inner.finished.load(Ordering::SeqCst),
        }
    }

    fn is_local(&self, sid: &Sid) -> bool {
        let machine = self.inner.machine();
        match machine.owner(sid) {
            Owner::Local => true,
            // A sid of no node can only be ours (a single server's), if anyone's.
            Owner::NotRoutable => true,
            _ => false,
        }
    }

    /// Starts an operation on the machine and registers for its outcome (under the
    /// machine's lock, so that the driver cannot complete it first).
    fn request(
        &self,
        start: impl FnOnce(&mut Cluster, Instant) -> Result<OpId, ClusterError>,
    ) -> Result<impl Future<Output = Outcome>, ClusterError> {
        let (tx, rx) = oneshot::channel();
        {
            let mut machine = self.inner.machine();
            let op = start(&mut machine, self.inner.runtime.now())?;
            self.inner
                .waiters
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(op, tx);
        }
        self.inner.wakeup.wake();
        Ok(async move { rx.await.unwrap_or(Outcome::Single(Err(ClusterError::Left))) })
    }

    async fn fan(
        &self,
        start: impl FnOnce(&mut Cluster, Instant) -> Result<OpId, ClusterError>,
    ) -> FanOut {
        match self.request(start) {
            Ok(rx) => fan_out(rx.await),
            Err(e) => FanOut {
                answers: Vec::new(),
                failed: self
                    .members()
                    .into_iter()
                    .map(|(n, _)| (n, e.clone()))
                    .collect(),
            },
        }
    }
}

fn complete<T>(value: T, failed: Vec<(NodeId, ClusterError)>) -> Result<T, Incomplete<T>> {
    if failed.is_empty() {
        Ok(value)
    } else {
        Err(Incomplete {
            partial: value,
            failed,
        })
    }
}

fn single(outcome: Outcome) -> Result<Answer, ClusterError> {
    match outcome {
        Outcome::Single(r) => r,
        Outcome::FanOut(_) => Err(ClusterError::Left),
    }
}

fn fan_out(outcome: Outcome) -> FanOut {
    match outcome {
        Outcome::FanOut(f) => f,
        // The machine only ends fan-outs with a FanOut; an unanswerable one is empty.
        Outcome::Single(_) => FanOut::default(),
    }
}

fn deliver_local<H: Handler, R: Runtime>(
    engine: &EngineIo<H, R>,
    message: &Message,
    except: &[Sid],
) -> usize {
    let except: HashSet<&Sid> = except.iter().collect();
    engine
        .sockets()
        .iter()
        .filter(|s| !except.contains(&s.sid()))
        .filter(|s| s.send(message.clone()).is_ok())
        .count()
}

fn execute<H: Handler, R: Runtime>(engine: &EngineIo<H, R>, command: Command) -> Answer {
    match command {
        Command::Send { sid, message } => match engine.send(sid, message) {
            Ok(()) => Answer::Sent,
            Err(SendError::Closed(_)) => Answer::NotSent(NotSent::NoSession),
            Err(SendError::QueueFull { .. }) => Answer::NotSent(NotSent::QueueFull),
            Err(_) => Answer::NotSent(NotSent::Refused),
        },
        Command::Close { sid } => Answer::Closed(engine.close(sid)),
        Command::Broadcast { message, except } => {
            Answer::Delivered(deliver_local(engine, &message, &except) as u64)
        }
        Command::Count => Answer::Count(engine.count() as u64),
        Command::Sids => Answer::Sids(engine.sockets().iter().map(|s| s.sid()).collect()),
        _ => Answer::NotSent(NotSent::Refused),
    }
}

fn log_event(event: &ClusterEvent, node: &NodeId) {
    match event {
        ClusterEvent::BusUp { outage } => {
            tracing::info!(%node, ?outage, "cluster bus up")
        }
        ClusterEvent::BusDown { error, failed } => {
            tracing::warn!(%node, %error, failed, "cluster bus down; reconnecting")
        }
        ClusterEvent::NodeUp {
            node: other,
            address,
        } => {
            tracing::info!(%node, peer = %other, %address, "cluster node up")
        }
        ClusterEvent::NodeDown {
            node: other,
            reason,
            failed,
        } => tracing::warn!(%node, peer = %other, ?reason, failed, "cluster node down"),
        ClusterEvent::MessagesLost { from, count } => {
            tracing::warn!(%node, %from, count, "cluster messages lost")
        }
        ClusterEvent::DuplicateNodeId { node: dup } => {
            tracing::error!(%node, duplicate = %dup, "another process uses this node id")
        }
        other => tracing::debug!(%node, event = ?other, "cluster event"),
    }
}

// ------------------------------------------------------------------ the driver

#[derive(Default)]
struct Wakeup {
    waker: AtomicWaker,
    pending: AtomicBool,
}

impl Wakeup {
    fn wake(&self) {
        self.pending.store(true, Ordering::SeqCst);
        self.waker.wake();
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type Connecting<B> = BoxFuture<Result<(<B as Bus>::Publisher, <B as Bus>::Subscription), BusError>>;
type Publishing<B> = BoxFuture<(<B as Bus>::Publisher, Result<(), BusError>)>;

struct Driver<H: Handler, R: Runtime, B: Bus> {
    inner: Arc<Inner<H, R>>,
    bus: B,
    connecting: Option<Connecting<B>>,
    publisher: Option<B::Publisher>,
    subscription: Option<B::Subscription>,
    publishing: Option<Publishing<B>>,
    outbox: Vec<(String, Bytes)>,
    timer: Option<R::Timer>,
    deadline: Option<Instant>,
}

impl<H: Handler, R: Runtime, B: Bus> Driver<H, R, B> {
    fn now(&self) -> Instant {
        self.inner.runtime.now()
    }

    fn disconnect(&mut self) {
        self.connecting = None;
        self.publisher = None;
        self.subscription = None;
        self.publishing = None;
        self.outbox.clear();
    }

    fn bus_error(&mut self, error: BusError) {
        self.disconnect();
        let now = self.now();
        self.inner.machine().handle_bus_error(now, error.0);
    }

    /// Runs the machine's actions until it has none.
    fn drain_actions(&mut self) -> bool {
        let mut progress = false;
        loop {
            let actions: Vec<Action> = {
                let mut m = self.inner.machine();
                std::iter::from_fn(|| m.poll_action()).take(256).collect()
            };
            if actions.is_empty() {
                return progress;
            }
            progress = true;
            let mut replies = Vec::new();
            for action in actions {
                match action {
                    Action::Connect => {
                        let channels = {
                            let m = self.inner.machine();
                            m.channels().iter().map(|c| (*c).to_owned()).collect()
                        };
                        self.disconnect();
                        self.connecting = Some(Box::pin(self.bus.connect(channels)));
                    }
                    Action::Disconnect => {
                        // After a goodbye, the connection goes once it is published (see
                        // `poll`); otherwise at once.
                        if !self.inner.machine().has_left() {
                            self.disconnect();
                        }
                    }
                    Action::Publish { channel, payload } => self.outbox.push((channel, payload)),
                    Action::Execute { ticket, command } => {
                        replies.push((ticket, execute(&self.inner.engine, command)));
                    }
                    Action::Complete { op, outcome } => {
                        let tx = self
                            .inner
                            .waiters
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .remove(&op);
                        if let Some(tx) = tx {
                            let _ = tx.send(outcome);
                        }
                    }
                    Action::Event(event) => {
                        let node = self.inner.machine().node().clone();
                        log_event(&event, &node);
                        let _ = self.inner.events.send(event);
                    }
                }
            }
            if !replies.is_empty() {
                let now = self.now();
                let mut m = self.inner.machine();
                for (ticket, answer) in replies {
                    m.reply(now, ticket, answer);
                }
            }
        }
    }

    fn poll_bus(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progress = false;
        if let Some(connecting) = &mut self.connecting
            && let Poll::Ready(result) = connecting.as_mut().poll(cx)
        {
            progress = true;
            self.connecting = None;
            match result {
                Ok((publisher, subscription)) => {
                    self.publisher = Some(publisher);
                    self.subscription = Some(subscription);
                    let now = self.now();
                    self.inner.machine().handle_bus_connected(now);
                }
                Err(e) => self.bus_error(e),
            }
        }
        if self.publishing.is_none()
            && !self.outbox.is_empty()
            && let Some(publisher) = self.publisher.take()
        {
            let batch = std::mem::take(&mut self.outbox);
            self.publishing = Some(Box::pin(publisher.publish(batch)));
        }
        if let Some(publishing) = &mut self.publishing
            && let Poll::Ready((publisher, result)) = publishing.as_mut().poll(cx)
        {
            progress = true;
            self.publishing = None;
            match result {
                Ok(()) => self.publisher = Some(publisher),
                Err(e) => self.bus_error(e),
            }
        }
        let mut received = 0;
        while let Some(sub) = &mut self.subscription {
            match Pin::new(sub).poll_next(cx) {
                Poll::Pending => break,
                Poll::Ready(Some(Ok(m))) => {
                    progress = true;
                    let now = self.now();
                    self.inner
                        .machine()
                        .handle_bus_message(now, &m.channel, &m.payload);
                    received += 1;
                    if received >= 256 {
                        // Let the actions run (and others have a turn); come back at once.
                        cx.waker().wake_by_ref();
                        break;
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    progress = true;
                    self.bus_error(e);
                }
                Poll::Ready(None) => {
                    progress = true;
                    self.bus_error(BusError(
                        "the Redis subscription ended (connection lost)".into(),
                    ));
                }
            }
        }
        progress
    }

    fn poll_timer(&mut self, cx: &mut Context<'_>) -> bool {
        let deadline = self.inner.machine().poll_timeout();
        let Some(deadline) = deadline else {
            self.deadline = None;
            return false;
        };
        let now = self.now();
        if now >= deadline {
            self.deadline = None;
            self.inner.machine().handle_timeout(now);
            return true;
        }
        if self.deadline != Some(deadline) || self.timer.is_none() {
            self.deadline = Some(deadline);
            match &mut self.timer {
                Some(t) => t.reset(deadline),
                None => self.timer = Some(self.inner.runtime.timer(deadline)),
            }
        }
        if let Some(t) = &mut self.timer
            && t.poll_expired(cx).is_ready()
        {
            self.deadline = None;
            let now = self.now();
            self.inner.machine().handle_timeout(now);
            return true;
        }
        false
    }
}

// Nothing in the driver relies on being pinned: the futures it holds are boxed.
impl<H: Handler, R: Runtime, B: Bus> Unpin for Driver<H, R, B> {}

impl<H: Handler, R: Runtime, B: Bus> Future for Driver<H, R, B> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        this.inner.wakeup.waker.register(cx.waker());
        for _ in 0..64 {
            this.inner.wakeup.pending.store(false, Ordering::SeqCst);
            let mut progress = this.drain_actions();
            progress |= this.poll_bus(cx);
            progress |= this.drain_actions();
            progress |= this.poll_timer(cx);
            let left = this.inner.machine().has_left();
            if left && this.outbox.is_empty() && this.publishing.is_none() {
                this.disconnect();
                this.inner.finished.store(true, Ordering::SeqCst);
                this.inner.finished_waker.wake();
                // Whatever still waits can never be answered now.
                this.inner
                    .waiters
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clear();
                return Poll::Ready(());
            }
            if !progress && !this.inner.wakeup.pending.load(Ordering::SeqCst) {
                return Poll::Pending;
            }
        }
        // Busy: yield, and come back.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
