"""``portico plugin new NAME``: write a partner plugin's distribution from ``files/``.

The files are templates with ``[[key]]`` markers (not Jinja: the plugin's own page
template is Jinja); a path part ``_package_`` becomes the package's name and a
leading ``dot-`` a dot. What comes out installs with ``pip install -e`` and passes
its own tests as written (``tests/test_plugin_scaffold.py`` proves it).
"""

from __future__ import annotations

import importlib.util
import keyword
import re
from pathlib import Path

import engine
from engine.plugins import BUILTIN_PLUGINS

FILES = Path(__file__).parent / "files"
#: A plugin name: lowercase words of letters and digits, joined by single hyphens or underscores.
NAME_PATTERN = re.compile(r"[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*")
#: Its table names (``<package>_item``) and their indexes must fit PostgreSQL's 63 characters.
MAX_NAME = 30
#: Names taken by Portico's own packages, plugins and top-level paths.
RESERVED = {name for name, _ in BUILTIN_PLUGINS} | {
    "engine",
    "plugins",
    "themes",
    "tests",
    "portico",
    "api",
    "static",
    "staff",
}
_MARKER = re.compile(r"\[\[(\w+)\]\]")


class ScaffoldError(ValueError):
    """The name or the target folder cannot be used; the message says why and what to do."""


def check_name(name: str) -> str:
    """The package name for plugin ``name``, or ``ScaffoldError`` saying what is wrong."""
    if not NAME_PATTERN.fullmatch(name):
        raise ScaffoldError(
            f"plugin name {name!r} is not valid: use lowercase letters and digits, words "
            "joined by single hyphens, starting with a letter (e.g. acme-inventory)"
        )
    if len(name) > MAX_NAME:
        raise ScaffoldError(
            f"plugin name {name!r} is longer than {MAX_NAME} characters "
            "(its table and index names must fit the database's limit)"
        )
    package = name.replace("-", "_")
    if keyword.iskeyword(package):
        raise ScaffoldError(f"plugin name {name!r} is a Python keyword; choose another name")
    if name in RESERVED or package in RESERVED:
        raise ScaffoldError(
            f"plugin name {name!r} is taken by Portico itself; "
            f"prefix it with your company's name (e.g. acme-{name})"
        )
    if _importable(package):
        raise ScaffoldError(
            f"a module named {package!r} is already importable here, and the "
            "plugin's package would shadow it; choose another name"
        )
    return package


def _importable(package: str) -> bool:
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return False
    # A folder without __init__.py (e.g. a checkout's tests/) is a namespace, not a module.
    return spec is not None and spec.origin not in (None, "namespace")


def values(name: str, package: str) -> dict[str, str]:
    """What the ``[[key]]`` markers stand for."""
    major, minor = (int(part) for part in engine.__version__.split(".")[:2])
    words = [word.capitalize() for word in re.split(r"[-_]", name)]
    return {
        "name": name,
        "package": package,
        "title": " ".join(words),
        "camel": "".join(words),
        "table": f"{package}_item",
        "portico_requirement": f"portico>={major}.{minor},<{major + 1}",
    }


def render(text: str, marks: dict[str, str]) -> str:
    """``text`` with every ``[[key]]`` replaced; an unknown key is a bug in the templates."""
    return _MARKER.sub(lambda found: marks[found[1]], text)


def target_path(relative: Path, package: str) -> Path:
    parts = [part.replace("_package_", package) for part in relative.parts]
    parts[-1] = parts[-1].removesuffix(".tmpl")
    if parts[-1].startswith("dot-"):
        parts[-1] = "." + parts[-1][len("dot-") :]
    return Path(*parts)


def new_plugin(name: str, parent: Path) -> Path:
    """Write the distribution of plugin ``name`` into ``parent/name``; returns that folder."""
    package = check_name(name)
    target = Path(parent) / name
    try:
        target.mkdir(parents=True)
    except FileExistsError:
        raise ScaffoldError(
            f"{target} already exists; choose another --dir or remove it "
            "first (nothing was written)"
        ) from None
    marks = values(name, package)
    sources = sorted(p for p in FILES.rglob("*.tmpl") if p.is_file())
    for source in sources:
        out = target / target_path(source.relative_to(FILES), package)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(render(source.read_text(), marks))
    return target
