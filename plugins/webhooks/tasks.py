"""Webhooks' background work: the first send of each delivery, and the sweep of due ones."""

from __future__ import annotations

from engine.tasks import task
from plugins.webhooks import service


@task(max_retries=0)  # a failure is recorded on the row and retried by the sweep
def deliver(app, delivery_id: int, replayed: bool = False) -> None:
    """Send one delivery now (queued with its event, or by a replay)."""
    service.attempt(app, delivery_id, force=True)


@task(periodic="* * * * *")
def send_due_webhooks(app) -> int:
    """Retries whose time has come, and any delivery whose task the broker lost."""
    return service.send_due(app)
