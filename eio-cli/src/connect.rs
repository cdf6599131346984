//! `eio connect URL`: connect with our client, print every event with a timestamp, send
//! each line typed on stdin.
//!
//! Exit statuses: 0 when the client ended the connection as asked (stdin ended and
//! `--linger` passed, `--count` messages arrived, `:close`); 1 when the server closed the
//! session; 2 for a bad command line; 3 when the connection could not be made (refused,
//! unreachable, not an Engine.IO server); 4 when an open connection was lost (ping
//! timeout, transport closed or failed, protocol error); 5 when `--timeout` ran out first;
//! 130 on Ctrl-C.

use engineio_tokio::engineio_hyper::ws::Frame;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use engineio_hyper::client::Client;
use engineio_proto::{CloseReason, Handshake, Packet, PayloadLimits, Transport};
use engineio_tokio::{ClientEvent, ReconnectConfig};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::endpoint::ServerArgs;
use crate::input::{self, Line};
use crate::output::{Out, escape_text, fields, hex, human_duration, message_fields, message_human};
use crate::status;
use crate::tap::{Tap, Wire, WireKind};

/// Options of `eio connect`.
#[derive(Debug, Args)]
#[command(after_long_help = AFTER_HELP)]
pub(crate) struct ConnectArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// How to connect: open by long-polling and stay there, open by WebSocket, or open by
    /// long-polling and upgrade to WebSocket (what browsers do).
    #[arg(short = 't', long, value_enum, default_value_t = TransportMode::Upgrade)]
    transport: TransportMode,
    /// One JSON object per line (for scripts) instead of text.
    #[arg(long)]
    json: bool,
    /// Also print the server's pings and the client's pongs.
    #[arg(long)]
    pings: bool,
    /// Also print every HTTP request and answer and every WebSocket frame.
    #[arg(long)]
    trace: bool,
    /// Send this line first, as if typed (repeatable; commands allowed).
    #[arg(long, value_name = "LINE")]
    send: Vec<String>,
    /// Do not read stdin: only print what arrives (until the server closes, --count or
    /// --timeout).
    #[arg(long)]
    listen: bool,
    /// No line is a command: every line is sent as it is.
    #[arg(long)]
    raw: bool,
    /// Send plain lines as binary messages (their UTF-8 bytes).
    #[arg(long)]
    binary: bool,
    /// Print binary messages and traced bodies whole (default: the first 64 bytes).
    #[arg(long)]
    full: bool,
    /// Close and exit 0 once this many messages arrived.
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// Close and exit 5 after this many seconds, whatever happens.
    #[arg(long, value_name = "SECONDS")]
    timeout: Option<f64>,
    /// After stdin ends, keep printing for this long, then close (not with --count, which
    /// waits for its messages).
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0)]
    linger: f64,
    /// How long the handshake and each POST may take.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    connect_timeout: f64,
    /// Reconnect (with backoff) when the connection is lost, as socket.io-client does.
    #[arg(long)]
    reconnect: bool,
}

const AFTER_HELP: &str = "\
Lines typed on stdin are text messages; a line starting with ':' is a command:
  :text TEXT    send TEXT (for a text that starts with ':')
  :json DOC     check that DOC is JSON, send it as text
  :bin TEXT     send the UTF-8 bytes of TEXT as a binary message
  :hex 01 02 ff send these bytes as a binary message
  :b64 AQL/     send these base64 bytes as a binary message
  :sleep MS     wait before the next line
  :close        close the connection
Received JSON objects and arrays are pretty-printed; binary messages are shown in hex
(base64 in --json output).

Exit status: 0 closed as asked (stdin ended + --linger, --count reached, :close),
1 the server closed the session, 2 bad command line, 3 could not connect,
4 connection lost (ping timeout, transport error), 5 --timeout ran out, 130 Ctrl-C.

Examples:
  eio connect http://localhost:3000
  eio connect wss://example.com/socket.io/ -t websocket -H 'Authorization: Bearer abc'
  printf 'hello\\n:hex 01 02\\n' | eio connect http://localhost:3000 --json --count 2";

