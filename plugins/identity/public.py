"""The identity plugin's public facade: what other plugins may use of it.

Other plugins import identity only from here (an import-linter contract checks it), and
name ``identity`` in their ``plugin_requires`` (or ``plugin_optional``). Anything not
listed in ``__all__`` is private and may change without notice.

- Service modules, used as namespaces: ``accounts`` (a login's several customer accounts,
  SUP-2: listing, linking a contact to a login), ``guards`` (account-holder checks), ``lockout``
  (failed-login counters), ``login`` (password checks, ``LoginRefused``), ``passwords``
  (the password policy), ``sessions`` (cookies, creating and revoking sessions),
  ``twofactor`` (TOTP and backup codes).
- Web helpers for sign-in pages: ``redirect``, ``rotate_csrf``, ``end_session``,
  ``policy_hint``, ``password_errors``, ``current_user``, ``bearer``, ``keep_private`` (the
  headers of a page whose URL carries a token).
- Rate limits: ``limiter(app)`` (identity's named limits), ``storage_for(url)`` (the shared
  counter storage, for a plugin's own limits) and ``too_many(seconds)`` (the 429 problem).
- The ``Session`` model and the two-factor schemas shared with the staff sign-in.
"""

from __future__ import annotations

from plugins.identity import accounts, guards, lockout, login, passwords, sessions, twofactor
from plugins.identity.account_security import current_user
from plugins.identity.auth import bearer
from plugins.identity.login import LoginRefused
from plugins.identity.models import Session
from plugins.identity.ratelimit import limiter, storage_for, too_many
from plugins.identity.resources import (
    end_session,
    keep_private,
    password_errors,
    policy_hint,
    redirect,
    rotate_csrf,
)
from plugins.identity.schemas import BackupCodesOut, CodeBody, PasswordAndCode, TwoFactorSetup

__all__ = [
    "BackupCodesOut",
    "CodeBody",
    "LoginRefused",
    "PasswordAndCode",
    "Session",
    "TwoFactorSetup",
    "accounts",
    "bearer",
    "current_user",
    "end_session",
    "guards",
    "keep_private",
    "limiter",
    "lockout",
    "login",
    "password_errors",
    "passwords",
    "policy_hint",
    "redirect",
    "rotate_csrf",
    "sessions",
    "storage_for",
    "too_many",
    "twofactor",
]
