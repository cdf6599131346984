#!/usr/bin/env python3
"""Cluster test driver: python-engineio's ``engineio.Client``, through a load balancer in
front of the cluster (see run.py). The same modes and output as node-client.mjs:

    spread --url U --transport T [--sessions 6] [--round-trips 200]
    listen --url U --transport T [--sessions 3] [--seconds 20]
    soak   --url U --transport T [--seconds 10]

Prints one JSON object per line; the last is {"result": ...}. Loopback URLs only.
"""

import argparse
import json
import logging
import sys
import threading
import time
import urllib.parse

import engineio

STARTED = time.monotonic()


def elapsed():
    return int((time.monotonic() - STARTED) * 1000)


def out(obj):
    print(json.dumps(obj), flush=True)


def node_of(sid):
    return sid.split(".")[0] if sid and "." in sid else "?"


class Conn:
    def __init__(self, url, mode):
        self.url = url
        self.mode = mode
        self.cond = threading.Condition()
        self.messages = []
        self.closed = None
        logger = logging.getLogger(f"cluster.python-client.{id(self)}")
        logger.setLevel(logging.ERROR)
        logger.propagate = False
        self.client = engineio.Client(logger=logger, handle_sigint=False, request_timeout=5)
        self.client.on("message", self._on_message)
        self.client.on("disconnect", self._on_disconnect)
        self.sid = None

    def _on_message(self, data):
        with self.cond:
            self.messages.append(data if isinstance(data, str) else f"<binary {len(data)}>")
            self.cond.notify_all()

    def _on_disconnect(self, reason=None):
        with self.cond:
            if self.closed is None:
                self.closed = {"reason": str(reason), "at_ms": elapsed(),
                               "epoch_ms": int(time.time() * 1000)}
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

    def ready(self):
        transports = {"polling": ["polling"], "websocket": ["websocket"],
                      "upgrade": ["polling", "websocket"]}[self.mode]
        try:
            self.client.connect(self.url, transports=transports, engineio_path="engine.io")
        except Exception as e:
            return f"connect failed: {type(e).__name__}: {e}"
        self.sid = self.client.sid
        want = "polling" if self.mode == "polling" else "websocket"
        if self.client.transport() != want:
            return f"transport is {self.client.transport()}, expected {want}"
        return None

    def echo(self, text, ms=5000):
        with self.cond:
            before = len(self.messages)
        try:
            self.client.send(text)
        except Exception as e:
            return f"send failed: {e}"
        if not self.until(lambda: len(self.messages) > before or self.closed, ms):
            return f"no echo of {text} within {ms} ms"
        with self.cond:
            if len(self.messages) == before:
                return f"closed instead of echoing {text}: {self.closed}"
            if self.messages[before] != text:
                return f"echo of {text} was {self.messages[before]!r}"
        return None

    def dispose(self):
        try:
            if self.client.state == "connected":
                self.client.disconnect(abort=True)
        except Exception:
            pass


def spread(a):
    n = a.sessions or 6
    nodes, errors, conns = {}, [], []
    for i in range(n):
        c = Conn(a.url, a.transport)
        e = c.ready()
        if e:
            errors.append(f"session {i}: {e}")
        else:
            nodes[node_of(c.sid)] = nodes.get(node_of(c.sid), 0) + 1
        conns.append(c)
    ok = 0
    first = next((c for c in conns if c.sid and not c.closed), None)
    if first:
        for i in range(a.round_trips):
            e = first.echo(f"rt{i}")
            if e:
                errors.append(f"round trip {i}: {e}")
                break
            ok += 1
    for c in conns:
        c.dispose()
    out({"result": {"nodes": nodes, "round_trips": ok, "errors": errors,
                    "first_sid": first.sid if first else None}})


def listen(a):
    n = a.sessions or 3
    conns, errors = [], []
    for _ in range(n):
        c = Conn(a.url, a.transport)
        e = c.ready()
        if e:
            errors.append(e)
        conns.append(c)
    out({"ready": [c.sid for c in conns if c.sid], "errors": errors})

    def done():
        return all(c.closed or "__done__" in c.messages for c in conns)

    deadline = time.monotonic() + a.seconds
    while not done() and time.monotonic() < deadline:
        time.sleep(0.02)
    received = {c.sid: c.messages for c in conns if c.sid}
    for c in conns:
        c.dispose()
    out({"result": {"received": received, "errors": errors}})


def soak(a):
    until = time.monotonic() + a.seconds
    sessions, errors = [], []
    while time.monotonic() < until:
        c = Conn(a.url, a.transport)
        e = c.ready()
        s = {"sid": c.sid, "node": node_of(c.sid), "opened_at": elapsed(), "sent": 0,
             "echoed": 0, "closed": None}
        sessions.append(s)
        if e:
            errors.append(e)
            s["closed"] = e
            time.sleep(0.2)
            continue
        while time.monotonic() < until and not c.closed:
            text = f"n{s['sent']}"
            s["sent"] += 1
            err = c.echo(text, 3000)
            if err:
                if not c.closed:
                    errors.append(err)
                break
            s["echoed"] += 1
            time.sleep(0.05)
        if c.closed:
            s["closed"] = c.closed
        else:
            c.dispose()
    out({"result": {"sessions": sessions, "errors": errors}})


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["spread", "listen", "soak"])
    p.add_argument("--url", required=True)
    p.add_argument("--transport", required=True, choices=["polling", "websocket", "upgrade"])
    p.add_argument("--sessions", type=int, default=0)
    p.add_argument("--round-trips", type=int, default=200)
    p.add_argument("--seconds", type=float, default=10)
    a = p.parse_args()
    host = urllib.parse.urlparse(a.url).hostname
    if host not in ("127.0.0.1", "localhost"):
        sys.exit("loopback only")
    try:
        {"spread": spread, "listen": listen, "soak": soak}[a.mode](a)
    except Exception as e:
        out({"result": {"errors": [f"exception: {type(e).__name__}: {e}"]}})


if __name__ == "__main__":
    main()
