"""Settings: ``portico.toml`` plus ``PORTICO_*`` environment variables, validated.

Precedence, lowest first: built-in defaults, the TOML file (``--config`` or
``PORTICO_CONFIG``), then environment variables. ``PORTICO_DATABASE_URL`` sets
the top-level ``database_url``; ``PORTICO_MAIL_SMTP_HOST`` sets ``smtp_host`` in
the ``[mail]`` table; ``PORTICO_PLUGINS_DISABLED=addons,topups`` sets a list.
A string value ``$env:NAME`` or ``$file:PATH`` is replaced by that variable or
that file's content, so secrets stay out of the file.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import secrets
import tomllib
import zoneinfo
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from marshmallow import (
    EXCLUDE,
    RAISE,
    Schema,
    ValidationError,
    fields,
    pre_load,
    validate,
    validates_schema,
)

#: Environment variables that start with PORTICO_ but are not settings.
NOT_SETTINGS = {
    "PORTICO_CONFIG",
    "PORTICO_DEMO_PASSWORD",
    "PORTICO_LONG_TESTS",
    "PORTICO_REINSTALL",
}
#: Variables Kubernetes (and Docker links) set for a Service named "portico" (or
#: "portico-web"): PORTICO_SERVICE_HOST, PORTICO_PORT_8000_TCP_ADDR, ... Never settings.
SERVICE_LINK = re.compile(
    r"^PORTICO(_[A-Z0-9_]+)?_(SERVICE_HOST|SERVICE_PORT(_[A-Z0-9_]+)?"
    r"|PORT_\d+_(TCP|UDP|SCTP)(_ADDR|_PORT|_PROTO)?)$"
)
#: ... and PORTICO_PORT / PORTICO_WEB_PORT = "tcp://10.0.0.1:8000" (a link, not web.port).
LINK_VALUE = re.compile(r"^(tcp|udp|sctp)://")
SECRET_MASK = "********"
#: Example values from our own docs and recipes: refused as secret keys.
PLACEHOLDER_SECRETS = {
    "change-me-to-a-long-random-string-of-48-characters",
    "replace-with-a-random-key-of-at-least-32-characters",
}
DATABASE_SCHEMES = ("sqlite", "postgres", "postgresql")
BROKER_SCHEMES = ("redis", "rediss", "amqp", "amqps", "sqlite")


class SettingsError(Exception):
    """Raised at start-up when the configuration is invalid; the message names the key."""


def secret(field: fields.Field) -> fields.Field:
    """Mark a field as secret so ``portico check`` never prints it."""
    field.metadata = {**field.metadata, "secret": True}
    return field


class CommaList(fields.List):
    """A list that also accepts ``"a,b,c"`` (environment variables are strings)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        return super()._deserialize(value, attr, data, **kwargs)


def url_with_scheme(schemes: tuple[str, ...]):
    """A validator: a URL whose scheme is one of ``schemes`` (``None`` passes: a default)."""

    def check(value):
        if value is None:
            return
        scheme, sep, rest = str(value).partition("://")
        if not sep or scheme.lower() not in schemes or not rest:
            raise ValidationError(
                f"'{mask_url(str(value))}' is not a URL starting with "
                + " or ".join(f"{s}://" for s in schemes)
            )

    return check


def time_zone(value: str) -> None:
    """A validator: an IANA time zone name (Europe/London), as the scheduler reads it."""
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            f"unknown time zone '{value}' (an IANA name like Europe/London or Asia/Shanghai)"
        ) from None


def mail_address(value: str) -> None:
    """A validator: ``Name <addr@example.net>`` or a bare address, checked by email-validator."""
    from email.utils import parseaddr
    from email_validator import EmailNotValidError, validate_email

    _, address = parseaddr(value)
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValidationError(f"'{value}' is not an email address ({exc})") from None


def proxy_list(value: str) -> None:
    """A validator: ``*`` or comma-separated addresses and networks (10.0.0.0/8)."""
    for entry in (e.strip() for e in value.split(",")):
        if entry and entry != "*":
            try:
                ipaddress.ip_network(entry)  # strict, as gunicorn reads it too
            except ValueError:
                raise ValidationError(
                    f"'{entry}' is not an IP address or network "
                    "(e.g. 10.0.0.5 or 10.0.0.0/8), nor *"
                ) from None


