"""How customers reach support (SUP-1): the ``[support]`` settings as pages and the API show them.

The settings themselves (validated) are ``engine.settings.SupportSettings``; this module turns
them into what a reader needs: a ``tel:`` link, opening hours with the weekdays in the
reader's language, and whether anything is set at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import phonenumbers
from babel import Locale
from babel.dates import get_day_names

from engine.i18n import N_
from engine.settings import WEEKDAYS

CLOSED = N_("Closed")


def tel_uri(phone: str) -> str:
    """``+44 20 7946 0000`` → ``tel:+442079460000`` (RFC 3966, E.164); "" when unset."""
    if not phone:
        return ""
    try:
        number = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException:  # validated at start-up; never on a page
        return ""
    return "tel:" + phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def configured(support: Mapping[str, Any]) -> bool:
    """Whether the operator set any way to reach support."""
    return bool(support["phone"] or support["email"] or support["chat_url"])


def opening_hours(hours: str | Mapping[str, str], locale: Locale) -> list[dict[str, str]]:
    """A weekday table as rows ``{"day": "mon", "label": "Monday", "hours": "08:00-20:00"}``
    (``hours`` "closed" for a closed day), in week order; free text gives no rows."""
    if not isinstance(hours, Mapping):
        return []
    names = get_day_names("wide", locale=locale)
    return [
        {"day": day, "label": names[WEEKDAYS.index(day)], "hours": hours[day]}
        for day in WEEKDAYS
        if day in hours
    ]


def as_json(support: Mapping[str, Any], locale: Locale) -> dict[str, Any]:
    """The ``[support]`` table for ``GET /api/v1/support``."""
    hours = support["hours"]
    return {
        "configured": configured(support),
        "phone": support["phone"],
        "tel": tel_uri(support["phone"]),
        "email": support["email"],
        "chat_url": support["chat_url"],
        "hours": hours if isinstance(hours, str) else "",
        "opening_hours": opening_hours(hours, locale),
        "articles": [{"title": a["title"], "url": a["url"]} for a in support["articles"]],
    }


def reach_text(support: Mapping[str, Any]) -> str:
    """ ": +44 20 7946 0000 or help@example.net" for a refusal's detail; "" when nothing is set."""
    ways = [support[k] for k in ("phone", "email", "chat_url") if support[k]]
    return ": " + " or ".join(ways) if ways else ""
