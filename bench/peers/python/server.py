"""python-engineio AsyncServer (ASGI) echo server for the engineio-rs benchmark.

Run under uvicorn (bench/compare.py does it):
    ./venv/bin/uvicorn server:app --host 127.0.0.1 --port 3000 --log-level warning --no-access-log

Settings as every benchmarked server: path /engine.io/, ping 25 s / 20 s, max payload 1e6,
polling and WebSocket. Every message is sent back unchanged, except the text
`__broadcast__<payload>`, which sends <payload> to every live session.
"""

import engineio

PREFIX = "__broadcast__"

eio = engineio.AsyncServer(
    async_mode="asgi",
    ping_interval=25,
    ping_timeout=20,
    max_http_buffer_size=1_000_000,
    cors_allowed_origins="*",
    transports=["polling", "websocket"],
)


@eio.on("message")
async def message(sid, data):
    if isinstance(data, str) and data.startswith(PREFIX):
        payload = data[len(PREFIX):]
        for other in list(eio.sockets):
            try:
                await eio.send(other, payload)
            except KeyError:
                pass  # the session ended meanwhile
    else:
        await eio.send(sid, data)


app = engineio.ASGIApp(eio, engineio_path="engine.io")
