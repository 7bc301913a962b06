"""The plugin manager: built-ins, then partner plugins from entry points.

Web, worker and CLI all load plugins through ``load_plugins()``, so every
route, actor and command a plugin registers exists in each of them.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import re
import types
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

import pluggy
from pluggy import HookImpl

import engine
from engine import hookspecs

if TYPE_CHECKING:  # pragma: no cover - imports for annotations only
    from engine.settings import Settings

#: A plugin to load: (name, loader, source, version).
Candidate = tuple[str, Callable[[], Any], str, str]

log = logging.getLogger("portico.hooks")

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
    ("operator", "plugins.operator"),
    ("webhooks", "plugins.webhooks"),
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

    def __init__(self, settings: Settings, extra: Iterable[tuple[str, Any]] = ()) -> None:
        self.pm = pluggy.PluginManager("portico")
        self.pm.add_hookspecs(hookspecs)
        self.info: dict[str, PluginInfo] = {}
        #: Who specifies each hook: "engine", or the plugin that added it (``register_hookspecs``).
        self.spec_owners: dict[str, str] = {n: "engine" for n in self.hook_names()}
        disabled = set(settings.plugins.disabled)
        forced = disabled & ESSENTIAL_PLUGINS
        if forced:
            raise PluginError(
                f"plugin '{sorted(forced)[0]}' is essential and cannot be disabled; "
                "remove it from [plugins] disabled"
            )
        candidates = list(self._builtins())
        if settings.plugins.entry_points:
            candidates += list(self._entry_points())
        candidates += [
            (name, functools.partial(_same, obj), "test", engine.__version__) for name, obj in extra
        ]
        known = {c[0] for c in candidates}
        unknown = disabled - known
        if unknown:
            typo = sorted(unknown)[0]
            close = difflib.get_close_matches(typo, known, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise PluginError(
                f"[plugins] disabled names unknown plugin '{typo}'{hint}; "
                f"installed plugins: {', '.join(sorted(known))}"
            )
        for name, load, source, version in candidates:
            if name in self.info:
                raise PluginError(
                    f"two plugins are named '{name}' ({self.info[name].source} and {source}); "
                    "rename the entry point of one of them"
                )
            if name in disabled:
                # Blocked before import: a disabled plugin's code never runs.
                self.pm.set_blocked(name)
                self.info[name] = PluginInfo(name, None, source, version, False)
                continue
            module = self._load(name, load, source)
            try:
                self.pm.register(module, name=name)
                self._add_hookspecs(name)
            except pluggy.PluginValidationError as exc:
                raise PluginError(
                    f"plugin '{name}': {_pluggy_message(exc)}; a hookimpl may take only the "
                    "arguments its hook's spec names"
                ) from None
            self.info[name] = PluginInfo(name, module, source, version, True)
        for name, info in self.info.items():
            if info.enabled:
                self._check_marked(name, info.module)
        self._check_pending()
        self._check_requires()
        self._order_by_requires()
        debug = settings.get("debug") or {}
        if debug.get("trace_hooks"):
            self.pm.add_hookcall_monitoring(*_hook_trace())

    # -- loading -------------------------------------------------------------

    @staticmethod
    def _builtins() -> Iterator[Candidate]:
        for name, modname in BUILTIN_PLUGINS:
            yield (
                name,
                functools.partial(importlib.import_module, modname),
                "builtin",
                engine.__version__,
            )

    @staticmethod
    def _entry_points() -> Iterator[Candidate]:
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = ep.dist.name if ep.dist else "unknown"
            version = ep.dist.version if ep.dist else "?"
            yield ep.name, ep.load, dist, version

    @staticmethod
    def _load(name: str, load: Callable[[], Any], source: str) -> Any:
        """Import one plugin; a broken partner package is a start-up error naming it."""
        try:
            return load()
        except Exception as exc:
            where = "" if source in ("builtin", "test") else f" (distribution '{source}')"
            raise PluginError(
                f"plugin '{name}'{where} failed to load: {type(exc).__name__}: {exc}. "
                f"Fix or uninstall it, or add '{name}' to [plugins] disabled"
            ) from None

    def _add_hookspecs(self, name: str) -> None:
        """Add the hook specifications plugin ``name`` owns (``register_hookspecs``)."""
        for _, specs in self._collect(name, "register_hookspecs"):
            added = [n for n in self._spec_names(specs)]
            for hook in added:
                if hook in self.spec_owners:
                    raise PluginError(
                        f"plugin '{name}' specifies hook '{hook}', already specified by "
                        f"{_owner(self.spec_owners[hook])}; rename one of them"
                    )
            self.pm.add_hookspecs(specs)
            self.spec_owners.update((hook, name) for hook in added)

    def _spec_names(self, specs: Any) -> list[str]:
        return [n for n in dir(specs) if self.pm.parse_hookspec_opts(specs, n) is not None]

    def hook_names(self) -> list[str]:
        """Every hook with a specification: the engine's and those enabled plugins added."""
        return sorted(
            n
            for n, caller in vars(self.pm.hook).items()
            if not n.startswith("_") and caller.has_spec()
        )

    def _check_marked(self, name: str, module: Any) -> None:
        """A function named like a hook but not marked ``@hookimpl`` would be silently ignored."""
        own = getattr(module, "__name__", None)
        for hook in self.hook_names():
            fn = getattr(module, hook, None)
            if not callable(fn) or hasattr(fn, "portico_impl"):
                continue
            if isinstance(module, types.ModuleType) and getattr(fn, "__module__", None) != own:
                continue  # imported from elsewhere, not meant as a hookimpl
            raise PluginError(
                f"plugin '{name}' defines {hook}() without @hookimpl, so it would never be "
                "called; decorate it with @engine.hookimpl"
            )

    def _check_pending(self) -> None:
        """A hookimpl whose name is no hook (a typo) is a start-up error, not silence."""
        known = self.hook_names()
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
                    f"'{hook_name}'{hint}; hook names are listed in engine/hookspecs.py and "
                    "in each plugin's hookspecs.py (a hook of a plugin that may be disabled: "
                    "mark the implementation @hookimpl(optionalhook=True))"
                )

    def _check_requires(self) -> None:
        for name, needed in self.collect("plugin_requires"):
            info = self.info.get(needed)
            if info is None:
                raise PluginError(
                    f"plugin '{name}' needs plugin '{needed}', which is not installed"
                )
            if not info.enabled:
                raise PluginError(
                    f"plugin '{name}' needs plugin '{needed}', which is disabled; enable "
                    f"'{needed}' or also disable '{name}' in [plugins] disabled"
                )

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
                cycle = " -> ".join(visiting[visiting.index(name) :] + [name])
                raise PluginError(
                    f"plugins need each other in a cycle ({cycle}); "
                    "remove one plugin_requires or plugin_optional entry"
                )
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
    def hook(self) -> Any:
        """pluggy's hook relay: ``plugins.hook.<name>(**kwargs)`` for first-result and event hooks.

        pluggy decides the order (``tryfirst``, then the plugin loaded last, ..., ``trylast``)
        and runs wrappers around the call; a first-result hook stops at the first answer.
        """
        return self.pm.hook

    def collect(self, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call a hook that registers things, attributing each item: [(plugin name, item), ...].

        Each plugin is asked through pluggy (its wrappers and the hook-call trace included),
        plugin by plugin in dependency order (a plugin after the plugins it needs; a
        ``tryfirst`` implementation before the others, a ``trylast`` one after them). List
        answers are flattened, ``None`` answers dropped.
        """
        return self._collect(None, hook_name, **kwargs)

    def _collect(self, only: str | None, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = []
        for name, result in self._ask(only, hook_name, **kwargs):
            if isinstance(result, (list, tuple)):
                out.extend((name, item) for item in result)
            else:
                out.append((name, result))
        return out

    def _ask(self, only: str | None, hook_name: str, **kwargs: Any) -> Iterator[tuple[str, Any]]:
        """(plugin name, answer) of each implementing plugin (or of plugin ``only``)."""
        caller = getattr(self.pm.hook, hook_name)
        impls = [i for i in caller.get_hookimpls() if not (i.hookwrapper or i.wrapper)]
        rank = {n: i for i, n in enumerate(self.info)}
        impls.sort(
            key=lambda i: (
                0 if i.tryfirst else 2 if i.trylast else 1,
                rank.get(i.plugin_name, len(rank)),
            )
        )
        first = bool(caller.spec and caller.spec.opts.get("firstresult"))
        for impl in impls:
            if only is not None and impl.plugin_name != only:
                continue
            others = [i.plugin for i in impls if i is not impl]
            answers = self.pm.subset_hook_caller(hook_name, others)(**kwargs)
            for answer in [answers] if first else answers:
                if answer is not None:
                    yield impl.plugin_name, answer

    def unique(
        self, pairs: list[tuple[str, Any]], key: Callable[[Any], Any], what: str
    ) -> dict[Any, tuple[str, Any]]:
        """Index items by ``key(item)``; a duplicate is a start-up error naming both plugins."""
        seen: dict[Any, tuple[str, Any]] = {}
        for name, item in pairs:
            k = key(item)
            if k in seen:
                raise PluginError(
                    f"plugin '{name}' registers {what} {_show_key(k)} already registered by "
                    f"plugin '{seen[k][0]}'; rename one of them, or disable one plugin in "
                    "[plugins] disabled"
                )
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


def _same(obj: Any) -> Any:
    return obj


def _owner(owner: str) -> str:
    return "the engine" if owner == "engine" else f"plugin '{owner}'"


def _hook_trace() -> tuple[Callable[..., None], Callable[..., None]]:
    """pluggy monitoring callbacks that log each hook call: name, arguments, plugins, time.

    On with ``[debug] trace_hooks``; the lines go to the ``portico.hooks`` logger.
    """
    started = threading.local()

    def before(hook_name: str, hook_impls: list[HookImpl], kwargs: dict[str, Any]) -> None:
        started.__dict__.setdefault("stack", []).append(time.perf_counter())

    def after(
        outcome: Any, hook_name: str, hook_impls: list[HookImpl], kwargs: dict[str, Any]
    ) -> None:
        took = (time.perf_counter() - started.stack.pop()) * 1000
        args = ", ".join(f"{k}={_summary(v)}" for k, v in kwargs.items())
        plugins = ", ".join(i.plugin_name for i in reversed(hook_impls)) or "-"
        failed = " (raised)" if outcome.exception is not None else ""
        log.info("hook %s(%s) by [%s]: %.2f ms%s", hook_name, args, plugins, took, failed)

    return before, after


def _summary(value: Any) -> str:
    """A short description of a hook argument for the trace (never a full repr)."""
    if value is None or isinstance(value, (bool, int, float)):
        return repr(value)
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:37] + "...")
    row_id = getattr(value, "id", None)
    name = type(value).__name__
    return f"{name}#{row_id}" if isinstance(row_id, int) else name


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


def load_plugins(settings: Settings, extra: Iterable[tuple[str, Any]] = ()) -> Plugins:
    """Load and check the configured plugin set, and validate each plugin's settings."""
    plugins = Plugins(settings, extra)
    schemas = dict(plugins.collect("register_settings"))
    settings.validate_plugins(schemas, set(plugins.info))
    return plugins
