//! Helpers for the cluster tests: a real `redis-server` started and stopped by PID, and
//! cluster nodes on either binding.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use engineio_cluster::ClusterConfig;
use engineio_hyper::server::{Config, EngineIo, Handler, NodeSidGenerator};
use engineio_proto::NodeId;
use engineio_redis::{ClusterNode, RedisBus};

use crate::binding::Binding;

/// Where `redis-server` is: `$REDIS_SERVER`, or the Debian package's path, or `PATH`.
pub fn redis_server_binary() -> PathBuf {
    if let Ok(p) = std::env::var("REDIS_SERVER") {
        return p.into();
    }
    let debian = PathBuf::from("/usr/bin/redis-server");
    if debian.exists() {
        return debian;
    }
    "redis-server".into()
}

/// A free 127.0.0.1 port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A `redis-server` this test started on 127.0.0.1, without persistence; stopped (by its
/// PID) when dropped.
pub struct Redis {
    child: Option<Child>,
    port: u16,
}

impl Redis {
    /// Starts one on a free port and waits (at most 10 s) until it accepts connections.
    pub fn start() -> Redis {
        let mut r = Redis {
            child: None,
            port: free_port(),
        };
        r.restart();
        r
    }

    /// The URL to give the bus.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Kills the server (SIGKILL, as a crash) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port (after [`kill`](Self::kill)).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "kill it first");
        let binary = redis_server_binary();
        let child = Command::new(&binary)
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {}: {e}. Install Debian's redis-server (scripts/cluster.sh does)",
                    binary.display()
                )
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        while Instant::now() < deadline {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server did not listen on {addr} within 10 s");
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Cluster settings for tests: quick heartbeats and timeouts.
pub fn quick_cluster_config() -> ClusterConfig {
    let mut c = ClusterConfig::default();
    c.heartbeat_interval = Duration::from_millis(200);
    c.node_timeout = Duration::from_millis(1000);
    c.request_timeout = Duration::from_millis(1000);
    c.reconnect_delay = Duration::from_millis(50);
    c.reconnect_max_delay = Duration::from_millis(500);
    c
}

/// A node on binding `B`: the engine serving on a fresh port, in the cluster on `redis`.
pub fn node<B: Binding, H: Handler>(
    name: &str,
    handler: H,
    config: Config,
    redis: &Redis,
) -> (ClusterNode<H, B::Runtime>, SocketAddr) {
    let id = NodeId::new(name).expect("node id");
    let engine: EngineIo<H, B::Runtime> = EngineIo::with_sid_generator(
        B::runtime(),
        handler,
        config,
        NodeSidGenerator::new(id.clone()),
    )
    .expect("valid config");
    let addr = B::serve(engine.clone());
    let bus = RedisBus::new(&redis.url()).expect("redis url");
    let cluster = ClusterNode::start(
        engine,
        B::runtime(),
        bus,
        id,
        addr.to_string(),
        quick_cluster_config(),
    )
    .expect("cluster starts");
    (cluster, addr)
}
