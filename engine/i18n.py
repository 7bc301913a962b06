"""Translations (Babel): catalogues compiled in memory from the shipped ``.po`` files.

Catalogues merge in this order, later ones winning: the engine's
``engine/locale/``, each enabled plugin's ``locale/``, the default theme's
``locale/``, the operator theme's ``locale/`` (so an operator can reword any
string without touching code).

Locale of a request: the signed-in user's preference, else the ``lang`` cookie
set by the language switcher (``POST /lang``), else ``Accept-Language``, else
the operator's ``default_locale``. Under impersonation the cookie comes first,
so staff can read the portal in their own language without changing the
customer's preference.
"""

from __future__ import annotations

import contextvars
import functools
import io
from pathlib import Path
from typing import Any, Callable, Iterable

from babel import Locale, UnknownLocaleError
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LOCALES = ("en", "zh_Hans")
LANGUAGE_NAMES = {"en": "English", "zh_Hans": "简体中文"}
#: The Babel locale used for numbers, money and dates of each language. English
#: formats the British way (5 Mar 2026, 14:30), as the default operator is in the UK.
FORMAT_LOCALES = {"en": "en_GB", "zh_Hans": "zh_Hans_CN"}
ENGINE_LOCALE_DIR = Path(__file__).parent / "locale"
current_locale: contextvars.ContextVar[str] = contextvars.ContextVar("portico_locale", default="en")


class Message(str):
    """A message id marked with ``N_``: reads as its English text, translates as a whole.

    With values (``N_("Send at most %(limit)s bytes.", limit=limit)``) the text is the
    English with the values in; ``translate`` looks up the id and puts the values into the
    translation (a value that is itself a ``Message`` is translated too).
    """

    msgid: str
    variables: dict[str, Any]

    def __new__(cls, msgid: str, variables: dict[str, Any] | None = None) -> "Message":
        text = msgid % variables if variables else msgid
        self = super().__new__(cls, text)
        self.msgid, self.variables = msgid, variables or {}
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        """``copy.deepcopy`` (marshmallow copies every field) and pickle keep the id."""
        return (Message, (self.msgid, self.variables))


def N_(message: str, **variables: Any) -> str:
    """Mark a string for extraction without translating it now (``Section(..., N_("Usage"))``).

    What shows it translates it then: templates (``{{ _(section.title) }}``, the
    ``translate`` filter, form ``errors``) and problem+json answers (``engine.errors``),
    in the reader's language. Values go in as keywords, never with an f-string, so the
    message id stays the same: ``N_("At most %(limit)s events per batch.", limit=limit)``.
    """
    return Message(message, variables)


