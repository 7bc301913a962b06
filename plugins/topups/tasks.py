"""Top-ups' background work: the charge of an auto top-up, and refunds of refused credits."""

from __future__ import annotations

from engine.tasks import task
from plugins.topups import service


@task(max_retries=5, min_backoff=5000)
def run_auto_topup(app, purchase_id: int) -> None:
    """Charge the default card off-session for an automatic top-up (once per crossing)."""
    service.run_auto(app, purchase_id)


@task(max_retries=20, min_backoff=10_000, max_backoff=60 * 60 * 1000)
def refund_purchase(app, purchase_id: int) -> None:
    """Give back a payment whose credit was refused (retried until the provider answers)."""
    service.refund_purchase(app, purchase_id)
