#!/usr/bin/env python3
"""The cluster test: real redis-server, nginx and HAProxy, three cluster nodes (tokio,
smol, tokio), and real clients (Node engine.io-client, python-engineio's Client, our
client, Chromium) through the balancers, on 127.0.0.1 only.

    tests/interop/cluster/run.py [--only spread,browser,once,kill,redis,drain,tls]

The balancers run the configuration files of docs/deploy/ as they are, with only their
ports and paths replaced (each replaced string must be present, so the files cannot drift
from what is tested). Every process is started by this script, as the leader of its own
process group, and stopped by its PID; every wait is bounded. Prints one line per check
and a summary; exit status 0 only if every check passed.

Needs: redis-server, nginx, haproxy (Debian packages: scripts/cluster.sh installs them),
tests/interop/install.sh (Node and Python peers, Chromium), and the binaries
target/debug/cluster_node and target/debug/cluster_client.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
INTEROP = os.path.dirname(HERE)
ROOT = os.path.dirname(os.path.dirname(INTEROP))
DEPLOY = os.path.join(ROOT, "docs", "deploy")
BIN = os.environ.get("CLUSTER_BIN", os.path.join(ROOT, "target", "debug"))
VENV_PY = os.path.join(INTEROP, ".venv", "bin", "python")

# The nodes' heartbeat settings (cluster_node's defaults): pingInterval 1 s, pingTimeout
# 5 s (room for a loaded 2-core machine with 3,000 sessions), cluster heartbeat 250 ms,
# node_timeout 1.5 s.
PING_INTERVAL = 1.0
PING_TIMEOUT = 5.0
NODE_TIMEOUT = 1.5
NODES = [("n1", "tokio"), ("n2", "smol"), ("n3", "tokio")]
TRANSPORTS = ["polling", "websocket", "upgrade"]
CLIENTS = ["node", "python", "rust"]

T0 = time.monotonic()


def log(msg):
    print(f"[cluster {time.monotonic() - T0:6.1f}s] {msg}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Procs:
    """Every process this script started, stopped by PID (and its process group)."""

    def __init__(self, logdir):
        self.logdir = logdir
        self.procs = {}

    def start(self, name, argv, cwd=ROOT, env=None):
        path = os.path.join(self.logdir, f"{name}.log")
        f = open(path, "ab")
        f.write(f"\n$ {' '.join(argv)}\n".encode())
        f.flush()
        p = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=f,
                             stderr=subprocess.STDOUT, start_new_session=True,
                             env=dict(os.environ, **(env or {})))
        self.procs[name] = (p, f)
        return p

    def pid(self, name):
        return self.procs[name][0].pid

    def alive(self, name):
        return name in self.procs and self.procs[name][0].poll() is None

    def signal(self, name, sig):
        p, _ = self.procs[name]
        if p.poll() is None:
            os.kill(p.pid, sig)

    def wait(self, name, timeout):
        p, _ = self.procs[name]
        try:
            p.wait(timeout=timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def stop(self, name, grace=5.0):
        if name not in self.procs:
            return
        p, f = self.procs.pop(name)
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            if p.poll() is not None:
                break
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                break
            try:
                p.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        f.close()

    def kill9(self, name):
        p, f = self.procs.pop(name)
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait(timeout=5)
        f.close()

    def stop_all(self):
        for name in list(self.procs):
            self.stop(name, grace=2.0)


def http(method, url, body=b"", timeout=10.0, context=None):
    req = urllib.request.Request(url, data=body if method == "POST" else None, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def admin(port, method, path, body=b""):
    status, data = http(method, f"http://127.0.0.1:{port}/_cluster/{path}", body)
    if status != 200:
        raise RuntimeError(f"admin {path} on {port}: HTTP {status}")
    return json.loads(data)


def template(src, dst, replace):
    """Copies a docs/deploy file, replacing only the given strings (each must occur)."""
    with open(os.path.join(DEPLOY, src), encoding="utf-8") as f:
        text = f.read()
    for old, new in replace.items():
        if old not in text:
            raise RuntimeError(f"docs/deploy/{src} no longer contains {old!r}: update run.py")
        text = text.replace(old, new)
    with open(dst, "w", encoding="utf-8") as f:
        f.write(text)


class Cluster:
    def __init__(self, procs, work):
        self.procs = procs
        self.work = work
        self.redis_port = free_port()
        self.ports = {name: free_port() for name, _ in NODES}
        self.lb = {"nginx-sid": free_port(), "nginx-rr": free_port(), "haproxy": free_port(),
                   "nginx-tls": free_port()}

    # ------------------------------------------------------------ processes

    def start_redis(self):
        self.procs.start("redis", ["redis-server", "--bind", "127.0.0.1", "--port",
                                   str(self.redis_port), "--save", "", "--appendonly", "no"])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.redis_port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("redis-server did not answer PING within 10 s")

    def start_node(self, name, runtime):
        self.procs.start(name, [os.path.join(BIN, "cluster_node"), "--runtime", runtime,
                                "--node", name, "--port", str(self.ports[name]),
                                "--redis", f"redis://127.0.0.1:{self.redis_port}/",
                                # The balancers run here: trust their X-Forwarded-For.
                                "--trusted-proxies", "127.0.0.1"],
                         env={"RUST_LOG": "warn"})

    def wait_cluster(self, names, timeout=15.0):
        """Waits until each named node has the bus up and the others as members."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            try:
                ok = True
                for n in names:
                    st = admin(self.ports[n], "GET", "state")
                    members = sorted(m["node"] for m in st["members"])
                    want = sorted(x for x in names if x != n)
                    if not st["bus_up"] or members != want:
                        ok = False
                        last = f"{n}: bus_up={st['bus_up']} members={members}"
                if ok:
                    return
            except (OSError, RuntimeError, ValueError) as e:
                last = str(e)
            time.sleep(0.1)
        raise RuntimeError(f"cluster {names} not formed within {timeout} s ({last})")

    def node_replacements(self):
        return {f"127.0.0.1:{3001 + i}": f"127.0.0.1:{self.ports[n]}"
                for i, (n, _) in enumerate(NODES)}

    def start_balancers(self):
        ssl_dir = os.path.join(self.work, "ssl")
        os.makedirs(ssl_dir, exist_ok=True)
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", os.path.join(ssl_dir, "key.pem"),
                        "-out", os.path.join(ssl_dir, "cert.pem")], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        for kind, conf, port_map in (
            ("nginx-sid", "nginx-sid-routing.conf",
             {"127.0.0.1:8080": f"127.0.0.1:{self.lb['nginx-sid']}",
              "127.0.0.1:8443": f"127.0.0.1:{self.lb['nginx-tls']}",
              "/etc/ssl/engineio/": ssl_dir + "/",
              "/run/nginx-engineio.pid": os.path.join(self.work, "nginx-sid.pid"),
              "/var/log/nginx/": self.work + "/"}),
            ("nginx-rr", "nginx-round-robin.conf",
             {"127.0.0.1:8082": f"127.0.0.1:{self.lb['nginx-rr']}",
              "/run/nginx-engineio-rr.pid": os.path.join(self.work, "nginx-rr.pid"),
              "/var/log/nginx/": self.work + "/"}),
        ):
            d = os.path.join(self.work, kind)
            for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
                os.makedirs(os.path.join(d, sub), exist_ok=True)
                os.chmod(os.path.join(d, sub), 0o777)
            os.chmod(d, 0o777)
            replace = dict(port_map)
            replace.update(self.node_replacements())
            replace["/var/lib/nginx/"] = d + "/"
            template(conf, os.path.join(d, "nginx.conf"), replace)
            template("engineio-locations.conf", os.path.join(d, "engineio-locations.conf"), {})
            self.procs.start(kind, ["nginx", "-p", d + "/", "-c", os.path.join(d, "nginx.conf"),
                                    "-g", "daemon off;"])
        d = os.path.join(self.work, "haproxy")
        os.makedirs(d, exist_ok=True)
        replace = {"127.0.0.1:8081": f"127.0.0.1:{self.lb['haproxy']}",
                   "/run/haproxy-engineio.pid": os.path.join(d, "haproxy.pid")}
        replace.update(self.node_replacements())
        template("haproxy.cfg", os.path.join(d, "haproxy.cfg"), replace)
        self.procs.start("haproxy", ["haproxy", "-db", "-f", os.path.join(d, "haproxy.cfg")])
        for kind, port in self.lb.items():
            scheme = "https" if kind == "nginx-tls" else "http"
            ctx = ssl._create_unverified_context() if scheme == "https" else None
            deadline = time.monotonic() + 15
            while True:
                try:
                    status, body = http("GET", f"{scheme}://127.0.0.1:{port}/engine.io/?EIO=4&transport=polling",
                                        timeout=2, context=ctx)
                    if status == 200 and body.startswith(b"0{"):
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{kind} on {port} did not answer a handshake within 15 s")
                time.sleep(0.1)

    def url(self, lb):
        scheme = "https" if lb == "nginx-tls" else "http"
        return f"{scheme}://127.0.0.1:{self.lb[lb]}"

    def forwarded(self):
        total = 0
        for n, _ in NODES:
            if self.procs.alive(n):
                total += admin(self.ports[n], "GET", "state")["forwarded"]
        return total


