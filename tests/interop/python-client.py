#!/usr/bin/env python3
"""Client driver: python-engineio's ``engineio.Client`` (threads, requests +
websocket-client), against an Engine.IO echo server.

    .venv/bin/python python-client.py --url http://127.0.0.1:PORT \
        --transport polling|websocket|upgrade [--cases connect,text,...]

Prints one JSON line per case:
    {"peer":"python","transport":...,"case":...,"ok":bool,"ms":N,"detail":...}
Exits 0 when it ran (failures included; run.py judges), 2 on bad arguments.

The cases and payloads mirror eio-cases.mjs (README.md defines them). Differences that
come from the library, not from this driver:

* transport modes map to ``connect(transports=...)``: ``["polling"]``, ``["websocket"]``,
  ``["polling", "websocket"]``; python-engineio performs the upgrade synchronously inside
  ``connect()``, so ``upgrade`` is confirmed by ``client.transport() == "websocket"``
  right after it returns.
* python-engineio has no ping event; the driver counts PING packets by wrapping the
  instance's ``_receive_packet`` (test instrumentation only, behaviour unchanged).
* the client's own close reason is ``Client.reason.CLIENT_DISCONNECT``
  (``"client disconnect"``).
"""

import argparse
import json
import logging
import os
import sys
import threading
import time
import urllib.parse

import engineio
from engineio import packet as eio_packet

CASES = [
    "connect",
    "text",
    "binary",
    "text_100k",
    "binary_100k",
    "heartbeat",
    "over_limit",
    "client_close",
    "server_close",
]
# Run only when asked for (the deflate rows): no_deflate checks that a server with
# permessage-deflate on still serves this client, which cannot offer it
# (websocket-client has no permessage-deflate): no extension in the server's 101, and our
# server's answer to `__deflate__` is "off" (a server that echoes it does not say).
EXTRA_CASES = ["no_deflate"]
TRANSPORTS = ["polling", "websocket", "upgrade"]

TEXT = "hello \u20ac\U0001f600"  # "hello €😀"
BINARY = bytes(range(256))
TEXT_100K = "abcdefghij\u20ac\U0001f600" * 5883  # 5883 x 17 UTF-8 bytes = 100,011
BINARY_100K = bytes((i * 31 + 7) % 256 for i in range(100000))
OVER_LIMIT = "x" * 1000001  # packet "4" + 1,000,001 bytes > maxPayload 1e6
CLIENT_CLOSE_REASON = engineio.Client.reason.CLIENT_DISCONNECT

CASE_HARD_LIMIT_S = 15.0
# INTEROP_DEBUG=1: python-engineio's INFO log goes to stderr (run.py keeps it in the log).
DEBUG = os.environ.get("INTEROP_DEBUG") == "1"


def describe_data(d):
    if isinstance(d, str):
        n = len(d.encode("utf-8"))
        return f"text({n} B{' ' + json.dumps(d, ensure_ascii=False) if len(d) <= 40 else ''})"
    if isinstance(d, (bytes, bytearray)):
        return f"binary({len(d)} B)"
    return f"unexpected {type(d).__name__}"


def first_diff(a, b):
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


