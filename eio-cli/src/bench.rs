//! `eio bench URL`: the load generator of the benchmark suite (crate eio-bench) against a
//! URL. Loopback only unless `--allow-remote`.
//!
//! Exit statuses: 0 when the run completed (its `RESULT` lines printed), 1 when it failed,
//! 2 for a bad command line (including a non-loopback target without `--allow-remote`),
//! 3 when the load generator's hard timeout ended it.

use std::net::{SocketAddr, ToSocketAddrs};

use clap::Args;
use eio_bench::{Mode, Target};

use crate::status;

/// Options of `eio bench`.
#[derive(Debug, Args)]
#[command(after_long_help = AFTER_HELP)]
pub(crate) struct BenchArgs {
    /// The echo server: http:// or ws://HOST:PORT[/PATH] (default path /engine.io/).
    #[arg(value_name = "URL")]
    url: String,
    /// What to measure: echo, poll, upgrade, conns or broadcast.
    #[arg(short, long, default_value = "echo", value_parser = parse_mode)]
    mode: Mode,
    /// Allow a target that is not on this machine. Load only servers you run.
    #[arg(long)]
    allow_remote: bool,
    /// The mode's options, passed to the load generator (see below).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "OPTIONS"
    )]
    options: Vec<String>,
}

const AFTER_HELP: &str = "\
The server must echo every message back (broadcast also needs the __broadcast__<payload>
contract of bench/README.md): our bench and e2e servers and the interop peers do.

Modes and their options (after the URL and --mode):
  echo       --clients 100 --size 32 --window 10 --batch 10 --binary --duration 8 --warmup 1
  poll       --clients 50 --size 32 --binary --duration 8 --warmup 1
  upgrade    --clients 20 --size 32 --messages 10 --duration 5 --warmup 1
  conns      --server-pid PID --steps 1000,5000,10000 --settle 3 --hold 0 --connect-concurrency 100
  broadcast  --clients 1000 --size 32 --window 1 --duration 5 --rounds N --warmup-rounds 5
  every mode --server-pid PID (server CPU and memory from /proc) --label NAME --threads 1
             --hard-timeout 300
Each run prints `RESULT mode=... key=value ...` lines (for scripts) and a line for people.
Measured phases are capped at 120 s; the process exits after --hard-timeout seconds
whatever happens. Plain HTTP and WebSocket only (no TLS).

Examples:
  eio bench http://127.0.0.1:3000 --mode echo --clients 50 --duration 5
  eio bench http://127.0.0.1:3000/socket.io/ --mode poll --clients 10";

fn parse_mode(s: &str) -> Result<Mode, String> {
    s.parse()
}

/// Where `url` points, checked: plain HTTP or WebSocket, resolved, loopback unless
/// `allow_remote`.
fn target(url: &str, allow_remote: bool) -> Result<Target, String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("invalid URL {url:?}: {e}"))?;
    match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
        Some("http" | "ws") => {}
        Some("https" | "wss") => {
            return Err(
                "the load generator speaks plain HTTP and WebSocket only (its hot paths are \
                 written for speed, without TLS): bench the server's plain port, or a TLS \
                 terminator's upstream"
                    .into(),
            );
        }
        Some(other) => {
            return Err(format!(
                "unsupported URL scheme {other:?}: use http:// or ws://"
            ));
        }
        None => return Err(format!("{url:?} has no scheme: use http://HOST:PORT")),
    }
    let authority = uri
        .authority()
        .ok_or_else(|| format!("{url:?} has no host"))?;
    if uri.query().is_some() {
        return Err(
            "the load generator sends no extra query parameters: drop the URL's query".into(),
        );
    }
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = authority.port_u16().unwrap_or(80);
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .collect();
    let addr = addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(|| format!("{host} resolves to no address"))?;
    if !allow_remote && !addr.ip().is_loopback() {
        return Err(format!(
            "refusing to load {host} ({}): not on this machine. Load only servers you run; \
             --allow-remote lifts this",
            addr.ip()
        ));
    }
    let path = match uri.path() {
        "" | "/" => "/engine.io/",
        p => p,
    };
    Ok(Target::new(addr, authority.as_str(), path))
}

/// Runs the command; returns the exit status.
pub(crate) fn run(args: BenchArgs) -> u8 {
    for option in &args.options {
        if matches!(option.as_str(), "--host" | "--port" | "--path") {
            eprintln!("eio bench: {option}: give the host, port and path in the URL");
            return status::USAGE;
        }
    }
    let target = match target(&args.url, args.allow_remote) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("eio bench: {e}");
            return status::USAGE;
        }
    };
    let options = match eio_bench::Args::parse(&args.options, args.mode.options()) {
        Ok(o) => o,
        Err(e) => {
            eprintln!(
                "eio bench --mode {}: {e} (eio help bench lists the options)",
                args.mode
            );
            return status::USAGE;
        }
    };
    match eio_bench::run(args.mode, &options, target) {
        Ok(()) => status::OK,
        Err(e) => {
            eprintln!("eio bench --mode {}: {e}", args.mode);
            status::FAILED
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_only_unless_allowed() {
        let t = target("http://127.0.0.1:3000", false).unwrap();
        assert_eq!(t.path(), "/engine.io/");
        let t = target("ws://localhost:3001/socket.io", false).unwrap();
        assert_eq!(t.path(), "/socket.io/");
        let e = target("http://10.1.2.3:3000", false).unwrap_err();
        assert!(e.contains("--allow-remote"), "{e}");
        assert!(target("http://10.1.2.3:3000", true).is_ok());
        assert!(
            target("https://127.0.0.1:3000", false)
                .unwrap_err()
                .contains("TLS")
        );
        assert!(target("http://127.0.0.1:3000/?a=1", false).is_err());
        assert!(target("127.0.0.1:3000", false).is_err());
    }
}
