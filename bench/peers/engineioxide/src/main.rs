//! engineioxide peer for the engineio-rs benchmark: an echo server with the settings every
//! benchmarked server shares (path `/engine.io/`, ping 25 s / 20 s, max payload 1e6,
//! polling and WebSocket), in axum, on 127.0.0.1:$PORT (default 3000).
//!
//! Every message is sent back unchanged, except the text `__broadcast__<payload>`, which
//! sends `<payload>` to every live session. engineioxide has no public list of sessions, so
//! the handler keeps one (added in `on_connect`, removed in `on_disconnect`).
//!
//! `THREADS` = tokio worker threads (default 1: a current-thread runtime), as our servers.
//! `EIO_MAX_BUFFER` = engineioxide's per-socket outgoing queue (default 1024 here, as the
//! anchor harness: at the crate's default of 128 a client with 10 messages in flight and a
//! ping can overflow it and `emit` fails).
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use engineioxide::config::EngineIoConfig;
use engineioxide::handler::EngineIoHandler;
use engineioxide::layer::EngineIoLayer;
use engineioxide::sid::Sid;
use engineioxide::{DisconnectReason, Socket, Str};

/// The handler (cloned by engineioxide's layer: the session list is shared).
#[derive(Debug, Default, Clone)]
struct Echo {
    sessions: Arc<Mutex<HashMap<Sid, Arc<Socket<()>>>>>,
}

impl EngineIoHandler for Echo {
    type Data = ();

    fn on_connect(self: Arc<Self>, socket: Arc<Socket<()>>) {
        self.sessions.lock().unwrap().insert(socket.id, socket);
    }

    fn on_disconnect(&self, socket: Arc<Socket<()>>, _reason: DisconnectReason) {
        self.sessions.lock().unwrap().remove(&socket.id);
    }

    fn on_message(self: &Arc<Self>, msg: Str, socket: Arc<Socket<()>>) {
        if let Some(payload) = msg.as_str().strip_prefix("__broadcast__") {
            let payload = Str::from(payload.to_owned());
            let sockets: Vec<_> = self.sessions.lock().unwrap().values().cloned().collect();
            for s in sockets {
                let _ = s.emit(payload.clone());
            }
        } else {
            let _ = socket.emit(msg);
        }
    }

    fn on_binary(self: &Arc<Self>, data: Bytes, socket: Arc<Socket<()>>) {
        let _ = socket.emit_binary(data);
    }
}

fn main() {
    let port: u16 = env_or("PORT", 3000);
    let threads: usize = env_or("THREADS", 1);
    let max_buffer: usize = env_or("EIO_MAX_BUFFER", 1024);
    let runtime = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads);
        b
    }
    .enable_all()
    .build()
    .expect("tokio runtime");
    runtime.block_on(async move {
        let config = EngineIoConfig::builder()
            .req_path("/engine.io")
            .ping_interval(Duration::from_secs(25))
            .ping_timeout(Duration::from_secs(20))
            .max_payload(1_000_000)
            .max_buffer_size(max_buffer)
            .build();
        let app = axum::Router::new().layer(EngineIoLayer::from_config(
            Arc::new(Echo::default()),
            config,
        ));
        use axum::serve::ListenerExt;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind 127.0.0.1:$PORT")
            .tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
        eprintln!("engineioxide 0.17.9 echo on 127.0.0.1:{port} (threads={threads})");
        axum::serve(listener, app).await.expect("serve");
    });
}

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
