"""The identity plugin's hook: a login signed out everywhere (SEC-4).

Added when the plugin registers (``register_hookspecs``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.hookspecs import hookspec

if TYPE_CHECKING:  # pragma: no cover - imports for annotations only
    from engine.app import Portico
    from engine.context import Context
    from engine.models import User


@hookspec
def signed_out_everywhere(app: Portico, ctx: Context, user: User, reason: str) -> None:
    """Called when every session of a customer login was ended at once (SEC-4), in that
    transaction: a password reset ("password_reset"), a password change that signs out the
    other sessions ("password_change") or "sign out everywhere" ("sign_out_everywhere").

    Remove what still reaches the login outside a session, and record it with
    ``engine.audit.record`` (the web push plugin removes the login's push subscriptions).
    """
