// Shared by server-ws.js and server-uws.js: the settings every benchmarked server uses and
// the echo / __broadcast__ behaviour.
"use strict";

const OPTIONS = {
  path: "/engine.io/",
  pingInterval: 25000,
  pingTimeout: 20000,
  maxHttpBufferSize: 1e6,
  transports: ["polling", "websocket"],
  allowUpgrades: true,
};

const PREFIX = "__broadcast__";

// Echo every message; `__broadcast__<payload>` sends <payload> to every live session.
function attachEcho(engine) {
  engine.on("connection", (socket) => {
    socket.on("message", (data) => {
      if (typeof data === "string" && data.startsWith(PREFIX)) {
        const payload = data.slice(PREFIX.length);
        for (const id in engine.clients) engine.clients[id].send(payload);
      } else {
        socket.send(data);
      }
    });
  });
}

function port() {
  return Number(process.env.PORT || 3000);
}

function version() {
  // engine.io's "exports" does not expose package.json: read it by path.
  return require(require("node:path").join(__dirname, "node_modules/engine.io/package.json")).version;
}

module.exports = { OPTIONS, attachEcho, port, version };
