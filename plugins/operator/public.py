"""The operator plugin's public facade: what other plugins may use of it.

- ``upsert_customer``, ``upsert_contact``, ``upsert_site``, ``upsert_service``,
  ``upsert_product`` ``(ctx, external_id, values)``: the operator API's rules (they live in
  ``engine.upserts``, which the demo seed calls too), each one transaction, returning
  ``Upserted(row, change)`` with ``change`` "created", "updated" or "unchanged".
- ``service_action(ctx, external_id, action, values)`` (suspend, resume, cancel, expire,
  change-plan), same shape of answer.
- ``upsert_bucket``, ``adjust(ctx, external_id, values)``,
  ``expire(ctx, external_id)``: only while the usage plugin is enabled (import them
  from ``plugins.operator.buckets`` then; this facade does not, so it loads without usage).
"""

from __future__ import annotations

from engine.upserts import (
    Upserted,
    upsert_contact,
    upsert_customer,
    upsert_product,
    upsert_service,
    upsert_site,
)
from plugins.operator.actions import service_action

__all__ = [
    "Upserted",
    "service_action",
    "upsert_contact",
    "upsert_customer",
    "upsert_product",
    "upsert_service",
    "upsert_site",
]
