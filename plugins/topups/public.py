"""The topups plugin's public facade: what other plugins may use of it.

Other plugins import topups only from here and name ``topups`` in their
``plugin_requires`` or ``plugin_optional``. Anything not listed in ``__all__`` is private.

- ``TopupProduct``, ``KINDS``: the top-up catalogue's model and its kinds of balance, for
  the operator API's catalogue routes (INT-1), which upsert entries by external id.
- ``check_product(values)``: the cross-field rules of an entry as it would be saved (a
  custom amount is monetary and bounded, a fixed one has a quantity and a price); raises
  a 422 with field messages.
"""

from __future__ import annotations

from plugins.topups.models import KINDS, TopupProduct
from plugins.topups.service import check_product

__all__ = ["KINDS", "TopupProduct", "check_product"]
