"""OPS-5: many nodes on one PostgreSQL and one Redis, as real processes.

Two ``portico scheduler`` processes: each periodic run is recorded and run once.
"""
from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from engine import db
from engine.models import OutboxMessage
from jobs_plugin.harness import (  # noqa: F401  (fixtures)
    RunningWorker, install_entry_point, jobs_app, jobs_plugin, portico, portico_env, queues,
    runs, stop, wait_for)

ON_POSTGRES = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
TICK = "jobs_plugin.tasks.tick"


def text(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


@ON_POSTGRES
@pytest.mark.redis
@pytest.mark.spec("OPS-5")
def test_two_schedulers_run_each_periodic_job_once_per_due_time(jobs_app, queues, tmp_path):
    app = jobs_app(broker_url=queues.url("redis", tmp_path))
    env = portico_env(app, install_entry_point(tmp_path / "site"))
    logs = [tmp_path / f"scheduler-{n}.log" for n in (1, 2)]
    schedulers = [portico("scheduler", env=env, log=log) for log in logs]
    scheduled = re.compile(r"scheduled [^\n]*jobs_plugin\.tasks\.tick[^\n]* at "
                           r"(\d{4}-\d\d-\d\d)[ T](\d\d:\d\d)")
    try:
        with RunningWorker(app):
            # Each records the run due at its start, then the next minute's from its clock.
            wait_for(lambda: all(len(scheduled.findall(text(log))) >= 2 for log in logs),
                     timeout=150, what="both schedulers to send two minutes' runs; logs:\n" +
                     "\n".join(text(log) for log in logs))
            minutes = {f"{d} {t}" for log in logs for d, t in scheduled.findall(text(log))}
            wait_for(lambda: len(runs("tick")) >= len(minutes), timeout=60,
                     what="the worker to run every minute's tick")
            app.tasks.broker.join(queues.queue, timeout=30_000)
    finally:
        codes = [stop(s) for s in schedulers]
    assert codes == [0, 0], [text(log) for log in logs]
    from jobs_plugin.models import JobRun
    with db.connection():
        ran = Counter(r.scheduled_at[:16].replace("T", " ") for r in JobRun.select().where(JobRun.name == "tick"))
        rows = OutboxMessage.select().where(OutboxMessage.actor == TICK).count()
    assert set(ran) == minutes and set(ran.values()) == {1}, ran  # once per due time
    assert rows == len(minutes)  # one outbox row per minute, whichever scheduler wrote it
