"""PgBouncer in transaction mode (OPS-7, docs/operations.md "Connection pooling").

The portal serves through a PgBouncer that hands each transaction to any of two
server connections, with ``?prepare=false`` (no server-side PREPARE, which belongs to
one server session): sign-in, session lookups, pages, API reads and rated usage all
work from several threads at once. ``portico migrate`` is the one command that needs
the server directly (its advisory lock is a session lock).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from urllib.parse import urlparse

import pytest

from engine import db
from engine.models import Customer, StaffUser, User
from engine.testing import TEST_SETTINGS, Client, PrincipalHeader, as_user, seed_people
from plugins.usage.models import Bucket, UsageEvent
from usage_helpers import GB, bucket, event_json, service_for

AUTH = ("test-auth", PrincipalHeader())
BINARY = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def bouncer(database_url):
    """A PgBouncer on loopback in transaction mode before the test's database: its URL."""
    if not database_url.startswith("postgresql"):
        pytest.skip("PgBouncer pools PostgreSQL connections")
    if not os.path.exists(BINARY):
        pytest.skip("pgbouncer is not installed (apt-get install pgbouncer)")
    server = urlparse(database_url)
    # PgBouncer refuses to run as root; as nobody it reads its files from a folder of its own.
    folder = tempfile.mkdtemp(prefix="portico-pgbouncer-")
    os.chmod(folder, 0o755)
    port = free_port()
    with open(f"{folder}/users.txt", "w") as f:
        f.write(f'"{server.username}" ""\n')
    with open(f"{folder}/pgbouncer.ini", "w") as f:
        f.write(
            f"[databases]\n* = host={server.hostname} port={server.port or 5432}\n"
            f"[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\n"
            f"auth_type = trust\nauth_file = {folder}/users.txt\n"
            "pool_mode = transaction\ndefault_pool_size = 2\nmax_client_conn = 100\n"
            "unix_socket_dir =\n"
        )
    for name in ("users.txt", "pgbouncer.ini"):
        os.chmod(f"{folder}/{name}", 0o644)
    user = ["-u", "nobody"] if os.geteuid() == 0 else []
    process = subprocess.Popen(
        [BINARY, *user, f"{folder}/pgbouncer.ini"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"pgbouncer did not start: {process.stdout.read().decode()}")
            time.sleep(0.05)
    yield server._replace(netloc=f"{server.username}@127.0.0.1:{port}").geturl()
    process.terminate()
    process.wait(timeout=30)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.spec("OPS-7")
def test_the_portal_works_through_pgbouncer_in_transaction_mode(make_app, bouncer, tmp_path):
    from engine.app import create_app
    from engine.plugins import load_plugins
    from engine.settings import load_settings

    direct = make_app(plugins=[AUTH])  # migrated on the server directly, as `portico migrate`
    seed_people(direct)
    alice = User.get(User.email == "alice@example.com")
    service = service_for(Customer.get_by_id(alice.contact.customer_id))
    plan = bucket(service, amount=GB)
    ops_staff = StaffUser.create(email="ops@example.com", name="Ops", permissions="can_post_usage")
    direct.database.close_all()
    settings = load_settings(
        None,
        environ={},
        overrides={
            **TEST_SETTINGS,
            "data_dir": str(tmp_path / "data"),
            "secret_key": "test-" + "x" * 32,
            "database_url": bouncer + "&prepare=false&max_connections=8",  # after ?connect_timeout
            "broker_url": f"sqlite:///{tmp_path / 'queue.sqlite3'}",
            "plugins": {"entry_points": False},
        },
    )
    app = create_app(settings, plugins=load_plugins(settings, [AUTH]))
    assert app.database.server_prepare is False
    failures: list[str] = []

    def visitor(n: int) -> None:
        client, ops = Client(app), as_user(Client(app), ops_staff)
        client.login("alice@example.com")  # a real session: looked up on every request
        for i in range(5):
            for path in ("/api/v1/me", f"/api/v1/services/{service.id}/balances", "/"):
                answer = client.get(path)
                if answer.status_code != 200:
                    failures.append(f"{path}: {answer.status_code} {answer.text[:200]}")
            rated = ops.post(
                "/api/v1/staff/usage",
                json={"events": [event_json(service, 1000, id=f"pgb-{n}-{i}")]},
            )
            if rated.status_code != 200:
                failures.append(f"usage: {rated.status_code} {rated.text[:200]}")

    try:
        threads = [threading.Thread(target=visitor, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        assert failures == []
        with db.connection():
            assert UsageEvent.select().count() == 20
            assert Bucket.get_by_id(plan.id).remaining == GB - 20 * 1000
    finally:
        app.database.close_all()
