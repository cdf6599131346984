//! `eio doctor URL`: checks a deployment the way people get it wrong, one pass/fail line
//! per check with what to change when it fails.
//!
//! The checks (see docs/operating.md for what each failure means):
//!
//! | check | what it does |
//! |---|---|
//! | `handshake` | a polling handshake: 200 and an open packet (sid, upgrades, heartbeat, maxPayload) |
//! | `cors` | with `--origin`: the preflight, the handshake, a POST and the WebSocket with that `Origin` |
//! | `polling` | round trips on one session: POSTs (with `--echo`: messages and their echoes) |
//! | `websocket` | a session opened directly by WebSocket (with `--echo`: a message round trip) |
//! | `upgrade` | polling, then the probe (`2probe`/`3probe`) and `5` on a WebSocket for the same session; the held long-poll released at once |
//! | `sticky` | `--sessions` sessions × `--round-trips` POSTs, each on a new connection, and a WebSocket upgrade each: how many reach a server that does not know the session |
//! | `long-poll` | a POST sent while a long-poll is held is answered at once (with `--echo`: so is the held long-poll); a held long-poll lasts until the server's ping, not cut short by a proxy timeout |
//! | `heartbeat` | pings arrive within the advertised `pingInterval`, on polling and on WebSocket, and pongs keep the session |
//!
//! Nothing is sent that a server could take for application data unless `--echo` is
//! given: the round trips use pongs (`3`), which every server accepts.
//!
//! Exit statuses: 0 when no check failed (warnings and skipped checks allowed), 1 when one
//! did, 2 for a bad command line, 3 when the server cannot be reached at all.

mod checks;
mod raw;

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::{Map, Value};

use crate::endpoint::ServerArgs;
use crate::output::{human_duration, println_out, round_ms};
use crate::status;

/// The checks, in report order.
pub(crate) const CHECKS: [&str; 8] = [
    "handshake",
    "cors",
    "polling",
    "websocket",
    "upgrade",
    "sticky",
    "long-poll",
    "heartbeat",
];

/// Options of `eio doctor`.
#[derive(Debug, Args)]
#[command(after_long_help = AFTER_HELP)]
pub(crate) struct DoctorArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// Check CORS for a page served from this origin (scheme://host[:port]), as a browser
    /// there would send it.
    #[arg(long, value_name = "ORIGIN")]
    origin: Option<String>,
    /// The server echoes messages back (a test or echo server): also time message round
    /// trips. Without it, no message is ever sent (only pongs), so any server is safe to
    /// check.
    #[arg(long)]
    echo: bool,
    /// Sessions the sticky check opens.
    #[arg(long, value_name = "N", default_value_t = 10)]
    sessions: usize,
    /// Requests per session in the polling and sticky checks.
    #[arg(long, value_name = "N", default_value_t = 5)]
    round_trips: usize,
    /// How long one request or connect may take, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    timeout: f64,
    /// The longest the heartbeat and long-poll checks wait, in seconds: they need
    /// pingInterval + pingTimeout (45 s with the peers' defaults).
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0)]
    max_wait: f64,
    /// Only these checks (comma-separated; the handshake always runs).
    #[arg(long, value_name = "CHECKS", value_delimiter = ',')]
    only: Vec<String>,
    /// Not these checks (comma-separated).
    #[arg(long, value_name = "CHECKS", value_delimiter = ',')]
    skip: Vec<String>,
    /// One JSON object per check (and a summary) instead of text.
    #[arg(long)]
    json: bool,
}

const AFTER_HELP: &str = "\
Checks: handshake, cors (with --origin), polling, websocket, upgrade, sticky, long-poll,
heartbeat. Each prints PASS, WARN, FAIL or SKIP with what it measured, and for a failure
what to change. docs/operating.md explains every check and failure.

Exit status: 0 no check failed, 1 a check failed, 2 bad command line, 3 server unreachable.

Examples:
  eio doctor https://example.com/socket.io/ --origin https://app.example.com
  eio doctor http://127.0.0.1:3000 --echo --sessions 20 --json";

/// A check's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Works.
    Pass,
    /// Works, with something worth knowing.
    Warn,
    /// Broken: see the fix.
    Fail,
    /// Not run (not applicable, or not asked for).
    Skip,
}

impl Verdict {
    fn label(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Warn => "WARN",
            Verdict::Fail => "FAIL",
            Verdict::Skip => "SKIP",
        }
    }
}

