"""Settings: ``portico.toml`` plus ``PORTICO_*`` environment variables, validated.

Precedence, lowest first: built-in defaults, the TOML file (``--config`` or
``PORTICO_CONFIG``), then environment variables. ``PORTICO_DATABASE_URL`` sets
the top-level ``database_url``; ``PORTICO_MAIL_SMTP_HOST`` sets ``smtp_host`` in
the ``[mail]`` table; ``PORTICO_PLUGINS_DISABLED=addons,topups`` sets a list.
A string value ``$env:NAME`` or ``$file:PATH`` is replaced by that variable or
that file's content, so secrets stay out of the file.
"""
from __future__ import annotations

import ipaddress
import os
import re
import secrets
import tomllib
from pathlib import Path
from typing import Any

from marshmallow import (EXCLUDE, RAISE, Schema, ValidationError, fields, pre_load, validate,
                         validates_schema)

#: Environment variables that start with PORTICO_ but are not settings.
NOT_SETTINGS = {"PORTICO_CONFIG", "PORTICO_DEMO_PASSWORD"}
SECRET_MASK = "********"


class SettingsError(Exception):
    """Raised at start-up when the configuration is invalid; the message names the key."""


def secret(field: fields.Field) -> fields.Field:
    """Mark a field as secret so ``portico check`` never prints it."""
    field.metadata["secret"] = True
    return field


