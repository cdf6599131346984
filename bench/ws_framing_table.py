#!/usr/bin/env python3
"""The framing-crate comparison's table: medians of msgs per server CPU-second over the
throughput rounds (results.json of one compare.py run) and RSS per idle connection over the
idle-connection runs (raw.log of each), with ratios to tungstenite and to engineioxide."""
import json, statistics, sys
from pathlib import Path

thr = Path(sys.argv[1])
conn_dirs = [Path(p) for p in sys.argv[2:]]
res = json.loads((thr / "results.json").read_text())

def parse(line):
    d = {}
    for part in line.split()[1:]:
        if "=" in part:
            k, v = part.split("=", 1)
            try: d[k] = float(v)
            except ValueError: d[k] = v
    return d

conns = {}
for d in conn_dirs:
    for line in (d / "raw.log").read_text().splitlines():
        if line.startswith("RESULT mode=conns "):
            r = parse(line)
            conns.setdefault(r["label"], {}).setdefault(int(r["step"]), []).append(r)

def med(vals):
    vals = [v for v in vals if v == v]
    return statistics.median(vals) if vals else float("nan")

def spanf(vals, unit=1.0, digits=0):
    vals = [v / unit for v in vals if v == v]
    if not vals: return "-", float("nan")
    m = statistics.median(vals)
    f = f"{{:,.{digits}f}}"
    return (f.format(m) + (f" ({f.format(min(vals))}-{f.format(max(vals))})" if len(vals) > 1 else "")), m

tests = [("echo10", "32 B, 10 in flight"), ("echo1", "32 B, 1 in flight"), ("echo16k", "16 KiB, 10 in flight")]
names = list(res)
rows = {}
for n in names:
    row = {}
    for t, _ in tests:
        runs = res[n].get(t, [])
        row[t] = spanf([r.get("msgs_per_server_cpu_s", float("nan")) for r in runs])
        row[t + "_n"] = len(runs)
        row[t + "_lg"] = med([r.get("loadgen_cpu_pct", float("nan")) for r in runs])
        row[t + "_err"] = sum(r.get("errors", 0) + r.get("connect_failed", 0) for r in runs)
    c = conns.get(n, {})
    row["rss2k"] = spanf([r["bytes_per_conn"] for r in c.get(2000, [])], 1000, 2)
    row["rss5k10k"] = spanf([r["incr_bytes_per_conn"] for r in c.get(10000, [])], 1000, 2)
    row["conn_runs"] = len(c.get(10000, []))
    rows[n] = row

hdr = ("| server | " + " | ".join(f"{d}: msgs per server CPU-s" for _, d in tests)
       + " | RSS per idle conn, 2,000 vs empty | RSS per idle conn, 5k→10k | errors |")
print(hdr)
print("|" + "---|" * (len(tests) + 4))
for n in names:
    r = rows[n]
    err = sum(r[t + "_err"] for t, _ in tests)
    print(f"| {n} | " + " | ".join(r[t][0] for t, _ in tests)
          + f" | {r['rss2k'][0]} KB | {r['rss5k10k'][0]} KB | {err:.0f} |")
print()
print("Rounds per server (throughput; idle connections): "
      + ", ".join(f"{n} {rows[n]['echo10_n']}; {rows[n]['conn_runs']}" for n in names))
print("Load-generator CPU % (median; 32 B 10, 32 B 1, 16 KiB 10): "
      + ", ".join(f"{n} {rows[n]['echo10_lg']:.0f}/{rows[n]['echo1_lg']:.0f}/{rows[n]['echo16k_lg']:.0f}" for n in names))
print()

def ratio_table(base_of):
    print("| server | " + " | ".join(d for _, d in tests) + " | RSS/conn 2,000 (lower is better) | RSS/conn 5k→10k |")
    print("|" + "---|" * (len(tests) + 3))
    for n in names:
        b = base_of(n)
        if b is None or b == n or b not in rows: continue
        cells = []
        for t, _ in tests:
            x, y = rows[n][t][1], rows[b][t][1]
            cells.append(f"{x / y:.2f}x" if x == x and y == y and y else "-")
        for k in ("rss2k", "rss5k10k"):
            x, y = rows[n][k][1], rows[b][k][1]
            cells.append(f"{x / y:.2f}x" if x == x and y == y and y else "-")
        print(f"| {n} / {b} | " + " | ".join(cells) + " |")
    print()

ratio_table(lambda n: (n.split("-")[0] + "-tungstenite") if n.startswith(("tokio-", "smol-")) else None)
ratio_table(lambda n: "engineioxide" if n != "engineioxide" else None)
ratio_table(lambda n: ("tokio-" + n[len("smol-"):]) if n.startswith("smol-") else None)
