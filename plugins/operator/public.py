"""The operator plugin's public facade: what other plugins (the demo seed, a bulk import)
may use of it.

- ``upsert_customer``, ``upsert_contact``, ``upsert_site``, ``upsert_service``
  ``(ctx, external_id, values)``: the operator API's rules, each one transaction, returning
  ``Upserted(row, change)`` with ``change`` "created", "updated" or "unchanged".
"""

from __future__ import annotations

from plugins.operator.service import (
    Upserted,
    upsert_contact,
    upsert_customer,
    upsert_service,
    upsert_site,
)

__all__ = ["Upserted", "upsert_contact", "upsert_customer", "upsert_service", "upsert_site"]
