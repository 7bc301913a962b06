"""Themes: templates and static files resolved through one chain.

Lookup order: the operator's theme → the default theme → plugin folders →
the engine. ``{% extends "default:base.html" %}`` skips the operator theme, so
an override can extend what it replaces (ENG-5). Static files resolve the
same way; a plugin's files live under ``/static/<plugin>/``.
"""
from __future__ import annotations

import hashlib
import mimetypes
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from babel import dates as babel_dates
from babel import numbers as babel_numbers

from engine.i18n import LANGUAGE_NAMES, LOCALES, babel_locale

THEMES_DIR = Path(__file__).resolve().parent.parent / "themes"
ENGINE_TEMPLATES = Path(__file__).parent / "templates"


class ThemeError(Exception):
    pass


def find_theme(name: str, search: list[str]) -> Path:
    """The folder of theme ``name`` in the operator's ``theme_paths``, else the shipped themes."""
    for base in [*map(Path, search), THEMES_DIR]:
        candidate = (base / name).expanduser()
        if (candidate / "templates").is_dir() or (candidate / "static").is_dir():
            return candidate.resolve()
    raise ThemeError(f"theme: no theme named '{name}' in {', '.join(search) or 'theme_paths'} "
                     f"or {THEMES_DIR}")


class Theme:
    """The Jinja2 environment and the static file resolver of one deployment."""

    def __init__(self, settings, plugins, translator):
        self.settings = settings
        self.plugins = plugins
        self.translator = translator
        self.name = settings.theme
        default = THEMES_DIR / "default"
        own = find_theme(self.name, settings.theme_paths)
        self.theme_dirs = [own] if own != default.resolve() else []
        self.theme_dirs.append(default.resolve())
        plugin_templates = []
        self.plugin_static: dict[str, list[Path]] = {}
        for name in plugins.enabled:
            if (d := plugins.folder(name, "templates")):
                plugin_templates.append(d)
            if (s := plugins.folder(name, "static")):
                self.plugin_static.setdefault(name, []).append(s)
        for name, dirs in plugins.each("template_dirs"):
            plugin_templates += [Path(d) for d in dirs]
        for name, dirs in plugins.each("static_dirs"):
            self.plugin_static.setdefault(name, []).extend(Path(d) for d in dirs)
        fallback = [default / "templates", *plugin_templates, ENGINE_TEMPLATES]
        chain = [d / "templates" for d in self.theme_dirs[:-1]] + fallback
        self.env = jinja2.Environment(
            loader=jinja2.ChoiceLoader([
                jinja2.PrefixLoader({"default": jinja2.FileSystemLoader(
                    [str(p) for p in fallback if p.is_dir()])}, delimiter=":"),
                jinja2.FileSystemLoader([str(p) for p in chain if p.is_dir()]),
            ]),
            autoescape=jinja2.select_autoescape(["html", "xml", "svg"], default_for_string=True),
            extensions=["jinja2.ext.i18n"],
            trim_blocks=True, lstrip_blocks=True, auto_reload=False,
        )
        self.env.install_gettext_callables(translator.gettext, translator.ngettext, newstyle=True)
        self.env.globals.update(static_url=self.static_url, languages=LANGUAGE_NAMES,
                                locales=LOCALES)
        self._fingerprints: dict[str, str | None] = {}

    # -- static files -----------------------------------------------------------

    def find_static(self, path: str) -> Path | None:
        """Resolve ``/static/<path>`` through the theme chain, then the plugin's folder."""
        if ".." in Path(path).parts or path.startswith("/"):
            return None
        for theme in self.theme_dirs:
            candidate = theme / "static" / path
            if candidate.is_file():
                return candidate
        plugin, _, rest = path.partition("/")
        for base in self.plugin_static.get(plugin, []):
            candidate = base / rest
            if rest and candidate.is_file():
                return candidate
        return None

    def static_url(self, path: str) -> str:
        """A fingerprinted URL: long-cached, changing whenever the file changes."""
        if path not in self._fingerprints:
            found = self.find_static(path)
            self._fingerprints[path] = (hashlib.sha256(found.read_bytes()).hexdigest()[:12]
                                        if found else None)
        digest = self._fingerprints[path]
        return f"/static/{path}?v={digest}" if digest else f"/static/{path}"

    def static_bytes(self, path: str) -> tuple[bytes, str, str] | None:
        """(content, content type, fingerprint) of a static file, or None."""
        found = self.find_static(path)
        if found is None:
            return None
        data = found.read_bytes()
        ctype = mimetypes.guess_type(found.name)[0] or "application/octet-stream"
        if ctype.startswith("text/") or ctype in ("application/javascript", "image/svg+xml"):
            ctype += "; charset=utf-8"
        if found.suffix == ".webmanifest":
            ctype = "application/manifest+json"
        return data, ctype, hashlib.sha256(data).hexdigest()[:12]

    # -- rendering ----------------------------------------------------------------

    def render(self, req, template: str, **values: Any) -> str:
        ctx = req.context if req is not None else None
        base = self.shell_context(ctx) if ctx is not None else {}
        base.update(values)
        return self.env.get_template(template).render(base)

    def render_plain(self, template: str, locale: str = "en", tz: str = "UTC", **values) -> str:
        """Render outside a request (emails, PDFs) in a given locale and time zone."""
        from engine.i18n import current_locale
        token = current_locale.set(locale)
        try:
            values.setdefault("fmt", Formatter(locale, tz))
            values.setdefault("settings", self.settings)
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


