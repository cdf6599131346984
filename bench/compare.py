#!/usr/bin/env python3
"""Runs the engineio-rs benchmark comparison in one go and prints one table.

For each server (ours on tokio and smol, engineioxide, Node engine.io on uWebSockets.js and
on ws, python-engineio): start it pinned to CPU 0 (`taskset -c 0`), wait until it answers a
handshake, run the load generator pinned to CPU 1 (echo with 10 and with 1 message in flight,
long-polling, polling-to-WebSocket upgrades, broadcast), stop it; then, on a fresh process,
idle connections stepwise (server RSS per connection). Rounds alternate the order of the
servers. Ours also run on two cores (THREADS=2, CPUs 0-1), and engineioxide likewise.

Only processes this script started are stopped, by their PID. Every wait is bounded.
Results: printed, and written to bench/results/<timestamp>/ (raw RESULT lines, JSON, table).

    bench/install.sh && bench/compare.sh                # the full run (~10 min a round)
    ROUNDS=3 bench/compare.sh                           # three alternating rounds
    QUICK=1 bench/compare.sh                            # a 2-second smoke run of everything
    SERVERS=tokio,engineioxide bench/compare.sh         # a subset

Environment (or the matching --options, see --help): ROUNDS, SERVERS, PORT, DURATION,
WARMUP, QUICK, HOLD (seconds idle connections stay open after the last step, to check that
every session is pinged on time; ours only, default 27), TWO_CORE (0 to skip the 2-core rows),
NOISY (rerun a throughput run, at most twice, when other processes used more than this % of
a core during it; default 20), TESTS (a subset of the throughput tests; `none` for
idle connections only), CONNS (0: no idle connections), CONNS_STEPS (their steps, for every
server).
"""

import argparse
import json
import os
import resource
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

BENCH = Path(__file__).resolve().parent
BIN = BENCH / "target" / "bin"
LOADGEN = BIN / "eio-bench"
NODE_DIR = BENCH / "peers" / "node"
PY_DIR = BENCH / "peers" / "python"

OURS = ("tokio", "smol")
# NAME=PATH servers given with --servers (comparison builds of ours).
OURS_EXTRA = set()
PEERS = ("engineioxide", "node-uws", "node-ws", "python")


def server_specs(port):
    """name -> (argv, cwd, env additions, CPUs, description)."""
    uvicorn = [str(PY_DIR / "venv" / "bin" / "uvicorn"), "server:app", "--host", "127.0.0.1",
               "--port", str(port), "--log-level", "warning", "--no-access-log"]
    specs = {
        "tokio": ([str(BIN / "tokio-bench-server")], BENCH, {"THREADS": "1"}, "0",
                  "engineio-tokio bench_server, current-thread runtime"),
        "smol": ([str(BIN / "smol-bench-server")], BENCH, {"THREADS": "1"}, "0",
                 "engineio-smol smol_bench_server, 1 executor thread"),
        "engineioxide": ([str(BIN / "engineioxide-bench-server")], BENCH, {"THREADS": "1"}, "0",
                         "engineioxide 0.17.9 in axum 0.8.9, current-thread runtime"),
        "node-uws": (["node", "server-uws.js"], NODE_DIR, {}, "0",
                     "engine.io 6.6.12 uServer on uWebSockets.js 20.30 (npm republish)"),
        "node-ws": (["node", "server-ws.js"], NODE_DIR, {}, "0",
                    "engine.io 6.6.12 on node:http + ws 8"),
        "python": (uvicorn, PY_DIR, {}, "0", "python-engineio 4.15.1 AsyncServer under uvicorn 0.54.0"),
    }
    for name in ("tokio", "smol", "engineioxide"):
        argv, cwd, _, _, desc = specs[name]
        specs[f"{name}-2core"] = (argv, cwd, {"THREADS": "2"}, "0,1",
                                  desc.split(",")[0] + ", 2 threads on CPUs 0-1")
    return specs


