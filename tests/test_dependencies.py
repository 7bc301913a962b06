"""Dependencies have ranges, and the tests run on pinned versions (issue 15, item 6).

Every requirement in ``setup.cfg`` has an upper bound (the next major version), so a
release of a dependency cannot break an installed portal without a change here; and
``constraints.txt`` pins every package of the test environment (``scripts/_venv.sh``
installs with it), inside those ranges. After changing a requirement:
``scripts/update-constraints``, then the tests, then commit both files.
"""

from __future__ import annotations

import configparser
import re
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
UPDATE = "run scripts/update-constraints and commit constraints.txt"


def requirements() -> list[Requirement]:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    lines = cfg["options"]["install_requires"].splitlines()
    for extra in cfg["options.extras_require"].values():
        lines += extra.splitlines()
    return [Requirement(line) for line in (x.strip() for x in lines) if line]


def pins() -> dict[str, str]:
    """``{canonical name: version}`` from constraints.txt."""
    out = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            found = re.fullmatch(r"([A-Za-z0-9._-]+)==(\S+)", line.strip())
            assert found, f"constraints.txt: {line!r} is not name==version"
            out[canonicalize_name(found[1])] = found[2]
    return out


REQUIREMENTS = requirements()


def test_setup_cfg_lists_the_requirements():
    names = {canonicalize_name(r.name) for r in REQUIREMENTS}
    assert {"falcon", "peewee", "pluggy", "stripe", "pytest", "boto3"} <= names


def test_every_requirement_has_an_upper_bound():
    unbounded = [
        str(r)
        for r in REQUIREMENTS
        if not any(s.operator in ("<", "<=", "==", "~=") for s in r.specifier)
    ]
    assert not unbounded, (
        "setup.cfg: no upper bound (add the next major version, e.g. "
        f"falcon>=4.0,<5): {', '.join(unbounded)}"
    )


def test_constraints_pin_every_requirement_inside_its_range():
    pinned = pins()
    missing = [r.name for r in REQUIREMENTS if canonicalize_name(r.name) not in pinned]
    assert not missing, f"constraints.txt does not pin {', '.join(missing)}: {UPDATE}"
    outside = [
        f"{r.name}=={pinned[canonicalize_name(r.name)]} (setup.cfg: {r.specifier})"
        for r in REQUIREMENTS
        if not r.specifier.contains(pinned[canonicalize_name(r.name)], prereleases=True)
    ]
    assert not outside, f"constraints.txt pins outside setup.cfg's ranges: {outside}: {UPDATE}"


def test_constraints_leave_out_portico_and_the_examples():
    assert not {"portico", "acme-weather"} & set(pins())


def test_the_test_environment_has_the_pinned_versions():
    """scripts/_venv.sh installs with -c constraints.txt; each requirement is at its pin."""
    pinned = pins()
    differ = [
        f"{r.name} {metadata.version(r.name)} (pinned {pinned.get(canonicalize_name(r.name))})"
        for r in REQUIREMENTS
        if metadata.version(r.name) != pinned.get(canonicalize_name(r.name))
    ]
    assert not differ, (
        f"not the pinned versions here: {differ}; reinstall with "
        "PORTICO_REINSTALL=1 bash scripts/test --co -q -n0"
    )
