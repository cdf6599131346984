// Helpers shared by the Node-side drivers (node-client.mjs, browser.mjs).
import { CASES, EXTRA_CASES, TRANSPORTS } from "./eio-cases.mjs";

export function parseArgs(argv, usage) {
  const a = { url: "", transport: "", cases: CASES.slice() };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = argv[i + 1];
    if (k === "--url" && v) { a.url = v; i++; }
    else if (k === "--transport" && v) { a.transport = v; i++; }
    else if (k === "--cases" && v) { a.cases = v.split(",").filter(Boolean); i++; }
    else { console.error(`unknown or incomplete argument ${k}\n${usage}`); process.exit(2); }
  }
  let u;
  try { u = new URL(a.url); } catch { console.error(`--url is required\n${usage}`); process.exit(2); }
  if (u.hostname !== "127.0.0.1" && u.hostname !== "localhost" && u.hostname !== "[::1]") {
    console.error(`refusing non-loopback url ${a.url}`);
    process.exit(2);
  }
  if (!TRANSPORTS.includes(a.transport)) {
    console.error(`--transport must be one of ${TRANSPORTS.join("|")}\n${usage}`);
    process.exit(2);
  }
  const known = CASES.concat(EXTRA_CASES);
  const unknown = a.cases.filter((c) => !known.includes(c));
  if (unknown.length) { console.error(`unknown cases ${unknown}; known: ${known}`); process.exit(2); }
  return a;
}

// A case that does not finish in this time (its own bounds are all shorter) is reported
// as a failure and the driver moves on.
export const CASE_HARD_LIMIT_MS = 15000;

export function withHardLimit(promise, started) {
  let timer;
  const limit = new Promise((resolve) => {
    timer = setTimeout(
      () => resolve({ ok: false, ms: Date.now() - started, detail: `case did not finish within ${CASE_HARD_LIMIT_MS} ms` }),
      CASE_HARD_LIMIT_MS,
    );
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}
