"""Account pages (Account → Details → Edit → Save changes) and the account API."""

from __future__ import annotations

from marshmallow import ValidationError

from engine import roles, support
from engine.api import PageQuery, operation, paginate
from engine.context import owned
from engine.errors import Problem, invalid, in_words
from engine.forms import read_form, validate_form
from engine.i18n import N_, babel_locale
from engine.models import AuditEvent, Contact, Customer, Site, StaffUser
from plugins.account import activity, schemas, service
from plugins.identity.public import current_user, guards, policy_hint, redirect, twofactor

NOTICES = {
    "phone": N_("Your phone number has been saved."),
    "email-sent": N_(
        "We have sent a confirmation link to your new address. Your email address "
        "changes when you open it."
    ),
    "email": N_("Your email address has been changed."),
    "password": N_("Your password has been changed."),
    "password-ended": N_("Your password has been changed and your other sessions signed out."),
    "manage-granted": N_("The contact may now manage the account."),
    "manage-revoked": N_("The contact may no longer manage the account."),
    "signed-out": N_("The contact has been signed out everywhere."),
}


def _page(req, resp, template: str, status: int = 200, **values) -> None:
    ctx = req.context
    ctx.extra["section"] = "account"
    ctx.app.page(
        req,
        resp,
        template,
        status,
        refused=guards.refusal(ctx),
        notice=NOTICES.get(req.get_param("notice") or ""),
        **values,
    )


def _field_errors(exc: Problem) -> dict:
    if exc.status_code == 429:
        return {"_form": [in_words(exc)]}
    if exc.status_code == 403:
        return {"_form": [exc.description or exc.title]}
    return exc.errors or {"_form": [exc.title]}


# -- pages ------------------------------------------------------------------------


class AccountPage:
    """``/account``: details, read-only fields, and an Edit link beside each editable one."""

    def on_get(self, req, resp):
        ctx = req.context
        user = current_user(ctx)
        _page(
            req,
            resp,
            "account/index.html",
            account=service.account_view(user),
            user=user,
            notifications="notifications" in ctx.app.plugins.enabled,
        )


class EditPage:
    """``/account/edit/phone``: one field, Save changes; refused input changes nothing."""

    def on_get(self, req, resp, field):
        if field != "phone":
            raise Problem(404, N_("Not found"))
        user = current_user(req.context)
        _page(req, resp, "account/edit_phone.html", value=user.contact.phone, errors={})

    def on_post(self, req, resp, field):
        if field != "phone":
            raise Problem(404, N_("Not found"))
        ctx = req.context
        user = current_user(ctx)
        data, errors = validate_form(req, schemas.PhoneForm)
        if errors:
            return _page(
                req,
                resp,
                "account/edit_phone.html",
                422,
                errors=errors,
                value=str(read_form(req).get("phone", ""))[:64],
            )
        service.update_details(ctx.app, ctx, user, data)
        redirect(resp, "/account?notice=phone")


class EmailPage:
    """``/account/email``: new address and password; the change waits for the link."""

    def on_get(self, req, resp):
        user = current_user(req.context)
        _page(
            req,
            resp,
            "account/email.html",
            user=user,
            errors={},
            value="",
            pending=service.pending_email(user),
        )

    def on_post(self, req, resp):
        ctx = req.context
        user = current_user(ctx)
        data, errors = validate_form(req, schemas.EmailChangeBody)
        value = str(read_form(req).get("email", ""))[:254]
        if not errors:
            try:
                service.request_email_change(ctx.app, ctx, user, data["email"], data["password"])
                return redirect(resp, "/account?notice=email-sent")
            except Problem as exc:
                if exc.status_code not in (403, 422, 429):
                    raise
                errors = _field_errors(exc)
        _page(
            req,
            resp,
            "account/email.html",
            422,
            user=user,
            errors=errors,
            value=value,
            pending=service.pending_email(user),
        )


