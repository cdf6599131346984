//! `eio-bench`: the load generator of the engineio-rs benchmark suite, as a binary and
//! as the library behind the `eio bench` command (crate `eio-cli`). It speaks
//! Engine.IO v4 itself (hand-written WebSocket frames and HTTP/1.1 on the hot paths) so
//! that it is not the bottleneck, and loads any Engine.IO v4 server on this machine.
//!
//! ```text
//! eio-bench echo      [--clients 100] [--size 32] [--window 10] [--batch 10] [--binary]
//!                     [--duration 8] [--warmup 1]
//! eio-bench poll      [--clients 50] [--size 32] [--binary] [--duration 8] [--warmup 1]
//! eio-bench upgrade   [--clients 20] [--size 32] [--messages 10] [--duration 5] [--warmup 1]
//! eio-bench conns     --server-pid PID [--steps 1000,5000,10000] [--settle 3] [--hold 0]
//!                     [--connect-concurrency 100]
//! eio-bench broadcast [--clients 1000] [--size 32] [--window 1] [--duration 5]
//!                     [--rounds N] [--warmup-rounds 5]
//! common:             [--host 127.0.0.1] [--port 3000] [--path /engine.io/]
//!                     [--server-pid PID] [--server-pids PID,PID..] [--label NAME]
//!                     [--threads 1] [--hard-timeout S]
//! ```
//!
//! `--batch` is how many free slots of the window trigger a refill: the window size (the
//! default) waits for the whole batch to return, 1 is a sliding window.
//!
//! Every run prints one or more `RESULT mode=... key=value ...` lines (machine readable)
//! each followed by a human line. The binary's targets must be loopback addresses (`eio
//! bench --allow-remote` can lift that for a server the user runs); measured phases are
//! capped at 120 s and the process exits on its own after `--hard-timeout` seconds (default
//! 300, at most 600) whatever happens. Server CPU and memory come from `/proc/PID/stat`
//! and `/proc/PID/status` of `--server-pid`; `--server-pids` adds the CPU of more
//! processes (the nodes of a cluster and its balancer).
//!
//! Every mode needs a server that echoes each message back (`broadcast` also needs the
//! `__broadcast__<payload>` contract of `bench/README.md`), as the benchmark servers, the
//! e2e test server and the interop peers do.
//!
//! # As a library
//!
//! [`run`] performs one run of a [`Mode`] against a [`Target`] and prints its `RESULT`
//! lines; [`Target::from_args`] keeps to loopback addresses, [`Target::new`] takes any
//! address the caller has decided to allow.
//!
//! ```no_run
//! use eio_bench::{Args, Mode, Target};
//!
//! let argv: Vec<String> = ["--clients", "10", "--duration", "2"].map(String::from).into();
//! let args = Args::parse(&argv, Mode::Echo.options())?;
//! let target = Target::new("127.0.0.1:3000".parse().unwrap(), "127.0.0.1:3000", "/engine.io/");
//! eio_bench::run(Mode::Echo, &args, target)?;
//! # Ok::<(), String>(())
//! ```

mod broadcast;
mod cli;
mod conns;
mod echo;
mod metrics;
mod poll;
mod report;
mod upgrade;
mod wire;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

pub use cli::{Args, Target};

/// One line of usage, for error messages.
pub const USAGE: &str = "usage: eio-bench <echo|poll|upgrade|conns|broadcast> [--option value]... \
                         (see the crate documentation or docs/benchmarks.md)";

/// What a run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// WebSocket clients, each keeping a window of messages in flight: echoes per second
    /// and round-trip latency.
    Echo,
    /// Long-polling clients (POST a message, GET until its echo): round trips per second.
    Poll,
    /// Sessions opened by polling and upgraded to WebSocket: upgrades per second.
    Upgrade,
    /// Idle WebSocket connections opened stepwise: the server's memory per connection and
    /// whether every session is pinged on time (needs `--server-pid`).
    Conns,
    /// One sender, many receivers (`__broadcast__<payload>`): fan-out latency.
    Broadcast,
}

impl Mode {
    /// Every mode, in the order of the usage line.
    pub const ALL: [Mode; 5] = [
        Mode::Echo,
        Mode::Poll,
        Mode::Upgrade,
        Mode::Conns,
        Mode::Broadcast,
    ];

    /// The mode's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Echo => "echo",
            Mode::Poll => "poll",
            Mode::Upgrade => "upgrade",
            Mode::Conns => "conns",
            Mode::Broadcast => "broadcast",
        }
    }

    /// The options this mode takes besides the common ones (`--server-pid`, `--label`,
    /// `--threads`, `--hard-timeout`, and `--host`, `--port`, `--path` for
    /// [`Target::from_args`]).
    pub fn options(self) -> &'static [&'static str] {
        match self {
            Mode::Echo => echo::OPTIONS,
            Mode::Poll => poll::OPTIONS,
            Mode::Upgrade => upgrade::OPTIONS,
            Mode::Conns => conns::OPTIONS,
            Mode::Broadcast => broadcast::OPTIONS,
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Mode {
    type Err = String;

    fn from_str(s: &str) -> Result<Mode, String> {
        Mode::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                format!("unknown mode {s:?}: use echo, poll, upgrade, conns or broadcast")
            })
    }
}

/// Runs `mode` against `target` with `args`, printing its `RESULT` lines to stdout, on a
/// runtime of `--threads` threads (default 1: a current-thread runtime).
///
/// The process exits (status 3) after `--hard-timeout` seconds (default 300, at most 600)
/// whatever happens, so a server that stops answering cannot hold it: call this from a
/// process of its own (a command-line tool), not from a long-running program.
pub fn run(mode: Mode, args: &Args, target: Target) -> Result<(), String> {
    let threads: usize = args.get("threads", 1usize)?;
    let hard = args.get("hard-timeout", 300.0f64)?.clamp(1.0, 600.0);
    // Whatever happens (a server that stops answering...), the process ends.
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs_f64(hard));
        eprintln!("eio-bench: hard timeout of {hard} s reached, exiting");
        std::process::exit(3);
    });
    let runtime = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    };
    let runtime = runtime.map_err(|e| format!("cannot start the runtime: {e}"))?;
    let result = runtime.block_on(async {
        match mode {
            Mode::Echo => echo::run(args, target).await,
            Mode::Poll => poll::run(args, target).await,
            Mode::Upgrade => upgrade::run(args, target).await,
            Mode::Conns => conns::run(args, target).await,
            Mode::Broadcast => broadcast::run(args, target).await,
        }
    });
    // Leftover tasks (connections closing) are not waited for.
    runtime.shutdown_timeout(Duration::from_millis(100));
    result
}
