"""The addons plugin's public facade: what other plugins may use of it.

Other plugins import addons only from here and name ``addons`` in their
``plugin_requires`` or ``plugin_optional``. Anything not listed in ``__all__`` is private.

- ``AddonProduct``, ``CATEGORIES``: the add-on catalogue's model and its categories, for
  the operator API's catalogue routes (INT-1), which upsert entries by external id.
- ``upsert_addon_product(ctx, external_id, values)``: an entry by the operator's external
  id (``engine.upserts``' rules).
- ``settle(app, addon_id, outcome, answer)``: an outside provisioner's answer for an add-on
  of the ``webhook`` provisioner (INT-6): ``outcome`` "active" or "failed"; ``answer`` may
  hold ``reference``, ``detail`` (set-up) or ``message`` (failure). Returns the add-on (None
  when there is none); 409 when it is not waiting for an answer.
"""

from __future__ import annotations

from plugins.addons.models import CATEGORIES, AddonProduct, ServiceAddon
from plugins.addons.service import settle
from plugins.addons.service import upsert_product as upsert_addon_product

__all__ = ["CATEGORIES", "AddonProduct", "ServiceAddon", "settle", "upsert_addon_product"]
