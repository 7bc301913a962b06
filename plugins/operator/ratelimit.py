"""Per-token rate limits on the operator API: requests a minute, counted where every worker
sees them (identity's shared counter storage), 429 with ``Retry-After`` when over.

A token made with its own ``rate_per_minute`` keeps it; the others take ``[operator]
token_rate``.
"""

from __future__ import annotations

import time

import limits
from limits.strategies import FixedWindowRateLimiter

from plugins.identity.public import storage_for, too_many
from plugins.operator.models import ServiceToken


class TokenLimits:
    def __init__(self, app):
        self.default = app.settings.plugin("operator")["token_rate"]
        self.limiter = FixedWindowRateLimiter(storage_for(app.settings.security.rate_limit_storage))

    def hit(self, row: ServiceToken) -> None:
        """Count one request of this token, or raise the 429."""
        item = limits.RateLimitItemPerMinute(row.rate_per_minute or self.default)
        if not self.limiter.hit(item, "service_token", str(row.id)):
            reset, _ = self.limiter.get_window_stats(item, "service_token", str(row.id))
            raise too_many(max(1, int(reset - time.time()) + 1))


def limiter(app) -> TokenLimits:
    return app.state.get(TokenLimits, lambda: TokenLimits(app))
