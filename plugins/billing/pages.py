"""The billing portal pages: invoices, paying, transactions, cards, and the guest payment page.

Pages call the same rules as the API (``payments``, ``guest``, ``documents``).
Card entry is the payment provider's widget inside our forms: card numbers go
from the browser to the provider, never to this server (BILL-5).
"""

from __future__ import annotations

from urllib.parse import urlencode

import falcon
from marshmallow import ValidationError

from engine import roles
from engine.api import paginate
from engine.audit import record
from engine.context import get_or_404, get_owned
from engine.db import utcnow
from engine.errors import Problem
from engine.forms import read_form, validate_form
from engine.i18n import N_
from plugins.billing import checkout, guest, ledger, payall, payments, ratelimits, schemas
from plugins.billing.models import GuestPayLink, Invoice, Payment, PaymentMethod
from plugins.billing.resources import (
    archive_selection,
    invoices_of,
    send_archive,
    send_csv,
    send_pdf,
)

DONE = {
    "paid": N_("Payment received — thank you. A confirmation email is on its way."),
    "paid-all": N_(
        "Payment received — thank you: those invoices are all paid. A confirmation email is "
        "on its way."
    ),
    "guest-paid": N_("Payment received — thank you."),
    "card-added": N_("Your card has been saved."),
    "card-deleted": N_("The card has been deleted."),
    "card-default": N_("Your default card has been changed."),
    "link-revoked": N_("The payment link no longer works."),
}


def _section(req) -> None:
    req.context.extra["section"] = "billing"


def _flash(req) -> str | None:
    done = req.get_param("done")
    return req.context.app.translator.gettext(DONE[done]) if done in DONE else None


# -- invoices (BILL-1, BILL-3, BILL-7) --------------------------------------------------------


class InvoicesPage:
    """``GET /billing``: the invoice list, with the archive download."""

    def on_get(self, req, resp):
        app, ctx = req.context.app, req.context
        _section(req)
        status = req.get_param("status")
        status = status if status in ("open", "paid", "overdue", "unpaid") else None
        try:
            query = schemas.PageQuery().load(
                {k: v for k, v in req.params.items() if k in ("limit", "cursor")}
            )
        except ValidationError:
            query = {"limit": 50, "cursor": None}
        page = paginate(invoices_of(ctx.require_customer(), status), Invoice.id, query)
        app.page(
            req,
            resp,
            "billing/invoices.html",
            invoices=page["items"],
            next_cursor=page["next"],
            filter_status=status,
            flash=_flash(req),
            archive_errors=None,
            pay_all=pay_all_offers(ctx.customer_id),
        )


def pay_all_offers(customer_id: int) -> list[dict]:
    """ "Pay all" (BILL-8), per currency in which more than one invoice is unpaid."""
    return [
        {"currency": currency, "count": len(found), "total": sum(i.amount_due for i in found)}
        for currency, found in sorted(payall.payable(customer_id).items())
        if len(found) > 1
    ]


class ArchivePage:
    """``GET /billing/archive?ids=..`` or ``?from=..&to=..``: one zip of many PDFs (BILL-7)."""

    def on_get(self, req, resp):
        app, ctx = req.context.app, req.context
        _section(req)
        params = dict(req.params)
        ids = req.get_param_as_list("ids") or []
        if ids:
            params["ids"] = ",".join(ids)
        params = {k: v for k, v in params.items() if v not in ("", None)}
        try:
            query = schemas.ArchiveQuery().load(params, unknown="exclude")
            selection = archive_selection(ctx.require_customer(), query)
            send_archive(req, resp, ctx.customer_id, selection)
        except (ValidationError, Problem) as exc:
            errors = (
                exc.messages
                if isinstance(exc, ValidationError)
                else (exc.errors or {"from": [exc.title]})
            )
            page = paginate(invoices_of(ctx.customer_id), Invoice.id, {"limit": 50})
            app.page(
                req,
                resp,
                "billing/invoices.html",
                invoices=page["items"],
                next_cursor=page["next"],
                archive_errors=errors,
                flash=None,
                archive_values=params,
                status=422,
            )