class Formatter:
    """Locale- and time-zone-aware formatting for templates: ``fmt.money(1050, "GBP")``."""

    def __init__(self, locale: str, tz: str):
        self.locale = babel_locale(locale)
        try:
            self.tz = ZoneInfo(tz or "UTC")
        except (KeyError, ValueError):
            self.tz = ZoneInfo("UTC")

    def money(self, amount: int, currency: str) -> str:
        digits = babel_numbers.get_currency_precision(currency)
        return babel_numbers.format_currency(amount / (10 ** digits), currency, locale=self.locale)

    def number(self, value) -> str:
        return babel_numbers.format_decimal(value, locale=self.locale)

    def percent(self, value: float) -> str:
        return babel_numbers.format_percent(value, locale=self.locale)

    def datetime(self, value: datetime | str | None, format: str = "medium") -> str:
        if not value:
            return ""
        if isinstance(value, str):  # ISO text, as stored in notices and JSON
            value = datetime.fromisoformat(value)
        return babel_dates.format_datetime(value.astimezone(self.tz), format, locale=self.locale)

    def date(self, value: datetime | str | None, format: str = "medium") -> str:
        if not value:
            return ""
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if isinstance(value, datetime):
            value = value.astimezone(self.tz).date()
        return babel_dates.format_date(value, format, locale=self.locale)

    def bytes(self, value: int) -> str:
        """Data amounts in decimal units, as operators sell them (1 GB = 10^9 bytes)."""
        units = ["B", "KB", "MB", "GB", "TB"]
        size, unit = float(value), 0
        while abs(size) >= 1000 and unit < len(units) - 1:
            size, unit = size / 1000, unit + 1
        shown = babel_numbers.format_decimal(round(size, 1 if unit >= 2 else 0),
                                             locale=self.locale)
        return f"{shown} {units[unit]}"

    def duration(self, seconds: int) -> str:
        minutes = seconds // 60
        return babel_numbers.format_decimal(minutes, locale=self.locale) + " min"

    def quantity(self, value: int, unit: str) -> str:
        if unit == "bytes":
            return self.bytes(value)
        if unit == "seconds":
            return self.duration(value)
        if unit == "messages":
            return self.number(value)
        return self.money(value, unit)