class CommaList(fields.List):
    """A list that also accepts ``"a,b,c"`` (environment variables are strings)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        return super()._deserialize(value, attr, data, **kwargs)


class PluginsSettings(Schema):
    disabled = CommaList(fields.String(), load_default=list)
    entry_points = fields.Boolean(load_default=True, metadata={
        "description": "load partner plugins from the portico.plugins entry-point group"})


def _ip_or_network(value: str) -> bool:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValidationError(f"{value!r} is not an IP address or network (CIDR)") from None
    return True


def _empty_or_long(value: str) -> bool:
    if value and len(value) < 16:
        raise ValidationError("at least 16 characters (or empty: no token)")
    return True


def _empty_or_host_port(value: str) -> bool:
    host, _, port = value.rpartition(":")
    if value and not (host and port.isdigit() and 0 < int(port) < 65536):
        raise ValidationError("host:port, e.g. 0.0.0.0:9191 (or empty)")
    return True


#: gunicorn's access line: no query string (it may carry tokens), the request id last.
ACCESS_LOG_FORMAT = ('%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms "%(a)s" '
                     '%({x-request-id}o)s')


class WebSettings(Schema):
    host = fields.String(load_default="127.0.0.1")
    port = fields.Integer(load_default=8000, validate=validate.Range(1, 65535))
    workers = fields.Integer(load_default=2, validate=validate.Range(1, 64))
    threads = fields.Integer(load_default=1, validate=validate.Range(1, 64))
    forwarded_allow_ips = fields.String(load_default="127.0.0.1", metadata={
        "description": "proxies (comma-separated, or *) whose X-Forwarded-For is believed"})
    max_body_bytes = fields.Integer(load_default=1024 * 1024, validate=validate.Range(1024),
                                    metadata={"description": "the largest request body (JSON, "
                                              "forms, webhooks) in bytes; a bigger one is "
                                              "refused with 413 before it is read (SEC-3)"})
    timeout = fields.Integer(load_default=60, validate=validate.Range(1, 3600), metadata={
        "description": "seconds a web worker may spend on one request before gunicorn "
                       "restarts it"})
    graceful_timeout = fields.Integer(load_default=30, validate=validate.Range(1, 3600),
                                      metadata={"description": "seconds running requests get "
                                                "to finish on a restart or stop"})
    keepalive = fields.Integer(load_default=5, validate=validate.Range(0, 300), metadata={
        "description": "seconds an idle keep-alive connection stays open (behind a proxy "
                       "that reuses connections, longer than its idle timeout)"})
    access_log = fields.Boolean(load_default=True, metadata={
        "description": "one line per request on stdout (`portico serve`)"})
    access_log_format = fields.String(load_default=ACCESS_LOG_FORMAT, metadata={
        "description": "gunicorn's access log format; `%({x-request-id}o)s` is the request "
                       "id, `%({portico.route}e)s` the route template (docs/monitoring.md)"})


class LoggingSettings(Schema):
    """``[logging]``: how the web, worker and scheduler processes write their log lines."""
    format = fields.String(load_default="text", validate=validate.OneOf(["text", "json"]),
                           metadata={"description": "json: one JSON object per line, with "
                                     "request_id (docs/monitoring.md)"})
    level = fields.String(load_default="info", validate=validate.OneOf(
        ["debug", "info", "warning", "error"]))


class MetricsSettings(Schema):
    """``[metrics]``: who may read ``/metrics`` (404 until one of these is set)."""
    token = secret(fields.String(load_default="", validate=_empty_or_long,
                                 metadata={"description": "a scrape sends `Authorization: "
                                           "Bearer <token>` (at least 16 characters)"}))
    allow_ips = CommaList(fields.String(validate=_ip_or_network), load_default=list, metadata={
        "description": "addresses or networks (CIDR) that may scrape; with a token too, "
                       "a scrape needs both"})
    worker_bind = fields.String(load_default="", validate=_empty_or_host_port, metadata={
        "description": "host:port where `portico worker` serves its own /metrics (task "
                       "runs); empty: not served"})


class SentrySettings(Schema):
    """``[sentry]``: report unhandled errors to Sentry (needs `pip install portico[sentry]`)."""
    dsn = secret(fields.String(load_default="", metadata={
        "description": "the project's DSN; empty: no error reporting"}))
    environment = fields.String(load_default="production")
    sample_rate = fields.Float(load_default=1.0, validate=validate.Range(0, 1), metadata={
        "description": "the share of errors sent"})


class MailSettings(Schema):
    backend = fields.String(load_default="file", validate=validate.OneOf(["file", "smtp"]))
    sender = fields.String(load_default="Portico <no-reply@example.com>")
    smtp_host = fields.String(load_default="127.0.0.1")
    smtp_port = fields.Integer(load_default=25, validate=validate.Range(1, 65535))
    smtp_user = fields.String(load_default="")
    smtp_password = secret(fields.String(load_default=""))
    smtp_starttls = fields.Boolean(load_default=False)
    smtp_ssl = fields.Boolean(load_default=False)


class SecuritySettings(Schema):
    session_idle_minutes = fields.Integer(load_default=30, validate=validate.Range(1, 1440))
    session_absolute_hours = fields.Integer(load_default=12, validate=validate.Range(1, 720))
    impersonation_idle_minutes = fields.Integer(load_default=15, validate=validate.Range(1, 240))
    impersonation_saved_card_payments = fields.Boolean(load_default=False, metadata={
        "description": "let staff impersonating a customer pay with the customer's saved "
                       "cards (IMP-6); off, they can still pay with a card the customer "
                       "gives them"})
    sign_out_removes_push = fields.Boolean(load_default=True, metadata={
        "description": "a password reset or 'sign out everywhere' also removes the login's "
                       "web push subscriptions (SEC-4)"})
    reset_revokes_api_keys = fields.Boolean(load_default=False, metadata={
        "description": "a completed password reset also revokes the API keys the login made "
                       "(SEC-4; off: integrations keep working, docs/identity.md)"})
    cookie_secure = fields.Boolean(load_default=None, allow_none=True, metadata={
        "description": "default: true when base_url is https"})
    password_policy = fields.String(load_default="composition",
                                    validate=validate.OneOf(["composition", "length"]))
    rate_limit_storage = fields.String(load_default="database", metadata={
        "description": "'database', or a redis:// URL"})


class SupportSettings(Schema):
    phone = fields.String(load_default="+44 20 7946 0000")
    email = fields.String(load_default="support@example.com")
    chat_url = fields.String(load_default="")
    hours = fields.String(load_default="24/7")


class OutboundSettings(Schema):
    """``[outbound]``: requests to URLs customers give (web push, webhooks; engine/outbound.py)."""
    unsafe_allow_loopback_for_tests = fields.Boolean(load_default=False, metadata={
        "description": "TESTS ONLY: let outbound requests reach 127.0.0.1 and ::1 (a test's "
                       "own server); never in production. `portico check` warns while on"})


class StorageSettings(Schema):
    """Where generated files (invoice PDFs, archives) live: see docs/storage.md."""
    backend = fields.String(load_default="local", validate=validate.OneOf(
        ["local", "database", "s3"]), metadata={
            "description": "where invoice PDFs and archives are stored; with several nodes, "
                           "database or s3 (or a folder every node mounts)"})
    path = fields.String(load_default="", metadata={
        "description": "local: the folder (default: <data_dir>/files)"})
    s3_bucket = fields.String(load_default="", metadata={"description": "s3: the bucket"})
    s3_prefix = fields.String(load_default="", metadata={
        "description": "s3: a prefix for every key, e.g. 'portico/'"})
    s3_endpoint_url = fields.String(load_default="", validate=lambda url: url == "" or (
        validate.URL(require_tld=False, schemes={"http", "https"})(url) is not None),
        metadata={"description": "s3: the store's URL (MinIO, Ceph, ...); empty for AWS"})
    s3_region = fields.String(load_default="", metadata={"description": "s3: the region"})
    s3_access_key_id = secret(fields.String(load_default="", metadata={
        "description": "s3: empty to use boto3's own chain (environment, instance role)"}))
    s3_secret_access_key = secret(fields.String(load_default=""))
    s3_addressing_style = fields.String(load_default="auto", validate=validate.OneOf(
        ["auto", "path", "virtual"]), metadata={"description": "s3: 'path' for most "
                                                "self-hosted stores"})
    s3_redirect = fields.Boolean(load_default=False, metadata={
        "description": "s3: answer downloads with a redirect to a 5-minute signed URL of the "
                       "store (customers' browsers must reach it)"})

    @validates_schema
    def s3_needs_a_bucket(self, data, **kwargs):
        if data.get("backend") == "s3" and not data.get("s3_bucket"):
            raise ValidationError("required when backend is 's3'", "s3_bucket")


class CoreSettings(Schema):
    """The engine's own keys. Plugin tables are validated by each plugin's schema."""

    class Meta:
        unknown = RAISE

    base_url = fields.String(load_default="http://127.0.0.1:8000",
                             validate=validate.URL(require_tld=False, schemes={"http", "https"}),
                             metadata={"description": "public URL of the portal; links in emails "
                                       "use it; https turns on Secure cookies and HSTS"})
    secret_key = secret(fields.String(load_default=None, allow_none=True,
                                      validate=validate.Length(min=32), metadata={
                                          "description": "signs CSRF tokens and links, and seals "
                                          "2FA seeds and backup codes (keep it: a new one makes "
                                          "them unreadable; rotate with secret_keys); required "
                                          "outside demo mode, at least 32 characters"}))
    secret_keys = secret(CommaList(fields.String(validate=validate.Length(min=32)),
                                   load_default=list, metadata={
                                       "description": "rotation (SEC-6): the first key signs and "
                                       "seals, every key verifies and opens; wins over secret_key "
                                       "when both are set (then secret_key is ignored); see "
                                       "docs/configuration.md, Rotating the secret key"}))
    data_dir = fields.String(load_default="./var", metadata={
        "description": "where SQLite files, demo mail and (by default) stored files live"})
    database_url = secret(fields.String(load_default=None, allow_none=True, metadata={
        "description": "sqlite:///path (default: <data_dir>/portico.sqlite3) or "
                       "postgresql://user:password@host:5432/db"}))
    broker_url = secret(fields.String(load_default=None, allow_none=True, metadata={
        "description": "redis://host:6379/0?namespace=portico, amqp://user:pw@host:5672/ or "
                       "sqlite:///path (default: the embedded queue in <data_dir>)"}))
    theme = fields.String(load_default="default", metadata={
        "description": "theme name, looked up in theme_paths then the shipped themes/"})
    theme_paths = CommaList(fields.String(), load_default=list, metadata={
        "description": "folders holding the operator's themes"})
    default_locale = fields.String(load_default="en", validate=validate.OneOf(["en", "zh_Hans"]))
    default_timezone = fields.String(load_default="Europe/London")
    currency = fields.String(load_default="GBP", validate=validate.Length(equal=3))
    demo = fields.Boolean(load_default=False, metadata={
        "description": "demo mode: generated secret key, migrate and seed on serve"})
    plugins = fields.Nested(PluginsSettings)
    web = fields.Nested(WebSettings)
    mail = fields.Nested(MailSettings)
    security = fields.Nested(SecuritySettings)
    support = fields.Nested(SupportSettings)
    outbound = fields.Nested(OutboundSettings)
    storage = fields.Nested(StorageSettings)
    logging = fields.Nested(LoggingSettings)
    metrics = fields.Nested(MetricsSettings)
    sentry = fields.Nested(SentrySettings)

    @pre_load
    def every_table(self, data, **kwargs):
        """Missing tables load as empty ones, so their defaults apply."""
        tables = [k for k, f in self.fields.items() if isinstance(f, fields.Nested)]
        return {**{k: {} for k in tables}, **data}


class Section(dict):
    """A settings table whose keys read as attributes."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class Settings(Section):
    """The validated configuration. Core keys are attributes; plugin tables via ``plugin()``."""

    def __init__(self, core: dict, plugin_tables: dict, source: str | None,
                 secret_fields: set[str]):
        super().__init__({k: Section(v) if isinstance(v, dict) else v for k, v in core.items()})
        self._plugin_raw = plugin_tables
        self._plugin_values: dict[str, Section] = {}
        self.source = source
        self._secret_fields = set(secret_fields)

    def warnings(self) -> list[str]:
        """Settings that are valid but unsafe; ``portico check`` prints each."""
        out = []
        if self["outbound"]["unsafe_allow_loopback_for_tests"]:
            out.append("outbound.unsafe_allow_loopback_for_tests is on: customers' push and "
                       "webhook URLs may reach services on this machine. It is for tests only.")
        return out

    @property
    def data_path(self) -> Path:
        return Path(self["data_dir"]).resolve()

    def plugin(self, name: str) -> Section:
        """Return a plugin's validated table (empty when it declares none)."""
        return self._plugin_values.get(name, Section())

    def validate_plugins(self, schemas: dict[str, type[Schema]], known: set[str]) -> None:
        """Validate each enabled plugin's table; refuse tables nobody owns."""
        owners = {n.replace("-", "_"): n for n in known}
        for key in self._plugin_raw:
            if key not in owners:
                raise SettingsError(
                    f"unknown settings table [{key}]: no installed plugin is named "
                    f"'{key}' (plugins: {', '.join(sorted(known))})")
        for name, schema_cls in schemas.items():
            table = name.replace("-", "_")  # messages name the table as the operator writes it
            raw = self._plugin_raw.get(table, {})
            self._plugin_values[name] = Section(_load(schema_cls(), raw, prefix=table))
            self._secret_fields |= {f"{table}.{f}" for f in _secret_names(schema_cls())}

    def redacted(self) -> dict:
        """The effective configuration with every secret replaced by a mask."""
        out: dict = {}
        for key, value in self.items():
            if isinstance(value, dict):
                out[key] = {k: self._mask(f"{key}.{k}", v) for k, v in value.items()}
            else:
                out[key] = self._mask(key, value)
        for name, values in self._plugin_values.items():
            table = name.replace("-", "_")
            if values:
                out[table] = {k: self._mask(f"{table}.{k}", v) for k, v in values.items()}
        return out

    def _mask(self, dotted: str, value: Any) -> Any:
        if dotted in self._secret_fields and value not in (None, ""):
            if isinstance(value, str) and "://" in value:
                return _redact_url(value)
            if isinstance(value, list):  # how many keys (secret_keys), not what they are
                return [SECRET_MASK for _ in value]
            return SECRET_MASK
        return value


