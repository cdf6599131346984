#!/usr/bin/env python3
"""The eio command-line tool's tests, against real servers and real nginx.

    tests/cli/run.py --eio target/debug/eio --e2e-server target/debug/e2e_server

What runs (every server on 127.0.0.1, started here and stopped by its PID):

  * `eio connect` against our e2e server (tokio and smol), Node's engine.io and
    python-engineio (tests/interop/node-server.js, python-server.py): every transport
    (polling, websocket, upgrade) with text, binary and JSON messages; pings and pongs;
    the server closing the session; the exit statuses.
  * `eio doctor --echo --origin ...` against each of them: every check passes.
  * `eio doctor` against three broken setups, each with a control that passes:
      1. nginx round-robin over two independent backends, no stickiness
         (tests/cli/nginx/round-robin.conf): the sticky check fails; with ip_hash
         (sticky.conf) it passes;
      2. nginx with a read timeout (500 ms) below the backend's pingInterval (2 s)
         (timeout.conf): the long-poll check fails; the backend alone passes;
      3. a server that accepts only https://good.example: the CORS check fails for
         https://evil.example and passes for https://good.example.
  * `eio connect` against a Node server that closes idle kept-alive connections (5 s)
    between two messages (tests/cli/slow-ping-server.js, pingInterval 8 s).
  * `eio bench` (echo and poll modes) against our server.

Needs the interop peers (tests/interop/install.sh) and nginx (scripts/cli.sh installs
both). Every wait is bounded; the whole run is capped at --total-timeout seconds.
Prints one line per case, then `cli: N passed, M failed`; exits non-zero on any failure.
Logs: target/cli-tests/ (server logs, and each eio run's output).
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
INTEROP = ROOT / "tests" / "interop"
VENV_PY = INTEROP / ".venv" / "bin" / "python"
LOGS = ROOT / "target" / "cli-tests"

# Messages sent by the connect cases, and what must come back.
TEXT = "hello €😀"
BINARY_HEX = "00 01 fe ff"
BINARY_B64 = "AAH+/w=="
JSON_DOC = {"a": [1, 2], "b": "x"}


def log(msg):
    print(msg, flush=True)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    """A process this script started, as the leader of a new session, stopped by its PID
    (SIGTERM to its group, a bounded wait, then SIGKILL)."""

    def __init__(self, name, argv, cwd=ROOT, env=None):
        self.name = name
        self.log_path = LOGS / f"{name}.log"
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True, env=dict(os.environ, **(env or {})))

    def stop(self):
        if self.proc.poll() is None:
            for sig, wait_s in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
                try:
                    os.killpg(self.proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(timeout=wait_s)
                    break
                except subprocess.TimeoutExpired:
                    continue
        self.log.close()

    def tail(self, n=10):
        try:
            lines = self.log_path.read_text("utf-8", "replace").splitlines()
        except OSError:
            return ""
        return "\n".join("      | " + line for line in lines[-n:])


def wait_ready(proc, port, timeout_s=20.0):
    """Bounded: a polling handshake on 127.0.0.1:port answered with an open packet."""
    url = f"http://127.0.0.1:{port}/engine.io/?EIO=4&transport=polling"
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.proc.poll() is not None:
            return f"{proc.name} exited with status {proc.proc.returncode}\n{proc.tail()}"
        try:
            with urllib.request.urlopen(url, timeout=1.0) as r:
                body = r.read(4096).decode("utf-8", "replace")
                if r.status == 200 and body.startswith("0{"):
                    return None
                last = f"HTTP {r.status} {body[:80]!r}"
        except (urllib.error.URLError, OSError, ValueError) as e:
            last = str(e)
        time.sleep(0.1)
    return f"{proc.name}: no handshake on 127.0.0.1:{port} within {timeout_s:.0f} s ({last})\n{proc.tail()}"


class Runner:
    def __init__(self, args):
        self.eio = str(Path(args.eio).resolve())
        self.e2e = str(Path(args.e2e_server).resolve())
        self.nginx = args.nginx
        self.deadline = time.monotonic() + args.total_timeout
        self.only = set(filter(None, args.only.split(","))) if args.only else None
        self.passed = 0
        self.failed = []
        self.procs = []
        self.runs = 0

    # ------------------------------------------------------------ plumbing

    def start(self, name, argv, cwd=ROOT, env=None):
        p = Proc(name, argv, cwd, env)
        self.procs.append(p)
        return p

    def stop_all(self):
        for p in reversed(self.procs):
            p.stop()
        self.procs = []

    def server(self, kind, port, extra=()):
        """Starts one of the echo servers on port; returns (Proc, error)."""
        if kind in ("tokio", "smol"):
            argv = [self.e2e, "--runtime", kind, "--port", str(port), *extra]
            p = self.start(f"server-{kind}-{port}", argv)
        elif kind == "node":
            p = self.start(f"server-node-{port}", ["node", "node-server.js", str(port)], cwd=INTEROP)
        elif kind == "python":
            p = self.start(f"server-python-{port}", [str(VENV_PY), "python-server.py", str(port)],
                           cwd=INTEROP)
        else:
            raise ValueError(kind)
        return p, wait_ready(p, port)

    def nginx_proxy(self, conf, port, backend_a, backend_b):
        """Starts nginx with tests/cli/nginx/CONF, its placeholders filled in."""
        prefix = LOGS / f"nginx-{conf.split('.')[0]}-{port}"
        shutil.rmtree(prefix, ignore_errors=True)
        prefix.mkdir(parents=True)
        os.chmod(prefix, 0o755)  # the workers may run as another user
        text = (HERE / "nginx" / conf).read_text()
        for key, value in (("@PORT@", str(port)), ("@BACKEND_A@", f"127.0.0.1:{backend_a}"),
                           ("@BACKEND_B@", f"127.0.0.1:{backend_b}"), ("@PREFIX@", str(prefix))):
            text = text.replace(key, value)
        conf_path = prefix / "nginx.conf"
        conf_path.write_text(text)
        p = self.start(f"nginx-{conf.split('.')[0]}-{port}",
                       [self.nginx, "-p", str(prefix), "-c", str(conf_path), "-e",
                        str(prefix / "error.log")])
        err = wait_ready(p, port)
        if err:
            try:
                err += "\n" + (prefix / "error.log").read_text()[-2000:]
            except OSError:
                pass
        return p, err

    def eio_run(self, args, stdin="", timeout=60.0):
        """Runs eio; returns (exit status, stdout, stderr)."""
        self.runs += 1
        timeout = max(1.0, min(timeout, self.deadline - time.monotonic()))
        try:
            r = subprocess.run([self.eio, *args], input=stdin.encode(), capture_output=True,
                               timeout=timeout, cwd=ROOT)
            out, err, code = r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace"), r.returncode
        except subprocess.TimeoutExpired as e:
            out = (e.stdout or b"").decode("utf-8", "replace")
            err = (e.stderr or b"").decode("utf-8", "replace") + f"\n(killed after {timeout:.0f} s)"
            code = None
        with open(LOGS / f"eio-{self.runs:03d}.log", "w") as f:
            f.write(f"$ eio {' '.join(args)}\nexit {code}\n--- stdout\n{out}\n--- stderr\n{err}\n")
        return code, out, err

    def case(self, name, fn, show=None):
        """Runs one case; `show` (eio doctor arguments) prints the doctor's report for people
        after it, into the test log."""
        if self.only is not None and not any(name.startswith(o) for o in self.only):
            return
        if time.monotonic() > self.deadline:
            self.failed.append(name)
            log(f"FAIL {name}: not run (the total timeout ran out)")
            return
        started = time.monotonic()
        try:
            problem = fn()
        except Exception as e:  # a broken case is a failure, with its reason
            problem = f"{type(e).__name__}: {e}"
        took = time.monotonic() - started
        if problem:
            self.failed.append(name)
            log(f"FAIL {name} ({took:.1f} s): {problem}")
        else:
            self.passed += 1
            log(f"ok   {name} ({took:.1f} s)")
        if show:
            self.show(show)

    # ------------------------------------------------------------ cases

    def connect_case(self, port, transport):
        stdin = ""
        if transport == "upgrade":
            stdin += ":sleep 700\n"  # let the upgrade finish first
        stdin += f"{TEXT}\n:hex {BINARY_HEX}\n:json {json.dumps(JSON_DOC)}\n"
        code, out, err = self.eio_run(
            ["connect", f"http://127.0.0.1:{port}", "-t", transport, "--json", "--count", "3",
             "--timeout", "15"], stdin)
        events = parse_lines(out)
        if code != 0:
            return f"exit {code}, expected 0; stderr: {err.strip()[:300]}; last events: {events[-3:]}"
        opened = [e for e in events if e["event"] == "open"]
        want_open = "websocket" if transport == "websocket" else "polling"
        if len(opened) != 1 or opened[0]["transport"] != want_open:
            return f"open events {opened}, expected one on {want_open}"
        upgrades = [e for e in events if e["event"] == "upgrade"]
        if (transport == "upgrade") != bool(upgrades):
            return f"upgrade events {upgrades} in {transport} mode"
        msgs = [e for e in events if e["event"] == "message"]
        got = [(m["type"], m["data"]) for m in msgs]
        want = [("text", TEXT), ("binary", BINARY_B64), ("text", json.dumps(JSON_DOC, separators=(",", ":")))]
        if got != want:
            return f"messages {got}, expected {want}"
        if msgs[2].get("json") != JSON_DOC:
            return f"the JSON message was not parsed: {msgs[2]}"
        sent = [e for e in events if e["event"] == "sent"]
        if len(sent) != 3:
            return f"{len(sent)} sent events, expected 3"
        closes = [e for e in events if e["event"] == "close"]
        if [c["reason"] for c in closes] != ["client_close"]:
            return f"close events {closes}, expected one client_close"
        return None

    def pings_case(self, port, interval_s):
        listen = 3 * interval_s + 0.6
        code, out, err = self.eio_run(
            ["connect", f"http://127.0.0.1:{port}", "--json", "--pings", "--listen",
             "--timeout", f"{listen:.1f}"], "", timeout=listen + 10)
        events = parse_lines(out)
        if code != 5:
            return f"exit {code}, expected 5 (--timeout); stderr: {err.strip()[:300]}"
        pings = [e for e in events if e["event"] == "ping"]
        pongs = [e for e in events if e["event"] == "pong"]
        if len(pings) < 2 or len(pongs) < 2:
            return f"{len(pings)} pings and {len(pongs)} pongs in {listen:.1f} s (pingInterval {interval_s} s)"
        return None

    def server_close_case(self, port, kind):
        code, out, err = self.eio_run(
            ["connect", f"http://127.0.0.1:{port}", "-t", "websocket", "--json", "--listen",
             "--send", "__close__", "--timeout", "10"], "")
        events = parse_lines(out)
        closes = [e for e in events if e["event"] == "close"]
        if len(closes) != 1:
            return f"close events {closes} (exit {code})"
        reason = closes[0]["reason"]
        # Node's engine.io closes a WebSocket session without a close packet (see
        # tests/interop/README.md): the client sees the transport close, exit 4.
        expected = {"node": (4, "transport_close")}.get(kind, (1, "server_close"))
        if (code, reason) != expected:
            return f"exit {code} with reason {reason}, expected {expected}"
        if any(e["event"] == "message" for e in events):
            return "__close__ was echoed instead of closing the session"
        return None

    def doctor_case(self, url, args, expect_exit, expect):
        """Runs eio doctor --json; `expect` maps a check to the statuses it may have."""
        code, out, err = self.eio_run(["doctor", url, "--json", *args], "", timeout=90)
        lines = parse_lines(out)
        checks = {l["check"]: l for l in lines if "check" in l}
        summary = [l for l in lines if "summary" in l]
        if not summary:
            return f"no summary line (exit {code}); stderr: {err.strip()[:300]}"
        problems = []
        for check, statuses in expect.items():
            got = checks.get(check, {}).get("status")
            if got not in statuses:
                c = checks.get(check, {})
                problems.append(f"{check} is {got}, expected {'/'.join(statuses)}: "
                                f"{c.get('summary')} {c.get('details')}")
        if code != expect_exit:
            problems.append(f"exit {code}, expected {expect_exit}")
        return "; ".join(problems) or None, checks

    def show(self, args):
        """Prints what eio doctor prints for people, indented (the broken setups' reports
        end up in the test log)."""
        code, out, err = self.eio_run(["doctor", *args], "", timeout=90)
        for line in out.splitlines():
            log(f"      > {line}")

    def run(self):
        shutil.rmtree(LOGS, ignore_errors=True)
        LOGS.mkdir(parents=True, exist_ok=True)
        everything_passes = {c: ("pass",) for c in
                             ("handshake", "cors", "polling", "websocket", "upgrade", "sticky",
                              "long-poll")}
        everything_passes["heartbeat"] = ("pass", "warn")  # a busy machine may delay a ping

        # ---- each healthy server: connect and doctor
        servers = [("tokio", 0.3), ("smol", 0.3), ("node", 0.3), ("python", 1.0)]
        for kind, interval in servers:
            port = free_port()
            p, err = self.server(kind, port)
            if err:
                self.case(f"{kind}: server start", lambda err=err: err)
                self.stop_all()
                continue
            for t in ("polling", "websocket", "upgrade"):
                self.case(f"{kind}: connect {t}", lambda t=t: self.connect_case(port, t))
            self.case(f"{kind}: connect --pings", lambda: self.pings_case(port, interval))
            self.case(f"{kind}: server closes", lambda: self.server_close_case(port, kind))
            self.case(f"{kind}: doctor passes",
                      lambda: self.doctor_case(f"http://127.0.0.1:{port}",
                                               ["--echo", "--origin", "https://app.example"],
                                               0, everything_passes)[0])
            if kind == "tokio":
                self.case("tokio: bench echo", lambda: self.bench_case(port, "echo"))
                self.case("tokio: bench poll", lambda: self.bench_case(port, "poll"))
            self.stop_all()

        # ---- a server that closes idle kept-alive connections between two messages
        port = free_port()
        p = self.start(f"server-slow-ping-{port}", ["node", str(HERE / "slow-ping-server.js"), str(port)])
        err = wait_ready(p, port)
        if err:
            self.case("node slow-ping: server start", lambda: err)
        else:
            self.case("node slow-ping: connect survives an idle keep-alive close",
                      lambda: self.idle_keepalive_case(port))
        self.stop_all()

        # ---- exit statuses without a server
        closed = free_port()
        self.case("connect: refused is exit 3", lambda: self.refused_case(closed, "connect"))
        self.case("doctor: refused is exit 3", lambda: self.refused_case(closed, "doctor"))
        self.case("connect: --eio 3 is refused", self.eio3_case)

        # ---- broken setup 1: round-robin without stickiness, and its control
        a, b = free_port(), free_port()
        pa, erra = self.server("tokio", a)
        pb, errb = self.server("tokio", b)
        if erra or errb:
            self.case("nginx: backends", lambda: erra or errb)
        else:
            for conf, expect_sticky in (("round-robin.conf", "fail"), ("sticky.conf", "pass")):
                port = free_port()
                proxy, err = self.nginx_proxy(conf, port, a, b)
                name = f"nginx {conf.split('.')[0]}"
                if err:
                    self.case(f"{name}: start", lambda err=err: err)
                    continue
                if expect_sticky == "fail":
                    self.case(f"{name}: doctor's sticky check fails",
                              lambda port=port: self.round_robin_case(port),
                              show=[f"http://127.0.0.1:{port}", "--echo"])
                else:
                    self.case(f"{name}: doctor passes (control)",
                              lambda port=port: self.doctor_case(
                                  f"http://127.0.0.1:{port}", ["--echo"], 0,
                                  {**everything_passes, "cors": ("skip",)})[0])
                proxy.stop()
        self.stop_all()

        # ---- broken setup 2: a proxy timeout below pingInterval, and its control
        a = free_port()
        pa, err = self.server("tokio", a, ["--ping-interval", "2000", "--ping-timeout", "1000"])
        if err:
            self.case("nginx timeout: backend", lambda: err)
        else:
            self.case("direct (2 s pingInterval): long-poll passes (control)",
                      lambda: self.doctor_case(f"http://127.0.0.1:{a}",
                                               ["--only", "long-poll", "--max-wait", "4"], 0,
                                               {"long-poll": ("pass",)})[0])
            port = free_port()
            proxy, err = self.nginx_proxy("timeout.conf", port, a, a)
            if err:
                self.case("nginx timeout: start", lambda: err)
            else:
                self.case("nginx timeout: doctor's long-poll check fails",
                          lambda: self.timeout_case(port),
                          show=[f"http://127.0.0.1:{port}", "--max-wait", "10"])
        self.stop_all()

        # ---- broken setup 3: a CORS-refusing server, and its control
        a = free_port()
        pa, err = self.server("tokio", a, ["--allow-origin", "https://good.example"])
        if err:
            self.case("cors: server start", lambda: err)
        else:
            self.case("cors-refusing server: doctor's cors check fails",
                      lambda: self.cors_case(a),
                      show=[f"http://127.0.0.1:{a}", "--origin", "https://evil.example"])
            self.case("cors-refusing server: an allowed origin passes (control)",
                      lambda: self.doctor_case(f"http://127.0.0.1:{a}",
                                               ["--only", "cors", "--origin", "https://good.example"],
                                               0, {"cors": ("pass",)})[0])
        self.stop_all()

        total = self.passed + len(self.failed)
        log("")
        if self.failed:
            log("failed: " + ", ".join(self.failed))
            log(f"logs: {LOGS}")
        log(f"cli: {self.passed} passed, {len(self.failed)} failed")
        return 0 if not self.failed and total > 0 else 1

    def idle_keepalive_case(self, port):
        # Node closes a kept-alive connection after 5 s idle: the second POST must go out on
        # a fresh one (a regression: the tap once kept the dead one in the client's pool).
        code, out, err = self.eio_run(
            ["connect", f"http://127.0.0.1:{port}", "-t", "polling", "--json", "--count", "2",
             "--timeout", "20"], "one\n:sleep 6000\ntwo\n", timeout=30)
        events = parse_lines(out)
        got = [e["data"] for e in events if e["event"] == "message"]
        if code != 0 or got != ["one", "two"]:
            return f"exit {code}, messages {got}; last events {events[-2:]}"
        return None

    def round_robin_case(self, port):
        problem, checks = self.doctor_case(f"http://127.0.0.1:{port}", ["--echo"], 1,
                                           {"handshake": ("pass",), "websocket": ("pass",),
                                            "sticky": ("fail",)})
        if problem:
            return problem
        sticky = checks["sticky"]
        if sticky["data"].get("posts_unknown", 0) == 0:
            return f"the sticky check failed without counting unknown sessions: {sticky}"
        if "not sticky" not in sticky["summary"] or "ip_hash" not in (sticky.get("fix") or ""):
            return f"the sticky report does not say what to change: {sticky}"
        return None

    def timeout_case(self, port):
        problem, checks = self.doctor_case(f"http://127.0.0.1:{port}", ["--max-wait", "10"], 1,
                                           {"handshake": ("pass",), "long-poll": ("fail",)})
        if problem:
            return problem
        lp = checks["long-poll"]
        cut = lp["data"].get("cut_after_ms")
        if cut is None or not 300 <= cut < 2000:
            return f"the long-poll was not reported cut before the 2 s ping: {lp}"
        if "proxy_read_timeout" not in (lp.get("fix") or "") or "504" not in lp["summary"]:
            return f"the long-poll report does not name the cause and the fix: {lp}"
        return None

    def cors_case(self, port):
        problem, checks = self.doctor_case(f"http://127.0.0.1:{port}",
                                           ["--only", "cors", "--origin", "https://evil.example"],
                                           1, {"handshake": ("pass",), "cors": ("fail",)})
        if problem:
            return problem
        cors = checks["cors"]
        if "https://evil.example" not in (cors.get("fix") or ""):
            return f"the CORS report does not say what to allow: {cors}"
        return None

    def refused_case(self, port, command):
        code, out, err = self.eio_run([command, f"http://127.0.0.1:{port}", "--json"], "")
        if code != 3:
            return f"exit {code}, expected 3; {out.strip()[:300]} {err.strip()[:300]}"
        return None

    def eio3_case(self):
        code, out, err = self.eio_run(["connect", "http://127.0.0.1:9", "--eio", "3"], "")
        if code != 2 or "v3" not in err:
            return f"exit {code} and {err.strip()!r}, expected 2 and an explanation of v3"
        return None

    def bench_case(self, port, mode):
        code, out, err = self.eio_run(
            ["bench", f"http://127.0.0.1:{port}", "--mode", mode, "--clients", "4",
             "--duration", "1", "--warmup", "0.2", "--hard-timeout", "30"], "", timeout=40)
        if code != 0:
            return f"exit {code}: {err.strip()[:300]}"
        results = [l for l in out.splitlines() if l.startswith(f"RESULT mode={mode} ")]
        if len(results) != 1:
            return f"no RESULT line for {mode}: {out[:300]}"
        fields = dict(kv.split("=", 1) for kv in results[0].split()[1:] if "=" in kv)
        count = int(fields.get("msgs" if mode == "echo" else "roundtrips", "0"))
        if count <= 0 or fields.get("errors") != "0":
            return f"no traffic or errors: {results[0]}"
        return None


def parse_lines(out):
    lines = []
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                lines.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--eio", default=str(ROOT / "target" / "debug" / "eio"))
    ap.add_argument("--e2e-server", default=str(ROOT / "target" / "debug" / "e2e_server"))
    ap.add_argument("--nginx", default=shutil.which("nginx") or "/usr/sbin/nginx")
    ap.add_argument("--only", default="", help="comma-separated case name prefixes")
    ap.add_argument("--total-timeout", type=float, default=300.0)
    a = ap.parse_args()
    for path, what in ((a.eio, "the eio binary"), (a.e2e_server, "the e2e server"),
                       (a.nginx, "nginx")):
        if not os.path.exists(path):
            sys.exit(f"cli tests: {what} is missing at {path} (scripts/cli.sh builds and installs)")
    runner = Runner(a)
    try:
        code = runner.run()
    finally:
        runner.stop_all()
    sys.exit(code)


if __name__ == "__main__":
    main()
