"""uvicorn's HTTP/1.1 protocol (h11), with the one limit it lacks: a deadline for the request
line and headers. A client that opens a connection and sends half a header was kept forever
(3,000 of them still open after 30 s, until the open-file limit stopped the server answering
at all); an HTTP/0.9 ``GET /`` was held 25 s. ``serve`` passes this class to uvicorn by name
(``http="mnist_logreg.serve.protocol:HeaderDeadline"``), so every worker uses it; uvicorn's own
settings do the rest (``limit_concurrency``: 503 past a cap; ``timeout_keep_alive``).
"""
from __future__ import annotations

import logging
import os
import time

from uvicorn.protocols.http.h11_impl import H11Protocol

# seconds from connect (or from the end of the last response) to a whole header block; `serve
# --header-timeout` sets it for every worker through the environment (uvicorn makes the protocol)
HEADER_TIMEOUT = float(os.environ.get("MNIST_LOGREG_SERVE_HEADER_TIMEOUT") or 10.0)


class HeaderDeadline(H11Protocol):
    """Closes a connection whose next request has not arrived whole within HEADER_TIMEOUT."""

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._deadline = self.loop.call_later(HEADER_TIMEOUT, self._too_slow)

    def handle_events(self) -> None:
        had = self.cycle
        super().handle_events()
        if self.cycle is not None and self.cycle is not had and self._deadline is not None:
            self._deadline.cancel()  # a whole request line and headers: the app takes it from here
            self._deadline = None

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._deadline is None and not self.transport.is_closing():  # a kept-alive connection's next request
            self._deadline = self.loop.call_later(HEADER_TIMEOUT + self.timeout_keep_alive, self._too_slow)

    def connection_lost(self, exc) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        super().connection_lost(exc)

    def _too_slow(self) -> None:
        self._deadline = None
        if self.cycle is None or self.cycle.response_complete:
            self.transport.close()


class OncePerSecond(logging.Filter):
    """The same message at most once a second (at the open-file limit, asyncio's accept loop
    logged "Too many open files" 4.3 million times in 50 s: 292 MB of log)."""

    def __init__(self):
        super().__init__()
        self._last: dict = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key, now = (record.name, record.msg), time.monotonic()
        if now - self._last.get(key, -2.0) < 1.0:
            return False
        self._last[key] = now
        if len(self._last) > 1000:
            self._last.clear()
        return True


def quiet_repeats() -> None:
    """Rate-limit the loggers that repeat under load: asyncio's accept loop, uvicorn's errors."""
    for name in ("asyncio", "uvicorn.error"):
        logging.getLogger(name).addFilter(OncePerSecond())