def _redact_url(url: str) -> str:
    """Keep a URL readable but hide its password: ``postgresql://u:***@h/db``."""
    url = re.sub(r"(://[^:/@]*:)[^@]+@", r"\1" + SECRET_MASK + "@", url)  # redis://:pw@h too
    return re.sub(r"([?&]password=)[^&]+", r"\1" + SECRET_MASK, url)


def _secret_names(schema: Schema) -> set[str]:
    return {name for name, f in schema.fields.items() if f.metadata.get("secret")}


def _resolve_refs(value: Any, key: str, environ: dict | None = None) -> Any:
    """Replace ``$env:NAME`` and ``$file:PATH`` references, recursively."""
    environ = os.environ if environ is None else environ
    if isinstance(value, dict):
        return {k: _resolve_refs(v, f"{key}.{k}" if key else k, environ) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_refs(v, key, environ) for v in value]
    if isinstance(value, str) and value.startswith("$env:"):
        name = value[5:]
        if name not in environ:
            raise SettingsError(f"{key}: environment variable {name} is not set")
        return environ[name]
    if isinstance(value, str) and value.startswith("$file:"):
        path = Path(value[6:]).expanduser()
        try:
            return path.read_text().strip()
        except OSError as exc:
            raise SettingsError(f"{key}: cannot read {path}: {exc.strerror}") from None
    return value


