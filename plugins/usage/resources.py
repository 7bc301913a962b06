"""Usage views (portal and API) and the staff usage intake."""

from __future__ import annotations

from datetime import date
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import falcon
from marshmallow import ValidationError

from engine import csvexport
from engine.api import PageQuery, load, operation, paginate, paginate_dated
from engine.context import get_owned
from engine.db import utcnow
from engine.errors import invalid
from engine.i18n import N_
from engine.models import Service
from engine.theming import Formatter
from plugins.usage import charts, history, intake, retention, schemas
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


def usage_range(
    req, service: Service, query: dict, days: int | None = None
) -> tuple[date, date, ZoneInfo, dict]:
    """(first day, last day, the customer's zone, field errors) of the range ``query`` asks for."""
    zone = usage.zone_of(req.context.timezone)
    now = utcnow()
    start, end = history.resolve(
        usage.period_start_of(service, zone, now),
        zone,
        now,
        query.get("start"),
        query.get("end"),
        days,
    )
    return start, end, zone, history.range_errors(start, end)


def _checked_range(req, service: Service, query: dict) -> tuple[date, date, ZoneInfo]:
    start, end, zone, errors = usage_range(req, service, query)
    if errors:
        raise invalid(errors)
    return start, end, zone


class UsageEventsAPI:
    """``GET /api/v1/services/{service_id}/usage/events``"""

    @operation(
        "A service's usage events for a range of days, newest first (USE-8)",
        query=schemas.UsageEventQuery,
        response=schemas.UsageEventPage,
        description=schemas.RANGE_NOTE
        + " Paged with `cursor`; the same events as CSV at `/usage/events.csv`. "
        "An ended (expired or cancelled) service's history stays readable.",
    )
    def on_get(self, req, resp, service_id, query):
        service = _service(req, service_id)
        start, end, zone = _checked_range(req, service, query)
        page = paginate_dated(
            history.in_range(service.id, start, end, zone, query["kind"]),
            UsageEvent.occurred_at,
            UsageEvent.id,
            query,
        )
        for e in page["items"]:
            e.unit = history.unit_of(e, service)
        return {"start": start, "end": end, **page}


class UsageEventsCsvAPI:
    """``GET /api/v1/services/{service_id}/usage/events.csv``"""

    @operation(
        "A service's usage events for a range of days as CSV, newest first (USE-8)",
        query=schemas.UsageEventFilter,
        description="Answers `text/csv` with the columns "
        + ", ".join(f"`{c}`" for c in history.CSV_COLUMNS)
        + "; times in your time zone with their offset, `charged` in major units. "
        + schemas.RANGE_NOTE,
    )
    def on_get(self, req, resp, service_id, query):
        service = _service(req, service_id)
        start, end, zone = _checked_range(req, service, query)
        send_csv(resp, service, start, end, zone, query["kind"])


def send_csv(resp, service: Service, start: date, end: date, zone: ZoneInfo, kind=None) -> None:
    csvexport.send(
        resp,
        history.csv_name(service, start, end),
        history.csv_rows(service, start, end, zone, kind),
    )


class UsageHistoryAPI:
    """``GET /api/v1/services/{service_id}/usage/history``"""

    @operation(
        "A service's usage per day for a range of days (USE-8)",
        query=schemas.UsageRange,
        response=schemas.UsageHistorySchema,
        description=schemas.RANGE_NOTE + " Every day of the range is listed, days without use "
        "with zeros.",
    )
    def on_get(self, req, resp, service_id, query):
        service = _service(req, service_id)
        start, end, zone = _checked_range(req, service, query)
        return {"start": start, "end": end, "items": history.daily(service.id, start, end, zone)}


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


RANGE_PARAMS = ("from", "to", "days")


def page_query(req) -> tuple[dict, dict, dict]:
    """(query, field errors, the range as typed) from the usage page's query string."""
    typed = {
        k: v
        for k, v in req.params.items()
        if k in (*RANGE_PARAMS, "limit", "cursor") and isinstance(v, str) and v
    }
    try:
        return schemas.UsagePageQuery().load(typed), {}, typed
    except ValidationError as exc:
        return {}, exc.normalized_messages(), typed


class ServiceUsagePage:
    """``GET /services/{service_id}/usage``: balances, breakdowns, forecast, and the usage history
    of a range of days (USE-8): per-day chart and table, the events newest first, a CSV."""

    def on_get(self, req, resp, service_id):
        app, ctx = req.context.app, req.context
        _section(req)
        service = _service(req, service_id)
        chart = req.get_param("chart")
        if chart is not None and chart not in CHARTS:
            raise invalid(
                {"chart": [N_("Must be one of: %(choices)s.", choices=", ".join(CHARTS))]}
            )
        query, errors, typed = page_query(req)
        data = usage.summary(app, service, tz=ctx.timezone)
        start = end = None
        events: dict = {"items": [], "next": None}
        if not errors:
            start, end, zone, errors = usage_range(req, service, query, query["days"])
        if not errors:
            data["history"] = {
                "days": (end - start).days + 1,
                "items": history.daily(service.id, start, end, zone),
            }
            events = paginate_dated(
                history.in_range(service.id, start, end, zone),
                UsageEvent.occurred_at,
                UsageEvent.id,
                query,
            )
            for e in events["items"]:
                e.unit = history.unit_of(e, service)
        offered = applicable_charts(data)
        chart = chart or (offered[0] if offered else "data")
        fmt = Formatter(ctx.locale, ctx.timezone)
        shown = {k: v for k, v in typed.items() if k in RANGE_PARAMS}
        horizon = retention.horizon(app)
        app.page(
            req,
            resp,
            "usage/service.html",
            service=service,
            usage=data,
            start=start,
            end=end,
            days=query.get("days") if not (query.get("start") or query.get("end")) else None,
            typed=shown,
            range_query=urlencode(shown),
            csv_query=urlencode({"from": start, "to": end}) if start else "",
            errors=errors,
            max_days=history.MAX_DAYS,
            archived_before=horizon if horizon and start and start <= _day(horizon, ctx) else None,
            events=events["items"],
            next_cursor=events["next"],
            chart=chart,
            charts=offered,
            day_label=lambda iso: fmt.date(charts.day(iso), "EEE d MMM"),
            chart_svg=render_chart(app, fmt, data, chart, service)
            if offered and not errors
            else "",
            calls_enabled=calls_enabled(app),
            status=422 if errors else 200,
        )


def _day(moment, ctx) -> date:
    """The customer's day of ``moment`` (events before the retention's horizon may be gone)."""
    return moment.astimezone(usage.zone_of(ctx.timezone)).date()


class ServiceUsageCsvPage:
    """``GET /services/{service_id}/usage.csv``: the page's range of events as a spreadsheet."""

    def on_get(self, req, resp, service_id):
        _section(req)
        service = _service(req, service_id)
        query, errors, _typed = page_query(req)
        if not errors:
            start, end, zone, errors = usage_range(req, service, query, query["days"])
        if errors:
            raise falcon.HTTPSeeOther(f"/services/{service.id}/usage?" + req.query_string)
        send_csv(resp, service, start, end, zone)


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
