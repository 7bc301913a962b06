"""The topups plugin's public facade: what other plugins may use of it.

Other plugins import topups only from here and name ``topups`` in their
``plugin_requires`` or ``plugin_optional``. Anything not listed in ``__all__`` is private.

- ``TopupProduct``, ``KINDS``: the top-up catalogue's model and its kinds of balance, for
  the operator API's catalogue routes (INT-1), which upsert entries by external id.
- ``upsert_topup_product(ctx, external_id, values)``: an entry by the operator's external
  id (``engine.upserts``' rules, with the entry's own: a custom amount is monetary and
  bounded, a fixed one has a quantity and a price; 422 with field messages).
"""

from __future__ import annotations

from plugins.topups.models import KINDS, TopupProduct
from plugins.topups.service import upsert_product as upsert_topup_product

__all__ = ["KINDS", "TopupProduct", "upsert_topup_product"]
