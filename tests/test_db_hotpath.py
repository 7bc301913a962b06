"""The request hot path's database pieces: prepared lookups and the PostgreSQL pool."""

import time

import peewee
import pytest

from engine import db
from engine.models import Contact, Customer, User
from engine.testing import seed_people

USER = db.Prepared(
    lambda user_id: (
        User.select(User, Contact, Customer)
        .join(Contact)
        .join(Customer)
        .where(User.id == user_id)
        .limit(1)
    )
)
BY_EMAIL = db.Prepared(lambda email: User.select().where(User.email == email))


def test_prepared_compiles_once_and_answers_like_peewee(app, monkeypatch):
    seed_people(app)
    users = list(User.select().order_by(User.id))
    first = USER.first(users[0].id)  # compiled here (once per dialect and process)
    compiled = peewee.Select.sql

    def no_more(self):
        raise AssertionError("compiled again")

    monkeypatch.setattr(peewee.Select, "sql", no_more)
    for user in users:
        found = USER.first(user.id)
        assert (found.id, found.email) == (user.id, user.email)
        # the joined rows come back as models, as the query would build them
        assert found.contact.customer.number == user.contact.customer.number
    assert USER.first(987654321) is None
    monkeypatch.setattr(peewee.Select, "sql", compiled)
    assert first.id == users[0].id
    assert [u.id for u in BY_EMAIL.rows("bob@example.com")] == [
        u.id for u in users if u.email == "bob@example.com"
    ]
    assert BY_EMAIL.rows("x' OR '1'='1") == []  # values stay parameters
    if db.is_postgres():  # planned once per connection, on the server
        names = [r[0] for r in db.database.execute_sql("SELECT name FROM pg_prepared_statements")]
        assert USER.name in names and BY_EMAIL.name in names


def test_postgres_pool_reuses_a_fresh_connection_and_pings_an_old_one(postgres_server):
    from engine.testing import need_service

    need_service("PostgreSQL", postgres_server.error)
    pool = db.open_database(postgres_server.url)
    assert isinstance(pool, db.PostgresPool)
    try:
        pool.connect()
        conn = pool.connection()
        pid = conn.get_backend_pid()
        pool.close()
        pool.connect()
        assert pool.connection() is conn  # handed back a moment ago: no ping, same connection
        pool.close()

        # A connection the server dropped while it sat in the pool for longer than
        # PING_AFTER is found out by the ping and replaced, not handed to a request.
        other = db.open_database(postgres_server.url)
        other.execute_sql("SELECT pg_terminate_backend(%s)", (pid,))
        other.close_all()
        pool.PING_AFTER = 0.05
        time.sleep(0.1)
        pool.connect()
        assert pool.connection() is not conn
        assert pool.execute_sql("SELECT 1").fetchone() == (1,)
        pool.close()
    finally:
        pool.close_all()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # COPY is PostgreSQL's
def test_copy_rows_writes_every_kind_of_value_as_given(app):
    """PostgreSQL COPY (rating's bulk writes): awkward strings, None, bools, times, ints."""
    from datetime import datetime

    db.database.execute_sql('CREATE TEMP TABLE copied (n bigint, s text, b boolean, t timestamp)')
    when = datetime(2026, 11, 26, 3, 4, 5, 678901)
    rows = [
        (1, "tab\there", True, when),
        (2**40, "new\nline\\N and \\ back\rslash", False, None),
        (3, None, None, when),
        (-4, "", True, when),
    ]
    db.copy_rows("copied", ["n", "s", "b", "t"], rows)
    back = db.database.execute_sql("SELECT n, s, b, t FROM copied ORDER BY n").fetchall()
    assert back == sorted(rows, key=lambda r: r[0])
