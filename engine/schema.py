"""A database's tables as the database itself reports them, and how two such schemas differ.

The migrations must build exactly what the models describe. To check it, read
the migrated database (``read``), build the models' tables in an empty database
of the same kind (``build``) and read that too, then compare (``differences``):
tables, columns (type, nullability), primary keys, foreign keys (with their
``ON DELETE``/``ON UPDATE``), indexes (name, columns, unique, partial ``WHERE``)
and checks. Both sides go through the same reading code, so nothing depends on
how peewee or the database spell a type.

SQLite ignores a declared length (``VARCHAR(64)`` holds any text), so on SQLite
a type is compared without it; PostgreSQL enforces and compares it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import peewee

#: Tables that are no model's: each plugin's migration history, SQLite's own.
NOT_MODELS = re.compile(r"^(migrations_|sqlite_)")


@dataclass(frozen=True)
class Table:
    columns: dict[str, tuple[str, bool]]  # name -> (type, nullable)
    primary_key: tuple[str, ...]
    foreign_keys: frozenset[tuple]  # (columns, table, columns, on delete, on update)
    indexes: frozenset[tuple]  # (name, columns, unique, where)
    checks: frozenset[str]


def read(database: peewee.Database) -> dict[str, Table]:
    """Every table of ``database`` (its current schema on PostgreSQL) but ``NOT_MODELS``."""
    reader = _postgres if isinstance(database, peewee.PostgresqlDatabase) else _sqlite
    return {
        name: reader(database, name) for name in database.get_tables() if not NOT_MODELS.match(name)
    }


def build(database: peewee.Database, models) -> dict[str, Table]:
    """Create ``models``' tables in the empty ``database``, and read back what they describe."""
    models = list(models)
    with database.bind_ctx(models):
        database.create_tables(models, safe=False)
    return read(database)


def differences(actual: dict[str, Table], expected: dict[str, Table]) -> list[str]:
    """What ``actual`` (the migrated database) lacks or has beyond ``expected`` (the models)."""
    out = [
        f"table {t}: the models have it, the database does not"
        for t in sorted(expected.keys() - actual.keys())
    ]
    out += [
        f"table {t}: the database has it, no model does"
        for t in sorted(actual.keys() - expected.keys())
    ]
    for name in sorted(actual.keys() & expected.keys()):
        have, want = actual[name], expected[name]
        for column in sorted(have.columns.keys() | want.columns.keys()):
            got, wanted = have.columns.get(column), want.columns.get(column)
            if got != wanted:
                out.append(
                    f"table {name}: column {column} is {_column(got)}, "
                    f"the models say {_column(wanted)}"
                )
        if have.primary_key != want.primary_key:
            out.append(
                f"table {name}: primary key {have.primary_key}, the models say {want.primary_key}"
            )
        for kind, label in (
            ("foreign_keys", "foreign key"),
            ("indexes", "index"),
            ("checks", "check"),
        ):
            got, wanted = getattr(have, kind), getattr(want, kind)
            out += [
                f"table {name}: {label} {item} only in the models"
                for item in sorted(wanted - got, key=repr)
            ]
            out += [
                f"table {name}: {label} {item} only in the database"
                for item in sorted(got - wanted, key=repr)
            ]
    return out


def _column(found: tuple[str, bool] | None) -> str:
    if found is None:
        return "missing"
    kind, nullable = found
    return f"{kind} {'NULL' if nullable else 'NOT NULL'}"


# -- SQLite -------------------------------------------------------------------------