def env_default(name, default, kind=str):
    value = os.environ.get(name)
    return kind(value) if value not in (None, "") else default


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=env_default("ROUNDS", 1, int))
    p.add_argument("--servers", default=env_default("SERVERS", ""),
                   help="comma-separated subset of: " + ",".join(OURS + PEERS)
                   + " (and NAME-2core for tokio, smol, engineioxide)")
    p.add_argument("--port", type=int, default=env_default("PORT", 3000, int))
    p.add_argument("--duration", type=float, default=env_default("DURATION", None, float),
                   help="seconds per echo and poll run (default 8; upgrade and broadcast half)")
    p.add_argument("--warmup", type=float, default=env_default("WARMUP", None, float))
    p.add_argument("--hold", type=float, default=env_default("HOLD", None, float))
    p.add_argument("--quick", action="store_true", default=env_default("QUICK", "0") == "1",
                   help="2-second runs, 1-second settles, no ping hold: checks that everything works")
    p.add_argument("--two-core", type=int, default=env_default("TWO_CORE", 1, int))
    p.add_argument("--tests", default=env_default("TESTS", ""),
                   help="comma-separated subset of the throughput tests: echo10, echo1, poll, "
                   "upgrade, broadcast, echo16k, echo16k1, echo1m (default all); conns always runs "
                   "unless CONNS=0")
    p.add_argument("--conns", type=int, default=env_default("CONNS", 1, int))
    p.add_argument("--conns-steps", default=env_default("CONNS_STEPS", ""),
                   help="the idle-connection steps for every server (default 1000,5000,10000, "
                   "and 19000 more for ours)")
    p.add_argument("--deflate", action="store_true", default=env_default("DEFLATE", "0") == "1",
                   help="the load generator offers permessage-deflate on every WebSocket")
    p.add_argument("--noisy", type=float, default=env_default("NOISY", 20.0, float),
                   help="rerun a throughput run (at most twice) when other processes used more than "
                   "this %% of a core during it (default 20)")
    a = p.parse_args()
    if a.duration is None:
        a.duration = 2.0 if a.quick else 8.0
    if a.warmup is None:
        a.warmup = 0.5 if a.quick else 1.0
    if a.hold is None:
        a.hold = 0.0 if a.quick else 27.0
    a.rounds = max(1, min(a.rounds, 5))
    a.duration = max(1.0, min(a.duration, 60.0))
    return a


def port_free(port):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def pick_port(wanted):
    for port in range(wanted, wanted + 100):
        if port_free(port):
            if port != wanted:
                print(f"# port {wanted} is taken on 127.0.0.1: using {port}")
            return port
    sys.exit(f"no free port in {wanted}..{wanted + 99}")


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 20000) if hard != resource.RLIM_INFINITY else 20000
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Server:
    """One server process started by this script (and only ever stopped by its PID)."""

    def __init__(self, name, spec, port, logdir):
        self.name = name
        self.argv, self.cwd, self.env, self.cpus, self.desc = spec
        self.port = port
        self.log = open(logdir / f"server-{name}.log", "ab")
        self.proc = None

    def start(self):
        if not port_free(self.port):
            raise RuntimeError(f"port {self.port} is busy before starting {self.name}")
        env = dict(os.environ, PORT=str(self.port), **self.env)
        # taskset execs the server: the PID is the server's own.
        self.proc = subprocess.Popen(["taskset", "-c", self.cpus] + self.argv, cwd=self.cwd, env=env,
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        url = f"http://127.0.0.1:{self.port}/engine.io/?EIO=4&transport=polling"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {self.log.name}")
            try:
                with urllib.request.urlopen(url, timeout=1) as r:
                    if b'"sid"' in r.read():
                        return self.proc.pid
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer a handshake within 20 s; see {self.log.name}")

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None
        # The port must be free again before the next server (bounded).
        deadline = time.monotonic() + 10
        while not port_free(self.port) and time.monotonic() < deadline:
            time.sleep(0.1)


def parse_result(line):
    fields = {}
    for part in shlex.split(line[len("RESULT "):]):
        if "=" in part:
            k, v = part.split("=", 1)
            try:
                fields[k] = float(v)
            except ValueError:
                fields[k] = v
    return fields


def run_loadgen(mode, args, port, pid, label, raw, timeout):
    cmd = ["taskset", "-c", "1", str(LOADGEN), mode, "--port", str(port), "--server-pid", str(pid),
           "--label", label, "--hard-timeout", str(int(timeout))] + [str(a) for a in args]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 10)
    except subprocess.TimeoutExpired:
        print(f"#   {label} {mode}: load generator timed out")
        return []
    results = []
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            raw.write(line + "\n")
            results.append(parse_result(line))
        elif line.startswith("  "):
            print("#  " + line.strip())
    if out.returncode != 0:
        print(f"#   {label} {mode}: exit {out.returncode}: {out.stderr.strip()[-300:]}")
    raw.flush()
    return results


