"""A bare Tornado WebSocket relay on uvloop and orjson: the transport's cost, for comparison.

It speaks just enough of the WhatsEase protocol for bench/ws_load.py to drive
it unchanged: ``auth`` (the token is taken as the user's address, no check)
→ ``ready``; ``send`` → parse, look up the recipient, re-serialise, send a
``message`` to the recipient and an ``ack`` to the sender; ``delivered`` →
``status`` to each message's sender. No database, no authentication, no
activity, no metrics. Listens on 127.0.0.1 only.

    python bench/relay_baseline.py --port 8090
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import resource
import signal
from typing import Any

import orjson
import tornado.web
import tornado.websocket
import uvloop

# Where each relayed message came from, for routing its receipt: bounded.
MAX_ROUTES = 1_000_000


class Relay:
    def __init__(self) -> None:
        self.sockets: dict[str, RelayHandler] = {}
        self.senders: dict[str, str] = {}
        self.ids = itertools.count(1)


class RelayHandler(tornado.websocket.WebSocketHandler):
    def initialize(self, relay: Relay) -> None:
        self.relay = relay
        self.user = ""

    def check_origin(self, origin: str) -> bool:
        return True

    def open(self, *args: str, **kwargs: str) -> None:
        self.set_nodelay(True)  # as the WhatsEase handler does

    def on_message(self, message: str | bytes) -> None:
        frame: dict[str, Any] = orjson.loads(message)
        kind = frame.get("type")
        if kind == "auth":
            self.user = str(frame["token"])
            self.relay.sockets[self.user] = self
            self.write_message(orjson.dumps({"type": "ready", "user": self.user}))
        elif kind == "send":
            mid = f"{next(self.relay.ids):024x}"
            body = {"message_id": mid, "sender": self.user, "recipient": frame["recipient"],
                    "content": frame["content"], "client_id": frame["client_id"],
                    "status": "Sent"}
            if len(self.relay.senders) < MAX_ROUTES:
                self.relay.senders[mid] = self.user
            peer = self.relay.sockets.get(frame["recipient"])
            if peer is not None:
                peer.write_message(orjson.dumps({"type": "message", "message": body}))
            self.write_message(orjson.dumps({"type": "ack", "client_id": frame["client_id"],
                                             "message": body}))
        elif kind == "delivered":
            for mid in frame["message_ids"]:
                sender = self.relay.senders.pop(mid, None)
                peer = self.relay.sockets.get(sender) if sender else None
                if peer is not None:
                    peer.write_message(orjson.dumps({"type": "status", "message_id": mid,
                                                     "status": "Delivered"}))
        elif kind == "ping":
            self.write_message(b'{"type":"pong"}')

    def on_close(self) -> None:
        if self.user and self.relay.sockets.get(self.user) is self:
            del self.relay.sockets[self.user]


async def serve(port: int) -> None:
    app = tornado.web.Application([(r"/ws", RelayHandler, {"relay": Relay()})],
                                  websocket_max_message_size=64 * 1024)
    server = app.listen(port, address="127.0.0.1")
    gc.collect()
    gc.freeze()
    print(f"relay listening on 127.0.0.1:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8090)
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    uvloop.run(serve(args.port))


if __name__ == "__main__":
    main()
