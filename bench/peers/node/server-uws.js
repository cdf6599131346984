// engine.io `uServer` on uWebSockets.js: the benchmark's echo server.
// uWebSockets.js is installed from the npm registry as an alias of
// @trufflesuite/uws-js-unofficial@20.30.0-unofficial.0 (the official package is published
// only on GitHub); see docs/benchmarks.md.
// 127.0.0.1:$PORT (default 3000); see common.js for the settings and behaviour.
"use strict";
const { App } = require("uWebSockets.js");
const { uServer } = require("engine.io");
const { OPTIONS, attachEcho, port, version } = require("./common");

const app = App();
const engine = new uServer(OPTIONS);
engine.attach(app);
attachEcho(engine);
app.listen("127.0.0.1", port(), (token) => {
  if (!token) {
    console.error(`listen on 127.0.0.1:${port()} failed`);
    process.exit(1);
  }
  console.error(`engine.io ${version()} (uWS) echo on 127.0.0.1:${port()} pid ${process.pid}`);
});
