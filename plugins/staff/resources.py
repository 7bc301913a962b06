"""Staff console pages, the staff API, and the impersonation links (ACC-2, IMP-1..5)."""

from __future__ import annotations

import falcon
from marshmallow import ValidationError

from engine import audit
from engine.api import PageQuery, load, operation, paginate
from engine.context import Principal, as_id, get_or_404
from engine.db import database
from engine.errors import Problem, in_words
from engine.forms import read_form, text_errors, validate_form
from engine.i18n import N_
from engine.models import Customer, Service, Site, StaffUser
from plugins.identity.public import (
    BackupCodesOut,
    CodeBody,
    LoginRefused,
    PasswordAndCode,
    TwoFactorSetup,
    bearer,
    end_session,
    lockout,
    login,
    redirect,
    rotate_csrf,
    sessions,
)
from plugins.staff import overview, schemas, search, service, twofactor
from plugins.staff.models import Impersonation


def _staff_page(req, resp, template: str, status: int = 200, **values) -> None:
    # The console has no customer navigation: the sections belong to the portal.
    req.context.app.page(req, resp, template, status, sections=[], staff_console=True, **values)


def staff_login(app, ctx, req, resp, email: str, password: str, code: str | None = None):
    """Check the password (lockout and rate limits as for customers), then the authenticator's
    code when two-step sign-in is on, and open a staff session."""
    staff = login.check_password(app, ctx, "staff", email, password)
    twofactor.check(app, ctx, staff, code)
    with database.atomic():
        lockout.succeeded(lockout.guard_key("staff", staff.email))
        token, row = sessions.create(app, ctx, "staff", staff_id=staff.id)
        ctx.principal = Principal(
            kind="staff",
            staff_id=staff.id,
            session_id=row.id,
            permissions=frozenset(staff.permissions.split()),
        )
        audit.record(ctx, "staff.login", f"staff:{staff.id}")
    sessions.set_cookie(app, resp, sessions.STAFF_COOKIE, token, row)
    return token, row


# -- pages ---------------------------------------------------------------------------


class StaffLoginPage:
    def on_get(self, req, resp):
        if req.context.principal is not None and req.context.principal.is_staff:
            return redirect(resp, "/staff")
        _staff_page(
            req,
            resp,
            "staff/login.html",
            errors={},
            email="",
            next=login.safe_next(req.get_param("next"), "/staff"),
        )

    def on_post(self, req, resp):
        app, ctx = req.context.app, req.context
        data, errors = validate_form(req, schemas.StaffLoginForm)
        email = str(read_form(req).get("email", ""))[:254]
        target = login.safe_next(read_form(req).get("next"), "/staff")
        if not target.startswith("/staff"):
            target = "/staff"
        if not errors:
            try:
                _, row = staff_login(
                    app, ctx, req, resp, data["email"], data["password"], data["otp"]
                )
                rotate_csrf(app, ctx, resp)
                if twofactor.setup_needed(app, row.staff_id):  # SEC-5: nothing else first
                    target = "/staff/2fa"
                return redirect(resp, target)
            except LoginRefused as exc:
                errors, status = {exc.field or "_form": [exc.message]}, exc.status
            except Problem as exc:
                resp.set_headers(exc.headers or {})
                errors, status = {"_form": [in_words(exc)]}, exc.status_code
        else:
            status = 422
        _staff_page(req, resp, "staff/login.html", status, errors=errors, email=email, next=target)


class StaffLogoutPage:
    def on_post(self, req, resp):
        ctx = req.context
        row = ctx.extra.get("session")
        if row is not None and row.kind == "staff":
            service.sign_out(ctx.app, ctx, row)
        sessions.clear_cookie(ctx.app, resp, sessions.STAFF_COOKIE)
        redirect(resp, "/staff/login")


class ConsolePage:
    """``/staff``: one search box (``plugins.staff.search``), the customers it finds, paged."""

    PAGE = 25

    def on_get(self, req, resp):
        raw = {k: v for k, v in req.params.items() if k in ("q", "cursor")}
        errors, query = text_errors(raw), {"q": None, "cursor": None}
        if not errors:
            try:
                query = schemas.ConsoleQuery().load(raw)
            except ValidationError as exc:
                errors = dict(exc.messages)
        page = {"items": [], "next": None}
        if not errors:
            found = search.search_customers(req.context.app, query["q"])
            try:
                page = paginate(found, Customer.id, {"limit": self.PAGE, "cursor": query["cursor"]})
            except Problem as exc:  # a cursor that is not one of ours
                errors = exc.errors or {"cursor": [exc.title]}
        # What was typed goes back in the box (too long, say, to be shortened), unless it is
        # no text at all (a NUL, a lone surrogate) or not one value.
        typed = raw.get("q")
        shown = typed if isinstance(typed, str) and not text_errors({"q": typed}) else ""
        _staff_page(
            req,
            resp,
            "staff/customers.html",
            422 if errors else 200,
            customers=page["items"],
            primary=service.primary_contacts([c.id for c in page["items"]]),
            next=page["next"],
            q=shown.strip(),
            searched=bool(query["q"] and query["q"].strip()),
            errors=errors,
            staff=_me(req),
        )


