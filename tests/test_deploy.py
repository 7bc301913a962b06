"""OPS-9: the deployment recipe in deploy/. No container engine runs here, so what can be
tested is: the files parse, every path they copy exists, every command they run is a
`portico` command, and the gunicorn config starts the portal."""

from __future__ import annotations

import configparser
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import yaml
from click.testing import CliRunner

from engine.cli import cli
from engine.testing import TEST_ENVIRON
from mailserver import free_port

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
SECRET = "deploy-test-secret-" + "d" * 32


def assert_portico_command(args: list[str], tmp_path) -> None:
    """``portico <sub> ...`` names a real command (its --help answers)."""
    assert args[0].endswith("portico"), args
    env = {
        **TEST_ENVIRON,
        "PORTICO_SECRET_KEY": SECRET,
        "PORTICO_DATA_DIR": str(tmp_path),
        "PORTICO_PLUGINS_ENTRY_POINTS": "false",
    }
    result = CliRunner().invoke(cli, [args[1], "--help"], env=env)
    assert result.exit_code == 0, (args, result.output)


@pytest.mark.spec("OPS-9")
def test_compose_runs_portal_worker_scheduler_postgres_and_redis(tmp_path):
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert {"portal", "worker", "scheduler", "postgres", "redis", "migrate"} <= set(services)
    for name in ("portal", "worker", "scheduler", "migrate"):
        service = services[name]
        assert service["build"]["dockerfile"] == "deploy/Dockerfile"
        assert (DEPLOY / service["build"]["context"] / service["build"]["dockerfile"]).exists()
        assert_portico_command(service["command"], tmp_path)
        env = service["environment"]
        assert env["PORTICO_DATABASE_URL"].startswith("postgresql://")
        assert env["PORTICO_BROKER_URL"].startswith("redis://redis:6379/")
        if name != "migrate":
            assert (
                services[name]["depends_on"]["migrate"]["condition"]
                == "service_completed_successfully"
            )
    assert [
        s["command"][1] for n, s in services.items() if n in ("portal", "worker", "scheduler")
    ] == ["serve", "worker", "scheduler"]


@pytest.mark.spec("OPS-9")
def test_the_dockerfile_copies_existing_paths_and_runs_portico(tmp_path):
    text = (DEPLOY / "Dockerfile").read_text()
    copies = re.findall(r"^COPY (?!--from)(.+)$", text, re.M)
    assert copies
    for line in copies:
        *sources, _ = line.split()
        for source in sources:
            assert (ROOT / source).exists(), f"Dockerfile copies {source}, which does not exist"
    cmd = re.search(r"^CMD (\[.*\])$", text, re.M)
    assert cmd and yaml.safe_load(cmd.group(1))[0] == "portico"
    assert_portico_command(yaml.safe_load(cmd.group(1)), tmp_path)


@pytest.mark.spec("OPS-9")
def test_systemd_units_run_portico_commands(tmp_path):
    units = sorted((DEPLOY / "systemd").glob("*.service"))
    assert [u.name for u in units] == [
        "portico-migrate.service",
        "portico-scheduler.service",
        "portico-web.service",
        "portico-worker.service",
    ]
    for unit in units:
        parsed = configparser.ConfigParser(interpolation=None)
        parsed.read(unit)
        args = shlex.split(parsed["Service"]["ExecStart"])
        if args[0].endswith("gunicorn"):
            assert args[1:] == ["-c", "/etc/portico/gunicorn.conf.py"]
        else:
            assert_portico_command(args, tmp_path)
        assert parsed["Service"]["EnvironmentFile"] == "/etc/portico/portico.env"
        if unit.name != "portico-migrate.service":
            assert "portico-migrate.service" in parsed["Unit"]["Requires"]


@pytest.mark.spec("OPS-9")
def test_the_gunicorn_config_starts_the_portal(tmp_path):
    port = free_port()
    env = {
        **os.environ,
        **TEST_ENVIRON,
        "PORTICO_SECRET_KEY": SECRET,
        "PORTICO_DATA_DIR": str(tmp_path),
        "PORTICO_PLUGINS_ENTRY_POINTS": "false",
        "PORTICO_WEB_PORT": str(port),
        "PORTICO_WEB_WORKERS": "1",
    }
    env.pop("PORTICO_CONFIG", None)
    subprocess.run(
        [sys.executable, "-m", "engine.cli", "migrate"],
        env=env,
        cwd=tmp_path,
        check=True,
        capture_output=True,
        timeout=300,
    )
    gunicorn = Path(sys.executable).with_name("gunicorn")
    log = tmp_path / "gunicorn.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [str(gunicorn), "-c", str(DEPLOY / "gunicorn.conf.py")],
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline, page = time.monotonic() + 90, None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                page = requests.get(f"http://127.0.0.1:{port}/login", timeout=30)
                break
            except (requests.ConnectionError, requests.Timeout):  # not up, or still booting
                time.sleep(0.2)
        assert page is not None, log.read_text()[-3000:]
        assert page.status_code == 200 and "<form" in page.text
    finally:
        server.terminate()
        server.wait(timeout=60)
