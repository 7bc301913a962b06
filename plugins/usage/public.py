"""The usage plugin's public facade: what other plugins may use of it.

Other plugins import usage only from here and name ``usage`` in their
``plugin_requires``. Anything not listed in ``__all__`` is private.

- ``Policy``: the deployment's rating rules; ``Policy.of(app).order_key(...)`` is the order
  in which balance buckets are used up (USE-3), for a plugin that shows or adds buckets.
- ``ingest(ctx, events)``: rate a batch of usage events validated with ``UsageBatchIn``
  (each names its service by ``service_id`` or ``service_external_id``, INT-3), once per
  event id, and record it; returns the ``BatchResultSchema`` shape. 422 if any names no
  service, too many events, nothing rated.
- ``UsageEventIn``: one event of such a batch (for a bulk import that reads them row by row).
- ``Bucket``, ``BALANCE_TYPES``, ``SOURCES``, ``SCOPES``: the bucket model and its values,
  for the operator API's bucket routes.
- ``upsert_bucket(ctx, external_id, values)``, ``adjust_bucket(ctx, external_id, values)``,
  ``expire_bucket(ctx, external_id)``: buckets granted by the operator's systems
  (``plugins.usage.grants``); adjust and expire lock as rating does and keep the ledger
  netting.
"""

from __future__ import annotations

from plugins.usage.grants import adjust as adjust_bucket
from plugins.usage.grants import expire as expire_bucket
from plugins.usage.grants import upsert as upsert_bucket
from plugins.usage.intake import ingest
from plugins.usage.models import BALANCE_TYPES, SCOPES, SOURCES, Bucket
from plugins.usage.schemas import BatchResultSchema, UsageBatchIn, UsageEventIn
from plugins.usage.settings import Policy

__all__ = [
    "BALANCE_TYPES",
    "SCOPES",
    "SOURCES",
    "BatchResultSchema",
    "Bucket",
    "Policy",
    "UsageBatchIn",
    "UsageEventIn",
    "adjust_bucket",
    "expire_bucket",
    "ingest",
    "upsert_bucket",
]
