"""Themes: templates and static files resolved through one chain (ENG-4, ENG-5).

Template lookup order: the operator's theme → the default theme → plugin
folders → the engine. ``{% extends "default:base.html" %}`` skips the
operator's theme, so an override can extend what it replaces. Static files
resolve the same way: ``/static/css/portico.css`` from the operator's theme,
else the default theme; ``/static/<plugin>/...`` from the operator's theme,
the default theme, then the plugin's own ``static/`` folder.

A theme is a folder with any of ``templates/``, ``static/``, ``locale/`` and an
optional ``theme.toml`` (``brand_name``). See docs/themes.md.
"""

from __future__ import annotations

import hashlib
import mimetypes
import tomllib
from dataclasses import dataclass
from datetime import date as Date  # Formatter's methods hide the names `date`, `datetime`
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from markupsafe import Markup
from babel import dates as babel_dates
from babel import numbers as babel_numbers
from babel import units as babel_units

from engine import money, support
from engine.devices import device_name
from engine.i18n import (
    LANGUAGE_NAMES,
    LOCALES,
    Message,
    babel_locale,
    current_locale,
    translate,
)
from engine.settings import SettingsError

THEMES_DIR = Path(__file__).resolve().parent.parent / "themes"
ENGINE_TEMPLATES = Path(__file__).parent / "templates"


class ThemeError(SettingsError):
    """The configured theme cannot be used (a start-up error naming the key and the fix)."""


def shipped_themes() -> list[str]:
    return sorted(p.name for p in THEMES_DIR.iterdir() if _is_theme(p))


def _is_theme(folder: Path) -> bool:
    return (folder / "theme.toml").is_file() or any(
        (folder / sub).is_dir() for sub in ("templates", "static", "locale")
    )


def find_theme(name: str, search: list[str]) -> Path:
    """The folder of theme ``name``: in the operator's ``theme_paths`` first, then the shipped ones."""
    for base in search:
        if not Path(base).expanduser().is_dir():
            raise ThemeError(f"theme_paths: '{base}' is not a folder")
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ThemeError(f"theme: '{name}' is not a theme name (a folder name, e.g. 'default')")
    for base in [*search, str(THEMES_DIR)]:
        candidate = Path(base).expanduser() / name
        if _is_theme(candidate):
            return candidate.resolve()
    where = ", ".join([*search, str(THEMES_DIR)])
    raise ThemeError(
        f"theme: no theme named '{name}' in {where}. Shipped themes: "
        f"{', '.join(shipped_themes())}; for your own, add its parent folder "
        f"to theme_paths (a theme folder holds theme.toml, templates/, static/ or locale/)"
    )


#: What a ``theme.toml`` may say.
THEME_KEYS = {"brand_name": str, "theme_color": str}
#: The browser UI colour (``<meta name="theme-color">``, the app manifest) unless a theme sets one.
DEFAULT_THEME_COLOR = "#1f5fbf"