class TwoFactorPage:
    """``GET|POST /staff/2fa``: set up two-step sign-in (QR code, key, first code; then the
    backup codes, once), or see it on: backup codes left, new ones, turn it off."""

    def on_get(self, req, resp):
        self.render(req, resp)

    def on_post(self, req, resp):
        app, ctx = req.context.app, req.context
        data, errors = validate_form(req, CodeBody)
        if not errors:
            try:
                codes = twofactor.enable(app, ctx, _me(req), data["code"])
                return self.render(req, resp, codes=codes, done="on")
            except Problem as exc:
                errors = exc.errors or {"_form": [exc.title]}
        self.render(req, resp, 422, errors)

    @staticmethod
    def render(req, resp, status: int = 200, errors=None, form=None, codes=None, done=None):
        app, staff = req.context.app, _me(req)
        state = twofactor.status(app, staff.id)
        _staff_page(
            req,
            resp,
            "staff/2fa.html",
            status,
            staff=staff,
            on=state["enabled"],
            required=state["required"],
            backup_left=state["backup_codes_left"],
            setup=None if state["enabled"] else twofactor.start_setup(app, staff),
            errors=errors or {},
            form=form,
            codes=codes,
            done=done or req.get_param("done"),
        )


def _password_and_code(req, resp, act, form: str) -> None:
    """A console form that needs the password and a code (turn off, new backup codes):
    ``act(app, ctx, staff, password, code)``, or the page again with the reason."""
    app, ctx = req.context.app, req.context
    data, errors = validate_form(req, PasswordAndCode)
    if not errors:
        try:
            return act(app, ctx, _me(req), data["password"], data["code"])
        except LoginRefused as exc:
            errors = {exc.field or "_form": [exc.message]}
        except Problem as exc:  # too many attempts, or two-step sign-in is off
            errors = {"_form": [exc.title]}
    TwoFactorPage.render(req, resp, 422, errors, form=form)


class TwoFactorOffPage:
    """``POST /staff/2fa/off``: turn two-step sign-in off with the password and a code."""

    def on_post(self, req, resp):
        def turn_off(app, ctx, staff, password, code):
            twofactor.disable(app, ctx, staff, password, code)
            redirect(resp, "/staff/2fa?done=off")

        _password_and_code(req, resp, turn_off, "off")


class BackupCodesPage:
    """``POST /staff/2fa/backup-codes``: ten new backup codes (password and a code), shown once."""

    def on_post(self, req, resp):
        def renew(app, ctx, staff, password, code):
            codes = twofactor.renew_backup_codes(app, ctx, staff, password, code)
            TwoFactorPage.render(req, resp, codes=codes)

        _password_and_code(req, resp, renew, "renew")


class CustomerPage:
    """``/staff/customers/{id}``: contacts (with "Log in as user" for those who may), sites,
    services with their plan, status and balances, the newest invoices and payments (with
    ``billing``), and the activity log, newest first (``?cursor=`` pages it). Read-only but
    for the actions the staff member's permissions allow."""

    def on_get(self, req, resp, customer_id):
        customer = get_or_404(Customer, customer_id)
        self.render(req, resp, customer)

    @staticmethod
    def render(req, resp, customer, status=200, errors=None, values=None):
        app, p = req.context.app, req.context.principal
        raw = {k: v for k, v in req.params.items() if k == "cursor"}
        cursor = load(schemas.ActivityQuery, raw)["cursor"] if req.method == "GET" else None
        can_billing = p.can("billing")
        _staff_page(
            req,
            resp,
            "staff/customer.html",
            status,
            customer=customer,
            contacts=service.contacts_of(customer.id),
            sites=list(service.sites_of(customer.id)),
            services=overview.services(app, customer.id),
            billing=overview.billing(app, customer.id) if can_billing else None,
            billing_on="billing" in app.plugins.enabled,
            activity=overview.activity(app, req.context, customer.id, cursor),
            can_impersonate=p.can("can_impersonate"),
            errors=errors or {},
            values=values or {},
            staff=StaffUser.get_by_id(p.staff_id),
        )