class InvoicePage:
    """``GET /billing/invoices/{invoice_id}``: lines, tax, payments, pay and share actions."""

    def on_get(self, req, resp, invoice_id):
        self.render(req, resp, get_owned(Invoice, invoice_id, req.context))

    @staticmethod
    def render(req, resp, invoice: Invoice, **extra) -> None:
        app = req.context.app
        _section(req)
        app.page(
            req,
            resp,
            "billing/invoice.html",
            invoice=invoice,
            lines=list(invoice.lines.order_by(invoice.lines.model.position)),
            tax_lines=list(invoice.tax_lines),
            payments=payall.payments_of(invoice),
            links=list(invoice.guest_links.order_by(GuestPayLink.id.desc())),
            flash=_flash(req),
            **extra,
        )


class InvoicePdfPage:
    """``GET /billing/invoices/{invoice_id}/pdf``: the stored PDF (BILL-3)."""

    def on_get(self, req, resp, invoice_id):
        send_pdf(req, resp, get_owned(Invoice, invoice_id, req.context))


class LinksPage:
    """``POST /billing/invoices/{invoice_id}/links``: a guest payment link, shown once (BILL-6)."""

    def on_post(self, req, resp, invoice_id):
        app, ctx = req.context.app, req.context
        invoice = get_owned(Invoice, invoice_id, ctx)
        try:
            _, url = guest.create_link(
                app, ctx, invoice, created_by=f"user:{ctx.principal.user_id}"
            )
        except Problem as exc:
            InvoicePage.render(req, resp, invoice, link_error=exc.title)
            resp.status = falcon.HTTP_409
            return
        # Shown in this answer only; the page is never cached and the URL never stored.
        resp.set_header("Cache-Control", "no-store")
        InvoicePage.render(req, resp, invoice, new_link_url=url)


class RevokeLinkPage:
    """``POST /billing/links/{link_id}/revoke``"""

    def on_post(self, req, resp, link_id):
        app, ctx = req.context.app, req.context
        link = guest.revoke_link(app, ctx, get_owned(GuestPayLink, link_id, ctx))
        raise falcon.HTTPSeeOther(f"/billing/invoices/{link.invoice_id}?done=link-revoked")


# -- paying (BILL-2), signed in or as a guest ---------------------------------------------------


def _not_through(
    flow, payment: Payment, client_secret: str, *, invoice, return_url: str, guest: bool = False
) -> None:
    """A payment not through yet, for ``PayFlow`` and ``PayAllFlow``: declined (their form
    again) or waiting for 3-D Secure (the challenge page)."""
    if payment.status in ("failed", "canceled"):
        flow.show_form(error=payment.failure_message or payments.DECLINED, status=402)
        return
    provider, widget = checkout.challenge(flow.resp, flow.app, payment)
    if payment.status == "requires_action" and not client_secret and provider is not None:
        client_secret = payments.complete(flow.app, payment).client_secret
    flow.app.page(
        flow.req,
        flow.resp,
        "billing/payment.html",
        invoice=invoice,
        payment=payment,
        provider=provider,
        mode="authenticate",
        widget=widget,
        client_secret=client_secret,
        return_url=return_url,
        guest=guest,
    )


