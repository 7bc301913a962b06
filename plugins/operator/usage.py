"""``POST /api/v1/operator/usage`` (INT-3): only when the usage plugin is enabled, so an
operator without metered usage still has the rest of the operator API."""

from __future__ import annotations

import falcon

from engine.api import operation
from plugins.operator.resources import write_scope
from plugins.usage.public import BatchResultSchema, UsageBatchIn, ingest


class UsageAPI:
    """``POST /api/v1/operator/usage``: usage by the operator's service ids (INT-3)."""

    auth = "service"
    scope = "usage:write"

    @falcon.before(write_scope)
    @operation(
        "Rate a batch of usage events; each event id is applied once",
        body=UsageBatchIn,
        response=BatchResultSchema,
        description="Each event names its service by `service_external_id` (your id, "
        "e.g. the MSISDN) or Portico's `service_id`. A re-sent event id "
        "answers `duplicate` and charges nothing; the whole batch is "
        "refused (422, errors by index) if any event is invalid. Needs "
        "the `usage:write` scope.",
    )
    def on_post(self, req, resp, body):
        return ingest(req.context, body["events"])
