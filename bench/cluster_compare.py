#!/usr/bin/env python3
"""Three cluster nodes behind nginx against one node, per server CPU-second, with the
load generator (eio-bench). A benchmark, not a test: it prints figures.

    cargo build --release -p engineio-tests --bin cluster_node && cargo build --release -p eio-bench
    bench/cluster_compare.py [--rounds 3] [--duration 5]

Configurations, measured in alternating rounds in one sitting:
  one-node     one cluster_node (tokio), the load generator straight at it
  3-nodes-sid  three nodes (tokio, smol, tokio) behind nginx with sid routing
               (docs/deploy/nginx-sid-routing.conf): no forwarding
  3-nodes-rr   the same behind plain round-robin nginx (nginx-round-robin.conf): polling
               requests are forwarded between nodes
Modes: eio-bench echo (100 WebSocket clients, 10 in flight) and poll (50 polling
clients). "Server" CPU is every node plus nginx (master and workers); both sides are
pinned with taskset (servers on CPU 0, the load generator on CPU 1). Redis, nginx and the
nodes are started here on 127.0.0.1 and stopped by PID.
"""

import argparse
import importlib.util
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
spec = importlib.util.spec_from_file_location("cluster_run", os.path.join(ROOT, "tests", "interop", "cluster", "run.py"))
run = importlib.util.module_from_spec(spec)
spec.loader.exec_module(run)

RELEASE = os.path.join(ROOT, "target", "release")
LOADGEN = os.path.join(RELEASE, "eio-bench")


def children(pid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    stat = f.read()
                ppid = int(stat[stat.rfind(")") + 2:].split()[1])
                if ppid == pid:
                    out.append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    return out


def ticks(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
            fields = stat[stat.rfind(")") + 2:].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, ValueError, IndexError):
            pass
    return total


def loadgen(mode, port, pids, duration, label):
    argv = ["taskset", "-c", "1", LOADGEN, mode, "--port", str(port), "--duration", str(duration),
            "--server-pids", ",".join(map(str, pids)), "--label", label, "--hard-timeout", "120"]
    if mode == "echo":
        argv += ["--clients", "100", "--window", "10"]
    else:
        argv += ["--clients", "50"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=150).stdout
    line = next((l for l in out.splitlines() if l.startswith("RESULT")), "")
    fields = dict(re.findall(r"(\w+)=([^\s]+)", line))
    per_cpu = next((float(v) for k, v in fields.items() if k.endswith("_per_server_cpu_s")), float("nan"))
    rate = next((float(v) for k, v in fields.items() if k.endswith("_per_s") and "cpu" not in k), float("nan"))
    return rate, per_cpu, fields.get("errors", "?"), line


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=5)
    a = ap.parse_args()
    for b in ("cluster_node", "eio-bench"):
        if not os.path.exists(os.path.join(RELEASE, b)):
            sys.exit(f"build first: cargo build --release -p engineio-tests --bin cluster_node && cargo build --release -p eio-bench")
    run.BIN = RELEASE
    logs = tempfile.mkdtemp(prefix="eio-cluster-bench-logs-")
    results = {}
    for rnd in range(a.rounds):
        for config in ("one-node", "3-nodes-sid", "3-nodes-rr"):
            work = tempfile.mkdtemp(prefix="eio-cluster-bench-")
            os.chmod(work, 0o755)
            procs = run.Procs(logs)
            try:
                c = run.Cluster(procs, work)
                c.start_redis()
                names = ["n1"] if config == "one-node" else [n for n, _ in run.NODES]
                for name, runtime in run.NODES:
                    if name in names:
                        procs.start(name, ["taskset", "-c", "0", os.path.join(RELEASE, "cluster_node"),
                                           "--runtime", runtime, "--node", name, "--port", str(c.ports[name]),
                                           "--redis", f"redis://127.0.0.1:{c.redis_port}/",
                                           "--ping-interval", "25000", "--ping-timeout", "20000"])
                c.wait_cluster(names)
                pids = [procs.pid(n) for n in names]
                if config == "one-node":
                    port = c.ports["n1"]
                else:
                    c.start_balancers()
                    lb = "nginx-sid" if config == "3-nodes-sid" else "nginx-rr"
                    master = procs.pid(lb)
                    subprocess.run(["taskset", "-a", "-p", "-c", "0", str(master)], capture_output=True)
                    for w in children(master):
                        subprocess.run(["taskset", "-p", "-c", "0", str(w)], capture_output=True)
                    pids += [master] + children(master)
                    port = c.lb[lb]
                node_pids = [procs.pid(n) for n in names]
                for mode in ("echo", "poll"):
                    before_nodes, before_all = ticks(node_pids), ticks(pids)
                    rate, per_cpu, errors, line = loadgen(mode, port, pids, a.duration, f"{config}-{mode}")
                    # The nodes' share of the server CPU (the rest is nginx), over the whole
                    # run (warmup included), from /proc.
                    d_nodes, d_all = ticks(node_pids) - before_nodes, ticks(pids) - before_all
                    share = d_nodes / d_all if d_all else float("nan")
                    results.setdefault((config, mode), []).append((rate, per_cpu, share))
                    print(f"round {rnd + 1} {config:12} {mode:5}: {rate:10.0f}/s, {per_cpu:10.0f} per server CPU-second "
                          f"(nodes {share:.0%} of it), errors {errors}", flush=True)
            finally:
                procs.stop_all()
                shutil.rmtree(work, ignore_errors=True)
    print()
    print("| mode | configuration | per second (median) | per server CPU-second (median) | vs one node | nodes' share of the server CPU |")
    print("|---|---|---|---|---|---|")
    for mode in ("echo", "poll"):
        base = statistics.median(x[1] for x in results[("one-node", mode)])
        for config in ("one-node", "3-nodes-sid", "3-nodes-rr"):
            rows = results[(config, mode)]
            rate = statistics.median(x[0] for x in rows)
            per = statistics.median(x[1] for x in rows)
            share = statistics.median(x[2] for x in rows)
            print(f"| {mode} | {config} | {rate:,.0f} | {per:,.0f} | {per / base:.2f}x | {share:.0%} |")
    shutil.rmtree(logs, ignore_errors=True)


if __name__ == "__main__":
    main()
