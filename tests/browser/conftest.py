"""Browser tests: the real demo portal in a subprocess, driven by Debian's Chromium via Playwright.

Fixtures:

- ``live_server``: ``portico serve --demo`` on a free port with its own data folder
  (one per test module). ``.url``, ``.data_dir``, ``.mail_dir``, ``.password``,
  ``.mails()`` (the ``.eml`` files written so far), ``.get(path)``.
- ``live_server_env``: extra ``PORTICO_*`` variables for that server (``{}``); a test module
  overrides this module-scoped fixture to configure it (e.g. Stripe pointed at localstripe).
- ``browser``: headless Chromium from ``/usr/bin/chromium`` (``PORTICO_TEST_CHROMIUM``
  to change); never downloaded. Missing Chromium or Playwright skips, except with
  ``CI=true``, where it fails.
- ``viewport``: "desktop" (1280×800) unless a test asks otherwise:
  ``@pytest.mark.parametrize("viewport", ["phone", "desktop"], indirect=True)``.
- ``page``: a fresh page at that viewport (British English browser); ``new_page(viewport=,
  locale=)`` for more. Every page is screenshot to ``tests/screenshots/`` when the test ends.
- ``requests_seen`` (every URL the test's pages requested) and ``console_errors``.

Every test in this folder is marked ``browser``.
"""

from __future__ import annotations

import email
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

import pytest

from engine.testing import DEMO_PASSWORD, need_service

CHROMIUM = os.environ.get("PORTICO_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORTS = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 800}}
SCREENSHOTS = Path(__file__).resolve().parent.parent / "screenshots"
START_TIMEOUT = 60  # seconds for the demo to migrate, seed and answer /healthz


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


# -- the live demo portal -----------------------------------------------------------


@dataclass
class LiveServer:
    url: str
    data_dir: Path
    password: str
    process: subprocess.Popen
    log: Path

    @property
    def mail_dir(self) -> Path:
        return self.data_dir / "mail"

    def mails(self) -> list[Message]:
        """Emails the portal has written so far, oldest first."""
        files = sorted(self.mail_dir.glob("*.eml"), key=lambda p: (p.stat().st_mtime, p.name))
        return [email.message_from_bytes(p.read_bytes()) for p in files]

    def get(self, path: str, headers: dict | None = None) -> tuple[int, Message, bytes]:
        """A plain HTTP GET, redirects not followed: (status, headers, body)."""
        request = urllib.request.Request(self.url + path, headers=headers or {})
        opener = urllib.request.build_opener(_NoRedirect)
        try:
            with opener.open(request, timeout=10) as answer:
                return answer.status, answer.headers, answer.read()
        except urllib.error.HTTPError as answer:
            return answer.code, answer.headers, answer.read()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def portico_command() -> list[str]:
    """The installed ``portico`` console script, next to this Python."""
    script = Path(sys.executable).with_name("portico")
    return [str(script)] if script.exists() else [sys.executable, "-m", "engine.cli"]


@pytest.fixture(scope="module")
def live_server_env() -> dict:
    """Extra ``PORTICO_*`` settings for this module's live server; a test module overrides it."""
    return {}


@pytest.fixture(scope="module")
def live_server(tmp_path_factory, live_server_env):
    """``portico serve --demo`` in a fresh data folder, stopped when the module ends."""
    data_dir = tmp_path_factory.mktemp("live") / "var"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTICO_")}
    env.update(
        PORTICO_DATA_DIR=str(data_dir),
        PORTICO_DEMO_PASSWORD=DEMO_PASSWORD,
        PYTHONUNBUFFERED="1",
        **live_server_env,
    )
    log = data_dir.parent / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                *portico_command(),
                "serve",
                "--demo",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
            ],
            cwd=data_dir.parent,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # its own process group: we stop gunicorn and its children
    server = LiveServer(f"http://127.0.0.1:{port}", data_dir, DEMO_PASSWORD, process, log)
    try:
        _wait_until_healthy(server)
        yield server
    finally:
        _stop(process)


def _wait_until_healthy(server: LiveServer) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(
                f"portico serve --demo exited with {server.process.returncode}:\n"
                f"{server.log.read_text(errors='replace')[-4000:]}"
            )
        try:
            if server.get("/healthz")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    pytest.fail(
        f"portico serve --demo did not answer /healthz within {START_TIMEOUT}s:\n"
        f"{server.log.read_text(errors='replace')[-4000:]}"
    )


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)  # gunicorn shuts down its workers and the scheduler
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


# -- the browser ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    """Headless Debian Chromium through Playwright (skips without them, fails in CI)."""
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError as exc:
        need_service("Playwright (pip install playwright)", exc)
    if not Path(CHROMIUM).is_file():
        need_service(
            "Chromium", FileNotFoundError(f"{CHROMIUM} is missing (apt-get install -y chromium)")
        )
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
    except Error as exc:
        playwright.stop()
        need_service("Chromium", exc)
    yield chromium
    chromium.close()
    playwright.stop()


@pytest.fixture
def viewport(request) -> str:
    """The viewport name: "desktop" by default; parametrize indirectly for others."""
    name = getattr(request, "param", "desktop")
    assert name in VIEWPORTS, f"unknown viewport {name!r}; use one of {sorted(VIEWPORTS)}"
    return name


@pytest.fixture
def requests_seen() -> list[str]:
    return []


@pytest.fixture
def console_errors() -> list[str]:
    return []


@pytest.fixture
def new_page(browser, request, requests_seen, console_errors):
    """``new_page(viewport="phone", locale="zh-CN")``: a page in a fresh browser context."""
    contexts, pages = [], []

    def factory(viewport: str = "desktop", locale: str = "en-GB"):
        context = browser.new_context(
            viewport=VIEWPORTS[viewport],
            locale=locale,
            has_touch=viewport == "phone",
            is_mobile=viewport == "phone",
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        page.on("request", lambda r: requests_seen.append(r.url))
        page.on(
            "console",
            lambda m: (
                console_errors.append(f"{m.text} at {m.location.get('url')}")
                if m.type == "error"
                else None
            ),
        )
        page.on("pageerror", lambda e: console_errors.append(str(e)))
        pages.append(page)
        return page

    yield factory
    SCREENSHOTS.mkdir(exist_ok=True)
    name = re.sub(r"[^\w.-]+", "_", f"{request.node.module.__name__}__{request.node.name}")
    for index, page in enumerate(pages):
        suffix = f"-{index + 1}" if len(pages) > 1 else ""
        try:
            page.screenshot(path=str(SCREENSHOTS / f"{name}{suffix}.png"), full_page=True)
        except Exception as exc:  # a crashed page must not hide the test's own result
            print(f"screenshot of {name}{suffix} failed: {exc}")
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page, viewport):
    return new_page(viewport)
