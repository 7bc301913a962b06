"""The billing JSON API: customers' invoices, transactions, cards and payments; staff; webhooks.

Customer routes only read invoices and transactions (LIM-3): paying is the
one way a customer changes an invoice. Every object is fetched through
``get_owned``, so another customer's id is a 404 (LIM-2).
"""

from __future__ import annotations

import falcon
import peewee

import logging

from engine import csvexport, db, downloads
from engine.api import operation, paginate
from engine.audit import record
from engine.context import get_or_404, get_owned, owned
from engine.errors import Problem, invalid
from engine.i18n import N_
from engine.idempotency import idempotent
from engine.models import Customer
from engine.payments import WebhookError
from plugins.billing import documents, guest, invoicing, ledger, payments, ratelimits, schemas
from plugins.billing.checkout import pay_answer
from plugins.billing.models import (
    GuestPayLink,
    Invoice,
    Payment,
    PaymentMethod,
    ProviderEvent,
)

log = logging.getLogger("portico.billing")
NOT_MODIFIED = N_("Not modified: the copy you have (If-None-Match, If-Modified-Since) is current")


# -- shared by the API and the pages ----------------------------------------------------------


def invoices_of(customer_id: int, status: str | None = None):
    query = owned(Invoice, customer_id)
    if status == "open":
        return query.where(Invoice.status.in_(("unpaid", "overdue")))
    if status:
        return query.where(Invoice.status == status)
    return query


def archive_selection(customer_id: int, query: dict) -> list[Invoice]:
    """The customer's invoices an archive asks for; a foreign or unknown id is a 404."""
    selected = owned(Invoice, customer_id)
    ids = query.get("id_list")
    if ids:
        rows = list(selected.where(Invoice.id.in_(ids)).order_by(Invoice.issued_at, Invoice.id))
        if len(rows) != len(set(ids)):
            raise falcon.HTTPNotFound(title=N_("Not found"))
        return rows
    from datetime import datetime, time, timezone

    if query.get("start"):
        selected = selected.where(
            Invoice.issued_at >= datetime.combine(query["start"], time.min, timezone.utc)
        )
    if query.get("end"):
        selected = selected.where(
            Invoice.issued_at <= datetime.combine(query["end"], time.max, timezone.utc)
        )
    rows = list(selected.order_by(Invoice.issued_at, Invoice.id).limit(documents.ARCHIVE_LIMIT + 1))
    if len(rows) > documents.ARCHIVE_LIMIT:
        raise invalid(
            {
                "from": [
                    N_(
                        "At most %(limit)s invoices per archive: choose a shorter range.",
                        limit=documents.ARCHIVE_LIMIT,
                    )
                ]
            }
        )
    return rows


def send_archive(req, resp, customer_id: int, invoices: list[Invoice]) -> None:
    """The zip of ``invoices``: from storage when it was built before, else built as it is sent."""
    if not invoices:
        raise Problem(404, N_("No invoices in that range"), type="no-invoices")
    app = req.context.app
    archive = documents.Archive(app, customer_id, invoices)
    name = documents.archive_name(invoices)
    if downloads.not_modified(req, resp, archive.etag, None):
        return
    try:
        opened = archive.open()
    except Exception:  # storage unreachable: the archive can still be built and sent
        log.exception("archive %s: storage unavailable, building it again", archive.key)
        opened = None
    if opened is not None:
        downloads.send(resp, opened, documents.ZIP, name)
        return
    resp.content_type = documents.ZIP
    resp.downloadable_as = name
    resp.stream = archive.stream()


def send_pdf(req, resp, invoice: Invoice) -> None:
    """The invoice's stored PDF: a 304 when the client has it, never rendered again."""
    app = req.context.app
    if not invoice.pdf_path:  # asked before the background render ran: stored now, once
        invoice = documents.store_pdf(app, invoice.id)
    if downloads.not_modified(req, resp, invoice.pdf_sha256, invoice.pdf_rendered_at):
        return
    name = documents.download_name(invoice)
    downloads.redirect(app, invoice.pdf_path, name)
    try:
        opened = documents.open_pdf(app, invoice)
    except documents.MissingFile:
        raise Problem(
            500,
            N_("This invoice's PDF is missing from storage"),
            N_("We have been told; please try again later."),
            type="file-missing",
        ) from None
    downloads.send(resp, opened, documents.PDF, name)


