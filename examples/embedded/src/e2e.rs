//! The interop harness's settings (tests/interop/README.md): the echo server's
//! configuration and the command-line options the e2e server and client take, so that
//! the examples join the matrix as `tests/src/bin/e2e_server.rs` and `e2e_client.rs` do.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use engineio_proto::Response;
use engineio_proto::server::{AllowedOrigins, ServerConfig};
use engineio_proto::static_files::{StaticFiles, is_inside, not_found};
use http::Method;

/// The last value given for a command-line option (`--name value`).
pub fn arg(name: &str) -> Option<String> {
    args(name).pop()
}

/// Every value given for a command-line option.
pub fn args(name: &str) -> Vec<String> {
    let all: Vec<String> = std::env::args().collect();
    all.windows(2)
        .filter(|w| w.first().is_some_and(|a| a == name))
        .filter_map(|w| w.get(1).cloned())
        .collect()
}

/// The echo server's settings: heartbeat 300 ms / 200 ms (`--ping-interval MS`,
/// `--ping-timeout MS`), the head timeout (`--head-timeout-ms MS`, default 30 s),
/// `maxPayload` 1,000,000, any origin unless `--allow-origin ORIGIN` (repeatable) lists
/// them. Exits with status 2 on a bad value.
pub fn server_config() -> ServerConfig {
    let millis = |name: &str, default: u64| match arg(name).map(|v| v.parse::<u64>()) {
        None => Duration::from_millis(default),
        Some(Ok(ms)) if ms > 0 => Duration::from_millis(ms),
        Some(_) => {
            eprintln!("{name}: expected a positive number of milliseconds");
            std::process::exit(2)
        }
    };
    let mut config = ServerConfig::default();
    config.ping_interval = millis("--ping-interval", 300);
    config.ping_timeout = millis("--ping-timeout", 200);
    config.head_timeout = millis("--head-timeout-ms", 30_000);
    config.max_payload = 1_000_000;
    let origins = args("--allow-origin");
    config.cors.origins = match origins.is_empty() {
        true => AllowedOrigins::Any,
        false => AllowedOrigins::list(origins),
    };
    config
}

/// The port: `--port N`, else `PORT`, else 3000.
pub fn port() -> u16 {
    (arg("--port").or_else(|| std::env::var("PORT").ok()))
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000)
}

/// The listening socket on 127.0.0.1:[`port`], non-blocking, with the backlog of
/// `--backlog N` (default 1024, as the bindings; std and mio would ask for 128).
pub fn listener() -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let backlog = arg("--backlog")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&std::net::SocketAddr::from(([127, 0, 0, 1], port())).into())?;
    socket.listen(backlog)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// The demo page and the engine.io-client bundle (after `demo/install.sh`).
pub fn demo_files() -> StaticFiles {
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/../../demo");
    StaticFiles::new()
        .file("/", format!("{demo}/index.html"))
        .file(
            "/engine.io.min.js",
            format!("{demo}/node_modules/engine.io-client/dist/engine.io.min.js"),
        )
}

/// Serves the [demo files](demo_files) (a blocking read: the files are small; a busy
/// server would read on another thread), or the proto's 404.
pub fn static_file(method: &Method, path: &str) -> Response {
    let readable = method == Method::GET || method == Method::HEAD;
    let Some(found) = demo_files().resolve(path).filter(|_| readable) else {
        return not_found();
    };
    // A symbolic link in a folder rule must not lead out of the folder.
    let canonical = |p: &Path| std::fs::canonicalize(p).ok();
    let inside = found.root.as_deref().is_none_or(|root| {
        matches!((canonical(root), canonical(&found.path)), (Some(r), Some(f)) if is_inside(&r, &f))
    });
    match std::fs::read(&found.path) {
        Ok(contents) if inside => found.response(method, Bytes::from(contents)),
        _ => not_found(),
    }
}
