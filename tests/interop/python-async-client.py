#!/usr/bin/env python3
"""Client driver: python-engineio's ``engineio.AsyncClient`` (asyncio, aiohttp), against an
Engine.IO echo server; the deflate rows' Python client.

    .venv/bin/python python-async-client.py --url http://127.0.0.1:PORT \
        --transport polling|websocket|upgrade [--compress 15] [--cases connect,text,...]

``--compress N`` offers permessage-deflate with a window of N bits (9 to 15), through
``AsyncClient(websocket_extra_options={"compress": N})``, aiohttp's ``ws_connect(compress=)``;
without it nothing is offered. python-engineio's threaded ``Client`` (websocket-client)
cannot do permessage-deflate at all; this one can.

Prints one JSON line per case, as python-client.py does (peer ``python-async``):
    {"peer":"python-async","transport":...,"case":...,"ok":bool,"ms":N,"detail":...}
Exits 0 when it ran (failures included; run.py judges), 2 on bad arguments.

Cases (README.md): connect, text, binary, text_100k, binary_100k, and the deflate rows'
``deflate`` (permessage-deflate agreed: aiohttp's ``ClientWebSocketResponse.compress``
is the agreed window, 0 when none; our server's answer to ``__deflate__`` agrees) and
``no_deflate`` (nothing agreed, on either side). In ``upgrade`` mode aiohttp refusing a
server's extension answer fails the upgrade, and python-engineio then stays on polling
without an error, so every case checks that the transport really is websocket.
"""

import argparse
import asyncio
import json
import logging
import sys
import time
import urllib.parse

import aiohttp
import engineio

CASES = ["connect", "text", "binary", "text_100k", "binary_100k", "deflate", "no_deflate"]
TRANSPORTS = ["polling", "websocket", "upgrade"]

TEXT = "hello \u20ac\U0001f600"  # "hello €😀"
BINARY = bytes(range(256))
TEXT_100K = "abcdefghij\u20ac\U0001f600" * 5883  # 5883 x 17 UTF-8 bytes = 100,011
BINARY_100K = bytes((i * 31 + 7) % 256 for i in range(100000))
CASE_HARD_LIMIT_S = 15.0


def describe(d):
    if isinstance(d, str):
        return f"text({len(d.encode('utf-8'))} B{' ' + json.dumps(d, ensure_ascii=False) if len(d) <= 40 else ''})"
    if isinstance(d, (bytes, bytearray)):
        return f"binary({len(d)} B)"
    return f"unexpected {type(d).__name__}"


def header_names(header):
    """The parameters of a Sec-WebSocket-Extensions value, sorted."""
    return sorted(p.strip().replace(" ", "") for p in header.split(";")[1:] if p.strip())


class Conn:
    def __init__(self, url, mode, compress):
        self.url = url
        self.mode = mode
        self.t0 = time.monotonic()
        self.messages = asyncio.Queue()
        self.log = []
        logger = logging.getLogger(f"interop.python-async-client.{id(self)}")
        logger.setLevel(logging.WARNING)
        logger.propagate = False
        handler = logging.Handler(logging.WARNING)
        handler.emit = lambda record: self.log.append(record.getMessage())
        logger.addHandler(handler)
        extra = {"compress": compress} if compress else {}
        self.client = engineio.AsyncClient(logger=logger, handle_sigint=False, request_timeout=5,
                                           websocket_extra_options=extra)
        self.client.on("message", self.messages.put_nowait)

    def elapsed(self):
        return int((time.monotonic() - self.t0) * 1000)

    async def ready(self):
        transports = {"polling": ["polling"], "websocket": ["websocket"],
                      "upgrade": ["polling", "websocket"]}[self.mode]
        try:
            await asyncio.wait_for(self.client.connect(self.url, transports=transports,
                                                       engineio_path="engine.io"), 5)
        except Exception as e:  # engineio.exceptions.ConnectionError, timeouts
            return f"connect failed: {type(e).__name__}: {e}" + (
                f" (library log: {' | '.join(self.log[-3:])})" if self.log else "")
        want = "polling" if self.mode == "polling" else "websocket"
        if self.client.transport() != want:
            return (f"transport is {self.client.transport()}, expected {want}"
                    + (f" (library log: {' | '.join(self.log[-3:])})" if self.log else ""))
        return None

    async def echo(self, payload, timeout_s):
        await self.client.send(payload)
        try:
            got = await asyncio.wait_for(self.messages.get(), timeout_s)
        except asyncio.TimeoutError:
            return None, f"no answer within {int(timeout_s * 1000)} ms"
        return got, None

    def deflate_view(self):
        ws = getattr(self.client, "ws", None)
        if ws is None or self.client.transport() != "websocket":
            return 0, f"no WebSocket (transport {self.client.transport()})"
        response = getattr(ws, "_response", None)
        answer = response.headers.get("Sec-WebSocket-Extensions") if response is not None else None
        return ws.compress, f"ws.compress={ws.compress}, answer {json.dumps(answer)}"

    async def dispose(self):
        try:
            await asyncio.wait_for(self.client.disconnect(), 3)
        except Exception:
            pass