class ImpersonatePage:
    """``POST /staff/customers/{id}/impersonate``: the form posts to a new tab, which follows
    the one-time link into the customer's portal."""

    def on_post(self, req, resp, customer_id):
        ctx = req.context
        customer = get_or_404(Customer, customer_id)
        data, errors = validate_form(req, schemas.ImpersonationBody)
        values = {k: v for k, v in read_form(req).items() if k in ("contact_id", "reason")}
        if not errors and not any(
            c.id == data["contact_id"] for c in service.contacts_of(customer.id)
        ):
            errors = {"contact_id": [N_("This contact is not on this customer.")]}
        if not errors:
            try:
                url, _ = service.start(ctx.app, ctx, data["contact_id"], data["reason"])
                # Same site, relative: the new tab stays on the origin the console is on.
                return redirect(resp, "/" + url.split("://", 1)[1].split("/", 1)[1])
            except Problem as exc:
                if exc.status_code not in (403, 422):
                    raise
                errors = exc.errors or {"_form": [exc.description or exc.title]}
        CustomerPage.render(req, resp, customer, 422, errors, values)


class OpenImpersonation:
    """``GET /impersonate/{token}``: the one-time link; opens the portal as the customer."""

    auth = "public"

    def on_get(self, req, resp, token):
        app, ctx = req.context.app, req.context
        resp.set_header("Referrer-Policy", "no-referrer")
        token_value, row = service.open_link(app, ctx, token)
        sessions.set_cookie(app, resp, sessions.SESSION_COOKIE, token_value, row)
        redirect(resp, "/")


class EndImpersonation:
    """``POST /impersonation/end``: the banner's button; back to the staff console."""

    auth = "public"

    def on_post(self, req, resp):
        ctx = req.context
        row = ctx.extra.get("session")
        if row is not None and row.kind == "impersonation":
            end_session(ctx.app, ctx, row)
            sessions.clear_cookie(ctx.app, resp, sessions.SESSION_COOKIE)
        redirect(resp, "/staff")


# -- JSON API ---------------------------------------------------------------------------


class StaffLoginAPI:
    @operation(
        "Staff sign-in: a bearer token for /api/v1/staff",
        body=schemas.StaffLoginBody,
        response=schemas.StaffTokenOut,
        errors={
            401: "Wrong email or password; or two-step sign-in is on and "
            "`otp` is missing (`otp-required`) or wrong (`otp-invalid`)",
            429: "Too many attempts, or the email is locked",
        },
    )
    def on_post(self, req, resp, body):
        app, ctx = req.context.app, req.context
        try:
            token, row = staff_login(
                app, ctx, req, resp, body["email"], body["password"], body["otp"]
            )
        except LoginRefused as exc:
            raise Problem(exc.status, exc.message, type=exc.slug) from None
        return {
            "token": token,
            "expires_at": row.expires_at,
            "setup_required": twofactor.setup_needed(app, row.staff_id),
        }


class StaffLogoutAPI:
    @operation("Staff sign-out", status=204)
    def on_post(self, req, resp):
        ctx = req.context
        row = ctx.extra.get("session")
        if row is not None:
            service.sign_out(ctx.app, ctx, row)
        if bearer(req) is None:
            sessions.clear_cookie(ctx.app, resp, sessions.STAFF_COOKIE)


class StaffMeAPI:
    @operation("The signed-in staff member and their permissions", response=schemas.StaffOut)
    def on_get(self, req, resp):
        return StaffUser.get_by_id(req.context.principal.staff_id)


class StaffTwoFactorAPI:
    """``GET|DELETE /api/v1/staff/2fa``"""

    @operation(
        "Whether two-step sign-in is on for you, whether it is required, and how many "
        "backup codes are left",
        response=schemas.StaffTwoFactorStatus,
    )
    def on_get(self, req, resp):
        return twofactor.status(req.context.app, req.context.principal.staff_id)

    @operation(
        "Turn two-step sign-in off (your password and a current code or backup code)",
        body=PasswordAndCode,
        response=schemas.StaffTwoFactorStatus,
        errors={401: "Wrong password or code", 429: "Too many attempts, or the email is locked"},
    )
    def on_delete(self, req, resp, body):
        app, ctx = req.context.app, req.context
        try:
            twofactor.disable(app, ctx, _me(req), body["password"], body["code"])
        except LoginRefused as exc:
            raise Problem(exc.status, exc.message, type=exc.slug) from None
        return twofactor.status(app, ctx.principal.staff_id)


class StaffTwoFactorSetupAPI:
    """``POST /api/v1/staff/2fa/setup``"""

    @operation(
        "Start setting up two-step sign-in: the key and QR code for an authenticator app",
        response=TwoFactorSetup,
        errors={409: "Two-step sign-in is already on"},
    )
    def on_post(self, req, resp):
        return twofactor.start_setup(req.context.app, _me(req))


