//! The e2e server (`src/bin/e2e_server.rs`) as a child process: started on a free
//! 127.0.0.1 port, its memory and file descriptors read from `/proc`, stopped and
//! continued with signals, and killed (by its PID, and only it) when dropped.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running e2e server.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    addr: SocketAddr,
    stopped: bool,
}

/// Where the e2e server binary is: beside the running executable (a binary of this crate),
/// or one folder up (an integration test runs from `target/<profile>/deps/`).
pub fn e2e_server_path() -> PathBuf {
    let exe = std::env::current_exe().expect("the path of the running executable");
    let dir = exe.parent().expect("the executable's folder");
    for candidate in [dir.join("e2e_server"), dir.join("../e2e_server")] {
        if candidate.exists() {
            return candidate;
        }
    }
    panic!(
        "no e2e_server binary beside {}: build it (cargo build -p engineio-tests --bins)",
        exe.display()
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl ServerProcess {
    /// Starts `binary --runtime RUNTIME --port P ARGS...` and waits (10 s at most) until it
    /// accepts connections.
    pub fn start(binary: &Path, runtime: &str, args: &[&str]) -> ServerProcess {
        let port = free_port();
        let child = Command::new(binary)
            .args(["--runtime", runtime, "--port", &port.to_string()])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", binary.display()));
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut server = ServerProcess {
            child,
            addr,
            stopped: false,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return server;
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("e2e_server --runtime {runtime} exited at start: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "e2e_server --runtime {runtime} did not listen on {addr} within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} {} failed", self.pid());
    }

    /// Stops it (SIGSTOP): it accepts, reads and writes nothing until [`cont`](Self::cont).
    pub fn stop(&mut self) {
        self.signal("-STOP");
        self.stopped = true;
    }

    /// Lets it go on (SIGCONT).
    pub fn cont(&mut self) {
        self.signal("-CONT");
        self.stopped = false;
    }

    /// Its resident set size in bytes (`VmRSS` of `/proc/PID/status`).
    pub fn rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read /proc/PID/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .expect("VmRSS in /proc/PID/status")
    }

    /// How many file descriptors it has open (entries of `/proc/PID/fd`).
    pub fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .expect("read /proc/PID/fd")
            .count()
    }

    /// Whether it is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if self.stopped {
            let _ = Command::new("kill")
                .args(["-CONT", &self.pid().to_string()])
                .status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