def measure(mode, args, port, pid, label, raw, noisy):
    """One throughput run; rerun (at most twice, after a pause) while something else on the
    machine used more than `noisy` % of a core during it. Keeps the quietest run."""
    best = None
    for attempt in range(3):
        res = run_loadgen(mode, args, port, pid, label, raw, timeout=120)
        other = res[0].get("other_cpu_pct", 0.0) if res else 0.0
        if best is None or (res and other < best[0]):
            best = (other, res)
        if not res or other <= noisy or attempt == 2:
            break
        print(f"#   {label} {mode}: other processes used {other:.0f}% CPU during the run: "
              f"rerunning in 5 s ({attempt + 1}/2)")
        time.sleep(5)
    return best[1]


def throughput_tests(a):
    d, w = a.duration, a.warmup
    half = max(1.0, d / 2)
    common = ["--warmup", w]
    tests = [
        ("echo10", "echo", ["--clients", 100, "--size", 32, "--window", 10, "--batch", 10,
                            "--duration", d] + common),
        ("echo1", "echo", ["--clients", 100, "--size", 32, "--window", 1, "--duration", d] + common),
        ("poll", "poll", ["--clients", 50, "--size", 32, "--duration", d] + common),
        ("upgrade", "upgrade", ["--clients", 20, "--size", 32, "--messages", 10,
                                "--duration", half] + common),
        ("broadcast", "broadcast", ["--clients", 1000, "--size", 32, "--duration", half]),
        # The WebSocket layer with larger messages: 16 KiB with 10 and 1 in flight, and
        # 900 kB (under the 1e6 max payload) one at a time.
        ("echo16k", "echo", ["--clients", 100, "--size", 16384, "--window", 10, "--batch", 10,
                             "--duration", d] + common),
        ("echo16k1", "echo", ["--clients", 100, "--size", 16384, "--window", 1,
                              "--duration", d] + common),
        ("echo1m", "echo", ["--clients", 10, "--size", 900000, "--window", 1,
                            "--duration", d] + common),
    ]
    if a.tests:
        wanted = a.tests.split(",")
        tests = [t for t in tests if t[0] in wanted]
    if a.deflate:
        # Every WebSocket echo offers permessage-deflate (the server decides).
        tests = [(n, m, args + ["--deflate"] if n.startswith("echo") else args)
                 for n, m, args in tests]
    return tests


def conns_args(a, name):
    ours = name in OURS or name in OURS_EXTRA
    steps = "1000,5000,10000,19000" if ours else "1000,5000,10000"
    if a.conns_steps:
        steps = a.conns_steps
    hold = a.hold if ours else 0
    deflate = ["--deflate"] if a.deflate else []
    return ["--steps", steps, "--settle", 1 if a.quick else 3, "--hold", hold] + deflate


def median(values):
    values = [v for v in values if isinstance(v, float) and v == v]
    return statistics.median(values) if values else float("nan")


def fmt_int(v):
    return "-" if v != v else f"{v:,.0f}"


def fmt(v, digits=2, unit=""):
    return "-" if v != v else f"{v:.{digits}f}{unit}"