class EmailVerifyPage:
    """``/account/email/verify?token=...``: the link from the email; a button confirms."""

    auth = "public"

    def on_get(self, req, resp):
        resp.set_header("Referrer-Policy", "no-referrer")
        token = req.get_param("token") or ""
        row = service.valid_email_change(token)
        req.context.app.page(
            req,
            resp,
            "account/email_verify.html",
            200 if row else 410,
            token=token,
            change=row,
            invalid=None if row else service.EMAIL_LINK_INVALID,
            errors={},
        )

    def on_post(self, req, resp):
        ctx = req.context
        resp.set_header("Referrer-Policy", "no-referrer")
        token = str(read_form(req).get("token", ""))[:200]
        try:
            service.confirm_email_change(ctx.app, ctx, token)
        except Problem as exc:
            if exc.status_code not in (403, 422):
                raise
            errors = _field_errors(exc)
            return ctx.app.page(
                req,
                resp,
                "account/email_verify.html",
                exc.status_code,
                token=token,
                change=None,
                errors=errors,
                invalid=" ".join(m for v in errors.values() for m in v),
            )
        redirect(resp, "/account?notice=email" if ctx.customer_id else "/login?notice=email")


class PasswordPage:
    """``/account/password``: current password, new password twice, end other sessions."""

    def on_get(self, req, resp):
        _page(req, resp, "account/password.html", errors={}, policy=policy_hint(req.context.app))

    def on_post(self, req, resp):
        ctx = req.context
        user = current_user(ctx)
        data, errors = validate_form(req, schemas.PasswordChangeForm)
        if not errors and data["new_password"] != data["new_password_confirm"]:
            errors = {"new_password_confirm": [N_("The two new passwords are not the same.")]}
        if not errors:
            try:
                ended = service.change_password(
                    ctx.app,
                    ctx,
                    user,
                    data["current_password"],
                    data["new_password"],
                    data["end_other_sessions"],
                )
                return redirect(
                    resp, "/account?notice=" + ("password-ended" if ended else "password")
                )
            except Problem as exc:
                if exc.status_code not in (403, 422, 429):
                    raise
                errors = _field_errors(exc)
        _page(req, resp, "account/password.html", 422, errors=errors, policy=policy_hint(ctx.app))


class ContactsPage:
    """``/account/contacts``: everyone linked to the account with their role; logins, and the
    buttons to grant "manage" or sign someone out, as the viewer's role allows (ACCT-7)."""

    def on_get(self, req, resp):
        ctx = req.context
        _page(
            req,
            resp,
            "account/contacts.html",
            contacts=service.with_logins(ctx, list(service.contacts_query(ctx))),
            grants=roles.may(ctx.principal, "grant_manage") and guards.refusal(ctx) is None,
        )


class ContactManagePage:
    """``POST /account/contacts/{contact_id}/manage``: the primary grants or takes back "manage"."""

    def on_post(self, req, resp, contact_id):
        ctx = req.context
        service.manageable(ctx, contact_id)  # who and whom first: the form comes after
        data, errors = validate_form(req, schemas.ManageForm)
        if errors:
            raise invalid(errors)
        service.set_manage(ctx.app, ctx, contact_id, data["grant"])
        redirect(
            resp,
            "/account/contacts?notice=" + ("manage-granted" if data["grant"] else "manage-revoked"),
        )


class ContactSignOutPage:
    """``POST /account/contacts/{contact_id}/sign-out``: end every session of that contact."""

    def on_post(self, req, resp, contact_id):
        ctx = req.context
        service.sign_out_contact(ctx.app, ctx, contact_id)
        redirect(resp, "/account/contacts?notice=signed-out")


class SitesPage:
    def on_get(self, req, resp):
        cid = req.context.require_customer()
        _page(req, resp, "account/sites.html", sites=list(owned(Site, cid).order_by(Site.id)))