class StaffTwoFactorEnableAPI:
    """``POST /api/v1/staff/2fa/enable``"""

    @operation(
        "Turn two-step sign-in on with the first code from the app; returns the backup "
        "codes (shown once)",
        body=CodeBody,
        response=schemas.StaffTwoFactorEnabled,
        errors={409: "Already on, or no set-up started", 429: "Too many attempts"},
    )
    def on_post(self, req, resp, body):
        codes = twofactor.enable(req.context.app, req.context, _me(req), body["code"])
        return {"enabled": True, "backup_codes": codes}


class StaffBackupCodesAPI:
    """``POST /api/v1/staff/2fa/backup-codes``"""

    @operation(
        "Replace your backup codes (password and a code); returns the new ones once",
        body=PasswordAndCode,
        response=BackupCodesOut,
        errors={
            401: "Wrong password or code",
            409: "Two-step sign-in is off",
            429: "Too many attempts, or the email is locked",
        },
    )
    def on_post(self, req, resp, body):
        app, ctx = req.context.app, req.context
        try:
            codes = twofactor.renew_backup_codes(app, ctx, _me(req), body["password"], body["code"])
        except LoginRefused as exc:
            raise Problem(exc.status, exc.message, type=exc.slug) from None
        return {"backup_codes": codes}


def _me(req) -> StaffUser:
    return StaffUser.get_by_id(req.context.principal.staff_id)


class CustomersAPI:
    @operation(
        "Find customers",
        query=schemas.CustomerQuery,
        response=schemas.CustomerPage,
        description="The console's search box: `q` matches part of a customer's name or "
        "number, of a contact's email or phone, or of a service's MSISDN or identifier; or "
        "exactly a customer's or service's external id, or an invoice number. Newest first.",
    )
    def on_get(self, req, resp, query):
        return paginate(search.search_customers(req.context.app, query["q"]), Customer.id, query)


class CustomerAPI:
    @operation("One customer", response=schemas.StaffCustomerOut)
    def on_get(self, req, resp, customer_id):
        return get_or_404(Customer, customer_id)


class CustomerContactsAPI:
    @operation(
        "A customer's contacts, and whether each has a portal login", response=schemas.ContactPage
    )
    def on_get(self, req, resp, customer_id):
        customer = get_or_404(Customer, customer_id)
        return {"items": service.contacts_of(customer.id), "next": None}


class CustomerSitesAPI:
    @operation("A customer's sites", query=PageQuery, response=schemas.SitePage)
    def on_get(self, req, resp, customer_id, query):
        customer = get_or_404(Customer, customer_id)
        return paginate(service.sites_of(customer.id), Site.id, query, descending=False)


class CustomerServicesAPI:
    @operation("A customer's services", query=PageQuery, response=schemas.ServicePage)
    def on_get(self, req, resp, customer_id, query):
        customer = get_or_404(Customer, customer_id)
        return paginate(service.services_of(customer.id), Service.id, query, descending=False)


def _out(row: Impersonation, url: str | None = None) -> dict:
    return {
        "id": row.id,
        "url": url,
        "staff_id": row.staff_id,
        "contact_id": row.contact_id,
        "customer_id": row.customer_id,
        "user_id": row.user_id,
        "reason": row.reason,
        "created_at": row.created_at,
        "link_expires_at": row.link_expires_at,
        "opened_at": row.opened_at,
        "status": service.status(row),
    }


class ImpersonationsAPI:
    @operation(
        "Start impersonating a contact: returns a one-time portal URL",
        body=schemas.ImpersonationBody,
        response=schemas.ImpersonationOut,
        status=201,
        description="Needs `can_impersonate` or `admin`. Open `url` in a new tab within "
        "2 minutes; it works once. The customer sees the visit and the "
        "reason in their activity log.",
    )
    def on_post(self, req, resp, body):
        ctx = req.context
        url, row = service.start(ctx.app, ctx, body["contact_id"], body["reason"])
        return _out(row, url)

    @operation(
        "Impersonations: your own, or everyone's for admins",
        query=PageQuery,
        response=schemas.ImpersonationPage,
    )
    def on_get(self, req, resp, query):
        p = req.context.principal
        q = Impersonation.select()
        if not p.can("admin"):
            q = q.where(Impersonation.staff == p.staff_id)
        page = paginate(q, Impersonation.id, query)
        return {"items": [_out(r) for r in page["items"]], "next": page["next"]}


class ImpersonationAPI:
    @operation("End an impersonation: its session stops at once", response=schemas.ImpersonationOut)
    def on_delete(self, req, resp, impersonation_id):
        ctx = req.context
        try:
            row = Impersonation.get_by_id(as_id(impersonation_id))
        except (ValueError, Impersonation.DoesNotExist):
            raise falcon.HTTPNotFound(title=N_("Not found")) from None
        service.end(ctx.app, ctx, row)
        return _out(Impersonation.get_by_id(row.id))
