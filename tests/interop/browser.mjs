#!/usr/bin/env node
// Client driver: engine.io-client's browser bundle inside Debian's Chromium (headless),
// driven by playwright-core (pinned in package.json; it never downloads a browser).
//
//   node browser.mjs --url http://127.0.0.1:PORT --transport polling|websocket|upgrade
//                    [--cases demo_page,connect,text,...] [--screenshot FILE.png] [--eio3]
//
// The server under test must serve the demo page (demo/index.html at `/` and the bundle at
// `/engine.io.min.js`). The driver loads http://127.0.0.1:PORT/, checks that the page
// itself connected and measured a round trip (case `demo_page`), then runs the cases of
// eio-cases.mjs inside the page with the page's global `eio`, each on its own connection.
//
// With --eio3 the cases run with the browser bundle of engine.io-client 3.x (npm alias
// engine.io-client-v3, Engine.IO v3) instead: once the demo page has loaded, its own v4
// connection is closed and the v3 bundle is added to the page, replacing window.eio.
// The peer is then "browser-eio3" and demo_page is not one of its cases.
//
// Prints one JSON line per case ({"peer":"browser",...}); exits 0 when it ran (failures
// included), 2 on bad arguments. Page console output and errors go to stderr.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import { CASES, EXTRA_CASES, runEioCase } from "./eio-cases.mjs";
import { parseArgs, withHardLimit } from "./driver-util.mjs";

const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
// Chromium flags as validated on this machine kind: the background-networking flags keep
// Chromium from calling out to the (closed) network; --no-sandbox because CI runs as root.
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const BROWSER_CASES = ["demo_page", ...CASES, ...EXTRA_CASES];
const V3_BUNDLE = path.join(path.dirname(new URL(import.meta.url).pathname), "node_modules", "engine.io-client-v3", "engine.io.js");
let PEER = "browser";
const DRIVER_LIMIT_MS = 170000; // the whole driver, as a last resort

function emit(transport, name, r) {
  process.stdout.write(
    JSON.stringify({ peer: PEER, transport, case: name, ok: r.ok, ms: r.ms, detail: r.detail }) + "\n",
  );
}

async function main() {
  const usage =
    "usage: node browser.mjs --url http://127.0.0.1:PORT --transport polling|websocket|upgrade [--cases demo_page,connect,...]";
  // parseArgs knows the engine.io-client cases; demo_page is this driver's own.
  const argv = process.argv.slice(2);
  const v3i = argv.indexOf("--eio3");
  const eio3 = v3i >= 0;
  if (eio3) {
    argv.splice(v3i, 1);
    PEER = "browser-eio3";
  }
  const ci = argv.indexOf("--cases");
  let cases = BROWSER_CASES.slice();
  if (ci >= 0 && argv[ci + 1]) {
    cases = argv[ci + 1].split(",").filter(Boolean);
    argv.splice(ci, 2);
    const unknown = cases.filter((c) => !BROWSER_CASES.includes(c));
    if (unknown.length) {
      console.error(`unknown cases ${unknown}; known: ${BROWSER_CASES}`);
      process.exit(2);
    }
  }
  let screenshot = "";
  const si = argv.indexOf("--screenshot");
  if (si >= 0 && argv[si + 1]) {
    screenshot = argv[si + 1];
    argv.splice(si, 2);
  }
  const a = parseArgs(argv, usage);
  const pageUrl = new URL("/", a.url).href;
  const pending = cases.slice();
  const failRest = (detail) => {
    while (pending.length) emit(a.transport, pending.shift(), { ok: false, ms: 0, detail });
  };

  const hard = setTimeout(() => {
    failRest(`browser driver did not finish within ${DRIVER_LIMIT_MS} ms`);
    process.exit(0);
  }, DRIVER_LIMIT_MS);

  if (!fs.existsSync(CHROMIUM)) {
    failRest(`${CHROMIUM} not found (run tests/interop/install.sh)`);
    process.exit(0);
  }

  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "eio-interop-chromium-"));
  let context = null;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: FLAGS,
      timeout: 30000,
    });
  } catch (e) {
    failRest(`chromium did not start: ${String(e.message || e).split("\n")[0]}`);
    fs.rmSync(userDataDir, { recursive: true, force: true });
    process.exit(0);
  }

  try {
    const page = context.pages()[0] || (await context.newPage());
    page.on("console", (m) => console.error(`[page console.${m.type()}] ${m.text()}`));
    page.on("pageerror", (e) => console.error(`[page error] ${e.message}`));

    let loadError = null;
    try {
      const resp = await page.goto(pageUrl, { waitUntil: "load", timeout: 10000 });
      if (!resp || resp.status() !== 200) loadError = `GET ${pageUrl} answered ${resp ? resp.status() : "nothing"}`;
    } catch (e) {
      loadError = `GET ${pageUrl} failed: ${String(e.message || e).split("\n")[0]}`;
    }
    if (!loadError && eio3) {
      // The demo page's own (v4) connection goes; the v3 bundle replaces window.eio.
      await page.evaluate(() => window.demo && window.demo.socket && window.demo.socket.close()).catch(() => {});
      try {
        await page.evaluate(() => { window.eio = undefined; });
        await page.addScriptTag({ content: fs.readFileSync(V3_BUNDLE, "utf8") });
        const version = await page.evaluate(() => typeof window.eio === "function" && window.eio.protocol);
        if (version !== 3) loadError = `the engine.io-client 3 bundle gave protocol ${version}, not 3`;
      } catch (e) {
        loadError = `cannot add ${V3_BUNDLE} to the page: ${String(e.message || e).split("\n")[0]}`;
      }
    }
    const hasEio = !loadError && (await page.evaluate(() => typeof window.eio === "function").catch(() => false));

    while (pending.length) {
      const name = pending.shift();
      const started = Date.now();
      let r;
      if (loadError) {
        r = { ok: false, ms: 0, detail: `demo page not loaded: ${loadError}` };
      } else if (name === "demo_page") {
        r = await checkDemoPage(page, started);
        if (screenshot) {
          // A few more round trips first, so the chart has something to show.
          await page.waitForTimeout(3000);
          await page.screenshot({ path: screenshot, fullPage: true }).catch((e) => console.error(`screenshot: ${e.message}`));
        }
      } else if (!hasEio) {
        r = { ok: false, ms: 0, detail: "window.eio is not a function: /engine.io.min.js (engine.io-client bundle) not loaded" };
      } else {
        r = await withHardLimit(
          page
            .evaluate(
              async ([src, args]) => {
                const run = (0, eval)("(" + src + ")");
                return await run(window.eio, args);
              },
              [runEioCase.toString(), { url: new URL(a.url).origin, transport: a.transport, name }],
            )
            .catch((e) => ({ ok: false, ms: Date.now() - started, detail: `page.evaluate failed: ${String(e.message || e).split("\n")[0]}` })),
          started,
        );
      }
      emit(a.transport, name, r);
    }
  } finally {
    clearTimeout(hard);
    await Promise.race([context.close().catch(() => {}), new Promise((r) => setTimeout(r, 10000))]);
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }
  process.exit(0);
}

