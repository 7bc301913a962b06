"""Observability (OPS-4): request ids and log formats, /livez and /readyz, /metrics, Sentry."""

from __future__ import annotations

import io
import json
import logging

import pytest
from prometheus_client.parser import text_string_to_metric_families

from engine import db
from engine.app import create_app
from engine.observe import logs
from engine.registry import Route
from engine.settings import SettingsError, load_settings
from engine.testing import TEST_SETTINGS, Client, problem
from jobs_plugin.harness import (  # noqa: F401  (fixtures)
    RunningWorker,
    free_port,
    jobs_app,
    jobs_plugin,
    queues,
    runs,
    wait_for,
)

pytestmark = pytest.mark.spec("OPS-4")
TOKEN = "metrics-token-0123456789"
log = logging.getLogger("tests.observe")


class Poke:
    """``/api/v1/poke``: GET logs a line and enqueues a task; POST fails unexpectedly."""

    auth = "public"
    csrf = False

    def on_get(self, req, resp):
        log.info("poked")
        with db.database.atomic():
            req.context.app.tasks.enqueue("jobs_plugin.tasks.record", "poked")
        resp.media = {"ok": True}

    def on_post(self, req, resp):
        raise RuntimeError("poke failed on purpose")


class PokePlugin:
    from engine import hookimpl

    @hookimpl
    def register_routes(self, app):
        return [Route("/api/v1/poke", Poke()), Route("/api/v1/poke/{thing_id:int}", Poke())]


@pytest.fixture
def app(jobs_app):
    return jobs_app(metrics={"token": TOKEN})


@pytest.fixture
def poke_app(make_app, jobs_plugin, queues):
    return make_app(plugins=[("jobs", jobs_plugin), ("poke", PokePlugin())])


