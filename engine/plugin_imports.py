"""An import-linter contract: plugins reach each other only through their public facades.

Every plugin that others use has one module, ``<plugin>/public.py``; nothing else of a
plugin may be imported from outside it, and a plugin may import another's facade only when
it names that plugin in its ``plugin_requires`` or ``plugin_optional`` hookimpl. Configured
in ``setup.cfg`` and run by ``lint-imports`` (``scripts/test`` runs it before the tests)::

    [importlinter:contract:plugin-facades]
    type = plugin_facades
    containers = plugins        # each child package is a plugin
    plugins = acme_weather      # plugins that are packages of their own (partners)

The built-in contract types cannot say "only the public module" without listing every
private module of every plugin, hence this one. Only lint-imports imports this module.
"""

from __future__ import annotations

import importlib
from typing import Any, cast

from grimp import ImportGraph
from importlinter import Contract, ContractCheck, fields, output

FACADE = "public"


class PluginFacadesContract(Contract):
    type_name = "plugin_facades"

    containers = fields.ListField(subfield=fields.StringField(), required=False)
    plugins = fields.ListField(subfield=fields.StringField(), required=False)

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        # import-linter replaces each field on the instance with its parsed value (here a list)
        containers = cast("list[str] | None", self.containers)
        packages = {
            child for container in containers or [] for child in graph.find_children(container)
        }
        packages |= set(cast("list[str] | None", self.plugins) or [])
        packages = {p for p in packages if p in graph.modules}

        def owner(module: str) -> str | None:
            return next((p for p in packages if module == p or module.startswith(p + ".")), None)

        private, undeclared = [], []
        for importer in sorted(graph.modules):
            mine = owner(importer)
            if mine is None:
                continue
            for imported in sorted(graph.find_modules_directly_imported_by(importer)):
                theirs = owner(imported)
                if theirs is None or theirs == mine:
                    continue
                lines = tuple(
                    d["line_number"]
                    for d in graph.get_import_details(importer=importer, imported=imported)
                )
                link = {
                    "importer": importer,
                    "imported": imported,
                    "lines": lines,
                    "plugin": mine,
                    "needs": theirs,
                }
                if imported != f"{theirs}.{FACADE}":
                    private.append(link)
                elif _name(theirs) not in _declared(mine):
                    undeclared.append(link)
        return ContractCheck(
            kept=not (private or undeclared),
            metadata={"private": private, "undeclared": undeclared},
        )

    def render_broken_contract(self, check: ContractCheck) -> None:
        for link in check.metadata["private"]:
            output.print_error(
                f"- {link['importer']} -> {link['imported']} (l.{_lines(link)}): "
                f"import {link['needs']}.{FACADE} instead (its public facade)",
                bold=False,
            )
            output.new_line()
        for link in check.metadata["undeclared"]:
            output.print_error(
                f"- {link['importer']} -> {link['imported']} (l.{_lines(link)}): "
                f"'{_name(link['plugin'])}' does not name '{_name(link['needs'])}' in "
                "plugin_requires or plugin_optional",
                bold=False,
            )
            output.new_line()


def _name(package: str) -> str:
    """A plugin's name: ``plugins.billing`` is "billing"; a package of its own is named as
    its entry point usually is (``acme_weather`` is "acme-weather")."""
    container, _, last = package.rpartition(".")
    return last if container else last.replace("_", "-")


def _declared(package: str) -> set[str]:
    """The plugins a plugin package names in its module-level ``plugin_requires`` and
    ``plugin_optional`` hookimpls."""
    module = importlib.import_module(package)
    names: set[str] = set()
    for hook in ("plugin_requires", "plugin_optional"):
        fn = getattr(module, hook, None)
        if callable(fn):
            names |= set(fn() or [])
    return names


def _lines(link: dict[str, Any]) -> str:
    return ", ".join(map(str, link["lines"])) or "?"
