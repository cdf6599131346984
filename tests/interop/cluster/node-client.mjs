#!/usr/bin/env node
// Cluster test driver: engine.io-client in Node, through a load balancer in front of the
// cluster (see run.py). Modes:
//
//   spread --url U --transport T [--sessions 6] [--round-trips 200]
//       opens sessions one after the other and records the node each landed on (the
//       sid's prefix), then makes the round trips on the first one.
//   listen --url U --transport T [--sessions 3] [--seconds 20]
//       opens sessions, prints {"ready":[sids]}, then records every message per session
//       until each got "__done__" (or time is up).
//   soak --url U --transport T [--seconds 10]
//       keeps one session busy (a numbered echo every 50 ms); when it closes, records why
//       and opens another (engine.io-client does not reconnect by itself).
//
// Prints one JSON object per line; the last is {"result": ...}. Loopback URLs only.
import { Socket } from "engine.io-client";

function args(argv) {
  const a = { mode: argv[0], sessions: 0, roundTrips: 200, seconds: 10, url: "", transport: "" };
  for (let i = 1; i < argv.length; i += 2) {
    const k = argv[i];
    const v = argv[i + 1];
    if (k === "--url") a.url = v;
    else if (k === "--transport") a.transport = v;
    else if (k === "--sessions") a.sessions = Number(v);
    else if (k === "--round-trips") a.roundTrips = Number(v);
    else if (k === "--seconds") a.seconds = Number(v);
    else { console.error(`unknown argument ${k}`); process.exit(2); }
  }
  const host = new URL(a.url).hostname;
  if (host !== "127.0.0.1" && host !== "localhost") { console.error("loopback only"); process.exit(2); }
  return a;
}

const a = args(process.argv.slice(2));
const started = Date.now();
const elapsed = () => Date.now() - started;
const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");
const nodeOf = (sid) => (sid && sid.includes(".") ? sid.split(".")[0] : "?");

function open() {
  const opts = { path: "/engine.io/", tryAllTransports: false, rememberUpgrade: false };
  if (a.transport === "polling") { opts.transports = ["polling"]; opts.upgrade = false; }
  else if (a.transport === "websocket") opts.transports = ["websocket"];
  else { opts.transports = ["polling", "websocket"]; opts.upgrade = true; }
  const c = { socket: new Socket(a.url, opts), opened: false, upgraded: false, closed: null, messages: [], errors: [], waiters: new Set() };
  const notify = () => { for (const w of [...c.waiters]) w(); };
  c.socket.on("open", () => { c.opened = true; c.sid = c.socket.id; notify(); });
  c.socket.on("upgrade", () => { c.upgraded = true; notify(); });
  c.socket.on("message", (d) => { c.messages.push(typeof d === "string" ? d : `<binary ${d.byteLength}>`); notify(); });
  c.socket.on("error", (e) => { c.errors.push(String(e && e.message ? e.message : e)); });
  c.socket.on("close", (reason, d) => {
    let detail = reason;
    if (d && d.description !== undefined) detail += ` (${typeof d.description === "number" ? "HTTP " + d.description : String(d.description && d.description.message || d.description)})`;
    if (d && d.context && typeof d.context.code === "number") detail += ` close code ${d.context.code}`;
    c.closed = { reason: detail, at: elapsed(), epoch_ms: Date.now() };
    notify();
  });
  c.until = (cond, ms) => new Promise((resolve) => {
    if (cond()) return resolve(true);
    let timer = null;
    const check = () => { if (cond()) { clearTimeout(timer); c.waiters.delete(check); resolve(true); } };
    timer = setTimeout(() => { c.waiters.delete(check); resolve(cond()); }, ms);
    c.waiters.add(check);
  });
  return c;
}

async function ready(c) {
  if (!(await c.until(() => c.opened || c.closed, 5000))) return "no open within 5 s";
  if (!c.opened) return `closed before open: ${c.closed.reason}; ${c.errors.join(" | ")}`;
  if (a.transport === "upgrade" && !(await c.until(() => c.upgraded || c.closed, 5000))) return "no upgrade within 5 s";
  if (c.closed) return `closed: ${c.closed.reason}`;
  return null;
}

async function echo(c, text, ms = 5000) {
  const before = c.messages.length;
  c.socket.send(text);
  if (!(await c.until(() => c.messages.length > before || c.closed, ms))) return `no echo of ${text} within ${ms} ms`;
  if (c.messages.length === before) return `closed instead of echoing ${text}: ${c.closed.reason}`;
  if (c.messages[before] !== text) return `echo of ${text} was ${c.messages[before]}`;
  return null;
}

async function spread() {
  const n = a.sessions || 6;
  const nodes = {};
  const errors = [];
  const conns = [];
  for (let i = 0; i < n; i++) {
    const c = open();
    const e = await ready(c);
    if (e) errors.push(`session ${i}: ${e}`);
    else nodes[nodeOf(c.sid)] = (nodes[nodeOf(c.sid)] || 0) + 1;
    conns.push(c);
  }
  let ok = 0;
  const first = conns.find((c) => c.opened && !c.closed);
  if (first) {
    for (let i = 0; i < a.roundTrips; i++) {
      const e = await echo(first, `rt${i}`);
      if (e) { errors.push(`round trip ${i}: ${e}`); break; }
      ok++;
    }
  }
  for (const c of conns) c.socket.close();
  out({ result: { nodes, round_trips: ok, errors, first_sid: first && first.sid } });
}

async function listen() {
  const n = a.sessions || 3;
  const conns = [];
  const errors = [];
  for (let i = 0; i < n; i++) {
    const c = open();
    const e = await ready(c);
    if (e) errors.push(e);
    conns.push(c);
  }
  out({ ready: conns.filter((c) => c.opened).map((c) => c.sid), errors });
  const done = () => conns.every((c) => c.closed || c.messages.includes("__done__"));
  const deadline = Date.now() + a.seconds * 1000;
  while (!done() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const received = {};
  for (const c of conns) if (c.sid) received[c.sid] = c.messages;
  for (const c of conns) c.socket.close();
  out({ result: { received, errors } });
}

async function soak() {
  const until = started + a.seconds * 1000;
  const sessions = [];
  const errors = [];
  while (Date.now() < until) {
    const c = open();
    const e = await ready(c);
    const s = { sid: c.sid || null, node: nodeOf(c.sid), opened_at: elapsed(), sent: 0, echoed: 0, closed: null };
    sessions.push(s);
    if (e) { errors.push(e); s.closed = e; await new Promise((r) => setTimeout(r, 200)); continue; }
    while (Date.now() < until && !c.closed) {
      const text = `n${s.sent}`;
      s.sent++;
      const err = await echo(c, text, 3000);
      if (err) { if (!c.closed) errors.push(err); break; }
      s.echoed++;
      await new Promise((r) => setTimeout(r, 50));
    }
    if (c.closed) s.closed = { reason: c.closed.reason, at_ms: c.closed.at, epoch_ms: c.closed.epoch_ms };
    else c.socket.close();
  }
  out({ result: { sessions, errors } });
}

const modes = { spread, listen, soak };
if (!modes[a.mode]) { console.error(`mode must be one of ${Object.keys(modes)}`); process.exit(2); }
modes[a.mode]().then(() => process.exit(0), (e) => { out({ result: { errors: [`exception: ${e}`] } }); process.exit(0); });
