"""Device names for people: "Chrome on Android", "Safari on iPhone", never a raw User-Agent.

One piece for every place that shows where something happened: the activity log (ACCT-5),
the new-device security email, the list of signed-in sessions. Templates use the ``device``
filter (``{{ event.user_agent|device }}``); Python calls
``device_name(user_agent, app.translator.gettext)``.
The User-Agent is parsed with ``ua-parser`` (the uap-core rules); the words around the names
are translated, the product names themselves are not.
"""

from __future__ import annotations

import functools
from typing import Callable, NamedTuple

import ua_parser

from engine.i18n import N_

#: What the audit log writes for a change with no request behind it (engine.audit).
SYSTEM = "system"
#: The longest User-Agent worth parsing (the column holds 300 characters).
MAX_LENGTH = 300

UNKNOWN = N_("Unknown device")
AUTOMATIC = N_("Automatic (no device)")
BROWSER_ON = N_("%(browser)s on %(platform)s")
ON_PLATFORM = N_("A browser on %(platform)s")

#: The uap-core family names people do not say: "Mobile Safari" is Safari.
BROWSERS = {
    "Mobile Safari": "Safari",
    "Mobile Safari UI/WKWebView": "Safari",
    "Chrome Mobile": "Chrome",
    "Chrome Mobile iOS": "Chrome",
    "Chrome Mobile WebView": "Chrome",
    "Firefox Mobile": "Firefox",
    "Firefox iOS": "Firefox",
    "Edge Mobile": "Edge",
    "Opera Mobile": "Opera",
    "Samsung Internet": "Samsung Internet",
}
PLATFORMS = {"Mac OS X": "Mac", "Chrome OS": "ChromeOS"}
#: Apple devices are named for the device ("Safari on iPhone"), others for the system.
NAMED_DEVICES = ("iPhone", "iPad", "iPod")


class Device(NamedTuple):
    """What a User-Agent says, in product names: ``browser`` and ``platform`` ("" if unknown)."""

    browser: str
    platform: str


@functools.lru_cache(maxsize=2048)
def parse(user_agent: str) -> Device:
    """The browser and platform of a User-Agent; ``Device("", "")`` when nothing is known.

    PERF: parsing runs a few hundred regular expressions; a page shows the same few devices
    over and over, so answers are kept (bounded).
    """
    text = (user_agent or "").strip()[:MAX_LENGTH]
    if not text or text == SYSTEM:
        return Device("", "")
    result = ua_parser.parse(text)
    browser = _family(result.user_agent)
    platform = _family(result.os)
    device = _family(result.device)
    if device in NAMED_DEVICES:
        platform = device
    return Device(BROWSERS.get(browser, browser), PLATFORMS.get(platform, platform))


def _family(part: object) -> str:
    family = getattr(part, "family", "") or ""
    return "" if family == "Other" else family


def device_name(user_agent: str | None, gettext: Callable[..., str]) -> str:
    """A User-Agent as people say it, in the current language ("Chrome on Android");
    ``gettext`` is the translator's (``app.translator.gettext``)."""
    _ = gettext
    if (user_agent or "").strip() == SYSTEM:
        return _(AUTOMATIC)
    found = parse(user_agent or "")
    if found.browser and found.platform:
        return _(BROWSER_ON, browser=found.browser, platform=found.platform)
    if found.platform:
        return _(ON_PLATFORM, platform=found.platform)
    return found.browser or _(UNKNOWN)
