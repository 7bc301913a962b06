"""The plugin manager: built-ins, then partner plugins from entry points.

Web, worker and CLI all load plugins through ``load_plugins()``, so every
route, actor and command a plugin registers exists in each of them.
"""
from __future__ import annotations

import difflib
import importlib
import re
import types
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Iterator

import pluggy

import engine
from engine import hookspecs

ENTRY_POINT_GROUP = "portico.plugins"

#: Built-in plugins, in load order: (name, module).
BUILTIN_PLUGINS: tuple[tuple[str, str], ...] = (
    ("core", "engine.core"),
    ("email", "plugins.email"),
    ("notifications", "plugins.notifications"),
    ("webpush", "plugins.webpush"),
    ("identity", "plugins.identity"),
    ("account", "plugins.account"),
    ("staff", "plugins.staff"),
    ("dashboard", "plugins.dashboard"),
    ("services", "plugins.services"),
    ("usage", "plugins.usage"),
    ("sandbox", "plugins.sandbox"),
    ("stripe", "plugins.stripe"),
    ("billing", "plugins.billing"),
    ("topups", "plugins.topups"),
    ("addons", "plugins.addons"),
)

#: Built-ins an operator cannot disable.
ESSENTIAL_PLUGINS = frozenset({"core"})


class PluginError(Exception):
    """A start-up error in the plugin set; the message names the plugins and the fix."""


@dataclass
class PluginInfo:
    name: str
    module: Any
    source: str  # "builtin" or the distribution name
    version: str
    enabled: bool

    @property
    def folder(self) -> Path | None:
        """The plugin package's folder (for its templates/, static/, migrations/)."""
        path = getattr(self.module, "__file__", None)
        if path and Path(path).name == "__init__.py":
            return Path(path).parent
        return None