/// One line of the report, with what it is based on.
#[derive(Debug, Clone)]
pub(crate) struct Report {
    /// The check's name.
    pub(crate) check: &'static str,
    /// Pass, warn, fail or skip.
    pub(crate) verdict: Verdict,
    /// One sentence: what was measured, or what is wrong.
    pub(crate) summary: String,
    /// More lines (each failure's detail).
    pub(crate) details: Vec<String>,
    /// What to change, for a failure or a warning.
    pub(crate) fix: Option<String>,
    /// Figures for `--json`.
    pub(crate) data: Map<String, Value>,
}

impl Report {
    pub(crate) fn new(check: &'static str, verdict: Verdict, summary: impl Into<String>) -> Report {
        Report {
            check,
            verdict,
            summary: summary.into(),
            details: Vec::new(),
            fix: None,
            data: Map::new(),
        }
    }

    pub(crate) fn skip(check: &'static str, why: impl Into<String>) -> Report {
        Report::new(check, Verdict::Skip, why)
    }

    pub(crate) fn fix(mut self, fix: impl Into<String>) -> Report {
        self.fix = Some(fix.into());
        self
    }

    pub(crate) fn detail(mut self, d: impl Into<String>) -> Report {
        self.details.push(d.into());
        self
    }

    pub(crate) fn data(mut self, key: &str, value: impl Into<Value>) -> Report {
        self.data.insert(key.to_owned(), value.into());
        self
    }
}

/// What every check shares.
#[derive(Debug)]
pub(crate) struct Ctx {
    pub(crate) raw: raw::Raw,
    pub(crate) origin: Option<String>,
    pub(crate) echo: bool,
    pub(crate) sessions: usize,
    pub(crate) round_trips: usize,
    pub(crate) max_wait: Duration,
}

/// Runs the command; returns the exit status.
pub(crate) async fn run(args: DoctorArgs) -> u8 {
    let endpoint = match args.server.endpoint() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("eio doctor: {e}");
            return status::USAGE;
        }
    };
    if let Err(e) = validate(&args) {
        eprintln!("eio doctor: {e}");
        return status::USAGE;
    }
    let wanted = |check: &str| {
        check == "handshake"
            || ((args.only.is_empty() || args.only.iter().any(|c| c == check))
                && !args.skip.iter().any(|c| c == check))
    };
    let started = Instant::now();
    let ctx = Arc::new(Ctx {
        raw: raw::Raw::new(endpoint.clone(), Duration::from_secs_f64(args.timeout)),
        origin: args.origin.clone(),
        echo: args.echo,
        sessions: args.sessions,
        round_trips: args.round_trips,
        max_wait: Duration::from_secs_f64(args.max_wait),
    });
    let printer = ReportPrinter {
        json: args.json,
        started,
    };
    if !args.json {
        let mut header = format!("eio doctor {}", endpoint.display_url());
        let mut notes = Vec::new();
        if let Some(o) = &args.origin {
            notes.push(format!("origin {o}"));
        }
        if args.echo {
            notes.push("echo server".to_owned());
        }
        if !notes.is_empty() {
            header.push_str(&format!(" ({})", notes.join(", ")));
        }
        println_out(&header);
    }

    let (report, server) = checks::handshake(&ctx).await;
    let unreachable =
        server.is_none() && report.data.get("unreachable") == Some(&Value::Bool(true));
    let mut reports = vec![report.clone()];
    printer.print(&report);
    if let Some(server) = server {
        let server = Arc::new(server);
        if let Some(wait) = checks::slow_checks_wait(&ctx, &server)
            && wait >= Duration::from_secs(5)
            && !args.json
            && (wanted("heartbeat") || wanted("long-poll"))
        {
            eprintln!(
                "(the heartbeat and long-poll checks take up to {}: they wait for the server's pings)",
                human_duration(wait)
            );
        }
        let spawn = |name: &'static str| {
            let ctx = Arc::clone(&ctx);
            let server = Arc::clone(&server);
            let on = wanted(name);
            tokio::spawn(async move {
                if on {
                    checks::run(name, &ctx, &server).await
                } else {
                    vec![Report::skip(name, "not asked for")]
                }
            })
        };
        // Every check runs at once; the report keeps its order. The long-poll and the
        // heartbeat checks share one held session (see checks::held), so they come last.
        let mut tasks: Vec<_> = ["cors", "polling", "websocket", "upgrade", "sticky"]
            .into_iter()
            .map(spawn)
            .collect();
        tasks.push({
            let ctx = Arc::clone(&ctx);
            let server = Arc::clone(&server);
            let (long_poll, heartbeat) = (wanted("long-poll"), wanted("heartbeat"));
            tokio::spawn(async move { checks::held(&ctx, &server, long_poll, heartbeat).await })
        });
        for task in tasks {
            let results = match task.await {
                Ok(r) => r,
                Err(e) => vec![Report::new(
                    "internal",
                    Verdict::Fail,
                    format!("a check crashed: {e}"),
                )],
            };
            for r in results {
                printer.print(&r);
                reports.push(r);
            }
        }
    }
    let count = |v: Verdict| reports.iter().filter(|r| r.verdict == v).count();
    let failed = count(Verdict::Fail);
    let code = if unreachable {
        status::UNREACHABLE
    } else if failed > 0 {
        status::FAILED
    } else {
        status::OK
    };
    printer.summary(
        count(Verdict::Pass),
        failed,
        count(Verdict::Warn),
        count(Verdict::Skip),
        code,
    );
    code
}

