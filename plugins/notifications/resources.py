"""Notification preferences: ``/api/v1/account/notification-preferences`` and the portal page."""

from __future__ import annotations

import falcon
from marshmallow import ValidationError

from engine import money
from engine.api import MajorAmount, operation
from engine.errors import invalid
from engine.forms import read_form
from plugins.notifications import schemas, service


def _require_user(ctx) -> int:
    ctx.require_customer()
    return ctx.principal.user_id


def _validated(app, data: dict) -> dict:
    loaded = schemas.PreferencesSchema().load(data)
    schemas.check_channels(loaded, set(app.channels))
    return loaded


class PreferencesAPI:
    @operation("Your notification preferences (NOT-3)", response=schemas.PreferencesOut)
    def on_get(self, req, resp):
        return service.preferences(req.context.app, _require_user(req.context))

    @operation(
        "Change your notification preferences",
        body=schemas.PreferencesSchema,
        response=schemas.PreferencesOut,
    )
    def on_put(self, req, resp, body):
        app, ctx = req.context.app, req.context
        try:
            schemas.check_channels(body, set(app.channels))
        except ValidationError as exc:
            raise invalid(exc.messages) from None
        return service.save(app, ctx, _require_user(ctx), body)


class PreferencesPage:
    """``/account/notifications``: the same preferences as a form."""

    def on_get(self, req, resp):
        app, ctx = req.context.app, req.context
        prefs = service.preferences(app, _require_user(ctx))
        credit = money.plain(prefs["thresholds"]["monetary"], app.settings.currency)
        self.render(req, resp, prefs, credit, saved=req.get_param("saved") == "1")

    def on_post(self, req, resp):
        app, ctx = req.context.app, req.context
        user_id = _require_user(ctx)
        form = read_form(req)
        typed = form.get("threshold_monetary", "")
        data = {
            "frequency": form.get("frequency", ""),
            "channels": {c: _as_list(form.get(f"channels_{c}")) for c in service.CATEGORIES},
            "thresholds": {k: form.get(f"threshold_{k}", "") for k in service.BALANCE_TYPES},
        }
        errors: dict = {}
        try:
            data["thresholds"]["monetary"] = _credit_in_minor(app, typed)
        except ValidationError as exc:
            errors = {"thresholds": {"monetary": exc.messages}}
            data["thresholds"]["monetary"] = 0  # still check the other fields, all at once
        try:
            loaded = _validated(app, data)
        except ValidationError as exc:
            errors = {
                **exc.messages,
                "thresholds": {
                    **exc.messages.get("thresholds", {}),
                    **errors.get("thresholds", {}),
                },
            }
        if errors:
            prefs = {**service.preferences(app, user_id), "frequency": data["frequency"]}
            self.render(req, resp, prefs, typed, errors=errors, status=422)
            return
        service.save(app, ctx, user_id, loaded)
        raise falcon.HTTPSeeOther("/account/notifications?saved=1")

    @staticmethod
    def render(req, resp, prefs, credit, errors=None, status=200, saved=False) -> None:
        req.context.app.page(
            req,
            resp,
            "notifications/preferences.html",
            status=status,
            prefs=prefs,
            credit=credit,
            currency=req.context.app.settings.currency,
            errors=errors or {},
            categories=service.CATEGORIES,
            saved=saved,
        )


def _credit_in_minor(app, typed) -> int:
    """The form's credit threshold is typed in the currency (5.00), the API's in minor units."""
    return money.to_minor(MajorAmount(required=True).deserialize(typed), app.settings.currency)


def _as_list(value) -> list[str]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]
