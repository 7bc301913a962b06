"""Buckets the operator's systems grant, adjust and expire (the operator API, issue 17).

``upsert`` grants a bucket by its external id (``engine.upserts``' rules: the operator API,
``portico import buckets`` and the demo seed all call it). ``adjust`` and ``expire`` lock the service
first, as rating does, so a change never races a usage batch and the ledger still nets:
a bucket's ``remaining`` is its ``initial`` plus the sum of its ledger rows.
"""

from __future__ import annotations

from engine import audit, upserts
from engine.db import lock_rows, locked_transaction, utcnow
from engine.errors import Problem, invalid
from engine.i18n import N_
from engine.models import Service
from plugins.usage.models import Bucket, LedgerEntry
from plugins.usage.rating import lock_services
from plugins.usage.service import unit_for

#: What a PUT may not change on a bucket that exists (adjust changes the amounts).
FIXED = ("type", "allowance")


def upsert(ctx, external_id: str, values: dict) -> upserts.Upserted:
    """Grant (or update the details of) the bucket with this external id; ``values`` as the
    operator API's ``OperatorBucketIn`` validates them (the service by
    ``service_external_id``). Amounts change only through ``adjust``."""

    def prepare(row, v):
        service = Service.get_or_none(Service.external_id == v.pop("service_external_id"))
        if service is None:
            raise invalid({"service_external_id": [N_("No such service.")]})
        if row is not None and row.service_id != service.id:
            raise invalid({"service_external_id": [N_("A bucket cannot move to another service.")]})
        return grant_columns(row, v, service)

    return upserts.upsert(ctx, Bucket, "bucket", external_id, values, prepare)


def grant_columns(row: Bucket | None, values: dict, service: Service) -> dict:
    """The columns of a granted bucket (``values``: type, allowance, name, source, scope,
    weight, renewable, expires_at); 422 for a change only ``adjust`` makes."""
    allowance = values.pop("allowance", None)
    if row is None:
        if allowance is None:
            raise invalid({"allowance": [N_("Missing data for required field.")]})
        values.update(
            service=service.id,
            initial=allowance,
            remaining=allowance,
            unit=unit_for(values["type"], service),
        )
        return values
    errors = {}
    if values.get("type", row.type) != row.type:
        errors["type"] = [N_("A bucket's type cannot change. Give it a new external id.")]
    if allowance is not None and allowance != row.initial:
        errors["allowance"] = [N_("Change the amounts with POST .../adjust.")]
    if errors:
        raise invalid(errors)
    values.pop("type", None)
    return values


def _locked(ctx, external_id: str) -> Bucket:
    """The bucket with this external id, its service locked then the bucket (rating's order)."""
    service_id = Bucket.select(Bucket.service).where(Bucket.external_id == external_id).scalar()
    if service_id is None:
        raise Problem(404, N_("No such bucket"), type="not-found")
    lock_services([service_id])
    return lock_rows(Bucket.select().where(Bucket.external_id == external_id)).get()


def adjust(ctx, external_id: str, values: dict) -> tuple[Bucket, bool]:
    """Set ``remaining`` and/or ``allowance`` (the bucket's ``initial``), with an
    ``adjustment`` ledger row of what keeps the ledger netting; ``reason`` is recorded.
    Returns (the bucket, whether it changed)."""
    with locked_transaction():
        row = _locked(ctx, external_id)
        initial = values.get("allowance", row.initial)
        remaining = values.get("remaining", row.remaining)
        if initial == row.initial and remaining == row.remaining:
            return row, False
        delta = (remaining - row.remaining) - (initial - row.initial)
        if delta:
            LedgerEntry.create(
                bucket=row.id,
                kind="adjustment",
                delta=delta,
                reference=values.get("reason", "")[:100] or "operator adjustment",
            )
        before = {"allowance": row.initial, "remaining": row.remaining}
        row.initial, row.remaining = initial, remaining
        row.save(only=[Bucket.initial, Bucket.remaining])
        audit.record(
            ctx,
            "bucket.adjusted",
            f"bucket:{row.id}",
            {
                "external_id": external_id,
                "before": before,
                "after": {"allowance": initial, "remaining": remaining},
                "ledger_delta": delta,
                "reason": values.get("reason", ""),
            },
            customer_id=row.service.customer_id,
        )
        return row, True


def expire(ctx, external_id: str) -> tuple[Bucket, bool]:
    """End the bucket now (usage no longer draws on it); an ended one stays as it is."""
    with locked_transaction():
        row = _locked(ctx, external_id)
        now = utcnow()
        if row.expires_at is not None and row.expires_at <= now:
            return row, False
        row.expires_at = now
        row.save(only=[Bucket.expires_at])
        audit.record(
            ctx,
            "bucket.expired",
            f"bucket:{row.id}",
            {"external_id": external_id},
            customer_id=row.service.customer_id,
        )
        return row, True