async def run_case(url, transport, name, compress):
    c = Conn(url, transport, compress)
    ok, detail = False, ""
    try:
        err = await c.ready()
        if err:
            detail = err
        elif name == "connect":
            cl = c.client
            ok = True
            detail = (f"connected on {transport}, transport {cl.transport()}; handshake "
                      f"pingInterval={int(cl.ping_interval * 1000)} "
                      f"pingTimeout={int(cl.ping_timeout * 1000)} upgrades={json.dumps(cl.upgrades)}; "
                      f"aiohttp {aiohttp.__version__}")
        elif name in ("text", "binary", "text_100k", "binary_100k"):
            payload = {"text": TEXT, "binary": BINARY, "text_100k": TEXT_100K,
                       "binary_100k": BINARY_100K}[name]
            got, e = await c.echo(payload, 5 if name.endswith("100k") else 3)
            if e is None and got != payload:
                e = f"sent {describe(payload)}, got {describe(got)}"
            ok = e is None
            detail = e or f"echoed {describe(payload)} exactly over {c.client.transport()}"
        elif name in ("deflate", "no_deflate"):
            want = name == "deflate"
            bits, view = c.deflate_view()
            got, e = await c.echo("__deflate__", 3)
            parts = [f"client: {view}"]
            problem = e
            if problem is None and not isinstance(got, str):
                problem = f"__deflate__ answered with {describe(got)}"
            if problem is None:
                reported = got != "__deflate__"
                parts.append(f"server: {json.dumps(got)}" if reported else "server: echoed (does not report)")
                if (bits != 0) != want:
                    problem = ("permessage-deflate was not agreed" if want
                               else "permessage-deflate was agreed although not offered")
                elif reported and got.startswith("permessage-deflate") != want:
                    problem = f"the server reports {json.dumps(got)}"
                elif reported and want:
                    # aiohttp takes the server's window as its own `compress` value.
                    server_bits = [p for p in header_names(got) if p.startswith("server_max_window_bits=")]
                    expect = int(server_bits[0].split("=")[1]) if server_bits else 15
                    if bits != expect:
                        problem = f"ws.compress={bits}, the server's answer says {expect} bits"
            if problem is None and want:
                back, e = await c.echo(TEXT_100K, 5)
                if e is not None or back != TEXT_100K:
                    problem = f"100 kB echo: {e or 'got ' + describe(back)}"
                else:
                    parts.append("100 kB text echoed")
            ok = problem is None
            detail = (problem + "; " if problem else "") + "; ".join(parts)
        else:
            detail = f"unknown case {name}"
    except Exception as e:
        detail = f"exception: {type(e).__name__}: {e}"
    finally:
        await c.dispose()
    return ok, c.elapsed(), detail


async def main_async(a, cases):
    for name in cases:
        t0 = time.monotonic()
        try:
            ok, ms, detail = await asyncio.wait_for(run_case(a.url, a.transport, name, a.compress),
                                                    CASE_HARD_LIMIT_S)
        except asyncio.TimeoutError:
            ok, ms = False, int((time.monotonic() - t0) * 1000)
            detail = f"case did not finish within {int(CASE_HARD_LIMIT_S * 1000)} ms"
        line = {"peer": "python-async", "transport": a.transport, "case": name, "ok": ok, "ms": ms,
                "detail": detail}
        sys.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")
        sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--transport", required=True, choices=TRANSPORTS)
    ap.add_argument("--cases", default=",".join(CASES[:5]))
    ap.add_argument("--compress", type=int, default=0,
                    help="offer permessage-deflate with this window (9 to 15); 0: do not offer")
    a = ap.parse_args()
    host = urllib.parse.urlparse(a.url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"refusing non-loopback url {a.url}", file=sys.stderr)
        return 2
    if a.compress and not 9 <= a.compress <= 15:
        print("--compress wants 9 to 15 (aiohttp refuses 8), or 0", file=sys.stderr)
        return 2
    cases = [c for c in a.cases.split(",") if c]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        print(f"unknown cases {unknown}; known: {CASES}", file=sys.stderr)
        return 2
    asyncio.run(main_async(a, cases))
    return 0


if __name__ == "__main__":
    sys.exit(main())
