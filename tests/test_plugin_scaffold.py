"""Partners start from ``portico plugin new NAME`` (issue 15, item 7).

The plugin it writes must install and pass its own tests as generated. It is
installed into a virtualenv of its own that sees this one's packages (a ``.pth``
file), never into the test environment: an extra ``portico.plugins`` entry point
there would change every other test that loads partner plugins.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli import cli
from engine.scaffold import MAX_NAME

NAME, PACKAGE = "acme-inventory", "acme_inventory"


def portico(*args: str, **env: str):
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    parent = tmp_path_factory.mktemp("partner")
    result = portico("plugin", "new", NAME, "--dir", str(parent))
    assert result.exit_code == 0, result.output
    assert f"wrote plugin {NAME} in {parent / NAME}" in result.output
    return parent / NAME


@pytest.fixture(scope="module")
def partner_python(generated, tmp_path_factory) -> str:
    """A virtualenv with the generated plugin ``pip install -e``'d, on top of this one's packages."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    site_packages = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # addsitedir, not a plain path line: it also runs our .pth files (Portico's editable install).
    Path(site_packages, "_test_environment.pth").write_text(
        f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n"
    )
    install = subprocess.run(
        [python, "-m", "pip", "install", "-q", "--no-deps", "-e", str(generated)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    return python


def test_it_writes_a_whole_distribution(generated):
    files = {p.relative_to(generated).as_posix() for p in generated.rglob("*") if p.is_file()}
    assert files == {
        "setup.cfg",
        "pyproject.toml",
        "README.md",
        "babel.cfg",
        ".gitignore",
        f"{PACKAGE}/__init__.py",
        f"{PACKAGE}/models.py",
        f"{PACKAGE}/schemas.py",
        f"{PACKAGE}/service.py",
        f"{PACKAGE}/resources.py",
        f"{PACKAGE}/tasks.py",
        f"{PACKAGE}/migrations/0001_initial.py",
        f"{PACKAGE}/templates/{PACKAGE}/page.html",
        f"tests/test_{PACKAGE}.py",
    }
    for path in generated.rglob("*"):
        if path.is_file():
            assert not re.search(r"\[\[\w+\]\]", path.read_text()), f"{path} has a marker left"
        if path.suffix == ".py":
            compile(path.read_text(), str(path), "exec")  # valid Python, whatever the name
    setup = (generated / "setup.cfg").read_text()
    assert f"portico.plugins =\n    {NAME} = {PACKAGE}" in setup
    assert "portico>=0.1,<1" in setup  # the engine's hooks only grow until its next major


def test_the_generated_plugin_installs_and_passes_its_own_tests(generated, partner_python):
    run = subprocess.run(
        [partner_python, "-m", "pytest", "-q", "-p", "no:xdist"],
        cwd=generated,
        capture_output=True,
        text=True,
        timeout=1200,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    passed = re.search(r"(\d+) passed", run.stdout)
    assert passed and int(passed[1]) >= 7, run.stdout[-2000:]  # 7 tests, each per database
    assert " failed" not in run.stdout and " error" not in run.stdout


def test_portico_finds_it_through_its_entry_point(partner_python, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTICO_")}
    run = subprocess.run(
        [partner_python, "-m", "engine.cli", "plugins", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**env, "PORTICO_DATA_DIR": str(tmp_path)},
    )
    assert run.returncode == 0, run.stderr[-2000:]
    row = next(r for r in json.loads(run.stdout) if r["name"] == NAME)
    assert (row["source"], row["version"], row["enabled"]) == (NAME, "0.1.0", True)
    assert row["hooks"] == [
        "register_actors",
        "register_models",
        "register_routes",
        "register_sections",
    ]


def test_its_wheel_carries_the_template_and_the_migration(generated, tmp_path):
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "-w",
            str(tmp_path),
            str(generated),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = tmp_path.glob(f"{PACKAGE}-0.1.0-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {
        f"{PACKAGE}/templates/{PACKAGE}/page.html",
        f"{PACKAGE}/migrations/0001_initial.py",
    } <= names
    assert not any(n.startswith("tests/") for n in names)


# -- refusals ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, message",
    [
        ("Acme", "is not valid: use lowercase letters and digits"),
        ("1acme", "is not valid"),
        ("acme weather", "is not valid"),
        ("acme--weather", "is not valid"),
        ("acme-", "is not valid"),
        ("acme.weather", "is not valid"),
        ("../acme", "is not valid"),
        ("a" * (MAX_NAME + 1), f"is longer than {MAX_NAME} characters"),
        ("class", "is a Python keyword"),
        ("billing", "is taken by Portico itself; prefix it"),
        ("engine", "is taken by Portico itself"),
        ("json", "a module named 'json' is already importable"),
        ("click", "a module named 'click' is already importable"),
    ],
)
def test_a_bad_name_is_refused_with_the_reason(name, message, tmp_path):
    result = portico("plugin", "new", name, "--dir", str(tmp_path))
    assert result.exit_code == 1
    assert message in result.output, result.output
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_an_existing_folder_is_not_overwritten(tmp_path):
    (tmp_path / NAME).mkdir()
    (tmp_path / NAME / "setup.cfg").write_text("mine\n")
    result = portico("plugin", "new", NAME, "--dir", str(tmp_path))
    assert result.exit_code == 1
    assert f"{tmp_path / NAME} already exists" in result.output
    assert [p.name for p in (tmp_path / NAME).iterdir()] == ["setup.cfg"]
    assert (tmp_path / NAME / "setup.cfg").read_text() == "mine\n"


# -- portico plugins needs no secret key ---------------------------------------------


def test_portico_plugins_works_without_a_secret_key(tmp_path, monkeypatch):
    for key in [k for k in os.environ if k.startswith("PORTICO_")]:
        monkeypatch.delenv(key)
    result = portico("plugins", "--json", PORTICO_DATA_DIR=str(tmp_path))
    assert result.exit_code == 0, result.output
    assert {"core", "billing", "identity"} <= {r["name"] for r in json.loads(result.output)}
    # the commands that sign or seal still refuse to start without one
    check = portico("check", PORTICO_DATA_DIR=str(tmp_path))
    assert check.exit_code == 1 and "secret_key: required" in check.output