class ActivityPage:
    """``/account/activity``: sentences, newest first, 50 a page, keyset-paginated, one kind
    or all (ACCT-5); what the viewer's role may read (ACCT-7). A wrong filter is a 422 page
    that says so, with no list."""

    def on_get(self, req, resp):
        ctx = req.context
        values = {
            k: v
            for k, v in req.params.items()
            if k in ("kind", "cursor", "limit") and isinstance(v, str) and v
        }
        try:
            query, errors = schemas.ActivityQuery().load(values), {}
        except ValidationError as exc:
            query, errors = {}, exc.normalized_messages()
        page = (
            paginate(activity.activity_query(ctx, query["kind"]), AuditEvent.id, query)
            if not errors
            else {"items": [], "next": None}
        )
        kind = values.get("kind") if not errors else None
        _page(
            req,
            resp,
            "account/activity.html",
            422 if errors else 200,
            events=activity.describe_events(ctx.app, ctx, page["items"]),
            next=page["next"],
            kinds=activity.KINDS,
            kind=kind,
            first_page=not values.get("cursor"),
            errors=errors,
        )


class SupportPage:
    """``/support``: how to reach support, the customer ID to quote, what only staff can do."""

    auth = "public"

    def on_get(self, req, resp):
        ctx = req.context
        ctx.extra["section"] = "support"
        ctx.app.page(
            req,
            resp,
            "account/support.html",
            staff_only=service.STAFF_ONLY,
            number=_customer_number(ctx),
        )


def _customer_number(ctx) -> str | None:
    if ctx.customer_id is None:
        return None
    return ctx.extra.get("customer_number") or Customer.get_by_id(ctx.customer_id).number


# -- JSON API ----------------------------------------------------------------------


class MeAPI:
    """``GET /api/v1/me``."""

    @operation(
        "Who you are: login, customer, contact, and how you are signed in", response=schemas.MeOut
    )
    def on_get(self, req, resp):
        ctx = req.context
        user, p = current_user(ctx), ctx.principal
        impersonator = (
            StaffUser.get_or_none(StaffUser.id == p.impersonator_id) if p.impersonated else None
        )
        return {
            "user_id": user.id,
            "email": user.email,
            "customer": user.contact.customer,
            "contact": user.contact,
            "via": p.via,
            "scopes": sorted(p.scopes),
            "impersonated": p.impersonated,
            "impersonator": impersonator.name if impersonator else None,
            "two_factor": twofactor.enabled(user),
            "access": p.role,
        }


class AccountAPI:
    """``GET|PATCH /api/v1/account``."""

    @operation("Your account details (customer fields are read-only)", response=schemas.AccountOut)
    def on_get(self, req, resp):
        return service.account_view(current_user(req.context))

    @operation(
        "Change your phone number, language or time zone",
        body=schemas.AccountPatch,
        response=schemas.AccountOut,
        description="Customer ID, type, name, status, balances and email are refused "
        "field by field (422); nothing is saved when any field is refused.",
    )
    def on_patch(self, req, resp, body):
        ctx = req.context
        user = current_user(ctx)
        service.update_details(ctx.app, ctx, user, body)
        return service.account_view(user)


class EmailAPI:
    """``POST /api/v1/account/email``."""

    @operation(
        "Change your email address: a link goes to the new address",
        status=202,
        body=schemas.EmailChangeBody,
        response=schemas.AccountStatusOut,
        errors={429: "Too many email changes asked for"},
    )
    def on_post(self, req, resp, body):
        ctx = req.context
        service.request_email_change(
            ctx.app, ctx, current_user(ctx), body["email"], body["password"]
        )
        return {"status": "pending", "detail": NOTICES["email-sent"]}


class EmailVerifyAPI:
    """``POST /api/v1/account/email/verify``."""

    auth = "public"

    @operation(
        "Confirm a new email address with the token from the link",
        body=schemas.TokenBody,
        response=schemas.AccountStatusOut,
    )
    def on_post(self, req, resp, body):
        ctx = req.context
        service.confirm_email_change(ctx.app, ctx, body["token"])
        return {"status": "changed", "detail": NOTICES["email"]}