class PayFlow:
    """The pay form and its outcome, for a signed-in customer or a guest link."""

    def __init__(self, req, resp, invoice: Invoice, link: GuestPayLink | None = None):
        self.req, self.resp, self.invoice, self.link = req, resp, invoice, link
        self.app, self.ctx = req.context.app, req.context
        self.guest = link is not None
        self.base = "/pay" if self.guest else f"/billing/invoices/{invoice.id}/pay"

    def payment_url(self, payment: Payment) -> str:
        return f"/pay/payments/{payment.id}" if self.guest else f"/billing/payments/{payment.id}"

    def show_form(
        self, *, error: str | None = None, errors: dict | None = None, status: int = 200
    ) -> None:
        invoice = self.invoice
        error = self.app.translator.gettext(error) if error else None
        pay, error = checkout.pay_with(
            self.req, self.resp, invoice.customer_id, error, guest=self.guest
        )
        self.app.page(
            self.req,
            self.resp,
            "billing/pay.html",
            status=status,
            invoice=invoice,
            action=self.base,
            idempotency_key=checkout.new_key(),
            error=error,
            errors=errors or {},
            **pay,
        )

    def show_payment(self, payment: Payment, client_secret: str = "") -> None:
        """Where a payment stands: paid, declined, or waiting for 3-D Secure."""
        if payment.status == "succeeded":
            target = (
                "/pay?done=guest-paid"
                if self.guest
                else f"/billing/invoices/{self.invoice.id}?done=paid"
            )
            raise falcon.HTTPSeeOther(target)
        _not_through(
            self,
            payment,
            client_secret,
            invoice=self.invoice,
            return_url=self.payment_url(payment),
            guest=self.guest,
        )

    def submit(self) -> None:
        if self.link is not None:  # a guest
            self.ctx.extra["idempotency_owner"] = f"guest:{self.link.id}"
        paid = checkout.submit(
            self.req, order={"invoice": self.invoice.id}, work=self._pay, show_form=self.show_form
        )
        if paid is not None:
            self.show_payment(Payment.get_by_id(paid.body["payment_id"]), paid.client_secret)

    def _pay(self, data: dict) -> dict:
        app, invoice = self.app, self.invoice
        if self.link is not None:  # a guest
            ratelimits.hit(app, "pay", "guest", self.link.id)
            ratelimits.hit(app, "pay", "address", self.ctx.ip)
        else:
            ratelimits.hit(app, "pay", "customer", invoice.customer_id)
        if data["method"] == "new":
            method = payments.save_card(
                app,
                None if self.guest else self.ctx,
                invoice.customer_id,
                data["setup_ref"],
                data["token"],
                single_use=self.guest or not data["save_card"],
            )
        elif self.guest:
            raise falcon.HTTPNotFound(title=N_("Not found"))
        else:
            method = payments.saved_card(app, self.ctx, data["method"])
        attempt = payments.pay_invoice(
            app,
            invoice.id,
            method,
            via="guest" if self.guest else "portal",
            user_id=None if self.guest else self.ctx.principal.user_id,
            guest_link_id=self.link.id if self.link is not None else None,
        )
        record(
            self.ctx,
            "invoice.pay",
            f"invoice:{invoice.id}",
            {
                "payment": attempt.payment.id,
                "status": attempt.status,
                "guest_link": self.link.id if self.link is not None else None,
            },
            customer_id=invoice.customer_id,
        )
        return {"payment_id": attempt.payment.id, "client_secret": attempt.client_secret}


class PayPage:
    """``GET|POST /billing/invoices/{invoice_id}/pay``: saved card or a new one (BILL-2)."""

    def on_get(self, req, resp, invoice_id):
        _section(req)
        invoice = get_owned(Invoice, invoice_id, req.context)
        if not invoice.is_open:
            raise falcon.HTTPSeeOther(f"/billing/invoices/{invoice.id}")
        PayFlow(req, resp, invoice).show_form()

    def on_post(self, req, resp, invoice_id):
        _section(req)
        invoice = get_owned(Invoice, invoice_id, req.context)
        PayFlow(req, resp, invoice).submit()


class PaymentPage:
    """``GET /billing/payments/{payment_id}``: where 3-D Secure returns; records the outcome."""

    def on_get(self, req, resp, payment_id):
        _section(req)
        payment = get_owned(Payment, payment_id, req.context)
        attempt = payments.complete(req.context.app, payment)
        if payment.purpose == payall.PAY_ALL:
            PayAllFlow(req, resp).show_payment(attempt.payment, attempt.client_secret)
            return
        invoice = Invoice.get_by_id(payment.invoice_id)
        PayFlow(req, resp, invoice).show_payment(attempt.payment, attempt.client_secret)


# -- paying every unpaid invoice at once (BILL-8) -----------------------------------------------


