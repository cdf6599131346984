#!/usr/bin/env python3
"""Interop matrix: every server x client x transport x case, against real peers.

Python 3 standard library only (runs with the system python3). Install the peers first
with tests/interop/install.sh.

    tests/interop/run.py                       # every known server x every known client
    tests/interop/run.py --servers node --clients browser --transports upgrade
    tests/interop/run.py --server rust='target/debug/e2e-server {port}' --demo rust \\
                         --servers rust --clients node,python,browser
    tests/interop/run.py --client rust='target/debug/e2e-client --url {url} --transport {transport}' \\
                         --servers node,python --clients rust

Servers (each started on a free 127.0.0.1 port, waited for with a handshake, stopped
afterwards by the PID this script started; PORT is also set in its environment):
  node             node-server.js --demo {port}      (engine.io 6; serves the demo page)
  node-allow-eio3  node-server.js --allow-eio3 {port} (engine.io 6 with allowEIO3)
  node-eio3        node-server.js --eio3 {port}      (engine.io 3.x: Engine.IO v3 only)
  python           python-server.py {port}           (python-engineio AsyncServer, uvicorn;
                                                     it accepts permessage-deflate by default)
  node-deflate     node-server.js --deflate {port}   (engine.io 6 with perMessageDeflate)
  NAME    --server NAME=COMMAND, COMMAND containing {port}; run from the repository root.
          --demo NAME says that server serves the demo page (needed by the browser client);
          --tls NAME that it speaks https with tls/server.pem (clients get an https:// URL);
          --eio3-ready NAME that it is waited for with an EIO=3 handshake.
Clients (one run per server x transport; each prints one JSON line per case):
  node          node-client.mjs          (engine.io-client 6 in Node)
  node-eio3     node-client.mjs --eio3   (engine.io-client 3.x in Node: Engine.IO v3)
  python        python-client.py         (python-engineio Client)
  browser       browser.mjs              (engine.io-client bundle in headless Chromium; only
                                          against servers that serve the demo page)
  browser-eio3  browser.mjs --eio3       (the engine.io-client 3.x bundle in Chromium)
  node-no-deflate       node-client.mjs --no-deflate (perMessageDeflate: false; engine.io-client
                                          in Node offers permessage-deflate by default)
  python-async-deflate  python-async-client.py --compress 15 (python-engineio AsyncClient,
                                          aiohttp, offering permessage-deflate)
  NAME     --client NAME=COMMAND, COMMAND containing {url} and {transport} (and optionally
           {cases}, {cacert}, {proxy}, {proxy_noauth}); run from the repository root.
           --client-cases NAME=a,b gives its cases (default: the nine common ones; the
           built-in clients are then run with --cases).
  {proxy} and {proxy_noauth} make run.py start one real HTTP proxy (Debian's tinyproxy,
  with tinyproxy.conf, on a free 127.0.0.1 port, basic auth required) for the whole run and
  stop it by its PID at the end: {proxy} is its URL with the credentials, {proxy_noauth}
  without them (the proxy then refuses with 407).

Prints the matrix (rows server/client/transport, columns cases; cells ok, FAIL, allow =
a failure listed in known-deviations.json, "-" = not part of that client's cases), then
every failure and allowed deviation with its detail. Exit status: 0 if every requested
cell passed or is allowed; 1 if anything failed or a requested peer could not run;
2 on a usage error. Logs and results.json go to tests/interop/logs/latest/.
"""

import argparse
import fnmatch
import json
import os
import re
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
VENV_PY = os.path.join(HERE, ".venv", "bin", "python")

CASES = [
    "connect",
    "text",
    "binary",
    "text_100k",
    "binary_100k",
    "heartbeat",
    "over_limit",
    "client_close",
    "server_close",
]
BROWSER_CASES = ["demo_page"] + CASES
# Cases only some rows run: binary_b64 (forceBase64, the v3 rows), proxy_refused (the
# proxy rows: a proxy that refuses this client gives a typed error naming its status).
V3_CASES = CASES + ["binary_b64"]
# The deflate rows: deflate (permessage-deflate agreed, on the client's side and in the
# server's answer to `__deflate__`, then a 100 kB echo) and no_deflate (nothing agreed).
DEFLATE_CASES = ["text", "binary", "text_100k", "binary_100k", "deflate"]
ALL_CASES = BROWSER_CASES + ["binary_b64", "proxy_refused", "deflate", "no_deflate"]
TRANSPORTS = ["polling", "websocket", "upgrade"]
TLS_CA = os.path.join(HERE, "tls", "ca.pem")
PROXY_CONF = os.path.join(HERE, "tinyproxy.conf")
PROXY_USER, PROXY_PASSWORD = "eio", "interop-secret"

