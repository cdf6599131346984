//! Command-line options: `--key value` pairs and bare `--flag`s, checked against the
//! options the chosen mode knows, and the loopback target they describe.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

/// The longest measured phase any mode runs for.
pub(crate) const MAX_DURATION: f64 = 120.0;

/// Options every mode accepts.
pub(crate) const COMMON: &[&str] = &[
    "host",
    "port",
    "path",
    "server-pid",
    "server-pids",
    "label",
    "threads",
    "hard-timeout",
];

/// The options of one run: `--key value` pairs and bare `--flag`s, each checked against
/// the options its mode knows.
#[derive(Debug)]
pub struct Args {
    values: HashMap<String, String>,
}

impl Args {
    /// Parses `--key value` / `--flag` pairs, refusing options that neither `known` (a
    /// mode's own, see [`Mode::options`](crate::Mode::options)) nor the options every
    /// mode takes list.
    ///
    /// ```
    /// use eio_bench::{Args, Mode};
    ///
    /// let argv: Vec<String> = ["--clients", "10", "--binary"].map(String::from).into();
    /// assert!(Args::parse(&argv, Mode::Echo.options()).is_ok());
    /// assert!(Args::parse(&argv, Mode::Conns.options()).is_err()); // conns has no --clients
    /// ```
    pub fn parse(argv: &[String], known: &[&str]) -> Result<Args, String> {
        let mut values = HashMap::new();
        let mut i = 0;
        while i < argv.len() {
            let key = argv[i]
                .strip_prefix("--")
                .ok_or_else(|| format!("expected --option, got {:?}", argv[i]))?;
            if !known.contains(&key) && !COMMON.contains(&key) {
                return Err(format!("unknown option --{key}"));
            }
            let value = match argv.get(i + 1) {
                Some(v) if !v.starts_with("--") => {
                    i += 1;
                    v.clone()
                }
                _ => "true".to_owned(),
            };
            values.insert(key.to_owned(), value);
            i += 1;
        }
        Ok(Args { values })
    }

    /// The value of `--key` parsed as `T`, or `default` when absent.
    pub(crate) fn get<T: FromStr>(&self, key: &str, default: T) -> Result<T, String> {
        match self.values.get(key) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| format!("--{key}: cannot parse {v:?}")),
        }
    }

    /// Whether the bare flag `--key` was given.
    pub(crate) fn flag(&self, key: &str) -> bool {
        self.values
            .get(key)
            .is_some_and(|v| v != "false" && v != "0")
    }

    /// The value of `--key` as a string, or `default`.
    pub(crate) fn string(&self, key: &str, default: &str) -> String {
        self.values
            .get(key)
            .cloned()
            .unwrap_or_else(|| default.to_owned())
    }

    /// A duration option in seconds, capped at [`MAX_DURATION`].
    pub(crate) fn seconds(&self, key: &str, default: f64) -> Result<Duration, String> {
        let s: f64 = self.get(key, default)?;
        if s.is_nan() || s < 0.0 {
            return Err(format!("--{key} must be a non-negative number of seconds"));
        }
        Ok(Duration::from_secs_f64(s.min(MAX_DURATION)))
    }

    /// `--server-pid`, if given.
    pub(crate) fn server_pid(&self) -> Result<Option<u32>, String> {
        match self.values.get("server-pid") {
            None => Ok(None),
            Some(_) => self.get("server-pid", 0u32).map(Some),
        }
    }

    /// The processes whose CPU counts as the server's: `--server-pid` and the
    /// comma-separated `--server-pids` (the nodes of a cluster and its balancer).
    pub(crate) fn server_pids(&self) -> Result<Vec<u32>, String> {
        let mut pids: Vec<u32> = self.server_pid()?.into_iter().collect();
        if let Some(list) = self.values.get("server-pids") {
            for p in list.split(',').filter(|p| !p.is_empty()) {
                pids.push(
                    p.parse()
                        .map_err(|_| format!("--server-pids: cannot parse {p:?}"))?,
                );
            }
        }
        Ok(pids)
    }

    /// `--label`, for the RESULT line (spaces replaced so the line stays `key=value`).
    pub(crate) fn label(&self) -> String {
        self.string("label", "-").replace(char::is_whitespace, "_")
    }
}

