"""Usage views (portal and API) and the staff usage intake."""

from __future__ import annotations

from engine.api import PageQuery, load, operation, paginate
from engine.context import get_owned
from engine.db import utcnow
from engine.errors import invalid
from engine.i18n import N_
from engine.models import Service
from engine.theming import Formatter
from plugins.usage import charts, intake, schemas
from plugins.usage import service as usage
from plugins.usage.models import UsageEvent
from plugins.usage.settings import Policy, settings

CHARTS = ("data", "voice", "sms", "monetary")


def _service(req, service_id) -> Service:
    return get_owned(Service, service_id, req.context)


def calls_enabled(app) -> bool:
    return bool(settings(app)["call_records"])


# -- customer API -----------------------------------------------------------------------


class BalancesAPI:
    """``GET /api/v1/services/{service_id}/balances``"""

    @operation(
        "A service's balances, one row per bucket in consumption order (USE-1..3)",
        query=schemas.BalancesQuery,
        response=schemas.BalanceList,
    )
    def on_get(self, req, resp, service_id, query):
        service = _service(req, service_id)
        rows = usage.buckets_of(
            service.id, Policy.of(req.context.app), utcnow(), query["include_expired"]
        )
        return {"items": [usage.bucket_row(b, service) for b in rows], "next": None}


class UsageAPI:
    """``GET /api/v1/services/{service_id}/usage``"""

    @operation(
        "A service's usage: totals, this period, breakdowns, forecast, daily history",
        query=schemas.UsageQuery,
        response=schemas.UsageSummarySchema,
    )
    def on_get(self, req, resp, service_id, query):
        ctx = req.context
        return usage.summary(
            ctx.app, _service(req, service_id), days=query["days"], tz=ctx.timezone
        )


class CallsAPI:
    """``GET /api/v1/services/{service_id}/calls`` (mounted when the operator enables it)."""

    @operation(
        "Recent call records of a service, newest first (USE-4)",
        query=PageQuery,
        response=schemas.CallPage,
    )
    def on_get(self, req, resp, service_id, query):
        service = _service(req, service_id)
        return paginate(usage.calls(service.id), UsageEvent.id, query)


# -- staff intake ----------------------------------------------------------------------------


class StaffUsageAPI:
    """``POST /api/v1/staff/usage``: batches from the network or charging side (USE-7); the route
    needs ``can_post_usage``."""

    @operation(
        "Rate a batch of usage events; each event id is applied once",
        body=schemas.UsageBatchIn,
        response=schemas.BatchResultSchema,
        description="Idempotent by event id: a re-sent event answers `duplicate` and "
        "charges nothing. Each event names its service by `service_id` or "
        "by the operator's `service_external_id`. The whole batch is "
        "refused (422, errors by index) if any event is invalid, or older "
        "than `[retention] usage_events_days` when that is set.",
    )
    def on_post(self, req, resp, body):
        return intake.ingest(req.context, body["events"])


# -- portal pages -------------------------------------------------------------------------------


def _section(req) -> None:
    req.context.extra["section"] = "usage"


class UsagePage:
    """``GET /usage``: every live service's balances at a glance."""

    def on_get(self, req, resp):
        app, ctx = req.context.app, req.context
        _section(req)
        app.page(
            req,
            resp,
            "usage/overview.html",
            rows=usage.customer_totals(app, ctx.require_customer()),
        )


class ServiceUsagePage:
    """``GET /services/{service_id}/usage``: balances, breakdowns, chart and forecast."""

    def on_get(self, req, resp, service_id):
        app, ctx = req.context.app, req.context
        _section(req)
        service = _service(req, service_id)
        query = load(schemas.UsageQuery, {k: v for k, v in req.params.items() if k == "days"})
        chart = req.get_param("chart")
        if chart is not None and chart not in CHARTS:
            raise invalid(
                {"chart": [N_("Must be one of: %(choices)s.", choices=", ".join(CHARTS))]}
            )
        data = usage.summary(app, service, days=query["days"], tz=ctx.timezone)
        offered = applicable_charts(data)
        chart = chart or (offered[0] if offered else "data")
        fmt = Formatter(ctx.locale, ctx.timezone)
        app.page(
            req,
            resp,
            "usage/service.html",
            service=service,
            usage=data,
            days=query["days"],
            chart=chart,
            charts=offered,
            day_label=lambda iso: fmt.date(charts.day(iso), "EEE d MMM"),
            chart_svg=render_chart(app, fmt, data, chart, service) if offered else "",
            calls_enabled=calls_enabled(app),
        )


def applicable_charts(data: dict) -> list[str]:
    """The charts that mean something for this service: a type it has a balance of, or has
    used. A TV or a fixed line with neither gets no chart at all, not an empty one."""
    used = {k for d in data["history"]["items"] for k in CHARTS if d.get(k)}
    if any(d.get("charged") for d in data["history"]["items"]):
        used.add("monetary")
    held = {g["type"] for g in data["balances"]}
    return [c for c in CHARTS if c in used or c in held]


def render_chart(app, fmt: Formatter, data: dict, chart: str, service: Service):
    _ = app.translator.gettext
    unit = {"data": "bytes", "voice": "seconds", "sms": "messages"}.get(chart, service.currency)
    key = "charged" if chart == "monetary" else chart
    days = data["history"]["items"]
    if chart == "monetary":
        days = [{**d, "charged": d["charged"] + d["monetary"]} for d in days]

    def value(v: int) -> str:
        return fmt.quantity(v, unit)

    def when(iso: str, short: bool = False) -> str:
        return fmt.date(charts.day(iso), "d MMM" if short else "EEE d MMM")

    def label(total: int, peak_day: str, peak: int) -> str:
        return _(
            "Total %(total)s over %(days)d days; highest on %(day)s with %(peak)s.",
            total=value(total),
            days=len(days),
            day=when(peak_day) if peak_day else "-",
            peak=value(peak),
        )

    names = {
        "data": _("Data used per day"),
        "voice": _("Call time per day"),
        "sms": _("Texts sent per day"),
        "monetary": _("Credit spent per day"),
    }
    return charts.bar_chart(days, key, label, value, when, names[chart])


class CallsPage:
    """``GET /services/{service_id}/calls``: recent call records, when the operator shows them."""

    def on_get(self, req, resp, service_id):
        app = req.context.app
        _section(req)
        service = _service(req, service_id)
        page = paginate(usage.calls(service.id), UsageEvent.id, load(PageQuery, dict(req.params)))
        app.page(
            req,
            resp,
            "usage/calls.html",
            service=service,
            calls=page["items"],
            next_cursor=page["next"],
        )