class PluginsSettings(Schema):
    disabled = CommaList(fields.String(), load_default=list)
    entry_points = fields.Boolean(
        load_default=True,
        metadata={"description": "load partner plugins from the portico.plugins entry-point group"},
    )


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
ACCESS_LOG_FORMAT = (
    '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms "%(a)s" %({x-request-id}o)s'
)


class WebSettings(Schema):
    host = fields.String(load_default="127.0.0.1")
    port = fields.Integer(load_default=8000, validate=validate.Range(1, 65535))
    workers = fields.Integer(load_default=2, validate=validate.Range(1, 64))
    threads = fields.Integer(load_default=1, validate=validate.Range(1, 64))
    forwarded_allow_ips = fields.String(
        load_default="127.0.0.1",
        validate=proxy_list,
        metadata={
            "description": "proxies whose X-Forwarded-For is believed: comma-separated addresses "
            "or networks (10.0.0.0/8), or *"
        },
    )
    max_body_bytes = fields.Integer(
        load_default=1024 * 1024,
        validate=validate.Range(1024),
        metadata={
            "description": "the largest request body (JSON, "
            "forms, webhooks) in bytes; a bigger one is "
            "refused with 413 before it is read (SEC-3)"
        },
    )
    timeout = fields.Integer(
        load_default=60,
        validate=validate.Range(1, 3600),
        metadata={
            "description": "seconds a web worker may spend on one request before gunicorn "
            "restarts it"
        },
    )
    graceful_timeout = fields.Integer(
        load_default=30,
        validate=validate.Range(1, 3600),
        metadata={"description": "seconds running requests get to finish on a restart or stop"},
    )
    keepalive = fields.Integer(
        load_default=5,
        validate=validate.Range(0, 300),
        metadata={
            "description": "seconds an idle keep-alive connection stays open (behind a proxy "
            "that reuses connections, longer than its idle timeout)"
        },
    )
    access_log = fields.Boolean(
        load_default=True,
        metadata={"description": "one line per request on stdout (`portico serve`)"},
    )
    access_log_format = fields.String(
        load_default=ACCESS_LOG_FORMAT,
        metadata={
            "description": "gunicorn's access log format; `%({x-request-id}o)s` is the request "
            "id, `%({portico.route}e)s` the route template (docs/monitoring.md)"
        },
    )


class LoggingSettings(Schema):
    """``[logging]``: how the web, worker and scheduler processes write their log lines."""

    format = fields.String(
        load_default="text",
        validate=validate.OneOf(["text", "json"]),
        metadata={
            "description": "json: one JSON object per line, with request_id (docs/monitoring.md)"
        },
    )
    level = fields.String(
        load_default="info", validate=validate.OneOf(["debug", "info", "warning", "error"])
    )


class MetricsSettings(Schema):
    """``[metrics]``: who may read ``/metrics`` (404 until one of these is set)."""

    token = secret(
        fields.String(
            load_default="",
            validate=_empty_or_long,
            metadata={
                "description": "a scrape sends `Authorization: "
                "Bearer <token>` (at least 16 characters)"
            },
        )
    )
    allow_ips = CommaList(
        fields.String(validate=_ip_or_network),
        load_default=list,
        metadata={
            "description": "addresses or networks (CIDR) that may scrape; with a token too, "
            "a scrape needs both"
        },
    )
    worker_bind = fields.String(
        load_default="",
        validate=_empty_or_host_port,
        metadata={
            "description": "host:port where `portico worker` serves its own /metrics (task "
            "runs); empty: not served"
        },
    )


class SentrySettings(Schema):
    """``[sentry]``: report unhandled errors to Sentry (needs `pip install portico[sentry]`)."""

    dsn = secret(
        fields.String(
            load_default="",
            metadata={"description": "the project's DSN; empty: no error reporting"},
        )
    )
    environment = fields.String(load_default="production")
    sample_rate = fields.Float(
        load_default=1.0,
        validate=validate.Range(0, 1),
        metadata={"description": "the share of errors sent"},
    )


