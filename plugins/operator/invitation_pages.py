"""Invitations on the web (INT-2): the operator API's send and revoke, and the portal page
where the contact chooses a password (CSRF-checked, the password policy of resets)."""

from __future__ import annotations

import falcon

from engine.api import operation
from engine.db import locked_transaction
from engine.forms import read_form, validate_form
from engine.i18n import N_
from engine.models import Contact
from plugins.identity.public import (
    keep_private,
    login,
    password_errors,
    policy_hint,
    redirect,
    rotate_csrf,
)
from plugins.operator import invitations, schemas
from plugins.operator.resources import _external_id, write_scope

TEMPLATE = "operator/invitation.html"


def _contact(external_id: str) -> Contact:
    row = Contact.get_or_none(Contact.external_id == _external_id(external_id))
    if row is None:
        raise falcon.HTTPNotFound(title=N_("Not found"))
    return row


class InvitationAPI:
    """``POST`` and ``DELETE /api/v1/operator/contacts/{external_id}/invitation``."""

    auth = "service"
    scope = "customers:write"

    @falcon.before(write_scope)
    @operation(
        "Invite a contact to the portal, or send a new link (the old one stops working)",
        response=schemas.InvitationOut,
        errors={409: "The contact already has a login, or another login uses the address"},
        description="Emails the contact a single-use link to choose a password (INT-2). "
        "Needs the `customers:write` scope.",
    )
    def on_post(self, req, resp, external_id):
        ctx = req.context
        with locked_transaction():
            row = invitations.send(ctx.app, ctx, _contact(external_id))
        resp.status = falcon.HTTP_201
        return {"status": "sent", "expires_at": row.expires_at}

    @falcon.before(write_scope)
    @operation(
        "Revoke a contact's pending invitation",
        errors={404: "No such contact, or no pending invitation"},
        description="The link stops working at once. Needs the `customers:write` scope.",
    )
    def on_delete(self, req, resp, external_id):
        if not invitations.revoke(req.context, _contact(external_id)):
            raise falcon.HTTPNotFound(title=N_("No pending invitation"))
        resp.status = falcon.HTTP_204


class InvitationPage:
    """``/invitation?token=...``: choose a password, and be signed in."""

    auth = "public"

    def _gone(self, req, resp):
        req.context.app.page(req, resp, TEMPLATE, 410, invalid=True)

    def on_get(self, req, resp):
        app = req.context.app
        keep_private(resp)
        token = req.get_param("token") or ""
        row = invitations.valid(token)
        if row is None:
            return self._gone(req, resp)
        app.page(
            req,
            resp,
            TEMPLATE,
            token=token,
            email=row.email,
            errors={},
            policy=policy_hint(app),
            joining=invitations.login_for(row.email) is not None,
            customer_name=row.contact.customer.name,
        )

    def on_post(self, req, resp):
        app, ctx = req.context.app, req.context
        keep_private(resp)
        token = str(read_form(req).get("token", ""))[:200]
        row = invitations.valid(token)
        if row is None:
            return self._gone(req, resp)
        joining = invitations.login_for(row.email) is not None
        if (read_form(req).get("join") == "1") != joining:
            return self._gone(req, resp)  # a login took (or left) the address since the page
        if joining:
            # SUP-2: the address has a login: this customer joins it; no password, no sign-in
            if invitations.accept_join(ctx, row) is None:
                return self._gone(req, resp)
            redirect(resp, "/login?notice=joined")
            return
        data, errors = validate_form(req, schemas.InvitationForm)
        if not errors:
            errors = password_errors(app, data["password"], row.email)
            if not errors and data["password"] != data["password_confirm"]:
                errors = {"password_confirm": [N_("The two passwords are not the same.")]}
        if errors:
            return app.page(
                req,
                resp,
                TEMPLATE,
                422,
                token=token,
                email=row.email,
                errors=errors,
                policy=policy_hint(app),
            )
        user = invitations.accept(ctx, row, data["password"])
        if user is None:
            return self._gone(req, resp)
        rotate_csrf(app, ctx, resp)
        login.complete(app, ctx, req, resp, user, "invitation")
        redirect(resp, "/account/2fa/setup" if data["setup_2fa"] else "/")
