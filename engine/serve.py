"""Running the portal: gunicorn for the web, dramatiq for the worker, periodiq for the clock."""

from __future__ import annotations

import atexit
import logging
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from typing import Any, Callable

import pendulum
import periodiq
from gunicorn.app.base import BaseApplication

from engine import db, faults

log = logging.getLogger("portico.serve")


class Gunicorn(BaseApplication):
    """Gunicorn around any WSGI callable, configured from a dict (also used by ``bench/``)."""

    def __init__(
        self, wsgi: Callable | None, options: dict[str, Any], factory: Callable | None = None
    ):
        self.application = wsgi  # not `self.wsgi`: gunicorn's BaseApplication has a wsgi() method
        self.factory = factory
        self.options = options
        super().__init__()

    def load_config(self):
        for key, value in self.options.items():
            if key in self.cfg.settings and value is not None:
                self.cfg.set(key, value)
        # Like the `gunicorn` command: GUNICORN_CMD_ARGS wins over the settings.
        args = os.environ.get("GUNICORN_CMD_ARGS")
        if args:
            parsed = self.cfg.parser().parse_args(shlex.split(args))
            for key, value in vars(parsed).items():
                if value is not None and key in self.cfg.settings:
                    self.cfg.set(key.lower(), value)

    def load(self):
        if self.application is not None:
            return self.application
        assert self.factory is not None, "Gunicorn needs a WSGI callable or a factory"
        return self.factory()


def gunicorn_options(settings, host=None, port=None, workers=None, threads=None) -> dict:
    from engine.observe.logs import gunicorn_logger
    from engine.observe.metrics import worker_exited

    web = settings.web
    threads = threads or web.threads
    return {
        "bind": f"{host or web.host}:{port or web.port}",
        "workers": workers or web.workers,
        "threads": threads,
        "worker_class": "gthread" if threads > 1 else "sync",
        "forwarded_allow_ips": web.forwarded_allow_ips,
        "accesslog": "-" if web.access_log else None,
        "access_log_format": web.access_log_format,
        "logger_class": gunicorn_logger(settings.logging.format),
        "errorlog": "-",
        "loglevel": "warning",
        "timeout": web.timeout,
        "graceful_timeout": web.graceful_timeout,
        "keepalive": web.keepalive,
        "child_exit": lambda server, worker: worker_exited(worker.pid),
    }


def metrics_folder() -> str:
    """The folder gunicorn's workers share their metrics through (``PROMETHEUS_MULTIPROC_DIR``).

    The operator's, emptied; or a fresh temporary one, removed at exit. Call it before
    ``prometheus_client`` is imported: it reads the variable once.
    """
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not path:
        path = tempfile.mkdtemp(prefix="portico-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
        master = os.getpid()

        def remove() -> None:
            if os.getpid() == master:  # not a forked worker's exit
                shutil.rmtree(path, True)

        atexit.register(remove)
    from engine.observe.metrics import prepare_multiproc_dir

    prepare_multiproc_dir(path)
    return path


class Relay(threading.Thread):
    """Moves outbox rows to the broker every second (infrastructure polling, not a job clock).

    While the database is down it backs off (OPS-3): one line per try, not a traceback a
    second. (A broker outage is the relay's normal case: the rows wait, one warning a try.)
    """

    def __init__(self, app, interval: float = 1.0):
        super().__init__(name="portico-relay", daemon=True)
        self.app, self.interval, self.stopped = app, interval, threading.Event()
        self.backoff = faults.Backoff("database", app.settings.database_url)

    def run(self):
        while not self.stopped.wait(self.interval):
            if not self.backoff.ready():
                continue
            try:
                self.app.tasks.relay()
            except Exception as exc:  # keep relaying; the next tick tries again
                if faults.is_unreachable(exc):
                    self.backoff.failed(exc)
                else:
                    log.exception("outbox relay failed")
            else:
                self.backoff.succeeded()

    def stop(self):
        self.stopped.set()


def _on_signals(handler: Callable[[], None]) -> None:
    """Call ``handler`` on the first SIGINT/SIGTERM; a second one exits at once."""
    received: list[int] = []

    def on_signal(signum, frame):
        if received:
            log.warning(
                "second %s: exiting now; unfinished tasks will run again",
                signal.Signals(signum).name,
            )
            os._exit(1)
        received.append(signum)
        log.info("%s: stopping (send it again to exit at once)", signal.Signals(signum).name)
        handler()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)


def wait_for_database(app, stop: threading.Event | None = None) -> bool:
    """Block until the database answers ``SELECT 1`` (False if ``stop`` is set first)."""

    def ping():
        with db.connection():
            db.database.execute_sql("SELECT 1")

    return faults.wait_until(ping, "database", app.settings.database_url, stop)