class MailSettings(Schema):
    backend = fields.String(
        load_default="file",
        validate=validate.OneOf(["file", "smtp"]),
        metadata={
            "description": "'file' writes .eml files to "
            "<data_dir>/mail (demo; refused outside demo unless "
            "allow_file_backend); 'smtp' sends"
        },
    )
    allow_file_backend = fields.Boolean(
        load_default=False,
        metadata={
            "description": "let the 'file' backend run outside demo mode (tests, staging): no "
            "email reaches anyone (OPS-2)"
        },
    )
    sender = fields.String(load_default="Portico <no-reply@example.com>", validate=mail_address)
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
    impersonation_saved_card_payments = fields.Boolean(
        load_default=False,
        metadata={
            "description": "let staff impersonating a customer pay with the customer's saved "
            "cards (IMP-6); off, they can still pay with a card the customer "
            "gives them"
        },
    )
    sign_out_removes_push = fields.Boolean(
        load_default=True,
        metadata={
            "description": "a password reset or 'sign out everywhere' also removes the login's "
            "web push subscriptions (SEC-4)"
        },
    )
    reset_revokes_api_keys = fields.Boolean(
        load_default=False,
        metadata={
            "description": "a completed password reset also revokes the API keys the login made "
            "(SEC-4; off: integrations keep working, docs/identity.md)"
        },
    )
    cookie_secure = fields.Boolean(
        load_default=None,
        allow_none=True,
        metadata={"description": "default: true when base_url is https"},
    )
    password_policy = fields.String(
        load_default="composition", validate=validate.OneOf(["composition", "length"])
    )
    rate_limit_storage = secret(
        fields.String(
            load_default="database",
            validate=lambda v: v == "database" or url_with_scheme(("redis", "rediss"))(v) is None,
            metadata={"description": "'database', or a redis:// URL"},
        )
    )
    allow_generated_secret = fields.Boolean(
        load_default=False,
        metadata={
            "description": "outside demo mode without secret_key, use the random key kept in "
            "<data_dir>/secret_key (one machine only: every node needs the same "
            "key) instead of refusing to start (OPS-2)"
        },
    )


#: Weekday keys of a structured ``support.hours`` table, Monday first.
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_TIME_RANGE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d-(([01]\d|2[0-3]):[0-5]\d|24:00)\Z")


def phone_number(value: str) -> None:
    """A validator: a phone number in international format (+44 20 7946 0000), or empty."""
    if value == "":
        return
    import phonenumbers

    try:
        valid = phonenumbers.is_valid_number(phonenumbers.parse(value, None))
    except phonenumbers.NumberParseException:
        valid = False
    if not valid:
        raise ValidationError(
            f"'{value}' is not a phone number in international format (e.g. +44 20 7946 0000)"
        )


def optional_mail_address(value: str) -> None:
    if value != "":
        mail_address(value)


def support_link(relative: bool):
    """A validator: an ``https://`` (``http://`` in demo mode only) URL, or empty; with
    ``relative``, also a path on the portal (``/help/roaming``)."""

    def check(value: str) -> None:
        if value == "" or (relative and value.startswith("/") and not value.startswith("//")):
            return
        scheme, sep, rest = value.partition("://")
        if not sep or scheme.lower() not in ("https", "http") or not rest or " " in value:
            raise ValidationError(
                f"'{value}' is not an https:// URL"
                + (" nor a path on the portal starting with /" if relative else "")
            )

    return check


