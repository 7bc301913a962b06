"""Add-ons' background work: provisioning, refunds of failed add-ons, recurring charges."""

from __future__ import annotations

from engine.tasks import task
from plugins.addons import service


@task(max_retries=10, min_backoff=5000)
def provision(app, addon_id: int) -> None:
    """Set up (or take off) an add-on through the ``provision_addon`` hook."""
    service.provision(app, addon_id)


@task(max_retries=20, min_backoff=10_000, max_backoff=60 * 60 * 1000)
def refund(app, addon_id: int) -> None:
    """Refund the one-off price of an add-on that could not be set up."""
    service.refund(app, addon_id)


@task(periodic="10 * * * *")
def charge_recurring(app) -> int:
    """Record each active add-on's recurring price as a transaction when its period comes round."""
    return service.charge_due(app)
