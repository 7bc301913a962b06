"""Money: amounts are integer minor units everywhere; this is the one place that converts
and shows them.

``to_major(1050, "GBP")`` is ``Decimal("10.50")``; ``to_minor(Decimal("10.5"), "GBP")`` is
1050; ``plain`` writes major units without a symbol (CSV, form fields); ``display`` formats
for a reader's locale ("£10.50"); ``as_json`` is the API's ``{"amount", "currency"}`` shape.
A currency's number of decimal places comes from CLDR (0 for JPY, 3 for BHD).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from babel import Locale
from babel import numbers as babel_numbers


def digits(currency: str) -> int:
    """How many minor-unit digits ``currency`` has (2 for GBP, 0 for JPY)."""
    return int(babel_numbers.get_currency_precision(currency))


def to_major(amount: int, currency: str) -> Decimal:
    """Minor units as an exact decimal in major units: 1050 GBP → Decimal("10.50")."""
    return Decimal(amount).scaleb(-digits(currency))


def to_minor(value: Decimal, currency: str) -> int:
    """Major units as typed (12.50) to minor units (1250)."""
    return int(value.scaleb(digits(currency)))


def plain(amount: int, currency: str) -> str:
    """Major units without a symbol, "-12.50": for CSV files and form fields."""
    return str(to_major(amount, currency))


def display(amount: int, currency: str, locale: Locale | str) -> str:
    """Minor units as money for a reader: ``display(1050, "GBP", "en")`` → "£10.50"."""
    return str(babel_numbers.format_currency(to_major(amount, currency), currency, locale=locale))


def as_json(amount: int, currency: str) -> dict[str, Any]:
    """The API's money object: ``{"amount": 1050, "currency": "GBP"}``."""
    return {"amount": int(amount), "currency": currency}
