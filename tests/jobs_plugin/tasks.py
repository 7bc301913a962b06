"""The test tasks. Each is re-wrapped per queue, so one process can hold several apps."""

from __future__ import annotations

import functools
import logging
import os
import time
from pathlib import Path

from dramatiq.middleware import CurrentMessage

from engine import db
from engine.tasks import current_message_id, task
from jobs_plugin.models import JobRun

log = logging.getLogger("jobs_plugin.tasks")


def _run(name: str, arg: str = "", **extra) -> JobRun:
    return JobRun.create(
        name=name, arg=arg, message_id=current_message_id() or "", pid=os.getpid(), **extra
    )


def record(app, arg: str) -> None:
    """Leave one row (and a log line: the request id it carries is tested)."""
    log.info("record %s", arg)
    _run("record", arg)


def flaky(app, arg: str, failures: int) -> None:
    """Fail ``failures`` times, then succeed (dramatiq retries in between)."""
    attempts = JobRun.select().where(JobRun.name == "flaky-attempt", JobRun.arg == arg).count()
    _run("flaky-attempt", arg)
    if attempts < failures:
        raise RuntimeError(f"attempt {attempts + 1} fails on purpose")
    _run("flaky-done", arg)


def doomed(app, arg: str) -> None:
    """Always fail: ends as a dead message."""
    _run("doomed-attempt", arg)
    raise RuntimeError("never works")


def block(app, release: str) -> None:
    """Start, then wait until the file ``release`` exists (a test kills the worker meanwhile)."""
    _run("block-start", release)
    deadline = time.monotonic() + 120
    while not Path(release).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    _run("block-done", release)


def chain(app, arg: str) -> None:
    """Enqueue more work from a task, in the task's own transaction."""
    with db.database.atomic():
        _run("chain", arg)
        app.tasks.enqueue("jobs_plugin.tasks.record", f"{arg}-child")


def tick(app) -> None:
    """A periodic job."""
    message = CurrentMessage.get_current_message()
    _run("tick", scheduled_at=message.options.get("scheduled_at", "") if message else "")


def nightly(app) -> None:
    """A daily job."""
    _run("nightly")


OPTIONS = {
    record: {},
    flaky: {"max_retries": 5, "min_backoff": 50, "max_backoff": 200},
    doomed: {"max_retries": 1, "min_backoff": 50, "max_backoff": 100},
    block: {"time_limit": 150_000},
    chain: {},
    tick: {"periodic": "* * * * *"},
    nightly: {"periodic": "0 2 * * *"},
}


def actors(queue: str) -> list:
    out = []
    for fn, options in OPTIONS.items():
        wrapped = functools.wraps(fn)(lambda *a, _fn=fn, **k: _fn(*a, **k))
        out.append(task(queue=queue, **options)(wrapped))
    return out