def quiet_broker_errors() -> None:
    """dramatiq's consumers log each broker connection error every few seconds, one logger
    per queue (``dramatiq.worker.ConsumerThread(default)``): let one through a minute.

    Logger filters do not reach child loggers, so the filter sits on the root's handlers.
    """
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, faults.OncePerOutage) for f in handler.filters):
            handler.addFilter(faults.OncePerOutage(prefix="dramatiq.worker.ConsumerThread"))


def run_worker(
    app, threads: int = 2, stop: threading.Event | None = None, shutdown_timeout_ms: int = 60_000
) -> None:
    """Run the dramatiq worker and the outbox relay until SIGINT/SIGTERM (or ``stop``).

    On stop, running tasks get ``shutdown_timeout_ms`` to finish; messages not
    started go back to the queue, and a task cut short runs again later.
    """
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        _on_signals(stop.set)
    quiet_broker_errors()
    # OPS-3: wait for the database and the broker (one line a try, backing off) before
    # dramatiq's consumers start, so an outage at start-up is not a traceback a second.
    if not (
        wait_for_database(app, stop)
        and faults.wait_until(app.tasks.ping, "broker", app.settings.broker_url, stop)
    ):
        log.info("worker stopped before it started")
        return
    worker = app.tasks.worker(threads=threads)
    relay = Relay(app)
    if app.settings.metrics.worker_bind:
        from engine.observe.metrics import serve_metrics

        serve_metrics(app, app.settings.metrics.worker_bind)
    worker.start()
    relay.start()
    log.info(
        "worker running %d actors: %s", len(app.tasks.actors), ", ".join(sorted(app.tasks.actors))
    )
    log.info(
        "broker: %s, queues: %s",
        type(app.tasks.broker).__name__,
        ", ".join(sorted(app.tasks.broker.get_declared_queues())),
    )
    stop.wait()
    relay.stop()
    relay.join()
    worker.stop(timeout=shutdown_timeout_ms)
    log.info("worker stopped")


class Scheduler(periodiq.Scheduler):
    """periodiq's clock over the app's periodic actors; each run goes through the outbox.

    So a run due while the broker is down is sent when it is back, and two
    schedulers (or a restarted one) record each minute's run once.
    """

    def __init__(self, app):
        super().__init__(actors=app.tasks.periodic_actors())
        self.app = app

    def send_actors(self, actors, now):
        if not actors:
            return
        try:
            self.app.tasks.record_ticks(actors, now)
        except Exception as exc:  # the database is down: this run is lost, the clock goes on
            if not faults.is_unreachable(exc):
                raise
            log.warning(
                "%s; the %s run of %s is skipped",
                faults.describe("database", self.app.settings.database_url, exc),
                now,
                ", ".join(a.actor_name for a in actors),
            )
            return
        log.info("scheduled %s at %s", ", ".join(a.actor_name for a in actors), now)
        self.app.tasks.relay()

    def stop(self) -> None:
        signal.alarm(0)
        self.alarm_q.put_nowait(False)  # ends loop()


def run_scheduler(app) -> int:
    """Run periodiq's scheduler over the app's periodic actors until SIGINT/SIGTERM.

    Cron specs are read in the portal's ``default_timezone``. Run one per
    deployment (a second one is harmless: each minute's run is recorded once).
    Main thread only: periodiq's clock is ``SIGALRM``.
    """
    pendulum.set_local_timezone(pendulum.timezone(app.settings.default_timezone))
    scheduler = Scheduler(app)
    stopping = threading.Event()

    def stop():
        stopping.set()
        scheduler.stop()

    _on_signals(stop)
    if not wait_for_database(app, stopping):  # OPS-3: one line a try, backing off
        return 0
    if not scheduler.actors:
        log.warning("no periodic actors to schedule; waiting for a signal")
        scheduler.alarm_q.get()
        return 0
    width = max(len(str(a.options["periodic"])) for a in scheduler.actors)
    for actor in scheduler.actors:
        log.info("  %-*s  %s", width, actor.options["periodic"], actor.actor_name)
    log.info(
        "scheduler running %d periodic actors (%s)",
        len(scheduler.actors),
        app.settings.default_timezone,
    )
    scheduler.schedule()
    scheduler.loop()
    log.info("scheduler stopped")
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
        thread = threading.Thread(
            target=run_worker, args=(app, 1, stop), daemon=True, name="portico-worker"
        )
        thread.start()
        holder[os.getpid()] = stop

    def worker_exit(server, worker):
        stop = holder.pop(os.getpid(), None)
        if stop is not None:
            stop.set()

    return {"post_fork": post_fork, "worker_exit": worker_exit}
