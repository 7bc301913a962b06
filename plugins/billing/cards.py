"""What billing adds to the dashboard (DASH-1) and to the in-portal alerts (NOT-2)."""

from __future__ import annotations

from engine.db import utcnow
from engine.registry import Alert, Card
from plugins.billing import payments
from plugins.billing.models import Invoice
from plugins.billing.resources import invoices_of


def _open_invoices(ctx) -> list[Invoice]:
    """Read once per request: the card and the alerts both show them."""
    return ctx.once(
        "billing.open_invoices",
        lambda: list(invoices_of(ctx.customer_id, "open").order_by(Invoice.due_at, Invoice.id)),
    )


def billing_card(app, ctx) -> Card | None:
    """Unpaid total (per currency), the next due date, and the newest invoice (none: no card)."""
    latest = invoices_of(ctx.customer_id).order_by(Invoice.id.desc()).first()
    if latest is None:
        return None
    open_ = _open_invoices(ctx)
    totals: dict[str, int] = {}
    for inv in open_:
        totals[inv.currency] = totals.get(inv.currency, 0) + inv.amount_due
    next_due = open_[0] if open_ else None
    return Card(
        "billing",
        "Billing",
        "billing/card.html",
        order=40,
        data={
            "unpaid": [{"amount": v, "currency": k} for k, v in sorted(totals.items())],
            "unpaid_count": len(open_),
            "overdue_count": sum(1 for i in open_ if i.status == "overdue"),
            "next_due_at": next_due.due_at.isoformat() if next_due else None,
            "next_due_invoice": (
                {
                    "id": next_due.id,
                    "number": next_due.number,
                    "href": f"/billing/invoices/{next_due.id}/pay",
                }
                if next_due
                else None
            ),
            "latest": (
                {
                    "id": latest.id,
                    "number": latest.number,
                    "status": latest.status,
                    "total": {"amount": latest.total, "currency": latest.currency},
                    "href": f"/billing/invoices/{latest.id}",
                }
            ),
        },
    )


def billing_alerts(app, ctx) -> list[Alert]:
    """Overdue invoices, unpaid ones, and saved cards about to expire."""
    from engine.theming import Formatter

    _ = app.translator.gettext
    fmt = Formatter(ctx.locale, ctx.timezone)
    alerts = []
    open_ = _open_invoices(ctx)
    for inv in (i for i in open_ if i.status == "overdue"):
        alerts.append(
            Alert(
                f"invoice-overdue-{inv.id}",
                "danger",
                _(
                    "Invoice %(number)s is overdue: %(amount)s was due on %(date)s.",
                    number=inv.number,
                    amount=fmt.money(inv.amount_due, inv.currency),
                    date=fmt.date(inv.due_at),
                ),
                link=f"/billing/invoices/{inv.id}/pay",
                dismissible=False,
            )
        )
    unpaid = [i for i in open_ if i.status == "unpaid"]
    if unpaid:
        first = unpaid[0]
        alerts.append(
            Alert(
                "invoices-unpaid",
                "warning",
                app.translator.ngettext(
                    "You have %(num)d unpaid invoice, due on %(date)s.",
                    "You have %(num)d unpaid invoices; the next is due on %(date)s.",
                    len(unpaid),
                    date=fmt.date(first.due_at),
                ),
                link="/billing?status=open",
            )
        )
    now = utcnow()
    for card in payments.expiring_cards(app, ctx.customer_id, now):
        expired = card.expires_before(now.year, now.month)
        message = (
            _("Your card %(card)s has expired. Add a new card.", card=card.label)
            if expired
            else _(
                "Your card %(card)s expires at the end of %(month)02d/%(year)d. Add a new card.",
                card=card.label,
                month=card.exp_month,
                year=card.exp_year,
            )
        )
        alerts.append(
            Alert(f"card-expiring-{card.id}", "warning", message, link="/billing/payment-methods")
        )
    return alerts
