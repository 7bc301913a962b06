"""Translations (Babel): catalogues compiled in memory from the shipped ``.po`` files.

Locale: the user's preference, else a ``lang`` cookie (the language switcher),
else ``Accept-Language``, else the operator's default.
"""
from __future__ import annotations

import contextvars
import io
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LOCALES = ("en", "zh_Hans")
LANGUAGE_NAMES = {"en": "English", "zh_Hans": "简体中文"}
ENGINE_LOCALE_DIR = Path(__file__).parent / "locale"
current_locale: contextvars.ContextVar[str] = contextvars.ContextVar("portico_locale", default="en")


def _aliases(tag: str) -> str | None:
    """Map a browser language tag onto a shipped locale (zh-CN, zh-SG, zh-Hans → zh_Hans)."""
    tag = tag.strip().replace("-", "_")
    if not tag:
        return None
    try:
        loc = Locale.parse(tag)
    except (ValueError, UnknownLocaleError):
        return None
    if loc.language == "zh":
        return "zh_Hans" if (loc.script or "Hans") == "Hans" and loc.territory not in ("TW", "HK", "MO") else None
    return loc.language if loc.language in LOCALES else None


class Translator:
    """All catalogues (engine + each plugin's ``locale/``), one ``Translations`` per locale."""

    def __init__(self, plugins=None):
        dirs = [ENGINE_LOCALE_DIR]
        if plugins is not None:
            dirs += [d for n in plugins.enabled if (d := plugins.folder(n, "locale"))]
        self.catalogs: dict[str, NullTranslations] = {}
        for locale in LOCALES:
            merged: Translations | None = None
            for base in dirs:
                po = base / locale / "LC_MESSAGES" / "messages.po"
                if po.exists():
                    t = _compile(po, locale)
                    merged = t if merged is None else merged.merge(t)
            self.catalogs[locale] = merged or NullTranslations()

    def get(self, locale: str) -> NullTranslations:
        return self.catalogs.get(locale) or self.catalogs["en"]

    def gettext(self, message: str, **variables) -> str:
        text = self.get(current_locale.get()).gettext(message)
        return text % variables if variables else text

    def ngettext(self, singular: str, plural: str, n: int, **variables) -> str:
        text = self.get(current_locale.get()).ngettext(singular, plural, n)
        variables.setdefault("num", n)
        return text % variables

    def negotiate(self, req, principal=None) -> str:
        """Pick the request's locale and make it current for gettext."""
        chosen = None
        if principal is not None and principal.locale in LOCALES:
            chosen = principal.locale
        if chosen is None:
            chosen = _aliases(req.cookies.get("lang", "") if req is not None else "")
        if chosen is None and req is not None:
            for part in (req.get_header("Accept-Language") or "").split(","):
                chosen = _aliases(part.split(";")[0])
                if chosen:
                    break
        if chosen is None:
            app = getattr(req.context, "app", None) if req is not None else None
            chosen = app.settings.default_locale if app is not None else "en"
        current_locale.set(chosen)
        return chosen


def _compile(po_path: Path, locale: str) -> Translations:
    with po_path.open("rb") as f:
        catalog = read_po(f, locale=locale)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(fp=buf)


def babel_locale(locale: str) -> Locale:
    return Locale.parse("zh_Hans_CN" if locale == "zh_Hans" else locale)
