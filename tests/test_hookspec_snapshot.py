"""Hook specifications only grow (issue 15, item 7): partners' hookimpls must keep loading.

``tests/data/hookspecs.json`` records every hook the engine and its bundled plugins
specify, with its argument names. A hook or an argument that disappears (removed or
renamed) fails here: a partner's hookimpl declaring it would no longer load. A new
hook or argument fails too, until the snapshot is updated, so the file stays the record:

    scripts/snapshot-hookspecs      # rewrites tests/data/hookspecs.json; commit it

The specs are read from the live plugin manager after every bundled plugin is registered,
so a spec a plugin adds itself (``add_hookspecs``) is covered like the engine's.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

SNAPSHOT = Path(__file__).resolve().parent / "data" / "hookspecs.json"
UPDATE = "run scripts/snapshot-hookspecs and commit tests/data/hookspecs.json"


def live_specs() -> dict[str, dict]:
    """``{hook: {"args": [...], "firstresult": bool}}`` from the plugin manager of every
    bundled plugin (partner plugins' entry points off: their specs are theirs)."""
    from engine.plugins import load_plugins
    from engine.settings import load_settings

    settings = load_settings(
        None,
        environ={},
        serving=False,
        overrides={"demo": True, "plugins": {"entry_points": False}},
    )
    hooks = load_plugins(settings).pm.hook
    out = {}
    for name, caller in sorted(vars(hooks).items()):
        spec = getattr(caller, "spec", None)
        if name.startswith("_") or spec is None:
            continue
        out[name] = {
            "args": list(spec.argnames) + list(spec.kwargnames),
            "firstresult": bool(spec.opts.get("firstresult")),
        }
    return out


def breaks(old: dict[str, dict], new: dict[str, dict]) -> list[str]:
    """What a partner's plugin written against ``old`` would trip over in ``new``."""
    out = []
    for hook, was in sorted(old.items()):
        now = new.get(hook)
        if now is None:
            out.append(
                f"hook '{hook}' was removed or renamed: plugins implementing it would "
                "no longer load; keep it (document it as deprecated) and add the new one"
            )
            continue
        for arg in was["args"]:
            if arg not in now["args"]:
                out.append(
                    f"hook '{hook}' lost argument '{arg}' (removed or renamed): "
                    "hookimpls that declare it would no longer load; keep it and add "
                    "new arguments beside it"
                )
        if was["firstresult"] != now["firstresult"]:
            out.append(
                f"hook '{hook}' changed firstresult from {was['firstresult']} to "
                f"{now['firstresult']}: its callers and implementers disagree now"
            )
    return out


def additions(old: dict[str, dict], new: dict[str, dict]) -> list[str]:
    out = []
    for hook, now in sorted(new.items()):
        was = old.get(hook)
        if was is None:
            out.append(f"new hook '{hook}({', '.join(now['args'])})'")
            continue
        out += [
            f"new argument '{arg}' of hook '{hook}'"
            for arg in now["args"]
            if arg not in was["args"]
        ]
    return out


def snapshot() -> dict[str, dict]:
    return json.loads(SNAPSHOT.read_text())["hooks"]


def write_snapshot() -> None:
    """One line per hook, so a change reads as a one-line diff."""
    about = (
        "Hook specs and their arguments; they only grow. Rewritten by "
        "scripts/snapshot-hookspecs (tests/test_hookspec_snapshot.py)."
    )
    lines = [
        f"    {json.dumps(name)}: {json.dumps(spec, sort_keys=True)}"
        for name, spec in sorted(live_specs().items())
    ]
    SNAPSHOT.write_text(
        '{\n  "about": '
        + json.dumps(about)
        + ',\n  "hooks": {\n'
        + ",\n".join(lines)
        + "\n  }\n}\n"
    )


# -- the tests -------------------------------------------------------------------


def test_no_hook_or_argument_was_removed_or_renamed():
    problems = breaks(snapshot(), live_specs())
    assert not problems, "hook specs only grow:\n" + "\n".join(problems)


def test_the_snapshot_lists_every_hook_and_argument():
    new = additions(snapshot(), live_specs())
    assert not new, f"{'; '.join(new)}: {UPDATE}"


def test_the_snapshot_knows_the_engine_hooks():
    hooks = snapshot()
    assert hooks["register_routes"]["args"] == ["app"]
    assert hooks["provision_addon"] == {
        "args": ["app", "service", "addon", "action"],
        "firstresult": True,
    }
    assert len(hooks) >= 30


def test_each_hook_is_documented_once_in_the_plugin_guide():
    guide = (SNAPSHOT.parent.parent.parent / "docs" / "plugins.md").read_text()
    counts = {
        hook: len(re.findall(rf"^#### `{hook}\(", guide, re.MULTILINE)) for hook in live_specs()
    }
    assert {h: n for h, n in counts.items() if n != 1} == {}, (
        "docs/plugins.md: each hook needs exactly one '#### `hook(...)`' entry"
    )


def test_a_renamed_argument_or_hook_is_a_break_and_a_new_one_is_not():
    old = {
        "service_renewed": {
            "args": ["app", "service", "previous_period_start"],
            "firstresult": False,
        },
        "balance_low": {"args": ["app", "service"], "firstresult": False},
    }
    renamed_arg = {
        "service_renewed": {"args": ["app", "service", "period_start"], "firstresult": False},
        "balance_low": {"args": ["app", "service"], "firstresult": False},
    }
    assert breaks(old, renamed_arg) == [
        "hook 'service_renewed' lost argument 'previous_period_start' (removed or renamed): "
        "hookimpls that declare it would no longer load; keep it and add new arguments beside it"
    ]
    assert additions(old, renamed_arg) == ["new argument 'period_start' of hook 'service_renewed'"]
    renamed_hook = {
        "service_renewed": old["service_renewed"],
        "balance_went_low": old["balance_low"],
    }
    assert [p.split(":")[0] for p in breaks(old, renamed_hook)] == [
        "hook 'balance_low' was removed or renamed"
    ]
    grown = {
        **old,
        "balance_low": {"args": ["app", "service", "threshold"], "firstresult": False},
        "service_moved": {"args": ["app"], "firstresult": False},
    }
    assert breaks(old, grown) == []
    assert additions(old, grown) == [
        "new argument 'threshold' of hook 'balance_low'",
        "new hook 'service_moved(app)'",
    ]
    flipped = {**old, "balance_low": {"args": ["app", "service"], "firstresult": True}}
    assert "changed firstresult" in breaks(old, flipped)[0]


if __name__ == "__main__":  # scripts/snapshot-hookspecs
    sys.path.insert(0, str(SNAPSHOT.parent.parent.parent))
    write_snapshot()
    print(f"wrote {SNAPSHOT} ({len(snapshot())} hooks)")
