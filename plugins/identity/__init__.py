"""Identity: sign-in, sessions, lockout, password reset, 2FA, API keys and rate limits (ACC-1, PWD, API)."""

from __future__ import annotations

from engine import hookimpl
from engine.registry import Route


@hookimpl
def register_hookspecs():
    from plugins.identity import hookspecs

    return [hookspecs]


@hookimpl
def register_settings():
    from plugins.identity.settings import IdentitySettings

    return IdentitySettings


@hookimpl
def register_models():
    from plugins.identity.models import MODELS

    return list(MODELS)


@hookimpl(trylast=True)
def authenticate_request(app, req):
    from plugins.identity.auth import authenticate

    return authenticate(app, req)


@hookimpl
def register_actors():
    from plugins.identity.tasks import purge_expired, send_reset_link

    return [purge_expired, send_reset_link]


@hookimpl
def register_routes(app):
    from plugins.identity import account_security as sec
    from plugins.identity import accounts
    from plugins.identity import resources as r

    return [
        Route("/login", r.LoginPage()),
        Route("/login/2fa", r.SecondFactorPage()),
        Route("/logout", r.LogoutPage()),
        Route("/password/forgot", r.ForgotPage()),
        Route("/password/reset", r.ResetPage()),
        Route("/account/security", sec.SecurityPage()),
        Route("/account/2fa/setup", sec.TwoFactorSetupPage()),
        Route("/account/2fa/disable", sec.TwoFactorDisablePage()),
        Route("/account/2fa/backup-codes", sec.BackupCodesPage()),
        Route("/account/sessions/end-others", sec.EndSessionsPage()),
        Route("/account/api-keys", sec.ApiKeysPage()),
        Route("/account/api-keys/{key_id}/revoke", sec.ApiKeyRevokePage()),
        Route("/account/switch", accounts.AccountsPage()),
        Route("/api/v1/auth/login", r.LoginAPI()),
        Route("/api/v1/auth/logout", r.LogoutAPI()),
        Route("/api/v1/auth/password/forgot", r.ForgotAPI()),
        Route("/api/v1/auth/password/reset", r.ResetAPI()),
        Route("/api/v1/account/2fa", sec.TwoFactorAPI()),
        Route("/api/v1/account/2fa/setup", sec.TwoFactorSetupAPI()),
        Route("/api/v1/account/2fa/enable", sec.TwoFactorEnableAPI()),
        Route("/api/v1/account/2fa/disable", sec.TwoFactorDisableAPI()),
        Route("/api/v1/account/2fa/backup-codes", sec.BackupCodesAPI()),
        Route("/api/v1/account/sessions", sec.SessionsAPI()),
        Route("/api/v1/account/sessions/end-others", sec.EndSessionsAPI()),
        Route("/api/v1/account/sessions/{session_id}", sec.SessionAPI()),
        Route("/api/v1/account/api-keys", sec.ApiKeysAPI()),
        Route("/api/v1/account/api-keys/{key_id}", sec.ApiKeyAPI()),
        Route("/api/v1/me/accounts", accounts.AccountsAPI()),
        Route("/api/v1/me/switch", accounts.SwitchAPI()),
    ]