def _load(schema: Schema, raw: dict, prefix: str = "") -> dict:
    try:
        return schema.load(raw, unknown=RAISE)
    except ValidationError as exc:
        raise SettingsError(_describe(exc.messages, prefix)) from None


def _describe(messages: Any, prefix: str) -> str:
    """Flatten marshmallow's nested messages into ``key: message`` lines."""
    lines = []
    for key, msg in messages.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(msg, dict):
            lines.append(_describe(msg, dotted))
        else:
            text = "; ".join(msg) if isinstance(msg, list) else str(msg)
            if text == "Unknown field.":
                text = "unknown setting (check the spelling; see docs/configuration.md)"
            lines.append(f"{dotted}: {text}")
    return "\n".join(lines)


def _env_overrides(environ: dict[str, str], tables: set[str]) -> dict:
    """Map ``PORTICO_*`` variables onto the settings tree."""
    core = CoreSettings()
    nested = {k for k, f in core.fields.items() if isinstance(f, fields.Nested)}
    out: dict = {}
    for name, value in environ.items():
        if not name.startswith("PORTICO_") or name in NOT_SETTINGS or name.startswith("PORTICO_TEST_"):
            continue
        key = name[len("PORTICO_"):].lower()
        table = next((t for t in sorted(nested | tables, key=len, reverse=True)
                      if key.startswith(t + "_")), None)
        if table and key not in core.fields:
            out.setdefault(table, {})[key[len(table) + 1:]] = value
        elif key in core.fields:
            out[key] = value
        else:
            raise SettingsError(f"{name}: unknown setting (see docs/configuration.md)")
    return out


