#!/usr/bin/env bash
# Autobahn conformance of our WebSocket layer (issue 13, item 4): the Autobahn testsuite's
# case files, run by the `kosoku` runner (PyPI; no Docker, no Twisted), against
# tests/src/bin/autobahn.rs (an echo server and a fuzzingserver client built from
# engineio-hyper's WebSocket seam and engineio-proto's handshake decisions).
#
# Four passes, on 127.0.0.1 only, each on a port the OS chose:
#   server          our echo server under `kosoku fuzzingclient`, no deflate
#   server-deflate  the same with permessage-deflate offered and agreed
#   client          our client against `kosoku fuzzingserver`, no deflate
#   client-deflate  the same, offering permessage-deflate
# Each prints a summary of kosoku's index.json (the Autobahn format: `behavior` and
# `behaviorClose` per case); the script exits 1 if a case that is not INFORMATIONAL
# failed in any pass (a FAILED or ERROR behaviour, an UNIMPLEMENTED one in a deflate
# pass, or a FAILED / WRONG CODE / UNCLEAN close), unless it is on the allow-list below.
# Reports: $AUTOBAHN_OUT/<pass>/index.html (kosoku's), logs: $AUTOBAHN_OUT/<pass>.log.
#
# Settings (environment):
#   AUTOBAHN_FEATURES   cargo features for the build, e.g. engineio-hyper/ws-tungstenite
#   AUTOBAHN_PROFILE    cargo profile: dev (default, shares test-all's build) or
#                       autobahn-deps-opt (dependencies optimised: yawc, flate2 and zlib
#                       run ~10x faster, the run takes a third of the time, the build
#                       costs a few extra minutes once)
#   AUTOBAHN_PARALLEL   cases at a time (default 4)
#   AUTOBAHN_PASSES     which passes (default "server server-deflate client client-deflate")
#   AUTOBAHN_CASES      extra kosoku -i globs, space separated (default: the whole suite)
#   AUTOBAHN_OUT        report folder (default target/autobahn/reports[-FEATURES])
#
#   AUTOBAHN_FULL=1     also run the large-message deflate cases (see below)
#
# Exclusions, on purpose:
#   - 12.* and 13.* (permessage-deflate) are not run in the passes without deflate: they
#     can only end UNIMPLEMENTED there.
#   - Unless AUTOBAHN_FULL=1, the deflate cases 12.*.N and 13.*.N for N = 6-10 and 12-18
#     (1000 messages of 8 KiB to 128 KiB each, 175 of the 216) are not run: they are the
#     same echo as N = 1-5 (16 B to 4 KiB) and 11 (8 KiB in 256-byte fragments), which
#     stay, with more bytes, and take most of the time: kosoku compresses and checks
#     each message in Python, so that with them a deflate pass takes 4-10 minutes on 2
#     cores (4 minutes with AUTOBAHN_PROFILE=autobahn-deps-opt), without them about 30 s.
# In the deflate passes both ends use threshold 0 (every message compressed): the
# 12.*/13.* cases are about compressed echoes, and kosoku 0.1.0's port of them fails with
# a Python TypeError ("Strings must be encoded before hashing") when a text message comes
# back uncompressed (it hashes the str it delivers for uncompressed text), which our
# default 1024-byte threshold does for their 16 to 256-byte messages.
set -euo pipefail
cd "$(dirname "$0")/.."