def summarize(names, results):
    """results: name -> test -> list of RESULT dicts (one per round). Returns rows of metrics."""
    rows = {}
    for name in names:
        r = results.get(name, {})

        def m(test, key):
            return median([x.get(key, float("nan")) for x in r.get(test, [])])

        conns = r.get("conns", [])
        step = {int(x["step"]): x for x in conns if x.get("mode") == "conns"}
        summary = next((x for x in conns if x.get("mode") == "conns_summary"), {})
        big = step.get(19000)
        errors = sum(x.get("errors", 0) + x.get("connect_failed", 0) + x.get("incomplete_rounds", 0)
                     for t in ("echo10", "echo1", "poll", "upgrade", "broadcast") for x in r.get(t, []))
        rows[name] = {
            "echo": m("echo10", "msgs_per_s"),
            "echo_cpu": m("echo10", "msgs_per_server_cpu_s"),
            "echo_p50": m("echo10", "p50_us") / 1000,
            "echo_p99": m("echo10", "p99_us") / 1000,
            "echo_srv_cpu": m("echo10", "server_cpu_pct"),
            "echo_lg_cpu": m("echo10", "loadgen_cpu_pct"),
            "echo1": m("echo1", "msgs_per_s"),
            "echo1_cpu": m("echo1", "msgs_per_server_cpu_s"),
            "poll": m("poll", "rt_per_s"),
            "poll_cpu": m("poll", "rt_per_server_cpu_s"),
            "poll_lg_cpu": m("poll", "loadgen_cpu_pct"),
            "poll_srv_cpu": m("poll", "server_cpu_pct"),
            "upgrade": m("upgrade", "upgrades_per_s"),
            "bcast": m("broadcast", "deliveries_per_s"),
            "bcast_last": m("broadcast", "last_p50_us") / 1000,
            "rss_conn": float(step[10000]["incr_bytes_per_conn"]) if 10000 in step and 5000 in step
            else float("nan"),
            "rss_10k": float(step[10000]["rss_kb"]) / 1024 if 10000 in step else float("nan"),
            "c19k": (f"{int(big['alive'])}/19000, {big['rss_kb'] / 1024:.0f} MiB, "
                     f"{summary.get('late_pings', 0):.0f} late" + (
                         f", {summary.get('overdue', 0):.0f} overdue" if summary.get("hold_s") else ""))
            if big else "-",
            "errors": errors + summary.get("failed", 0) + summary.get("dropped", 0),
            "other_cpu": median([x.get("other_cpu_pct", float("nan"))
                                 for t in ("echo10", "echo1", "poll") for x in r.get(t, [])]),
        }
    return rows


def span(results, name, test, key):
    """'median (min-max)' of one figure over the rounds."""
    values = [x.get(key, float("nan")) for x in results.get(name, {}).get(test, [])]
    values = [v for v in values if isinstance(v, float) and v == v]
    if not values:
        return "-"
    med = statistics.median(values)
    if len(values) == 1:
        return f"{med:,.0f}"
    return f"{med:,.0f} ({min(values):,.0f}-{max(values):,.0f})"


def ws_table(names, results, rows):
    """The WebSocket layer's figures: medians with the range over the rounds."""
    tests = [("echo10", "32 B, 10 in flight"), ("echo1", "32 B, 1 in flight"),
             ("echo16k", "16 KiB, 10 in flight"), ("echo16k1", "16 KiB, 1 in flight"),
             ("echo1m", "900 kB, 1 in flight")]
    present = [(t, d) for t, d in tests if any(results.get(n, {}).get(t) for n in names)]
    if not present:
        return ""
    out = ["| server | " + " | ".join(f"{d}: msgs per server CPU-s" for _, d in present)
           + " | 32 B, 1 in flight: msgs/s | RSS per idle conn 5k→10k | errors |",
           "|" + "---|" * (len(present) + 4)]
    for n in names:
        errors = sum(x.get("errors", 0) + x.get("connect_failed", 0)
                     for t, _ in present for x in results.get(n, {}).get(t, []))
        cells = [span(results, n, t, "msgs_per_server_cpu_s") for t, _ in present]
        out.append(f"| {n} | " + " | ".join(cells) + f" | {span(results, n, 'echo1', 'msgs_per_s')} | "
                   f"{fmt(rows[n]['rss_conn'] / 1000, 2, ' KB')} | {errors:.0f} |")
    out.append("")
    out.append("Medians over the rounds, (min-max) in brackets.")
    return "\n".join(out)