def driver_argv(client, mode, url, transport, extra):
    if client == "node":
        return ["node", os.path.join(HERE, "node-client.mjs"), mode, "--url", url,
                "--transport", transport] + extra
    if client == "python":
        return [VENV_PY, os.path.join(HERE, "python-client.py"), mode, "--url", url,
                "--transport", transport] + extra
    return [os.path.join(BIN, "cluster_client"), mode, "--url", url, "--transport",
            transport] + extra


class Results:
    def __init__(self):
        self.rows = []

    def check(self, scenario, what, ok, detail=""):
        self.rows.append((scenario, what, bool(ok), detail))
        log(f"{'ok  ' if ok else 'FAIL'} {scenario}: {what}{' - ' + detail if detail else ''}")
        return ok


def run_driver(procs, name, argv, timeout, env=None):
    """Runs a driver to completion (bounded); returns its JSON lines."""
    p = procs.start(name, argv, cwd=INTEROP, env=env)
    # Its output goes to the log file; read it back once it exited.
    finished = procs.wait(name, timeout)
    procs.stop(name)
    with open(os.path.join(procs.logdir, f"{name}.log"), encoding="utf-8", errors="replace") as f:
        lines = [json.loads(l) for l in f if l.startswith("{")]
    if not finished:
        lines.append({"result": {"errors": [f"driver did not finish within {timeout} s"]}})
    del p
    return lines