BUILTIN_SERVERS = {
    "node": {"argv": ["node", "node-server.js", "--demo", "{port}"], "cwd": HERE, "demo": True},
    "node-allow-eio3": {"argv": ["node", "node-server.js", "--allow-eio3", "{port}"], "cwd": HERE,
                        "demo": False},
    "node-eio3": {"argv": ["node", "node-server.js", "--eio3", "{port}"], "cwd": HERE,
                  "demo": False, "ready_eio": 3},
    "python": {"argv": [VENV_PY, "python-server.py", "{port}"], "cwd": HERE, "demo": False},
    "node-deflate": {"argv": ["node", "node-server.js", "--deflate", "{port}"], "cwd": HERE,
                     "demo": False},
}
BUILTIN_CLIENTS = {
    "node": {"argv": ["node", "node-client.mjs", "--url", "{url}", "--transport", "{transport}"],
             "cwd": HERE, "cases": CASES, "needs_demo": False},
    "python": {"argv": [VENV_PY, "python-client.py", "--url", "{url}", "--transport", "{transport}"],
               "cwd": HERE, "cases": CASES, "needs_demo": False},
    "browser": {"argv": ["node", "browser.mjs", "--url", "{url}", "--transport", "{transport}"],
                "cwd": HERE, "cases": BROWSER_CASES, "needs_demo": True},
    "node-eio3": {"argv": ["node", "node-client.mjs", "--eio3", "--url", "{url}", "--transport",
                           "{transport}", "--cases", "{cases}"],
                  "cwd": HERE, "cases": V3_CASES, "needs_demo": False, "custom": True},
    "browser-eio3": {"argv": ["node", "browser.mjs", "--eio3", "--url", "{url}", "--transport",
                              "{transport}", "--cases", "{cases}"],
                     "cwd": HERE, "cases": V3_CASES, "needs_demo": True, "custom": True},
    "node-no-deflate": {"argv": ["node", "node-client.mjs", "--no-deflate", "--url", "{url}",
                                 "--transport", "{transport}", "--cases", "{cases}"],
                        "cwd": HERE, "cases": CASES, "needs_demo": False, "custom": True},
    "python-async-deflate": {"argv": [VENV_PY, "python-async-client.py", "--compress", "15",
                                      "--url", "{url}", "--transport", "{transport}",
                                      "--cases", "{cases}"],
                             "cwd": HERE, "cases": DEFLATE_CASES, "needs_demo": False,
                             "custom": True},
}


