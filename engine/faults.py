"""Unreachable services read as one line (OPS-3): which service, where, why; retried with backoff.

``describe("database", url, exc)`` gives ``database at 127.0.0.1:5432 (postgresql://portico:
********@127.0.0.1:5432/portico) is unreachable: connection refused``. Commands print it
instead of a traceback; the worker and the scheduler wait with ``wait_until`` and log it
once per retry with a growing delay, never a traceback per second.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable
from urllib.parse import urlparse

from engine.settings import mask_url

log = logging.getLogger("portico.faults")
DEFAULT_PORTS = {
    "postgres": 5432,
    "postgresql": 5432,
    "redis": 6379,
    "rediss": 6379,
    "amqp": 5672,
    "amqps": 5671,
}


def is_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` means a database or broker did not answer (not a bug in our code)."""
    import peewee
    from dramatiq.errors import BrokerConnectionError

    kinds: tuple[type, ...] = (
        peewee.OperationalError,
        peewee.InterfaceError,
        BrokerConnectionError,
        ConnectionError,
        TimeoutError,
    )
    try:
        import redis
        import pika.exceptions

        kinds += (
            redis.exceptions.ConnectionError,
            redis.exceptions.TimeoutError,
            pika.exceptions.AMQPConnectionError,
        )
    except ImportError:  # pragma: no cover - both come with dramatiq's extras
        pass
    if isinstance(exc, peewee.OperationalError) and "no such" in str(exc):
        return False  # SQLite's "no such table": migrations not run, not an outage
    return isinstance(exc, kinds)


def where(url: str) -> str:
    """``host:port`` of a service URL (the file of a ``sqlite://`` one)."""
    parts = urlparse(url)
    if parts.scheme == "sqlite":  # sqlite:////var/x.sqlite3 -> /var/x.sqlite3
        return "/" + (parts.netloc + parts.path).lstrip("/") if parts.path else url
    port = parts.port or DEFAULT_PORTS.get(parts.scheme) or ""
    return f"{parts.hostname or '127.0.0.1'}:{port}"


def reason(exc: BaseException) -> str:
    """The first line of the driver's message, without its noise."""
    text = str(exc).strip().splitlines()
    first = next((line.strip() for line in text if line.strip()), type(exc).__name__)
    return mask_url(first)[:200]


def describe(what: str, url: str, exc: BaseException) -> str:
    return f"{what} at {where(url)} ({mask_url(url)}) is unreachable: {reason(exc)}"


def wait_until(
    check: Callable[[], object],
    what: str,
    url: str,
    stop: threading.Event | None = None,
    first_delay: float = 1.0,
    max_delay: float = 60.0,
) -> bool:
    """Call ``check`` until it stops raising; between tries log one line and back off.

    Returns False when ``stop`` is set first. Errors that are not an unreachable
    service are raised (a bug or a bad setting must not be retried forever).
    """
    stop = stop or threading.Event()
    delay, failing = first_delay, False
    while not stop.is_set():
        try:
            check()
        except Exception as exc:
            if not is_unreachable(exc):
                raise
            log.warning("%s; retrying in %.0fs", describe(what, url, exc), delay)
            failing = True
            if stop.wait(delay):
                return False
            delay = min(delay * 2, max_delay)
            continue
        if failing:
            log.warning("%s at %s answers again", what, where(url))
        return True
    return False


class Backoff:
    """For loops that must keep going (the outbox relay): skip ticks while a service is down.

    ``failed(exc)`` logs one line the first time and then only when the delay grows;
    ``ready()`` says whether the next try is due; ``succeeded()`` resets.
    """

    def __init__(self, what: str, url: str, max_delay: float = 60.0):
        self.what, self.url, self.max_delay = what, url, max_delay
        self.delay, self.next_try = 0.0, 0.0

    def ready(self) -> bool:
        return time.monotonic() >= self.next_try

    def failed(self, exc: BaseException) -> None:
        self.delay = min(max(self.delay * 2, 1.0), self.max_delay)
        self.next_try = time.monotonic() + self.delay
        log.warning("%s; retrying in %.0fs", describe(self.what, self.url, exc), self.delay)

    def succeeded(self) -> None:
        if self.delay:
            log.warning("%s at %s answers again", self.what, where(self.url))
        self.delay, self.next_try = 0.0, 0.0


class OncePerOutage(logging.Filter):
    """Lets one line of a repeating message through per ``interval`` seconds.

    dramatiq's consumers log "connection error" every few seconds per queue while
    the broker is down; the operator needs to read it once a minute, not 80 times.
    ``prefix`` limits it to loggers whose name starts with it (as a handler filter).
    """

    def __init__(self, interval: float = 60.0, prefix: str = ""):
        super().__init__()
        self.interval, self.prefix = interval, prefix
        self._last: dict[str, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or not record.name.startswith(self.prefix):
            return True
        record.exc_info = record.exc_info if not self._connection(record) else None
        key = str(record.msg)[:80]  # the format, so "refused" and "reset by peer" are one
        now = time.monotonic()
        if now - self._last.get(key, -self.interval) < self.interval:
            return False
        self._last[key] = now
        return True

    @staticmethod
    def _connection(record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return exc is not None and is_unreachable(exc)