def result_of(lines):
    for l in reversed(lines):
        if "result" in l:
            return l["result"]
    return {"errors": ["no result line"]}


class Background:
    """A driver running while the scenario does things to the cluster."""

    def __init__(self, procs, name, argv, env=None):
        self.procs = procs
        self.name = name
        self.path = os.path.join(procs.logdir, f"{name}.log")
        procs.start(name, argv, cwd=INTEROP, env=env)

    def lines(self):
        try:
            with open(self.path, encoding="utf-8", errors="replace") as f:
                return [json.loads(l) for l in f if l.startswith("{")]
        except (OSError, ValueError):
            return []

    def wait_line(self, key, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for l in self.lines():
                if key in l:
                    return l
            if not self.procs.alive(self.name):
                break
            time.sleep(0.05)
        return None

    def finish(self, timeout):
        finished = self.procs.wait(self.name, timeout)
        self.procs.stop(self.name)
        r = result_of(self.lines())
        if not finished:
            r.setdefault("errors", []).append(f"did not finish within {timeout} s")
        return r


# ------------------------------------------------------------------ scenarios

def scenario_spread(c, procs, res):
    """Sessions spread over the nodes; 200 round trips with zero unknown sessions; with sid
    routing nothing is forwarded, with round-robin polling is."""
    for lb in ("nginx-sid", "nginx-rr", "haproxy"):
        seen = {}
        for client in CLIENTS:
            for t in TRANSPORTS:
                before = c.forwarded()
                lines = run_driver(procs, f"spread-{lb}-{client}-{t}",
                                   driver_argv(client, "spread", c.url(lb), t,
                                               ["--sessions", "6", "--round-trips", "200"]), 90)
                r = result_of(lines)
                fwd = c.forwarded() - before
                nodes = r.get("nodes", {})
                for n, k in nodes.items():
                    seen[n] = seen.get(n, 0) + k
                # One run may land on one node: round-robin counts every request, and a
                # session that makes a multiple of three requests before the next
                # handshake sends it to the same node again. The spread is checked over
                # all the runs of a balancer, below.
                ok = (not r.get("errors") and r.get("round_trips") == 200
                      and sum(nodes.values()) == 6 and all(n.startswith("n") for n in nodes))
                if lb == "nginx-rr" and t != "websocket":
                    ok = ok and fwd > 0
                if lb != "nginx-rr":
                    ok = ok and fwd == 0
                res.check("spread", f"{lb}/{client}/{t}", ok,
                          f"nodes {nodes}, {r.get('round_trips')} round trips, {fwd} forwarded, "
                          f"errors {r.get('errors')}")
        res.check("spread", f"{lb}: sessions on every node", sorted(seen) == ["n1", "n2", "n3"]
                  and min(seen.values()) >= 6, f"{seen}")


def scenario_browser(c, procs, res):
    """Chromium loads the demo page through nginx and runs the interop cases in it."""
    for lb in ("nginx-sid", "nginx-rr"):
        for t in TRANSPORTS:
            lines = run_driver(procs, f"browser-{lb}-{t}",
                               ["node", os.path.join(INTEROP, "browser.mjs"), "--url", c.url(lb),
                                "--transport", t, "--cases", "demo_page,connect,text,binary,text_100k,heartbeat"],
                               120)
            cases = [l for l in lines if "case" in l]
            ok = len(cases) == 6 and all(l.get("ok") for l in cases)
            bad = [f"{l['case']}: {l.get('detail')}" for l in cases if not l.get("ok")]
            res.check("browser", f"chromium via {lb}/{t}", ok,
                      f"{sum(1 for l in cases if l.get('ok'))}/6 cases ok {bad if bad else ''}")


def scenario_once(c, procs, res):
    """send and broadcast from one node reach sessions on every node exactly once."""
    listeners = []
    for client, t in (("node", "websocket"), ("python", "polling"), ("rust", "upgrade")):
        listeners.append((client, t, Background(procs, f"listen-{client}",
                                                driver_argv(client, "listen", c.url("nginx-rr"), t,
                                                            ["--sessions", "3", "--seconds", "30"]))))
    sids = {}
    for client, t, b in listeners:
        ready = b.wait_line("ready", 20)
        if not ready or len(ready["ready"]) != 3:
            res.check("once", f"{client} listeners ready", False, f"{ready}")
            return
        for s in ready["ready"]:
            sids[s] = client
    nodes = sorted({s.split(".")[0] for s in sids})
    res.check("once", "9 sessions over the nodes", len(nodes) >= 2, f"{len(sids)} sessions on {nodes}")
    n1, n2, n3 = (c.ports[n] for n, _ in NODES)
    excluded = next(s for s, cl in sids.items() if cl == "python")
    for s in sids:
        r = admin(n1, "POST", f"send?sid={s}", f"u:{s}".encode())
        if not r.get("ok"):
            res.check("once", f"send to {s} from n1", False, str(r))
    b1 = admin(n1, "POST", f"broadcast?except={excluded}", b"b:1")
    b2 = admin(n2, "POST", "broadcast", b"b:2")
    res.check("once", "broadcast reports from n1 (tokio) and n2 (smol)",
              b1["local"] + b1["remote"] == 8 and not b1["failed"]
              and b2["local"] + b2["remote"] == 9 and not b2["failed"],
              f"n1: {b1}, n2: {b2}")
    count = admin(n3, "GET", "count")
    listed = admin(n2, "GET", "sids")
    res.check("once", "cluster-wide count and sids", count.get("count") == 9
              and set(listed.get("sids", [])) == set(sids), f"count {count}, sids {len(listed.get('sids', []))}")
    for s in sids:
        admin(n3, "POST", f"send?sid={s}", b"__done__")
    for client, t, b in listeners:
        r = b.finish(40)
        received = r.get("received", {})
        bad = []
        for s, msgs in received.items():
            want = [f"u:{s}"] + ([] if s == excluded else ["b:1"]) + ["b:2", "__done__"]
            if msgs != want:
                bad.append(f"{s}: {msgs}")
        res.check("once", f"{client}/{t}: each message exactly once, in order",
                  len(received) == 3 and not bad and not r.get("errors"),
                  f"{len(received)} sessions; {bad or 'all exact'}; errors {r.get('errors')}")


def soakers(c, procs, prefix, lb, seconds, per=2):
    out = []
    for client in CLIENTS:
        for t in TRANSPORTS:
            for i in range(per):
                name = f"{prefix}-{client}-{t}-{i}"
                out.append((client, t, Background(procs, name, driver_argv(
                    client, "soak", c.url(lb), t, ["--seconds", str(seconds)]))))
    return out


def scenario_kill(c, procs, res):
    """kill -9 of a node: its sessions end within pingInterval + pingTimeout, the clients
    reconnect to the survivors, membership drops it, the survivors' sessions lose nothing.

    Through nginx with sid routing every session's requests go straight to its node, so
    the survivors' sessions must not notice anything. Through round-robin a session of a
    survivor may have its WebSocket tunnelled through the victim (forwarding): that
    WebSocket dies with it and the client reconnects; those clients must recover."""
    strict = soakers(c, procs, "kill-sid", "nginx-sid", 9, per=1)
    recover = [(client, "upgrade", Background(procs, f"kill-rr-{client}", driver_argv(
        client, "soak", c.url("nginx-rr"), "upgrade", ["--seconds", "9"]))) for client in CLIENTS]
    time.sleep(3.0)
    victim = "n3"
    # Each driver's clock started within a few hundred ms of this one; the kill is at
    # about 3,000 ms on theirs.
    killed_at_mono = time.monotonic()
    killed_at_epoch = time.time() * 1000
    procs.kill9(victim)
    log(f"killed {victim} with SIGKILL")
    deadline = killed_at_mono + NODE_TIMEOUT + 1.5
    dropped = None
    while time.monotonic() < deadline:
        st = admin(c.ports["n1"], "GET", "state")
        if "n3" not in [m["node"] for m in st["members"]]:
            dropped = time.monotonic() - killed_at_mono
            break
        time.sleep(0.05)
    res.check("kill", "membership drops the killed node within node_timeout", dropped is not None
              and dropped <= NODE_TIMEOUT + 0.5,
              f"after {dropped:.2f} s (node_timeout {NODE_TIMEOUT} s)" if dropped else "not dropped")
    on_victim = 0
    close_delays = []
    for group, bgs in (("sid-routing", strict), ("round-robin", recover)):
        for client, t, b in bgs:
            r = b.finish(30)
            sessions = r.get("sessions", [])
            victims = [s for s in sessions if s.get("node") == victim]
            survivors = [s for s in sessions if s.get("node") not in (victim, "?")]
            on_victim += len(victims)
            problems = []
            for i, s in enumerate(sessions):
                if s.get("node") == victim:
                    if not s.get("closed"):
                        problems.append(f"{s['sid']} on {victim} never closed")
                    elif isinstance(s["closed"], dict) and "epoch_ms" in s["closed"]:
                        close_delays.append(int(s["closed"]["epoch_ms"] - killed_at_epoch))
                    if not any(x.get("node") not in (victim, "?") for x in sessions[i + 1:]):
                        problems.append("did not reconnect to a survivor")
            for i, s in enumerate(survivors):
                closed = s.get("closed") and s is not sessions[-1]
                if group == "sid-routing" and closed:
                    problems.append(f"survivor session {s['sid']} closed: {s['closed']}")
                if closed and s is survivors[-1]:
                    problems.append(f"last session {s['sid']} closed and not replaced")
                if not s.get("closed") and s.get("sent", 0) - s.get("echoed", 0) > 1:
                    problems.append(f"survivor session {s['sid']} lost {s['sent'] - s['echoed']} echoes")
            res.check("kill", f"{group} {client}/{t}", not problems and not r.get("errors"),
                      f"{len(victims)} on {victim}, {len(survivors)} on survivors; "
                      f"{problems or 'nothing lost'}; errors {r.get('errors')}")
    res.check("kill", "some sessions were on the killed node", on_victim > 0, f"{on_victim}")
    # The victim's sessions ended, at their clients, within pingInterval + pingTimeout
    # of the kill (same wall clock: every process runs on this machine).
    limit = (PING_INTERVAL + PING_TIMEOUT) * 1000
    res.check("kill", "its sessions ended within pingInterval + pingTimeout of the kill",
              close_delays and max(close_delays) <= limit and min(close_delays) >= -50,
              f"{sorted(close_delays)} ms after the kill (limit {limit:.0f} ms)")
    c.start_node("n3", "tokio")
    c.wait_cluster([n for n, _ in NODES])


def scenario_redis(c, procs, res):
    """Redis restart: sessions unaffected, the bus comes back by itself, the loss is
    reported (typed errors to callers, events, counters)."""
    bgs = soakers(c, procs, "redis", "nginx-rr", 8, per=1)
    time.sleep(2.0)
    procs.kill9("redis")
    log("killed redis-server with SIGKILL")
    time.sleep(0.7)
    # A cluster operation meanwhile fails at once with a typed error.
    st = admin(c.ports["n2"], "GET", "sids")
    t = time.monotonic()
    other = admin(c.ports["n1"], "POST", "send?sid=n2.AAAAAAAAAAAAAAAAAAAA", b"x")
    took = time.monotonic() - t
    res.check("redis", "an operation during the outage fails at once, typed",
              not other["ok"] and "BusDown" in other.get("debug", "") and took < 0.5,
              f"{other} in {took * 1000:.0f} ms; sids during outage: {st.get('error')}")
    time.sleep(1.0)
    c.start_redis()
    log("redis-server restarted")
    c.wait_cluster([n for n, _ in NODES], timeout=15)
    for n, _ in NODES:
        st = admin(c.ports[n], "GET", "state")
        kinds = [e["kind"] for e in st["events"]]
        last_down = max((i for i, k in enumerate(kinds) if k == "bus_down"), default=-1)
        last_up = max((i for i, k in enumerate(kinds) if k == "bus_up"), default=-1)
        outage = st["events"][last_up].get("outage_ms") if last_up >= 0 else None
        res.check("redis", f"{n}: bus down reported, back by itself",
                  last_down >= 0 and last_up > last_down and outage,
                  f"outage {outage} ms, counters {st['counters']}")
    for client, t, b in bgs:
        r = b.finish(30)
        sessions = r.get("sessions", [])
        lost = sum(s.get("sent", 0) - s.get("echoed", 0) for s in sessions)
        closed = [s for s in sessions[:-1] if s.get("closed")]
        res.check("redis", f"{client}/{t}: sessions untouched by the Redis restart",
                  len(sessions) == 1 and lost <= 1 and not closed and not r.get("errors"),
                  f"{len(sessions)} session(s), {lost} unanswered, errors {r.get('errors')}")
    # And the cluster works again, across nodes.
    listener = Background(procs, "redis-after", driver_argv("rust", "listen", c.url("nginx-sid"),
                                                            "websocket", ["--sessions", "3", "--seconds", "10"]))
    ready = listener.wait_line("ready", 10) or {"ready": []}
    oks = [admin(c.ports["n1"], "POST", f"send?sid={s}", b"__done__").get("ok") for s in ready["ready"]]
    r = listener.finish(15)
    res.check("redis", "cluster sends work again after the restart",
              len(oks) == 3 and all(oks) and all(m == ["__done__"] for m in r.get("received", {}).values()),
              f"{oks}, {r.get('received')}")


def unit_stop_settings():
    """KillSignal and TimeoutStopSec from the systemd unit in docs/deploy."""
    sig, timeout = "SIGTERM", 90.0
    with open(os.path.join(DEPLOY, "engineio@.service"), encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line.startswith("KillSignal="):
                sig = line.split("=", 1)[1]
            elif line.startswith("TimeoutStopSec="):
                timeout = float(line.split("=", 1)[1])
    return getattr(signal, sig), timeout


def scenario_drain(c, procs, res):
    """Graceful drain of a node with 1,000 sessions: all reconnect elsewhere (ours with
    jitter), none lost silently; stopped the way the systemd unit stops it."""
    herd = [Background(procs, "herd-ws", driver_argv("rust", "herd", c.url("nginx-sid"), "websocket",
                                                      ["--sessions", "2400", "--drained", "n2", "--seconds", "40"])),
            Background(procs, "herd-polling", driver_argv("rust", "herd", c.url("nginx-sid"), "polling",
                                                           ["--sessions", "600", "--drained", "n2", "--seconds", "40"]))]
    on_n2 = 0
    for h in herd:
        ready = h.wait_line("ready", 60)
        if not ready:
            res.check("drain", f"{h.name} ready", False, "no ready line within 60 s")
            return
        on_n2 += ready["ready"].get("n2", 0)
        res.check("drain", f"{h.name}: sessions opened", not ready["errors"], f"{ready['ready']} {ready['errors'][:3]}")
    others = soakers(c, procs, "drain", "nginx-sid", 10, per=1)
    time.sleep(2.0)
    st = admin(c.ports["n2"], "GET", "state")
    res.check("drain", "n2 holds at least 1,000 sessions", st["sessions"] >= 1000, f"{st['sessions']}")
    sig, stop_timeout = unit_stop_settings()
    t = time.monotonic()
    procs.signal("n2", sig)
    log(f"sent {sig.name} to n2 (pid {procs.pid('n2')})")
    exited = procs.wait("n2", stop_timeout)
    took = time.monotonic() - t
    res.check("drain", f"n2 drained and exited within TimeoutStopSec ({stop_timeout:.0f} s)", exited,
              f"in {took:.1f} s")
    procs.stop("n2")
    st = admin(c.ports["n1"], "GET", "state")
    left = [e for e in st["events"] if e["kind"] == "node_down" and e["node"] == "n2"]
    res.check("drain", "n1 heard n2 leave (not a timeout)", left and left[-1]["reason"] == "Left", f"{left}")
    reconnected = 0
    delays = []
    for h in herd:
        r = h.finish(60)
        sessions = r.get("sessions", [])
        drained = [s for s in sessions if s["before"] == "n2"]
        moved = [s for s in drained if s.get("after") in ("n1", "n3")]
        reconnected += len(moved)
        delays += [s["reconnect_ms"] for s in moved if s.get("reconnect_ms") is not None]
        disturbed = [s for s in sessions if s["before"] != "n2" and s.get("reason")]
        reasons = sorted({s.get("reason") for s in drained})
        res.check("drain", f"{h.name}: every n2 session reconnected to n1/n3, others untouched",
                  len(moved) == len(drained) and not disturbed,
                  f"{len(moved)}/{len(drained)} moved (close reasons {reasons}); "
                  f"{len(disturbed)} others disturbed")
    if delays:
        delays.sort()
        res.check("drain", "reconnections spread by jitter (no thundering herd)",
                  delays[-1] - delays[0] >= 300,
                  f"{len(delays)} reconnections, delay min {delays[0]} ms, median "
                  f"{int(statistics.median(delays))} ms, max {delays[-1]} ms")
    res.check("drain", "none lost silently", reconnected == on_n2, f"{reconnected} of {on_n2} on n2")
    for client, t, b in others:
        r = b.finish(30)
        sessions = r.get("sessions", [])
        problems = [s for s in sessions if s.get("node") == "n2" and not s.get("closed")]
        moved = all(any(x["opened_at"] > s["opened_at"] and x["node"] != "n2" for x in sessions)
                    for s in sessions if s.get("node") == "n2")
        # These clients reconnect themselves (engine.io-client and python-engineio have no
        # reconnection): an attempt that failed while the node went away is retried; what
        # must hold is that they end on a survivor whose session works, and that no
        # session on a survivor broke.
        last = sessions[-1] if sessions else {}
        settled = (last.get("node") in ("n1", "n3") and not last.get("closed")
                   and last.get("echoed", 0) >= last.get("sent", 1) - 1 and last.get("sent", 0) > 0)
        broken = [s for s in sessions[:-1] if s.get("node") in ("n1", "n3")]
        transient = ("no open within", "closed before open", "closed:", "connect failed")
        other_errors = [e for e in r.get("errors", []) if not e.startswith(transient)]
        res.check("drain", f"{client}/{t} through nginx during the drain",
                  not problems and moved and settled and not broken and not other_errors,
                  f"nodes {[s.get('node') for s in sessions]}, errors {r.get('errors')}")


def scenario_tls(c, procs, res):
    """TLS terminated at nginx: clients speak https/wss to nginx, nginx plain HTTP to the
    nodes."""
    # The clients verify the certificate against the test's own CA (the self-signed
    # certificate nginx serves), as they would a real one.
    ca = os.path.join(c.work, "ssl", "cert.pem")
    env = {"NODE_EXTRA_CA_CERTS": ca, "REQUESTS_CA_BUNDLE": ca, "WEBSOCKET_CLIENT_CA_BUNDLE": ca}
    for client in ("node", "python"):
        for t in TRANSPORTS:
            argv = driver_argv(client, "spread", c.url("nginx-tls"), t, ["--sessions", "3", "--round-trips", "50"])
            r = result_of(run_driver(procs, f"tls-{client}-{t}", argv, 60, env=env))
            note = ""
            if client == "python" and t != "polling" and peer_ssl_race(r):
                # python-engineio's threaded Client reads and writes its wss socket from two
                # threads at once, which Python's SSL sockets do not allow: on a loaded
                # machine it drops the connection ("transport error"; python-engineio
                # #461, python-socketio #1568). Seen twice in full test runs, at round trip
                # 48 of 50; never in isolation. Such a cell is run once more, and fails if
                # it fails again.
                note = f" (run again after the client's known wss race: {r.get('errors')})"
                r = result_of(run_driver(procs, f"tls-{client}-{t}-again", argv, 60, env=env))
            res.check("tls", f"{client}/{t} over https/wss via nginx", not r.get("errors") and r.get("round_trips") == 50,
                      f"nodes {r.get('nodes')}, errors {r.get('errors')}{note}")


def peer_ssl_race(result):
    """Whether a python driver's spread ended by its own side's transport error after the
    session was established (python-engineio's threaded wss race), not by a refusal."""
    errors = result.get("errors") or []
    return (len(errors) == 1 and result.get("round_trips", 0) > 0
            and "closed instead of echoing" in errors[0] and "'transport error'" in errors[0])


def scenario_forwarded_for(c, procs, res):
    """X-Forwarded-For reaches the nodes through each balancer, and a node that trusts the
    balancer takes the client's address from it."""
    for lb in ("nginx-sid", "nginx-rr", "haproxy"):
        req = urllib.request.Request(f"{c.url(lb)}/engine.io/?EIO=4&transport=polling",
                                     headers={"X-Forwarded-For": "198.51.100.7"})
        with urllib.request.urlopen(req, timeout=5) as r:
            body = r.read()
        sid = json.loads(body[1:].split(b"\x1e")[0])["sid"]
        node = sid.split(".")[0]
        seen = admin(c.ports[node], "GET", "state").get("last_client_ip")
        # The chain the node got: "198.51.100.7, 127.0.0.1" (the balancer appended the
        # connection it got); 127.0.0.1 is trusted, so the client is the entry before it.
        res.check("xff", f"{lb}: the node sees the client address the trusted chain gives",
                  seen == "198.51.100.7", f"{node} saw {seen}")


SCENARIOS = {
    "xff": scenario_forwarded_for,
    "spread": scenario_spread,
    "browser": scenario_browser,
    "once": scenario_once,
    "tls": scenario_tls,
    "redis": scenario_redis,
    "kill": scenario_kill,
    "drain": scenario_drain,
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", help="comma-separated scenarios: " + ",".join(SCENARIOS))
    ap.add_argument("--keep-logs", default=os.path.join(HERE, "logs"))
    a = ap.parse_args()
    names = a.only.split(",") if a.only else list(SCENARIOS)
    for n in names:
        if n not in SCENARIOS:
            sys.exit(f"unknown scenario {n}")
    for tool in ("redis-server", "nginx", "haproxy", "openssl", "node"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing: run scripts/cluster.sh (it installs Debian's packages)")
    for b in ("cluster_node", "cluster_client"):
        if not os.path.exists(os.path.join(BIN, b)):
            sys.exit(f"{BIN}/{b} is missing: cargo build -p engineio-tests --bins")
    if os.path.isdir(a.keep_logs):
        shutil.rmtree(a.keep_logs)
    os.makedirs(a.keep_logs)
    work = tempfile.mkdtemp(prefix="eio-cluster-")
    os.chmod(work, 0o755)
    procs = Procs(a.keep_logs)
    res = Results()
    try:
        c = Cluster(procs, work)
        log(f"redis {c.redis_port}, nodes {c.ports}, balancers {c.lb}")
        c.start_redis()
        for name, runtime in NODES:
            c.start_node(name, runtime)
        c.wait_cluster([n for n, _ in NODES])
        c.start_balancers()
        log("cluster and balancers up")
        for n in names:
            started = time.monotonic()
            try:
                SCENARIOS[n](c, procs, res)
            except Exception as e:  # a broken scenario is a failure, not a crash
                res.check(n, "scenario ran", False, f"{type(e).__name__}: {e}")
            log(f"scenario {n} took {time.monotonic() - started:.1f} s")
            if n not in ("drain",):
                # Leave the cluster whole for the next scenario.
                for name, runtime in NODES:
                    if not procs.alive(name):
                        c.start_node(name, runtime)
                c.wait_cluster([x for x, _ in NODES])
    finally:
        procs.stop_all()
        shutil.rmtree(work, ignore_errors=True)
    passed = sum(1 for r in res.rows if r[2])
    failed = len(res.rows) - passed
    print()
    print("=" * 20 + " cluster matrix")
    for scenario, what, ok, detail in res.rows:
        print(f"{'ok  ' if ok else 'FAIL'} {scenario:8} {what}")
    print(f"cluster test took {time.monotonic() - T0:.1f} s")
    print(f"cluster: {passed} passed, {failed} failed")
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