class OpeningHours(fields.Field):
    """Free text ("24/7", "Mon-Fri 8am-8pm"), or a table of weekdays (``mon`` .. ``sun``), each
    "closed" or time ranges ("08:00-20:00", "08:00-12:00, 13:00-17:00")."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            if len(value) > 200:
                raise ValidationError("at most 200 characters")
            return value.strip()
        if not isinstance(value, Mapping):
            raise ValidationError("free text, or a table of weekdays (mon = \"08:00-20:00\")")
        errors, table = {}, {}
        for day, hours in value.items():
            if day not in WEEKDAYS:
                errors[day] = [f"not a weekday: use {', '.join(WEEKDAYS)}"]
                continue
            ranges = [r.strip() for r in str(hours).split(",")] if isinstance(hours, str) else []
            if ranges != ["closed"] and (not ranges or not all(map(_TIME_RANGE.match, ranges))):
                errors[day] = [
                    "\"closed\", or time ranges such as \"08:00-20:00\" "
                    "or \"08:00-12:00, 13:00-17:00\""
                ]
                continue
            table[day] = ", ".join(ranges)
        if errors:
            raise ValidationError(errors)
        return {day: table[day] for day in WEEKDAYS if day in table}


class HelpArticle(Schema):
    """One help article: ``{title = "Roaming abroad", url = "https://help.example.net/roaming"}``."""

    title = fields.String(required=True, validate=validate.Length(1, 200))
    url = fields.String(required=True, validate=support_link(relative=True))


class SupportSettings(Schema):
    """``[support]``: how customers reach the operator's support (SUP-1). Empty by default:
    the portal shows what is set and says so when nothing is (docs/portal.md)."""

    phone = fields.String(
        load_default="",
        validate=phone_number,
        metadata={
            "description": "in international format, e.g. +44 20 7946 0000: a tap-to-call link"
        },
    )
    email = fields.String(
        load_default="", validate=optional_mail_address, metadata={"description": "support email"}
    )
    chat_url = fields.String(
        load_default="",
        validate=support_link(relative=False),
        metadata={"description": "https:// link to the operator's chat"},
    )
    hours = OpeningHours(
        load_default="",
        metadata={
            "description": "opening hours: free text (\"24/7\"), or a table of weekdays "
            "(hours = {mon = \"08:00-20:00\", sun = \"closed\"}; days left out are not shown)"
        },
    )
    articles = fields.List(
        fields.Nested(HelpArticle),
        load_default=list,
        metadata={
            "description": "help articles: articles = [{title = \"...\", url = \"https://...\"}] "
            "(https:// or a path on the portal); as JSON in the environment variable"
        },
    )

    @pre_load
    def articles_from_json(self, data, **kwargs):
        """``PORTICO_SUPPORT_ARTICLES`` (a string) holds the list as JSON."""
        value = data.get("articles") if isinstance(data, Mapping) else None
        if isinstance(value, str):
            import json

            try:
                data = {**data, "articles": json.loads(value) if value.strip() else []}
            except ValueError:
                raise ValidationError("a JSON list of {title, url}", "articles") from None
        return data


#: ``[support]`` values the demo shows when the operator set none (demo mode only, never a
#: production default: a real portal must not send customers to a made-up number).
DEMO_SUPPORT = {
    "phone": "+44 20 7946 0000",
    "email": "support@example.com",
    "chat_url": "https://chat.example.com/",
    "hours": {
        "mon": "08:00-20:00",
        "tue": "08:00-20:00",
        "wed": "08:00-20:00",
        "thu": "08:00-20:00",
        "fri": "08:00-20:00",
        "sat": "09:00-17:00",
        "sun": "closed",
    },
    "articles": [
        {"title": "Using your phone abroad", "url": "https://help.example.com/roaming"},
        {"title": "Understanding your bill", "url": "https://help.example.com/bill"},
    ],
}


class OutboundSettings(Schema):
    """``[outbound]``: requests to URLs customers give (web push, webhooks; engine/outbound.py)."""

    unsafe_allow_loopback_for_tests = fields.Boolean(
        load_default=False,
        metadata={
            "description": "TESTS ONLY: let outbound requests reach 127.0.0.1 and ::1 (a test's "
            "own server); never in production. `portico check` warns while on"
        },
    )


class StorageSettings(Schema):
    """Where generated files (invoice PDFs, archives) live: see docs/storage.md."""

    backend = fields.String(
        load_default="local",
        validate=validate.OneOf(["local", "database", "s3"]),
        metadata={
            "description": "where invoice PDFs and archives are stored; with several nodes, "
            "database or s3 (or a folder every node mounts)"
        },
    )
    path = fields.String(
        load_default="", metadata={"description": "local: the folder (default: <data_dir>/files)"}
    )
    s3_bucket = fields.String(load_default="", metadata={"description": "s3: the bucket"})
    s3_prefix = fields.String(
        load_default="", metadata={"description": "s3: a prefix for every key, e.g. 'portico/'"}
    )
    s3_endpoint_url = fields.String(
        load_default="",
        validate=lambda url: (
            url == ""
            or (validate.URL(require_tld=False, schemes={"http", "https"})(url) is not None)
        ),
        metadata={"description": "s3: the store's URL (MinIO, Ceph, ...); empty for AWS"},
    )
    s3_region = fields.String(load_default="", metadata={"description": "s3: the region"})
    s3_access_key_id = secret(
        fields.String(
            load_default="",
            metadata={
                "description": "s3: empty to use boto3's own chain (environment, instance role)"
            },
        )
    )
    s3_secret_access_key = secret(fields.String(load_default=""))
    s3_addressing_style = fields.String(
        load_default="auto",
        validate=validate.OneOf(["auto", "path", "virtual"]),
        metadata={"description": "s3: 'path' for most self-hosted stores"},
    )
    s3_redirect = fields.Boolean(
        load_default=False,
        metadata={
            "description": "s3: answer downloads with a redirect to a 5-minute signed URL of the "
            "store (customers' browsers must reach it)"
        },
    )

    @validates_schema
    def s3_needs_a_bucket(self, data, **kwargs):
        if data.get("backend") == "s3" and not data.get("s3_bucket"):
            raise ValidationError("required when backend is 's3'", "s3_bucket")


class TasksSettings(Schema):
    """``[tasks]``: background work (docs/background-work.md, docs/operations.md)."""

    redeliver_after = fields.Integer(
        load_default=3600,
        validate=validate.Range(60, 7 * 86400),
        metadata={
            "description": (
                "seconds after which a message handed to the broker but not finished is sent again "
                "(the broker lost it, e.g. Redis restarted empty); longer than the longest task's "
                "time limit (30 minutes), and than a busy queue takes to drain: at least once"
            )
        },
    )


def keep_days(minimum: int):
    """A validator: 0 (keep forever) or at least ``minimum`` days."""

    def check(value: int) -> None:
        if value != 0 and value < minimum:
            raise ValidationError(f"0 (keep forever) or at least {minimum} days")

    return check


class RetentionSettings(Schema):
    """``[retention]``: how long high-volume rows stay in the database before ``portico
    archive`` (and its nightly task) moves them to compressed files in storage (OPS-7)."""

    usage_events_days = fields.Integer(
        load_default=0,
        validate=keep_days(93),
        metadata={
            "description": "usage events older than this are archived, then deleted; 0 keeps them "
            "forever. At least 93: the usage page charts 90 days. Events of a "
            "service's current period always stay, and events older than this are "
            "refused at intake (their id can no longer be checked for a repeat)"
        },
    )
    audit_events_days = fields.Integer(
        load_default=0,
        validate=keep_days(30),
        metadata={
            "description": "audit events (the activity log) older than this are archived, then "
            "deleted; 0 keeps them forever. At least 30"
        },
    )
    batch_size = fields.Integer(
        load_default=20000,
        validate=validate.Range(100, 1000000),
        metadata={"description": "rows per archive file (one transaction deletes them)"},
    )


class DebugSettings(Schema):
    """``[debug]``: help while developing a plugin; leave off in production."""

    trace_hooks = fields.Boolean(
        load_default=False,
        metadata={
            "description": "log every hook call (name, arguments in short, the plugins that "
            "answer, milliseconds) to the portico.hooks logger"
        },
    )


class CoreSettings(Schema):
    """The engine's own keys. Plugin tables are validated by each plugin's schema."""

    class Meta:
        unknown = RAISE

    base_url = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.URL(require_tld=False, schemes={"http", "https"}),
        metadata={
            "description": "public URL of the portal; links in emails "
            "use it; https turns on Secure cookies and HSTS; "
            "required outside demo mode (demo: where `portico serve "
            "--demo` listens, e.g. http://127.0.0.1:8000)"
        },
    )
    secret_key = secret(
        fields.String(
            load_default=None,
            allow_none=True,
            validate=validate.Length(min=32),
            metadata={
                "description": "signs CSRF tokens and links, and seals "
                "2FA seeds and backup codes (keep it: a new one makes "
                "them unreadable; rotate with secret_keys); required "
                "outside demo mode, at least 32 characters"
            },
        )
    )
    secret_keys = secret(
        CommaList(
            fields.String(validate=validate.Length(min=32)),
            load_default=list,
            metadata={
                "description": "rotation (SEC-6): the first key signs and "
                "seals, every key verifies and opens; wins over secret_key "
                "when both are set (then secret_key is ignored); see "
                "docs/configuration.md, Rotating the secret key"
            },
        )
    )
    data_dir = fields.String(
        load_default="./var",
        metadata={
            "description": "where SQLite files, demo mail and (by default) stored files live"
        },
    )
    database_url = secret(
        fields.String(
            load_default=None,
            allow_none=True,
            validate=url_with_scheme(DATABASE_SCHEMES),
            metadata={
                "description": "sqlite:///path (default: <data_dir>/portico.sqlite3) or "
                "postgresql://user:password@host:5432/db; behind PgBouncer in "
                "transaction mode add ?prepare=false (docs/operations.md)"
            },
        )
    )
    broker_url = secret(
        fields.String(
            load_default=None,
            allow_none=True,
            validate=url_with_scheme(BROKER_SCHEMES),
            metadata={
                "description": "redis://host:6379/0?namespace=portico, amqp://user:pw@host:5672/ or "
                "sqlite:///path (default: the embedded queue in <data_dir>)"
            },
        )
    )
    theme = fields.String(
        load_default="default",
        metadata={"description": "theme name, looked up in theme_paths then the shipped themes/"},
    )
    theme_paths = CommaList(
        fields.String(),
        load_default=list,
        metadata={"description": "folders holding the operator's themes"},
    )
    default_locale = fields.String(load_default="en", validate=validate.OneOf(["en", "zh_Hans"]))
    default_timezone = fields.String(
        load_default="Europe/London",
        validate=time_zone,
        metadata={
            "description": "IANA time zone of the portal: dates shown, and cron specs of periodic "
            "jobs"
        },
    )
    currency = fields.String(load_default="GBP", validate=validate.Length(equal=3))
    demo = fields.Boolean(
        load_default=False,
        metadata={
            "description": "demo mode: a generated secret key, the sandbox payment provider and "
            ".eml mail allowed, migrate and seed on serve"
        },
    )
    plugins = fields.Nested(PluginsSettings)
    web = fields.Nested(WebSettings)
    mail = fields.Nested(MailSettings)
    security = fields.Nested(SecuritySettings)
    support = fields.Nested(SupportSettings)
    outbound = fields.Nested(OutboundSettings)
    storage = fields.Nested(StorageSettings)
    retention = fields.Nested(RetentionSettings)
    debug = fields.Nested(DebugSettings)
    tasks = fields.Nested(TasksSettings)
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

    def __init__(
        self,
        core: dict,
        plugin_tables: dict,
        source: str | None,
        secret_fields: set[str],
        env_names: dict | None = None,
        unknown_env: list[str] | None = None,
    ):
        super().__init__({k: Section(v) if isinstance(v, dict) else v for k, v in core.items()})
        self._plugin_raw = plugin_tables
        self._plugin_values: dict[str, Section] = {}
        self.source = source
        self._secret_fields = set(secret_fields)
        #: (table, key) -> the PORTICO_* variable that set it, so a typo is a warning.
        self._env_names = dict(env_names or {})
        self._unknown_env = list(unknown_env or [])
        self._valid_env = _core_env_names()  # plugins' variables join in validate_plugins

    def warnings(self) -> list[str]:
        """Settings that are valid but unsafe or ignored; ``portico check`` prints each."""
        out = [_unknown_variable(name, self._valid_env) for name in self._unknown_env]
        if self["outbound"]["unsafe_allow_loopback_for_tests"]:
            out.append(
                "outbound.unsafe_allow_loopback_for_tests is on: customers' push and "
                "webhook URLs may reach services on this machine. It is for tests only."
            )
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
                    f"'{key}' (plugins: {', '.join(sorted(known))})"
                )
        for name, schema_cls in schemas.items():
            table = name.replace("-", "_")  # messages name the table as the operator writes it
            raw = dict(self._plugin_raw.get(table, {}))
            self._valid_env += [env_name(f"{table}.{f}") for f in schema_cls().fields]
            for key in [k for k in raw if k not in schema_cls().fields]:
                variable = self._env_names.get((table, key))
                if variable:  # from the environment: warn (OPS-9), the file's typos still fail
                    del raw[key]
                    self._unknown_env.append(variable)
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
        if isinstance(value, str) and "://" in value:  # any URL's password, secret or not
            value = mask_url(value)
        if dotted in self._secret_fields and value not in (None, ""):
            if isinstance(value, str) and "://" in value:
                return value  # masked above: the host and database stay readable
            if isinstance(value, list):  # how many keys (secret_keys), not what they are
                return [SECRET_MASK for _ in value]
            return SECRET_MASK
        return value


def mask_url(url: str) -> str:
    """Keep a URL readable but hide its password: ``postgresql://u:***@h/db``."""
    url = re.sub(r"(://[^:/@]*:)[^@]+@", r"\1" + SECRET_MASK + "@", url)  # redis://:pw@h too
    return re.sub(r"([?&]password=)[^&]+", r"\1" + SECRET_MASK, url)