def translate(value: Any, gettext: Callable[[str], str]) -> Any:
    """``value`` in the language of ``gettext``: a message (with its values), any text,
    or the dicts and lists of field messages a validation error holds.

    Text that is not a message id may be one of marshmallow's own messages with its values
    filled in ("Longer than maximum length 500."): ``engine.field_messages`` finds those.
    Text that is neither (a customer's name, a reason typed in) comes back unchanged.
    """
    if isinstance(value, Message):
        text = gettext(value.msgid)
        if not value.variables:
            return text
        values = {
            k: translate(v, gettext) if isinstance(v, Message) else v
            for k, v in value.variables.items()
        }
        try:
            return text % values
        except (KeyError, ValueError, TypeError):  # a broken translation: the English then
            return value.msgid % values
    if isinstance(value, str):
        if not value:
            return value
        text = gettext(value)
        if text == value:
            from engine.field_messages import translate_filled

            return translate_filled(value, gettext)
        return text
    if isinstance(value, dict):
        return {k: translate(v, gettext) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [translate(v, gettext) for v in value]
    return value


def _aliases(tag: str) -> str | None:
    """Map a language tag onto a shipped locale (zh-CN, zh-SG, zh-Hans → zh_Hans; en-GB → en)."""
    tag = tag.strip().replace("-", "_")
    if not tag or tag == "*":
        return None
    try:
        loc = Locale.parse(tag)
    except (ValueError, TypeError, UnknownLocaleError):
        return None
    if loc.language == "zh":
        traditional = loc.script == "Hant" or (
            loc.script is None and loc.territory in ("TW", "HK", "MO")
        )
        return None if traditional else "zh_Hans"
    return loc.language if loc.language in LOCALES else None


def accept_language(header: str) -> list[str]:
    """The tags of an ``Accept-Language`` header, most wanted first (q=0 left out)."""
    ranked = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.partition(";")
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if tag.strip() and q > 0:
            ranked.append((-q, position, tag.strip()))
    return [tag for _, _, tag in sorted(ranked)]


class Translator:
    """All catalogues (engine, plugins, themes), one merged ``Translations`` per locale."""

    def __init__(self, plugins=None):
        self.dirs: list[Path] = [ENGINE_LOCALE_DIR]
        if plugins is not None:
            self.dirs += [d for n in plugins.enabled if (d := plugins.folder(n, "locale"))]
        self.catalogs: dict[str, NullTranslations] = {}
        self._build()

    def add_dirs(self, dirs: Iterable[Path]) -> None:
        """Merge more ``locale/`` folders on top (the themes use this)."""
        self.dirs += [Path(d) for d in dirs if Path(d).is_dir()]
        self._build()

    def _build(self) -> None:
        for locale in LOCALES:
            merged: NullTranslations = NullTranslations()
            for base in self.dirs:
                po = base / locale / "LC_MESSAGES" / "messages.po"
                if po.exists():
                    compiled = _compile(po, locale)
                    merged = (
                        compiled if not isinstance(merged, Translations) else merged.merge(compiled)
                    )
            self.catalogs[locale] = merged

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
        """Pick the request's locale, make it current for gettext, and return it."""
        preferred = (
            principal.locale if principal is not None and principal.locale in LOCALES else None
        )
        cookie = _aliases(req.cookies.get("lang", "")) if req is not None else None
        if principal is not None and principal.impersonated:
            chosen = cookie or preferred
        else:
            chosen = preferred or cookie
        if chosen is None and req is not None:
            for tag in accept_language(req.get_header("Accept-Language") or ""):
                if chosen := _aliases(tag):
                    break
        if chosen is None:
            app = getattr(req.context, "app", None) if req is not None else None
            chosen = app.settings.default_locale if app is not None else "en"
        current_locale.set(chosen)
        if req is not None:
            req.context.extra["locale_negotiated"] = True
        return chosen


def _compile(po_path: Path, locale: str) -> Translations:
    """The catalogue of a ``.po`` file: its ``.mo`` beside it when that is up to date (an
    installed wheel has them compiled), else compiled in memory (a checkout)."""
    stat = po_path.stat()
    mo_path = po_path.with_suffix(".mo")
    if mo_path.exists() and mo_path.stat().st_mtime_ns >= stat.st_mtime_ns:
        return Translations(fp=io.BytesIO(mo_path.read_bytes()))
    return Translations(fp=io.BytesIO(_mo_bytes(str(po_path), stat.st_mtime_ns, locale)))


@functools.lru_cache(maxsize=256)
def _mo_bytes(path: str, mtime_ns: int, locale: str) -> bytes:
    """A ``.po`` file compiled, once per process and file version (every app start needs it).

    Bytes, not the ``Translations``: merging catalogues changes the first one in place.
    """
    with open(path, "rb") as f:
        catalog = read_po(f, locale=locale)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    return buf.getvalue()


def babel_locale(locale: str) -> Locale:
    """The Babel locale for formatting in ``locale`` (see ``FORMAT_LOCALES``)."""
    try:
        return Locale.parse(FORMAT_LOCALES.get(locale, locale))
    except (ValueError, TypeError, UnknownLocaleError):
        return Locale.parse(FORMAT_LOCALES["en"])