/// How the client connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TransportMode {
    /// Long-polling only.
    Polling,
    /// WebSocket only.
    Websocket,
    /// Long-polling, then an upgrade to WebSocket.
    Upgrade,
}

/// Runs the command; returns the exit status.
pub(crate) async fn run(args: ConnectArgs) -> u8 {
    let endpoint = match args.server.endpoint() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("eio connect: {e}");
            return status::USAGE;
        }
    };
    let durations = [
        ("--timeout", args.timeout),
        ("--linger", Some(args.linger)),
        ("--connect-timeout", Some(args.connect_timeout)),
    ];
    for (name, value) in durations {
        if let Some(v) = value
            && !(v.is_finite() && (0.0..=1e7).contains(&v))
        {
            eprintln!("eio connect: {name} must be a number of seconds, not {v}");
            return status::USAGE;
        }
    }
    if args.connect_timeout == 0.0 {
        eprintln!("eio connect: --connect-timeout must be more than 0");
        return status::USAGE;
    }
    let mut config = endpoint.config.clone();
    match args.transport {
        TransportMode::Polling => config.transports = vec![Transport::Polling],
        TransportMode::Websocket => config.transports = vec![Transport::WebSocket],
        TransportMode::Upgrade => {
            config.transports = vec![Transport::Polling, Transport::WebSocket];
        }
    }
    config.upgrade = args.transport == TransportMode::Upgrade;
    config.request_timeout = Duration::from_secs_f64(args.connect_timeout);
    if args.reconnect {
        config.reconnect = Some(ReconnectConfig::default());
    }
    let out = Out::new(args.json);
    let printer = Printer {
        out: out.clone(),
        opens_on: if args.transport == TransportMode::Websocket {
            "websocket"
        } else {
            "polling"
        },
        pings: args.pings,
        trace: args.trace,
        full: args.full,
    };
    let deadline = args
        .timeout
        .map(|s| Instant::now() + Duration::from_secs_f64(s));
    out.event(
        Instant::now(),
        "connect",
        &format!(
            "{} ({})",
            endpoint.display_url(),
            transport_mode_name(args.transport)
        ),
        fields([
            ("url", Value::from(endpoint.display_url())),
            (
                "transport",
                Value::from(transport_mode_name(args.transport)),
            ),
        ]),
    );

    let (tap, mut wire) = Tap::new();
    let connecting = Client::connect_with_tls(tap, config, endpoint.tls.clone());
    tokio::pin!(connecting);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let connected = loop {
        tokio::select! {
            result = &mut connecting => break result,
            Some(w) = wire.recv() => printer.wire(w),
            _ = &mut ctrl_c => {
                printer.error("interrupted before the connection opened");
                return status::INTERRUPTED;
            }
            _ = sleep_until(deadline) => {
                printer.error("--timeout ran out before the connection opened");
                return status::TIMEOUT;
            }
        }
    };
    let mut client = match connected {
        Ok(c) => c,
        Err(e) => {
            while let Ok(w) = wire.try_recv() {
                printer.wire(w);
            }
            printer.error(&format!(
                "cannot connect: {e} (`eio doctor {}` checks the deployment step by step)",
                args.server.url
            ));
            return status::UNREACHABLE;
        }
    };
    while let Ok(w) = wire.try_recv() {
        printer.wire(w);
    }
    printer.open(client.handshake(), false);

    // Lines: --send first, then stdin (read on a thread of its own: a blocking read
    // cannot be cancelled, and the process exits without waiting for it).
    let mut pending: VecDeque<String> = args.send.iter().cloned().collect();
    let mut lines = if args.listen {
        None
    } else {
        Some(stdin_lines())
    };
    let mode = input::Mode {
        raw: args.raw,
        binary: args.binary,
    };
    let mut received = 0u64;
    let mut closing: Option<Instant> = None;
    let mut paused: Option<Instant> = None;
    let mut linger: Option<Instant> = None;
    let mut timed_out = false;
    let mut interrupted = false;
    let mut last_reason: Option<CloseReason> = None;
    if args.count == Some(0) {
        client.close();
        closing = Some(Instant::now());
    }
    loop {
        // Lines given with --send go before stdin.
        while closing.is_none() && paused.is_none() {
            let Some(line) = pending.pop_front() else {
                break;
            };
            apply_line(&line, mode, &client, &printer, &mut paused, &mut closing);
        }
        if lines.is_none() && pending.is_empty() && linger.is_none() && !args.listen {
            // stdin ended (or --listen): linger, unless --count waits for its messages.
            if args.count.is_none() {
                linger = Some(Instant::now() + Duration::from_secs_f64(args.linger));
            } else {
                linger = Some(far_future());
            }
        }
        let reading = closing.is_none() && paused.is_none() && pending.is_empty();
        tokio::select! {
            biased;
            _ = &mut ctrl_c, if !interrupted => {
                interrupted = true;
                if closing.is_none() {
                    client.close();
                    closing = Some(Instant::now());
                }
            }
            event = client.next_event() => match event {
                None => break,
                Some(event) => {
                    while let Ok(w) = wire.try_recv() {
                        printer.wire(w);
                    }
                    if let ClientEvent::Disconnected(reason) = &event {
                        last_reason = Some(reason.clone());
                    }
                    let is_message = matches!(event, ClientEvent::Message(_));
                    printer.client_event(event);
                    if is_message {
                        received += 1;
                        if args.count.is_some_and(|n| received >= n) && closing.is_none() {
                            client.close();
                            closing = Some(Instant::now());
                        }
                    }
                }
            },
            Some(w) = wire.recv() => printer.wire(w),
            line = recv_line(&mut lines), if reading => match line {
                Some(line) => apply_line(&line, mode, &client, &printer, &mut paused, &mut closing),
                None => lines = None,
            },
            _ = sleep_until(paused), if paused.is_some() => paused = None,
            _ = sleep_until(linger), if linger.is_some() && closing.is_none() => {
                client.close();
                closing = Some(Instant::now());
            }
            _ = sleep_until(deadline), if deadline.is_some() && closing.is_none() => {
                timed_out = true;
                client.close();
                closing = Some(Instant::now());
            }
            // A close that does not end within 5 s is given up on.
            _ = sleep_until(closing.map(|t| t + Duration::from_secs(5))), if closing.is_some() => {
                printer.error("the connection did not end within 5 s of closing; exiting");
                break;
            }
        }
    }
    while let Ok(w) = wire.try_recv() {
        printer.wire(w);
    }
    if interrupted {
        return status::INTERRUPTED;
    }
    if args.count.is_some_and(|n| received >= n) {
        return status::OK;
    }
    if timed_out {
        return status::TIMEOUT;
    }
    match last_reason {
        Some(CloseReason::ClientClose) => status::OK,
        Some(CloseReason::ServerClose | CloseReason::ServerShutdown) => status::FAILED,
        _ if closing.is_some() => status::OK,
        _ => status::LOST,
    }
}

