"""``portico staff add|permissions|set-password|reset-2fa``: create staff users, list what each
permission opens, set their passwords, reset a lost authenticator."""
from __future__ import annotations

import click

from engine.registry import ANY_STAFF, PUBLIC


def staff_group(app_factory) -> click.Group:
    @click.group("staff")
    def group():
        """Manage staff users (support agents and administrators)."""

    @group.command("add")
    @click.argument("email")
    @click.option("--name", required=True)
    @click.option("--permissions", default="can_impersonate", show_default=True,
                  help="space-separated: admin, can_impersonate, ... (`portico staff permissions`)")
    @click.password_option()
    def add(email, name, permissions, password):
        """Create a staff user."""
        from engine import db
        from engine.models import StaffUser
        from engine.security import hash_password
        from plugins.identity.public import passwords
        app = app_factory()
        known = set(app.staff_permissions()) - {PUBLIC, ANY_STAFF}
        unknown = sorted(set(permissions.split()) - known)
        if unknown:  # a typo would silently grant nothing
            raise click.ClickException(f"unknown permission {', '.join(unknown)}; the "
                                       f"permissions are: {', '.join(sorted(known))}")
        reasons = passwords.problems(password, app.settings.security.password_policy,
                                     email=email)
        if reasons:
            raise click.ClickException(" ".join(reasons))
        with db.connection():
            StaffUser.create(email=email.strip().lower(), name=name, permissions=permissions,
                             password_hash=hash_password(password))
        click.echo(f"staff user {email} created")

    @group.command("permissions")
    def permissions_():
        """List every staff permission and the routes that need it (SEC-5)."""
        for name, routes in sorted(app_factory().staff_permissions().items()):
            click.echo(name + ("  (every permission)" if name == "admin" else ""))
            for route in routes:
                click.echo(f"    {route}")

    @group.command("set-password")
    @click.argument("email")
    @click.password_option()
    def set_password(email, password):
        """Set a staff user's password (and lift a sign-in lock)."""
        from engine import db
        from engine.models import StaffUser
        from engine.security import hash_password
        from plugins.identity.public import lockout, passwords
        app = app_factory()
        reasons = passwords.problems(password, app.settings.security.password_policy, email=email)
        if reasons:
            raise click.ClickException(" ".join(reasons))
        with db.connection():
            changed = StaffUser.update(password_hash=hash_password(password)).where(
                StaffUser.email == email.strip().lower()).execute()
            lockout.lift(lockout.guard_key("staff", email))
        if not changed:
            raise click.ClickException(f"no staff user {email}")
        click.echo(f"password of {email} set")

    @group.command("reset-2fa")
    @click.argument("email")
    def reset_2fa(email):
        """Turn off a staff user's two-step sign-in (a lost phone); they set it up again."""
        from engine import db
        from engine.audit import record_system
        from plugins.staff import twofactor
        app = app_factory()
        with db.connection(), db.database.atomic():
            staff = twofactor.reset(email)
            if staff is None:
                raise click.ClickException(f"no staff user {email}")
            record_system(app, "staff.2fa_reset", f"staff:{staff.id}", staff_id=staff.id)
        click.echo(f"two-step sign-in of {email} is off; they can set it up again")

    return group
