"""Running the portal: gunicorn for the web, dramatiq for the worker, periodiq for the clock."""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from typing import Any, Callable

from gunicorn.app.base import BaseApplication

log = logging.getLogger("portico.serve")


class Gunicorn(BaseApplication):
    """Gunicorn around any WSGI callable, configured from a dict (also used by ``bench/``)."""

    def __init__(self, wsgi: Callable | None, options: dict[str, Any],
                 factory: Callable | None = None):
        self.application = wsgi  # not `self.wsgi`: gunicorn's BaseApplication has a wsgi() method
        self.factory = factory
        self.options = options
        super().__init__()

    def load_config(self):
        for key, value in self.options.items():
            if key in self.cfg.settings and value is not None:
                self.cfg.set(key, value)

    def load(self):
        return self.application if self.application is not None else self.factory()


def gunicorn_options(settings, host=None, port=None, workers=None, threads=None) -> dict:
    web = settings.web
    threads = threads or web.threads
    return {
        "bind": f"{host or web.host}:{port or web.port}",
        "workers": workers or web.workers,
        "threads": threads,
        "worker_class": "gthread" if threads > 1 else "sync",
        "forwarded_allow_ips": web.forwarded_allow_ips,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "warning",
        "timeout": 60,
        "graceful_timeout": 10,
        "keepalive": 5,
    }


class Relay(threading.Thread):
    """Moves outbox rows to the broker every second (infrastructure polling, not a job clock)."""

    def __init__(self, app, interval: float = 1.0):
        super().__init__(name="portico-relay", daemon=True)
        self.app, self.interval, self.stopped = app, interval, threading.Event()

    def run(self):
        while not self.stopped.wait(self.interval):
            try:
                self.app.tasks.relay()
            except Exception:  # keep relaying; the next tick tries again
                log.exception("outbox relay failed")

    def stop(self):
        self.stopped.set()


def run_worker(app, threads: int = 2, stop: threading.Event | None = None) -> None:
    """Run the dramatiq worker and the outbox relay until SIGINT/SIGTERM (or ``stop``)."""
    stop = stop or threading.Event()
    worker = app.tasks.worker(threads=threads)
    relay = Relay(app)
    worker.start()
    relay.start()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
    log.info("worker running %d actors: %s", len(app.tasks.actors), ", ".join(app.tasks.actors))
    stop.wait()
    relay.stop()
    worker.stop()


def run_scheduler(app) -> int:
    """Run periodiq's scheduler over the app's periodic actors (blocks; main thread only)."""
    from periodiq import Scheduler
    actors = [a for a in app.tasks.actors.values() if "periodic" in a.options]
    if not actors:
        log.warning("no periodic actors to schedule")
        signal.pause()
        return 0
    scheduler = Scheduler(actors=actors)
    scheduler.schedule()
    scheduler.loop()
    return 0


def spawn_scheduler(env: dict) -> subprocess.Popen:
    """The demo's scheduler: a child process (periodiq needs a main thread of its own)."""
    return subprocess.Popen([sys.executable, "-m", "engine.cli", "scheduler"], env=env)


def demo_hooks(app) -> dict:
    """Gunicorn hooks for ``serve --demo``: an in-process worker in each web process."""
    holder: dict = {}

    def post_fork(server, worker):
        app.database.close_all()  # never share pooled connections across a fork
        stop = threading.Event()
        thread = threading.Thread(target=run_worker, args=(app, 1, stop), daemon=True,
                                  name="portico-worker")
        thread.start()
        holder[os.getpid()] = stop

    def worker_exit(server, worker):
        stop = holder.pop(os.getpid(), None)
        if stop is not None:
            stop.set()

    return {"post_fork": post_fork, "worker_exit": worker_exit}
