"""Schema migrations: one ``migrations/`` folder per plugin, run by peewee's own runner.

Each plugin's history is kept in its own table (``migrations_<plugin>``), so
plugins number their files independently. Applied in plugin load order, which
respects ``plugin_requires``.
"""
from __future__ import annotations

from playhouse.migrations import Runner

from engine import db


def runners(app) -> list[tuple[str, Runner]]:
    out = []
    for name in app.plugins.enabled:
        folder = app.plugins.folder(name, "migrations")
        if folder is not None:
            table = "migrations_" + name.replace("-", "_")
            out.append((name, Runner(db.database.obj, str(folder), table_name=table)))
    return out


def migrate(app) -> list[str]:
    """Apply every pending migration of every enabled plugin; returns "plugin:name" lines."""
    applied = []
    with db.connection():
        for name, runner in runners(app):
            applied += [f"{name}:{m}" for m in runner.up()]
    return applied


def pending(app) -> list[str]:
    with db.connection():
        return [f"{name}:{m.name}" for name, runner in runners(app)
                for m in runner.status() if m.applied is None and m.path]