def table(names, rows, specs, rounds):
    out = []
    out.append(f"| server | WS echo msgs/s (100 clients, 32 B, 10 in flight) | msgs per server CPU-s | "
               f"p50 / p99 ms | 1 in flight msgs/s | polling round trips/s | upgrades/s | "
               f"broadcast deliveries/s (last client p50 ms) | RSS per idle conn 5k→10k | RSS at 10k | "
               f"19k idle conns | errors | server / load generator CPU % (echo; poll) | other CPU % |")
    out.append("|" + "---|" * 14)
    for n in names:
        r = rows[n]
        out.append(
            f"| {n} | {fmt_int(r['echo'])} | {fmt_int(r['echo_cpu'])} | {fmt(r['echo_p50'])} / {fmt(r['echo_p99'])} | "
            f"{fmt_int(r['echo1'])} | {fmt_int(r['poll'])} | {fmt_int(r['upgrade'])} | "
            f"{fmt_int(r['bcast'])} ({fmt(r['bcast_last'], 1)}) | "
            f"{fmt(r['rss_conn'] / 1000, 1, ' KB')} | {fmt(r['rss_10k'], 0, ' MiB')} | "
            f"{r['c19k']} | {r['errors']:.0f} | {fmt(r['echo_srv_cpu'], 0)} / {fmt(r['echo_lg_cpu'], 0)}; "
            f"{fmt(r['poll_srv_cpu'], 0)} / {fmt(r['poll_lg_cpu'], 0)} | {fmt(r['other_cpu'], 0)} |")
    out.append("")
    out.append(f"Medians over {rounds} round(s). Servers: " + "; ".join(f"{n} = {specs[n][4]}" for n in names) + ".")
    # Ratios of ours to each peer (same run, same machine).
    metrics = [("echo", "echo", True), ("echo/CPU-s", "echo_cpu", True), ("1 in flight", "echo1", True),
               ("polling", "poll", True), ("upgrades", "upgrade", True), ("broadcast", "bcast", True),
               ("RSS/conn (lower is better)", "rss_conn", False)]
    pairs = []
    for ours in names:
        base = ours.replace("-2core", "")
        if base not in OURS and base not in OURS_EXTRA:
            continue
        for peer in names:
            if (peer in OURS or peer in OURS_EXTRA or peer.endswith("-2core") != ours.endswith("-2core")
                    or peer == ours):
                continue
            if peer.replace("-2core", "") in OURS:
                continue
            pairs.append((ours, peer))
    if pairs:
        out.append("")
        out.append("| ours / peer | " + " | ".join(m[0] for m in metrics) + " |")
        out.append("|" + "---|" * (len(metrics) + 1))
        for ours, peer in pairs:
            cells = []
            for _, key, _ in metrics:
                a, b = rows[ours][key], rows[peer][key]
                cells.append("-" if a != a or b != b or b == 0 else f"{a / b:.2f}x")
            out.append(f"| {ours}/{peer} | " + " | ".join(cells) + " |")
    for base in OURS + ("engineioxide",):
        one, two = rows.get(base), rows.get(f"{base}-2core")
        if one and two and one["echo"] == one["echo"] and two["echo"] == two["echo"]:
            out.append("")
            out.append(f"{base}: 2 threads on 2 cores / 1 core: echo {two['echo'] / one['echo']:.2f}x, "
                       f"1 in flight {two['echo1'] / one['echo1']:.2f}x, polling {two['poll'] / one['poll']:.2f}x "
                       "(the second core is shared with the load generator: see docs/benchmarks.md).")
    return "\n".join(out)


