"""The usage plugin's hooks: a service's balances and rating (USE).

Added when the plugin registers (``register_hookspecs``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict

from engine.hookspecs import hookspec

if TYPE_CHECKING:  # pragma: no cover - imports for annotations only
    from engine.app import Portico
    from engine.models import Service
    from engine.registry import Balance, Credit


class AutoTopup(TypedDict):
    """What ``auto_topup_status`` answers; amounts in minor units."""

    enabled: bool
    threshold: int
    amount: int
    currency: str


@hookspec(firstresult=True)
def service_balances(app: Portico, service: Service) -> list[Balance] | None:
    """Return the ``Balance`` rows of a service, in consumption order (USE-1).

    First result wins: the usage plugin answers from its buckets, a partner's
    adapter to an external charging system could answer instead.
    """


@hookspec(firstresult=True)
def credit_balance(app: Portico, service: Service, credit: Credit) -> object | None:
    """Add a ``Credit`` (a top-up or refund) to a service's balances; return the new bucket.

    First result wins. Must run inside the caller's transaction. The usage plugin answers
    with its ``Bucket`` row.
    """


@hookspec(firstresult=True)
def auto_topup_status(app: Portico, service: Service) -> AutoTopup | None:
    """Return the auto top-up state of a service's monetary credit (USE-6, TOP-3).

    ``{"enabled": bool, "threshold": int, "amount": int, "currency": str}`` in
    minor units, or ``None`` when no plugin manages auto top-ups. First result wins.
    """


@hookspec
def usage_rated(
    app: Portico, service: Service, before: dict[str, int], after: dict[str, int]
) -> None:
    """Called once per service per rated batch, inside the rating transaction.

    ``before`` and ``after`` map a balance type (data, voice, sms, mms,
    monetary) to its remaining total, e.g. for auto top-up to watch the credit.
    """


@hookspec
def balance_low(app: Portico, service: Service, balance: Balance, threshold: int) -> None:
    """Called once when a balance type falls below the customer's threshold.

    ``threshold`` is what ``balance_threshold`` answered (percent of the initial
    amount; minor units for monetary credit). ``balance`` is the total of that
    type (``id`` is None). Fired inside the rating transaction, once per
    crossing: it fires again only after the balance has gone back above the
    threshold (a top-up or a renewal).
    """
