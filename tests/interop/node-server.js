#!/usr/bin/env node
// Interop peer: the official Node `engine.io` server (version pinned in package.json),
// following the e2e echo-server contract of tests/interop/README.md:
//   127.0.0.1:PORT (env PORT or first non-flag argument), path /engine.io/,
//   pingInterval 300 ms, pingTimeout 200 ms, maxPayload 1,000,000 bytes,
//   transports polling + websocket, upgrades allowed, CORS: any origin.
//   Every message is echoed unchanged (text stays text, binary stays binary), except the
//   text `__close__`, which makes the server close that session.
//
// permessage-deflate (the deflate rows): --deflate turns on perMessageDeflate (ws's
// defaults: threshold 1024 B, context takeover, 15-bit windows; engine.io leaves it off).
// Like our server, it answers the text `__deflate__` (instead of echoing it) with the
// parameters its WebSocket agreed, as a Sec-WebSocket-Extensions value, or `off`.
//
// Engine.IO v3 peers (issue 15):
//   --allow-eio3  engine.io 6 with allowEIO3: true (v3 and v4 clients on one server)
//   --eio3        engine.io 3.x (npm alias engine.io-v3), which speaks only v3
//
// With --demo it also serves the demo page, as our Rust server must:
//   GET /                  -> demo/index.html
//   GET /engine.io.min.js  -> demo/node_modules/engine.io-client/dist/engine.io.min.js
// It refuses to start with --demo when either file is missing (run demo/install.sh).
"use strict";

const fs = require("node:fs");
const http = require("node:http");
const path = require("node:path");

const args = process.argv.slice(2);
const demo = args.includes("--demo");
const eio3 = args.includes("--eio3");
const allowEIO3 = args.includes("--allow-eio3");
const deflate = args.includes("--deflate");
const pkg = eio3 ? "engine.io-v3" : "engine.io";
const { Server } = require(pkg);
const portArg = args.find((a) => !a.startsWith("--"));
const port = Number(process.env.PORT || portArg);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error("usage: node node-server.js [--demo] PORT   (or PORT=N in the environment)");
  process.exit(2);
}

const demoDir = path.resolve(__dirname, "..", "..", "demo");
const demoFiles = {
  "/": { file: path.join(demoDir, "index.html"), type: "text/html; charset=utf-8" },
  "/engine.io.min.js": {
    file: path.join(demoDir, "node_modules", "engine.io-client", "dist", "engine.io.min.js"),
    type: "text/javascript; charset=utf-8",
  },
};
const demoBodies = {};
if (demo) {
  for (const [route, { file }] of Object.entries(demoFiles)) {
    try {
      demoBodies[route] = fs.readFileSync(file);
    } catch (e) {
      console.error(`--demo: cannot read ${file} (${e.code}); run demo/install.sh`);
      process.exit(1);
    }
  }
}

// Requests that engine.io does not take (any path outside /engine.io/) land here.
const httpServer = http.createServer((req, res) => {
  const route = req.url.split("?")[0];
  if (demo && req.method === "GET" && demoBodies[route]) {
    res.writeHead(200, {
      "Content-Type": demoFiles[route].type,
      "Content-Length": demoBodies[route].length,
      "Cache-Control": "no-store",
    });
    res.end(demoBodies[route]);
    return;
  }
  res.writeHead(404, { "Content-Type": "text/plain" });
  res.end("not found\n");
});

const options = {
  path: "/engine.io/",
  pingInterval: 300,
  pingTimeout: 200,
  maxHttpBufferSize: 1e6,
  transports: ["polling", "websocket"],
  allowUpgrades: true,
  cors: { origin: "*" },
};
if (allowEIO3) options.allowEIO3 = true;
if (deflate) options.perMessageDeflate = true;
if (eio3) {
  // engine.io 3.x takes the path as an attach() option (and has no cors option: it
  // answers any Origin), and sets a sid cookie by default.
  delete options.cors;
}
const engine = new Server(options);
engine.attach(httpServer, eio3 ? { path: "/engine.io" } : undefined);

engine.on("connection", (socket) => {
  socket.on("message", (data) => {
    if (data === "__close__") {
      socket.close();
      return;
    }
    if (data === "__deflate__") {
      // engine.io's WebSocket transport keeps ws's WebSocket in `socket`; ws keeps the
      // accepted extension parameters in `_extensions`.
      const ws = socket.transport && socket.transport.name === "websocket" ? socket.transport.socket : null;
      const ext = ws && ws._extensions && ws._extensions["permessage-deflate"];
      const params = ext ? Object.entries(ext.params || {}).map(([k, v]) => (v === true ? k : `${k}=${v}`)) : [];
      socket.send(ext ? ["permessage-deflate"].concat(params).join("; ") : "off");
      return;
    }
    socket.send(data);
  });
});

httpServer.listen(port, "127.0.0.1", () => {
  const version = require(path.join(__dirname, "node_modules", pkg, "package.json")).version;
  console.error(
    `node-server: engine.io ${version}${allowEIO3 ? " (allowEIO3)" : ""}${deflate ? " (perMessageDeflate)" : ""} echo on http://127.0.0.1:${port}/engine.io/` +
      `${demo ? " (+ demo page at /)" : ""} pid ${process.pid}`,
  );
});

for (const sig of ["SIGTERM", "SIGINT"]) {
  process.on(sig, () => {
    engine.close();
    httpServer.close();
    process.exit(0);
  });
}
