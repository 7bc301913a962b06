"""Service tokens in the staff console (INT-1): ``/staff/tokens`` lists them and makes one
(its secret shown once, on the answer to the form), ``/staff/tokens/{id}/revoke`` ends one.
Administrators only (the routes' ``admin`` permission); every change is audited by
``tokens``, naming the token."""

from __future__ import annotations

from datetime import timedelta

import falcon
from marshmallow import Schema, ValidationError, fields, validate

from engine.db import utcnow
from engine.forms import read_form, text_errors
from engine.i18n import N_
from engine.models import StaffUser
from plugins.identity.public import redirect
from plugins.operator import tokens
from plugins.operator.models import ServiceToken

TEMPLATE = "operator/tokens.html"


class TokenForm(Schema):
    name = fields.String(
        required=True,
        validate=validate.Length(1, 100),
        error_messages={"required": N_("Name what will use it.")},
    )
    days = fields.Integer(load_default=365, validate=validate.Range(1, tokens.MAX_DAYS))
    rate_per_minute = fields.Integer(
        load_default=None, allow_none=True, validate=validate.Range(1, tokens.MAX_RATE)
    )


def _render(req, resp, status: int = 200, **values) -> None:
    app = req.context.app
    me = StaffUser.get_by_id(req.context.principal.staff_id)
    rows = list(ServiceToken.select().order_by(ServiceToken.id.desc()))
    values.setdefault("errors", {})
    values.setdefault("form", {})
    app.page(
        req,
        resp,
        TEMPLATE,
        status,
        sections=[],
        staff_console=True,
        staff=me,
        rows=rows,
        scopes=tokens.SCOPES,
        default_rate=app.settings.plugin("operator")["token_rate"],
        now=utcnow(),
        **values,
    )


class TokensPage:
    """``/staff/tokens``: the list, and the form that makes one."""

    def on_get(self, req, resp):
        resp.set_header("Cache-Control", "no-store")
        _render(req, resp, done=req.get_param("done"))

    def on_post(self, req, resp):
        resp.set_header("Cache-Control", "no-store")  # the answer carries the secret
        raw = read_form(req)
        scopes = raw.get("scopes", [])
        scopes = [scopes] if isinstance(scopes, str) else list(scopes)
        values = {k: v for k, v in raw.items() if k in ("name", "days", "rate_per_minute") and v}
        errors = text_errors(values)
        data: dict = {}
        if not errors:
            try:
                data = TokenForm().load(values)
            except ValidationError as exc:
                errors = dict(exc.messages)
        if not errors and (not scopes or not set(scopes) <= set(tokens.SCOPES)):
            errors = {"scopes": [N_("Choose one or more of the scopes listed.")]}
        if errors:
            return _render(req, resp, 422, errors=errors, form=values)
        secret, row = tokens.create(
            req.context.app,
            data["name"].strip(),
            scopes,
            utcnow() + timedelta(days=data["days"]),
            StaffUser.get_by_id(req.context.principal.staff_id),
            rate_per_minute=data["rate_per_minute"],
        )
        _render(req, resp, 201, secret=secret, made=row)


class RevokeTokenPage:
    """``POST /staff/tokens/{token_id}/revoke``."""

    def on_post(self, req, resp, token_id):
        row = ServiceToken.get_or_none(ServiceToken.id == token_id)
        if row is None:
            raise falcon.HTTPNotFound(title=N_("Not found"))
        tokens.revoke(req.context.app, row, StaffUser.get_by_id(req.context.principal.staff_id))
        redirect(resp, "/staff/tokens?done=revoked")
