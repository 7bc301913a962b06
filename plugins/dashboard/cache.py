"""A short-lived, per-worker cache of each customer's dashboard (cards and alerts).

The dashboard asks every plugin for its cards and alerts: a dozen queries that
rarely change between two visits. An entry is kept for ``[dashboard]
cache_seconds`` and is stale as soon as the customer's activity log has a newer
event: every change writes an audit event (the house rule), so a purchase, a
payment, a dismissed alert or an edit in any worker shows on the next visit.
What changes without an audit event (usage rated from the network, the clock)
shows within ``cache_seconds``. The freshness check costs nothing for a signed-in
session: the identity plugin reads the customer's newest event id in the session's own
query (``ctx.extra["customer_version"]``); otherwise it is one index-only query.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from cachetools import TTLCache

from engine.db import Prepared
from engine.models import AuditEvent

_LATEST_CHANGE = Prepared(lambda customer_id: AuditEvent.latest_id(customer_id).tuples())


class DashboardCache:
    def __init__(self, seconds: float, size: int):
        self.enabled = seconds > 0 and size > 0
        # The wall clock, not the monotonic one, so tests move it with time-machine; a clock
        # step only makes an entry live longer or shorter once, and a change still refreshes it.
        self._entries: TTLCache[tuple[Any, ...], tuple[Any, Any]] = TTLCache(
            maxsize=max(size, 1), ttl=max(seconds, 0.001), timer=time.time
        )
        self._lock = threading.Lock()

    def get(self, app, ctx, build):
        """The cached payload for this viewer, or ``build()`` stored under the latest change."""
        if not self.enabled:
            return build()
        p = ctx.principal
        key = (ctx.customer_id, p.user_id, p.impersonated, ctx.locale, ctx.timezone)
        stamp = ctx.extra.get("customer_version")  # read with the session (identity plugin)
        if stamp is None:  # an API key or a staff view: the same question, asked on its own
            stamp = _LATEST_CHANGE.first(ctx.customer_id)[0] or 0
        with self._lock:
            hit = self._entries.get(key)
        if hit is not None and hit[0] == stamp:
            return hit[1]
        payload = build()
        with self._lock:
            self._entries[key] = (stamp, payload)
        return payload


def dashboard_cache(app) -> DashboardCache:
    """The app's dashboard cache, built once from ``[dashboard]``."""
    conf = app.settings.plugin("dashboard")
    return app.state.get(
        DashboardCache, lambda: DashboardCache(conf["cache_seconds"], conf["cache_size"])
    )
