//! The `tracing` span per session (issue 16, item 1): every log line of a server session
//! (the handler's included) carries its sid, on both bindings; the client runs each
//! session in a span with its sid; and the span costs no allocation per message.
//!
//! The subscriber is the process's global one (the drivers run on other threads), and
//! every test picks out its own session by sid.
#![allow(missing_docs, clippy::disallowed_methods)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use engineio_hyper::Runtime;
use engineio_hyper::client::{Client, ClientConfig};
use engineio_hyper::server::{Config, ConnectRequest, EngineIo, Handler, Rejection, Socket};
use engineio_proto::{Message, Transport};
use engineio_tests::binding::{Binding, SmolBinding, TokioBinding, engine};
use engineio_tests::net::{WsMessage, next, sid_of, wait_until, ws_connect};
use engineio_tests::virtual_rt::{VirtualRuntime, connect};
use futures_util::{SinkExt, StreamExt};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{Layer, filter::LevelFilter};

// ------------------------------------------------------------------ counting allocator

/// Counts the allocations made on each thread (the virtual-runtime test runs the server
/// on its own thread, so its count is the server's).
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded to the system allocator unchanged; the counter is a
// thread-local `Cell` that needs no allocation.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` above, that is from the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: as for `dealloc` and `alloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

// ------------------------------------------------------------------ capturing layer

/// What the subscriber saw: spans (name, sid) and events (message, the sid of the span
/// they were logged in).
#[derive(Debug, Default)]
struct Captured {
    spans: Vec<(String, Option<String>)>,
    events: Vec<(String, Option<String>)>,
}

#[derive(Default)]
struct Fields {
    message: Option<String>,
    sid: Option<String>,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => self.message = Some(format!("{value:?}")),
            "sid" => self.sid = Some(format!("{value:?}")),
            _ => {}
        }
    }
}

/// The sid a span was created with (in the span's extensions).
struct SidOf(String);

struct Capture(Arc<Mutex<Captured>>);

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let (Some(sid), Some(span)) = (&fields.sid, ctx.span(id)) {
            span.extensions_mut().insert(SidOf(sid.clone()));
        }
        let name = attrs.metadata().name().to_owned();
        self.0.lock().unwrap().spans.push((name, fields.sid));
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let sid = ctx.event_scope(event).and_then(|scope| {
            scope
                .into_iter()
                .find_map(|span| span.extensions().get::<SidOf>().map(|s| s.0.clone()))
        });
        let message = fields.message.unwrap_or_default();
        self.0.lock().unwrap().events.push((message, sid));
    }
}

/// The global subscriber (INFO and above), installed once.
fn captured() -> &'static Arc<Mutex<Captured>> {
    static CAPTURED: OnceLock<Arc<Mutex<Captured>>> = OnceLock::new();
    CAPTURED.get_or_init(|| {
        let captured = Arc::new(Mutex::new(Captured::default()));
        let subscriber = tracing_subscriber::registry()
            .with(Capture(captured.clone()).with_filter(LevelFilter::INFO));
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
        captured
    })
}

fn events_with(text: &str) -> Vec<(String, Option<String>)> {
    let c = captured().lock().unwrap();
    c.events
        .iter()
        .filter(|(m, _)| m.contains(text))
        .cloned()
        .collect()
}

// ------------------------------------------------------------------ the server's span

/// Logs every message it receives, and echoes it.
struct LoggingEcho;

impl Handler for LoggingEcho {
    type Data = ();
    async fn on_connect(&self, _: &ConnectRequest<'_>) -> Result<(), Rejection> {
        Ok(())
    }
    fn on_message(&self, socket: &Socket<()>, message: Message) {
        if let Some(text) = message.as_text() {
            tracing::info!("handler got {text}");
        }
        let _ = socket.send(message);
    }
}

