"""Running it for real (OPS-2, OPS-3, OPS-9): safe defaults outside demo, `portico check` and
`--connect`, environment variables, the staff command, unreachable services as one line."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.app import create_app
from engine.cli import cli
from engine.middleware import Proxies, client_ip
from engine.plugins import PluginError, load_plugins
from engine.settings import SettingsError, load_settings
from engine.testing import DEMO_PASSWORD, TEST_ALLOWANCES, TEST_ENVIRON, ensure_database
from mailserver import free_port, smtp  # noqa: F401 - the fixture

ROOT = Path(__file__).resolve().parent.parent
SECRET = "ops-test-secret-" + "s" * 32


def settings(tmp_path, **values):
    return load_settings(
        None,
        environ={},
        overrides={
            "data_dir": str(tmp_path / "data"),
            "secret_key": SECRET,
            "base_url": "https://portal.example.net",
            "plugins": {"entry_points": False},
            **values,
        },
    )


def app_of(tmp_path, **values):
    found = settings(tmp_path, **values)
    return create_app(found, plugins=load_plugins(found))


def check(tmp_path, *args, **env):
    """``portico check`` with only these variables (and a data folder)."""
    environ = {
        "PORTICO_DATA_DIR": str(tmp_path / "data"),
        "PORTICO_SECRET_KEY": SECRET,
        "PORTICO_PLUGINS_ENTRY_POINTS": "false",
        **TEST_ENVIRON,
        **env,
    }
    return CliRunner().invoke(cli, ["check", *args], env=environ)


# -- safe defaults outside demo (OPS-2) ----------------------------------------------------------


@pytest.mark.spec("OPS-2")
def test_outside_demo_the_sandbox_is_refused_unless_allowed(tmp_path):
    with pytest.raises(PluginError, match=r"sandbox\.allow_outside_demo = true"):
        app_of(tmp_path, mail={"allow_file_backend": True})
    allowed = app_of(tmp_path, **TEST_ALLOWANCES)
    assert "sandbox" in allowed.providers
    demo = app_of(tmp_path, demo=True)  # demo mode implies every allowance
    assert "sandbox" in demo.providers and demo.settings.mail.backend == "file"


@pytest.mark.spec("OPS-2")
def test_outside_demo_eml_mail_missing_base_url_and_secret_are_refused(tmp_path):
    with pytest.raises(SettingsError, match=r"mail\.allow_file_backend = true"):
        settings(tmp_path)
    with pytest.raises(SettingsError, match=r"^base_url: required outside demo mode"):
        load_settings(None, environ={}, overrides={"secret_key": SECRET, **TEST_ALLOWANCES})
    with pytest.raises(SettingsError, match=r"security\.allow_generated_secret = true"):
        load_settings(
            None,
            environ={},
            overrides={
                "base_url": "https://p.example.net",
                "data_dir": str(tmp_path),
                **TEST_ALLOWANCES,
            },
        )
    generated = load_settings(
        None,
        environ={},
        overrides={
            "base_url": "https://p.example.net",
            "data_dir": str(tmp_path),
            **TEST_ALLOWANCES,
            "security": {"allow_generated_secret": True},
        },
    )
    assert generated.secret_key == (tmp_path / "secret_key").read_text().strip()
    with pytest.raises(SettingsError) as every:  # the defaults: all three named at once
        load_settings(None, environ={}, overrides={"data_dir": str(tmp_path)})
    assert [line.split(":")[0] for line in str(every.value).splitlines()] == [
        "base_url",
        "mail.backend",
        "secret_key",
    ]


@pytest.mark.spec("OPS-2", "OPS-9")
def test_the_example_secret_of_the_deploy_recipe_is_refused(tmp_path):
    example = dict(
        line.split("=", 1)
        for line in (ROOT / "deploy" / "portico.env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    with pytest.raises(SettingsError, match=r"^secret_key: this is the example value"):
        load_settings(None, environ={**example, "PORTICO_DATA_DIR": str(tmp_path)})


@pytest.mark.spec("OPS-2")
def test_an_unknown_provider_or_stripe_without_keys_is_a_start_up_error(tmp_path):
    with pytest.raises(
        PluginError,
        match=r"^billing\.provider: no payment provider 'strype' "
        r"\(available: sandbox\)",
    ):
        app_of(tmp_path, **TEST_ALLOWANCES, billing={"provider": "strype"})
    with pytest.raises(PluginError, match=r"set stripe\.secret_key and stripe\.publishable_key"):
        app_of(tmp_path, **TEST_ALLOWANCES, billing={"provider": "stripe"})


# -- portico check validates every setting (OPS-2) --------------------------------------------------


@pytest.mark.spec("OPS-2")
@pytest.mark.parametrize(
    "env, message",
    [
        (
            {"PORTICO_DATABASE_URL": "mysql://u:hunter2@db/portico"},
            "database_url: 'mysql://u:********@db/portico' is not a URL starting with sqlite://",
        ),
        (
            {"PORTICO_BROKER_URL": "kafka://broker:9092"},
            "broker_url: 'kafka://broker:9092' is not a URL starting with redis://",
        ),
        (
            {"PORTICO_DEFAULT_TIMEZONE": "Europe/Londn"},
            "default_timezone: unknown time zone 'Europe/Londn'",
        ),
        (
            {"PORTICO_MAIL_SENDER": "Portal <no-reply@>"},
            "mail.sender: 'Portal <no-reply@>' is not an email address",
        ),
        (
            {"PORTICO_SECURITY_RATE_LIMIT_STORAGE": "memcached://cache:11211"},
            "security.rate_limit_storage: 'memcached://cache:11211' is not a URL starting with "
            "redis://",
        ),
        (
            {"PORTICO_WEB_FORWARDED_ALLOW_IPS": "10.0.0.1, 10.0.0.0/33"},
            "web.forwarded_allow_ips: '10.0.0.0/33' is not an IP address or network",
        ),
        ({"PORTICO_BILLING_PROVIDER": "strype"}, "billing.provider: no payment provider 'strype'"),
    ],
)
def test_check_refuses_a_bad_setting_naming_it(tmp_path, env, message):
    result = check(tmp_path, **env)
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert "Traceback" not in result.output and "hunter2" not in result.output


@pytest.mark.spec("OPS-2")
def test_check_masks_the_password_of_the_rate_limit_storage_url(tmp_path):
    result = check(tmp_path, PORTICO_SECURITY_RATE_LIMIT_STORAGE="redis://:r3dis-pw@cache:6379/1")
    assert result.exit_code == 0, result.output
    assert "r3dis-pw" not in result.output
    config = json.loads(result.output[result.output.index("{") :])
    assert config["security"]["rate_limit_storage"] == "redis://:********@cache:6379/1"


@pytest.mark.spec("OPS-9")
def test_kubernetes_variables_are_ignored_and_a_typo_is_a_warning(tmp_path):
    result = check(
        tmp_path,
        PORTICO_SERVICE_HOST="10.96.0.12",
        PORTICO_SERVICE_PORT="8000",
        PORTICO_SERVICE_PORT_HTTP="8000",
        PORTICO_PORT="tcp://10.96.0.12:8000",
        PORTICO_PORT_8000_TCP="tcp://10.96.0.12:8000",
        PORTICO_PORT_8000_TCP_ADDR="10.96.0.12",
        PORTICO_PORT_8000_TCP_PORT="8000",
        PORTICO_PORT_8000_TCP_PROTO="tcp",
        PORTICO_WEB_PORT="tcp://10.96.0.13:8000",
        PORTICO_WORKER_SERVICE_HOST="10.96.0.14",
        PORTICO_MAIL_SMTP_HOTS="smtp",
        PORTICO_BILLING_TAX_RAT="500",
    )
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning:")]
    assert warnings == [
        "warning: PORTICO_MAIL_SMTP_HOTS is not a Portico setting and is ignored (did you mean "
        "PORTICO_MAIL_SMTP_HOST?); see docs/configuration.md",
        "warning: PORTICO_BILLING_TAX_RAT is not a Portico setting and is ignored (did you "
        "mean PORTICO_BILLING_TAX_RATE?); see docs/configuration.md",
    ]
    config = json.loads(result.output[result.output.index("{") :])
    assert config["web"]["port"] == 8000  # a service link is not web.port


@pytest.mark.spec("OPS-2")
def test_forwarded_allow_ips_takes_networks(tmp_path):
    class Req:
        def __init__(self, remote, xff):
            self.remote_addr, self.xff = remote, xff

        def get_header(self, name):
            return self.xff

    proxies = Proxies("10.0.0.0/8, 2001:db8::/32, 192.0.2.7")
    assert client_ip(Req("10.20.30.40", "203.0.113.9"), proxies) == "203.0.113.9"
    assert client_ip(Req("2001:db8::5", "203.0.113.9"), proxies) == "203.0.113.9"
    assert client_ip(Req("192.0.2.7", "203.0.113.9"), proxies) == "203.0.113.9"
    assert client_ip(Req("11.0.0.1", "203.0.113.9"), proxies) == "11.0.0.1"  # not ours
    # Hops inside the network are ours too: the client is the first one outside it.
    assert client_ip(Req("10.0.0.1", "1.2.3.4, 203.0.113.9, 10.1.1.1"), proxies) == "203.0.113.9"
    assert client_ip(Req("10.0.0.1", "1.2.3.4"), Proxies("*")) == "1.2.3.4"


# -- portico check --connect (OPS-2) ----------------------------------------------------------------


@pytest.mark.spec("OPS-2")
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_check_connect_proves_every_service_answers(database_url, tmp_path, smtp, localstripe):
    from test_wheel import redis_answers
    from engine.testing import need_service

    need_service("Redis", redis_answers())
    ensure_database(database_url)
    stripe = localstripe.settings()["stripe"]
    env = {
        "PORTICO_DATABASE_URL": database_url,
        "PORTICO_BROKER_URL": "redis://127.0.0.1:6379/0",
        "PORTICO_MAIL_BACKEND": "smtp",
        "PORTICO_MAIL_SMTP_PORT": str(smtp.port),
        "PORTICO_PLUGINS_DISABLED": "sandbox",
        "PORTICO_BILLING_PROVIDER": "stripe",
        **{f"PORTICO_STRIPE_{k.upper()}": str(v) for k, v in stripe.items()},
    }
    result = check(tmp_path, "--connect", **env)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith(("ok", "FAIL"))]
    assert lines == [
        "ok    database at 127.0.0.1:5432",
        "ok    broker at 127.0.0.1:6379",
        f"ok    SMTP server at 127.0.0.1:{smtp.port}",
        "ok    payment provider 'stripe'",
    ]

    closed = {
        **env,
        "PORTICO_DATABASE_URL": f"postgresql://portico:pg-pw@127.0.0.1:{free_port()}/x",
        "PORTICO_BROKER_URL": f"redis://:redis-pw@127.0.0.1:{free_port()}/0",
        "PORTICO_MAIL_SMTP_PORT": str(free_port()),
        "PORTICO_STRIPE_API_BASE": f"http://127.0.0.1:{free_port()}",
    }
    down = check(tmp_path, "--connect", **closed)
    assert down.exit_code == 1
    failed = [line for line in down.output.splitlines() if line.startswith("FAIL")]
    assert len(failed) == 4 and "Traceback" not in down.output
    assert re.match(r"FAIL  database at 127\.0\.0\.1:\d+ \(postgresql://portico:\*{8}@", failed[0])
    assert re.match(r"FAIL  broker at 127\.0\.0\.1:\d+ \(redis://:\*{8}@", failed[1])
    assert failed[2].startswith("FAIL  SMTP server at 127.0.0.1:")
    assert failed[3].startswith("FAIL  payment provider 'stripe' at http://127.0.0.1:")
    assert "pg-pw" not in down.output and "redis-pw" not in down.output


# -- the staff command (OPS-2, SEC-5) -----------------------------------------------------------


@pytest.mark.spec("OPS-2", "SEC-5")
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_staff_add_reads_the_password_from_stdin_and_refuses_a_duplicate(make_app):
    from plugins.staff.commands import staff_group
    from plugins.staff.models import StaffUser  # noqa: F401 - the table exists

    app = make_app()
    group = staff_group(lambda: app)
    added = CliRunner().invoke(
        group,
        ["add", "Sam@Example.com", "--name", "Sam", "--password-stdin"],
        input=DEMO_PASSWORD + "\n",
    )
    assert added.exit_code == 0, added.output
    again = CliRunner().invoke(
        group,
        ["add", "sam@example.com", "--name", "Sam", "--password-stdin"],
        input=DEMO_PASSWORD + "\n",
    )
    assert again.exit_code == 1
    assert again.output.strip().splitlines() == [
        "Error: a staff user sam@example.com already exists (change their password with "
        "`portico staff set-password`)"
    ]
    argument = CliRunner().invoke(
        group, ["add", "x@example.com", "--name", "X", "--password", DEMO_PASSWORD]
    )
    assert argument.exit_code == 2 and "No such option '--password'" in argument.output
    prompted = CliRunner().invoke(
        group, ["set-password", "sam@example.com"], input=f"{DEMO_PASSWORD}x\n{DEMO_PASSWORD}x\n"
    )
    assert prompted.exit_code == 0 and "password of sam@example.com set" in prompted.output


# -- unreachable services (OPS-3) -----------------------------------------------------------------


def closed_database() -> str:
    return f"postgresql://portico:pg-secret@127.0.0.1:{free_port()}/portico"


@pytest.mark.spec("OPS-3")
def test_an_unreachable_database_is_one_line_for_commands(tmp_path):
    url = closed_database()
    env = {
        **TEST_ENVIRON,
        "PORTICO_SECRET_KEY": SECRET,
        "PORTICO_DATABASE_URL": url,
        "PORTICO_DATA_DIR": str(tmp_path),
        "PORTICO_PLUGINS_ENTRY_POINTS": "false",
        "PATH": os.environ["PATH"],
    }
    done = subprocess.run(
        [sys.executable, "-m", "engine.cli", "migrate"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    port = url.rsplit(":", 1)[1].split("/")[0]
    assert done.stderr.strip().splitlines() == [
        f"Error: database at 127.0.0.1:{port} (postgresql://portico:********@127.0.0.1:{port}"
        f"/portico) is unreachable: connection to server at \"127.0.0.1\", port {port} failed: "
        "Connection refused"
    ]


@pytest.mark.spec("OPS-3")
def test_the_web_answers_503_problem_json_while_the_database_is_down(tmp_path):
    from engine.testing import Client

    app = app_of(tmp_path, **TEST_ALLOWANCES, database_url=closed_database())
    for path in ("/api/v1/dashboard", "/api/v1/auth/login"):
        answer = Client(app).request(
            "GET" if "dashboard" in path else "POST",
            path,
            json={"email": "a@example.com", "password": "x"},
        )
        assert answer.status_code == 503, answer.text
        assert answer.headers["Content-Type"] == "application/problem+json"
        assert answer.json["type"] == "/problems/unavailable"
        assert answer.headers["Retry-After"] == "30"


@pytest.mark.spec("OPS-3")
@pytest.mark.parametrize("command", ["worker", "scheduler"])
def test_worker_and_scheduler_wait_for_the_database_with_backoff(tmp_path, command):
    url = closed_database()
    port = url.rsplit(":", 1)[1].split("/")[0]
    env = {
        **TEST_ENVIRON,
        "PORTICO_SECRET_KEY": SECRET,
        "PORTICO_DATABASE_URL": url,
        "PORTICO_DATA_DIR": str(tmp_path),
        "PORTICO_PLUGINS_ENTRY_POINTS": "false",
        "PATH": os.environ["PATH"],
    }
    log = tmp_path / f"{command}.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "engine.cli", command],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and log.read_text().count("retrying in") < 3:
            assert proc.poll() is None, log.read_text()  # it waits, it does not crash
            time.sleep(0.1)
        text = log.read_text()
        tries = re.findall(
            r"database at 127\.0\.0\.1:(\d+) \(postgresql://portico:\*{8}@"
            r"127\.0\.0\.1:\d+/portico\) is unreachable: .*; retrying in (\d+)s",
            text,
        )
        assert [delay for _, delay in tries[:3]] == ["1", "2", "4"], text
        assert {p for p, _ in tries} == {port}
        assert "Traceback" not in text and "pg-secret" not in text
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    assert code == 0, log.read_text()


@pytest.mark.spec("OPS-3")
def test_the_worker_waits_for_an_unreachable_broker_with_backoff(tmp_path):
    port = free_port()
    env = {
        **TEST_ENVIRON,
        "PORTICO_SECRET_KEY": SECRET,
        "PORTICO_DATA_DIR": str(tmp_path),
        "PORTICO_BROKER_URL": f"redis://:redis-secret@127.0.0.1:{port}/0",
        "PORTICO_PLUGINS_ENTRY_POINTS": "false",
        "PATH": os.environ["PATH"],
    }
    log = tmp_path / "worker.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "engine.cli", "worker"],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and log.read_text().count("retrying in") < 2:
            assert proc.poll() is None, log.read_text()
            time.sleep(0.1)
        text = log.read_text()
        assert re.search(
            rf"broker at 127\.0\.0\.1:{port} \(redis://:\*{{8}}@127\.0\.0\.1:{port}/0\)"
            r" is unreachable: .*; retrying in 2s",
            text,
        ), text
        assert "Traceback" not in text and "redis-secret" not in text
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    assert code == 0, log.read_text()


@pytest.mark.spec("OPS-3")
def test_serve_started_while_the_database_is_down_answers_503_not_a_crash(tmp_path):
    import requests

    url, port = closed_database(), free_port()
    env = {
        **TEST_ENVIRON,
        "PORTICO_SECRET_KEY": SECRET,
        "PORTICO_DATABASE_URL": url,
        "PORTICO_DATA_DIR": str(tmp_path),
        "PORTICO_PLUGINS_ENTRY_POINTS": "false",
        "PATH": os.environ["PATH"],
    }
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "engine.cli", "serve", "--port", str(port), "--workers", "1"],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline, answer = time.monotonic() + 60, None
        while time.monotonic() < deadline and answer is None:
            assert proc.poll() is None, log.read_text()
            try:
                answer = requests.get(f"http://127.0.0.1:{port}/api/v1/dashboard", timeout=5)
            except requests.ConnectionError:
                time.sleep(0.2)
        assert answer is not None and answer.status_code == 503, log.read_text()
        assert answer.headers["Content-Type"] == "application/problem+json"
        text = log.read_text()
        assert "serving 503 until it answers" in text
        assert "Traceback" not in text and "pg-secret" not in text
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


@pytest.mark.spec("OPS-3")
def test_a_broker_lost_while_the_worker_runs_is_not_a_line_per_consumer_every_few_seconds(tmp_path):
    from engine.testing import need_service

    port = free_port()
    try:
        redis_server = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(tmp_path),
            ],
            stdout=subprocess.DEVNULL,
        )
    except FileNotFoundError as exc:
        need_service("redis-server", exc)
    env = {
        **TEST_ENVIRON,
        "PORTICO_SECRET_KEY": SECRET,
        "PORTICO_DATA_DIR": str(tmp_path),
        "PORTICO_BROKER_URL": f"redis://127.0.0.1:{port}/0",
        "PORTICO_PLUGINS_ENTRY_POINTS": "false",
        "PATH": os.environ["PATH"],
    }
    subprocess.run(
        [sys.executable, "-m", "engine.cli", "migrate"],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=300,
    )
    log = tmp_path / "worker.log"
    with log.open("w") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "engine.cli", "worker"],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while "worker running" not in log.read_text() and time.monotonic() < deadline:
            assert worker.poll() is None, log.read_text()
            time.sleep(0.1)
        redis_server.terminate()
        redis_server.wait(10)
        # dramatiq restarts each queue's consumer every 3 s and logs each failure: with
        # several queues that was a dozen lines in 10 s; now one a minute.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            assert worker.poll() is None, log.read_text()
            time.sleep(0.5)
        text = log.read_text()
        assert text.count("Consumer encountered a connection error") == 1, text
        assert "Traceback" not in text
    finally:
        if redis_server.poll() is None:
            redis_server.terminate()
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=90)


def test_the_demos_links_follow_where_it_serves(tmp_path):
    """Demo mode has no base_url of its own: emails link to the host and port it listens on."""

    def demo(environ=None, **web):
        return load_settings(
            None,
            environ=environ or {},
            overrides={"demo": True, "data_dir": str(tmp_path), "web": web},
        ).base_url

    assert demo() == "http://127.0.0.1:8000"
    assert demo({"PORTICO_WEB_PORT": "9123"}) == "http://127.0.0.1:9123"  # serve --port 9123
    assert demo(host="0.0.0.0", port=8080) == "http://127.0.0.1:8080"
    assert demo(host="::", port=8080) == "http://[::1]:8080"
    assert demo(host="portal.lan", port=80) == "http://portal.lan:80"
    assert demo({"PORTICO_BASE_URL": "https://demo.example.net"}) == "https://demo.example.net"
