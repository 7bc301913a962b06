"""``portico worker`` and ``portico scheduler`` as real processes.

The subprocesses are the real command line. They find the test plugin
(``tests/jobs_plugin``) the way they find a partner's: through a
``portico.plugins`` entry point, here of a throw-away ``.dist-info``.
"""

import re
import signal
import threading
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine

from engine import db
from engine.app import create_app
from engine.models import OutboxMessage
from engine.notify import Notice, notify
from engine.serve import demo_hooks
from engine.settings import load_settings
from jobs_plugin.harness import (  # noqa: F401  (fixtures)
    RunningWorker,
    install_entry_point,
    jobs_app,
    jobs_plugin,
    portico,
    portico_env,
    queues,
    runs,
    stop,
    wait_for,
)

pytestmark = pytest.mark.spec("ENG-2")


@pytest.fixture
def site(tmp_path):
    return install_entry_point(tmp_path / "site")


def log_text(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def test_worker_process_delivers_email_and_stops_on_sigterm(jobs_app, site, tmp_path):
    app = jobs_app()
    log = tmp_path / "worker.log"
    worker = portico("worker", env=portico_env(app, site), log=log)
    try:
        with db.connection(), db.database.atomic():  # the web side: a business change + notice
            notify(
                app,
                Notice(
                    kind="jobs_hello",
                    key="welcome-1",
                    email="ann@example.com",
                    data={"name": "Ann"},
                ),
            )
        mail = Path(app.settings.data_dir) / "mail"
        # Nobody relays in this process: the worker's relay thread picks the outbox up.
        files = wait_for(
            lambda: sorted(mail.glob("*.eml")),
            timeout=60,
            what=f"an .eml from the worker; log:\n{log_text(log)}",
        )
    finally:
        code = stop(worker)
    assert code == 0, log_text(log)
    [eml] = files
    text = eml.read_text()
    assert "To: ann@example.com" in text and "Hello Ann" in text
    from plugins.email.models import EmailDelivery

    with db.connection():
        assert EmailDelivery.get(EmailDelivery.key == "welcome-1").status == "sent"
    assert "worker stopped" in log_text(log)


def test_sigterm_lets_the_running_task_finish(jobs_app, site, tmp_path):
    app = jobs_app()
    log = tmp_path / "worker.log"
    release = tmp_path / "release"
    worker = portico("worker", env=portico_env(app, site), log=log)
    try:
        with db.connection():
            app.tasks.enqueue("jobs_plugin.tasks.block", str(release))
        app.tasks.relay()
        wait_for(lambda: runs("block-start"), timeout=60, what="the task to start")
        worker.send_signal(signal.SIGTERM)
        release.touch()
        code = worker.wait(timeout=60)
    finally:
        stop(worker)
    assert code == 0, log_text(log)
    assert runs("block-done") == [str(release)]  # finished before the process left
    assert app.tasks.broker.pending() == 0


def test_a_killed_workers_task_runs_again_after_its_lease(jobs_app, site, tmp_path):
    app = jobs_app()
    release = tmp_path / "release"
    log = tmp_path / "worker.log"
    worker = portico("worker", env=portico_env(app, site), log=log)
    try:
        with db.connection():
            app.tasks.enqueue("jobs_plugin.tasks.block", str(release))
        app.tasks.relay()
        wait_for(lambda: runs("block-start"), timeout=60, what="the task to start")
    finally:
        worker.kill()  # SIGKILL: no shutdown, no ack
        worker.wait()
    release.touch()
    assert app.tasks.broker.pending() == 1  # still leased to the dead worker
    lease = app.tasks.broker.lease_ms(app.tasks.actors["jobs_plugin.tasks.block"].queue_name)
    with time_machine.travel(timedelta(milliseconds=lease + 1000), tick=True):
        with RunningWorker(app):
            wait_for(lambda: runs("block-done"), what="the redelivered task")
    assert runs("block-start") == [str(release)] * 2  # at least once: it ran again
    assert runs("block-done") == [str(release)]


def test_web_and_worker_load_the_same_plugins_and_actors(jobs_app, site, tmp_path, monkeypatch):
    app = jobs_app()
    log = tmp_path / "worker.log"
    env = portico_env(app, site, PORTICO_PLUGINS_DISABLED="email")
    worker = portico("worker", env=env, log=log)
    try:
        line = wait_for(
            lambda: re.search(r"worker running (\d+) actors: (.*)", log_text(log)),
            timeout=60,
            what=f"the worker's actor list; log:\n{log_text(log)}",
        )
    finally:
        assert stop(worker) == 0, log_text(log)
    in_worker = set(line.group(2).strip().split(", "))
    # The web process builds its app with the same function, from the same configuration.
    monkeypatch.syspath_prepend(str(site))
    web = create_app(load_settings(None, environ=env))
    assert set(web.tasks.actors) == in_worker
    assert {
        "jobs_plugin.tasks.record",
        "jobs_plugin.tasks.tick",
    } <= in_worker  # the partner plugin's tasks: in both
    assert "plugins.email.tasks.deliver_email" not in in_worker  # a disabled plugin's: in neither


def test_scheduler_process_sends_periodic_runs_and_stops_on_sigterm(jobs_app, site, tmp_path):
    app = jobs_app()
    log = tmp_path / "scheduler.log"
    scheduler = portico("scheduler", env=portico_env(app, site), log=log)
    try:
        # "* * * * *" is due at start-up: the run is recorded in the outbox and relayed.
        row = wait_for(
            lambda: OutboxMessage.get_or_none(OutboxMessage.actor == "jobs_plugin.tasks.tick"),
            timeout=60,
            what=f"the first run; log:\n{log_text(log)}",
        )
    finally:
        code = stop(scheduler)
    assert code == 0, log_text(log)
    assert "scheduled_at" in row.payload["options"]
    text = log_text(log)
    assert re.search(r"\* \* \* \* \*\s+jobs_plugin\.tasks\.tick", text)
    assert re.search(r"0 2 \* \* \*\s+jobs_plugin\.tasks\.nightly", text)
    assert "scheduler stopped" in text
    with RunningWorker(app):
        wait_for(lambda: runs("tick"), timeout=90, what="the periodic run to be processed")


def test_demo_runs_a_worker_inside_each_web_process(jobs_app):
    """``serve --demo``: gunicorn's post_fork starts a worker thread, worker_exit stops it."""
    app = jobs_app()
    hooks = demo_hooks(app)
    before = set(threading.enumerate())
    hooks["post_fork"](None, None)
    started = [t for t in set(threading.enumerate()) - before if t.name == "portico-worker"]
    try:
        with db.connection():
            app.tasks.enqueue(
                "jobs_plugin.tasks.record", "demo"
            )  # relayed by the worker's relay thread
        wait_for(lambda: runs("record") == ["demo"], what="the in-process worker")
    finally:
        hooks["worker_exit"](None, None)
    for thread in started:
        thread.join(timeout=30)
    assert len(started) == 1 and not started[0].is_alive()
