"""The import contracts (setup.cfg ``[importlinter]``, ``engine/plugin_imports.py``).

The engine imports no plugin; a plugin imports another plugin only through its public
facade (``<plugin>/public.py``), and only one it names in ``plugin_requires`` or
``plugin_optional``. The real code keeps them, and a made-up plugin set that breaks each
rule is caught, naming the import and the fix.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or "lint-imports"


def lint(cwd: Path, *args: str, pythonpath: list[Path] = ()) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [*(str(p) for p in pythonpath), str(ROOT), os.environ.get("PYTHONPATH", "")]
        ),
    }
    return subprocess.run(
        [LINT, "--no-cache", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def write(base: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = base / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


@pytest.mark.spec("ENG-2")
def test_the_code_keeps_every_import_contract():
    run = lint(ROOT)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Contracts: 2 kept, 0 broken." in run.stdout


CONFIG = """\
[importlinter]
root_packages =
    fake_engine
    fake_plugins
contract_types =
    plugin_facades: engine.plugin_imports.PluginFacadesContract

[importlinter:contract:engine]
name = The engine imports no plugin
type = forbidden
source_modules =
    fake_engine
forbidden_modules =
    fake_plugins

[importlinter:contract:facades]
name = Plugins import only declared plugins' public facades
type = plugin_facades
containers =
    fake_plugins
"""


@pytest.mark.spec("ENG-2")
def test_a_private_import_an_undeclared_facade_and_an_engine_import_are_caught(tmp_path):
    write(
        tmp_path,
        {
            ".importlinter": CONFIG,
            "fake_engine/__init__.py": "",
            "fake_engine/app.py": "from fake_plugins.good import thing\n",
            "fake_plugins/__init__.py": "",
            "fake_plugins/base/__init__.py": "",
            "fake_plugins/base/public.py": "from fake_plugins.base.private import helper\n",
            "fake_plugins/base/private.py": "def helper():\n    pass\n",
            # Reaches past the facade:
            "fake_plugins/sneaky/__init__.py": """\
            def plugin_requires():
                return ["base"]
            """,
            "fake_plugins/sneaky/pages.py": "from fake_plugins.base.private import helper\n",
            # Uses the facade, but never says it needs base:
            "fake_plugins/silent/__init__.py": "",
            "fake_plugins/silent/service.py": "from fake_plugins.base.public import helper\n",
            # Does it right (optional use counts as declared):
            "fake_plugins/good/__init__.py": """\
            def plugin_optional():
                return ["base"]
            """,
            "fake_plugins/good/thing.py": "from fake_plugins.base.public import helper\n",
        },
    )
    run = lint(tmp_path, "--config", str(tmp_path / ".importlinter"), pythonpath=[tmp_path])
    out = " ".join((run.stdout + run.stderr).split())  # lint-imports wraps long lines
    assert run.returncode == 1, out
    assert "Contracts: 0 kept, 2 broken." in out
    assert (
        "fake_plugins.sneaky.pages -> fake_plugins.base.private (l.1): import "
        "fake_plugins.base.public instead" in out
    )
    assert (
        "fake_plugins.silent.service -> fake_plugins.base.public (l.1): 'silent' does "
        "not name 'base' in plugin_requires or plugin_optional" in out
    )
    assert "fake_engine.app -> fake_plugins.good.thing" in out
    assert "fake_plugins.good.thing ->" not in out
    assert "fake_plugins.base.public -> fake_plugins.base.private" not in out  # its own