def _read_meta(folder: Path) -> dict:
    meta = folder / "theme.toml"
    if not meta.is_file():
        return {}
    try:
        values = tomllib.loads(meta.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ThemeError(f"theme: {meta} is not valid TOML: {exc}") from None
    for key, value in values.items():
        if key not in THEME_KEYS:
            raise ThemeError(
                f"theme: {meta}: unknown key '{key}' (known: {', '.join(sorted(THEME_KEYS))})"
            )
        if not isinstance(value, THEME_KEYS[key]):
            raise ThemeError(f"theme: {meta}: '{key}' must be a {THEME_KEYS[key].__name__}")
    return values


class _MemoryBytecodeCache(jinja2.BytecodeCache):
    """Compiled templates shared by every app in the process (tests build hundreds).

    Jinja keys each entry by the template's name and a checksum of its source, so an
    override or an edited file never gets another's code.
    """

    def __init__(self):
        self.store: dict[str, bytes] = {}

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        code = self.store.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        self.store[bucket.key] = bucket.bytecode_to_string()


BYTECODE = _MemoryBytecodeCache()


class Theme:
    """The Jinja2 environment and the static file resolver of one deployment."""

    def __init__(self, settings, plugins, translator):
        self.settings = settings
        self.plugins = plugins
        self.translator = translator
        self.name = settings.theme
        default = (THEMES_DIR / "default").resolve()
        own = find_theme(self.name, list(settings.theme_paths))
        #: Theme folders, most specific first: [operator theme, default] or [default].
        self.theme_dirs = [own, default] if own != default else [default]
        self.meta = {**_read_meta(default), **_read_meta(own)}
        translator.add_dirs(d / "locale" for d in reversed(self.theme_dirs))

        plugin_templates: list[Path] = []
        self.plugin_static: dict[str, list[Path]] = {}
        for name in plugins.enabled:
            if d := plugins.folder(name, "templates"):
                plugin_templates.append(d)
            if s := plugins.folder(name, "static"):
                self.plugin_static.setdefault(name, []).append(s)
        plugin_templates += [Path(d) for _, d in plugins.collect("template_dirs")]
        for name, folder in plugins.collect("static_dirs"):
            self.plugin_static.setdefault(name, []).append(Path(folder))

        fallback = [default / "templates", *plugin_templates, ENGINE_TEMPLATES]
        chain = [d / "templates" for d in self.theme_dirs[:-1]] + fallback
        self.env = jinja2.Environment(
            loader=jinja2.ChoiceLoader(
                [
                    # "default:x.html" is everything but the operator's theme.
                    jinja2.PrefixLoader({"default": _folders(fallback)}, delimiter=":"),
                    _folders(chain),
                ]
            ),
            autoescape=jinja2.select_autoescape(["html", "xml", "svg"], default_for_string=True),
            extensions=["jinja2.ext.i18n"],
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,
            bytecode_cache=BYTECODE,
            finalize=self._finalize,
        )
        # added by the i18n extension at run time: jinja2's Environment type does not list it
        self.env.install_gettext_callables(  # type: ignore[attr-defined]
            translator.gettext, translator.ngettext, newstyle=True
        )
        self.env.filters["translate"] = self.translate
        self.env.filters["device"] = self.device
        self.env.filters["tel"] = support.tel_uri
        self.env.globals.update(
            static_url=self.static_url,
            has_static=self.has_static,
            languages=LANGUAGE_NAMES,
            locales=LOCALES,
            brand_name=self.meta.get("brand_name", "Portico"),
            theme_color=self.meta.get("theme_color", DEFAULT_THEME_COLOR),
            fragment=self.fragment,
        )
        self._fingerprints: dict[str, str | None] = {}
        self._static: dict[str, StaticFile] = {}
        self._fragments: dict[tuple, Markup] = {}

    @jinja2.pass_context
    def fragment(self, context, template: str, **values):
        """``{{ fragment("_nav.html", current=current) }}``: a piece rendered once per language
        and arguments, then reused (the navigation is the same on every page but for
        ``current``). Only for pieces that depend on nothing else: no user, no CSRF token."""
        locale = context.get("locale", "")
        key = (template, locale, tuple(sorted(values.items())))
        found = self._fragments.get(key)
        if found is None:
            shared = {k: context[k] for k in ("sections", "locale") if k in context}
            found = Markup(self.env.get_template(template).render({**shared, **values}))
            if len(self._fragments) < 1000:  # a bound: arguments come from a small, fixed set
                self._fragments[key] = found
        return found

    def _finalize(self, value):
        """Each ``{{ ... }}`` shown: a message marked with ``N_`` (a notice, a problem's
        title) appears in the reader's language without the template asking."""
        return translate(value, self.translator.gettext) if isinstance(value, Message) else value

    def translate(self, value):
        """``{{ value|translate }}``: text known only at run time (a message marked with
        ``N_``, one of marshmallow's, a stored failure reason), never %-formatted."""
        return translate(value, self.translator.gettext) if isinstance(value, str) else value

    def device(self, user_agent) -> str:
        """``{{ session.user_agent|device }}``: "Chrome on Android", in the page's language."""
        return device_name(
            user_agent if isinstance(user_agent, str) else "", self.translator.gettext
        )

    # -- static files -----------------------------------------------------------

    def find_static(self, path: str) -> Path | None:
        """Resolve ``/static/<path>`` through the theme chain, then the plugin's folder."""
        parts = path.split("/")
        # APPSEC: no way out of a static folder: no "..", no absolute paths, no dotfiles.
        if (
            not path
            or "\x00" in path
            or "\\" in path
            or any(p in ("", ".", "..") or p.startswith(".") for p in parts)
        ):
            return None
        for theme in self.theme_dirs:
            if found := _inside(theme / "static", parts):
                return found
        plugin, rest = parts[0], parts[1:]
        for base in self.plugin_static.get(plugin, []) if rest else []:
            if found := _inside(base, rest):
                return found
        return None

    def has_static(self, path: str) -> bool:
        """Whether a static file exists in the chain (``{% if has_static('css/theme.css') %}``)."""
        return self._fingerprint(path) is not None

    def static_url(self, path: str) -> str:
        """A fingerprinted URL: cached for a year, changing whenever the file changes."""
        digest = self._fingerprint(path)
        return f"/static/{path}?v={digest}" if digest else f"/static/{path}"

    def _fingerprint(self, path: str) -> str | None:
        if path not in self._fingerprints:  # paths named by templates: a small, fixed set
            found = self.static_file(path)
            self._fingerprints[path] = found.digest if found else None
        return self._fingerprints[path]

    def static_file(self, path: str) -> "StaticFile | None":
        """The static file served at ``/static/<path>``, or None.

        PERF: read and hashed once per process, on first use, then served from memory
        (the files are small, and do not change under a running server: a new release
        restarts it). Only files that exist are kept, so unknown paths cannot grow this.
        """
        found = self._static.get(path)
        if found is None:
            location = self.find_static(path)
            if location is None:
                return None
            data = location.read_bytes()
            found = self._static[path] = StaticFile(data, _content_type(location), _digest(data))
        return found

    def static_bytes(self, path: str) -> tuple[bytes, str, str] | None:
        """(content, content type, fingerprint) of a static file, or None."""
        found = self.static_file(path)
        return (found.data, found.content_type, found.digest) if found else None

    # -- rendering ----------------------------------------------------------------

    def render(self, req, template: str, **values: Any) -> str:
        """Render ``template`` with the shell's context, in the request's locale."""
        ctx = req.context if req is not None else None
        base: dict = {}
        if ctx is not None and getattr(ctx, "app", None) is not None:
            if not ctx.extra.get("locale_negotiated"):
                # Pages answered before routing (404s) still speak the visitor's language.
                ctx.locale = self.translator.negotiate(req, ctx.principal)
            base = self.shell_context(ctx)
            base["ctx_path"] = req.relative_uri
            base["scheme"] = scheme_of(req)
        base.update(values)
        token = current_locale.set(ctx.locale if ctx is not None else self.settings.default_locale)
        try:
            if base.get("errors"):  # a form's field messages, in the reader's language
                base["errors"] = translate(base["errors"], self.translator.gettext)
            return self.env.get_template(template).render(base)
        finally:
            current_locale.reset(token)

    def render_plain(self, template: str, locale: str = "en", tz: str = "UTC", **values) -> str:
        """Render outside a request (emails, PDFs) in a given locale and time zone."""
        token = current_locale.set(locale)
        try:
            values.setdefault("fmt", Formatter(locale, tz))
            values.setdefault("settings", self.settings)
            values.setdefault("locale", locale)
            return self.env.get_template(template).render(values)
        finally:
            current_locale.reset(token)

    def shell_context(self, ctx) -> dict:
        """What every page's layout needs: navigation, principal, CSRF token, support details."""
        app = ctx.app
        return {
            "app": app,
            "ctx": ctx,
            "principal": ctx.principal,
            "sections": [s for _, s in app.sections],
            "csrf_token": ctx.csrf_token,
            "support": self.settings.support,
            "settings": self.settings,
            "locale": ctx.locale,
            "fmt": Formatter(ctx.locale, ctx.timezone),
            "theme": self.name,
        }


#: Appearances a visitor may choose (``POST /appearance``); ``system`` follows the device.
SCHEMES = ("system", "light", "dark")


def scheme_of(req) -> str:
    """The visitor's chosen appearance, from the ``scheme`` cookie; else the device's."""
    chosen = req.cookies.get("scheme", "")
    return chosen if chosen in SCHEMES else "system"


def _folders(paths: list[Path]) -> jinja2.FileSystemLoader:
    return jinja2.FileSystemLoader([str(p) for p in paths if p.is_dir()])


def _inside(base: Path, parts: list[str]) -> Path | None:
    """``base/parts`` if it is a file that really lies inside ``base`` (symlinks included)."""
    candidate = base.joinpath(*parts)
    try:
        if candidate.is_file() and candidate.resolve().is_relative_to(base.resolve()):
            return candidate
    except (OSError, ValueError):
        pass
    return None


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:12]