def _merge(base: dict, extra: dict) -> dict:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_settings(path: str | os.PathLike | None = None, *, environ: dict | None = None,
                  overrides: dict | None = None, plugin_names: set[str] | None = None) -> Settings:
    """Read, merge and validate the configuration.

    ``plugin_names`` lets ``PORTICO_<PLUGIN>_<KEY>`` variables reach plugin tables.
    ``overrides`` (used by the CLI and tests) win over everything.
    """
    environ = dict(os.environ if environ is None else environ)
    path = path or environ.get("PORTICO_CONFIG")
    raw: dict = {}
    if path:
        try:
            raw = tomllib.loads(Path(path).read_text())
        except FileNotFoundError:
            raise SettingsError(f"config file {path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"config file {path}: {exc}") from None
    if plugin_names is None:
        from engine.plugins import installed_plugin_names
        plugin_names = installed_plugin_names()
    plugin_tables = {n.replace("-", "_") for n in plugin_names}
    raw = _merge(raw, _env_overrides(environ, plugin_tables))
    raw = _merge(raw, overrides or {})
    raw = _resolve_refs(raw, "", environ)

    core_schema = CoreSettings()
    core_raw = {k: v for k, v in raw.items() if k in core_schema.fields or not isinstance(v, dict)}
    plugin_raw = {k: v for k, v in raw.items() if k not in core_raw}
    core = _load(core_schema, core_raw)

    data_dir = Path(core["data_dir"]).expanduser()
    if core["database_url"] is None:
        core["database_url"] = f"sqlite:///{data_dir.resolve() / 'portico.sqlite3'}"
    if core["broker_url"] is None:
        core["broker_url"] = f"sqlite:///{data_dir.resolve() / 'queue.sqlite3'}"
    keys = list(dict.fromkeys(core["secret_keys"] or filter(None, [core["secret_key"]])))
    if not keys:
        if not core["demo"]:
            raise SettingsError(
                "secret_key: required outside demo mode (at least 32 characters; "
                "e.g. secret_key = \"$env:PORTICO_SECRET\" in portico.toml, or secret_keys "
                "to rotate)")
        keys = [_demo_secret(data_dir)]
    # SEC-6: secret_keys wins; secret_key is always the key that signs (the first).
    core["secret_keys"], core["secret_key"] = keys, keys[0]
    if core["security"]["cookie_secure"] is None:
        core["security"]["cookie_secure"] = core["base_url"].startswith("https://")
    secret_fields = {k for k in _secret_names(core_schema)}
    for key, f in core_schema.fields.items():
        if isinstance(f, fields.Nested):
            secret_fields |= {f"{key}.{n}" for n in _secret_names(f.schema)}
    return Settings(core, plugin_raw, str(path) if path else None, secret_fields)


def _demo_secret(data_dir: Path) -> str:
    """A per-installation random key for demo mode, kept in the data folder."""
    data_dir.mkdir(parents=True, exist_ok=True)
    key_file = data_dir / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(48))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


