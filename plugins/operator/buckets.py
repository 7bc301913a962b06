"""Buckets through the operator API (issue 17), while the usage plugin is enabled:
``PUT``/``GET /api/v1/operator/buckets/{external_id}`` grants a bucket to a service (by the
service's external id), ``POST .../adjust`` changes its amounts with a ledger row,
``POST .../expire`` ends it, and the list syncs by ``updated_since``."""

from __future__ import annotations

import falcon
from marshmallow import Schema, fields, validate

from engine.api import AwareDateTime, operation, page_schema
from engine.errors import invalid
from engine.i18n import N_
from engine.models import Service
from plugins.operator.resources import _external_id, _pair, write_scope
from plugins.operator.schemas import ExternalId, OperatorSynced, text
from plugins.operator.service import UNCHANGED, UPDATED, Upserted, _upsert, changed_since
from plugins.usage.public import (
    BALANCE_TYPES,
    SCOPES,
    SOURCES,
    Bucket,
    adjust_bucket,
    expire_bucket,
    grant_columns,
)

#: The largest amount: 2**53 - 1, exact in every JSON reader (a petabyte is 2**50 bytes).
MAX_AMOUNT = 2**53 - 1
AMOUNT = validate.Range(0, MAX_AMOUNT)


class OperatorBucketIn(Schema):
    service_external_id = ExternalId(required=True, metadata={"example": "447700900123"})
    type = fields.String(
        required=True, validate=validate.OneOf(BALANCE_TYPES), metadata={"example": "data"}
    )
    allowance = fields.Integer(
        strict=True,
        validate=AMOUNT,
        metadata={
            "example": 21474836480,
            "description": "bytes, seconds, messages or minor units; required when new "
            "(the bucket starts full); change it later with `adjust`",
        },
    )
    name = text(0, 100, "20 GB data")
    source = fields.String(validate=validate.OneOf(SOURCES), metadata={"example": "plan"})
    scope = fields.String(validate=validate.OneOf(SCOPES), metadata={"example": "any"})
    weight = fields.Integer(
        strict=True,
        validate=validate.Range(0, 1000),
        metadata={"example": 30, "description": "lower is used first (10 promo, 30 plan)"},
    )
    renewable = fields.Boolean(metadata={"description": "refilled at each renewal"})
    expires_at = AwareDateTime(allow_none=True)


class BucketAdjustIn(Schema):
    remaining = fields.Integer(strict=True, validate=AMOUNT, metadata={"example": 1073741824})
    allowance = fields.Integer(strict=True, validate=AMOUNT, metadata={"example": 32212254720})
    reason = text(0, 100, "goodwill after an outage")


class OperatorBucketOut(OperatorSynced):
    service_external_id = fields.Function(lambda row: row.service.external_id, allow_none=True)
    type = fields.String()
    name = fields.String()
    source = fields.String()
    scope = fields.String()
    weight = fields.Integer()
    allowance = fields.Integer(attribute="initial")
    remaining = fields.Integer()
    unit = fields.String()
    renewable = fields.Boolean()
    expires_at = fields.DateTime(allow_none=True)


BucketPage = page_schema(OperatorBucketOut, "OperatorBucketPage")


def upsert_bucket(ctx, external_id: str, values: dict) -> Upserted:
    """Grant (or update the details of) the bucket with this external id; ``values``
    validated with ``OperatorBucketIn``. Amounts change only through ``adjust``."""

    def prepare(row, v):
        service = Service.get_or_none(Service.external_id == v.pop("service_external_id"))
        if service is None:
            raise invalid({"service_external_id": [N_("No such service.")]})
        if row is not None and row.service_id != service.id:
            raise invalid({"service_external_id": [N_("A bucket cannot move to another service.")]})
        return grant_columns(row, v, service)

    return _upsert(ctx, Bucket, "bucket", external_id, values, prepare)


def adjust(ctx, external_id: str, values: dict) -> Upserted:
    """Set a bucket's ``remaining`` and/or ``allowance`` (a ledger row keeps it netting)."""
    row, changed = adjust_bucket(ctx, external_id, values)
    return Upserted(row, UPDATED if changed else UNCHANGED)


def expire(ctx, external_id: str) -> Upserted:
    row, changed = expire_bucket(ctx, external_id)
    return Upserted(row, UPDATED if changed else UNCHANGED)


def _answer(done: Upserted):
    row = changed_since(Bucket).where(Bucket.id == done.row.id).get()
    row.change = done.change
    return row


class BucketAdjustAPI:
    """``POST /api/v1/operator/buckets/{external_id}/adjust``."""

    auth = "service"
    scope = "balances:write"

    @falcon.before(write_scope)
    @operation(
        "Set a bucket's remaining amount or allowance",
        body=BucketAdjustIn,
        response=OperatorBucketOut,
        description="Sets `remaining` and/or `allowance`; the difference is written to the "
        "bucket's ledger as an `adjustment` (with `reason`), so the ledger still nets. The "
        "same values again answer `\"change\": \"unchanged\"`. Needs `balances:write`.",
    )
    def on_post(self, req, resp, external_id, body):
        return _answer(adjust(req.context, _external_id(external_id), body))


class BucketExpireAPI:
    """``POST /api/v1/operator/buckets/{external_id}/expire``."""

    auth = "service"
    scope = "balances:write"

    @falcon.before(write_scope)
    @operation(
        "End a bucket now",
        response=OperatorBucketOut,
        description="Usage no longer draws on it. An ended bucket answers "
        "`\"change\": \"unchanged\"`. Needs the `balances:write` scope.",
    )
    def on_post(self, req, resp, external_id):
        return _answer(expire(req.context, _external_id(external_id)))


BUCKETS = _pair(
    Bucket,
    "balances:write",
    upsert_bucket,
    "bucket",
    OperatorBucketOut,
    OperatorBucketIn,
    BucketPage,
    put_description="Grants a bucket to the service `service_external_id` (it starts full: "
    "`remaining` = `allowance`), or updates its name, source, scope, weight, renewal and "
    "expiry; amounts change only with `adjust` (422 here). Idempotent: the same body again "
    "answers `\"change\": \"unchanged\"`. Needs the `balances:write` scope.",
)
