"""Log lines as text or JSON, each with the request id it was emitted under.

The request id lives in a context variable: the web middleware sets it for a
request, the worker for a task (the id of the request that enqueued it), so a
customer's click can be followed from the access log through the task it started.
"""

from __future__ import annotations

import contextvars
import datetime
import json
import logging
import re
import time
import uuid
from typing import Any

from gunicorn.glogging import Logger as GunicornLogger

#: The request (or the request behind a task) being handled in this thread, or None.
request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
#: An incoming X-Request-ID is kept when it is this tame; anything else gets a new id.
SAFE_ID = re.compile(r"[A-Za-z0-9._:@+=-]{1,128}")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
#: LogRecord attributes that are not "extra" fields (the JSON formatter adds the extras).
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "request_id",
    "taskName",
}


def accept_or_new(incoming: str | None) -> str:
    """The caller's request id when it is sane (bounded, a safe charset), else a new one."""
    if incoming and SAFE_ID.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


class RequestIdFilter(logging.Filter):
    """Puts ``request_id`` on every record (``-`` outside a request or task)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = request_id.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, extras, exc."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or request_id.get(),
        }
        out.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, default=str)


def formatter(fmt: str) -> logging.Formatter:
    return JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT)


def configure(fmt: str = "text", level: str = "info") -> None:
    """Send every log line to stderr as ``fmt`` (text or json) from ``level`` up.

    Replaces only a handler this function installed, so a host's own (pytest's) stay.
    """
    handler = logging.StreamHandler()
    handler.setFormatter(formatter(fmt))
    handler.addFilter(RequestIdFilter())
    handler._portico = True  # type: ignore[attr-defined]
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_portico", False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("dramatiq").setLevel(logging.WARNING)  # its INFO is one line per thread


def gunicorn_logger(fmt: str) -> type:
    """Gunicorn's logger class, writing its error and access logs in our format.

    In text the access line is gunicorn's own (``access_log_format``, where
    ``%({x-request-id}o)s`` is the request id); in JSON it is the ``message`` and the
    fields (and the request id) are keys of their own too.
    """

    class Logger(GunicornLogger):
        def setup(self, cfg: Any) -> None:
            super().setup(cfg)
            for handler in self.error_log.handlers:
                handler.setFormatter(formatter(fmt))
                handler.addFilter(RequestIdFilter())
            if fmt == "json":  # in text the access line is exactly access_log_format
                for handler in self.access_log.handlers:
                    handler.setFormatter(JsonFormatter())

        def access(
            self, resp: Any, req: Any, environ: dict[str, Any], request_time: datetime.timedelta
        ) -> None:
            if not (
                self.cfg.accesslog
                or self.cfg.logconfig
                or self.cfg.logconfig_dict
                or self.cfg.syslog
            ):
                return
            atoms = self.atoms(resp, req, environ, request_time)
            rid = next((v for k, v in resp.headers if k.lower() == "x-request-id"), "-")
            extra = {"request_id": rid}
            if fmt == "json":  # no query string: it may carry tokens
                extra.update(
                    remote_addr=atoms["h"],
                    method=atoms["m"],
                    path=atoms["U"],
                    route=environ.get("portico.route") or "-",
                    status=atoms["s"],
                    bytes=atoms["B"],
                    duration_ms=round(request_time.total_seconds() * 1000, 2),
                    user_agent=atoms["a"],
                )
            try:
                self.access_log.info(self.cfg.access_log_format, atoms, extra=extra)
            except Exception:  # never fail a request over its log line
                self.error("failed to log the request")

    return Logger