class PayAllFlow:
    """The "pay all" form (the invoices it pays, their total, a card) and its outcome."""

    def __init__(self, req, resp):
        self.req, self.resp = req, resp
        self.app, self.ctx = req.context.app, req.context
        self.customer_id = self.ctx.require_customer()

    def invoices(self) -> tuple[str, list[Invoice]]:
        """(currency, what is owed in it) — ``?currency=`` when several are owed."""
        found = payall.payable(self.customer_id)
        wanted = (self.req.get_param("currency") or "").upper()
        currency = wanted if wanted in found else (sorted(found)[0] if found else "")
        return currency, found.get(currency, [])

    def show_form(
        self, *, error: str | None = None, errors: dict | None = None, status: int = 200
    ) -> None:
        currency, invoices = self.invoices()
        if not invoices and error is None:
            raise falcon.HTTPSeeOther("/billing")
        error = self.app.translator.gettext(error) if error else None
        pay, error = checkout.pay_with(self.req, self.resp, self.customer_id, error)
        self.app.page(
            self.req,
            self.resp,
            "billing/pay_all.html",
            status=status,
            invoices=invoices,
            currency=currency,
            total=sum(i.amount_due for i in invoices),
            invoice_ids=",".join(str(i.id) for i in invoices),
            idempotency_key=checkout.new_key(),
            error=error,
            errors=errors or {},
            **pay,
        )

    def show_payment(self, payment: Payment, client_secret: str = "") -> None:
        """Paid (back to the invoices), declined (the form again), or 3-D Secure."""
        if payment.status == "succeeded":
            raise falcon.HTTPSeeOther("/billing?done=paid-all")
        _not_through(
            self, payment, client_secret, invoice=None, return_url=f"/billing/payments/{payment.id}"
        )

    def submit(self) -> None:
        posted = read_form(self.req).get("invoice_ids", "")
        paid = checkout.submit(
            self.req,
            order={"pay_all": posted if isinstance(posted, str) else ""},
            work=self._pay,
            show_form=self.show_form,
            form=schemas.PayAllForm,
        )
        if paid is not None:
            self.show_payment(Payment.get_by_id(paid.body["payment_id"]), paid.client_secret)

    def _pay(self, data: dict) -> dict:
        app, ctx = self.app, self.ctx
        ratelimits.hit(app, "pay", "customer", self.customer_id)
        method = payments.chosen_card(app, ctx, data)
        attempt = payments.pay_invoices(
            app,
            self.customer_id,
            method,
            invoice_ids=data["id_list"],
            via="portal",
            user_id=ctx.principal.user_id,
        )
        record(
            ctx,
            "invoice.pay_all",
            f"payment:{attempt.payment.id}",
            {"status": attempt.status, "amount": attempt.payment.amount},
        )
        return {"payment_id": attempt.payment.id, "client_secret": attempt.client_secret}


class PayAllPage:
    """``GET|POST /billing/pay-all``: every unpaid invoice in one card payment (BILL-8)."""

    def on_get(self, req, resp):
        _section(req)
        PayAllFlow(req, resp).show_form()

    def on_post(self, req, resp):
        _section(req)
        PayAllFlow(req, resp).submit()


# -- guest payment (BILL-6) ------------------------------------------------------------------


class GuestLinkPage:
    """``GET /pay/{token}``: swap the token for a cookie and leave the address bar clean."""

    auth = "public"

    def on_get(self, req, resp, token):
        app = req.context.app
        guest.no_referrer(resp)
        try:
            link = guest.resolve(app, token)
        except Problem as exc:
            _guest_gone(req, resp, exc)
            return
        guest.set_cookie(app, resp, token, link)
        resp.status = falcon.HTTP_303
        resp.location = "/pay"


def _guest_gone(req, resp, exc: Problem) -> None:
    guest.no_referrer(resp)
    gettext = req.context.app.translator.gettext
    req.context.app.page(
        req,
        resp,
        "billing/guest_gone.html",
        status=404,
        title=gettext(exc.title),
        detail=gettext(exc.description) if exc.description else "",
    )


def _guest_link(req, resp) -> GuestPayLink | None:
    try:
        return guest.from_cookie(req.context.app, req)
    except Problem as exc:
        _guest_gone(req, resp, exc)
        return None


class GuestPayPage:
    """``GET|POST /pay``: pay the link's invoice with a new card, without signing in."""

    auth = "public"

    def on_get(self, req, resp):
        guest.no_referrer(resp)
        link = _guest_link(req, resp)
        if link is None:
            return
        invoice = Invoice.get_by_id(link.invoice_id)
        if not invoice.is_open:
            req.context.app.page(
                req, resp, "billing/guest_paid.html", invoice=invoice, flash=_flash(req)
            )
            return
        PayFlow(req, resp, invoice, link).show_form()

    def on_post(self, req, resp):
        guest.no_referrer(resp)
        link = _guest_link(req, resp)
        if link is None:
            return
        invoice = Invoice.get_by_id(link.invoice_id)
        if not invoice.is_open:
            raise falcon.HTTPSeeOther("/pay")
        GuestPayLink.update(last_used_at=utcnow()).where(GuestPayLink.id == link.id).execute()
        PayFlow(req, resp, invoice, link).submit()


class GuestPaymentPage:
    """``GET /pay/payments/{payment_id}``: a guest's payment, after 3-D Secure."""

    auth = "public"

    def on_get(self, req, resp, payment_id):
        guest.no_referrer(resp)
        link = _guest_link(req, resp)
        if link is None:
            return
        payment = get_or_404(
            Payment, payment_id, Payment.select().where(Payment.guest_link == link.id)
        )
        attempt = payments.complete(req.context.app, payment)
        invoice = Invoice.get_by_id(payment.invoice_id)
        PayFlow(req, resp, invoice, link).show_payment(attempt.payment, attempt.client_secret)


