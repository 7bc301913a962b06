"""Fixtures and helpers for the background-work tests (imported by tests/test_tasks*.py etc.).

Real services only: Redis and RabbitMQ on 127.0.0.1 (a namespace / queue names
of the test's own, removed afterwards), the embedded queue in a temp file.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Callable

import pytest

from engine import db
from engine.testing import TEST_ENVIRON, need_service

REDIS_URL = os.environ.get("PORTICO_TEST_REDIS", "redis://127.0.0.1:6379/0")
AMQP_URL = os.environ.get("PORTICO_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672/%2F")
TESTS = Path(__file__).resolve().parent.parent
REPO = TESTS.parent


def free_port() -> int:
    """A port where nothing listens (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check: Callable[[], object], timeout: float = 30, what: str = "condition"):
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        with db.connection():
            value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


class Queues:
    """Per-test broker names: a Redis namespace, a queue name, and their cleanup."""

    def __init__(self):
        self.token = uuid.uuid4().hex[:10]
        self.queue = f"jobs-{self.token}"
        self.namespace = f"portico-test-{self.token}"

    def url(self, kind: str, tmp_path: Path) -> str:
        if kind == "sqlite":
            return f"sqlite:///{tmp_path / 'queue.sqlite3'}"
        if kind == "redis":
            need_service("Redis", _redis_error())
            return f"{REDIS_URL}?namespace={self.namespace}"
        need_service("RabbitMQ", _amqp_error())
        return AMQP_URL

    def flush_redis(self) -> int:
        """Delete every Redis key of this test's namespace (its FLUSHDB); returns how many."""
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"{self.namespace}*", count=500))
        return client.delete(*keys) if keys else 0

    def cleanup(self) -> None:
        if _redis_error() is None:
            self.flush_redis()
        if _amqp_error() is None:
            import pika

            conn = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
            channel = conn.channel()
            for name in (self.queue, f"{self.queue}.DQ", f"{self.queue}.XQ"):
                channel.queue_delete(name)
            conn.close()


_service_errors: dict[str, Exception | None] = {}


def _redis_error() -> Exception | None:
    if "redis" not in _service_errors:
        try:
            import redis

            redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
            _service_errors["redis"] = None
        except Exception as exc:
            _service_errors["redis"] = exc
    return _service_errors["redis"]


def _amqp_error() -> Exception | None:
    if "amqp" not in _service_errors:
        try:
            import pika

            params = pika.URLParameters(AMQP_URL + "?connection_attempts=1&socket_timeout=2")
            pika.BlockingConnection(params).close()
            _service_errors["amqp"] = None
        except Exception as exc:
            _service_errors["amqp"] = exc
    return _service_errors["amqp"]


@pytest.fixture
def queues(monkeypatch):
    """A queue name (``PORTICO_TEST_JOBS_QUEUE``) and Redis namespace of this test's own."""
    names = Queues()
    monkeypatch.setenv("PORTICO_TEST_JOBS_QUEUE", names.queue)
    yield names
    names.cleanup()


@pytest.fixture
def jobs_plugin():
    import jobs_plugin

    return jobs_plugin


@pytest.fixture
def jobs_app(make_app, jobs_plugin, queues):
    """``jobs_app(**settings)``: an app with the jobs plugin on this test's queue."""

    def build(**overrides):
        return make_app(plugins=[("jobs", jobs_plugin)], **overrides)

    return build


class RunningWorker:
    """A real dramatiq worker for an app, stopped at the end of the ``with`` block."""

    def __init__(self, app, threads: int = 2):
        self.worker = app.tasks.worker(threads=threads)

    def __enter__(self):
        self.worker.start()
        return self.worker

    def __exit__(self, *exc):
        self.worker.stop(timeout=10_000)


def runs(name: str, arg: str | None = None) -> list[str]:
    from jobs_plugin.models import JobRun

    with db.connection():
        return JobRun.names(name, arg)


# -- subprocesses: the real `portico` command with the jobs plugin as an entry point --


def install_entry_point(folder: Path) -> Path:
    """A throw-away distribution on ``folder`` whose ``portico.plugins`` entry point is jobs_plugin."""
    info = folder / "portico_test_jobs-0.1.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: portico-test-jobs\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[portico.plugins]\njobs = jobs_plugin\n")
    return folder


def portico_env(app, site: Path, **extra: str) -> dict:
    """The environment for a `portico` subprocess sharing ``app``'s database, broker and data dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTICO_")}
    env.update(TEST_ENVIRON)
    env.update(
        {
            "PYTHONPATH": os.pathsep.join([str(site), str(TESTS), str(REPO)]),
            "PORTICO_DATABASE_URL": app.settings.database_url,
            "PORTICO_BROKER_URL": app.settings.broker_url,
            "PORTICO_DATA_DIR": app.settings.data_dir,
            "PORTICO_SECRET_KEY": app.settings.secret_key,
            "PORTICO_BASE_URL": app.settings.base_url,
            "PORTICO_TEST_JOBS_QUEUE": os.environ.get("PORTICO_TEST_JOBS_QUEUE", "jobs"),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


def portico(*args: str, env: dict, log: Path) -> subprocess.Popen:
    """Start ``portico <args>`` (the real command line) with its output in ``log``."""
    out = open(log, "wb")
    return subprocess.Popen(
        [sys.executable, "-m", "engine.cli", *args],
        env=env,
        cwd=str(REPO),
        stdout=out,
        stderr=subprocess.STDOUT,
    )


def stop(proc: subprocess.Popen, timeout: float = 60) -> int:
    """SIGTERM, then wait for the exit code (kill if it hangs, and fail)."""
    if proc.poll() is None:
        proc.terminate()
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail("process did not stop on SIGTERM")