KOSOKU_VERSION=0.1.0
TARGET_DIR=${CARGO_TARGET_DIR:-target}
VENV=$TARGET_DIR/autobahn/venv
PROFILE=${AUTOBAHN_PROFILE:-dev}
FEATURES=${AUTOBAHN_FEATURES:-}
PARALLEL=${AUTOBAHN_PARALLEL:-4}
PASSES=${AUTOBAHN_PASSES:-server server-deflate client client-deflate}
OUT=${AUTOBAHN_OUT:-$TARGET_DIR/autobahn/reports${FEATURES:+-${FEATURES//\//-}}}
# Every case has its own timeout in kosoku (at most 480 s for the largest 12.*/13.*
# ones); a pass that takes longer than this is stopped and counted as failed.
PASS_SECONDS=${AUTOBAHN_PASS_SECONDS:-600}

# Known failures of the framing crate (to report upstream; the reproduction and the draft
# report: tests/upstream/yawc-0.5.0/README.md):
# "pass-glob:case-glob reason". Each is still run and printed as "allowed"; one that
# passes is reported so that the entry can go. They apply to the default backend (yawc)
# only: a comparison build (AUTOBAHN_FEATURES) must pass every case.
ALLOW=()
if [[ -z "$FEATURES" ]]; then
  ALLOW=(
    "*:4.1.* yawc 0.5.0 closes with 1003 (unsupported data) on a reserved opcode, not 1002"
    "*:4.2.* yawc 0.5.0 closes with 1003 (unsupported data) on a reserved opcode, not 1002"
    "*:7.3.6 yawc 0.5.0 takes (and echoes) a close frame over 125 bytes instead of failing"
  )
fi

LARGE_DEFLATE_CASES=(6 7 8 9 10 12 13 14 15 16 17 18)

pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT
trap 'exit 143' TERM INT

# 1. kosoku in a local venv, pinned.
if ! "$VENV/bin/kosoku" --help >/dev/null 2>&1 ||
  [[ "$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("kosoku"))' 2>/dev/null)" != "$KOSOKU_VERSION" ]]; then
  echo "autobahn: installing kosoku $KOSOKU_VERSION into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "kosoku==$KOSOKU_VERSION"
fi
KOSOKU=$VENV/bin/kosoku

# 2. The binary.
build=(cargo build -p engineio-tests --bin autobahn)
[[ -n "$FEATURES" ]] && build+=(--features "$FEATURES")
if [[ "$PROFILE" == autobahn-deps-opt ]]; then
  build+=(--config 'profile.autobahn-deps-opt.inherits="dev"'
    --config 'profile.autobahn-deps-opt.package."*".opt-level=2'
    --profile autobahn-deps-opt)
  BIN=$TARGET_DIR/autobahn-deps-opt/autobahn
elif [[ "$PROFILE" == dev ]]; then
  BIN=$TARGET_DIR/debug/autobahn
else
  echo "autobahn: AUTOBAHN_PROFILE is dev or autobahn-deps-opt, not $PROFILE" >&2
  exit 2
fi
echo "autobahn: ${build[*]}"
"${build[@]}"

include=()
for glob in ${AUTOBAHN_CASES:-}; do include+=(-i "$glob"); done

# Waits (at most $3 seconds) for a line "listening on ws://127.0.0.1:PORT" in file $1
# written by process $2, and prints PORT.
listening_port() {
  local log=$1 pid=$2 deadline=$((SECONDS + $3)) port
  while ((SECONDS < deadline)); do
    port=$(grep -o 'listening on ws://127\.0\.0\.1:[0-9]*' "$log" 2>/dev/null | head -1 | sed 's/.*://') || true
    if [[ -n "$port" ]]; then
      echo "$port"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "autobahn: no listening port in $log:" >&2
  cat "$log" >&2
  return 1
}

# Waits at most $2 seconds for process $1 to exit, then stops it; returns its status.
wait_bounded() {
  local pid=$1 deadline=$((SECONDS + $2))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "autobahn: process $pid still running after $2 s; stopping it" >&2
    kill "$pid" 2>/dev/null || true
  fi
  local rc=0
  wait "$pid" 2>/dev/null || rc=$?
  return $rc
}

run_pass() {
  local pass=$1 dir=$OUT/$1 log=$OUT/$1.log
  local deflate=() exclude=()
  case $pass in
    *-deflate)
      deflate=(--deflate --deflate-threshold 0)
      if [[ "${AUTOBAHN_FULL:-0}" != 1 ]]; then
        for n in "${LARGE_DEFLATE_CASES[@]}"; do exclude+=(-x "12.*.$n" -x "13.*.$n"); done
      fi
      ;;
    *) exclude=(-x '12.*' -x '13.*') ;;
  esac
  rm -rf "$dir"
  : >"$log"
  local start=$SECONDS
  case $pass in
    server*)
      "$BIN" server --port 0 "${deflate[@]}" --seconds "$PASS_SECONDS" 2>>"$log" &
      local server=$!
      pids+=("$server")
      local port
      port=$(listening_port "$log" "$server" 20)
      timeout "$PASS_SECONDS" "$KOSOKU" -m fuzzingclient -p "$PARALLEL" "${include[@]}" \
        "${exclude[@]}" -o "$dir" "127.0.0.1:$port" >>"$log" 2>&1 || true
      kill "$server" 2>/dev/null || true
      wait "$server" 2>/dev/null || true
      ;;
    client*)
      "$KOSOKU" -m fuzzingserver "${include[@]}" "${exclude[@]}" -o "$dir" 127.0.0.1:0 \
        >>"$log" 2>&1 &
      local fuzzer=$!
      pids+=("$fuzzer")
      local port
      port=$(listening_port "$log" "$fuzzer" 20)
      timeout "$PASS_SECONDS" "$BIN" client --port "$port" "${deflate[@]}" \
        --parallel "$PARALLEL" --seconds "$PASS_SECONDS" >>"$log" 2>&1 || true
      # kosoku writes its reports once the client asked for them.
      wait_bounded "$fuzzer" 30 || true
      ;;
  esac
  echo "$pass $((SECONDS - start))" >>"$OUT/times"
}

