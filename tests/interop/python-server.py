#!/usr/bin/env python3
"""Interop peer: python-engineio ``AsyncServer(async_mode="asgi")`` under uvicorn.

Follows the e2e echo-server contract of tests/interop/README.md, with one documented
difference in the heartbeat:

* 127.0.0.1:PORT (env PORT or first argument), Engine.IO path ``/engine.io/``,
  maxPayload 1,000,000 bytes, transports polling + websocket, upgrades allowed,
  CORS: any origin.
* Every message is echoed unchanged (str stays str, bytes stay bytes), except the text
  ``__close__``, which makes the server close that session.
* Heartbeat: pingInterval **1000 ms** (not 300), pingTimeout 200 ms. python-engineio
  4.15.1 builds the handshake as ``int(ping_interval + grace) * 1000``
  (async_server.py, ``_handle_connect``), truncating to whole seconds *before* scaling,
  so ``ping_interval=0.3`` would be advertised as ``"pingInterval": 0`` and every client
  would time out. Whole seconds are advertised correctly; pingTimeout is scaled
  correctly (``int(ping_timeout * 1000)``) and stays 200.

Run: ``.venv/bin/python python-server.py PORT``
"""

import importlib.metadata
import os
import sys

import engineio
import uvicorn

PING_INTERVAL_S = 1  # whole seconds only, see the module docstring
PING_TIMEOUT_S = 0.2
MAX_PAYLOAD = 1_000_000


def main() -> int:
    port_text = os.environ.get("PORT") or (sys.argv[1] if len(sys.argv) > 1 else "")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        print("usage: python-server.py PORT   (or PORT=N in the environment)", file=sys.stderr)
        return 2
    port = int(port_text)

    eio = engineio.AsyncServer(
        async_mode="asgi",
        ping_interval=PING_INTERVAL_S,
        ping_timeout=PING_TIMEOUT_S,
        max_http_buffer_size=MAX_PAYLOAD,
        transports=["polling", "websocket"],
        allow_upgrades=True,
        cors_allowed_origins="*",
    )

    @eio.on("message")
    async def message(sid, data):
        if data == "__close__":
            await eio.disconnect(sid)
        else:
            await eio.send(sid, data)

    app = engineio.ASGIApp(eio, engineio_path="engine.io")
    print(
        f"python-server: python-engineio {importlib.metadata.version('python-engineio')}"
        f" + uvicorn {uvicorn.__version__} echo on http://127.0.0.1:{port}/engine.io/ pid {os.getpid()}",
        file=sys.stderr,
        flush=True,
    )
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        http="h11",
        ws="websockets-sansio",
        loop="asyncio",
        lifespan="off",
        log_level="warning",
        access_log=False,
        # python-engineio can leave a request handler waiting forever (see
        # known-deviations.json, over_limit), which would hold up uvicorn's graceful
        # shutdown on SIGTERM; bound it.
        timeout_graceful_shutdown=2,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
