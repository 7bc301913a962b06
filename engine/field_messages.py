"""marshmallow's own field messages, marked for translation, and found again once filled in.

marshmallow writes its messages in English and fills their values in before anyone sees
them ("Longer than maximum length {max}." becomes "Longer than maximum length 500."). So
the message ids live here, as marshmallow fills its structure into them (``Range`` writes
"greater than or equal to" into its messages when the validator is made; a date field
names its kind), and ``translate_filled`` matches a finished message against them, takes
the values back out, and puts them into the translation. One list for every field of every
schema: no schema repeats these messages in its own ``error_messages``.

tests/test_translations.py checks this list against marshmallow's classes, so a message a
new marshmallow adds fails a test until it is listed (and translated) here.
"""

from __future__ import annotations

import functools
import re
from typing import Callable

from engine.i18n import N_

MESSAGES = (
    # fields
    N_("Missing data for required field."),
    N_("Field may not be null."),
    N_("Invalid value."),
    N_("Invalid type."),
    N_("Invalid input type."),
    N_("Unknown field."),
    N_("Not a valid list."),
    N_("Not a valid tuple."),
    N_("Not a valid string."),
    N_("Not a valid utf-8 string."),
    N_("Not a valid UUID."),
    N_("Not a valid number."),
    N_("Number too large."),
    N_("Not a valid integer."),
    N_("Special numeric values (nan or infinity) are not permitted."),
    N_("Not a valid boolean."),
    N_("Not a valid datetime."),
    N_("Not a valid date."),
    N_("Not a valid time."),
    N_("Not a valid aware datetime."),
    N_("Not a valid naive datetime."),
    N_("Not a valid aware time."),
    N_("Not a valid naive time."),
    N_('"{input}" cannot be formatted as a datetime.'),
    N_('"{input}" cannot be formatted as a date.'),
    N_('"{input}" cannot be formatted as a time.'),
    N_("Not a valid period of time."),
    N_("{input} cannot be formatted as a timedelta."),
    N_("Not a valid mapping type."),
    N_("Not a valid URL."),
    N_("Not a valid email address."),
    N_("Not a valid IP address."),
    N_("Not a valid IPv4 address."),
    N_("Not a valid IPv6 address."),
    N_("Not a valid IP interface."),
    N_("Not a valid IPv4 interface."),
    N_("Not a valid IPv6 interface."),
    N_("Must be one of: {choices}."),
    # validators
    N_("Must be greater than or equal to {min}."),
    N_("Must be greater than {min}."),
    N_("Must be less than or equal to {max}."),
    N_("Must be less than {max}."),
    N_("Must be greater than or equal to {min} and less than or equal to {max}."),
    N_("Must be greater than or equal to {min} and less than {max}."),
    N_("Must be greater than {min} and less than or equal to {max}."),
    N_("Must be greater than {min} and less than {max}."),
    N_("Shorter than minimum length {min}."),
    N_("Longer than maximum length {max}."),
    N_("Length must be between {min} and {max}."),
    N_("Length must be {equal}."),
    N_("Must be equal to {other}."),
    N_("String does not match expected pattern."),
    N_("Invalid input."),
    N_("One or more of the choices you made was not in: {choices}."),
    N_("One or more of the choices you made was in: {values}."),
)

_FIELD = re.compile(r"\{(\w+)(?:![rsa])?\}")


@functools.lru_cache(maxsize=1)
def _patterns() -> list[tuple[re.Pattern[str], str]]:
    """(regex, message id) for each message with values, the most literal text first."""
    found = []
    for message in MESSAGES:
        if not _FIELD.search(message):
            continue
        parts = _FIELD.split(message)  # text, name, text, name, ..., text
        regex = "".join(
            re.escape(part) if i % 2 == 0 else f"(?P<{part}>.*?)" for i, part in enumerate(parts)
        )
        found.append((re.compile(regex + r"\Z", re.DOTALL), message))
    found.sort(key=lambda p: -len(_FIELD.sub("", p[1])))
    return found


def translate_filled(text: str, gettext: Callable[[str], str]) -> str:
    """``text`` translated if it is one of the messages above with its values filled in;
    otherwise ``text`` itself."""
    for regex, message in _patterns():
        match = regex.match(text)
        if match:
            try:
                return _FIELD.sub(lambda m: "{" + m.group(1) + "}", gettext(message)).format(
                    **match.groupdict()
                )
            except (KeyError, IndexError, ValueError):  # a broken translation: keep the English
                return text
    return text