async fn the_handlers_log_lines_carry_the_sid<B: Binding>() {
    captured();
    let engine = engine::<B, _>(LoggingEcho, Config::default());
    let addr = B::serve(engine.clone());
    let mut sids = Vec::new();
    let mut sockets = Vec::new();
    for i in 0..2 {
        let mut ws = ws_connect(addr, "").await;
        let open = next(&mut ws)
            .await
            .expect("open packet")
            .into_text()
            .unwrap();
        let sid = sid_of(open.as_bytes());
        let text = format!("{}-{i}", B::NAME);
        ws.send(WsMessage::text(format!("4{text}"))).await.unwrap();
        assert_eq!(
            next(&mut ws).await,
            Some(WsMessage::text(format!("4{text}")))
        );
        assert_eq!(
            events_with(&format!("handler got {text}")),
            [(format!("handler got {text}"), Some(sid.clone()))]
        );
        sids.push(sid);
        sockets.push(ws);
    }
    assert_ne!(sids[0], sids[1]);
    // The span, entered elsewhere (work done for a session outside its callbacks).
    let socket = engine.socket(sids[1].parse().unwrap()).expect("live");
    let marker = format!("{} job for the second session", B::NAME);
    socket.span().in_scope(|| tracing::info!("{marker}"));
    assert_eq!(
        events_with(&marker),
        [(marker.clone(), Some(sids[1].clone()))]
    );
    let spans = captured().lock().unwrap().spans.clone();
    for sid in &sids {
        assert!(
            spans.contains(&("engineio_session".into(), Some(sid.clone()))),
            "no span for {sid}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_the_handlers_log_lines_carry_the_sid() {
    the_handlers_log_lines_carry_the_sid::<TokioBinding>().await;
}

#[tokio::test]
async fn smol_the_handlers_log_lines_carry_the_sid() {
    the_handlers_log_lines_carry_the_sid::<SmolBinding>().await;
}

// ------------------------------------------------------------------ the client's span

async fn the_client_runs_each_session_in_a_span_with_its_sid<C: Runtime>(runtime: C) {
    captured();
    let engine = engine::<TokioBinding, _>(LoggingEcho, Config::default());
    let addr = TokioBinding::serve(engine);
    let mut config = ClientConfig::new(&format!("http://{addr}")).unwrap();
    config.transports = vec![Transport::WebSocket];
    let mut client =
        tokio::time::timeout(Duration::from_secs(10), Client::connect(runtime, config))
            .await
            .expect("in time")
            .expect("connected");
    let sid = client.sid().expect("a session").to_string();
    client.send("ping me back").unwrap();
    assert!(
        tokio::time::timeout(Duration::from_secs(10), client.recv())
            .await
            .expect("in time")
            .is_some()
    );
    wait_until(|| {
        captured()
            .lock()
            .unwrap()
            .spans
            .contains(&("engineio_client_session".into(), Some(sid.clone())))
    })
    .await;
    drop(client);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tokio_client_runs_each_session_in_a_span_with_its_sid() {
    the_client_runs_each_session_in_a_span_with_its_sid(engineio_tokio::Tokio).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_smol_client_runs_each_session_in_a_span_with_its_sid() {
    the_client_runs_each_session_in_a_span_with_its_sid(engineio_smol::Smol).await;
}

// ------------------------------------------------------------------ no allocation per message

struct Echo;

impl Handler for Echo {
    type Data = ();
    async fn on_connect(&self, _: &ConnectRequest<'_>) -> Result<(), Rejection> {
        Ok(())
    }
    fn on_message(&self, socket: &Socket<()>, message: Message) {
        let _ = socket.send(message);
    }
}

/// Allocations on this thread while a WebSocket session (in virtual time, all on this
/// thread) echoes `n` messages.
async fn allocations_for(n: usize) -> u64 {
    let runtime = VirtualRuntime {
        clock: engineio_tests::virtual_rt::ManualClock::new(),
    };
    let engine: EngineIo<Echo, VirtualRuntime> =
        EngineIo::new(runtime, Echo, Config::default()).expect("config");
    let pipe = connect(&engine, 64 * 1024);
    let (mut ws, _) = tokio_tungstenite::client_async(
        "ws://localhost/engine.io/?EIO=4&transport=websocket",
        pipe,
    )
    .await
    .expect("handshake");
    ws.next().await.expect("open").expect("open");
    // A first round trip, so that every buffer on the way exists.
    ws.send(WsMessage::text("4warm")).await.unwrap();
    ws.next().await.expect("echo").expect("echo");
    let before = allocations();
    for _ in 0..n {
        ws.send(WsMessage::text("4hello")).await.unwrap();
        let echo = ws.next().await.expect("echo").expect("echo");
        assert_eq!(echo, WsMessage::text("4hello"));
    }
    allocations() - before
}

#[tokio::test(flavor = "current_thread")]
async fn the_session_span_costs_no_allocation_per_message() {
    captured();
    const N: usize = 500;
    // Warm-up: whatever is allocated once per process.
    allocations_for(N).await;
    // The span disabled (no subscriber on this thread), then enabled (the global
    // subscriber: the driver enters its session's span on every wake-up).
    let without = {
        let _none = tracing::subscriber::set_default(tracing::subscriber::NoSubscriber::default());
        allocations_for(N).await
    };
    let spans_before = captured().lock().unwrap().spans.len();
    let with = allocations_for(N).await;
    assert!(
        captured().lock().unwrap().spans.len() > spans_before,
        "the span was enabled"
    );
    println!("allocations for {N} echoed messages: {without} without the span, {with} with it");
    // One allocation per message would be N more; the span's own cost is per session.
    assert!(
        with <= without + (N as u64) / 10,
        "{with} allocations with the span against {without} without, for {N} messages"
    );
}
