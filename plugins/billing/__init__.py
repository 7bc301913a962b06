"""Billing (BILL-1..7, LIM-3): invoices, transactions, saved cards, payments, guest links.

Payment providers (``plugins/stripe``, ``plugins/sandbox``, a partner's) plug in
through ``payment_providers``; this plugin is their only caller.
"""

from __future__ import annotations

from engine import hookimpl
from engine.i18n import N_
from engine.registry import Route, Section


@hookimpl
def plugin_optional():
    # identity: its rate-limit storage counts payment attempts; sandbox: demo cards.
    return ["identity", "sandbox"]


@hookimpl
def register_hookspecs():
    from plugins.billing import hookspecs

    return [hookspecs]


@hookimpl
def register_settings():
    from plugins.billing.schemas import BillingSettings

    return BillingSettings


@hookimpl
def register_models():
    from plugins.billing.models import MODELS

    return list(MODELS)


@hookimpl
def register_sections(app):
    return [Section("billing", N_("Billing"), "/billing", icon="billing", order=40, primary=True)]


@hookimpl
def register_routes(app):
    from plugins.billing import guest, pages as p, resources as r

    guest.redact_tokens()
    api = "/api/v1"
    return [
        Route(f"{api}/invoices", r.InvoicesAPI()),
        Route(f"{api}/invoices/archive", r.InvoiceArchiveAPI()),
        Route(f"{api}/invoices/pay-all", r.InvoicesPayAllAPI()),
        Route(f"{api}/invoices/{{invoice_id}}", r.InvoiceAPI()),
        Route(f"{api}/invoices/{{invoice_id}}/pdf", r.InvoicePdfAPI()),
        Route(f"{api}/invoices/{{invoice_id}}/pay", r.InvoicePayAPI()),
        Route(f"{api}/invoices/{{invoice_id}}/payment-links", r.InvoiceLinksAPI()),
        Route(f"{api}/payment-links/{{link_id}}", r.PaymentLinkAPI()),
        Route(f"{api}/payments/{{payment_id}}", r.PaymentAPI()),
        Route(f"{api}/payments/{{payment_id}}/complete", r.PaymentCompleteAPI()),
        Route(f"{api}/transactions", r.TransactionsAPI()),
        Route(f"{api}/transactions.csv", r.TransactionsCsvAPI()),
        Route(f"{api}/payment-methods", r.PaymentMethodsAPI()),
        Route(f"{api}/payment-methods/setup", r.PaymentMethodSetupAPI()),
        Route(f"{api}/payment-methods/{{method_id}}", r.PaymentMethodAPI()),
        Route(f"{api}/payment-methods/{{method_id}}/default", r.PaymentMethodDefaultAPI()),
        Route(
            f"{api}/staff/customers/{{customer_id}}/transactions",
            r.StaffTransactionsAPI(),
            permission="billing",
        ),
        Route(
            f"{api}/staff/customers/{{customer_id}}/invoices",
            r.StaffInvoicesAPI(),
            permission="billing",
        ),
        Route(f"{api}/staff/invoices/{{invoice_id}}", r.StaffInvoiceAPI(), permission="billing"),
        Route(
            f"{api}/staff/invoices/{{invoice_id}}/payments",
            r.StaffInvoicePaymentsAPI(),
            permission="billing",
        ),
        Route(
            f"{api}/staff/invoices/{{invoice_id}}/payment-links",
            r.StaffInvoiceLinksAPI(),
            permission="billing",
        ),
        Route(
            f"{api}/staff/payment-links/{{link_id}}", r.StaffPaymentLinkAPI(), permission="billing"
        ),
        Route(
            f"{api}/staff/payments/{{payment_id}}/refund", r.StaffRefundAPI(), permission="billing"
        ),
        Route("/webhooks/{provider_id}", r.Webhook()),
        Route("/billing", p.InvoicesPage()),
        Route("/billing/archive", p.ArchivePage()),
        Route("/billing/pay-all", p.PayAllPage()),
        Route("/billing/invoices/{invoice_id}", p.InvoicePage()),
        Route("/billing/invoices/{invoice_id}/pdf", p.InvoicePdfPage()),
        Route("/billing/invoices/{invoice_id}/pay", p.PayPage()),
        Route("/billing/invoices/{invoice_id}/links", p.LinksPage()),
        Route("/billing/links/{link_id}/revoke", p.RevokeLinkPage()),
        Route("/billing/payments/{payment_id}", p.PaymentPage()),
        Route("/billing/transactions", p.TransactionsPage()),
        Route("/billing/transactions.csv", p.TransactionsCsvPage()),
        Route("/billing/payment-methods", p.PaymentMethodsPage()),
        Route("/billing/payment-methods/{method_id}/default", p.DefaultCardPage()),
        Route("/billing/payment-methods/{method_id}/delete", p.DeleteCardPage()),
        Route("/pay/{token}", p.GuestLinkPage()),
        Route("/pay", p.GuestPayPage()),
        Route("/pay/payments/{payment_id}", p.GuestPaymentPage()),
    ]


@hookimpl
def register_actors():
    from plugins.billing import tasks

    return [
        tasks.render_invoice_pdf,
        tasks.render_invoice_pdfs,
        tasks.prune_archives,
        tasks.mark_overdue_invoices,
        tasks.reconcile_payments,
        tasks.forget_card,
        tasks.warn_expiring_cards,
        tasks.purge_idempotency_records,
    ]


@hookimpl
def register_commands(cli, app_factory):
    from plugins.billing.commands import billing_group

    cli.add_command(billing_group(app_factory))


@hookimpl
def dashboard_cards(app, ctx):
    from plugins.billing.cards import billing_card

    card = billing_card(app, ctx) if ctx.customer_id else None
    return [card] if card else []


@hookimpl
def portal_alerts(app, ctx):
    from plugins.billing.cards import billing_alerts

    return billing_alerts(app, ctx) if ctx.customer_id else []


@hookimpl(optionalhook=True)  # the services plugin's hook; it may be disabled
def service_renewed(app, service, previous_period_start):
    from plugins.billing.invoicing import charge_renewal

    charge_renewal(app, service, previous_period_start)


# After the services (and their usage): billing's demo invoices charge those services, and
# services may name billing as optional (SVC-3), which would otherwise put billing first.
@hookimpl(trylast=True)
def demo_data(app, demo):
    from plugins.billing.demo import seed

    seed(app, demo)
