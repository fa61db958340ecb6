"""Serving an ASGI app on this machine's loopback from a background thread.

The local Notion server (and the test stand-ins for the paid APIs) run this way inside a process:
real HTTP on a real socket, started and stopped like any object.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn

START_TIMEOUT_S = 15.0


class LoopbackServer:
    """`app` served by uvicorn on `host:port` (port 0 picks a free one) in a daemon thread."""

    def __init__(self, app: Any, *, host: str = "127.0.0.1", port: int = 0, name: str = "loopback-server", lifespan: str = "on"):
        self.app, self.host, self.port, self.name, self.lifespan = app, host, port, name, lifespan
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    @property
    def started(self) -> bool:
        return self._server is not None

    def bind(self) -> int:
        """Reserve the port now (so a caller can know its URL before the app exists); returns it."""
        if self._socket is None:
            family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
            # proto must be IPPROTO_TCP: asyncio only sets TCP_NODELAY on such sockets, and without it
            # Nagle + delayed ACK add ~40 ms to every request.
            sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            self.port = sock.getsockname()[1]
            self._socket = sock
        return self.port

    def start(self) -> LoopbackServer:
        """Serve; returns once the port accepts connections."""
        if self._server is not None:
            return self
        self.bind()
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan=self.lifespan)
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [self._socket]}, name=self.name, daemon=True)
        self._server, self._thread = server, thread
        thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name} did not start on {self.host}:{self.port}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            if self._thread is not None:
                self._thread.join(timeout=START_TIMEOUT_S)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None