fn transport_mode_name(t: TransportMode) -> &'static str {
    match t {
        TransportMode::Polling => "polling",
        TransportMode::Websocket => "websocket",
        TransportMode::Upgrade => "upgrade",
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365)
}

/// Sleeps until `deadline`; never returns without one.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

/// Stdin, line by line, from a thread of its own.
fn stdin_lines() -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel(64);
    std::thread::spawn(move || {
        use std::io::BufRead;
        let stdin = std::io::stdin();
        for line in stdin.lock().lines() {
            let Ok(line) = line else { break };
            if tx.blocking_send(line).is_err() {
                break;
            }
        }
    });
    rx
}

async fn recv_line(lines: &mut Option<mpsc::Receiver<String>>) -> Option<String> {
    match lines {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

fn apply_line(
    line: &str,
    mode: input::Mode,
    client: &Client<Tap>,
    printer: &Printer,
    paused: &mut Option<Instant>,
    closing: &mut Option<Instant>,
) {
    let line = line.strip_suffix('\r').unwrap_or(line);
    match input::parse(line, mode) {
        Ok(Line::Send(message)) => {
            let shown = message.clone();
            match client.send(message) {
                Ok(()) => printer.sent(&shown),
                Err(e) => printer.error(&format!("not sent: {e}")),
            }
        }
        Ok(Line::Sleep(d)) => *paused = Some(Instant::now() + d),
        Ok(Line::Close) => {
            if closing.is_none() {
                client.close();
                *closing = Some(Instant::now());
            }
        }
        Ok(Line::Help) => eprintln!("{}", input::HELP),
        Err(e) => printer.error(&e),
    }
}

/// Turns client events and wire observations into output lines.
struct Printer {
    out: Out,
    /// The transport sessions open on.
    opens_on: &'static str,
    pings: bool,
    trace: bool,
    full: bool,
}

impl Printer {
    fn error(&self, text: &str) {
        self.out.event(
            Instant::now(),
            "error",
            text,
            fields([("message", Value::from(text))]),
        );
    }

    /// A session opened (on the first transport of the mode: an upgrade, reported on its
    /// own, may already have happened when this is printed).
    fn open(&self, hs: &Handshake, reconnected: bool) {
        let transport = self.opens_on;
        let upgrades: Vec<&str> = hs.upgrades.iter().map(|t| t.as_str()).collect();
        let human = format!(
            "sid={} transport={transport} upgrades=[{}] pingInterval={} pingTimeout={} maxPayload={}",
            hs.sid.as_str(),
            upgrades.join(","),
            human_duration(hs.ping_interval),
            human_duration(hs.ping_timeout),
            hs.max_payload
                .map_or_else(|| "none".to_owned(), |m| m.to_string())
        );
        let mut f = fields([
            ("sid", Value::from(hs.sid.as_str())),
            ("transport", Value::from(transport)),
            ("upgrades", Value::from(upgrades)),
            (
                "pingInterval",
                Value::from(hs.ping_interval.as_millis() as u64),
            ),
            (
                "pingTimeout",
                Value::from(hs.ping_timeout.as_millis() as u64),
            ),
            (
                "maxPayload",
                hs.max_payload.map_or(Value::Null, Value::from),
            ),
        ]);
        if reconnected {
            f.insert("reconnected".into(), Value::from(true));
        }
        self.out.event(
            Instant::now(),
            if reconnected { "reopen" } else { "open" },
            &human,
            f,
        );
    }

    fn sent(&self, message: &engineio_proto::Message) {
        self.out.event(
            Instant::now(),
            "sent",
            &message_human(message, self.full),
            message_fields(message),
        );
    }

    fn client_event(&self, event: ClientEvent) {
        let now = Instant::now();
        match event {
            ClientEvent::Message(m) => {
                self.out.event(
                    now,
                    "message",
                    &message_human(&m, self.full),
                    message_fields(&m),
                );
            }
            ClientEvent::Upgraded => self.out.event(
                now,
                "upgrade",
                "websocket",
                fields([("transport", Value::from("websocket"))]),
            ),
            ClientEvent::Disconnected(reason) => {
                let (code, text) = close_reason(&reason);
                self.out.event(
                    now,
                    "close",
                    &text,
                    fields([
                        ("reason", Value::from(code)),
                        ("message", Value::from(text.clone())),
                    ]),
                );
            }
            ClientEvent::ConnectFailed { error } => {
                self.error(&format!("connection attempt failed: {error}"));
            }
            ClientEvent::Reconnecting { attempt, delay } => self.out.event(
                now,
                "retry",
                &format!(
                    "reconnection attempt {attempt} in {}",
                    human_duration(delay)
                ),
                fields([
                    ("attempt", Value::from(attempt)),
                    ("delay_ms", Value::from(delay.as_millis() as u64)),
                ]),
            ),
            ClientEvent::Reconnected(hs) => self.open(&hs, true),
            ClientEvent::ReconnectFailed { attempts } => {
                self.error(&format!("gave up reconnecting after {attempts} attempts"));
            }
            ClientEvent::SendFailed(e) => self.error(&format!("a queued message was dropped: {e}")),
            ClientEvent::Connected(hs) => self.open(&hs, false),
            _ => {}
        }
    }

    fn wire(&self, w: Wire) {
        match w.kind {
            WireKind::Request {
                method,
                target,
                body,
            } => {
                if self.pings && method == http::Method::POST {
                    for packet in payload_packets(&body) {
                        if packet == (Packet::Pong { probe: false }) {
                            self.heartbeat(w.at, "pong", "polling");
                        }
                    }
                }
                if self.trace {
                    let mut f = fields([
                        ("dir", Value::from("out")),
                        ("method", Value::from(method.as_str())),
                        ("target", Value::from(target.clone())),
                    ]);
                    f.insert("body".into(), Value::from(String::from_utf8_lossy(&body)));
                    self.out.event(
                        w.at,
                        "http",
                        &format!("> {method} {target}{}", self.body_text(&body)),
                        f,
                    );
                }
            }
            WireKind::Response {
                method,
                target,
                status,
                body,
                sent,
            } => {
                if self.pings && method == http::Method::GET && status.is_success() {
                    for packet in payload_packets(&body) {
                        if packet == (Packet::Ping { probe: false }) {
                            self.heartbeat(w.at, "ping", "polling");
                        }
                    }
                }
                if self.trace {
                    let took = w.at.saturating_duration_since(sent);
                    let mut f = fields([
                        ("dir", Value::from("in")),
                        ("method", Value::from(method.as_str())),
                        ("target", Value::from(target.clone())),
                        ("status", Value::from(status.as_u16())),
                        ("ms", Value::from(took.as_millis() as u64)),
                    ]);
                    f.insert("body".into(), Value::from(String::from_utf8_lossy(&body)));
                    self.out.event(
                        w.at,
                        "http",
                        &format!(
                            "< {} {method} {target} ({}){}",
                            status.as_u16(),
                            human_duration(took),
                            self.body_text(&body)
                        ),
                        f,
                    );
                }
            }
            WireKind::RequestFailed {
                method,
                target,
                error,
            } => {
                if self.trace {
                    self.out.event(
                        w.at,
                        "http",
                        &format!("! {method} {target}: {error}"),
                        fields([
                            ("dir", Value::from("error")),
                            ("method", Value::from(method.as_str())),
                            ("target", Value::from(target)),
                            ("error", Value::from(error)),
                        ]),
                    );
                }
            }
            WireKind::WsConnect { uri } => {
                if self.trace {
                    self.out.event(
                        w.at,
                        "ws",
                        &format!("connect {uri}"),
                        fields([("dir", Value::from("connect")), ("uri", Value::from(uri))]),
                    );
                }
            }
            WireKind::WsConnectFailed { error } => {
                if self.trace {
                    self.out.event(
                        w.at,
                        "ws",
                        &format!("connect failed: {error}"),
                        fields([("dir", Value::from("error")), ("error", Value::from(error))]),
                    );
                }
            }
            WireKind::WsIn(m) => self.ws_frame(w.at, "in", &m),
            WireKind::WsOut(m) => self.ws_frame(w.at, "out", &m),
        }
    }

    fn ws_frame(&self, at: Instant, dir: &str, m: &Frame) {
        if self.pings
            && let Frame::Text(t) = m
        {
            match (dir, t.as_str()) {
                ("in", "2") => self.heartbeat(at, "ping", "websocket"),
                ("out", "3") => self.heartbeat(at, "pong", "websocket"),
                _ => {}
            }
        }
        if !self.trace {
            return;
        }
        let arrow = if dir == "in" { "<" } else { ">" };
        let (human, mut f) = match m {
            Frame::Text(t) => (
                format!("{arrow} text {}", self.clip(&escape_text(t.as_str()))),
                fields([
                    ("frame", Value::from("text")),
                    ("data", Value::from(t.as_str())),
                ]),
            ),
            Frame::Binary(b) => (
                format!(
                    "{arrow} binary {} bytes: {}",
                    b.len(),
                    hex(b, if self.full { None } else { Some(64) })
                ),
                fields([
                    ("frame", Value::from("binary")),
                    ("data", Value::from(crate::output::base64(b))),
                ]),
            ),
            Frame::Close(c) => (
                format!(
                    "{arrow} close {}",
                    c.as_ref()
                        .map(|c| format!("{} {}", c.code, c.reason))
                        .unwrap_or_default()
                ),
                fields([
                    ("frame", Value::from("close")),
                    (
                        "code",
                        c.as_ref().map_or(Value::Null, |c| Value::from(c.code)),
                    ),
                ]),
            ),
            Frame::Ping(_) => (
                format!("{arrow} ws-ping"),
                fields([("frame", Value::from("ping"))]),
            ),
            Frame::Pong(_) => (
                format!("{arrow} ws-pong"),
                fields([("frame", Value::from("pong"))]),
            ),
            _ => return,
        };
        f.insert("dir".into(), Value::from(dir));
        self.out.event(at, "ws", &human, f);
    }

    fn heartbeat(&self, at: Instant, kind: &str, transport: &str) {
        self.out.event(
            at,
            kind,
            &format!("({transport})"),
            fields([("transport", Value::from(transport))]),
        );
    }

    fn body_text(&self, body: &[u8]) -> String {
        if body.is_empty() {
            return String::new();
        }
        format!(
            " {} bytes: {}",
            body.len(),
            self.clip(&escape_text(&String::from_utf8_lossy(body)))
        )
    }

    fn clip(&self, s: &str) -> String {
        if self.full || s.chars().count() <= 200 {
            return s.to_owned();
        }
        let head: String = s.chars().take(200).collect();
        format!("{head}… (--full shows all)")
    }
}

/// The packets of a polling body (none when it does not decode).
fn payload_packets(body: &bytes::Bytes) -> Vec<Packet> {
    match engineio_proto::decode_payload(body.clone(), PayloadLimits::default()) {
        Ok(packets) => packets.filter_map(Result::ok).collect(),
        Err(_) => Vec::new(),
    }
}

/// A close reason as a stable code for scripts and a sentence for people.
fn close_reason(reason: &CloseReason) -> (&'static str, String) {
    let code = match reason {
        CloseReason::ServerClose => "server_close",
        CloseReason::ClientClose => "client_close",
        CloseReason::PingTimeout => "ping_timeout",
        CloseReason::TransportClose => "transport_close",
        CloseReason::TransportError(_) => "transport_error",
        CloseReason::ParseError(_) => "parse_error",
        CloseReason::PayloadTooLarge { .. } => "payload_too_large",
        CloseReason::WriteTimeout => "write_timeout",
        CloseReason::ServerShutdown => "server_shutdown",
        _ => "other",
    };
    (code, reason.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_reasons_have_stable_codes() {
        assert_eq!(close_reason(&CloseReason::ServerClose).0, "server_close");
        assert_eq!(close_reason(&CloseReason::PingTimeout).0, "ping_timeout");
        let (code, text) = close_reason(&CloseReason::TransportError(
            engineio_proto::TransportError::Aborted("connection reset"),
        ));
        assert_eq!(code, "transport_error");
        assert!(text.contains("reset"));
    }

    #[test]
    fn polling_bodies_are_read_for_heartbeats() {
        let body = bytes::Bytes::from_static(b"2\x1e4hi");
        assert_eq!(
            payload_packets(&body),
            [Packet::Ping { probe: false }, Packet::text("hi")]
        );
        assert!(payload_packets(&bytes::Bytes::from_static(b"ok")).is_empty());
    }
}
