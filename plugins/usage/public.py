"""The usage plugin's public facade: what other plugins may use of it.

Other plugins import usage only from here and name ``usage`` in their
``plugin_requires``. Anything not listed in ``__all__`` is private.

- ``Policy``: the deployment's rating rules; ``Policy.of(app).order_key(...)`` is the order
  in which balance buckets are used up (USE-3), for a plugin that shows or adds buckets.
"""
from __future__ import annotations

from plugins.usage.settings import Policy

__all__ = ["Policy"]