def log(msg):
    print(f"[interop {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(proc, grace_s=5.0):
    """Stops a process this script started, and its process group (it was started as the
    leader of a new session, so the group is exactly what it spawned): SIGTERM, a bounded
    wait, then SIGKILL."""
    if proc is None or proc.poll() is not None:
        return
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def tail(path, n=15):
    try:
        with open(path, "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
        return "\n".join("      | " + line for line in lines[-n:])
    except OSError:
        return "      | (no log)"


def wait_ready(proc, port, timeout_s, tls=False, eio=4):
    """Bounded readiness check: an Engine.IO polling handshake answered with an open
    packet (v3: length-prefixed). Returns None or a failure text."""
    scheme = "https" if tls else "http"
    url = f"{scheme}://127.0.0.1:{port}/engine.io/?EIO={eio}&transport=polling"
    context = ssl.create_default_context(cafile=TLS_CA) if tls else None
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return f"server exited with status {proc.returncode} before it was ready"
        try:
            with urllib.request.urlopen(url, timeout=1.0, context=context) as r:
                body = r.read(4096).decode("utf-8", "replace")
                opened = body.startswith("0{") if eio == 4 else re.match(r"^\d+:0\{", body)
                if r.status == 200 and opened:
                    return None
                last = f"HTTP {r.status} {body[:80]!r}"
        except (urllib.error.URLError, OSError, ValueError) as e:
            last = str(e)
        time.sleep(0.1)
    return f"no Engine.IO handshake on 127.0.0.1:{port} within {timeout_s:.0f} s (last: {last})"


class Proxy:
    """One tinyproxy started for the run, from tinyproxy.conf (basic auth required)."""

    def __init__(self, log_dir, timeout_s=10.0):
        self.proc = None
        self.port = free_port()
        self.error = None
        binary = shutil.which("tinyproxy") or ("/usr/bin/tinyproxy" if os.path.exists("/usr/bin/tinyproxy") else None)
        if binary is None:
            self.error = "tinyproxy is not installed (run tests/interop/install.sh)"
            return
        with open(PROXY_CONF, encoding="utf-8") as f:
            conf = f.read()
        conf = conf.replace("{port}", str(self.port)).replace("{user}", PROXY_USER)
        conf = conf.replace("{password}", PROXY_PASSWORD)
        path = os.path.join(log_dir, "tinyproxy.conf")
        with open(path, "w", encoding="utf-8") as f:
            f.write(conf)
        self.log = os.path.join(log_dir, "proxy-tinyproxy.log")
        with open(self.log, "wb") as plog:
            # -d: stay in the foreground, so that the PID is the proxy's own.
            self.proc = subprocess.Popen([binary, "-d", "-c", path], stdin=subprocess.DEVNULL,
                                         stdout=plog, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.error = f"tinyproxy exited with status {self.proc.returncode} (see {self.log})"
                return
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    log(f"proxy: tinyproxy ready on 127.0.0.1:{self.port} (pid {self.proc.pid})")
                    return
            except OSError:
                time.sleep(0.1)
        self.error = f"tinyproxy did not listen on 127.0.0.1:{self.port} within {timeout_s:.0f} s"

    def url(self, auth):
        cred = f"{PROXY_USER}:{PROXY_PASSWORD}@" if auth else ""
        return f"http://{cred}127.0.0.1:{self.port}"

    def stop(self):
        if self.proc is not None:
            stop_process(self.proc)
            log(f"proxy: tinyproxy stopped (pid {self.proc.pid}, status {self.proc.returncode})")


def load_deviations(path):
    if not path or not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    entries = data.get("deviations", [])
    for e in entries:
        for key in ("server", "client", "transport", "case", "reason"):
            if key not in e:
                raise ValueError(f"{path}: entry {e} lacks {key!r}")
        e["_matched"] = 0  # cells that ran and matched this entry
        e["_allowed"] = 0  # of those, the failing ones (shown as "allow")
    return entries


def find_deviation(entries, server, client, transport, case):
    for e in entries:
        if (fnmatch.fnmatchcase(server, e["server"]) and fnmatch.fnmatchcase(client, e["client"])
                and fnmatch.fnmatchcase(transport, e["transport"])
                and fnmatch.fnmatchcase(case, e["case"])):
            return e
    return None


def parse_named(specs, what):
    out = {}
    for spec in specs or []:
        name, sep, cmd = spec.partition("=")
        if not sep or not name or not cmd.strip():
            sys.exit(f"run.py: --{what} wants NAME=COMMAND, got {spec!r}")
        out[name] = cmd
    return out


def main():
    ap = argparse.ArgumentParser(
        description="Engine.IO interop matrix (see the module docstring).",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--servers", help="comma-separated server names (default: all known)")
    ap.add_argument("--clients", help="comma-separated client names (default: all known)")
    ap.add_argument("--transports", default=",".join(TRANSPORTS))
    ap.add_argument("--cases", help="comma-separated cases (default: all of each client's)")
    ap.add_argument("--server", action="append", metavar="NAME=COMMAND",
                    help="an extra server; COMMAND contains {port}")
    ap.add_argument("--client", action="append", metavar="NAME=COMMAND",
                    help="an extra client; COMMAND contains {url} and {transport}")
    ap.add_argument("--demo", action="append", default=[], metavar="NAME",
                    help="server NAME serves the demo page (browser client runs against it)")
    ap.add_argument("--tls", action="append", default=[], metavar="NAME",
                    help="server NAME speaks https with tls/server.pem (trust tls/ca.pem)")
    ap.add_argument("--eio3-ready", action="append", default=[], metavar="NAME",
                    help="server NAME is waited for with an EIO=3 handshake")
    ap.add_argument("--client-cases", action="append", default=[], metavar="NAME=a,b",
                    help="the cases of client NAME (default: the nine common cases)")
    ap.add_argument("--deviations", default=os.path.join(HERE, "known-deviations.json"))
    ap.add_argument("--ready-timeout", type=float, default=20.0,
                    help="seconds to wait for a server's first handshake (default 20)")
    ap.add_argument("--client-timeout", type=float, default=90.0,
                    help="seconds one client run (one transport, all cases) may take (default 90)")
    ap.add_argument("--total-timeout", type=float, default=540.0,
                    help="seconds for the whole matrix; later runs fail as not run (default 540)")
    ap.add_argument("--log-dir", default=os.path.join(HERE, "logs", "latest"))
    a = ap.parse_args()

    started = time.monotonic()
    servers = {n: dict(v) for n, v in BUILTIN_SERVERS.items()}
    for name, cmd in parse_named(a.server, "server").items():
        if "{port}" not in cmd:
            sys.exit(f"run.py: --server {name}: COMMAND must contain {{port}}")
        servers[name] = {"argv": shlex.split(cmd), "cwd": ROOT, "demo": False}
    for flag, names, key, value in (("--demo", a.demo, "demo", True), ("--tls", a.tls, "tls", True),
                                    ("--eio3-ready", a.eio3_ready, "ready_eio", 3)):
        for name in names:
            if name not in servers:
                sys.exit(f"run.py: {flag} {name}: no such server")
            servers[name][key] = value
    clients = {n: dict(v) for n, v in BUILTIN_CLIENTS.items()}
    for name, cmd in parse_named(a.client, "client").items():
        if "{url}" not in cmd or "{transport}" not in cmd:
            sys.exit(f"run.py: --client {name}: COMMAND must contain {{url}} and {{transport}}")
        clients[name] = {"argv": shlex.split(cmd), "cwd": ROOT, "cases": CASES, "needs_demo": False,
                         "custom": True}
    for spec in a.client_cases:
        name, sep, names = spec.partition("=")
        if not sep or name not in clients:
            sys.exit(f"run.py: --client-cases {spec!r}: wants NAME=a,b for a known client")
        cases = [c for c in names.split(",") if c]
        unknown = [c for c in cases if c not in ALL_CASES]
        if unknown:
            sys.exit(f"run.py: --client-cases {name}: unknown cases {unknown}")
        clients[name]["cases"] = cases
        clients[name]["cases_given"] = True

    def pick(arg, known, what):
        names = [n for n in (arg.split(",") if arg else list(known)) if n]
        unknown = [n for n in names if n not in known]
        if unknown:
            sys.exit(f"run.py: unknown {what} {unknown}; known: {sorted(known)}")
        return names

    server_names = pick(a.servers, servers, "servers")
    client_names = pick(a.clients, clients, "clients")
    transports = pick(a.transports, {t: 1 for t in TRANSPORTS}, "transports")
    only_cases = None
    if a.cases:
        only_cases = [c for c in a.cases.split(",") if c]
        unknown = [c for c in only_cases if c not in ALL_CASES]
        if unknown:
            sys.exit(f"run.py: unknown cases {unknown}; known: {ALL_CASES}")
    try:
        deviations = load_deviations(a.deviations)
    except (ValueError, json.JSONDecodeError) as e:
        sys.exit(f"run.py: bad deviations file: {e}")

    if os.path.isdir(a.log_dir):
        shutil.rmtree(a.log_dir)
    os.makedirs(a.log_dir, exist_ok=True)

    results = []  # dicts: server, client, transport, case, status, ms, detail
    not_applicable = []
    # One real HTTP proxy for the run, when a client asks for it.
    proxy = None
    if any("{proxy" in x for n in client_names for x in clients[n]["argv"]):
        proxy = Proxy(a.log_dir)
        if proxy.error:
            log(f"proxy: {proxy.error}")

    def record(server, client, transport, case, ok, ms, detail, harness=False):
        # harness=True: no result from the client (it or the server could not run); such
        # failures are never allowed by known-deviations.json.
        status = "ok" if ok else "FAIL"
        dev = None if harness else find_deviation(deviations, server, client, transport, case)
        if dev is not None:
            dev["_matched"] += 1
            if not ok:
                dev["_allowed"] += 1
                status = "allow"
        results.append({"server": server, "client": client, "transport": transport,
                        "case": case, "status": status, "ms": ms, "detail": detail,
                        "allowed_because": dev["reason"] if dev is not None and not ok else None,
                        "deviation_entry": dev is not None})

    def cases_of(client):
        cs = clients[client]["cases"]
        return [c for c in cs if only_cases is None or c in only_cases]

    for sname in server_names:
        sv = servers[sname]
        runs = []
        for cname in client_names:
            if clients[cname]["needs_demo"] and not sv["demo"]:
                not_applicable.append(f"{sname} x {cname}: not run, server {sname} does not serve "
                                      f"the demo page (flag it with --demo {sname})")
                continue
            for t in transports:
                if cases_of(cname):
                    runs.append((cname, t))
        if not runs:
            continue

        def fail_runs(detail, remaining):
            for cname, t in remaining:
                for case in cases_of(cname):
                    record(sname, cname, t, case, False, 0, detail, harness=True)

        if time.monotonic() - started > a.total_timeout:
            fail_runs(f"not run: the matrix exceeded --total-timeout {a.total_timeout:.0f} s", runs)
            continue

        port = free_port()
        argv = [x.replace("{port}", str(port)) for x in sv["argv"]]
        server_log = os.path.join(a.log_dir, f"server-{sname}.log")
        log(f"server {sname}: starting on 127.0.0.1:{port}: {shlex.join(argv)}")
        proc = None
        try:
            with open(server_log, "wb") as slog:
                try:
                    proc = subprocess.Popen(
                        argv, cwd=sv["cwd"], stdin=subprocess.DEVNULL, stdout=slog,
                        stderr=subprocess.STDOUT, start_new_session=True,
                        env=dict(os.environ, PORT=str(port)))
                except OSError as e:
                    fail_runs(f"server {sname} could not start: {e} (run tests/interop/install.sh?)", runs)
                    log(f"server {sname}: could not start: {e}")
                    continue
            err = wait_ready(proc, port, a.ready_timeout, tls=sv.get("tls", False),
                         eio=sv.get("ready_eio", 4))
            if err:
                log(f"server {sname}: {err}\n{tail(server_log)}")
                fail_runs(f"server {sname} not ready: {err}", runs)
                continue
            log(f"server {sname}: ready (pid {proc.pid})")

            for i, (cname, t) in enumerate(runs):
                if proc.poll() is not None:
                    fail_runs(f"server {sname} exited with status {proc.returncode} "
                              f"(see {server_log})", runs[i:])
                    break
                if time.monotonic() - started > a.total_timeout:
                    fail_runs(f"not run: the matrix exceeded --total-timeout {a.total_timeout:.0f} s", runs[i:])
                    break
                run_client(sname, cname, t, port, clients[cname], cases_of(cname), only_cases,
                           a.client_timeout, a.log_dir, record, tls=sv.get("tls", False),
                           proxy=proxy)
        finally:
            stop_process(proc)
            if proc is not None:
                log(f"server {sname}: stopped (pid {proc.pid}, status {proc.returncode})")

    if proxy is not None:
        proxy.stop()
    total_s = time.monotonic() - started
    print_report(results, not_applicable, deviations, server_names, client_names, transports, total_s)
    with open(os.path.join(a.log_dir, "results.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, indent=1, ensure_ascii=False)

    failed = sum(r["status"] == "FAIL" for r in results)
    if not results:
        print("run.py: nothing ran", file=sys.stderr)
        return 1
    return 1 if failed else 0


def run_client(sname, cname, transport, port, cl, cases, only_cases, timeout_s, log_dir, record,
               tls=False, proxy=None):
    url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    if any("{proxy" in x for x in cl["argv"]) and (proxy is None or proxy.error):
        why = proxy.error if proxy is not None else "no proxy was started"
        for case in cases:
            record(sname, cname, transport, case, False, 0, f"the proxy is not running: {why}",
                   harness=True)
        return
    argv = []
    for x in cl["argv"]:
        x = x.replace("{url}", url).replace("{transport}", transport)
        x = x.replace("{cases}", ",".join(cases)).replace("{cacert}", TLS_CA)
        if proxy is not None:
            x = x.replace("{proxy}", proxy.url(True)).replace("{proxy_noauth}", proxy.url(False))
        argv.append(x)
    if (only_cases is not None or cl.get("cases_given")) and not cl.get("custom"):
        argv += ["--cases", ",".join(cases)]
    client_log = os.path.join(log_dir, f"client-{sname}-{cname}-{transport}.log")
    t0 = time.monotonic()
    status_note = ""
    stdout = b""
    proc = None
    with open(client_log, "wb") as clog:
        clog.write(f"$ {shlex.join(argv)}\n".encode())
        clog.flush()
        try:
            proc = subprocess.Popen(argv, cwd=cl["cwd"], stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=clog, start_new_session=True)
        except OSError as e:
            status_note = f"client {cname} could not start: {e} (run tests/interop/install.sh?)"
        if proc is not None:
            try:
                stdout, _ = proc.communicate(timeout=timeout_s)
                if proc.returncode != 0:
                    status_note = f"client exited with status {proc.returncode}"
            except subprocess.TimeoutExpired:
                stop_process(proc)
                stdout, _ = proc.communicate()
                status_note = f"client run exceeded {timeout_s:.0f} s and was stopped"
        clog.write(b"\n--- stdout ---\n" + (stdout or b""))
    got = {}
    for line in (stdout or b"").decode("utf-8", "replace").splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            r = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(r, dict) and r.get("case") in cases and r.get("transport") == transport:
            got[r["case"]] = r
    for case in cases:
        r = got.get(case)
        if r is None:
            detail = "no result line from the client"
            if status_note:
                detail += f" ({status_note})"
            detail += f"; log {os.path.relpath(client_log, ROOT)}"
            record(sname, cname, transport, case, False, 0, detail, harness=True)
        else:
            record(sname, cname, transport, case, r.get("ok") is True, int(r.get("ms", 0)),
                   str(r.get("detail", "")))
    n_ok = sum(1 for c in cases if c in got and got[c].get("ok") is True)
    log(f"{sname} x {cname} x {transport}: {n_ok}/{len(cases)} ok in "
        f"{time.monotonic() - t0:.1f} s{' — ' + status_note if status_note else ''}")


def print_report(results, not_applicable, deviations, server_names, client_names, transports, total_s):
    columns = [c for c in ALL_CASES if any(r["case"] == c for r in results)]
    rows = []
    for s in server_names:
        for c in client_names:
            for t in transports:
                if any(r["server"] == s and r["client"] == c and r["transport"] == t for r in results):
                    rows.append((s, c, t))
    cell = {(r["server"], r["client"], r["transport"], r["case"]): r["status"] for r in results}
    label_w = max([len("server/client/transport")] + [len(f"{s}/{c}/{t}") for s, c, t in rows])
    widths = [max(len(c), 5) for c in columns]
    print()
    print("=" * 20 + " interop matrix")
    print("  ".join([f"{'server/client/transport':<{label_w}}"] + [f"{c:<{w}}" for c, w in zip(columns, widths)]))
    for s, c, t in rows:
        cells = [cell.get((s, c, t, col), "-") for col in columns]
        print("  ".join([f"{s + '/' + c + '/' + t:<{label_w}}"] + [f"{x:<{w}}" for x, w in zip(cells, widths)]))
    print("(ok = passed, FAIL = failed, allow = failed but listed in known-deviations.json, "
          "- = not one of that client's cases)")

    for title, status in (("failures", "FAIL"), ("allowed deviations", "allow")):
        items = [r for r in results if r["status"] == status]
        if not items:
            continue
        print()
        print("=" * 20 + f" {title} ({len(items)})")
        # One line per row and detail: cases of a row that failed the same way are merged.
        groups = {}
        for r in items:
            key = (r["server"], r["client"], r["transport"], r["detail"], r["allowed_because"])
            groups.setdefault(key, []).append(r["case"])
        for (s, c, t, detail, because), cases in groups.items():
            names = cases[0] if len(cases) == 1 else "{" + ",".join(cases) + "}"
            print(f"{s}/{c}/{t}/{names}: {detail}")
            if because:
                print(f"    allowed because: {because}")
    if not_applicable:
        print()
        print("=" * 20 + " not applicable (by design, not counted)")
        for line in not_applicable:
            print(line)
    # An entry marked "intermittent": true describes a race that fails only sometimes, so
    # a run where it passed is expected and not reported.
    stale = [e for e in deviations
             if e["_matched"] and not e["_allowed"] and not e.get("intermittent")]
    if stale:
        print()
        print("=" * 20 + " known-deviations.json entries that matched only passing cells (remove them?)")
        for e in stale:
            print(f"{e['server']}/{e['client']}/{e['transport']}/{e['case']}: {e['reason']}")

    passed = sum(r["status"] == "ok" for r in results)
    failed = sum(r["status"] == "FAIL" for r in results)
    allowed = sum(r["status"] == "allow" for r in results)
    print()
    print(f"interop matrix took {total_s:.1f} s; {allowed} allowed deviations "
          f"(known-deviations.json)")
    print(f"interop: {passed} passed, {failed} failed")


if __name__ == "__main__":
    sys.exit(main())