def card_answer(app, method: PaymentMethod, expiring: set[int]) -> dict:
    return {
        "id": method.id,
        "provider": method.provider,
        "brand": method.brand,
        "last4": method.last4,
        "exp_month": method.exp_month,
        "exp_year": method.exp_year,
        "is_default": method.is_default,
        "expiring": method.id in expiring,
        "created_at": method.created_at,
    }


# -- invoices -----------------------------------------------------------------------------


class InvoicesAPI:
    """``GET /api/v1/invoices``"""

    @operation(
        "List your invoices, newest first (BILL-1)",
        query=schemas.InvoiceQuery,
        response=schemas.InvoicePage,
    )
    def on_get(self, req, resp, query):
        ctx = req.context
        return paginate(invoices_of(ctx.require_customer(), query["status"]), Invoice.id, query)


class InvoiceAPI:
    """``GET /api/v1/invoices/{invoice_id}``"""

    @operation(
        "One invoice with its lines and tax lines (BILL-3)", response=schemas.InvoiceDetailSchema
    )
    def on_get(self, req, resp, invoice_id):
        return get_owned(Invoice, invoice_id, req.context)


class InvoicePdfAPI:
    """``GET /api/v1/invoices/{invoice_id}/pdf``"""

    @operation(
        "The invoice as the PDF stored when it was issued (BILL-3)",
        errors={304: NOT_MODIFIED},
        description="Answers `application/pdf` with an `ETag` (the PDF's SHA-256) and "
        "`Last-Modified`; send `If-None-Match` or `If-Modified-Since` to get "
        "a 304 when you have it.",
    )
    def on_get(self, req, resp, invoice_id):
        send_pdf(req, resp, get_owned(Invoice, invoice_id, req.context))


class InvoiceArchiveAPI:
    """``GET /api/v1/invoices/archive?ids=1,2`` or ``?from=2026-01-01&to=2026-12-31``"""

    @operation(
        "Download many invoices as one zip of their PDFs (BILL-7)",
        query=schemas.ArchiveQuery,
        errors={304: NOT_MODIFIED, 404: "No invoices in that range"},
        description="Answers `application/zip`, streamed: each invoice's stored PDF "
        "and an `invoices.csv` index, with an `ETag` (the same selection "
        "of unchanged invoices is the same zip).",
    )
    def on_get(self, req, resp, query):
        customer_id = req.context.require_customer()
        send_archive(req, resp, customer_id, archive_selection(customer_id, query))


class InvoicePayAPI:
    """``POST /api/v1/invoices/{invoice_id}/pay``"""

    @idempotent
    @operation(
        "Pay an invoice with a saved card (BILL-2)",
        body=schemas.PayIn,
        response=schemas.PayOut,
        money=True,
        errors={
            202: "The card asks for 3-D Secure: see next_action",
            402: "Declined: the invoice stays unpaid",
            409: "Already paid, or a payment is in progress",
            429: "Too many payment attempts",
        },
        description="Charges what the invoice still owes. 200: paid. 202 with "
        "`next_action`: the card asks for 3-D Secure — finish it with the "
        "provider's script, then POST `complete_url`. 402: declined, the "
        "invoice stays unpaid. 409: already paid, or a payment is in progress.",
    )
    def on_post(self, req, resp, invoice_id, body):
        app, ctx = req.context.app, req.context
        invoice = get_owned(Invoice, invoice_id, ctx)
        method = payments.saved_card(app, ctx, body["payment_method_id"])
        if method is None:
            raise invalid({"payment_method_id": [N_("You have no saved card: add one first.")]})
        ratelimits.hit(app, "pay", "customer", invoice.customer_id)
        attempt = payments.pay_invoice(
            app, invoice.id, method, via="api", user_id=ctx.principal.user_id
        )
        record(
            ctx,
            "invoice.pay",
            f"invoice:{invoice.id}",
            {"payment": attempt.payment.id, "status": attempt.status},
        )
        return pay_answer(resp, attempt)


