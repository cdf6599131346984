//! `eio-bench`: the load generator of the engineio-rs benchmark suite. It speaks
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
//!                     [--server-pid PID] [--label NAME] [--threads 1] [--hard-timeout S]
//! ```
//!
//! `--batch` is how many free slots of the window trigger a refill: the window size (the
//! default) waits for the whole batch to return, 1 is a sliding window.
//!
//! Every run prints one or more `RESULT mode=... key=value ...` lines (machine readable)
//! each followed by a human line. Targets must be loopback addresses; measured phases are
//! capped at 120 s and the process exits on its own after `--hard-timeout` seconds (default
//! 300, at most 600) whatever happens. Server CPU and memory come from `/proc/PID/stat`
//! and `/proc/PID/status` of `--server-pid`.

mod broadcast;
mod cli;
mod conns;
mod echo;
mod metrics;
mod poll;
mod report;
mod upgrade;
mod wire;

use std::process::ExitCode;
use std::time::Duration;

use cli::Args;

const USAGE: &str = "usage: eio-bench <echo|poll|upgrade|conns|broadcast> [--option value]... \
                     (see the crate documentation or docs/benchmarks.md)";

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let Some(mode) = argv.first().map(String::as_str) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let options = match mode {
        "echo" => echo::OPTIONS,
        "poll" => poll::OPTIONS,
        "upgrade" => upgrade::OPTIONS,
        "conns" => conns::OPTIONS,
        "broadcast" => broadcast::OPTIONS,
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        other => {
            eprintln!("unknown mode {other:?}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let args = match Args::parse(&argv[1..], options) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("eio-bench {mode}: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let (threads, hard) = match (
        args.get("threads", 1usize),
        args.get("hard-timeout", 300.0f64),
    ) {
        (Ok(t), Ok(h)) => (t, h.clamp(1.0, 600.0)),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("eio-bench {mode}: {e}");
            return ExitCode::from(2);
        }
    };
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
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => {
            eprintln!("eio-bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match mode {
            "echo" => echo::run(&args).await,
            "poll" => poll::run(&args).await,
            "upgrade" => upgrade::run(&args).await,
            "conns" => conns::run(&args).await,
            _ => broadcast::run(&args).await,
        }
    });
    // Leftover tasks (connections closing) are not waited for.
    runtime.shutdown_timeout(Duration::from_millis(100));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("eio-bench {mode}: {e}");
            ExitCode::FAILURE
        }
    }
}
