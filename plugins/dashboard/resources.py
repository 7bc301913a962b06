"""The home page and the shell API: sections, dashboard cards, alerts."""
from __future__ import annotations

from dataclasses import asdict

from engine.api import operation
from plugins.dashboard import schemas


def cards_for(app, ctx) -> list[dict]:
    pairs = app.plugins.collect("dashboard_cards", app=app, ctx=ctx)
    return sorted(({**asdict(c), "plugin": p} for p, c in pairs), key=lambda c: (c["order"], c["id"]))


def alerts_for(app, ctx) -> list[dict]:
    return [{**asdict(a), "plugin": p}
            for p, a in app.plugins.collect("portal_alerts", app=app, ctx=ctx)]


class Home:
    """``/``: the dashboard for a signed-in customer, a welcome page otherwise."""
    auth = "public"

    def on_get(self, req, resp):
        app, ctx = req.context.app, req.context
        if ctx.customer_id is None:
            app.page(req, resp, "dashboard/welcome.html")
            return
        app.page(req, resp, "dashboard/home.html", cards=cards_for(app, ctx),
                 alerts=alerts_for(app, ctx))


class DashboardAPI:
    @operation("Your dashboard: cards from every plugin, and alerts", response=schemas.Dashboard)
    def on_get(self, req, resp):
        app, ctx = req.context.app, req.context
        return {"cards": cards_for(app, ctx), "alerts": alerts_for(app, ctx)}


class SectionsAPI:
    auth = "public"

    @operation("Navigation sections contributed by the enabled plugins",
               response=schemas.SectionList)
    def on_get(self, req, resp):
        return {"items": [{**asdict(s), "plugin": p} for p, s in req.context.app.sections],
                "next": None}


class AlertsAPI:
    @operation("In-portal alerts for the signed-in customer", response=schemas.AlertList)
    def on_get(self, req, resp):
        return {"items": alerts_for(req.context.app, req.context), "next": None}