class InvoicesPayAllAPI:
    """``POST /api/v1/invoices/pay-all``"""

    @idempotent
    @operation(
        "Pay all your unpaid invoices in one payment (BILL-8)",
        body=schemas.PayAllIn,
        response=schemas.PayOut,
        money=True,
        errors={
            202: "The card asks for 3-D Secure: see next_action",
            402: "Declined: every invoice stays unpaid",
            404: "One of invoice_ids is not one of your invoices",
            409: "Nothing to pay, one of invoice_ids was paid meanwhile, or a payment of one "
            "of them is in progress",
            429: "Too many payment attempts",
        },
        description="One charge for what your unpaid and overdue invoices still owe (or "
        "exactly `invoice_ids`, e.g. the ones you showed), then each is marked paid: "
        "`invoices` in the answer. The amount is the server's. 202 with `next_action`: "
        "finish 3-D Secure, then POST `complete_url`. 402: declined, nothing is paid. "
        "Send an `Idempotency-Key`: a repeat charges once.",
    )
    def on_post(self, req, resp, body):
        app, ctx = req.context.app, req.context
        customer_id = ctx.require_customer()
        if body["invoice_ids"]:  # another customer's invoice is a 404 (LIM-2), before any card
            ids = set(body["invoice_ids"])
            if owned(Invoice, customer_id).where(Invoice.id.in_(ids)).count() != len(ids):
                raise falcon.HTTPNotFound(title=N_("Not found"))
        method = payments.saved_card(app, ctx, body["payment_method_id"])
        if method is None:
            raise invalid({"payment_method_id": [N_("You have no saved card: add one first.")]})
        ratelimits.hit(app, "pay", "customer", customer_id)
        attempt = payments.pay_invoices(
            app,
            customer_id,
            method,
            invoice_ids=body["invoice_ids"],
            currency=body["currency"],
            via="api",
            user_id=ctx.principal.user_id,
        )
        record(
            ctx,
            "invoice.pay_all",
            f"payment:{attempt.payment.id}",
            {"status": attempt.status, "amount": attempt.payment.amount},
        )
        return pay_answer(resp, attempt)


class PaymentAPI:
    """``GET /api/v1/payments/{payment_id}``"""

    @operation("One of your payments", response=schemas.PaymentSchema)
    def on_get(self, req, resp, payment_id):
        return get_owned(Payment, payment_id, req.context)


class PaymentCompleteAPI:
    """``POST /api/v1/payments/{payment_id}/complete``"""

    @operation(
        "Record the outcome of a payment after 3-D Secure (BILL-2)",
        response=schemas.PayOut,
        errors={202: "Still waiting for 3-D Secure", 402: "Declined"},
        description="Asks the provider where the payment stands and records it once; "
        "safe to repeat.",
    )
    def on_post(self, req, resp, payment_id):
        app = req.context.app
        payment = get_owned(Payment, payment_id, req.context)
        return pay_answer(resp, payments.complete(app, payment))


# -- guest links (BILL-6) -------------------------------------------------------------------


class InvoiceLinksAPI:
    """``GET|POST /api/v1/invoices/{invoice_id}/payment-links``"""

    @operation(
        "The guest payment links of an invoice (their URLs are never shown again)",
        response=schemas.LinkList,
    )
    def on_get(self, req, resp, invoice_id):
        invoice = get_owned(Invoice, invoice_id, req.context)
        links = list(invoice.guest_links.order_by(GuestPayLink.id.desc()))
        return {"items": links, "next": None}

    @operation(
        "Create a link that pays this invoice without signing in (BILL-6)",
        body=schemas.LinkIn,
        response=schemas.LinkSchema,
        status=201,
        errors={409: "This invoice is already paid"},
        description="The answer holds the URL once; keep it. It expires, and can be "
        "revoked with DELETE /payment-links/{id}.",
    )
    def on_post(self, req, resp, invoice_id, body):
        app, ctx = req.context.app, req.context
        invoice = get_owned(Invoice, invoice_id, ctx)
        link, url = guest.create_link(
            app, ctx, invoice, body["days"], created_by=f"user:{ctx.principal.user_id}"
        )
        link.url = url
        return link


