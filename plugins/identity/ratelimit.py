"""Rate limits on login, password reset, 2FA codes and API-key creation (the ``limits`` library).

Counters live where every web worker and host sees them: in the database
(default), or in Redis when ``security.rate_limit_storage`` is a ``redis://``
URL. Never in process memory. Limits are operator settings in ``[identity]``.
While Redis is unreachable the counters are kept in the database instead
(``FallbackStorage``): an outage neither fails the request nor lifts the limit.
"""

from __future__ import annotations

import logging
import time

import limits
import peewee
from limits.storage import Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter

from engine.errors import Problem
from engine.i18n import N_
from plugins.identity.models import RateCounter

log = logging.getLogger("portico.identity")


class DatabaseStorage(Storage):
    """A ``limits`` storage on the Portico database: one upserted row per window."""

    STORAGE_SCHEME = ["portico+db"]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options):
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)

    @property
    def base_exceptions(self):
        return peewee.DatabaseError

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        expired = RateCounter.expires_at <= now
        # One statement, so concurrent hits from many workers never lose a count.
        query = (
            RateCounter.insert(key=key, count=amount, expires_at=now + expiry)
            .on_conflict(
                conflict_target=[RateCounter.key],
                update={
                    RateCounter.count: peewee.Case(
                        None, [(expired, amount)], RateCounter.count + amount
                    ),
                    RateCounter.expires_at: peewee.Case(
                        None, [(expired, now + expiry)], RateCounter.expires_at
                    ),
                },
            )
            .returning(RateCounter.count)
        )
        return list(query.tuples().execute())[0][0]

    def get(self, key: str) -> int:
        row = RateCounter.get_or_none(RateCounter.key == key)
        return row.count if row is not None and row.expires_at > time.time() else 0

    def get_expiry(self, key: str) -> float:
        row = RateCounter.get_or_none(RateCounter.key == key)
        return row.expires_at if row is not None else time.time()

    def check(self) -> bool:
        return True

    def reset(self) -> int | None:
        return RateCounter.delete().execute()

    def clear(self, key: str) -> None:
        RateCounter.delete().where(RateCounter.key == key).execute()


def purge_expired() -> int:
    return RateCounter.delete().where(RateCounter.expires_at < time.time()).execute()


class FallbackStorage(Storage):
    """Counters in Redis; in the database while Redis does not answer."""

    STORAGE_SCHEME = ["portico+fallback"]

    def __init__(self, url: str, **options):
        super().__init__(url, wrap_exceptions=False, **options)
        # Short time-outs: a hung Redis must not hold a login or a payment for long.
        self.redis = storage_from_string(
            url, key_prefix="portico", socket_timeout=2, socket_connect_timeout=2
        )
        self.database = DatabaseStorage()

    @property
    def base_exceptions(self):
        return Exception

    def _call(self, name: str, *args, **kwargs):
        try:
            return getattr(self.redis, name)(*args, **kwargs)
        except self.redis.base_exceptions as exc:
            log.warning("rate-limit storage unavailable, counting in the database: %s", exc)
            return getattr(self.database, name)(*args, **kwargs)

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        return self._call("incr", key, expiry, amount=amount)

    def get(self, key: str) -> int:
        return self._call("get", key)

    def get_expiry(self, key: str) -> float:
        return self._call("get_expiry", key)

    def check(self) -> bool:
        return self._call("check")

    def reset(self) -> int | None:
        return self._call("reset")

    def clear(self, key: str) -> None:
        return self._call("clear", key)


def storage_for(url: str) -> Storage:
    """``security.rate_limit_storage``: ``database``, or a ``redis://`` URL (with the fallback)."""
    if url.startswith(("redis://", "rediss://")):
        return FallbackStorage(url)
    return DatabaseStorage()


class RateLimits:
    """The app's limiter: ``app.rate_limits.hit("login", ip)`` raises 429 when over."""

    def __init__(self, app):
        self.storage = storage = storage_for(app.settings.security.rate_limit_storage)
        self.limiter = FixedWindowRateLimiter(storage)
        conf = app.settings.plugin("identity")
        self.items = {
            name: limits.parse(conf[name + "_rate"])
            for name in ("login", "login_account", "reset", "otp", "api_key")
        }

    def allowed(self, name: str, *identifiers: str) -> bool:
        """Count one hit; False when the limit is used up for this window."""
        return self.limiter.hit(self.items[name], name, *identifiers)

    def retry_after(self, name: str, *identifiers: str) -> int:
        reset, _ = self.limiter.get_window_stats(self.items[name], name, *identifiers)
        return max(1, int(reset - time.time()) + 1)

    def hit(self, name: str, *identifiers: str) -> None:
        """Count one hit, or answer 429 with ``Retry-After`` when over the limit."""
        if not self.allowed(name, *identifiers):
            raise too_many(self.retry_after(name, *identifiers))


def too_many(retry_after: int) -> Problem:
    minutes = max(1, (retry_after + 59) // 60)
    return Problem(
        429,
        N_("Too many attempts"),
        (
            N_("Please wait a minute and try again.")
            if minutes == 1
            else N_("Please wait %(minutes)s minutes and try again.", minutes=minutes)
        ),
        headers={"Retry-After": str(retry_after)},
    )


def limiter(app) -> RateLimits:
    """The app's ``RateLimits``, built once."""
    return app.state.get(RateLimits, lambda: RateLimits(app))