class Conn:
    """One engineio.Client with its events recorded, and bounded waits on them."""

    def __init__(self, url, transport):
        self.url = url
        self.mode = transport
        self.cond = threading.Condition()
        self.t0 = time.monotonic()
        self.messages = []
        self.pings = 0
        self.closed = None  # (reason, at_ms)
        # python-engineio reports only a reason string to the disconnect handler; the
        # warnings it logs (status codes, "WebSocket connection was closed") say why, so
        # they are captured and added to the case's detail.
        self.log = []
        logger = logging.getLogger(f"interop.python-client.{id(self)}")
        logger.setLevel(logging.INFO if DEBUG else logging.WARNING)
        logger.propagate = False
        handler = logging.Handler(logging.WARNING)
        handler.emit = lambda record: self.log.append(record.getMessage())
        logger.addHandler(handler)
        if DEBUG:  # the library's own INFO log, with times, to stderr
            dbg = logging.StreamHandler(sys.stderr)
            dbg.setFormatter(logging.Formatter("%(relativeCreated)7.0f ms %(threadName)s %(message)s"))
            logger.addHandler(dbg)
        self.client = engineio.Client(logger=logger, handle_sigint=False, request_timeout=5)
        self.client.on("message", self._on_message)
        self.client.on("disconnect", self._on_disconnect)
        original = self.client._receive_packet

        def counting(pkt):
            if pkt.packet_type == eio_packet.PING:
                with self.cond:
                    self.pings += 1
                    self.cond.notify_all()
            return original(pkt)

        self.client._receive_packet = counting

    def elapsed(self):
        return int((time.monotonic() - self.t0) * 1000)

    def _on_message(self, data):
        with self.cond:
            self.messages.append(data)
            self.cond.notify_all()

    def _on_disconnect(self, reason=None):
        with self.cond:
            if self.closed is None:
                self.closed = (reason, self.elapsed())
            self.cond.notify_all()

    def until(self, pred, ms):
        deadline = time.monotonic() + ms / 1000.0
        with self.cond:
            while not pred():
                left = deadline - time.monotonic()
                if left <= 0:
                    return pred()
                self.cond.wait(left)
            return True

    def describe_close(self):
        if self.closed is None:
            return "not closed"
        text = f'reason "{self.closed[0]}"'
        if self.log:
            text += " (library log: " + " | ".join(self.log[-3:]) + ")"
        return text

    def ready(self):
        """Connects; returns None or a failure text."""
        transports = {
            "polling": ["polling"],
            "websocket": ["websocket"],
            "upgrade": ["polling", "websocket"],
        }[self.mode]
        try:
            self.client.connect(self.url, transports=transports, engineio_path="engine.io")
        except Exception as e:  # engineio.exceptions.ConnectionError and friends
            return f"connect failed: {type(e).__name__}: {e}"
        self.opened_at = self.elapsed()
        if self.opened_at > 3000:
            return f"connect took {self.opened_at} ms (> 3000)"
        want = "polling" if self.mode == "polling" else "websocket"
        if self.client.transport() != want:
            return f"transport is {self.client.transport()}, expected {want}"
        return None

    def echo(self, payload, ms):
        with self.cond:
            before = len(self.messages)
        self.client.send(payload)
        if not self.until(lambda: len(self.messages) > before or self.closed, ms):
            return f"no echo within {ms} ms"
        with self.cond:
            if len(self.messages) == before:
                return f"closed instead of echoing: {self.describe_close()}"
            got = self.messages[before]
        if isinstance(payload, str):
            if got != payload:
                if not isinstance(got, str):
                    return f"sent text, got {describe_data(got)}"
                return (f"text differs: sent {len(payload.encode())} B, got {describe_data(got)}, "
                        f"first difference at char {first_diff(payload, got)}")
        else:
            if not isinstance(got, (bytes, bytearray)):
                return f"sent binary({len(payload)} B), got {describe_data(got)}"
            if bytes(got) != payload:
                return (f"binary differs: sent {len(payload)} B, got {len(got)} B, "
                        f"first difference at byte {first_diff(payload, got)}")
        return None

    def dispose(self):
        try:
            if self.client.state == "connected":
                self.client.disconnect(abort=True)
        except Exception:
            pass


