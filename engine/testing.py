"""Pytest helpers for Portico and for partners' plugins (loaded as the ``portico`` pytest plugin).

Fixtures:

- ``make_app(plugins=[(name, module)], disabled=[...], entry_points=False, **settings)``: a
  migrated app on a fresh database (SQLite, and PostgreSQL too: tests using it run once per
  backend). ``entry_points=True`` also loads installed partner plugins; a plugin's settings
  table is a keyword too: ``make_app(acme_weather={"units": "imperial"})``.
- ``app``: ``make_app()`` with the default plugins.
- ``client``: a ``Client`` for ``app`` that keeps cookies and sends the CSRF token.
- ``demo_app``: an app seeded with the demo data (``demo_app.demo`` holds it).
- ``schema_drift``: ``schema_drift(app)`` lists how the app's database differs from what its
  plugins' models describe (``[]``: not at all); with ``make_app(migrate=False)`` and
  ``engine.migrations.migrate(app)`` it proves a plugin's migrations build its models.

``make_app`` runs outside demo mode with the sandbox provider and ``.eml`` mail explicitly
allowed (``TEST_ALLOWANCES``); a test that runs ``portico`` in a process of its own adds
``TEST_ENVIRON`` (the same, and a ``base_url``) to its environment.

PostgreSQL tests use ``PORTICO_TEST_POSTGRES`` (default
``postgresql://postgres@127.0.0.1:5432/test``) to create a database of their
own per test (a copy of a migrated template, see ``make_app``), all dropped when
the run ends; without a server they skip, except when ``CI=true``, where they fail.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterable
from urllib.parse import urlencode, urlparse

import dramatiq
import falcon.testing
import pytest

from engine import db, hookimpl
from engine.middleware import CSRF_COOKIE, csrf_token

PG_ADMIN_URL = os.environ.get("PORTICO_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
LONG = os.environ.get("PORTICO_LONG_TESTS") == "1"  # long variants of reliability tests
DEMO_PASSWORD = "Portico-demo-2026!"
#: What tests allow outside demo mode (OPS-2): the sandbox provider and .eml mail.
TEST_ALLOWANCES = {"mail": {"allow_file_backend": True}, "sandbox": {"allow_outside_demo": True}}
#: Settings overrides for a test that loads settings itself: the allowances and a base_url.
TEST_SETTINGS = {"base_url": "http://portal.test", **TEST_ALLOWANCES}
#: The same as environment variables (tests that run the command line).
TEST_ENVIRON = {
    "PORTICO_BASE_URL": "http://portal.test",
    "PORTICO_MAIL_ALLOW_FILE_BACKEND": "true",
    "PORTICO_SANDBOX_ALLOW_OUTSIDE_DEMO": "true",
}


def need_service(name: str, error: Exception | None) -> None:
    """Skip a test whose server is missing, but fail in CI, where every server must run."""
    if error is None:
        return
    message = f"{name} is not available: {error}"
    if IN_CI:
        pytest.fail(message + " (CI=true: this test may not skip)")
    pytest.skip(message)


# -- PostgreSQL: a database per test, copied from a migrated template ------------------


def _admin(sql: str) -> None:
    """Run one statement on the server's maintenance database (outside any transaction)."""
    import psycopg2

    conn = psycopg2.connect(PG_ADMIN_URL, connect_timeout=5)
    conn.autocommit = True
    try:
        conn.cursor().execute(sql)
    finally:
        conn.close()