class PasswordAPI:
    """``POST /api/v1/account/password``."""

    @operation(
        "Change your password (needs the current one)",
        body=schemas.PasswordChangeBody,
        response=schemas.AccountStatusOut,
        errors={429: "Too many attempts"},
    )
    def on_post(self, req, resp, body):
        ctx = req.context
        ended = service.change_password(
            ctx.app,
            ctx,
            current_user(ctx),
            body["current_password"],
            body["new_password"],
            body["end_other_sessions"],
        )
        return {
            "status": "changed",
            "detail": f"Password changed; {ended} other session(s) signed out.",
        }


class ContactsAPI:
    @operation(
        "Contacts linked to your account, each with their role; their logins as your "
        "role allows (ACCT-7)",
        query=PageQuery,
        response=schemas.ContactPage,
    )
    def on_get(self, req, resp, query):
        ctx = req.context
        page = paginate(owned(Contact, ctx.require_customer()), Contact.id, query, descending=False)
        service.with_logins(ctx, page["items"])
        return page


class ContactManageAPI:
    """``PUT|DELETE /api/v1/account/contacts/{contact_id}/manage``"""

    @operation(
        "Let a contact manage the account: logins, API keys, the whole activity log, "
        "saved cards (the primary contact only)",
        response=schemas.AccountContactOut,
        errors={
            403: "Only the primary contact grants it, in a signed-in session",
            409: "The contact is the primary contact",
        },
    )
    def on_put(self, req, resp, contact_id):
        return service.set_manage(req.context.app, req.context, contact_id, True)

    @operation(
        "Take \"manage\" back from a contact (the primary contact only)",
        response=schemas.AccountContactOut,
        errors={
            403: "Only the primary contact grants it, in a signed-in session",
            409: "The contact is the primary contact",
        },
    )
    def on_delete(self, req, resp, contact_id):
        return service.set_manage(req.context.app, req.context, contact_id, False)


class ContactSignOutAPI:
    """``POST /api/v1/account/contacts/{contact_id}/sign-out``"""

    @operation(
        "Sign a contact out of every session (the primary contact: anyone; managers: members)",
        response=schemas.ContactSignedOut,
        errors={
            403: "Your role does not allow it, or not in a signed-in session",
            409: "The contact has no portal login",
        },
    )
    def on_post(self, req, resp, contact_id):
        return {"ended": service.sign_out_contact(req.context.app, req.context, contact_id)}


class SitesAPI:
    @operation("Your sites (addresses; read-only)", query=PageQuery, response=schemas.SitePage)
    def on_get(self, req, resp, query):
        return paginate(
            owned(Site, req.context.require_customer()), Site.id, query, descending=False
        )


class ActivityAPI:
    @operation(
        "Your activity log: every change, sign-in and impersonation as a sentence in your "
        "language, newest first, one kind or all (ACCT-5; the whole account's for the "
        "primary contact and managers, ACCT-7)",
        query=schemas.ActivityQuery,
        response=schemas.ActivityPage,
    )
    def on_get(self, req, resp, query):
        ctx = req.context
        page = paginate(activity.activity_query(ctx, query["kind"]), AuditEvent.id, query)
        return {
            "items": activity.describe_events(ctx.app, ctx, page["items"]),
            "next": page["next"],
        }


class SupportAPI:
    auth = "public"

    @operation(
        "How to reach support, your customer ID, and what only staff can do",
        response=schemas.SupportOut,
    )
    def on_get(self, req, resp):
        ctx = req.context
        return {
            **support.as_json(ctx.app.settings.support, babel_locale(ctx.locale)),
            "customer_number": _customer_number(ctx),
            "staff_only": service.STAFF_ONLY,
        }