/// Where the server under test listens.
///
/// [`Target::from_args`] takes loopback addresses only (the `eio-bench` binary);
/// [`Target::new`] takes any address, for a caller that has checked it (the `eio bench`
/// command's `--allow-remote`).
#[derive(Debug, Clone)]
pub struct Target {
    /// The socket address to connect to.
    pub(crate) addr: SocketAddr,
    /// The `Host` header value.
    pub(crate) host: String,
    /// The Engine.IO path, with its trailing slash (`/engine.io/`).
    pub(crate) path: String,
    /// Whether WebSockets offer permessage-deflate (`--deflate`).
    pub(crate) deflate: bool,
}

impl Target {
    /// A target at `addr`, sending `host` as the `Host` header, with the Engine.IO `path`
    /// (a leading and a trailing `/` are added when missing).
    ///
    /// ```
    /// use eio_bench::Target;
    ///
    /// let t = Target::new("127.0.0.1:3000".parse().unwrap(), "localhost:3000", "socket.io");
    /// assert_eq!(t.path(), "/socket.io/");
    /// ```
    pub fn new(addr: SocketAddr, host: impl Into<String>, path: &str) -> Target {
        Target {
            addr,
            host: host.into(),
            path: normalize_path(path),
            deflate: false,
        }
    }

    /// The same target with WebSockets that offer permessage-deflate (RFC 7692) without
    /// context takeover on either side, and compress what they send from 1024 bytes up
    /// (Node's `ws` threshold).
    pub fn with_deflate(mut self, deflate: bool) -> Target {
        self.deflate = deflate;
        self
    }

    /// The Engine.IO path, with its leading and trailing slashes.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The target named by `--host` (default 127.0.0.1), `--port` (3000) and `--path`
    /// (`/engine.io/`). Anything but a loopback address is refused.
    pub fn from_args(args: &Args) -> Result<Target, String> {
        let host = args.string("host", "127.0.0.1");
        let ip: IpAddr = if host == "localhost" {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .parse()
                .map_err(|_| format!("--host must be an IP address or localhost, got {host:?}"))?
        };
        if !ip.is_loopback() {
            return Err(format!(
                "refusing non-loopback target {ip}: this tool only loads servers on this machine"
            ));
        }
        let port: u16 = args.get("port", 3000)?;
        let addr = SocketAddr::new(ip, port);
        Ok(
            Target::new(addr, addr.to_string(), &args.string("path", "/engine.io/"))
                .with_deflate(args.flag("deflate")),
        )
    }

    /// The request target of a WebSocket connection (`sid` for an upgrade).
    pub(crate) fn ws_uri(&self, sid: Option<&str>) -> String {
        match sid {
            Some(sid) => format!("{}?EIO=4&transport=websocket&sid={sid}", self.path),
            None => format!("{}?EIO=4&transport=websocket", self.path),
        }
    }

    /// The request target of a polling request (`None` for the handshake).
    pub(crate) fn poll_uri(&self, sid: Option<&str>) -> String {
        match sid {
            Some(sid) => format!("{}?EIO=4&transport=polling&sid={sid}", self.path),
            None => format!("{}?EIO=4&transport=polling", self.path),
        }
    }
}

/// `path` with a leading and a trailing `/`.
fn normalize_path(path: &str) -> String {
    let mut path = path.to_owned();
    if !path.starts_with('/') {
        path.insert(0, '/');
    }
    if !path.ends_with('/') {
        path.push('/');
    }
    path
}

/// Parses a comma-separated list of counts (`1000,5000,10000`).
pub(crate) fn parse_steps(s: &str) -> Result<Vec<usize>, String> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            p.trim()
                .parse()
                .map_err(|_| format!("--steps: cannot parse {p:?}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Result<Args, String> {
        let v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
        Args::parse(&v, &["clients", "binary"])
    }

    #[test]
    fn parses_values_and_flags() {
        let a = args(&["--clients", "7", "--binary", "--port", "3100"]).unwrap();
        assert_eq!(a.get("clients", 1usize).unwrap(), 7);
        assert!(a.flag("binary"));
        assert_eq!(Target::from_args(&a).unwrap().addr.port(), 3100);
    }

    #[test]
    fn refuses_unknown_options_and_remote_hosts() {
        assert!(args(&["--nope", "1"]).is_err());
        let a = args(&["--host", "10.0.0.1"]).unwrap();
        assert!(Target::from_args(&a).is_err());
        let a = args(&["--host", "::1"]).unwrap();
        assert!(Target::from_args(&a).is_ok());
    }

    #[test]
    fn caps_durations() {
        let v: Vec<String> = ["--duration", "1000"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let a = Args::parse(&v, &["duration"]).unwrap();
        assert_eq!(a.seconds("duration", 1.0).unwrap().as_secs(), 120);
    }
}
