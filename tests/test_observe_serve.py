"""OPS-4 on the real command line: `portico serve` (gunicorn, two workers) and `portico worker`."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from engine import db
from engine.serve import gunicorn_options
from engine.settings import ACCESS_LOG_FORMAT, load_settings
from engine.testing import TEST_SETTINGS
from jobs_plugin.harness import (  # noqa: F401  (fixtures)
    free_port,
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

pytestmark = pytest.mark.spec("OPS-4")
TOKEN = "metrics-token-0123456789"


def get(url: str, headers: dict | None = None) -> tuple:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode(), response.headers
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), exc.headers
    except OSError:
        return 0, "", {}


def wait_until_up(url: str, proc, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while get(url)[0] != 200:
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"{url} did not answer:\n{log.read_text(errors='replace')}")
        time.sleep(0.1)


def samples(text: str) -> dict:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_serve_options_come_from_the_settings():
    settings = load_settings(
        None,
        environ={},
        overrides={
            "secret_key": "k" * 32,
            **TEST_SETTINGS,
            "web": {"timeout": 45, "graceful_timeout": 12, "keepalive": 9, "workers": 3},
        },
    )
    options = gunicorn_options(settings)
    assert (options["timeout"], options["graceful_timeout"], options["keepalive"]) == (45, 12, 9)
    assert options["workers"] == 3 and options["accesslog"] == "-"  # the access log is on
    assert options["access_log_format"] == ACCESS_LOG_FORMAT
    assert "%(q)s" not in ACCESS_LOG_FORMAT and "%(r)s" not in ACCESS_LOG_FORMAT
    assert ACCESS_LOG_FORMAT.endswith("%({x-request-id}o)s")
    quiet = load_settings(
        None,
        environ={},
        overrides={"secret_key": "k" * 32, **TEST_SETTINGS, "web": {"access_log": False}},
    )
    assert gunicorn_options(quiet)["accesslog"] is None


def test_serve_two_workers_json_access_log_and_metrics_of_both(make_app, tmp_path):
    app = make_app()
    port, folder, log = free_port(), tmp_path / "metrics", tmp_path / "serve.log"
    folder.mkdir()
    (folder / "counter_999999.db").write_bytes(b"stale")  # a last run's leftovers go
    env = portico_env(
        app,
        tmp_path / "site",
        **{
            "PORTICO_PLUGINS_ENTRY_POINTS": "false",
            "PORTICO_METRICS_TOKEN": TOKEN,
            "PORTICO_LOGGING_FORMAT": "json",
            "PROMETHEUS_MULTIPROC_DIR": str(folder),
            "GUNICORN_CMD_ARGS": "--access-logformat 'cmdargs %(s)s %({x-request-id}o)s'",
        },
    )
    server = portico("serve", "--port", str(port), "--workers", "2", env=env, log=log)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base + "/livez", server, log)
        sent, deadline = 0, time.monotonic() + 90

        def pids() -> set[str]:
            return {p.stem.rpartition("_")[2] for p in folder.glob("*.db")}

        # Batches of concurrent requests until both workers have answered some (the second
        # one may still be starting when the first answers).
        while len(pids()) < 2 or sent < 40:
            assert time.monotonic() < deadline, f"one worker answered everything: {pids()}"
            with ThreadPoolExecutor(8) as pool:
                answers = list(
                    pool.map(
                        lambda i: get(base + "/livez", {"X-Request-ID": f"serve-{i}"}),
                        range(sent, sent + 20),
                    )
                )
            assert all(
                a[0] == 200 and a[2]["X-Request-ID"] == f"serve-{sent + i}"
                for i, a in enumerate(answers)
            )
            sent += 20
        counted = set()
        for _ in range(6):  # whichever worker answers the scrape, it reports both
            status, text, _ = get(base + "/metrics", {"Authorization": f"Bearer {TOKEN}"})
            assert status == 200, text
            counted.add(
                samples(text).get(
                    (
                        "portico_http_requests_total",
                        (("method", "GET"), ("route", "/livez"), ("status", "200")),
                    )
                )
            )
        assert counted == {sent + 1.0}  # plus the first probe that answered 200
        assert "999999" not in pids()  # a last run's leftovers were removed
    finally:
        code = stop(server)
    text = log.read_text(errors="replace")
    assert code == 0, text
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    access = {line["request_id"]: line for line in lines if line["logger"] == "gunicorn.access"}
    line = access["serve-7"]
    assert line["message"] == "cmdargs 200 serve-7"  # GUNICORN_CMD_ARGS wins over the settings
    assert (line["method"], line["path"], line["route"], line["status"]) == (
        "GET",
        "/livez",
        "/livez",
        "200",
    )
    assert line["duration_ms"] >= 0 and line["level"] == "INFO"
    assert all(f"serve-{i}" in access for i in range(sent))


def test_worker_serves_its_task_metrics_on_its_own_port(jobs_app, tmp_path):
    app = jobs_app()
    site = install_entry_point(tmp_path / "site")
    port, log, folder = free_port(), tmp_path / "worker.log", tmp_path / "metrics"
    folder.mkdir()
    env = portico_env(
        app,
        site,
        PORTICO_METRICS_TOKEN=TOKEN,
        PORTICO_METRICS_WORKER_BIND=f"127.0.0.1:{port}",
        PROMETHEUS_MULTIPROC_DIR=str(folder),
        PORTICO_LOGGING_FORMAT="json",
    )
    worker = portico("worker", env=env, log=log)
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        with db.connection():
            app.tasks.enqueue("jobs_plugin.tasks.record", "from-the-worker")
        wait_for(
            lambda: runs("record") == ["from-the-worker"],
            timeout=60,
            what=f"the worker's task; log:\n{log.read_text(errors='replace')}",
        )
        assert get(url)[0] == 401  # the same protection as the web's /metrics
        assert (
            get(url.replace("/metrics", "/other"), {"Authorization": f"Bearer {TOKEN}"})[0] == 404
        )
        status, text, _ = get(url, {"Authorization": f"Bearer {TOKEN}"})
        assert status == 200, text
        ran = (
            "portico_task_runs_total",
            (("actor", "jobs_plugin.tasks.record"), ("outcome", "ok")),
        )

        def scraped():  # the run is counted after the task returns, so maybe a moment later
            found = samples(get(url, {"Authorization": f"Bearer {TOKEN}"})[1])
            return found if found.get(ran) else None

        found = wait_for(scraped, timeout=30, what="the task run in the worker's metrics")
        assert found[ran] == 1 and found[("portico_outbox_pending", ())] == 0
    finally:
        code = stop(worker)
    text = log.read_text(errors="replace")
    assert code == 0, text
    assert not list(folder.iterdir())  # one process: its own registry, not the web's folder
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert {"portico.serve", "jobs_plugin.tasks"} <= {line["logger"] for line in lines}, text
    assert any(line["message"] == "worker stopped" for line in lines)


def test_the_default_text_access_line_has_the_request_id_and_no_query_string(capsys):
    from datetime import timedelta
    from types import SimpleNamespace

    from gunicorn.config import Config

    from engine.observe.logs import gunicorn_logger

    cfg = Config()
    cfg.set("accesslog", "-")
    cfg.set("access_log_format", ACCESS_LOG_FORMAT)
    logger = gunicorn_logger("text")(cfg)
    resp = SimpleNamespace(
        status="200 OK", sent=512, response_length=512, headers=[("X-Request-ID", "text-rid-1")]
    )
    req = SimpleNamespace(headers=[])
    environ = {
        "HTTP_USER_AGENT": "curl/8",
        "REMOTE_ADDR": "203.0.113.5",
        "REQUEST_METHOD": "GET",
        "RAW_URI": "/password/reset?token=secret-token",
        "PATH_INFO": "/password/reset",
        "QUERY_STRING": "token=secret-token",
        "SERVER_PROTOCOL": "HTTP/1.1",
    }
    logger.access(resp, req, environ, timedelta(milliseconds=12))
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("203.0.113.5 [")  # the line is exactly the access log format
    assert line.endswith('"GET /password/reset HTTP/1.1" 200 512 12ms "curl/8" text-rid-1')
    assert "secret-token" not in line