def env_name(dotted: str) -> str:
    """The variable of a setting: ``mail.smtp_host`` -> ``PORTICO_MAIL_SMTP_HOST``."""
    return "PORTICO_" + dotted.replace(".", "_").replace("-", "_").upper()


def _unknown_variable(name: str, valid: list[str]) -> str:
    # Compare without the shared PORTICO_ prefix, or every name looks close to every other.
    close = difflib.get_close_matches(name[8:], [v[8:] for v in valid], n=1, cutoff=0.7)
    hint = f" (did you mean PORTICO_{close[0]}?)" if close else ""
    return f"{name} is not a Portico setting and is ignored{hint}; see docs/configuration.md"


def _core_env_names() -> list[str]:
    core = CoreSettings()
    names = []
    for key, f in core.fields.items():
        if isinstance(f, fields.Nested):
            names += [env_name(f"{key}.{n}") for n in f.schema.fields]
        else:
            names.append(env_name(key))
    return names


def _secret_names(schema: Schema) -> set[str]:
    return {name for name, f in schema.fields.items() if f.metadata.get("secret")}


def _resolve_refs(value: Any, key: str, environ: Mapping[str, str] | None = None) -> Any:
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


def _env_overrides(environ: dict[str, str], tables: set[str]) -> tuple[dict, dict, list[str]]:
    """Map ``PORTICO_*`` variables onto the settings tree.

    Returns (values, (table, key) -> variable, unknown variables). Other variables are
    ignored: Kubernetes' service links (PORTICO_SERVICE_HOST) silently, a
    misspelt core setting with a warning naming the nearest valid one; keys of
    plugin tables are checked once the plugins' schemas are known.
    """
    core = CoreSettings()
    nested = {k: f for k, f in core.fields.items() if isinstance(f, fields.Nested)}
    out: dict = {}
    names: dict = {}
    unknown: list[str] = []
    for name, value in sorted(environ.items()):
        if (
            not name.startswith("PORTICO_")
            or name in NOT_SETTINGS
            or name.startswith("PORTICO_TEST_")
            or SERVICE_LINK.match(name)
            or (name.endswith("_PORT") and LINK_VALUE.match(value))
        ):
            continue
        key = name[len("PORTICO_") :].lower()
        table = next(
            (
                t
                for t in sorted(set(nested) | tables, key=len, reverse=True)
                if key.startswith(t + "_")
            ),
            None,
        )
        if key in core.fields and not isinstance(core.fields[key], fields.Nested):
            out[key] = value
        elif table in nested and key[len(table) + 1 :] in nested[table].schema.fields:
            out.setdefault(table, {})[key[len(table) + 1 :]] = value
        elif table is not None and table not in nested:  # a plugin's table
            out.setdefault(table, {})[key[len(table) + 1 :]] = value
            names[(table, key[len(table) + 1 :])] = name
        else:
            unknown.append(name)
    return out, names, unknown