# -- transactions and cards (BILL-4, BILL-5) -------------------------------------------------


def _transaction_filters(req) -> tuple[dict, dict, dict]:
    """(filters, errors, values as typed) from the page's query string; empty fields ignored."""
    values = {
        k: v
        for k, v in req.params.items()
        if k in ("status", "type", "from", "to", "limit", "cursor") and v not in ("", None)
    }
    try:
        return schemas.TransactionQuery().load(values), {}, values
    except ValidationError as exc:
        return {}, exc.normalized_messages(), values


class TransactionsPage:
    """``GET /billing/transactions``: newest first by date, filtered by type and days (BILL-4)."""

    def on_get(self, req, resp):
        app, ctx = req.context.app, req.context
        _section(req)
        filters, errors, values = _transaction_filters(req)
        page = (
            ledger.page(ctx.require_customer(), filters, ctx.timezone)
            if not errors
            else {"items": [], "next": None}
        )
        shown = {k: v for k, v in values.items() if k not in ("limit", "cursor")}
        app.page(
            req,
            resp,
            "billing/transactions.html",
            transactions=page["items"],
            next_cursor=page["next"],
            filters=shown,
            errors=errors,
            query_string=urlencode(shown),
            status=422 if errors else 200,
        )


class TransactionsCsvPage:
    """``GET /billing/transactions.csv``: what the page shows, as a spreadsheet (BILL-4)."""

    def on_get(self, req, resp):
        _section(req)
        filters, errors, _values = _transaction_filters(req)
        if errors:
            raise falcon.HTTPSeeOther("/billing/transactions?" + req.query_string)
        send_csv(req, resp, filters)


class PaymentMethodsPage:
    """``GET|POST /billing/payment-methods``: list, add through the provider's widget."""

    def on_get(self, req, resp):
        self.render(req, resp)

    def on_post(self, req, resp):
        app, ctx = req.context.app, req.context
        data, errors = validate_form(req, schemas.CardForm)
        if errors:
            self.render(req, resp, errors=errors, status=422)
            return
        try:
            ratelimits.hit(app, "card", "customer", ctx.require_customer())
            payments.save_card(
                app,
                ctx,
                ctx.require_customer(),
                data["setup_ref"],
                data["token"],
                make_default=data["make_default"],
            )
        except Problem as exc:
            if int(exc.status_code) == 404:
                raise
            self.render(req, resp, error=exc.description or exc.title, status=int(exc.status_code))
            return
        raise falcon.HTTPSeeOther("/billing/payment-methods?done=card-added")

    @staticmethod
    def render(req, resp, *, error=None, errors=None, status=200) -> None:
        app, ctx = req.context.app, req.context
        _section(req)
        customer_id = ctx.require_customer()
        error = app.translator.gettext(error) if error else None
        provider = setup = None
        try:
            provider, setup = payments.start_setup(app, customer_id)
        except Problem as exc:
            error = error or app.translator.gettext(exc.title)
        checkout.widget_csp(resp, app, provider)
        expiring = {c.id for c in payments.expiring_cards(app, customer_id)}
        app.page(
            req,
            resp,
            "billing/payment_methods.html",
            status=status,
            cards=list(payments.cards_of(customer_id)),
            expiring=expiring,
            provider=provider,
            setup=setup,
            mode="setup",
            widget=provider.page_data(app) if provider else {},
            error=error,
            errors=errors or {},
            flash=_flash(req),
            manage_cards=roles.may(ctx.principal, "payment_methods"),
        )


class DefaultCardPage:
    """``POST /billing/payment-methods/{method_id}/default``"""

    def on_post(self, req, resp, method_id):
        app, ctx = req.context.app, req.context
        payments.set_default(app, ctx, get_owned(PaymentMethod, method_id, ctx))
        raise falcon.HTTPSeeOther("/billing/payment-methods?done=card-default")


class DeleteCardPage:
    """``POST /billing/payment-methods/{method_id}/delete``"""

    def on_post(self, req, resp, method_id):
        app, ctx = req.context.app, req.context
        payments.delete_card(app, ctx, get_owned(PaymentMethod, method_id, ctx))
        raise falcon.HTTPSeeOther("/billing/payment-methods?done=card-deleted")
