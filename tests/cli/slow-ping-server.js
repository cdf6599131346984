#!/usr/bin/env node
// A Node engine.io echo server (tests/interop's pinned engine.io) with the peers' kind of
// heartbeat: pingInterval 8 s, pingTimeout 5 s, longer than Node's HTTP keep-alive
// timeout (5 s). A client's idle kept-alive POST connection is then closed by the server
// between two messages or pongs, which a client must survive. 127.0.0.1:PORT only.
"use strict";
const path = require("node:path");
const http = require("node:http");
const { Server } = require(path.join(__dirname, "..", "interop", "node_modules", "engine.io"));

const port = Number(process.argv[2] || process.env.PORT);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error("usage: node slow-ping-server.js PORT");
  process.exit(2);
}
const httpServer = http.createServer((req, res) => {
  res.writeHead(404);
  res.end();
});
const engine = new Server({ path: "/engine.io/", pingInterval: 8000, pingTimeout: 5000, cors: { origin: "*" } });
engine.attach(httpServer);
engine.on("connection", (socket) => socket.on("message", (data) => socket.send(data)));
httpServer.listen(port, "127.0.0.1", () => {
  console.error(`slow-ping-server: keepAliveTimeout ${httpServer.keepAliveTimeout} ms, pid ${process.pid}`);
});
for (const sig of ["SIGTERM", "SIGINT"]) {
  process.on(sig, () => {
    engine.close();
    httpServer.close();
    process.exit(0);
  });
}
