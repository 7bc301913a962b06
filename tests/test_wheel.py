"""OPS-1: the wheel, installed (not editable) in a clean virtualenv outside the checkout, is a
working portal: ``portico check``, ``portico migrate`` on a fresh PostgreSQL database, a staff
user, ``portico serve`` answering the themed sign-in page and its CSS.

It builds and installs once (about two minutes), so it runs on PostgreSQL only.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest
import requests

from engine.testing import ensure_database, need_service
from mailserver import free_port, smtp  # noqa: F401 - the fixture

ROOT = Path(__file__).resolve().parent.parent


def run(args, *, cwd, env, input=None, timeout=900) -> subprocess.CompletedProcess:
    done = subprocess.run(
        args, cwd=cwd, env=env, input=input, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"{args}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def redis_answers() -> Exception | None:
    import redis

    try:
        redis.Redis(socket_connect_timeout=2).ping()
    except Exception as exc:  # the shared test Redis is not running
        return exc
    return None


@pytest.mark.spec("OPS-1", "OPS-2")
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_the_wheel_in_a_clean_virtualenv_checks_migrates_and_serves(database_url, tmp_path, smtp):
    need_service("Redis", redis_answers())
    work = tmp_path / "outside"  # not the checkout: nothing can come from the source tree
    work.mkdir()
    dist, venv = tmp_path / "dist", tmp_path / "venv"
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PORTICO_", "PYTHON", "VIRTUAL_ENV"))
    }

    # python -m build: the sdist first, then the wheel from it (so MANIFEST.in counts too).
    run([sys.executable, "-m", "build", "--outdir", str(dist), str(ROOT)], cwd=work, env=clean)
    wheel = next(dist.glob("portico-*.whl"))
    run([sys.executable, "-m", "venv", str(venv)], cwd=work, env=clean)
    python, portico = venv / "bin" / "python", venv / "bin" / "portico"
    run([str(python), "-m", "pip", "install", "-q", str(wheel)], cwd=work, env=clean)

    where = run(
        [
            str(python),
            "-c",
            "import engine, themes; print(engine.__file__); print(themes.__file__)",
        ],
        cwd=work,
        env=clean,
    ).stdout.split()
    site = (
        venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    )
    assert all(Path(p).is_relative_to(site) for p in where), where
    for shipped in (
        "themes/default/templates/base.html",
        "themes/default/static/css/portico.css",
        "themes/harbour/theme.toml",
        "engine/locale/zh_Hans/LC_MESSAGES/messages.mo",
        "plugins/billing/migrations",
        "plugins/identity/data",
    ):
        assert (site / shipped).exists(), f"{shipped} is not in the wheel"

    ensure_database(database_url)  # empty: `portico migrate` creates every table
    port = free_port()
    config = work / "portico.toml"
    config.write_text(
        textwrap.dedent(f"""
        base_url = "http://127.0.0.1:{port}"
        secret_key = "$env:PORTAL_SECRET"
        database_url = "{database_url}"
        broker_url = "redis://127.0.0.1:6379/0?namespace=wheel-{uuid.uuid4().hex[:8]}"
        data_dir = "{work / 'var'}"

        [plugins]
        disabled = ["sandbox"]

        [billing]
        provider = "stripe"

        [stripe]
        secret_key = "sk_test_wheel"
        publishable_key = "pk_test_wheel"
        webhook_secret = "whsec_wheel"

        [mail]
        backend = "smtp"
        smtp_host = "127.0.0.1"
        smtp_port = {smtp.port}
        sender = "Portal <portal@example.net>"
        """)
    )
    env = {
        **clean,
        "PORTICO_CONFIG": str(config),
        "PORTAL_SECRET": secrets.token_urlsafe(48),
        "PATH": f"{venv / 'bin'}{os.pathsep}{clean.get('PATH', '')}",
    }

    checked = run([str(portico), "check"], cwd=work, env=env)
    assert checked.stdout.startswith(f"# configuration OK ({config})")
    assert env["PORTAL_SECRET"] not in checked.stdout + checked.stderr
    migrated = run([str(portico), "migrate"], cwd=work, env=env)
    assert re.search(r"^\d+ migrations applied$", migrated.stdout, re.M), migrated.stdout
    added = run(
        [
            str(portico),
            "staff",
            "add",
            "ops@example.net",
            "--name",
            "Ops",
            "--permissions",
            "admin",
            "--password-stdin",
        ],
        cwd=work,
        env=env,
        input="Wheel-test-password-2026!\n",
    )
    assert "staff user ops@example.net created" in added.stdout

    log = (work / "serve.log").open("w")
    server = subprocess.Popen(
        [str(portico), "serve", "--port", str(port), "--workers", "1"],
        cwd=work,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        page = None
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and server.poll() is None:
            try:
                page = requests.get(f"http://127.0.0.1:{port}/login", timeout=5)
                break
            except requests.ConnectionError:
                time.sleep(0.2)
        assert page is not None, (work / "serve.log").read_text()[-3000:]
        assert page.status_code == 200 and "<form" in page.text
        css = re.search(r'<link rel="stylesheet" href="([^"]+portico\.css[^"]*)"', page.text)
        assert css, page.text[:2000]
        sheet = requests.get(f"http://127.0.0.1:{port}{css.group(1)}", timeout=10)
        assert sheet.status_code == 200 and sheet.headers["Content-Type"].startswith("text/css")
        assert len(sheet.content) > 1000
    finally:
        server.terminate()
        server.wait(timeout=60)
        log.close()
