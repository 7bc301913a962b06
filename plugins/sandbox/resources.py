"""The sandbox's 3-D Secure step: the cardholder confirms or refuses, as their bank would ask.

It stands in for the bank's page a real provider shows; it needs the
payment's client secret, like Stripe's, and answers nothing else.
"""

from __future__ import annotations

import falcon
from marshmallow import Schema, fields, validate

from engine.api import operation
from engine.errors import Problem, invalid
from engine.forms import validate_form
from engine.i18n import N_
from engine.payments import PaymentError
from engine.redirects import LocalPath


class AuthenticateIn(Schema):
    client_secret = fields.String(required=True, validate=validate.Length(1, 80))
    success = fields.Boolean(required=True)


class AuthenticateForm(Schema):
    """The challenge page's form: the payment's secret, the answer, and the portal page to
    go back to (a path on this site: never an open redirect)."""

    client_secret = fields.String(required=True, validate=validate.Length(1, 80))
    result = fields.String(required=True, validate=validate.OneOf(["complete", "fail"]))
    return_to = LocalPath(load_default="/")


class AuthenticateOut(Schema):
    ref = fields.String()
    status = fields.String()


def _authenticate(req, ref: str, client_secret: str, success: bool):
    provider = req.context.app.providers["sandbox"]
    try:
        return provider.authenticate(ref, client_secret, success)
    except PaymentError:
        raise falcon.HTTPNotFound(title=N_("Not found")) from None


class AuthenticatePage:
    """``POST /sandbox/charges/{ref}/authenticate``: the challenge form, then back to the portal."""

    auth = "public"

    def on_post(self, req, resp, ref):
        data, errors = validate_form(req, AuthenticateForm)
        if errors:  # only a forged form: the page sends its own values
            raise invalid(errors)
        _authenticate(req, ref, data["client_secret"], data["result"] == "complete")
        raise falcon.HTTPSeeOther(data["return_to"])


class AuthenticateAPI:
    """``POST /api/v1/sandbox/charges/{ref}/authenticate``: 3-D Secure for API clients and tests."""

    auth = "public"

    @operation(
        "Sandbox: answer a test card's 3-D Secure challenge",
        body=AuthenticateIn,
        response=AuthenticateOut,
        description="Like the bank's page of a real provider; then POST /payments/{id}/complete.",
    )
    def on_post(self, req, resp, ref, body):
        result = _authenticate(req, ref, body["client_secret"], body["success"])
        if result.status not in ("succeeded", "failed"):
            raise Problem(409, N_("This payment is not waiting for authentication"))
        return {"ref": result.ref, "status": result.status}