class PaymentLinkAPI:
    """``DELETE /api/v1/payment-links/{link_id}``"""

    @operation("Revoke a guest payment link", response=schemas.LinkSchema)
    def on_delete(self, req, resp, link_id):
        app, ctx = req.context.app, req.context
        return guest.revoke_link(app, ctx, get_owned(GuestPayLink, link_id, ctx))


# -- transactions (BILL-4) ------------------------------------------------------------------


class TransactionsAPI:
    """``GET /api/v1/transactions``"""

    @operation(
        "Your transactions, newest first by date: charges positive, credits negative (BILL-4)",
        query=schemas.TransactionQuery,
        response=schemas.TransactionPage,
        description="Filter by `status`, `type` and a range of days (`from`, `to`, "
        "both included, in your time zone).",
    )
    def on_get(self, req, resp, query):
        ctx = req.context
        return ledger.page(ctx.require_customer(), query, ctx.timezone)


class TransactionsCsvAPI:
    """``GET /api/v1/transactions.csv``"""

    @operation(
        "Your transactions as CSV, newest first (BILL-4)",
        query=schemas.TransactionFilter,
        description="Answers `text/csv` with the columns "
        + ", ".join(f"`{c}`" for c in ledger.CSV_COLUMNS)
        + "; the same filters as the list. Dates in your time zone.",
    )
    def on_get(self, req, resp, query):
        send_csv(req, resp, query)


def send_csv(req, resp, filters: dict) -> None:
    """The customer's transactions ``filters`` selects, as a CSV download."""
    ctx = req.context
    csvexport.send(
        resp,
        ledger.csv_name(filters),
        ledger.csv_rows(ctx.require_customer(), filters, ctx.timezone),
    )


# -- payment methods (BILL-5) ----------------------------------------------------------------


def known_provider(app, name: str | None) -> str | None:
    """A client-named provider must be one of the operator's: otherwise a field error."""
    if name is not None and name not in app.providers:
        raise invalid(
            {
                "provider": [
                    N_(
                        "Unknown payment provider; use one of: %(choices)s.",
                        choices=", ".join(sorted(app.providers)),
                    )
                ]
            }
        )
    return name


class PaymentMethodsAPI:
    """``GET|POST /api/v1/payment-methods``"""

    @operation("Your saved cards, the default first (BILL-5)", response=schemas.PaymentMethodList)
    def on_get(self, req, resp):
        app, ctx = req.context.app, req.context
        customer_id = ctx.require_customer()
        expiring = {c.id for c in payments.expiring_cards(app, customer_id)}
        return {
            "items": [card_answer(app, c, expiring) for c in payments.cards_of(customer_id)],
            "next": None,
        }

    @operation(
        "Save the card of a finished setup (BILL-5)",
        body=schemas.CardIn,
        response=schemas.PaymentMethodSchema,
        status=201,
        errors={402: "The provider refused the card setup"},
        description="First POST /payment-methods/setup and let the provider's widget "
        "collect the card (card data never reaches this server); then send "
        "its `setup_ref` (and `token`, for the sandbox) here.",
    )
    def on_post(self, req, resp, body):
        app, ctx = req.context.app, req.context
        customer_id = ctx.require_customer()
        method = payments.save_card(
            app,
            ctx,
            customer_id,
            body["setup_ref"],
            body["token"],
            make_default=body["make_default"],
            provider_id=known_provider(app, body["provider"]),
        )
        expiring = {c.id for c in payments.expiring_cards(app, customer_id)}
        return card_answer(app, method, expiring)