def _content_type(found: Path) -> str:
    ctype = mimetypes.guess_type(found.name)[0] or "application/octet-stream"
    if found.suffix == ".webmanifest":
        ctype = "application/manifest+json"
    if ctype.startswith("text/") or ctype in (
        "application/javascript",
        "image/svg+xml",
        "application/json",
        "application/manifest+json",
    ):
        ctype += "; charset=utf-8"
    return ctype


@dataclass(frozen=True)
class StaticFile:
    """A static file as served: its bytes, content type and fingerprint (its ETag)."""

    data: bytes
    content_type: str
    digest: str


class Formatter:
    """Locale- and time-zone-aware formatting for templates: ``fmt.money(1050, "GBP")``."""

    def __init__(self, locale: str, tz: str):
        self.locale = babel_locale(locale)
        try:
            self.tz = ZoneInfo(tz or "UTC")
        except (KeyError, ValueError):
            self.tz = ZoneInfo("UTC")

    def money(self, amount: int, currency: str) -> str:
        """Minor units as money: ``money(1050, "GBP")`` → "£10.50"."""
        return money.display(amount, currency, self.locale)

    def opening_hours(self, hours) -> list[dict[str, str]]:
        """``[support] hours`` as rows with the weekday named in this language (SUP-1)."""
        return support.opening_hours(hours, self.locale)

    def number(self, value) -> str:
        return babel_numbers.format_decimal(value, locale=self.locale)

    def percent(self, value: float) -> str:
        return babel_numbers.format_percent(value, locale=self.locale)

    def datetime(self, value: datetime | str | None, format: str = "medium") -> str:
        """An aware datetime in the customer's time zone ("5 Mar 2026, 14:30:00")."""
        if not value:
            return ""
        if isinstance(value, str):  # ISO text, as kept in notices and JSON columns
            value = datetime.fromisoformat(value)
        return babel_dates.format_datetime(value.astimezone(self.tz), format, locale=self.locale)

    def date(self, value: Date | str | None, format: str = "medium") -> str:
        """A date; an aware datetime (or ISO text) is first moved to the customer's time zone."""
        if not value:
            return ""
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if isinstance(value, datetime):
            value = value.astimezone(self.tz).date()
        return babel_dates.format_date(value, format, locale=self.locale)

    def date_range(self, start, end, format: str = "medium") -> str:
        """ "1 Oct 2026 – 31 Oct 2026", or one date when both fall on the same local day
        (never "1 Oct – 1 Oct")."""
        first, last = self.date(start, format), self.date(end, format)
        if not first or not last or first == last:
            return first or last
        return f"{first} – {last}"

    def bytes(self, value: int) -> str:
        """Data amounts in decimal units, as operators sell them (1 GB = 10^9 bytes)."""
        units = ["B", "KB", "MB", "GB", "TB"]
        size, unit = float(value), 0
        while abs(size) >= 1000 and unit < len(units) - 1:
            size, unit = size / 1000, unit + 1
        shown = babel_numbers.format_decimal(round(size, 1 if unit >= 2 else 0), locale=self.locale)
        return f"{shown} {units[unit]}"

    def duration(self, seconds: int) -> str:
        """Voice time in whole minutes, in the customer's language ("125 mins", "125分钟")."""
        return babel_units.format_unit(
            seconds // 60, "duration-minute", length="short", locale=self.locale
        )

    def quantity(self, value: int, unit: str) -> str:
        """A balance amount by its unit: bytes, seconds, messages, or a currency code."""
        if unit == "bytes":
            return self.bytes(value)
        if unit == "seconds":
            return self.duration(value)
        if unit == "messages":
            return self.number(value)
        return self.money(value, unit)
