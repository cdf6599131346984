#!/usr/bin/env node
// Client driver: engine.io-client (pinned in package.json) in Node, against an Engine.IO
// echo server.
//
//   node node-client.mjs --url http://127.0.0.1:PORT --transport polling|websocket|upgrade
//                        [--cases connect,text,...] [--eio3] [--no-deflate]
//
// --eio3 runs engine.io-client 3.x (npm alias engine.io-client-v3), which speaks Engine.IO
// v3, and reports as peer "node-eio3".
// --no-deflate opens with perMessageDeflate: false. By default engine.io-client in Node
// offers permessage-deflate (`permessage-deflate; client_max_window_bits`, its option
// perMessageDeflate { threshold: 1024 }).
//
// Prints one JSON line per case:
//   {"peer":"node","transport":...,"case":...,"ok":bool,"ms":N,"detail":...}
// Exits 0 when it ran (failures included; run.py judges), 2 on bad arguments.
import { Socket } from "engine.io-client";
import SocketV3 from "engine.io-client-v3";
import { runEioCase } from "./eio-cases.mjs";
import { parseArgs, withHardLimit } from "./driver-util.mjs";

async function main() {
  const usage = "usage: node node-client.mjs --url http://127.0.0.1:PORT --transport polling|websocket|upgrade [--cases a,b] [--eio3] [--no-deflate]";
  const argv = process.argv.slice(2);
  const eio3 = argv.includes("--eio3");
  const noDeflate = argv.includes("--no-deflate");
  const a = parseArgs(argv.filter((x) => x !== "--eio3" && x !== "--no-deflate"), usage);
  const peer = eio3 ? "node-eio3" : "node";
  const make = eio3 ? (u, o) => new SocketV3(u, o) : (u, o) => new Socket(u, o);
  for (const name of a.cases) {
    const started = Date.now();
    const r = await withHardLimit(
      runEioCase(make, { url: a.url, transport: a.transport, name, perMessageDeflate: noDeflate ? false : undefined }).catch((e) => ({
        ok: false, ms: Date.now() - started, detail: `exception: ${e}`,
      })),
      started,
    );
    process.stdout.write(JSON.stringify({ peer, transport: a.transport, case: name, ok: r.ok, ms: r.ms, detail: r.detail }) + "\n");
  }
  // Sockets closed by the cases may still hold timers or handles; do not wait for them.
  process.exit(0);
}

main();