def _merge(base: dict, extra: dict) -> dict:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_settings(
    path: str | os.PathLike | None = None,
    *,
    environ: dict | None = None,
    overrides: dict | None = None,
    plugin_names: set[str] | None = None,
    serving: bool = True,
) -> Settings:
    """Read, merge and validate the configuration.

    ``plugin_names`` lets ``PORTICO_<PLUGIN>_<KEY>`` variables reach plugin tables.
    ``overrides`` (used by the CLI and tests) win over everything.
    ``serving=False`` is for commands that only list and never sign, seal or send
    (``portico plugins``): the checks of what serving needs (a secret key, ``base_url``,
    a real mail backend) are skipped; without a key, ``secret_keys`` is empty.
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
    from_env, env_names, unknown_env = _env_overrides(environ, plugin_tables)
    raw = _merge(raw, from_env)
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
    problems = _unsafe_outside_demo(core, serving)
    if core["demo"]:
        core["support"] = _demo_support(core["support"], raw.get("support") or {})
    if problems:  # every one at once, as schema errors are
        raise SettingsError("\n".join(problems))
    if core["base_url"] is None:  # demo mode: links point where `portico serve` listens
        core["base_url"] = _listening_url(core["web"]["host"], core["web"]["port"])
    keys = list(dict.fromkeys(core["secret_keys"] or filter(None, [core["secret_key"]])))
    if not keys and (core["demo"] or core["security"]["allow_generated_secret"]):
        keys = [_demo_secret(data_dir)]
    # SEC-6: secret_keys wins; secret_key is always the key that signs (the first).
    core["secret_keys"], core["secret_key"] = keys, (keys[0] if keys else None)
    if core["security"]["cookie_secure"] is None:
        core["security"]["cookie_secure"] = core["base_url"].startswith("https://")
    secret_fields = {k for k in _secret_names(core_schema)}
    for key, f in core_schema.fields.items():
        if isinstance(f, fields.Nested):
            secret_fields |= {f"{key}.{n}" for n in _secret_names(f.schema)}
    return Settings(
        core, plugin_raw, str(path) if path else None, secret_fields, env_names, unknown_env
    )


def _unsafe_outside_demo(core: dict, serving: bool = True) -> list[str]:
    """What the embedded defaults would do wrong outside demo mode, unless allowed (OPS-2)."""
    demo, problems = core["demo"], []
    if core["base_url"] is None and serving and not demo:
        problems.append(
            "base_url: required outside demo mode (the portal's public URL, e.g. "
            "https://portal.example.net; links in emails use it)"
        )
    if (
        core["mail"]["backend"] == "file"
        and serving
        and not (demo or core["mail"]["allow_file_backend"])
    ):
        problems.append(
            "mail.backend: 'file' only writes .eml files to the data folder, so no email "
            "reaches anyone; outside demo mode choose mail.backend = \"smtp\", or set "
            "mail.allow_file_backend = true (tests, staging)"
        )
    support = core["support"]
    links = [("chat_url", support["chat_url"])] + [
        (f"articles.{i}.url", a["url"]) for i, a in enumerate(support["articles"])
    ]
    for key, url in links:
        if url.lower().startswith("http://") and not demo:
            problems.append(f"support.{key}: '{url}' must be an https:// URL outside demo mode")
    keys = core["secret_keys"] or list(filter(None, [core["secret_key"]]))
    if any(key in PLACEHOLDER_SECRETS for key in keys):
        problems.append(
            "secret_key: this is the example value from the docs; generate one "
            "with `python -c 'import secrets; print(secrets.token_urlsafe(48))'`"
        )
    if not keys and serving and not (demo or core["security"]["allow_generated_secret"]):
        problems.append(
            "secret_key: required outside demo mode (at least 32 characters; e.g. secret_key "
            "= \"$env:PORTICO_SECRET\" in portico.toml, or secret_keys to rotate); or set "
            "security.allow_generated_secret = true to use a random key kept in "
            "<data_dir>/secret_key (one machine only)"
        )
    return problems


def _demo_support(support: dict, given: dict) -> dict:
    """Demo mode: the ``DEMO_SUPPORT`` values for every ``[support]`` key the operator left out."""
    return {k: (v if k in given else DEMO_SUPPORT[k]) for k, v in support.items()}


def _listening_url(host: str, port: int) -> str:
    """``http://`` and the address a browser on this machine reaches ``host:port`` at."""
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    if ":" in host and not host.startswith("["):  # IPv6
        host = f"[{host}]"
    return f"http://{host}:{port}"


