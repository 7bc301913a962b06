"""Billing's background work: PDFs, overdue invoices, payment reconciliation, card expiry."""

from __future__ import annotations

import logging

from engine import idempotency
from engine.db import utcnow
from engine.notify import notify_customer
from engine.tasks import BULK_QUEUE, task
from plugins.billing import documents, invoicing, payments
from plugins.billing.models import PaymentMethod

log = logging.getLogger("portico.billing")


@task(max_retries=5, queue=BULK_QUEUE)
def render_invoice_pdf(app, invoice_id: int) -> None:
    """Render and store a just-issued invoice's PDF (a redelivery finds it stored and stops).

    On the bulk queue: a customer who opens the invoice first gets it rendered on demand.
    """
    documents.store_pdf(app, invoice_id)


@task(max_retries=5, queue=BULK_QUEUE, time_limit=30 * 60 * 1000)
def render_invoice_pdfs(app, invoice_ids: list[int]) -> int:
    """A bill run's batch (``portico billing run --enqueue``): render and store the PDFs of
    these invoices that have none yet; returns how many were stored. A failure fails the
    task, and its retry renders only what is still missing."""
    stored, failed = documents.store_pdfs(app, invoice_ids)
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(invoice_ids)} invoices failed: {failed[:3]}")
    return len(stored)


@task(periodic="15 4 * * *")
def prune_archives(app) -> int:
    """Delete invoice archives kept in storage for longer than a day (they are a cache)."""
    return documents.prune_archives(app)


@task(periodic="*/15 * * * *")
def mark_overdue_invoices(app) -> int:
    """Unpaid invoices past their due date become overdue."""
    return invoicing.mark_overdue(app)


@task(periodic="*/5 * * * *")
def reconcile_payments(app) -> int:
    """Record the outcome of payments whose answer was lost (a crash between charge and commit)."""
    return payments.reconcile_open(app)


@task(max_retries=5)
def forget_card(app, method_id: int) -> None:
    """Detach and delete a card used once (a guest's card, or one the customer chose not to keep)."""
    method = PaymentMethod.get_or_none(PaymentMethod.id == method_id)
    if method is not None:
        payments.delete_card(app, None, method)


@task(periodic="0 9 * * *")
def warn_expiring_cards(app) -> int:
    """Email once per card and expiry date when a saved card is about to expire (NOT-1, NOT-2)."""
    sent = 0
    customers = {c.customer_id for c in PaymentMethod.select(PaymentMethod.customer).distinct()}
    for customer_id in sorted(customers):
        for card in payments.expiring_cards(app, customer_id):
            notify_customer(
                app,
                customer_id,
                "card_expiring",
                f"card-expiring:{card.id}:{card.exp_year}-{card.exp_month}",
                "billing",
                data={
                    "card": card.label,
                    "expiry": f"{card.exp_month:02d}/{card.exp_year}",
                    "url": app.url("/billing/payment-methods"),
                },
            )
            sent += 1
    return sent


@task(periodic="30 3 * * *")
def purge_idempotency_records(app) -> int:
    """Forget idempotency keys older than a day."""
    return idempotency.purge(utcnow())
