// The interop cases for engine.io-client, shared by node-client.mjs (Node) and browser.mjs
// (inside the page, through page.evaluate). `runEioCase` must stay self-contained: no
// imports and no references to anything outside its own body, because browser.mjs sends
// its source text (Function.prototype.toString) into the page.
//
// The cases and their payloads are defined in README.md; python-client.py mirrors them.

export const CASES = [
  "connect",
  "text",
  "binary",
  "text_100k",
  "binary_100k",
  "heartbeat",
  "over_limit",
  "client_close",
  "server_close",
];

// Cases the drivers know but run only when asked for: binary_b64 (the Engine.IO v3 rows)
// opens with forceBase64 (the b64=1 query), which v3 servers must honour with base64
// payloads and text frames; deflate and no_deflate (the deflate rows) check what the
// WebSocket agreed on permessage-deflate, on the client's side and, through the text
// `__deflate__` that our server answers with its view, on the server's (README.md).
export const EXTRA_CASES = ["binary_b64", "deflate", "no_deflate"];

export const TRANSPORTS = ["polling", "websocket", "upgrade"];

/**
 * Runs one case on its own connection.
 * @param {Function} connect (url, opts) => engine.io-client Socket: `(u, o) => new Socket(u, o)` in
 *                  Node, the browser bundle's global `eio` (a factory, not a class) in the page
 * @param {{url: string, transport: string, name: string}} o
 * @returns {Promise<{ok: boolean, ms: number, detail: string}>}
 */
