"""Settings (ENG-3): portico.toml, PORTICO_* overrides, secret references, validation, `portico check`.

Every error names the key as the operator writes it; secrets never reach the
output of ``portico check``, whether written inline or pulled in with
``$env:NAME`` / ``$file:PATH``.
"""

from __future__ import annotations

import json
import os
import re
import stat
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli import cli
from engine.settings import SECRET_MASK, SettingsError, load_settings

SECRET = "k" * 40


def toml(tmp_path, text: str, name: str = "portico.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def allow(path=None) -> dict:
    """What a test portal outside demo mode must say (OPS-2), as variables; the environment
    beats the file, so base_url comes from here only when the test's file has none."""
    out = {"PORTICO_MAIL_ALLOW_FILE_BACKEND": "true", "PORTICO_SANDBOX_ALLOW_OUTSIDE_DEMO": "true"}
    if not (
        path
        and Path(path).exists()
        and re.search(r"^\s*base_url\s*=", Path(path).read_text(), re.M)
    ):
        out["PORTICO_BASE_URL"] = "http://portal.test"
    return out


def load(tmp_path, path=None, environ=None, **overrides):
    """Settings the way the CLI reads them, minus the developer's real environment."""
    environ = {"PORTICO_DATA_DIR": str(tmp_path / "data"), **allow(path), **(environ or {})}
    return load_settings(path, environ=environ, overrides=overrides or None)


def error(tmp_path, *args, **kwargs) -> str:
    with pytest.raises(SettingsError) as caught:
        load(tmp_path, *args, **kwargs)
    return str(caught.value)


@pytest.fixture
def clean_env(monkeypatch):
    for key in [k for k in os.environ if k.startswith("PORTICO_")]:
        monkeypatch.delenv(key)


def check(tmp_path, *args, **env):
    """``portico [args] check`` with only the given environment (plus a data folder)."""
    config = args[args.index("--config") + 1] if "--config" in args else None
    environ = {"PORTICO_DATA_DIR": str(tmp_path / "data"), **allow(config), **env}
    return CliRunner().invoke(cli, [*args, "check"], env=environ, catch_exceptions=False)


# -- where settings come from ---------------------------------------------------------------------


@pytest.mark.spec("ENG-3")
def test_toml_file_from_the_config_option(tmp_path, clean_env):
    path = toml(
        tmp_path,
        f"""
        secret_key = "{SECRET}"
        base_url = "https://portal.example.net"

        [web]
        port = 9000

        [mail]
        backend = "smtp"
        smtp_host = "mail.example.net"
        """,
    )
    result = check(tmp_path, "--config", str(path))
    assert result.exit_code == 0, result.output
    first, _, body = result.output.partition("\n")
    assert first == f"# configuration OK ({path})"
    config = json.loads(body)
    assert config["base_url"] == "https://portal.example.net"
    assert config["web"]["port"] == 9000 and config["web"]["host"] == "127.0.0.1"  # default kept
    assert config["mail"]["backend"] == "smtp" and config["mail"]["smtp_host"] == "mail.example.net"
    assert config["security"]["cookie_secure"] is True  # follows an https base_url


@pytest.mark.spec("ENG-3")
def test_toml_file_from_portico_config(tmp_path):
    path = toml(tmp_path, f'secret_key = "{SECRET}"\n[web]\nworkers = 4\n')
    settings = load(tmp_path, environ={"PORTICO_CONFIG": str(path)})
    assert settings.source == str(path) and settings.web.workers == 4


def test_missing_or_broken_config_file(tmp_path):
    assert (
        error(tmp_path, tmp_path / "nope.toml")
        == f"config file {tmp_path / 'nope.toml'} does not exist"
    )
    broken = toml(tmp_path, "[web\nport = 1\n")
    assert error(tmp_path, broken).startswith(f"config file {broken}: ")


@pytest.mark.spec("ENG-3")
def test_environment_overrides_top_level_and_table_keys(tmp_path):
    path = toml(
        tmp_path,
        f"""
        secret_key = "{SECRET}"
        [web]
        port = 9000
        [mail]
        smtp_host = "from-file.example.net"
        """,
    )
    settings = load(
        tmp_path,
        path,
        environ={
            "PORTICO_DATABASE_URL": "postgresql://portico@db.internal/portico",
            "PORTICO_WEB_PORT": "9001",
            "PORTICO_MAIL_SMTP_HOST": "from-env.example.net",
            "PORTICO_SECURITY_SESSION_IDLE_MINUTES": "10",
            "PORTICO_MAIL_SMTP_STARTTLS": "true",
        },
    )
    assert settings.database_url == "postgresql://portico@db.internal/portico"
    assert settings.web.port == 9001  # environment beats the file, and is typed
    assert settings.mail.smtp_host == "from-env.example.net"
    assert settings.security.session_idle_minutes == 10
    assert settings.mail.smtp_starttls is True


def test_overrides_beat_the_environment(tmp_path):
    settings = load(
        tmp_path,
        environ={"PORTICO_WEB_PORT": "9001", "PORTICO_SECRET_KEY": SECRET},
        web={"port": 9002},
    )
    assert settings.web.port == 9002


@pytest.mark.spec("OPS-9")
def test_unknown_environment_variable_is_a_warning_naming_the_nearest_setting(tmp_path):
    settings = load(
        tmp_path,
        environ={"PORTICO_SECRET_KEY": SECRET, "PORTICO_XYZZY": "1", "PORTICO_WEB_PROT": "9001"},
    )
    assert settings.web.port == 8000
    assert settings.warnings() == [
        "PORTICO_WEB_PROT is not a Portico setting and is ignored (did you mean "
        "PORTICO_WEB_PORT?); see docs/configuration.md",
        "PORTICO_XYZZY is not a Portico setting and is ignored; see docs/configuration.md",
    ]


# -- secrets by reference ------------------------------------------------------------------------------


@pytest.mark.spec("ENG-3")
def test_env_and_file_references(tmp_path):
    key_file = tmp_path / "secret_key"
    key_file.write_text(SECRET + "\n")
    path = toml(
        tmp_path,
        f"""
        secret_key = "$file:{key_file}"
        [mail]
        smtp_password = "$env:SMTP_PASSWORD"
        """,
    )
    settings = load(tmp_path, path, environ={"SMTP_PASSWORD": "hunter2-smtp"})
    assert settings.secret_key == SECRET  # the trailing newline is stripped
    assert settings.mail.smtp_password == "hunter2-smtp"


def test_reference_in_an_environment_variable(tmp_path):
    settings = load(tmp_path, environ={"PORTICO_SECRET_KEY": "$env:VAULT_KEY", "VAULT_KEY": SECRET})
    assert settings.secret_key == SECRET


def test_unresolvable_references_name_the_key(tmp_path):
    path = toml(
        tmp_path, f'secret_key = "{SECRET}"\n[mail]\nsmtp_password = "$env:SMTP_PASSWORD"\n'
    )
    assert (
        error(tmp_path, path) == "mail.smtp_password: environment variable SMTP_PASSWORD is not set"
    )
    path = toml(tmp_path, f'secret_key = "$file:{tmp_path}/absent"\n')
    assert (
        error(tmp_path, path)
        == f"secret_key: cannot read {tmp_path}/absent: No such file or directory"
    )


# -- validation -----------------------------------------------------------------------------------------


@pytest.mark.spec("ENG-3")
@pytest.mark.parametrize(
    "text, message",
    [
        (
            "[web]\nport = 70000",
            "web.port: Must be greater than or equal to 1 and less than or equal to 65535.",
        ),
        ("[web]\nport = \"eighty\"", "web.port: Not a valid integer."),
        ("base_url = \"ftp://portal\"", "base_url: Not a valid URL."),
        (
            "databse_url = \"sqlite:///x\"",
            "databse_url: unknown setting (check the spelling; see docs/configuration.md)",
        ),
        ("[mail]\nbackend = \"pigeon\"", "mail.backend: Must be one of: file, smtp."),
        ("currency = \"POUNDS\"", "currency: Length must be 3."),
    ],
)
def test_validation_errors_name_the_key(tmp_path, text, message):
    path = toml(tmp_path, f'secret_key = "{SECRET}"\n{text}\n')
    assert error(tmp_path, path) == message


def test_every_error_is_listed_at_once(tmp_path):
    path = toml(tmp_path, f'secret_key = "{SECRET}"\n[web]\nport = 0\nworkers = 0\n')
    assert set(error(tmp_path, path).splitlines()) == {
        "web.port: Must be greater than or equal to 1 and less than or equal to 65535.",
        "web.workers: Must be greater than or equal to 1 and less than or equal to 64.",
    }


@pytest.mark.spec("ENG-3")
def test_secret_key_is_required_outside_demo(tmp_path):
    assert error(tmp_path).startswith(
        "secret_key: required outside demo mode (at least 32 characters"
    )
    assert (
        error(tmp_path, environ={"PORTICO_SECRET_KEY": "short"})
        == "secret_key: Shorter than minimum length 32."
    )


def test_demo_mode_generates_and_keeps_a_secret_key(tmp_path):
    first = load(tmp_path, environ={"PORTICO_DEMO": "true"})
    again = load(tmp_path, environ={"PORTICO_DEMO": "true"})
    assert len(first.secret_key) >= 32 and first.secret_key == again.secret_key
    key_file = tmp_path / "data" / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


# -- portico check ------------------------------------------------------------------------------------


@pytest.mark.spec("ENG-3")
def test_check_redacts_every_secret(tmp_path, clean_env):
    key_file = tmp_path / "secret_key"
    key_file.write_text("file-secret-" + "f" * 30)
    path = toml(
        tmp_path,
        f"""
        secret_key = "$file:{key_file}"
        database_url = "postgresql://portico:db-pass-123@db.internal:5432/portico"
        broker_url = "redis://:redis-pass-456@cache.internal:6379/0"
        [mail]
        backend = "smtp"
        smtp_user = "portal"
        smtp_password = "$env:SMTP_PASSWORD"
        """,
    )
    result = check(tmp_path, "--config", str(path), SMTP_PASSWORD="smtp-pass-789")
    assert result.exit_code == 0, result.output
    for secret in ("file-secret-", "db-pass-123", "redis-pass-456", "smtp-pass-789"):
        assert secret not in result.output
    config = json.loads(result.output.partition("\n")[2])
    assert config["secret_key"] == SECRET_MASK
    assert config["mail"]["smtp_password"] == SECRET_MASK
    assert config["mail"]["smtp_user"] == "portal"  # not a secret: shown
    assert config["database_url"] == f"postgresql://portico:{SECRET_MASK}@db.internal:5432/portico"
    assert config["broker_url"] == f"redis://:{SECRET_MASK}@cache.internal:6379/0"


def test_check_redacts_a_password_in_the_query_string(tmp_path, clean_env):
    result = check(
        tmp_path,
        PORTICO_SECRET_KEY=SECRET,
        PORTICO_DATABASE_URL="postgresql://db.internal/portico?user=p&password=q-pass-1",
    )
    assert result.exit_code == 0 and "q-pass-1" not in result.output


@pytest.mark.spec("ENG-3")
def test_check_fails_with_a_clear_message(tmp_path, clean_env):
    result = check(tmp_path, PORTICO_SECRET_KEY=SECRET, PORTICO_WEB_PORT="0")
    assert result.exit_code == 1
    assert result.stderr == (
        "configuration error:\nweb.port: Must be greater than or equal to 1 "
        "and less than or equal to 65535.\n"
    )
    assert "Traceback" not in result.output


def test_check_reports_plugin_errors(tmp_path, clean_env):
    result = check(tmp_path, PORTICO_SECRET_KEY=SECRET, PORTICO_PLUGINS_DISABLED="dashbord")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "configuration error:\n[plugins] disabled names unknown plugin "
        "'dashbord' (did you mean 'dashboard'?)"
    )


def test_check_reports_a_missing_secret_key(tmp_path, clean_env):
    result = check(tmp_path)
    assert result.exit_code == 1
    assert "secret_key: required outside demo mode" in result.stderr