fn validate(args: &DoctorArgs) -> Result<(), String> {
    for c in args.only.iter().chain(&args.skip) {
        if !CHECKS.contains(&c.as_str()) {
            return Err(format!(
                "unknown check {c:?}: the checks are {}",
                CHECKS.join(", ")
            ));
        }
    }
    if !(1..=1000).contains(&args.sessions) {
        return Err("--sessions must be 1..=1000".into());
    }
    if !(1..=100).contains(&args.round_trips) {
        return Err("--round-trips must be 1..=100".into());
    }
    if !(args.timeout.is_finite() && args.timeout > 0.0 && args.timeout <= 600.0) {
        return Err("--timeout must be more than 0 and at most 600 seconds".into());
    }
    if !(args.max_wait.is_finite() && args.max_wait >= 1.0 && args.max_wait <= 3600.0) {
        return Err("--max-wait must be 1..=3600 seconds".into());
    }
    if let Some(o) = &args.origin {
        let ok = (o.starts_with("http://") || o.starts_with("https://"))
            && o.parse::<http::Uri>().is_ok_and(|u| {
                u.host().is_some() && matches!(u.path(), "" | "/") && u.query().is_none()
            });
        if !ok || http::HeaderValue::from_str(o).is_err() {
            return Err(format!(
                "--origin {o:?}: expected scheme://host[:port], as a browser sends it \
                 (for example https://app.example.com)"
            ));
        }
    }
    Ok(())
}

struct ReportPrinter {
    json: bool,
    started: Instant,
}

impl ReportPrinter {
    fn print(&self, r: &Report) {
        if self.json {
            let mut obj = Map::new();
            obj.insert("check".into(), Value::from(r.check));
            obj.insert(
                "status".into(),
                Value::from(r.verdict.label().to_lowercase()),
            );
            obj.insert("summary".into(), Value::from(r.summary.clone()));
            obj.insert("details".into(), Value::from(r.details.clone()));
            obj.insert("fix".into(), r.fix.clone().map_or(Value::Null, Value::from));
            obj.insert("data".into(), Value::Object(r.data.clone()));
            println_out(&Value::Object(obj).to_string());
            return;
        }
        println_out(&format!(
            "{}  {:<10} {}",
            r.verdict.label(),
            r.check,
            r.summary
        ));
        for d in &r.details {
            println_out(&format!("      {d}"));
        }
        if let Some(fix) = &r.fix {
            println_out(&format!("      fix: {fix}"));
        }
    }

    fn summary(&self, passed: usize, failed: usize, warned: usize, skipped: usize, code: u8) {
        let took = self.started.elapsed();
        if self.json {
            let obj = serde_json::json!({
                "summary": {
                    "passed": passed,
                    "failed": failed,
                    "warnings": warned,
                    "skipped": skipped,
                    "seconds": round_ms(took.as_secs_f64()),
                    "exit": code,
                }
            });
            println_out(&obj.to_string());
        } else {
            println_out(&format!(
                "{passed} passed, {failed} failed, {warned} warnings, {skipped} skipped ({})",
                human_duration(took)
            ));
        }
    }
}