export async function runEioCase(connect, o) {
  const started = Date.now();
  const elapsed = () => Date.now() - started;

  // ---- payloads (python-client.py builds the same ones) ----
  const TEXT = "hello \u20ac\ud83d\ude00"; // "hello €😀"
  const range = (n, f) => {
    const a = new Uint8Array(n);
    for (let i = 0; i < n; i++) a[i] = f(i);
    return a;
  };
  const BINARY = range(256, (i) => i); // bytes 0..=255
  const TEXT_100K = "abcdefghij\u20ac\ud83d\ude00".repeat(5883); // 5883 x 17 UTF-8 bytes = 100,011
  const BINARY_100K = range(100000, (i) => (i * 31 + 7) % 256);
  const OVER_LIMIT = "x".repeat(1000001); // packet "4" + 1,000,001 bytes > maxPayload 1e6
  const CLIENT_CLOSE_REASON = "forced close"; // engine.io-client's reason for socket.close()

  // ---- helpers ----
  const utf8Len = (s) => new TextEncoder().encode(s).length;
  const asBytes = (d) => {
    if (typeof d === "string") return null;
    if (d instanceof ArrayBuffer) return new Uint8Array(d);
    if (ArrayBuffer.isView(d)) return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
    return null;
  };
  const describeData = (d) => {
    if (typeof d === "string") {
      return `text(${utf8Len(d)} B${d.length <= 40 ? " " + JSON.stringify(d) : ""})`;
    }
    const b = asBytes(d);
    if (b) return `binary(${b.length} B)`;
    return `unexpected ${Object.prototype.toString.call(d)}`;
  };
  const describeClose = (c) => {
    if (!c) return "not closed";
    let s = `reason "${c.reason}"`;
    const d = c.description;
    if (d) {
      const parts = [];
      if (d.message) parts.push(d.message);
      if (typeof d.description === "string" || typeof d.description === "number") {
        parts.push(typeof d.description === "number" ? `HTTP status ${d.description}` : d.description);
      } else if (d.description && d.description.message) {
        parts.push(d.description.message);
      }
      const ctx = d.context;
      if (ctx && typeof ctx.code === "number") {
        parts.push(`close code ${ctx.code}${ctx.reason ? " " + JSON.stringify(String(ctx.reason)) : ""}`);
      }
      if (parts.length) s += ` (${parts.join("; ")})`;
    }
    return s;
  };
  const sameBytes = (a, b) => {
    if (a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  };
  const firstDiff = (a, b) => {
    const n = Math.min(a.length, b.length);
    for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
    return n;
  };

  // One connection with its events recorded, and bounded waits on them.
  function open() {
    const opts = { path: "/engine.io/", tryAllTransports: false, rememberUpgrade: false };
    if (o.name === "binary_b64") opts.forceBase64 = true;
    // engine.io-client's own default (Node: { threshold: 1024 }) unless told otherwise;
    // browsers always offer permessage-deflate and have no such option.
    if (o.perMessageDeflate !== undefined) opts.perMessageDeflate = o.perMessageDeflate;
    if (o.transport === "polling") {
      opts.transports = ["polling"];
      opts.upgrade = false;
    } else if (o.transport === "websocket") {
      opts.transports = ["websocket"];
    } else if (o.transport === "upgrade") {
      opts.transports = ["polling", "websocket"];
      opts.upgrade = true;
    } else {
      throw new Error(`unknown transport mode ${o.transport}`);
    }
    const c = {
      socket: connect(o.url, opts),
      opened: false,
      openedAt: 0,
      upgradedAt: 0,
      firstTransport: "",
      handshake: null,
      messages: [],
      pings: 0,
      closed: null,
      errors: [],
      waiters: new Set(),
    };
    const notify = () => {
      for (const w of [...c.waiters]) w();
    };
    c.socket.on("handshake", (h) => { c.handshake = h; });
    c.socket.on("open", () => {
      c.opened = true;
      c.openedAt = elapsed();
      c.firstTransport = c.socket.transport.name;
      notify();
    });
    c.socket.on("upgrade", () => { c.upgradedAt = elapsed(); notify(); });
    c.socket.on("message", (d) => { c.messages.push(d); notify(); });
    c.socket.on("ping", () => { c.pings++; notify(); });
    c.socket.on("error", (e) => { c.errors.push(String(e && e.message ? e.message : e)); });
    c.socket.on("close", (reason, description) => {
      c.closed = { reason, description, at: elapsed() };
      notify();
    });
    // Resolves true when cond() holds, false after `ms` milliseconds.
    c.until = (cond, ms) => new Promise((resolve) => {
      if (cond()) return resolve(true);
      let timer = null;
      const check = () => {
        if (cond()) {
          clearTimeout(timer);
          c.waiters.delete(check);
          resolve(true);
        }
      };
      timer = setTimeout(() => { c.waiters.delete(check); resolve(cond()); }, ms);
      c.waiters.add(check);
    });
    c.dispose = () => {
      try { c.socket.close(); } catch (_) { /* already closed */ }
    };
    return c;
  }

  // Opens and, in `upgrade` mode, waits for the upgrade; returns null or a failure text.
  async function ready(c) {
    if (!(await c.until(() => c.opened || c.closed, 3000))) return "no open within 3000 ms";
    if (!c.opened) return `closed before open: ${describeClose(c.closed)}; errors: ${c.errors.join(" | ")}`;
    if (o.transport === "upgrade") {
      if (!(await c.until(() => c.upgradedAt || c.closed, 3000))) {
        return `opened on ${c.firstTransport} but no upgrade within 3000 ms (transport still ${c.socket.transport.name})`;
      }
      if (c.closed) return `closed before the upgrade: ${describeClose(c.closed)}`;
    }
    const want = o.transport === "polling" ? "polling" : "websocket";
    if (c.socket.transport.name !== want) return `transport is ${c.socket.transport.name}, expected ${want}`;
    return null;
  }

  async function echo(c, payload, ms) {
    const before = c.messages.length;
    c.socket.send(payload);
    if (!(await c.until(() => c.messages.length > before || c.closed, ms))) {
      return `no echo within ${ms} ms`;
    }
    if (c.messages.length === before) return `closed instead of echoing: ${describeClose(c.closed)}`;
    const got = c.messages[before];
    if (typeof payload === "string") {
      if (got !== payload) {
        if (typeof got !== "string") return `sent text, got ${describeData(got)}`;
        return `text differs: sent ${utf8Len(payload)} B, got ${describeData(got)}, first difference at char ${firstDiff(payload, got)}`;
      }
    } else {
      const b = asBytes(got);
      if (!b) return `sent binary(${payload.length} B), got ${describeData(got)}`;
      if (!sameBytes(b, payload)) {
        return `binary differs: sent ${payload.length} B, got ${b.length} B, first difference at byte ${firstDiff(payload, b)}`;
      }
    }
    return null;
  }

  // What the transport's WebSocket agreed on permessage-deflate, as the client library
  // sees it: Node's `ws` keeps the accepted parameters in `_extensions`; a browser's
  // WebSocket has `extensions`, the server's Sec-WebSocket-Extensions answer ("" for
  // none). `bytes` reads the TCP counters where there are some (Node), to see on the wire
  // that messages really are compressed.
  function deflateView(c) {
    const ws = c.socket.transport && c.socket.transport.ws;
    if (!ws) return { agreed: false, detail: `no WebSocket (transport ${c.socket.transport && c.socket.transport.name})` };
    if (ws._extensions && typeof ws._extensions === "object") {
      const ext = ws._extensions["permessage-deflate"];
      if (!ext) return { agreed: false, detail: "ws agreed no extension", names: null };
      const params = ext.params || {};
      const names = Object.keys(params).map((k) => (params[k] === true ? k : `${k}=${params[k]}`)).sort();
      const bytes = () => ws._socket ? { read: ws._socket.bytesRead, written: ws._socket.bytesWritten } : null;
      return { agreed: true, detail: `ws params ${JSON.stringify(params)}`, names, bytes };
    }
    if (typeof ws.extensions === "string") {
      const agreed = /(^|,)\s*permessage-deflate\b/i.test(ws.extensions);
      return { agreed, detail: `ws.extensions ${JSON.stringify(ws.extensions)}`, header: ws.extensions };
    }
    return { agreed: false, detail: "the WebSocket says nothing about its extensions" };
  }
  // The server's view: our server answers `__deflate__` with its answer header or "off";
  // a peer server echoes it (then it does not say).
  async function serverDeflateView(c) {
    const before = c.messages.length;
    c.socket.send("__deflate__");
    if (!(await c.until(() => c.messages.length > before || c.closed, 3000))) return { error: "no answer to __deflate__ within 3000 ms" };
    if (c.messages.length === before) return { error: `closed instead of answering __deflate__: ${describeClose(c.closed)}` };
    const got = c.messages[before];
    if (got === "__deflate__") return { reported: false };
    if (typeof got !== "string") return { error: `__deflate__ answered with ${describeData(got)}` };
    return { reported: true, header: got };
  }
  const headerNames = (h) => h.split(";").slice(1).map((p) => p.trim().replace(/\s*=\s*/, "=").replace(/="?([^"]*)"?$/, "=$1")).filter(Boolean).sort();

  const c = open();
  let ok = false;
  let detail = "";
  try {
    const err = await ready(c);
    if (err) {
      detail = err;
    } else {
      switch (o.name) {
        case "connect": {
          const h = c.handshake || {};
          ok = true;
          detail =
            `open on ${c.firstTransport} after ${c.openedAt} ms` +
            (o.transport === "upgrade" ? `, upgraded to ${c.socket.transport.name} at ${c.upgradedAt} ms` : "") +
            `; handshake pingInterval=${h.pingInterval} pingTimeout=${h.pingTimeout} maxPayload=${h.maxPayload}` +
            ` upgrades=${JSON.stringify(h.upgrades)} sid=${String(h.sid).length} chars`;
          break;
        }
        case "text":
        case "binary":
        case "binary_b64":
        case "text_100k":
        case "binary_100k": {
          const payload = { text: TEXT, binary: BINARY, binary_b64: BINARY, text_100k: TEXT_100K, binary_100k: BINARY_100K }[o.name];
          const e = await echo(c, payload, o.name.endsWith("100k") ? 5000 : 3000);
          ok = !e;
          detail = e || `echoed ${describeData(payload)} exactly`;
          break;
        }
        case "deflate":
        case "no_deflate": {
          const want = o.name === "deflate";
          const view = deflateView(c);
          const server = await serverDeflateView(c);
          const parts = [`client: ${view.detail}`];
          if (server.error) {
            parts.push(server.error);
          } else {
            parts.push(server.reported ? `server: ${JSON.stringify(server.header)}` : "server: echoed (does not report)");
          }
          let problem = server.error || null;
          if (!problem && view.agreed !== want) problem = want ? "permessage-deflate was not agreed" : "permessage-deflate was agreed although not offered";
          if (!problem && server.reported) {
            const serverOn = server.header.startsWith("permessage-deflate");
            if (serverOn !== want) problem = `the server reports ${JSON.stringify(server.header)}`;
            else if (want && view.header !== undefined && view.header !== server.header) problem = "the client's ws.extensions differs from the server's answer";
            else if (want && view.names && view.names.join(";") !== headerNames(server.header).join(";")) {
              problem = `the client's parameters ${view.names.join(";")} differ from the server's answer`;
            }
          }
          if (!problem && want && view.bytes) {
            // A 100 kB message that compresses well: both directions must be far smaller
            // on the wire than the message.
            const b0 = view.bytes();
            const e = await echo(c, TEXT_100K, 5000);
            const b1 = view.bytes();
            if (e) problem = `100 kB echo: ${e}`;
            else {
              const up = b1.written - b0.written;
              const down = b1.read - b0.read;
              parts.push(`100 kB text echoed: ${up} B sent, ${down} B received on the wire`);
              if (up > 50000 || down > 50000) problem = "the 100 kB text was not compressed on the wire";
            }
          }
          ok = !problem;
          detail = (problem ? problem + "; " : "") + parts.join("; ");
          break;
        }
        case "heartbeat": {
          const h = c.handshake || {};
          const interval = Number(h.pingInterval) || 300;
          const duration = Math.min(5000, Math.max(1500, 3 * interval));
          const pings0 = c.pings;
          await c.until(() => c.closed, duration);
          const pings = c.pings - pings0;
          if (c.closed) {
            detail = `closed after ${pings} pings: ${describeClose(c.closed)}`;
          } else if (pings < 2) {
            detail = `stayed open ${duration} ms but saw only ${pings} pings (pingInterval ${interval})`;
          } else {
            const e = await echo(c, "after heartbeat", 2000);
            ok = !e;
            detail = (e ? e + "; " : "echo ok; ") +
              `${pings} pings in ${duration} ms (pingInterval ${interval}, pingTimeout ${h.pingTimeout}), transport ${c.socket.transport.name}`;
          }
          break;
        }
        case "over_limit": {
          const before = c.messages.length;
          const t = elapsed();
          c.socket.send(OVER_LIMIT);
          await c.until(() => c.closed || c.messages.length > before, 5000);
          if (c.messages.length > before) {
            detail = `echoed ${describeData(c.messages[before])} instead of closing`;
          } else if (!c.closed) {
            // Fail, but say what happens next (bounded).
            await c.until(() => c.closed, 2000);
            detail = "neither echoed nor closed within 5000 ms (" +
              (c.closed ? `closed later, ${c.closed.at - t} ms after sending: ${describeClose(c.closed)}` : "still open 7000 ms after sending") + ")";
          } else {
            ok = true;
            detail = `closed after ${c.closed.at - t} ms: ${describeClose(c.closed)}`;
          }
          break;
        }
        case "client_close": {
          const t = elapsed();
          c.socket.close();
          await c.until(() => c.closed, 2000);
          if (!c.closed) {
            detail = "no close event within 2000 ms";
          } else {
            ok = c.closed.reason === CLIENT_CLOSE_REASON;
            detail = `close event after ${c.closed.at - t} ms: ${describeClose(c.closed)}` +
              (ok ? "" : ` (expected "${CLIENT_CLOSE_REASON}")`);
          }
          break;
        }
        case "server_close": {
          const before = c.messages.length;
          const t = elapsed();
          c.socket.send("__close__");
          await c.until(() => c.closed, 2000);
          if (c.messages.length > before) {
            detail = `got ${describeData(c.messages[before])} back; ` + (c.closed ? describeClose(c.closed) : "not closed");
          } else if (!c.closed) {
            detail = "no close within 2000 ms";
          } else {
            ok = true;
            detail = `closed after ${c.closed.at - t} ms: ${describeClose(c.closed)}`;
          }
          break;
        }
        default:
          detail = `unknown case ${o.name}`;
      }
    }
  } catch (e) {
    ok = false;
    detail = `exception: ${e && e.stack ? e.stack.split("\n").slice(0, 3).join(" / ") : e}`;
  } finally {
    c.dispose();
  }
  return { ok, ms: elapsed(), detail };
}