class PostgresServer:
    """This test process's databases on the PostgreSQL server, all dropped at the end.

    ``url`` is a database of the run's own (for tests that want a bare server). Each test
    gets a database of its own (``new_database``), created when first needed: a copy of a
    migrated template when the test builds an app, otherwise empty.
    """

    def __init__(self):
        self.error: Exception | None = None
        self.dbname = f"portico_test_{os.getpid()}_{secrets.token_hex(3)}"
        self.url = ""
        self.names: list[str] = []  # every database this process made, dropped at the end
        try:
            import psycopg2  # noqa: F401 - the driver must be there

            _admin(f'CREATE DATABASE "{self.dbname}"')
            self.names.append(self.dbname)
            self.url = self._url(self.dbname)
        except Exception as exc:  # no server, no driver, no rights: reported per test
            self.error = exc

    @staticmethod
    def _url(name: str) -> str:
        # A query of its own, so a test can add more settings with "&".
        return urlparse(PG_ADMIN_URL)._replace(path="/" + name, query="connect_timeout=10").geturl()

    def new_database(self) -> str:
        """The URL of a database for one test; it exists once ``create(url)`` made it."""
        name = f"{self.dbname}_{len(self.names)}"
        self.names.append(name)
        url = self._url(name)
        _PENDING[url] = self
        return url

    def create(self, url: str, template: str | None = None) -> None:
        """Make the database ``url`` names, empty or as a copy of ``template`` (a name)."""
        name = urlparse(url).path.lstrip("/")
        # FILE_COPY: a small database is copied in well under 0.1 s (WAL_LOG is slower).
        source = f' TEMPLATE "{template}" STRATEGY FILE_COPY' if template else ""
        _admin(f'CREATE DATABASE "{name}"{source}')

    def drop_database(self, url: str) -> None:
        _PENDING.pop(url, None)
        _admin(f'DROP DATABASE IF EXISTS "{urlparse(url).path.lstrip("/")}" WITH (FORCE)')

    def drop(self) -> None:
        if self.error is not None:
            return
        for name in self.names:
            _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


#: Test databases handed out but not yet created: URL -> its server.
_PENDING: dict[str, PostgresServer] = {}


def ensure_database(url: str) -> None:
    """Create the (empty) test database ``url`` names if no app has made it yet.

    For a test that hands ``database_url`` to another process instead of calling ``make_app``.
    """
    server = _PENDING.pop(url, None)
    if server is not None:
        server.create(url)


@pytest.fixture(scope="session")
def postgres_server():
    server = PostgresServer()
    yield server
    server.drop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """A fresh database: SQLite in a temp folder, or a PostgreSQL database of its own.

    ``make_app`` creates it (a copy of a migrated template). A test that gives the URL to
    something else first calls ``ensure_database(database_url)``.
    """
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'portico.sqlite3'}"
        return
    server = request.getfixturevalue("postgres_server")
    need_service("PostgreSQL", server.error)
    url = server.new_database()
    yield url
    if db.database.obj is not None:
        db.database.obj.close_all()
    server.drop_database(url)


# -- apps and clients --------------------------------------------------------------


@pytest.fixture
def make_app(database_url, tmp_path, monkeypatch):
    """Build a migrated app: ``make_app(plugins=[("acme", module)], disabled=["topups"], **settings)``.

    The first app of a plugin set in a test process is migrated for real; later ones start
    from a copy of that database (``TEMPLATES``: a file copy on SQLite, ``CREATE DATABASE
    ... TEMPLATE`` on PostgreSQL), so a test does not pay for every migration.
    """
    from engine import migrations
    from engine.app import Portico, create_app
    from engine.plugins import load_plugins
    from engine.settings import load_settings

    monkeypatch.setenv("PORTICO_DEMO_PASSWORD", DEMO_PASSWORD)
    built: list[Portico] = []

    def factory(
        plugins: Iterable[tuple[str, Any]] = (),
        disabled: Iterable[str] = (),
        migrate: bool = True,
        entry_points: bool = False,
        **overrides,
    ):
        # Installed partner plugins load only when a test asks (entry_points=True), so one
        # distribution in the environment cannot change every other test.
        values = {
            "data_dir": str(tmp_path / "data"),
            "database_url": database_url,
            "broker_url": f"sqlite:///{tmp_path / 'queue.sqlite3'}",
            "secret_key": "test-secret-key-" + "x" * 32,
            **TEST_SETTINGS,
            "plugins": {"disabled": list(disabled), "entry_points": entry_points},
        }
        for key, value in overrides.items():
            if isinstance(value, dict) and isinstance(values.get(key), dict):
                values[key] = {**values[key], **value}
            else:
                values[key] = value
        settings = load_settings(None, environ={}, overrides=values)
        loaded = load_plugins(settings, plugins)
        if migrate:
            TEMPLATES.restore(
                settings.database_url,
                loaded,
                lambda url: load_settings(
                    None, environ={}, overrides={**values, "database_url": url}
                ),
            )
        else:
            ensure_database(_base(settings.database_url))
        app = create_app(settings, plugins=loaded)
        if migrate:
            migrations.migrate(app)  # nothing left to apply after a restore
        built.append(app)
        return app

    yield factory
    for app in built:
        app.database.close_all()


