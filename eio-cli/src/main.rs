//! `eio`: a command-line Engine.IO v4 client, built on engineio-rs.
//!
//! ```text
//! eio connect URL    connect (polling, WebSocket or upgrade), print every event with a
//!                    timestamp, send each line typed on stdin
//! eio doctor URL     check a deployment: handshake, CORS, polling, WebSocket, upgrade,
//!                    heartbeat, long-polls through proxies, sticky sessions
//! eio bench URL      load an echo server (the eio-bench modes), loopback only unless
//!                    --allow-remote
//! ```
//!
//! `eio help COMMAND` lists the options; docs/operating.md in the repository explains each
//! command, the doctor's checks and the exit statuses.
// The doc comments of the clap types are the command's help text, printed as written:
// `HOST[:PORT]` and bare URLs there are for the terminal, not rustdoc links.
#![allow(rustdoc::broken_intra_doc_links, rustdoc::bare_urls)]

mod bench;
mod connect;
mod doctor;
mod endpoint;
mod input;
mod output;
mod tap;

use clap::{Parser, Subcommand};

/// Exit statuses shared by the commands (each command documents its own).
pub(crate) mod status {
    /// Done as asked.
    pub(crate) const OK: u8 = 0;
    /// `connect`: the server closed the session. `doctor`: a check failed. `bench`: the
    /// run failed.
    pub(crate) const FAILED: u8 = 1;
    /// Bad command line (clap uses it too).
    pub(crate) const USAGE: u8 = 2;
    /// The server could not be reached, or refused the connection.
    pub(crate) const UNREACHABLE: u8 = 3;
    /// `connect`: the connection was lost (ping timeout, transport error...).
    pub(crate) const LOST: u8 = 4;
    /// `connect`: `--timeout` ran out first.
    pub(crate) const TIMEOUT: u8 = 5;
    /// Interrupted (Ctrl-C).
    pub(crate) const INTERRUPTED: u8 = 130;
}

#[derive(Debug, Parser)]
#[command(
    name = "eio",
    version,
    about = "A command-line Engine.IO v4 client: connect, diagnose a deployment, load-test",
    long_about = "A command-line Engine.IO v4 client (engine.io 4+, Socket.IO 3+, python-engineio 4+).\n\n\
                  eio connect URL   talk to a server from a terminal or a script\n\
                  eio doctor URL    check a deployment the way people get it wrong\n\
                  eio bench URL     load an echo server (loopback only unless --allow-remote)\n\n\
                  The URL is http://, https://, ws:// or wss://; its path is the Engine.IO path \
                  (default /engine.io/; Socket.IO servers use /socket.io/)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Connect, print every event with a timestamp, send each line typed on stdin.
    Connect(connect::ConnectArgs),
    /// Check a deployment: handshake, CORS, polling, WebSocket, upgrade, heartbeat,
    /// long-polls through proxies, sticky sessions.
    Doctor(doctor::DoctorArgs),
    /// Load an echo server with the eio-bench modes (echo, poll, upgrade, conns, broadcast).
    Bench(bench::BenchArgs),
}

fn main() {
    let cli = Cli::parse();
    let code = match cli.command {
        // The load generator builds its own runtime (its thread count is an option).
        Command::Bench(args) => bench::run(args),
        command => match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime.block_on(async move {
                match command {
                    Command::Connect(args) => connect::run(args).await,
                    Command::Doctor(args) => doctor::run(args).await,
                    Command::Bench(_) => status::USAGE,
                }
            }),
            Err(e) => {
                eprintln!("eio: cannot start the runtime: {e}");
                status::FAILED
            }
        },
    };
    // The stdin reader thread may still be blocked in a read: exit without waiting for it.
    output::flush();
    std::process::exit(i32::from(code))
}