mkdir -p "$OUT"
: >"$OUT/times"
for pass in $PASSES; do
  echo "autobahn: pass $pass (log $OUT/$pass.log)"
  run_pass "$pass"
done

# 3. The summary.
python3 - "$OUT" "$PASSES" "${ALLOW[@]}" <<'EOF'
import fnmatch, json, os, sys

out, passes, allow = sys.argv[1], sys.argv[2].split(), sys.argv[3:]
allowed = [(a.split(":", 1)[0], a.split(":", 1)[1].split()[0]) for a in allow]
times = dict(l.split() for l in open(os.path.join(out, "times")) if l.strip())
BEHAVIORS = ["OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED", "ERROR"]
CLOSES = ["OK", "INFORMATIONAL", "FAILED BY CLIENT", "WRONG CODE", "UNCLEAN", "FAILED"]
key = lambda c: [int(p) for p in c.split(".")]

print("\nAutobahn (kosoku) summary: behavior / behaviorClose per pass")
print(f"{'pass':16}{'cases':>6}" + "".join(f"{b:>15}" for b in BEHAVIORS) + f"{'time':>7}")
failures, missing, fixed = [], [], []
rows = []
for p in passes:
    index = os.path.join(out, p, "index.json")
    if not os.path.exists(index):
        missing.append(p)
        print(f"{p:16}   no report (see {out}/{p}.log)")
        continue
    cases = {}
    for agent in json.load(open(index)).values():
        cases.update(agent)
    counts = {b: 0 for b in BEHAVIORS}
    close_counts = {c: 0 for c in CLOSES}
    for case, r in cases.items():
        counts[r["behavior"]] = counts.get(r["behavior"], 0) + 1
        close_counts[r["behaviorClose"]] = close_counts.get(r["behaviorClose"], 0) + 1
        bad = r["behavior"] in ("FAILED", "ERROR") or (
            r["behavior"] == "UNIMPLEMENTED" and p.endswith("-deflate")
        ) or r["behaviorClose"] in ("FAILED", "WRONG CODE", "UNCLEAN")
        if r["behavior"] == "INFORMATIONAL":
            bad = False
        ok_listed = any(
            fnmatch.fnmatch(p, ap) and fnmatch.fnmatch(case, g) for ap, g in allowed
        )
        if bad:
            detail = json.load(open(os.path.join(out, p, r["reportfile"])))
            failures.append((p, case, r, detail, ok_listed))
        elif ok_listed:
            fixed.append((p, case))
    print(f"{p:16}{len(cases):>6}" + "".join(f"{counts[b]:>15}" for b in BEHAVIORS)
          + f"{times.get(p, '?'):>6}s")
    rows.append((p, close_counts))
print(f"\n{'close':16}" + "".join(f"{c:>17}" for c in CLOSES))
for p, cc in rows:
    print(f"{p:16}" + "".join(f"{cc[c]:>17}" for c in CLOSES))

for p, case, r, d, ok_listed in sorted(failures, key=lambda f: (f[0], key(f[1]))):
    tag = "allowed" if ok_listed else "FAILED"
    why = next((a.split(None, 1)[1] for a in allow
                if fnmatch.fnmatch(p, a.split(":", 1)[0])
                and fnmatch.fnmatch(case, a.split(":", 1)[1].split()[0])), "")
    print(f"\n{tag} {p} {case}: behavior={r['behavior']} behaviorClose={r['behaviorClose']}"
          f" remoteCloseCode={d.get('remoteCloseCode')}")
    print(f"  {d.get('description', '')}")
    print(f"  result: {d.get('result')}  close: {d.get('resultClose')}")
    if why:
        print(f"  known: {why}")
for p, case in fixed:
    print(f"\nallow-listed {p} {case} passes now: take it off the list")
hard = [f for f in failures if not f[4]]
if missing or hard:
    print(f"\nautobahn: {len(hard)} failing case(s), {len(missing)} pass(es) without a report")
    sys.exit(1)
known = len(failures) - len(hard)
print("\nautobahn: every case that is not informational passed"
      + (f", but for {known} allow-listed known failure(s)" if known else ""))
EOF
