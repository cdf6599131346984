// engine.io (default `ws` WebSocket engine) on node:http: the benchmark's echo server.
// 127.0.0.1:$PORT (default 3000); see common.js for the settings and behaviour.
"use strict";
const http = require("node:http");
const { Server } = require("engine.io");
const { OPTIONS, attachEcho, port, version } = require("./common");

const httpServer = http.createServer();
const engine = new Server(OPTIONS);
engine.attach(httpServer);
attachEcho(engine);
httpServer.listen(port(), "127.0.0.1", 4096, () => {
  console.error(`engine.io ${version()} (ws) echo on 127.0.0.1:${port()} pid ${process.pid}`);
});