__all__ = ["Settings", "SettingsError", "load_settings", "secret", "CommaList", "EXCLUDE"]


def reference(schemas: dict[str, type[Schema]] | None = None) -> str:
    """The configuration reference (docs/configuration.md body), generated from the schemas."""
    lines = ["| key | type | default | environment variable | notes |", "|---|---|---|---|---|"]

    def rows(schema: Schema, table: str | None):
        for name, f in schema.fields.items():
            if isinstance(f, fields.Nested):
                continue
            key = f"{table}.{name}" if table else name
            env = "PORTICO_" + key.replace(".", "_").replace("-", "_").upper()
            default = f.load_default
            if callable(default):  # e.g. list, or a lambda making a fresh value
                default = default()
            default = "—" if default is None else repr(default)
            notes = f.metadata.get("description", "")
            if f.metadata.get("secret"):
                notes = ("secret: redacted by `portico check`; use `$env:` or `$file:`. " + notes).strip()
            choices = getattr(f.validate, "choices", None) if f.validate else None
            if choices:
                notes = (f"one of {', '.join(map(str, choices))}. " + notes).strip()
            lines.append(f"| `{key}` | {type(f).__name__.lower()} | `{default}` | `{env}` | {notes} |")

    core = CoreSettings()
    rows(core, None)
    for name, f in core.fields.items():
        if isinstance(f, fields.Nested):
            rows(f.schema, name)
    for plugin, schema_cls in sorted((schemas or {}).items()):
        rows(schema_cls(), plugin.replace("-", "_"))
    return "\n".join(lines) + "\n"
