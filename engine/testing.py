"""Pytest helpers for Portico and for partners' plugins (loaded as the ``portico`` pytest plugin).

Fixtures:

- ``make_app(plugins=[(name, module)], disabled=[...], entry_points=False, **settings)``: a
  migrated app on a fresh database (SQLite, and PostgreSQL too: tests using it run once per
  backend). ``entry_points=True`` also loads installed partner plugins; a plugin's settings
  table is a keyword too: ``make_app(acme_weather={"units": "imperial"})``.
- ``app``: ``make_app()`` with the default plugins.
- ``client``: a ``Client`` for ``app`` that keeps cookies and sends the CSRF token.
- ``demo_app``: an app seeded with the demo data (``demo_app.demo`` holds it).

PostgreSQL tests use ``PORTICO_TEST_POSTGRES`` (default
``postgresql://postgres@127.0.0.1:5432/test``) to create a database of their
own per run and a schema per test; without a server they skip, except when
``CI=true``, where they fail.
"""
from __future__ import annotations

import os
import secrets
import uuid
from typing import Any, Iterable
from urllib.parse import urlencode, urlparse

import falcon.testing
import pytest

from engine import db, hookimpl
from engine.middleware import CSRF_COOKIE, csrf_token

PG_ADMIN_URL = os.environ.get("PORTICO_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
LONG = os.environ.get("PORTICO_LONG_TESTS") == "1"  # long variants of reliability tests
DEMO_PASSWORD = "Portico-demo-2026!"


def need_service(name: str, error: Exception | None) -> None:
    """Skip a test whose server is missing, but fail in CI, where every server must run."""
    if error is None:
        return
    message = f"{name} is not available: {error}"
    if IN_CI:
        pytest.fail(message + " (CI=true: this test may not skip)")
    pytest.skip(message)


# -- PostgreSQL: one database per run, one schema per test -----------------------

class PostgresServer:
    def __init__(self):
        self.error: Exception | None = None
        self.dbname = f"portico_test_{os.getpid()}_{secrets.token_hex(3)}"
        self.url = ""
        try:
            import psycopg2
            conn = psycopg2.connect(PG_ADMIN_URL, connect_timeout=3)
            conn.autocommit = True
            conn.cursor().execute(f'CREATE DATABASE "{self.dbname}"')
            conn.close()
            parts = urlparse(PG_ADMIN_URL)
            self.url = parts._replace(path="/" + self.dbname).geturl()
        except Exception as exc:  # no server, no driver, no rights: reported per test
            self.error = exc

    def new_schema(self) -> tuple[str, str]:
        import psycopg2
        schema = "t_" + uuid.uuid4().hex[:12]
        conn = psycopg2.connect(self.url)
        conn.autocommit = True
        conn.cursor().execute(f"CREATE SCHEMA {schema}")
        conn.close()
        sep = "&" if "?" in self.url else "?"
        return schema, f"{self.url}{sep}options=-csearch_path%3D{schema}"

    def drop_schema(self, schema: str) -> None:
        import psycopg2
        conn = psycopg2.connect(self.url)
        conn.autocommit = True
        conn.cursor().execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        conn.close()

    def drop(self) -> None:
        if self.error is not None:
            return
        import psycopg2
        conn = psycopg2.connect(PG_ADMIN_URL)
        conn.autocommit = True
        conn.cursor().execute(f'DROP DATABASE IF EXISTS "{self.dbname}" WITH (FORCE)')
        conn.close()


@pytest.fixture(scope="session")
def postgres_server():
    server = PostgresServer()
    yield server
    server.drop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """A fresh, empty database: SQLite in a temp folder, or a PostgreSQL schema of its own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'portico.sqlite3'}"
        return
    server = request.getfixturevalue("postgres_server")
    need_service("PostgreSQL", server.error)
    schema, url = server.new_schema()
    yield url
    if db.database.obj is not None:
        db.database.obj.close_all()
    server.drop_schema(schema)


# -- apps and clients --------------------------------------------------------------

@pytest.fixture
def make_app(database_url, tmp_path, monkeypatch):
    """Build a migrated app: ``make_app(plugins=[("acme", module)], disabled=["topups"], **settings)``."""
    from engine import migrations
    from engine.app import create_app
    from engine.settings import load_settings

    monkeypatch.setenv("PORTICO_DEMO_PASSWORD", DEMO_PASSWORD)
    built = []

    def factory(plugins: Iterable[tuple[str, Any]] = (), disabled: Iterable[str] = (),
                migrate: bool = True, entry_points: bool = False, **overrides):
        # Installed partner plugins load only when a test asks (entry_points=True), so one
        # distribution in the environment cannot change every other test.
        values = {"data_dir": str(tmp_path / "data"), "database_url": database_url,
                  "broker_url": f"sqlite:///{tmp_path / 'queue.sqlite3'}",
                  "secret_key": "test-secret-key-" + "x" * 32,
                  "base_url": "http://portal.test",
                  "plugins": {"disabled": list(disabled), "entry_points": entry_points}}
        for key, value in overrides.items():
            if isinstance(value, dict) and isinstance(values.get(key), dict):
                values[key] = {**values[key], **value}
            else:
                values[key] = value
        settings = load_settings(None, environ={}, overrides=values)
        app = create_app(settings, extra_plugins=plugins)
        if migrate:
            migrations.migrate(app)
        built.append(app)
        return app

    yield factory
    for app in built:
        app.database.close_all()


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def demo_app(make_app):
    from engine.demo import seed_demo
    app = make_app()
    app.demo = seed_demo(app)
    return app


@pytest.fixture
def client(app):
    return Client(app)


@pytest.fixture
def demo_client(demo_app):
    return Client(demo_app)


class Client:
    """Falcon's test client plus a cookie jar, the CSRF token, forms and JSON helpers."""

    def __init__(self, app, headers: dict | None = None):
        self.app = app
        self.raw = falcon.testing.TestClient(app.wsgi)
        self.cookies: dict[str, str] = {}
        self.headers = dict(headers or {})

    def request(self, method: str, path: str, *, json: Any = None, form: dict | None = None,
                headers: dict | None = None, params: dict | None = None, csrf: bool = True,
                **kwargs) -> falcon.testing.Result:
        hdrs = {**self.headers, **(headers or {})}
        body = None
        if form is not None:
            form = dict(form)
            if csrf:
                form.setdefault("csrf_token", self.csrf_token())
            body = urlencode(form, doseq=True)
            hdrs["Content-Type"] = "application/x-www-form-urlencoded"
            hdrs.setdefault("Accept", "text/html")
        elif csrf and method in ("POST", "PUT", "PATCH", "DELETE") and CSRF_COOKIE in self.cookies:
            hdrs.setdefault("X-CSRF-Token", self.csrf_token())
        if self.cookies:  # after csrf_token(): a first request may have just set the cookie
            hdrs["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        result = self.raw.simulate_request(method, path, json=json, body=body, headers=hdrs,
                                           params=params, **kwargs)
        self._store_cookies(result)
        return result

    def _store_cookies(self, result) -> None:
        for name, cookie in result.cookies.items():
            if cookie.max_age == 0 or cookie.value == "":
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = cookie.value

    def csrf_token(self) -> str:
        if CSRF_COOKIE not in self.cookies:
            self.get("/")
            if CSRF_COOKIE not in self.cookies:
                self.cookies[CSRF_COOKIE] = secrets.token_urlsafe(32)
        return csrf_token(self.app, self.cookies[CSRF_COOKIE])

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def put(self, path, **kw):
        return self.request("PUT", path, **kw)

    def patch(self, path, **kw):
        return self.request("PATCH", path, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def login(self, email: str, password: str = DEMO_PASSWORD, otp: str | None = None,
              staff: bool = False) -> dict:
        """Sign in for real (the identity plugin's API login); the cookies then carry the session.

        Returns the answer (``token``, ``expires_at``); fails the test if sign-in is refused.
        ``staff=True`` signs in on ``/api/v1/staff/auth/login`` instead.
        """
        path = "/api/v1/staff/auth/login" if staff else "/api/v1/auth/login"
        body = {"email": email, "password": password, **({"otp": otp} if otp else {})}
        result = self.post(path, json=body)
        assert result.status_code == 200, f"login as {email} failed: {result.text[:300]}"
        return result.json


class PrincipalHeader:
    """A plugin for one test: authenticates ``X-Test-User: <user id>`` (or ``staff:<id>``).

    Lets a feature's API tests run without the login flow, e.g.
    ``make_app(plugins=[("test-auth", PrincipalHeader())])``. Never shipped in an app.
    """

    @hookimpl(tryfirst=True)
    def authenticate_request(self, app, req):
        from engine.context import Principal
        from engine.models import StaffUser, User
        value = req.get_header("X-Test-User")
        if not value:
            return None
        scopes = frozenset((req.get_header("X-Test-Scopes") or "read,write").split(","))
        if value.startswith("staff:"):
            staff = StaffUser.get_by_id(int(value[6:]))
            return Principal(kind="staff", staff_id=staff.id, via="token",
                             permissions=frozenset(staff.permissions.split()), scopes=scopes)
        user = User.get_by_id(int(value))
        return Principal(kind="customer", user_id=user.id, customer_id=user.contact.customer_id,
                         contact_id=user.contact_id, via="token", scopes=scopes,
                         locale=user.locale, timezone=user.timezone)


def as_user(client: "Client", user) -> "Client":
    """A copy of ``client`` that acts as ``user`` (a User or StaffUser) via ``PrincipalHeader``."""
    from engine.models import StaffUser
    other = Client(client.app, headers=dict(client.headers))
    other.headers["X-Test-User"] = (f"staff:{user.id}" if isinstance(user, StaffUser)
                                    else str(user.id))
    return other


def seed_people(app) -> dict:
    """Only the core demo records (alice, bob, carol, admin, agent): fast, for focused tests."""
    from engine.core.demo import seed
    demo: dict = {}
    seed(app, demo)
    return demo


def run_tasks(app, timeout_ms: int = 20000) -> None:
    """Relay the outbox and run a real dramatiq worker until every queue is empty."""
    app.tasks.relay()
    worker = app.tasks.worker(threads=2)
    worker.start()
    try:
        for queue in list(app.tasks.broker.get_declared_queues()):
            app.tasks.broker.join(queue, timeout=timeout_ms)
        worker.join()
    finally:
        worker.stop()


def problem(result) -> dict:
    """Assert a problem+json answer and return its body."""
    assert result.headers.get("content-type", "").startswith("application/problem+json"), \
        result.text[:300]
    return result.json


def pytest_configure(config):
    config.addinivalue_line("markers", "spec(*ids): the SPEC.md requirement IDs this test proves")


__all__ = ["Client", "PrincipalHeader", "as_user", "seed_people", "run_tasks", "problem", "need_service", "DEMO_PASSWORD", "IN_CI"]