class PaymentMethodSetupAPI:
    """``POST /api/v1/payment-methods/setup``"""

    @operation(
        "Start adding a card with the payment provider (BILL-5)",
        body=schemas.SetupIn,
        response=schemas.SetupOut,
        status=201,
        errors={402: "The provider refused", 429: "Too many card set-ups"},
        description="Returns what the provider's browser widget needs (Stripe: the "
        "SetupIntent's client secret and publishable key).",
    )
    def on_post(self, req, resp, body):
        app, ctx = req.context.app, req.context
        ratelimits.hit(app, "card", "customer", ctx.require_customer())
        provider, setup = payments.start_setup(
            app, ctx.require_customer(), known_provider(app, body["provider"])
        )
        return {
            "provider": provider.id,
            "setup_ref": setup.ref,
            "client_secret": setup.client_secret,
            "widget": setup.widget,
        }


class PaymentMethodAPI:
    """``DELETE /api/v1/payment-methods/{method_id}``"""

    @operation("Delete a saved card (here and at the provider)", status=204)
    def on_delete(self, req, resp, method_id):
        app, ctx = req.context.app, req.context
        payments.delete_card(app, ctx, get_owned(PaymentMethod, method_id, ctx))


class PaymentMethodDefaultAPI:
    """``POST /api/v1/payment-methods/{method_id}/default``"""

    @operation("Make a saved card the default", response=schemas.PaymentMethodSchema)
    def on_post(self, req, resp, method_id):
        app, ctx = req.context.app, req.context
        method = payments.set_default(app, ctx, get_owned(PaymentMethod, method_id, ctx))
        expiring = {c.id for c in payments.expiring_cards(app, method.customer_id)}
        return card_answer(app, method, expiring)


# -- staff ------------------------------------------------------------------------------------


class StaffTransactionsAPI:
    """``GET|POST /api/v1/staff/customers/{customer_id}/transactions``"""

    @operation(
        "A customer's transactions",
        query=schemas.TransactionQuery,
        response=schemas.TransactionPage,
    )
    def on_get(self, req, resp, customer_id, query):
        customer_id = get_or_404(Customer, customer_id).id
        return ledger.page(customer_id, query, req.context.app.settings.default_timezone)

    @operation(
        "Record a charge or a credit on a customer's account (not yet invoiced)",
        body=schemas.StaffTransactionIn,
        response=schemas.TransactionSchema,
        status=201,
    )
    def on_post(self, req, resp, customer_id, body):
        app, ctx = req.context.app, req.context
        customer_id = get_or_404(Customer, customer_id).id
        if body["service_id"] is not None:
            from engine.models import Service

            if (
                not Service.select()
                .where((Service.id == body["service_id"]) & (Service.customer == customer_id))
                .exists()
            ):
                raise invalid({"service_id": [N_("Not a service of this customer.")]})
        with db.database.atomic():
            tx = invoicing.record_transaction(
                app,
                customer_id,
                kind=body["kind"],
                description=body["description"],
                amount=body["amount"],
                currency=body["currency"],
                tax_rate=body["tax_rate"],
                occurred_at=body["occurred_at"],
                service_id=body["service_id"],
                reference=body["reference"],
            )
            record(
                ctx,
                "transaction.recorded",
                f"transaction:{tx.id}",
                {"kind": tx.kind, "amount": tx.amount},
                customer_id=customer_id,
            )
        return tx


class StaffInvoicesAPI:
    """``GET|POST /api/v1/staff/customers/{customer_id}/invoices``"""

    @operation("A customer's invoices", query=schemas.InvoiceQuery, response=schemas.InvoicePage)
    def on_get(self, req, resp, customer_id, query):
        customer_id = get_or_404(Customer, customer_id).id
        return paginate(invoices_of(customer_id, query["status"]), Invoice.id, query)

    @operation(
        "Issue an invoice from the customer's uninvoiced transactions (BILL-1)",
        body=schemas.IssueIn,
        response=schemas.InvoiceDetailSchema,
        status=201,
        description="Its PDF is rendered once, in the background, and stored.",
    )
    def on_post(self, req, resp, customer_id, body):
        app, ctx = req.context.app, req.context
        customer_id = get_or_404(Customer, customer_id).id
        return invoicing.issue_invoice(
            app,
            customer_id,
            currency=body["currency"],
            transaction_ids=body["transaction_ids"],
            due_days=body["due_days"],
            notes=body["notes"],
            staff_id=ctx.principal.staff_id,
        )