class Templates:
    """Migrated databases kept per test process, one per plugin set, copied into new tests."""

    def __init__(self):
        self.sqlite: dict[tuple, str] = {}
        self.postgres: dict[tuple, str] = {}
        self._folder: Path | None = None

    @staticmethod
    def key(plugins) -> tuple:
        """What the migrated schema depends on: each plugin's migration files."""
        out = []
        for name in plugins.enabled:
            folder = plugins.folder(name, "migrations")
            if folder is not None:
                files = sorted((p.name, p.stat().st_mtime_ns) for p in folder.glob("*.py"))
                out.append((name, str(folder), tuple(files)))
        return tuple(out)

    def restore(self, url: str, plugins, settings_for: Callable[[str], Any]) -> None:
        """Fill the database at ``url`` from the template, if that database is still empty.

        ``settings_for(url)`` gives the test's settings on another database (the template's).
        """
        key = self.key(plugins)
        if url.startswith("sqlite:"):
            self._restore_sqlite(url, key, plugins, settings_for)
            return
        server = _PENDING.pop(_base(url), None)
        if server is not None:  # a test database not made yet: make it a copy of the template
            template = self.postgres.get(key)
            if template is None:
                template = server.new_database()
                ensure_database(template)
                _migrate_into(plugins, settings_for(template))
                self.postgres[key] = template
            server.create(url, template=urlparse(template).path.lstrip("/"))

    def _restore_sqlite(self, url, key, plugins, settings_for) -> None:
        target = Path(urlparse(url).path)
        if target.exists() or ":memory:" in url:
            return
        source = self.sqlite.get(key)
        if source is None:
            if self._folder is None:
                self._folder = Path(tempfile.mkdtemp(prefix="portico-templates-"))
                atexit.register(shutil.rmtree, self._folder, True)
            source = str(self._folder / f"{len(self.sqlite)}.sqlite3")
            _migrate_into(plugins, settings_for(f"sqlite:///{source}"))
            with contextlib.closing(sqlite3.connect(source)) as conn:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # all of it in the one file
            self.sqlite[key] = source
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)


TEMPLATES = Templates()


def _migrate_into(plugins, settings) -> None:
    """Migrate the empty database of ``settings`` for this plugin set (a template)."""
    from engine import migrations
    from engine.app import create_app

    # These settings (the template's database) have not seen the plugins yet: their tables.
    settings.validate_plugins(dict(plugins.collect("register_settings")), set(plugins.info))
    app = create_app(settings, plugins=plugins)
    try:
        migrations.migrate(app)
    finally:
        app.database.close_all()


def _base(url: str) -> str:
    """A test database's URL without what a test appended (``&max_connections=64``)."""
    if not url.startswith("postgres"):
        return url
    return urlparse(url)._replace(query="connect_timeout=10").geturl()


@pytest.fixture
def schema_drift(database_url, tmp_path, request):
    """``schema_drift(app, models=None)``: the differences between the app's database and the
    tables ``models`` (default: every enabled plugin's) describe, built in an empty database of
    the same kind (``engine.schema``)."""
    from engine import schema

    made: list[str] = []

    def drift(app, models=None) -> list[str]:
        if models is None:
            models = [m for found in app.models.values() for m in found]
        if database_url.startswith("sqlite:"):
            url = f"sqlite:///{tmp_path / f'models-{len(made)}.sqlite3'}"
        else:
            url = request.getfixturevalue("postgres_server").new_database()
            ensure_database(url)
        made.append(url)
        reference = db.open_database(url)
        try:
            expected = schema.build(reference, models)
        finally:
            reference.close_all()
        with db.connection():
            return schema.differences(schema.read(db.database.obj), expected)

    yield drift
    for url in made:
        if url.startswith("postgres"):
            request.getfixturevalue("postgres_server").drop_database(url)


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

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        form: dict | None = None,
        headers: dict | None = None,
        params: dict | None = None,
        csrf: bool = True,
        body: str | bytes | None = None,
        **kwargs,
    ) -> falcon.testing.Result:
        """One request; ``json``, ``form`` (urlencoded, with the CSRF token) or a raw ``body``."""
        hdrs = {**self.headers, **(headers or {})}
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
        result = self.raw.simulate_request(
            method, path, json=json, body=body, headers=hdrs, params=params, **kwargs
        )
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

    def login(
        self, email: str, password: str = DEMO_PASSWORD, otp: str | None = None, staff: bool = False
    ) -> dict:
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
        from engine import roles
        from engine.context import Principal
        from engine.models import StaffUser, User

        value = req.get_header("X-Test-User")
        if not value:
            return None
        scopes = frozenset((req.get_header("X-Test-Scopes") or "read,write").split(","))
        if value.startswith("staff:"):
            staff = StaffUser.get_by_id(int(value[6:]))
            return Principal(
                kind="staff",
                staff_id=staff.id,
                via="token",
                permissions=frozenset(staff.permissions.split()),
                scopes=scopes,
            )
        user = User.get_by_id(int(value))
        return Principal(
            kind="customer",
            user_id=user.id,
            customer_id=user.contact.customer_id,
            contact_id=user.contact_id,
            via="token",
            scopes=scopes,
            locale=user.locale,
            timezone=user.timezone,
            role=roles.of(user.contact),
        )