def main():
    a = parse_args()
    if shutil.which("taskset") is None:
        sys.exit("taskset (util-linux) is required")
    if not LOADGEN.exists():
        sys.exit("run bench/install.sh first (bench/target/bin/eio-bench is missing)")
    if (os.cpu_count() or 1) < 2:
        sys.exit("needs at least 2 CPUs (server on CPU 0, load generator on CPU 1)")
    fd_limit = raise_fd_limit()
    port = pick_port(a.port)
    specs = server_specs(port)
    if a.servers:
        names = []
        for n in (n.strip() for n in a.servers.split(",")):
            if "=" in n:
                # NAME=PATH: another build of one of our servers (a comparison build),
                # run like ours (THREADS=1 on CPU 0, extra variables after the path as
                # VAR=VALUE separated by ':').
                n, path = n.split("=", 1)
                path, *extra = path.split(":")
                env = {"THREADS": "1", **dict(e.split("=", 1) for e in extra)}
                specs[n] = ([str(Path(path).resolve())], BENCH, env, "0",
                            f"{Path(path).name}" + "".join(f" {e}" for e in extra))
                OURS_EXTRA.add(n)
            if n:
                names.append(n)
        unknown = [n for n in names if n not in specs]
        if unknown:
            sys.exit(f"unknown servers {unknown}; known: {', '.join(specs)}")
    else:
        names = list(OURS + PEERS)
        if a.two_core:
            names += ["tokio-2core", "smol-2core", "engineioxide-2core"]
    stamp = time.strftime("%Y%m%d-%H%M%S")
    outdir = BENCH / "results" / stamp
    outdir.mkdir(parents=True, exist_ok=True)
    raw = open(outdir / "raw.log", "w")
    load = os.getloadavg()
    print(f"# {stamp}: servers {', '.join(names)}; {a.rounds} round(s); echo/poll {a.duration:g} s "
          f"(+{a.warmup:g} s warm-up); port {port}; open files {fd_limit}; "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    if load[0] > 0.5:
        print("# note: the machine is not idle (load average above 0.5): compare ratios, "
              "and watch the 'other CPU %' column")
    results = {n: {} for n in names}
    started = time.monotonic()
    for rnd in range(a.rounds):
        order = names if rnd % 2 == 0 else list(reversed(names))
        for name in order:
            print(f"# round {rnd + 1}/{a.rounds}: {name}")
            server = Server(name, specs[name], port, outdir)
            try:
                pid = server.start()
                time.sleep(0.5)
                for test, mode, args in throughput_tests(a):
                    res = measure(mode, args, port, pid, name, raw, a.noisy)
                    results[name].setdefault(test, []).extend(res)
                    time.sleep(0.5)
            except RuntimeError as e:
                print(f"#   {e}")
            finally:
                server.stop()
            if rnd == 0 and a.conns and not name.endswith("-2core"):
                server = Server(name, specs[name], port, outdir)
                try:
                    pid = server.start()
                    time.sleep(1)
                    res = run_loadgen("conns", conns_args(a, name), port, pid, name, raw, timeout=300)
                    results[name]["conns"] = res
                except RuntimeError as e:
                    print(f"#   {e}")
                finally:
                    server.stop()
    elapsed = time.monotonic() - started
    rows = summarize(names, results)
    text = table(names, rows, specs, a.rounds)
    ws = ws_table(names, results, rows)
    if ws:
        text += "\n\nThe WebSocket layer:\n\n" + ws
    header = (f"Measured {time.strftime('%Y-%m-%d %H:%M')} on {os.cpu_count()} CPUs, load average at start "
              f"{load[0]:.2f}; server on CPU 0, load generator on CPU 1; {a.rounds} round(s), "
              f"echo/poll {a.duration:g} s each; {elapsed / 60:.1f} min in all.")
    print()
    print(header)
    print()
    print(text)
    (outdir / "summary.md").write_text(header + "\n\n" + text + "\n")
    (outdir / "results.json").write_text(json.dumps(results, indent=1))
    print(f"\n# raw RESULT lines, JSON and this table: {outdir.relative_to(BENCH.parent)}/")


if __name__ == "__main__":
    main()
