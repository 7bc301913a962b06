"""The home page and the shell API: sections, dashboard cards, alerts."""

from __future__ import annotations

import secrets
from dataclasses import asdict

import falcon
from markupsafe import Markup

from engine import audit
from engine.api import Dumped, operation
from engine.i18n import N_
from plugins.dashboard import schemas
from plugins.dashboard.cache import dashboard_cache
from plugins.dashboard.models import AlertDismissal


CSRF_MARK = "csrf-" + secrets.token_hex(16)  # stands in for the visitor's token in a kept page


def cards_for(app, ctx) -> list[dict]:
    pairs = app.plugins.collect("dashboard_cards", app=app, ctx=ctx)
    return sorted(
        ({**asdict(c), "plugin": p} for p, c in pairs), key=lambda c: (c["order"], c["id"])
    )


def alerts_for(app, ctx) -> list[dict]:
    """Every plugin's alerts for this customer, less those this user dismissed."""
    alerts = [
        {**asdict(a), "plugin": p}
        for p, a in app.plugins.collect("portal_alerts", app=app, ctx=ctx)
    ]
    ids = [a["id"] for a in alerts if a["dismissible"]]
    if ids and ctx.principal is not None and ctx.principal.user_id:
        gone = {
            d.alert_id
            for d in AlertDismissal.select(AlertDismissal.alert_id).where(
                (AlertDismissal.user == ctx.principal.user_id) & AlertDismissal.alert_id.in_(ids)
            )
        }
        alerts = [a for a in alerts if a["id"] not in gone]
    return alerts


def dashboard_for(app, ctx) -> dict:
    """Cards and alerts for the signed-in customer (cached briefly, see ``cache.py``)."""
    return dashboard_cache(app).get(
        app, ctx, lambda: {"cards": cards_for(app, ctx), "alerts": alerts_for(app, ctx)}
    )


def dismiss(app, ctx, alert_id: str) -> None:
    """Hide a dismissible alert for this user; an undismissible or unknown one is a 404."""
    known = {a["id"]: a for a in alerts_for(app, ctx)}
    if alert_id not in known or not known[alert_id]["dismissible"]:
        raise falcon.HTTPNotFound(title=N_("No such alert"))
    with app.database.atomic():
        (
            AlertDismissal.insert(user=ctx.principal.user_id, alert_id=alert_id)
            .on_conflict_ignore()
            .execute()
        )
        audit.record(ctx, "alert.dismissed", alert_id)


class Home:
    """``/``: the dashboard for a signed-in customer, a welcome page otherwise."""

    auth = "public"

    def on_get(self, req, resp):
        app, ctx = req.context.app, req.context
        if ctx.customer_id is None:
            app.page(req, resp, "dashboard/welcome.html")
            return
        board = dashboard_for(app, ctx)
        if "cards_html" not in board:
            # Rendered once per cached dashboard, like the data: card templates hold no
            # per-request values (no forms, no CSRF token), so every visit can share them.
            board["cards_html"] = Markup(app.render(req, "dashboard/_cards.html", **board))
        if req.query_string:  # rare (e.g. back from a language switch): render it all
            app.page(req, resp, "dashboard/home.html", **board)
            return
        if "page" not in board:
            # The whole page is kept too: the viewer, language and time zone are the cache
            # key; the one per-visit value, the CSRF token, is put in on the way out.
            board["page"] = app.render(req, "dashboard/home.html", **board, csrf_token=CSRF_MARK)
        resp.content_type = falcon.MEDIA_HTML
        resp.text = board["page"].replace(CSRF_MARK, ctx.csrf_token)


class DashboardAPI:
    @operation("Your dashboard: cards from every plugin, and alerts", response=schemas.Dashboard)
    def on_get(self, req, resp):
        board = dashboard_for(req.context.app, req.context)
        if "api" not in board:  # dumped once per cached dashboard
            board["api"] = schemas.Dashboard().dump(board)
        return Dumped(board["api"])


class SectionsAPI:
    auth = "public"

    @operation(
        "Navigation sections contributed by the enabled plugins", response=schemas.SectionList
    )
    def on_get(self, req, resp):
        return {
            "items": [{**asdict(s), "plugin": p} for p, s in req.context.app.sections],
            "next": None,
        }


class AlertsAPI:
    @operation("In-portal alerts for the signed-in customer", response=schemas.AlertList)
    def on_get(self, req, resp):
        return {"items": alerts_for(req.context.app, req.context), "next": None}


class DismissAPI:
    @operation("Dismiss an alert (where it can be dismissed)", status=204)
    def on_post(self, req, resp, alert_id):
        req.context.require_customer()
        dismiss(req.context.app, req.context, alert_id)


class DismissPage:
    def on_post(self, req, resp, alert_id):
        dismiss(req.context.app, req.context, alert_id)
        raise falcon.HTTPSeeOther("/")