class Plugins:
    """A small facade over pluggy: load, check, and collect per-plugin results."""

    def __init__(self, settings, extra: Iterable[tuple[str, Any]] = ()):
        self.pm = pluggy.PluginManager("portico")
        self.pm.add_hookspecs(hookspecs)
        self.info: dict[str, PluginInfo] = {}
        disabled = set(settings.plugins.disabled)
        forced = disabled & ESSENTIAL_PLUGINS
        if forced:
            raise PluginError(
                f"plugin '{sorted(forced)[0]}' is essential and cannot be disabled; "
                "remove it from [plugins] disabled")
        candidates = list(self._builtins())
        if settings.plugins.entry_points:
            candidates += list(self._entry_points())
        candidates += [(name, lambda obj=obj: obj, "test", engine.__version__)
                       for name, obj in extra]
        known = {c[0] for c in candidates}
        unknown = disabled - known
        if unknown:
            typo = sorted(unknown)[0]
            close = difflib.get_close_matches(typo, known, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise PluginError(
                f"[plugins] disabled names unknown plugin '{typo}'{hint}; "
                f"installed plugins: {', '.join(sorted(known))}")
        for name, load, source, version in candidates:
            if name in self.info:
                raise PluginError(
                    f"two plugins are named '{name}' ({self.info[name].source} and {source}); "
                    "rename the entry point of one of them")
            if name in disabled:
                # Blocked before import: a disabled plugin's code never runs.
                self.pm.set_blocked(name)
                self.info[name] = PluginInfo(name, None, source, version, False)
                continue
            module = self._load(name, load, source)
            self._check_marked(name, module)
            try:
                self.pm.register(module, name=name)
            except pluggy.PluginValidationError as exc:
                raise PluginError(
                    f"plugin '{name}': {_pluggy_message(exc)}; a hookimpl may take only the "
                    "arguments its spec in engine/hookspecs.py names") from None
            self.info[name] = PluginInfo(name, module, source, version, True)
        self._check_pending()
        self._check_requires()
        self._order_by_requires()

    # -- loading -------------------------------------------------------------

    @staticmethod
    def _builtins() -> Iterator[tuple]:
        for name, modname in BUILTIN_PLUGINS:
            yield name, (lambda m=modname: importlib.import_module(m)), "builtin", engine.__version__

    @staticmethod
    def _entry_points() -> Iterator[tuple]:
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = ep.dist.name if ep.dist else "unknown"
            version = ep.dist.version if ep.dist else "?"
            yield ep.name, ep.load, dist, version

    @staticmethod
    def _load(name: str, load, source: str) -> Any:
        """Import one plugin; a broken partner package is a start-up error naming it."""
        try:
            return load()
        except Exception as exc:
            where = "" if source in ("builtin", "test") else f" (distribution '{source}')"
            raise PluginError(
                f"plugin '{name}'{where} failed to load: {type(exc).__name__}: {exc}. "
                f"Fix or uninstall it, or add '{name}' to [plugins] disabled") from None

    @staticmethod
    def _check_marked(name: str, module: Any) -> None:
        """A function named like a hook but not marked ``@hookimpl`` would be silently ignored."""
        own = getattr(module, "__name__", None)
        for hook in _hook_names():
            fn = getattr(module, hook, None)
            if not callable(fn) or hasattr(fn, "portico_impl"):
                continue
            if isinstance(module, types.ModuleType) and getattr(fn, "__module__", None) != own:
                continue  # imported from elsewhere, not meant as a hookimpl
            raise PluginError(
                f"plugin '{name}' defines {hook}() without @hookimpl, so it would never be "
                "called; decorate it with @engine.hookimpl")

    def _check_pending(self) -> None:
        """A hookimpl whose name is no hook (a typo) is a start-up error, not silence."""
        known = _hook_names()
        for hook_name in sorted(self.pm.hook.__dict__):
            caller = getattr(self.pm.hook, hook_name)
            if hook_name.startswith("_") or caller.has_spec():
                continue
            for impl in caller.get_hookimpls():
                if impl.optionalhook:
                    continue
                close = difflib.get_close_matches(hook_name, known, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise PluginError(
                    f"plugin '{self.pm.get_name(impl.plugin)}' implements unknown hook "
                    f"'{hook_name}'{hint}; hook names are listed in engine/hookspecs.py")

    def _check_requires(self) -> None:
        for name, needed in self.collect("plugin_requires"):
            info = self.info.get(needed)
            if info is None:
                raise PluginError(
                    f"plugin '{name}' needs plugin '{needed}', which is not installed")
            if not info.enabled:
                raise PluginError(
                    f"plugin '{name}' needs plugin '{needed}', which is disabled; enable "
                    f"'{needed}' or also disable '{name}' in [plugins] disabled")

    def _order_by_requires(self) -> None:
        """Keep load order, but put every plugin after the plugins it needs."""
        needs: dict[str, list[str]] = {n: [] for n in self.info}
        for name, needed in self.collect("plugin_requires"):
            needs[name].append(needed)
        for name, wanted in self.collect("plugin_optional"):
            if wanted in self.info and wanted != name:
                needs[name].append(wanted)
        ordered: dict[str, PluginInfo] = {}
        visiting: list[str] = []

        def place(name: str) -> None:
            if name in ordered:
                return
            if name in visiting:
                cycle = " -> ".join(visiting[visiting.index(name):] + [name])
                raise PluginError(f"plugins need each other in a cycle ({cycle}); "
                                  "remove one plugin_requires or plugin_optional entry")
            visiting.append(name)
            for needed in needs[name]:
                place(needed)
            visiting.pop()
            ordered[name] = self.info[name]

        for name in list(self.info):
            place(name)
        self.info = ordered

    # -- asking the plugins --------------------------------------------------

    @property
    def enabled(self) -> list[str]:
        return [n for n, i in self.info.items() if i.enabled]

    @property
    def hook(self):
        """pluggy's hook relay, for "first result" and event hooks."""
        return self.pm.hook

    def each(self, hook_name: str, **kwargs) -> Iterator[tuple[str, Any]]:
        """Call one hook plugin by plugin, in load order: yields (plugin name, result)."""
        impls = {self.pm.get_name(i.plugin): i for i in getattr(self.pm.hook, hook_name).get_hookimpls()}
        for name in self.enabled:
            impl = impls.get(name)
            if impl is None:
                continue
            result = impl.function(**{a: kwargs[a] for a in impl.argnames})
            if result is not None:
                yield name, result

    def collect(self, hook_name: str, **kwargs) -> list[tuple[str, Any]]:
        """Like ``each`` but flattens list results: [(plugin name, item), ...]."""
        out = []
        for name, result in self.each(hook_name, **kwargs):
            if isinstance(result, (list, tuple)):
                out.extend((name, item) for item in result)
            else:
                out.append((name, result))
        return out

    def unique(self, pairs: list[tuple[str, Any]], key, what: str) -> dict[Any, tuple[str, Any]]:
        """Index items by ``key(item)``; a duplicate is a start-up error naming both plugins."""
        seen: dict[Any, tuple[str, Any]] = {}
        for name, item in pairs:
            k = key(item)
            if k in seen:
                raise PluginError(
                    f"plugin '{name}' registers {what} {_show_key(k)} already registered by "
                    f"plugin '{seen[k][0]}'; rename one of them, or disable one plugin in "
                    "[plugins] disabled")
            seen[k] = (name, item)
        return seen

    def hooks_of(self, name: str) -> list[str]:
        """The hook names a plugin implements (for ``portico plugins``)."""
        module = self.info[name].module
        if module is None:
            return []
        return sorted(c.name for c in self.pm.get_hookcallers(module) or [])

    def folder(self, name: str, sub: str) -> Path | None:
        """A plugin's own ``templates/``, ``static/`` or ``migrations/`` folder, if it has one."""
        base = self.info[name].folder
        if base is not None and (base / sub).is_dir():
            return base / sub
        return None


def _hook_names() -> list[str]:
    return [n for n in dir(hookspecs) if hasattr(getattr(hookspecs, n), "portico_spec")]


def _show_key(key: Any) -> str:
    """``'/api/v1/x'``, or for a route with a responder suffix ``'/api/v1/x' (suffix 'refresh')``."""
    if isinstance(key, tuple) and len(key) == 2:
        return f"'{key[0]}'" + (f" (suffix '{key[1]}')" if key[1] else "")
    return f"'{key}'"


def _pluggy_message(exc: Exception) -> str:
    """pluggy's validation message on one line, without the object's repr."""
    text = str(exc)
    found = re.search(r"hookimpl definition: (.+)\nArgument\(s\) (\{.*?\})", text)
    if found:
        return f"{found[1]} declares argument(s) {found[2]} that the hook does not pass"
    lines = text.splitlines()[1:] or [text]
    return re.sub(r"\s*<[^>]*>\s*$", "", " ".join(line.strip() for line in lines))


def installed_plugin_names() -> set[str]:
    """Every plugin name known without importing any plugin (built-ins and entry points)."""
    names = {name for name, _ in BUILTIN_PLUGINS}
    return names | {ep.name for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def load_plugins(settings, extra: Iterable[tuple[str, Any]] = ()) -> Plugins:
    """Load and check the configured plugin set, and validate each plugin's settings."""
    plugins = Plugins(settings, extra)
    schemas = dict(plugins.each("register_settings"))
    settings.validate_plugins(schemas, set(plugins.info))
    return plugins
