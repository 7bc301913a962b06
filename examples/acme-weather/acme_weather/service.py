"""The rules both faces (portal page and JSON API) call: read, refresh, queue a refresh."""

from __future__ import annotations

import hashlib
from datetime import date, timedelta

from engine import audit, db
from engine.context import owned
from engine.i18n import N_
from engine.models import Site

from acme_weather import NAME
from acme_weather.models import Forecast


SUMMARIES = (N_("sunny"), N_("partly cloudy"), N_("cloudy"), N_("showers"), N_("rain"), N_("windy"))


def settings(app):
    """Our validated ``[acme_weather]`` table."""
    return app.settings.plugin(NAME)


def fetch(app, site: Site, day: date) -> dict:
    """The forecast at ``site`` on ``day``.

    NOTE: the sample source derives it from the postcode and the date, so the
    example runs without network access. A real plugin calls its provider here,
    with ``settings(app).api_key``, from the background task (never in a request).
    """
    digest = hashlib.sha256(f"{site.postcode}|{site.city}|{day.isoformat()}".encode()).digest()
    low = 2 + digest[1] % 12
    return {
        "summary": SUMMARIES[digest[0] % len(SUMMARIES)],
        "low_c": low,
        "high_c": low + 3 + digest[2] % 8,
    }


def refresh(app, customer_id: int) -> int:
    """Store the next ``days`` days for each of the customer's sites; returns rows written."""
    today = db.utcnow().date()
    written = 0
    with db.database.atomic():
        for site in owned(Site, customer_id):
            for offset in range(settings(app).days):
                day = today + timedelta(days=offset)
                (
                    Forecast.insert(
                        customer=customer_id,
                        site=site.id,
                        day=day,
                        fetched_at=db.utcnow(),
                        **fetch(app, site, day),
                    )
                    .on_conflict(
                        conflict_target=[Forecast.site, Forecast.day],
                        preserve=[
                            Forecast.summary,
                            Forecast.low_c,
                            Forecast.high_c,
                            Forecast.fetched_at,
                        ],
                    )
                    .execute()
                )
                written += 1
        Forecast.delete().where(Forecast.customer == customer_id, Forecast.day < today).execute()
    return written


def request_refresh(ctx) -> str:
    """Queue a refresh for the signed-in customer; returns the job id.

    The job goes into the outbox in the same transaction as the audit event, so
    both happen or neither does, even if the broker is down.
    """
    app, customer_id = ctx.app, ctx.require_customer()
    with db.database.atomic():
        from acme_weather import tasks  # lazily: tasks imports this module

        job = app.tasks.enqueue(tasks.refresh_forecasts, customer_id)
        audit.record(ctx, "acme-weather.refresh_requested", f"customer:{customer_id}", {"job": job})
    return job


def _temperature(celsius: int, unit: str) -> int:
    return round(celsius * 9 / 5 + 32) if unit == "F" else celsius


def forecasts_for(app, customer_id: int, site_id: int | None = None) -> list[dict]:
    """The customer's sites, each with its upcoming days (two queries, whatever the count)."""
    unit = "F" if settings(app).units == "imperial" else "C"
    today = db.utcnow().date()
    sites = owned(Site, customer_id).order_by(Site.id)
    if site_id is not None:
        sites = sites.where(Site.id == site_id)
    days: dict[int, list[dict]] = {}
    rows = (
        owned(Forecast, customer_id)
        .where(Forecast.day >= today)
        .order_by(Forecast.site, Forecast.day)
    )
    if site_id is not None:
        rows = rows.where(Forecast.site == site_id)
    for row in rows:
        days.setdefault(row.site_id, []).append(
            {
                "date": row.day,
                "summary": row.summary,
                "unit": unit,
                "high": _temperature(row.high_c, unit),
                "low": _temperature(row.low_c, unit),
            }
        )
    return [
        {"id": s.id, "label": s.label or s.line1, "city": s.city, "days": days.get(s.id, [])}
        for s in sites
    ]


def today(app, customer_id: int | None) -> list[dict]:
    """Today's line per site, for the dashboard card."""
    if customer_id is None:
        return []
    return [
        {"label": s["label"], **{k: v for k, v in s["days"][0].items() if k != "date"}}
        for s in forecasts_for(app, customer_id)
        if s["days"]
    ]