def _demo_secret(data_dir: Path) -> str:
    """A per-installation random key for demo mode, kept in the data folder."""
    data_dir.mkdir(parents=True, exist_ok=True)
    key_file = data_dir / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(48))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


__all__ = [
    "Settings",
    "SettingsError",
    "load_settings",
    "secret",
    "CommaList",
    "EXCLUDE",
    "mask_url",
    "env_name",
]


def reference(schemas: dict[str, type[Schema]] | None = None) -> str:
    """The configuration reference (docs/configuration.md body), generated from the schemas."""
    lines = ["| key | type | default | environment variable | notes |", "|---|---|---|---|---|"]

    def rows(schema: Schema, table: str | None):
        for name, f in schema.fields.items():
            if isinstance(f, fields.Nested):
                continue
            key = f"{table}.{name}" if table else name
            env = env_name(key)
            default = f.load_default
            if callable(default):  # e.g. list, or a lambda making a fresh value
                default = default()
            default = "—" if default is None else repr(default)
            notes = f.metadata.get("description", "")
            if f.metadata.get("secret"):
                notes = (
                    "secret: redacted by `portico check`; use `$env:` or `$file:`. " + notes
                ).strip()
            choices = getattr(f.validate, "choices", None) if f.validate else None
            if choices:
                notes = (f"one of {', '.join(map(str, choices))}. " + notes).strip()
            lines.append(
                f"| `{key}` | {type(f).__name__.lower()} | `{default}` | `{env}` | {notes} |"
            )

    core = CoreSettings()
    rows(core, None)
    for name, f in core.fields.items():
        if isinstance(f, fields.Nested):
            rows(f.schema, name)
    for plugin, schema_cls in sorted((schemas or {}).items()):
        rows(schema_cls(), plugin.replace("-", "_"))
    return "\n".join(lines) + "\n"