def run_case(url, transport, name):
    c = Conn(url, transport)
    ok = False
    detail = ""
    try:
        err = c.ready()
        if err:
            detail = err
        elif name == "connect":
            cl = c.client
            ok = True
            detail = (f"connected on {transport} after {c.opened_at} ms, transport {cl.transport()}; "
                      f"handshake pingInterval={int(cl.ping_interval * 1000)} "
                      f"pingTimeout={int(cl.ping_timeout * 1000)} upgrades={json.dumps(cl.upgrades)} "
                      f"sid={len(cl.sid or '')} chars")
        elif name in ("text", "binary", "text_100k", "binary_100k"):
            payload = {"text": TEXT, "binary": BINARY, "text_100k": TEXT_100K,
                       "binary_100k": BINARY_100K}[name]
            e = c.echo(payload, 5000 if name.endswith("100k") else 3000)
            ok = e is None
            detail = e or f"echoed {describe_data(payload)} exactly"
        elif name == "no_deflate":
            ws = getattr(c.client, "ws", None)
            headers = (ws.getheaders() if ws is not None and c.client.transport() == "websocket"
                       else None) or {}
            answer_ext = headers.get("sec-websocket-extensions")
            with c.cond:
                before = len(c.messages)
            c.client.send("__deflate__")
            c.until(lambda: len(c.messages) > before or c.closed, 3000)
            with c.cond:
                got = c.messages[before] if len(c.messages) > before else None
            parts = [f"client: 101 Sec-WebSocket-Extensions {json.dumps(answer_ext)}"]
            if got is None:
                detail = f"no answer to __deflate__ within 3000 ms; {c.describe_close()}"
            else:
                server = "echoed (does not report)" if got == "__deflate__" else json.dumps(got)
                parts.append(f"server: {server}")
                if answer_ext:
                    detail = "the server answered an extension that was not offered; " + "; ".join(parts)
                elif got not in ("off", "__deflate__"):
                    detail = f"the server reports {json.dumps(got)}; " + "; ".join(parts)
                else:
                    ok = True
                    detail = "; ".join(parts)
        elif name == "heartbeat":
            interval = c.client.ping_interval or 0.3
            duration = min(5000, max(1500, int(3000 * interval)))
            pings0 = c.pings
            c.until(lambda: c.closed, duration)
            pings = c.pings - pings0
            if c.closed:
                detail = f"closed after {pings} pings: {c.describe_close()}"
            elif pings < 2:
                detail = (f"stayed open {duration} ms but saw only {pings} pings "
                          f"(pingInterval {int(interval * 1000)})")
            else:
                e = c.echo("after heartbeat", 2000)
                ok = e is None
                detail = ((e + "; ") if e else "echo ok; ") + (
                    f"{pings} pings in {duration} ms (pingInterval {int(interval * 1000)}, "
                    f"pingTimeout {int(c.client.ping_timeout * 1000)}), transport {c.client.transport()}")
        elif name == "over_limit":
            with c.cond:
                before = len(c.messages)
            t = c.elapsed()
            c.client.send(OVER_LIMIT)
            c.until(lambda: c.closed or len(c.messages) > before, 5000)
            if len(c.messages) > before:
                detail = f"echoed {describe_data(c.messages[before])} instead of closing"
            elif not c.closed:
                # Fail, but say what happens next (bounded), e.g. a close by a client timeout.
                c.until(lambda: c.closed, 2000)
                later = (f"closed later, {c.closed[1] - t} ms after sending: {c.describe_close()}"
                         if c.closed else "still open 7000 ms after sending")
                log = "" if c.closed or not c.log else f"; library log: {' | '.join(c.log[-3:])}"
                detail = f"neither echoed nor closed within 5000 ms ({later}{log})"
            else:
                ok = True
                detail = f"closed after {c.closed[1] - t} ms: {c.describe_close()}"
        elif name == "client_close":
            t = c.elapsed()
            c.client.disconnect()
            c.until(lambda: c.closed, 2000)
            if not c.closed:
                detail = "no close event within 2000 ms"
            else:
                ok = c.closed[0] == CLIENT_CLOSE_REASON
                detail = (f"close event after {c.closed[1] - t} ms: {c.describe_close()}"
                          + ("" if ok else f' (expected "{CLIENT_CLOSE_REASON}")'))
        elif name == "server_close":
            with c.cond:
                before = len(c.messages)
            t = c.elapsed()
            c.client.send("__close__")
            c.until(lambda: c.closed, 2000)
            if len(c.messages) > before:
                detail = f"got {describe_data(c.messages[before])} back; {c.describe_close()}"
            elif not c.closed:
                detail = "no close within 2000 ms"
            else:
                ok = True
                detail = f"closed after {c.closed[1] - t} ms: {c.describe_close()}"
        else:
            detail = f"unknown case {name}"
    except Exception as e:
        ok = False
        detail = f"exception: {type(e).__name__}: {e}"
    finally:
        c.dispose()
    return ok, c.elapsed(), detail


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--transport", required=True, choices=TRANSPORTS)
    ap.add_argument("--cases", default=",".join(CASES))
    a = ap.parse_args()
    host = urllib.parse.urlparse(a.url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"refusing non-loopback url {a.url}", file=sys.stderr)
        return 2
    cases = [c for c in a.cases.split(",") if c]
    unknown = [c for c in cases if c not in CASES + EXTRA_CASES]
    if unknown:
        print(f"unknown cases {unknown}; known: {CASES + EXTRA_CASES}", file=sys.stderr)
        return 2

    for name in cases:
        result = {}
        t0 = time.monotonic()

        def target():
            result["r"] = run_case(a.url, a.transport, name)

        th = threading.Thread(target=target, daemon=True)
        th.start()
        th.join(CASE_HARD_LIMIT_S)
        if "r" in result:
            ok, ms, detail = result["r"]
        else:
            ok, ms = False, int((time.monotonic() - t0) * 1000)
            detail = f"case did not finish within {int(CASE_HARD_LIMIT_S * 1000)} ms"
        line = {"peer": "python", "transport": a.transport, "case": name, "ok": ok, "ms": ms,
                "detail": detail}
        sys.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    rc = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Background threads of clients that a case left behind must not keep the process up.
    os._exit(rc)