// The demo page must connect on its own, measure a round trip, show the transport, and
// echo what is typed into its text box.
async function checkDemoPage(page, started) {
  try {
    await page.waitForFunction(
      () => window.demo && window.demo.connected && Number.isFinite(window.demo.lastRtt),
      null,
      { timeout: 8000, polling: 50 },
    );
  } catch (_) {
    const s = await page
      .evaluate(() => (window.demo ? { connected: window.demo.connected, transport: window.demo.transport, lastRtt: window.demo.lastRtt, log: window.demo.log.slice(-3) } : null))
      .catch(() => null);
    return { ok: false, ms: Date.now() - started, detail: `demo page did not connect and measure a round trip within 8000 ms: window.demo = ${JSON.stringify(s)}` };
  }
  // The page starts on polling and upgrades; give the upgrade a moment to show.
  await page
    .waitForFunction(() => window.demo.transport === "websocket", null, { timeout: 3000, polling: 50 })
    .catch(() => {});
  // The text box: type a message, press Send, and its echo must appear in the log.
  const probe = "demo echo check \u20ac";
  let echoed = false;
  try {
    await page.fill("#text", probe, { timeout: 2000 });
    await page.click("#send button", { timeout: 2000 });
    await page.waitForFunction((t) => window.demo.log.includes("echo: " + t), probe, { timeout: 3000, polling: 50 });
    echoed = true;
  } catch (_) {
    echoed = false;
  }
  const s = await page.evaluate(() => ({
    connected: window.demo.connected,
    transport: window.demo.transport,
    lastRtt: window.demo.lastRtt,
    shown: document.getElementById("transport").textContent,
    rttShown: document.getElementById("rtt").textContent,
    hasSocket: !!window.demo.socket,
  }));
  const ok = echoed && s.connected && s.hasSocket && ["polling", "websocket"].includes(s.transport) && s.shown === s.transport && /ms$/.test(s.rttShown);
  return {
    ok,
    ms: Date.now() - started,
    detail: `demo page connected, transport ${s.transport} (shown "${s.shown}"), lastRtt ${s.lastRtt.toFixed(1)} ms (shown "${s.rttShown}"), text box echo ${echoed ? "shown" : "NOT shown"}` + (ok ? "" : " — incomplete"),
  };
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
