"""``portico token create|list|revoke``: service tokens for the operator's systems (INT-1).

A staff administrator makes them (``--by``, recorded on the token and in the activity log);
the token is printed once and only its hash is kept.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import click

DAYS = re.compile(r"^(\d{1,4})d\Z")


def parse_expiry(value: str) -> datetime:
    """``90d`` (days from now) or an ISO 8601 date or time (UTC unless it says otherwise)."""
    from engine.db import utcnow

    days = DAYS.match(value.strip())
    if days:
        return utcnow() + timedelta(days=int(days.group(1)))
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise click.BadParameter("give days (90d) or an ISO date (2027-06-30)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def admin(email: str):
    """The active staff administrator with this email, or a usage error."""
    from engine.models import StaffUser

    staff = StaffUser.get_or_none(StaffUser.email == email.strip().lower())
    if staff is None or not staff.is_active or "admin" not in staff.permissions.split():
        raise click.ClickException(f"{email} is not an active staff administrator")
    return staff


by_option = click.option(
    "--by", "by", required=True, metavar="EMAIL", help="the staff administrator doing it (recorded)"
)


def token_group(app_factory) -> click.Group:
    from plugins.operator.tokens import SCOPES

    @click.group("token")
    def group():
        """Manage service tokens: how the operator's systems use the operator API."""

    @group.command("create")
    @click.option("--name", required=True, help="what uses it, e.g. 'CRM sync'")
    @click.option(
        "--scope",
        "scopes",
        multiple=True,
        required=True,
        type=click.Choice(SCOPES),
        help="repeat for several",
    )
    @click.option(
        "--expires",
        default="365d",
        show_default=True,
        help="days (90d) or an ISO date; at most 730 days ahead",
    )
    @click.option(
        "--rate",
        type=click.IntRange(1, 1_000_000),
        default=None,
        help="its own limit in requests a minute (default: [operator] token_rate)",
    )
    @by_option
    def create(name, scopes, expires, rate, by):
        """Create a token and print it (once: only its hash is kept)."""
        from engine import db
        from plugins.operator import tokens

        app = app_factory()
        with db.connection():
            try:
                token, row = tokens.create(
                    app,
                    name.strip()[:100],
                    list(scopes),
                    parse_expiry(expires),
                    admin(by),
                    rate_per_minute=rate,
                )
            except ValueError as exc:
                raise click.ClickException(str(exc)) from None
        click.echo(
            f"service token {row.id} '{row.name}' ({row.scopes}), expires "
            f"{row.expires_at:%Y-%m-%d %H:%M} UTC. Store it now; it is not shown again:",
            err=True,
        )
        click.echo(token)

    @group.command("list")
    def list_():
        """Every token: id, name, prefix, scopes, state, expiry and last use."""
        from engine import db
        from plugins.operator.models import ServiceToken

        app_factory()
        with db.connection():
            for row in ServiceToken.select().order_by(ServiceToken.id):
                used = f"{row.last_used_at:%Y-%m-%d %H:%M}" if row.last_used_at else "never"
                click.echo(
                    f"{row.id}\t{row.name}\t{row.prefix}…\t{row.scopes}\t{row.state()}"
                    f"\texpires {row.expires_at:%Y-%m-%d}\tlast used {used}"
                )

    @group.command("revoke")
    @click.argument("token_id", type=int)
    @by_option
    def revoke(token_id, by):
        """Revoke a token at once."""
        from engine import db
        from plugins.operator import tokens
        from plugins.operator.models import ServiceToken

        app = app_factory()
        with db.connection():
            row = ServiceToken.get_or_none(ServiceToken.id == token_id)
            if row is None:
                raise click.ClickException(f"no service token {token_id}")
            done = tokens.revoke(app, row, admin(by))
        click.echo(f"service token {token_id} " + ("revoked" if done else "was already revoked"))

    return group
