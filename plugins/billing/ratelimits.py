"""Rate limits on paying and adding cards: a payment form must not become a card-testing tool.

Counters live where the identity plugin keeps its own (the database, or Redis
when ``security.rate_limit_storage`` says so, with the database while Redis is down), so
every web worker sees them.
Without the identity plugin nobody can sign in, and only guest links are left:
they are then not limited here (the log says so once).
"""

from __future__ import annotations

import logging
import time

import limits
from limits.strategies import FixedWindowRateLimiter

log = logging.getLogger("portico.billing")


class PaymentLimits:
    def __init__(self, app) -> None:
        self.limiter: FixedWindowRateLimiter | None = None
        if "identity" not in app.plugins.enabled:
            log.warning("identity plugin disabled: payment attempts are not rate-limited")
            return
        from plugins.identity.public import storage_for

        self.limiter = FixedWindowRateLimiter(storage_for(app.settings.security.rate_limit_storage))
        conf = app.settings.plugin("billing")
        self.items = {
            "pay": limits.parse(conf.pay_rate),
            "card": limits.parse(conf.card_rate),
            "pay_account": limits.parse(conf.pay_account_rate),
        }

    def hit(self, name: str, *identifiers: str) -> None:
        from plugins.identity.public import too_many

        if self.limiter is None:
            return
        item = self.items[name]
        if not self.limiter.hit(item, "billing", name, *identifiers):
            reset, _ = self.limiter.get_window_stats(item, "billing", name, *identifiers)
            raise too_many(max(1, int(reset - time.time()) + 1))


def hit(app, name: str, *identifiers) -> None:
    """Count one payment attempt (``"pay"``) or card setup (``"card"``); 429 when over."""
    payment_limits = app.state.get(PaymentLimits, lambda: PaymentLimits(app))
    payment_limits.hit(name, *(str(i) for i in identifiers))


def hit_service(app, service) -> None:
    """Count a payment for a service (a top-up, an add-on): the ``pay_rate`` is per service,
    under a wider ``pay_account_rate`` per customer, so each of many lines can be paid for."""
    hit(app, "pay", "service", service.id)
    hit(app, "pay_account", "customer", service.customer_id)