class StaffInvoiceAPI:
    """``GET /api/v1/staff/invoices/{invoice_id}``"""

    @operation("Any invoice", response=schemas.InvoiceDetailSchema)
    def on_get(self, req, resp, invoice_id):
        return get_or_404(Invoice, invoice_id)


class StaffInvoicePaymentsAPI:
    """``POST /api/v1/staff/invoices/{invoice_id}/payments``"""

    @idempotent
    @operation(
        "Record money received outside the portal (a bank transfer)",
        body=schemas.OfflinePaymentIn,
        response=schemas.PaymentSchema,
        status=201,
        money=True,
    )
    def on_post(self, req, resp, invoice_id, body):
        app, ctx = req.context.app, req.context
        invoice = get_or_404(Invoice, invoice_id)
        payment = payments.record_offline_payment(
            app,
            invoice.id,
            body["amount"],
            body["reference"],
            body["method"],
            staff_id=ctx.principal.staff_id,
        )
        record(
            ctx,
            "invoice.payment_recorded",
            f"invoice:{invoice.id}",
            {"payment": payment.id, "amount": payment.amount},
            customer_id=invoice.customer_id,
        )
        return payment


class StaffRefundAPI:
    """``POST /api/v1/staff/payments/{payment_id}/refund``"""

    @idempotent
    @operation(
        "Refund (part of) a card payment (staff only: LIM-1)",
        body=schemas.RefundIn,
        response=schemas.PaymentSchema,
        money=True,
    )
    def on_post(self, req, resp, payment_id, body):
        app, ctx = req.context.app, req.context
        payment = get_or_404(Payment, payment_id)
        refunded = payments.refund(app, payment, body["amount"], staff_id=ctx.principal.staff_id)
        record(
            ctx,
            "payment.refund",
            f"payment:{payment.id}",
            {"amount": body["amount"]},
            customer_id=payment.customer_id,
        )
        return refunded


class StaffInvoiceLinksAPI:
    """``POST /api/v1/staff/invoices/{invoice_id}/payment-links``"""

    @operation(
        "Create a guest payment link for any invoice (BILL-6)",
        body=schemas.LinkIn,
        response=schemas.LinkSchema,
        status=201,
        errors={409: "This invoice is already paid"},
    )
    def on_post(self, req, resp, invoice_id, body):
        app, ctx = req.context.app, req.context
        link, url = guest.create_link(
            app,
            ctx,
            get_or_404(Invoice, invoice_id),
            body["days"],
            created_by=f"staff:{ctx.principal.staff_id}",
        )
        link.url = url
        return link


class StaffPaymentLinkAPI:
    """``DELETE /api/v1/staff/payment-links/{link_id}``"""

    @operation("Revoke a guest payment link", response=schemas.LinkSchema)
    def on_delete(self, req, resp, link_id):
        link = get_or_404(GuestPayLink, link_id)
        return guest.revoke_link(req.context.app, req.context, link)


# -- webhooks -----------------------------------------------------------------------------------


class Webhook:
    """``POST /webhooks/{provider_id}``: a provider's signed event, acted on once per event id."""

    auth = "public"
    csrf = False

    def on_post(self, req, resp, provider_id):
        app = req.context.app
        provider = app.providers.get(provider_id)
        if provider is None:
            raise falcon.HTTPNotFound(title=N_("Not found"))
        payload = req.bounded_stream.read()  # at most web.max_body_bytes (engine.bodies.cap)
        headers = {k.lower(): v for k, v in req.headers.items()}
        try:
            event = provider.parse_webhook(app, payload, headers)
        except WebhookError as exc:
            raise Problem(400, N_("Webhook refused"), str(exc), type="webhook-invalid") from None
        try:
            with db.locked_transaction():
                ProviderEvent.create(provider=provider_id, event_id=event.id, type=event.type)
                payments.apply_event(app, provider_id, event)
        except peewee.IntegrityError:
            resp.media = {"received": True, "duplicate": True}
            return
        resp.media = {"received": True}
