"""The documentation stays true to the code."""

from pathlib import Path

from engine.plugins import load_plugins
from engine.settings import load_settings, reference

ROOT = Path(__file__).resolve().parent.parent


def test_configuration_reference_is_current():
    settings = load_settings(
        None,
        environ={},
        overrides={"demo": True, "data_dir": "/tmp/x", "plugins": {"entry_points": False}},
    )
    plugins = load_plugins(settings)
    expected = reference(dict(plugins.collect("register_settings")))
    text = (ROOT / "docs" / "configuration.md").read_text()
    block = text.split("<!-- reference:start -->\n", 1)[1].split("<!-- reference:end -->", 1)[0]
    assert block == expected, (
        "regenerate the table in docs/configuration.md from "
        "`PORTICO_PLUGINS_ENTRY_POINTS=false portico check --reference`"
    )


def test_readme_starts_with_the_two_commands():
    lines = (ROOT / "README.md").read_text().splitlines()
    block = lines[lines.index("```sh") + 1 : lines.index("```")]
    assert [line.split()[0] for line in block] == ["./scripts/demo", "./scripts/test"]
