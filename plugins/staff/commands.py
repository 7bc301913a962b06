"""``portico staff add|set-password``: create staff users and set their passwords."""
from __future__ import annotations

import click


def staff_group(app_factory) -> click.Group:
    @click.group("staff")
    def group():
        """Manage staff users (support agents and administrators)."""

    @group.command("add")
    @click.argument("email")
    @click.option("--name", required=True)
    @click.option("--permissions", default="can_impersonate", show_default=True,
                  help="space-separated: admin, can_impersonate, ...")
    @click.password_option()
    def add(email, name, permissions, password):
        """Create a staff user."""
        from engine import db
        from engine.models import StaffUser
        from engine.security import hash_password
        from plugins.identity.passwords import problems
        app = app_factory()
        reasons = problems(password, app.settings.security.password_policy, email=email)
        if reasons:
            raise click.ClickException(" ".join(reasons))
        with db.connection():
            StaffUser.create(email=email.strip().lower(), name=name, permissions=permissions,
                             password_hash=hash_password(password))
        click.echo(f"staff user {email} created")

    @group.command("set-password")
    @click.argument("email")
    @click.password_option()
    def set_password(email, password):
        """Set a staff user's password (and lift a sign-in lock)."""
        from engine import db
        from engine.models import StaffUser
        from engine.security import hash_password
        from plugins.identity import lockout
        from plugins.identity.passwords import problems
        app = app_factory()
        reasons = problems(password, app.settings.security.password_policy, email=email)
        if reasons:
            raise click.ClickException(" ".join(reasons))
        with db.connection():
            changed = StaffUser.update(password_hash=hash_password(password)).where(
                StaffUser.email == email.strip().lower()).execute()
            lockout.lift(lockout.guard_key("staff", email))
        if not changed:
            raise click.ClickException(f"no staff user {email}")
        click.echo(f"password of {email} set")

    return group
