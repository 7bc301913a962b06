"""Taking a batch of usage in (USE-7, INT-3), from the staff API or the operator API.

An event names its service by Portico's id (``service_id``) or by the operator's own id for it
(``service_external_id``, e.g. the MSISDN). Either way an event id is rated once.
"""

from __future__ import annotations

from engine import audit
from engine.db import locked_transaction
from engine.errors import invalid
from engine.i18n import N_
from engine.models import Service
from plugins.usage.rating import UsageIn, chunks, rate, unknown_services
from plugins.usage.retention import too_old
from plugins.usage.settings import settings


def service_ids(external_ids: set[str]) -> dict[str, int]:
    """Portico's service id for each of the operator's ids that names a service."""
    found: dict[str, int] = {}
    for part in chunks(sorted(external_ids)):
        found.update(
            Service.select(Service.external_id, Service.id)
            .where(Service.external_id.in_(part))
            .tuples()
        )
    return found


def resolve(app, events: list[dict]) -> list[dict]:
    """The events with every service as a ``service_id``; 422 (errors by index) if any names
    no service or is older than retention keeps, so a batch is applied whole or not at all."""
    by_external = service_ids(
        {e["service_external_id"] for e in events if "service_external_id" in e}
    )
    unknown = unknown_services({e["service_id"] for e in events if "service_id" in e})
    errors, out = {}, []
    for index, event in enumerate(events):
        event = dict(event)
        external = event.pop("service_external_id", None)
        if external is not None:
            if external not in by_external:
                errors[str(index)] = {"service_external_id": [N_("No such service.")]}
                continue
            event["service_id"] = by_external[external]
        elif event["service_id"] in unknown:
            errors[str(index)] = {"service_id": [N_("No such service.")]}
            continue
        if why := too_old(app, event["occurred_at"]):
            errors[str(index)] = {"occurred_at": [why]}
            continue
        out.append(event)
    if errors:
        raise invalid({"events": errors})
    return out


def ingest(ctx, events: list[dict]) -> dict:
    """Rate a validated batch (``UsageBatchIn``) and record it; returns the batch result."""
    limit = settings(ctx.app)["max_batch"]
    if len(events) > limit:
        raise invalid({"events": [N_("At most %(limit)s events per batch.", limit=limit)]})
    resolved = resolve(ctx.app, events)
    with locked_transaction():
        outcomes = rate(ctx.app, [UsageIn(**e) for e in resolved])
        result = batch_result(outcomes)
        audit.record(
            ctx,
            "usage.batch_rated",
            "usage",
            {"rated": result["rated"], "duplicates": result["duplicates"]},
        )
    return result


def batch_result(outcomes) -> dict:
    return {
        "rated": sum(o.status == "rated" for o in outcomes),
        "duplicates": sum(o.status == "duplicate" for o in outcomes),
        "results": outcomes,
    }