@pytest.fixture
def lines():
    """Every log line of this test as the JSON formatter writes it, with its request id."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    handler.addFilter(logs.RequestIdFilter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)
    root.setLevel(level)


def scrape(client, token=TOKEN) -> dict:
    """``/metrics`` as {(sample name, sorted labels): value}."""
    result = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert result.status_code == 200, result.text
    assert result.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(result.text)
        for s in family.samples
    }


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


# -- request ids and logs ---------------------------------------------------------------


def test_every_response_has_a_request_id_and_a_sane_incoming_one_is_kept(client):
    first, second = client.get("/livez"), client.get("/api/v1/no/such")
    ids = [first.headers["X-Request-ID"], second.headers["X-Request-ID"]]
    assert all(len(i) == 32 for i in ids) and ids[0] != ids[1]  # errors carry one too
    kept = client.get("/livez", headers={"X-Request-ID": "lb-7f3a:42.b_c"})
    assert kept.headers["X-Request-ID"] == "lb-7f3a:42.b_c"
    for bad in ("x" * 129, "<script>alert(1)</script>", "a b", ""):
        answered = client.get("/livez", headers={"X-Request-ID": bad}).headers["X-Request-ID"]
        assert answered != bad and len(answered) == 32


def test_log_lines_and_the_task_a_request_enqueued_carry_its_request_id(poke_app, lines):
    app = poke_app
    result = Client(app).get("/api/v1/poke", headers={"X-Request-ID": "req-abc-123"})
    assert result.status_code == 200 and result.headers["X-Request-ID"] == "req-abc-123"
    poked = [line for line in lines() if line["message"] == "poked"]
    assert poked and poked[0]["request_id"] == "req-abc-123"
    assert poked[0]["logger"] == "tests.observe" and poked[0]["level"] == "INFO"
    with RunningWorker(app):
        wait_for(lambda: runs("record") == ["poked"], what="the task the request enqueued")
    [task_line] = [line for line in lines() if line["message"] == "record poked"]
    assert task_line["request_id"] == "req-abc-123"
    outside = logging.LogRecord("x", logging.INFO, "", 0, "idle", None, None)
    logs.RequestIdFilter().filter(outside)
    assert outside.request_id == "-"  # no request: no id, and no stale one


def test_json_lines_carry_extras_and_the_traceback():
    formatter = logs.JsonFormatter()
    try:
        raise ValueError("bad")
    except ValueError:
        import sys

        record = logging.LogRecord(
            "portico.x", logging.ERROR, "", 0, "failed %s", ("it",), sys.exc_info()
        )
    record.status = 503
    out = json.loads(formatter.format(record))
    assert out["message"] == "failed it" and out["level"] == "ERROR" and out["status"] == 503
    assert "ValueError: bad" in out["exc"] and out["time"].endswith("Z")


def test_logging_settings_are_validated():
    settings = load_settings(
        None,
        environ={"PORTICO_LOGGING_FORMAT": "json"},
        overrides={"secret_key": "k" * 32, **TEST_SETTINGS},
    )
    assert settings.logging.format == "json" and settings.logging.level == "info"
    with pytest.raises(SettingsError, match="logging.format"):
        load_settings(
            None,
            environ={},
            overrides={"secret_key": "k" * 32, **TEST_SETTINGS, "logging": {"format": "xml"}},
        )


# -- /livez and /readyz -------------------------------------------------------------------


def test_livez_and_readyz_answer_without_cookies_or_sign_in(client):
    for path in ("/livez", "/readyz"):
        result = client.get(path, headers={"Cookie": "portico_session=forged; portico_csrf=x"})
        assert result.status_code == 200, result.text
        assert not result.cookies and result.headers["Cache-Control"] == "no-store"
    assert client.get("/livez").json == {"status": "ok"}
    ready = client.get("/readyz").json
    assert ready == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}


@pytest.mark.parametrize(
    "url", ["redis://:secret-pw@127.0.0.1:{port}/0", "amqp://guest:secret-pw@127.0.0.1:{port}/%2F"]
)
def test_a_broker_outage_is_degraded_but_ready(make_app, url):
    port = free_port()
    app = make_app(broker_url=url.format(port=port))
    result = Client(app).get("/readyz")
    assert result.status_code == 200
    assert result.json["status"] == "degraded" and result.json["checks"]["database"] == "ok"
    assert result.json["checks"]["broker"].startswith("error: ")
    assert str(port) not in result.text and "secret-pw" not in result.text
    assert Client(app).get("/healthz").status_code == 503  # the full check still says so


def test_readyz_is_503_problem_json_when_the_database_is_down(tmp_path):
    port = free_port()
    settings = load_settings(
        None,
        environ={},
        overrides={
            "database_url": f"postgresql://portico:db-secret@127.0.0.1:{port}/portico",
            "data_dir": str(tmp_path),
            "secret_key": "k" * 32,
            **TEST_SETTINGS,
            "broker_url": f"sqlite:///{tmp_path / 'queue.sqlite3'}",
        },
    )
    app = create_app(settings)
    client = Client(app)
    assert client.get("/livez").status_code == 200  # the process is alive: don't restart it
    result = client.get("/readyz")
    body = problem(result)
    assert result.status_code == 503 and result.headers["Retry-After"] == "5"
    assert body["type"] == "/problems/unavailable"
    assert body["checks"]["database"].startswith("error: ")
    assert str(port) not in result.text and "db-secret" not in result.text


# -- /metrics ----------------------------------------------------------------------------


def test_metrics_are_404_until_a_token_or_an_allow_list_is_set(make_app):
    assert Client(make_app()).get("/metrics").status_code == 404
    with_token = Client(make_app(metrics={"token": TOKEN}))
    assert with_token.get("/metrics").status_code == 401
    assert (
        with_token.get(
            "/metrics", headers={"Authorization": "Bearer wrong-token-000000"}
        ).status_code
        == 401
    )
    assert (
        with_token.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    )
    listed = Client(make_app(metrics={"allow_ips": "10.0.0.0/8, 127.0.0.1"}))
    assert listed.get("/metrics").status_code == 200  # the test client is 127.0.0.1
    assert listed.get("/metrics", remote_addr="192.0.2.7").status_code == 403
    assert listed.get("/metrics", remote_addr="10.20.30.40").status_code == 200
    both = Client(make_app(metrics={"allow_ips": "10.0.0.0/8", "token": TOKEN}))
    assert both.get("/metrics", remote_addr="10.0.0.1").status_code == 401
    assert (
        both.get(
            "/metrics", remote_addr="192.0.2.7", headers={"Authorization": f"Bearer {TOKEN}"}
        ).status_code
        == 403
    )


def test_metrics_settings_refuse_a_short_token_and_a_bad_network():
    base = {"secret_key": "k" * 32, **TEST_SETTINGS}
    with pytest.raises(SettingsError, match="metrics.token"):
        load_settings(None, environ={}, overrides={**base, "metrics": {"token": "short"}})
    with pytest.raises(SettingsError, match="metrics.allow_ips"):
        load_settings(None, environ={}, overrides={**base, "metrics": {"allow_ips": "10.0.0/33"}})


def test_requests_are_counted_by_route_template_and_status(app):
    client = Client(app)
    before = scrape(client)
    for invoice_id in (101, 102, 103):
        assert client.get(f"/api/v1/invoices/{invoice_id}").status_code == 401
    client.get("/livez")
    client.get("/no/such/page")
    after = scrape(client)
    route = "/api/v1/invoices/{invoice_id}"
    labels = {"method": "GET", "route": route, "status": "401"}
    assert (
        value(after, "portico_http_requests_total", **labels)
        - value(before, "portico_http_requests_total", **labels)
        == 3
    )
    count = "portico_http_request_duration_seconds_count"
    assert (
        value(after, count, method="GET", route=route)
        - value(before, count, method="GET", route=route)
        == 3
    )
    assert (
        value(after, "portico_http_requests_total", method="GET", route="/livez", status="200") >= 1
    )
    assert (
        value(after, "portico_http_requests_total", method="GET", route="unmatched", status="404")
        >= 1
    )
    assert not any("101" in str(key) for key in after)  # ids never become labels


def test_task_runs_failures_dead_letters_and_the_outbox_are_measured(app):
    client = Client(app)
    before = scrape(client)
    with db.connection():
        app.tasks.enqueue("jobs_plugin.tasks.record", "m1")
        app.tasks.enqueue("jobs_plugin.tasks.doomed", "m2")
    waiting = scrape(client)
    assert waiting[("portico_outbox_pending", ())] == 2
    assert waiting[("portico_outbox_oldest_age_seconds", ())] >= 0
    assert waiting[("portico_database_up", ())] == 1
    app.tasks.relay()
    with RunningWorker(app):
        wait_for(lambda: runs("record") == ["m1"], what="the record task")
        wait_for(
            lambda: value(
                scrape(client), "portico_task_dead_total", actor="jobs_plugin.tasks.doomed"
            ),
            what="the doomed task to be given up",
        )
    after = scrape(client)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("portico_task_runs_total", actor="jobs_plugin.tasks.record", outcome="ok") == 1
    assert (
        delta("portico_task_runs_total", actor="jobs_plugin.tasks.doomed", outcome="error") == 2
    )  # + retry
    assert delta("portico_task_dead_total", actor="jobs_plugin.tasks.doomed") == 1
    assert delta("portico_task_duration_seconds_count", actor="jobs_plugin.tasks.record") == 1
    assert after[("portico_outbox_pending", ())] == 0
    assert after[("portico_outbox_oldest_age_seconds", ())] == 0


def test_failed_logins_and_lockouts_are_counted(make_app):
    from engine.demo import seed_demo

    app = make_app(metrics={"token": TOKEN})
    seed_demo(app)
    client = Client(app)
    before = scrape(client)
    email = "alice@example.com"
    for _ in range(6):
        client.post("/api/v1/auth/login", json={"email": email, "password": "Wrong-guess-1!"})
    after = scrape(client)
    failures = "portico_login_failures_total"
    assert (
        value(after, failures, realm="customer", factor="password")
        - value(before, failures, realm="customer", factor="password")
        == 5
    )
    assert (
        value(after, failures, realm="customer", factor="locked")
        - value(before, failures, realm="customer", factor="locked")
        == 1
    )
    assert (
        value(after, "portico_login_lockouts_total", realm="customer")
        - value(before, "portico_login_lockouts_total", realm="customer")
        == 1
    )


def test_payments_are_counted_by_outcome(make_app):
    from billing_helpers import customer, invoice_for, sandbox_card
    from engine.testing import PrincipalHeader, as_user

    app = make_app(plugins=[("test-auth", PrincipalHeader())], metrics={"token": TOKEN})
    c, user = customer("alice")
    client = Client(app)
    before = scrape(client)
    api = as_user(Client(app), user)
    declined = sandbox_card(app, c.id, number="4000000000000341")
    invoice = invoice_for(app, c.id, 1000)
    assert (
        api.post(
            f"/api/v1/invoices/{invoice.id}/pay", json={"payment_method_id": declined.id}
        ).status_code
        == 402
    )
    good = sandbox_card(app, c.id, default=False)
    assert (
        api.post(
            f"/api/v1/invoices/{invoice.id}/pay", json={"payment_method_id": good.id}
        ).status_code
        == 200
    )
    after = scrape(client)
    for outcome in ("succeeded", "failed"):
        assert (
            value(after, "portico_payments_total", provider="sandbox", outcome=outcome)
            - value(before, "portico_payments_total", provider="sandbox", outcome=outcome)
            == 1
        )


def test_metrics_report_the_database_down_instead_of_failing(tmp_path):
    settings = load_settings(
        None,
        environ={},
        overrides={
            "database_url": f"postgresql://portico@127.0.0.1:{free_port()}/portico",
            "data_dir": str(tmp_path),
            "secret_key": "k" * 32,
            **TEST_SETTINGS,
            "metrics": {"token": TOKEN},
            "broker_url": f"sqlite:///{tmp_path / 'queue.sqlite3'}",
        },
    )
    samples = scrape(Client(create_app(settings)))
    assert samples[("portico_database_up", ())] == 0
    assert ("portico_outbox_pending", ()) not in samples


def test_an_unexpected_error_is_a_500_problem_with_the_request_id_logged(poke_app, lines):
    app = poke_app
    result = Client(app).post("/api/v1/poke", json={}, headers={"X-Request-ID": "boom-1"})
    assert problem(result)["status"] == 500 and result.headers["X-Request-ID"] == "boom-1"
    [line] = [line for line in lines() if line["logger"] == "portico.errors"]
    assert line["request_id"] == "boom-1" and "poke failed on purpose" in line["exc"]


# -- Sentry -------------------------------------------------------------------------------

SENTRY_CHILD = r'''
import sys
import sentry_sdk
from engine import hookimpl
from engine.app import create_app
from engine.observe import reporting
from engine.registry import Route
from engine.settings import load_settings
from engine.testing import TEST_SETTINGS, Client

class Boom:
    auth = "public"
    csrf = False
    def on_post(self, req, resp):
        password = "local-secret-pw"  # never sent: no local variables in events
        raise RuntimeError("boom on purpose")

class Plugin:
    @hookimpl
    def register_routes(self, app):
        return [Route("/api/v1/boom", Boom())]

database_url, data_dir, dsn = sys.argv[1:4]
settings = load_settings(None, environ={}, overrides={
    "database_url": database_url, "data_dir": data_dir, "secret_key": "k" * 32, **TEST_SETTINGS,
    "broker_url": f"sqlite:///{data_dir}/queue.sqlite3", "sentry": {"dsn": dsn}})
assert reporting.init(settings, "web")
app = create_app(settings, extra_plugins=[("boom", Plugin())])
result = Client(app).post("/api/v1/boom", json={"password": "body-secret-pw"}, headers={
    "Cookie": "portico_session=cookie-secret-value", "X-Request-ID": "sentry-req-1",
    "Authorization": "Basic YXV0aC1zZWNyZXQ=", "User-Agent": "observe-test"})
print("status", result.status_code)
sentry_sdk.flush(timeout=20)
'''


class Envelopes:
    """A tiny Sentry ingest on loopback: keeps every envelope POSTed to it, decompressed."""

    def __init__(self):
        import http.server
        import threading

        received = self.received = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                encoding = self.headers.get("Content-Encoding", "")
                if encoding == "gzip":
                    import gzip

                    body = gzip.decompress(body)
                elif encoding == "br":
                    import brotli

                    body = brotli.decompress(body)
                received.append((self.path, body.decode()))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[dict]:
        out = []
        for _, text in self.received:
            lines = text.splitlines()
            for header, payload in zip(lines[1::2], lines[2::2]):
                if json.loads(header).get("type") == "event":
                    out.append(json.loads(payload))
        return out

    def close(self):
        self.server.shutdown()


def test_an_unhandled_error_reaches_sentry_without_secrets(make_app, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    app = make_app()
    ingest = Envelopes()
    repo = Path(__file__).resolve().parent.parent
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                SENTRY_CHILD,
                app.settings.database_url,
                str(tmp_path / "child"),
                f"http://public-key@127.0.0.1:{ingest.port}/42",
            ],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=120,
            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(repo)},
        )
        assert done.returncode == 0, done.stderr
        assert "status 500" in done.stdout, done.stdout + done.stderr
    finally:
        ingest.close()
    assert ingest.received and all(p == "/api/42/envelope/" for p, _ in ingest.received)
    [event] = ingest.events()  # one event: the log line's duplicate is dropped
    [exc] = event["exception"]["values"]
    assert exc["type"] == "RuntimeError" and exc["value"] == "boom on purpose"
    assert event["tags"]["request_id"] == "sentry-req-1" and event["tags"]["component"] == "web"
    assert event["tags"]["route"] == "/api/v1/boom"
    assert event["request"]["method"] == "POST" and event["request"]["url"].endswith("/api/v1/boom")
    assert event["request"]["headers"]["User-Agent"] == "observe-test"
    raw = "".join(text for _, text in ingest.received)
    for secret in (
        "cookie-secret-value",
        "YXV0aC1zZWNyZXQ=",
        "body-secret-pw",
        "local-secret-pw",
        "k" * 32,
    ):
        assert secret not in raw
    assert "Cookie" not in event["request"]["headers"] and "user" not in event


def test_a_dsn_without_sentry_sdk_installed_is_a_clear_start_up_error(monkeypatch):
    import builtins
    from engine.observe import reporting

    real_import = builtins.__import__

    def without_sentry(name, *args, **kwargs):
        if name.startswith("sentry_sdk"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    settings = load_settings(
        None,
        environ={},
        overrides={
            "secret_key": "k" * 32,
            **TEST_SETTINGS,
            "sentry": {"dsn": "http://key@127.0.0.1:9/1"},
        },
    )
    monkeypatch.setattr(builtins, "__import__", without_sentry)
    with pytest.raises(SettingsError, match=r"portico\[sentry\]"):
        reporting.init(settings, "web")
    with pytest.raises(SettingsError, match=r"portico\[sentry\]"):
        reporting.check(settings)  # what `portico check` calls
    assert (
        reporting.init(
            load_settings(None, environ={}, overrides={"secret_key": "k" * 32, **TEST_SETTINGS}),
            "web",
        )
        is False
    )