def _sqlite(database, table: str) -> Table:
    def rows(pragma: str, name: str):
        return database.execute_sql(f'PRAGMA {pragma}("{name}")').fetchall()

    info = rows("table_info", table)  # cid, name, type, notnull, default, pk
    columns = {c[1]: (re.sub(r"\s*\(.*\)", "", c[2]).upper(), not c[3]) for c in info}
    primary_key = tuple(c[1] for c in sorted(info, key=lambda c: c[5]) if c[5])
    keys: dict[int, list] = {}
    for fk in rows("foreign_key_list", table):  # id, seq, table, from, to, on_update, on_delete
        keys.setdefault(fk[0], []).append(fk)
    foreign_keys = frozenset(
        (
            tuple(f[3] for f in parts),
            parts[0][2],
            tuple(f[4] for f in parts),
            parts[0][6],
            parts[0][5],
        )
        for parts in keys.values()
    )
    indexes = set()
    for _, name, unique, origin, partial in rows("index_list", table):
        if origin == "pk":
            continue
        cols = tuple(c[2] for c in rows("index_info", name))
        where = None
        if partial:
            sql = database.execute_sql(
                "SELECT sql FROM sqlite_master WHERE name = ?", (name,)
            ).fetchone()[0]
            where = " ".join(sql[sql.upper().rindex(" WHERE ") + 7 :].split())
        # An inline UNIQUE gets a name by position (sqlite_autoindex_t_2): compare it by columns.
        indexes.add(("(unique constraint)" if origin == "u" else name, cols, bool(unique), where))
    sql = database.execute_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).fetchone()[0]
    return Table(columns, primary_key, foreign_keys, frozenset(indexes), _checks(sql))


def _checks(sql: str) -> frozenset[str]:
    """The ``CHECK (...)`` clauses of a ``CREATE TABLE`` statement, whitespace normalised."""
    found = set()
    for match in re.finditer(r"\bCHECK\s*\(", sql, re.I):
        depth, start = 1, match.end()
        i = start
        while depth:
            depth += {"(": 1, ")": -1}.get(sql[i], 0)
            i += 1
        found.add(" ".join(sql[start : i - 1].split()))
    return frozenset(found)


# -- PostgreSQL ---------------------------------------------------------------------

_PG_COLUMNS = """
    SELECT a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull
    FROM pg_attribute a WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped
"""
_PG_CONSTRAINTS = """
    SELECT c.contype,
           ARRAY(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY k(n, i)
                 JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.i),
           c.confrelid::regclass::text,
           ARRAY(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY k(n, i)
                 JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.i),
           c.confdeltype, c.confupdtype, pg_get_constraintdef(c.oid)
    FROM pg_constraint c WHERE c.conrelid = %s::regclass
"""
_PG_INDEXES = """
    SELECT i.relname, x.indisunique,
           ARRAY(SELECT pg_get_indexdef(x.indexrelid, k, TRUE)
                 FROM generate_series(1, x.indnatts) k ORDER BY k),
           pg_get_expr(x.indpred, x.indrelid, TRUE)
    FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
    WHERE x.indrelid = %s::regclass AND NOT x.indisprimary
"""


def _pg_check(definition: str) -> str:
    """A check as PostgreSQL shows it, without casts and parentheses.

    The server rewrites a check it parses: ``kind IN ('a', 'b')`` reads back as
    ``(kind)::text = ANY ((ARRAY['a'::character varying, ...])::text[])``, and that text,
    parsed again (a dump restored), as ``... ANY (ARRAY[('a'::character varying)::text, ...])``.
    Without the casts and parentheses both say ``CHECK kind = ANY ARRAY['a', 'b']``.
    """
    bare = re.sub(r"::[a-z_ ]+(\(\d+(,\d+)?\))?(\[\])?", "", definition)
    return " ".join(re.sub(r"[()]", "", bare).split())


#: pg_constraint's one-letter referential actions.
_ACTIONS = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}


def _postgres(database, table: str) -> Table:
    ref = f'"{table}"'
    columns = {
        name: (kind, nullable)
        for name, kind, nullable in database.execute_sql(_PG_COLUMNS, (ref,)).fetchall()
    }
    primary_key, foreign_keys, checks = (), set(), set()
    for kind, cols, target, target_cols, on_delete, on_update, definition in database.execute_sql(
        _PG_CONSTRAINTS, (ref,)
    ).fetchall():
        if kind == "p":
            primary_key = tuple(cols)
        elif kind == "f":
            foreign_keys.add(
                (
                    tuple(cols),
                    target.strip('"'),
                    tuple(target_cols),
                    _ACTIONS[on_delete],
                    _ACTIONS[on_update],
                )
            )
        elif kind == "c":
            checks.add(_pg_check(definition))
    indexes = frozenset(
        (name, tuple(c.strip('"') for c in cols), unique, where)
        for name, unique, cols, where in database.execute_sql(_PG_INDEXES, (ref,)).fetchall()
    )
    return Table(columns, primary_key, frozenset(foreign_keys), indexes, frozenset(checks))
