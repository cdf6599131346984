#!/usr/bin/env node
// Client driver: engine.io-client (pinned in package.json) in Node, against an Engine.IO
// echo server.
//
//   node node-client.mjs --url http://127.0.0.1:PORT --transport polling|websocket|upgrade
//                        [--cases connect,text,...]
//
// Prints one JSON line per case:
//   {"peer":"node","transport":...,"case":...,"ok":bool,"ms":N,"detail":...}
// Exits 0 when it ran (failures included; run.py judges), 2 on bad arguments.
import { Socket } from "engine.io-client";
import { runEioCase } from "./eio-cases.mjs";
import { parseArgs, withHardLimit } from "./driver-util.mjs";

async function main() {
  const usage = "usage: node node-client.mjs --url http://127.0.0.1:PORT --transport polling|websocket|upgrade [--cases a,b]";
  const a = parseArgs(process.argv.slice(2), usage);
  for (const name of a.cases) {
    const started = Date.now();
    const r = await withHardLimit(
      runEioCase((u, o) => new Socket(u, o), { url: a.url, transport: a.transport, name }).catch((e) => ({
        ok: false, ms: Date.now() - started, detail: `exception: ${e}`,
      })),
      started,
    );
    process.stdout.write(JSON.stringify({ peer: "node", transport: a.transport, case: name, ok: r.ok, ms: r.ms, detail: r.detail }) + "\n");
  }
  // Sockets closed by the cases may still hold timers or handles; do not wait for them.
  process.exit(0);
}

main();
