"""The addons plugin's public facade: what other plugins may use of it.

Other plugins import addons only from here and name ``addons`` in their
``plugin_requires`` or ``plugin_optional``. Anything not listed in ``__all__`` is private.

- ``AddonProduct``, ``CATEGORIES``: the add-on catalogue's model and its categories, for
  the operator API's catalogue routes (INT-1), which upsert entries by external id.
"""

from __future__ import annotations

from plugins.addons.models import CATEGORIES, AddonProduct

__all__ = ["CATEGORIES", "AddonProduct"]
