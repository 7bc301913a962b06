"""``portico staff add|permissions|set-password|reset-2fa``: create staff users, list what each
permission opens, set their passwords, reset a lost authenticator."""

from __future__ import annotations

import sys

import click

from engine.registry import ANY_STAFF, PUBLIC

#: The password is never an argument (shell history, ``ps``): a prompt, or one line on stdin.
password_stdin = click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of standard input (scripts), instead of prompting.",
)


def read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise click.ClickException("--password-stdin: standard input gave no password")
        return password
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


def staff_group(app_factory) -> click.Group:
    @click.group("staff")
    def group():
        """Manage staff users (support agents and administrators)."""

    @group.command("add")
    @click.argument("email")
    @click.option("--name", required=True)
    @click.option(
        "--permissions",
        default="can_impersonate",
        show_default=True,
        help="space-separated: admin, can_impersonate, ... (`portico staff permissions`)",
    )
    @password_stdin
    def add(email, name, permissions, password_stdin):
        """Create a staff user; the password is prompted for (or read with --password-stdin)."""
        import peewee
        from engine import db
        from engine.models import StaffUser
        from engine.security import hash_password
        from plugins.identity.public import passwords

        app = app_factory()
        known = set(app.staff_permissions()) - {PUBLIC, ANY_STAFF}
        unknown = sorted(set(permissions.split()) - known)
        if unknown:  # a typo would silently grant nothing
            raise click.ClickException(
                f"unknown permission {', '.join(unknown)}; the "
                f"permissions are: {', '.join(sorted(known))}"
            )
        email = email.strip().lower()
        with db.connection():
            if StaffUser.select().where(StaffUser.email == email).exists():
                raise click.ClickException(
                    f"a staff user {email} already exists (change "
                    "their password with `portico staff set-password`)"
                )
        password = read_password(password_stdin)
        reasons = passwords.problems(password, app.settings.security.password_policy, email=email)
        if reasons:
            raise click.ClickException(" ".join(reasons))
        try:
            with db.connection():
                StaffUser.create(
                    email=email,
                    name=name,
                    permissions=permissions,
                    password_hash=hash_password(password),
                )
        except peewee.IntegrityError:  # added by someone else meanwhile
            raise click.ClickException(f"a staff user {email} already exists") from None
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
    @password_stdin
    def set_password(email, password_stdin):
        """Set a staff user's password (and lift a sign-in lock); prompted, or --password-stdin."""
        from engine import db
        from engine.models import StaffUser
        from engine.security import hash_password
        from plugins.identity.public import lockout, passwords

        app = app_factory()
        password = read_password(password_stdin)
        reasons = passwords.problems(password, app.settings.security.password_policy, email=email)
        if reasons:
            raise click.ClickException(" ".join(reasons))
        with db.connection():
            changed = (
                StaffUser.update(password_hash=hash_password(password))
                .where(StaffUser.email == email.strip().lower())
                .execute()
            )
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
