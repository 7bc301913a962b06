"""Demo data: every plugin adds to it through the ``demo_data`` hook, in dependency order."""

from __future__ import annotations

from engine import db
from engine.models import Customer


def seed_demo(app) -> dict | None:
    """Seed an empty database; returns what was created, or None if it already had data."""
    with db.connection():
        if Customer.select().exists():
            return None
        demo: dict = {}
        app.plugins.collect("demo_data", app=app, demo=demo)
        return demo