def as_user(client: "Client", user) -> "Client":
    """A copy of ``client`` that acts as ``user`` (a User or StaffUser) via ``PrincipalHeader``."""
    from engine.models import StaffUser

    other = Client(client.app, headers=dict(client.headers))
    other.headers["X-Test-User"] = (
        f"staff:{user.id}" if isinstance(user, StaffUser) else str(user.id)
    )
    return other


def seed_people(app) -> dict:
    """Only the core demo records (alice, bob, carol, admin, agent): fast, for focused tests."""
    from engine.core.demo import seed

    demo: dict = {}
    seed(app, demo)
    return demo


def run_tasks(app, *message_ids: str, timeout_ms: int = 180_000) -> None:
    """Relay the outbox and run a real dramatiq worker until the work is done.

    With ``message_ids`` (what ``app.tasks.enqueue`` returned), wait until those
    messages are done and no longer; unrelated work (e.g. the demo's invoice
    PDFs on the bulk queue) neither delays nor fails the test. Without them,
    wait until every queue is empty. The deadline is generous because it is
    only a deadline: the wait ends as soon as the work is done.
    """
    app.tasks.relay()
    broker = app.tasks.broker
    worker = app.tasks.worker(threads=2)
    worker.start()
    try:
        if message_ids and hasattr(broker, "pending_ids"):
            _wait_for_messages(app, set(message_ids), timeout_ms)
            return
        for queue in sorted(broker.get_declared_queues()):
            broker.join(queue, timeout=timeout_ms)
        worker.join()
    finally:
        worker.stop()


def _wait_for_messages(app, ids: set[str], timeout_ms: int) -> None:
    """Until none of ``ids`` waits in the outbox or the broker (polled, with a deadline)."""
    from engine.models import OutboxMessage

    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        with db.connection():
            unsent = {
                r.message_id
                for r in OutboxMessage.select(OutboxMessage.message_id).where(
                    OutboxMessage.message_id.in_(list(ids)), OutboxMessage.sent_at.is_null()
                )
            }
        if unsent:
            app.tasks.relay()
        left = unsent | app.tasks.broker.pending_ids(ids)
        if not left:
            return
        if time.monotonic() > deadline:
            raise dramatiq.errors.QueueJoinTimeout(
                f"{len(left)} message(s) not done after {timeout_ms} ms: {sorted(left)}"
            )
        time.sleep(0.05)


def problem(result) -> dict:
    """Assert a problem+json answer and return its body."""
    assert result.headers.get("content-type", "").startswith("application/problem+json"), (
        result.text[:300]
    )
    return result.json


@contextlib.contextmanager
def sql_seen():
    """The SQL statements peewee runs inside the block, as a list filled as they run."""
    import logging

    seen: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    handler = Collect()
    log = logging.getLogger("peewee")
    level = log.level
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    try:
        yield seen
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
        seen[:] = [q for q in seen if q.startswith("(")]  # peewee logs (sql, params) per query


def pytest_configure(config):
    config.addinivalue_line("markers", "spec(*ids): the SPEC.md requirement IDs this test proves")


__all__ = [
    "Client",
    "PrincipalHeader",
    "as_user",
    "seed_people",
    "run_tasks",
    "problem",
    "need_service",
    "DEMO_PASSWORD",
    "IN_CI",
]
