"""Account → Security: 2FA set-up and removal, backup codes, sessions, API keys (pages and API)."""

from __future__ import annotations

import falcon
from marshmallow import Schema, fields

from engine import audit, roles
from engine.api import PageQuery, operation, paginate
from engine.context import as_id, get_or_404, owned
from engine.db import database, utcnow
from engine.errors import Problem, invalid, in_words
from engine.forms import read_form, validate_form
from engine.i18n import N_
from engine.models import Contact, Customer, User
from engine.notify import Notice, notify
from engine.security import verify_password
from plugins.identity import apikeys, guards, schemas, sessions, twofactor
from plugins.identity.auth import load_user
from plugins.identity.models import ApiKey, Session
from plugins.identity.ratelimit import limiter
from plugins.identity.resources import redirect

NOTICES = {
    "backup": N_(
        "You signed in with a backup code. If you lost your phone, turn two-step "
        "verification off below and set it up again on your new phone."
    ),
    "enabled": N_("Two-step verification is on."),
    "disabled": N_("Two-step verification is off."),
    "ended": N_("Your other sessions have been signed out."),
    "revoked": N_("The API key has been revoked."),
}


def current_user(ctx):
    """The signed-in customer's ``User`` (with contact and customer)."""
    ctx.require_customer()
    user = ctx.extra.get("user")
    if user is None:
        user = ctx.extra["user"] = load_user(ctx.principal.user_id)
    return user


def _security_notice(app, user, kind: str, key: str, data: dict | None = None) -> None:
    notify(
        app,
        Notice(
            kind=kind,
            key=key,
            user_id=user.id,
            customer_id=user.contact.customer_id,
            category="security",
            sensitive=True,
            data=data or {},
        ),
    )


def check_password_and_code(app, ctx, user, password: str, code: str) -> dict:
    """Field errors for the password + code that removing 2FA or renewing codes needs."""
    limiter(app).hit("otp", str(user.id))
    errors = {}
    if not verify_password(user.password_hash, password):
        errors["password"] = [N_("This is not your current password.")]
    elif (result := twofactor.verify_second_factor(app, user, code)) not in ("ok", "backup"):
        if result == "replay":
            audit.record(ctx, "2fa.replay_refused", f"user:{user.id}")
        errors["code"] = [
            N_("That code was already used. Wait for the next one.")
            if result == "replay"
            else N_("That code is not right.")
        ]
    return errors


# -- services both faces call ---------------------------------------------------------


def start_setup(app, ctx, user) -> dict:
    guards.require_account_holder(ctx)
    if twofactor.enabled(user):
        raise Problem(
            409,
            N_("Two-step verification is already on"),
            N_("Turn it off first to move it to a new phone."),
            type="2fa-enabled",
        )
    row = twofactor.pending(user) or twofactor.begin_setup(app, user)
    return twofactor.setup_view(app, user.email, row)


def enable(app, ctx, user, code: str) -> list[str]:
    """Confirm set-up with a code; returns the backup codes (shown once). Raises 422/409."""
    guards.require_account_holder(ctx)
    limiter(app).hit("otp", str(user.id))
    if twofactor.enabled(user):
        raise Problem(409, N_("Two-step verification is already on"), type="2fa-enabled")
    row = twofactor.pending(user)
    if row is None:
        raise invalid({"code": [N_("Start the set-up first.")]})
    result = twofactor.confirm(app, row, code)
    if result != "ok":
        raise invalid(
            {
                "code": [
                    N_(
                        "That code is not right. Check the time on your phone and "
                        "enter the newest code."
                    )
                ]
            }
        )
    with database.atomic():
        codes = twofactor.new_backup_codes(app, user)
        audit.record(ctx, "2fa.enabled", f"user:{user.id}")
        _security_notice(app, user, "two_factor_enabled", f"2fa-enabled:{row.id}")
    return codes


def disable(app, ctx, user, password: str, code: str) -> None:
    guards.require_account_holder(ctx)
    if not twofactor.enabled(user):
        raise Problem(409, N_("Two-step verification is already off"), type="2fa-disabled")
    errors = check_password_and_code(app, ctx, user, password, code)
    if errors:
        raise invalid(errors)
    with database.atomic():
        twofactor.disable(user)
        audit.record(ctx, "2fa.disabled", f"user:{user.id}")
        _security_notice(
            app, user, "two_factor_disabled", f"2fa-disabled:{user.id}:{utcnow().isoformat()}"
        )


def renew_backup_codes(app, ctx, user, password: str, code: str) -> list[str]:
    guards.require_account_holder(ctx)
    if not twofactor.enabled(user):
        raise Problem(409, N_("Two-step verification is off"), type="2fa-disabled")
    errors = check_password_and_code(app, ctx, user, password, code)
    if errors:
        raise invalid(errors)
    with database.atomic():
        codes = twofactor.new_backup_codes(app, user)
        audit.record(ctx, "2fa.backup_codes_renewed", f"user:{user.id}")
    return codes


def end_other_sessions(app, ctx, user) -> int:
    """ "Sign out everywhere" (else): the account holder's other sessions end, and with them
    what reaches the login outside a session (SEC-4). Never an impersonator's or a key's call."""
    guards.require_account_holder_for_sessions(ctx)
    with database.atomic():
        count = sessions.sign_out_everywhere(
            app, ctx, user, "sign_out_everywhere", keep=ctx.principal.session_id
        )
        audit.record(ctx, "sessions.ended_others", f"user:{user.id}", {"count": count})
    return count


def require_api_access(ctx) -> Customer:
    customer = Customer.get_by_id(ctx.require_customer())
    if not apikeys.allowed(customer):
        raise Problem(
            403,
            N_("API access is not enabled for your account"),
            N_(
                "API keys are for business customers. Contact support to enable API "
                "access for your account."
            ),
            type="api-access-disabled",
        )
    return customer


def create_key(app, ctx, user, data: dict):
    guards.require_account_holder(ctx)
    customer = require_api_access(ctx)
    limiter(app).hit("api_key", str(customer.id))
    with database.atomic():
        key, row = apikeys.create(
            customer.id, user.id, data["name"].strip(), data["access"], data["expires_at"]
        )
        audit.record(
            ctx,
            "api_key.created",
            f"api_key:{row.id}",
            {
                "name": row.name,
                "access": row.access,
                "prefix": row.prefix,
                "expires_at": row.expires_at.isoformat(),
            },
        )
        _security_notice(
            app,
            user,
            "api_key_created",
            f"api-key-created:{row.id}",
            {
                "name": row.name,
                "access": row.access,
                "prefix": row.prefix,
                "expires": row.expires_at.strftime("%Y-%m-%d"),
            },
        )
    row.key = key
    return row


def visible_keys(ctx):
    """The account's API keys the viewer may see (ACCT-7): all of them for the primary contact
    and managers, otherwise their own; each with its login and contact."""
    query = (
        owned(ApiKey, ctx.require_customer()).select_extend(User, Contact).join(User).join(Contact)
    )
    return roles.mine_unless(query, ctx.principal, "all_api_keys", ApiKey.user)


def revoke_key(app, ctx, key_id) -> ApiKey:
    """Revoke a key: your own, or (ACCT-7) one of a contact below your role; another's key you
    may not see is a 404."""
    guards.require_account_holder(ctx)
    row = get_or_404(ApiKey, key_id, visible_keys(ctx))
    roles.require_over(ctx.principal, "all_api_keys", row.user.contact)
    with database.atomic():
        if apikeys.revoke(row):
            audit.record(
                ctx,
                "api_key.revoked",
                f"api_key:{row.id}",
                {"name": row.name, "prefix": row.prefix},
            )
    return ApiKey.get_by_id(row.id)


# -- portal pages ------------------------------------------------------------------------


class SecurityPage:
    """``/account/security``: 2FA, signed-in sessions, link to API keys."""

    def on_get(self, req, resp):
        app, ctx = req.context.app, req.context
        ctx.extra["section"] = "account"
        user = current_user(ctx)
        app.page(
            req,
            resp,
            "identity/security.html",
            user=user,
            two_factor=twofactor.enabled(user),
            backup_left=twofactor.backup_codes_left(user),
            sessions=sessions.live_sessions(user.id),
            errors={},
            refused=guards.refusal(ctx),
            notice=NOTICES.get(req.get_param("notice") or ""),
            api_allowed=apikeys.allowed(user.contact.customer),
        )


class TwoFactorSetupPage:
    """``/account/2fa/setup``: QR code and manual key, then a code to turn 2FA on."""

    def on_get(self, req, resp):
        app, ctx = req.context.app, req.context
        ctx.extra["section"] = "account"
        user = current_user(ctx)
        if twofactor.enabled(user):
            return redirect(resp, "/account/security")
        app.page(req, resp, "identity/2fa_setup.html", setup=start_setup(app, ctx, user), errors={})

    def on_post(self, req, resp):
        app, ctx = req.context.app, req.context
        ctx.extra["section"] = "account"
        user = current_user(ctx)
        data, errors = validate_form(req, schemas.CodeBody)
        if not errors:
            try:
                codes = enable(app, ctx, user, data["code"])
            except Problem as exc:
                if exc.status_code not in (422, 429):
                    raise
                errors = exc.errors or {"code": [in_words(exc)]}
            else:
                return app.page(req, resp, "identity/backup_codes.html", codes=codes, fresh=True)
        app.page(
            req,
            resp,
            "identity/2fa_setup.html",
            422,
            setup=start_setup(app, ctx, user),
            errors=errors,
        )


class TwoFactorDisablePage:
    """``POST /account/2fa/disable``: password and a code (or a backup code)."""

    def on_post(self, req, resp):
        app, ctx = req.context.app, req.context
        user = current_user(ctx)
        data, errors = validate_form(req, schemas.PasswordAndCode)
        if not errors:
            try:
                disable(app, ctx, user, data["password"], data["code"])
                return redirect(resp, "/account/security?notice=disabled")
            except Problem as exc:
                if exc.status_code not in (422, 429):
                    raise
                errors = exc.errors or {"code": [exc.title]}
        ctx.extra["section"] = "account"
        app.page(
            req,
            resp,
            "identity/security.html",
            422,
            user=user,
            two_factor=True,
            backup_left=twofactor.backup_codes_left(user),
            sessions=sessions.live_sessions(user.id),
            errors=errors,
            form="disable",
            refused=None,
            notice=None,
            api_allowed=apikeys.allowed(user.contact.customer),
        )


class BackupCodesPage:
    """``POST /account/2fa/backup-codes``: a new set of ten, replacing the old ones."""

    def on_post(self, req, resp):
        app, ctx = req.context.app, req.context
        user = current_user(ctx)
        ctx.extra["section"] = "account"
        data, errors = validate_form(req, schemas.PasswordAndCode)
        if not errors:
            try:
                codes = renew_backup_codes(app, ctx, user, data["password"], data["code"])
                return app.page(req, resp, "identity/backup_codes.html", codes=codes, fresh=False)
            except Problem as exc:
                if exc.status_code not in (422, 429):
                    raise
                errors = exc.errors or {"code": [exc.title]}
        app.page(
            req,
            resp,
            "identity/security.html",
            422,
            user=user,
            two_factor=True,
            backup_left=twofactor.backup_codes_left(user),
            sessions=sessions.live_sessions(user.id),
            errors=errors,
            form="renew",
            refused=None,
            notice=None,
            api_allowed=apikeys.allowed(user.contact.customer),
        )


class EndSessionsPage:
    """``POST /account/sessions/end-others``."""

    def on_post(self, req, resp):
        ctx = req.context
        end_other_sessions(ctx.app, ctx, current_user(ctx))
        redirect(resp, "/account/security?notice=ended")


class ApiKeysPage:
    """``/account/api-keys``: list, generate (the key is shown once), revoke."""

    def _render(self, req, resp, status=200, errors=None, created=None, values=None):
        app, ctx = req.context.app, req.context
        ctx.extra["section"] = "account"
        customer = Customer.get_by_id(ctx.require_customer())
        keys = list(visible_keys(ctx).order_by(ApiKey.id.desc()))
        for key in keys:
            key.revocable = roles.may_act_over(ctx.principal, "all_api_keys", key.user.contact)
        app.page(
            req,
            resp,
            "identity/api_keys.html",
            status,
            keys=keys,
            errors=errors or {},
            everyone=roles.may(ctx.principal, "all_api_keys"),
            created=created,
            allowed=apikeys.allowed(customer),
            values=values or {},
            refused=guards.refusal(ctx),
            max_days=apikeys.MAX_DAYS,
            notice=NOTICES.get(req.get_param("notice") or ""),
        )

    def on_get(self, req, resp):
        self._render(req, resp)

    def on_post(self, req, resp):
        ctx = req.context
        data, errors = validate_form(req, schemas.ApiKeyForm.for_zone(ctx.timezone))
        values = {k: v for k, v in read_form(req).items() if k in ("name", "access", "expires_at")}
        if errors:
            return self._render(req, resp, 422, errors, values=values)
        try:
            row = create_key(ctx.app, ctx, current_user(ctx), data)
        except Problem as exc:
            if exc.status_code != 429:
                raise
            return self._render(req, resp, 429, {"_form": [in_words(exc)]}, values=values)
        self._render(req, resp, 201, created=row)


class ApiKeyRevokePage:
    """``POST /account/api-keys/{key_id}/revoke``."""

    def on_post(self, req, resp, key_id):
        revoke_key(req.context.app, req.context, key_id)
        redirect(resp, "/account/api-keys?notice=revoked")


# -- JSON API ------------------------------------------------------------------------


class SessionOut(Schema):
    id = fields.Integer()
    created_at = fields.DateTime()
    last_seen_at = fields.DateTime()
    expires_at = fields.DateTime()
    ip = fields.String()
    user_agent = fields.String()
    current = fields.Boolean()


class SessionList(Schema):
    items = fields.List(fields.Nested(SessionOut))
    next = fields.String(allow_none=True)


class EndedOut(Schema):
    ended = fields.Integer()


class TwoFactorAPI:
    """``GET /api/v1/account/2fa``."""

    @operation("Two-step verification status", response=schemas.TwoFactorStatus)
    def on_get(self, req, resp):
        user = current_user(req.context)
        return {
            "enabled": twofactor.enabled(user),
            "backup_codes_left": twofactor.backup_codes_left(user),
            "pending_setup": twofactor.pending(user) is not None,
        }


class TwoFactorSetupAPI:
    """``POST /api/v1/account/2fa/setup``."""

    @operation(
        "Start 2FA set-up: a new secret, its otpauth URI and a QR code",
        response=schemas.TwoFactorSetup,
        errors={409: "2FA is already on"},
    )
    def on_post(self, req, resp):
        ctx = req.context
        return start_setup(ctx.app, ctx, current_user(ctx))


class TwoFactorEnableAPI:
    """``POST /api/v1/account/2fa/enable``."""

    @operation(
        "Turn 2FA on with a code from the app; returns the backup codes (shown once)",
        body=schemas.CodeBody,
        response=schemas.BackupCodesOut,
        errors={409: "2FA is already on, or set-up was not started", 429: "Too many codes tried"},
    )
    def on_post(self, req, resp, body):
        ctx = req.context
        return {"backup_codes": enable(ctx.app, ctx, current_user(ctx), body["code"])}


class TwoFactorDisableAPI:
    """``POST /api/v1/account/2fa/disable``."""

    @operation(
        "Turn 2FA off (password and a code or backup code)",
        body=schemas.PasswordAndCode,
        response=schemas.TwoFactorStatus,
        errors={409: "2FA is already off", 429: "Too many codes tried"},
    )
    def on_post(self, req, resp, body):
        ctx = req.context
        disable(ctx.app, ctx, current_user(ctx), body["password"], body["code"])
        return {"enabled": False, "backup_codes_left": 0, "pending_setup": False}


class BackupCodesAPI:
    """``POST /api/v1/account/2fa/backup-codes``."""

    @operation(
        "Replace the backup codes (password and a code); returns the new ones once",
        body=schemas.PasswordAndCode,
        response=schemas.BackupCodesOut,
        errors={409: "2FA is off", 429: "Too many codes tried"},
    )
    def on_post(self, req, resp, body):
        ctx = req.context
        return {
            "backup_codes": renew_backup_codes(
                ctx.app, ctx, current_user(ctx), body["password"], body["code"]
            )
        }


class SessionsAPI:
    """``GET /api/v1/account/sessions``."""

    @operation("Your signed-in sessions", response=SessionList)
    def on_get(self, req, resp):
        ctx = req.context
        rows = sessions.live_sessions(current_user(ctx).id)
        for row in rows:
            row.current = row.id == ctx.principal.session_id
        return {"items": rows, "next": None}


class EndSessionsAPI:
    """``POST /api/v1/account/sessions/end-others``."""

    @operation(
        "Sign out every other session of yours",
        response=EndedOut,
        errors={403: "Under impersonation, or with an API key"},
    )
    def on_post(self, req, resp):
        ctx = req.context
        return {"ended": end_other_sessions(ctx.app, ctx, current_user(ctx))}


class SessionAPI:
    """``DELETE /api/v1/account/sessions/{session_id}``."""

    @operation(
        "Sign out one of your sessions",
        status=204,
        errors={403: "Under impersonation, or with an API key"},
    )
    def on_delete(self, req, resp, session_id):
        ctx = req.context
        user = current_user(ctx)
        guards.require_account_holder_for_sessions(ctx)
        try:
            row = Session.get(
                (Session.id == as_id(session_id))
                & (Session.user == user.id)
                & (Session.kind == "customer")
            )
        except (ValueError, Session.DoesNotExist):
            raise falcon.HTTPNotFound(title=N_("Not found")) from None
        with database.atomic():
            sessions.revoke(row.id)
            audit.record(ctx, "session.revoked", f"session:{row.id}")


class ApiKeysAPI:
    """``GET|POST /api/v1/account/api-keys``."""

    @operation(
        "Your API keys (never the keys themselves); every key of the account for the "
        "primary contact and managers (ACCT-7)",
        query=PageQuery,
        response=schemas.ApiKeyPage,
    )
    def on_get(self, req, resp, query):
        return paginate(visible_keys(req.context), ApiKey.id, query)

    @operation(
        "Generate an API key: the key is in this answer only",
        body=schemas.ApiKeyBody,
        response=schemas.ApiKeyCreated,
        status=201,
        errors={429: "Too many keys made recently"},
    )
    def on_post(self, req, resp, body):
        ctx = req.context
        return create_key(ctx.app, ctx, current_user(ctx), body)


class ApiKeyAPI:
    """``DELETE /api/v1/account/api-keys/{key_id}``."""

    @operation(
        "Revoke an API key: it stops working at once (yours; or, for the primary "
        "contact and managers, a key of a contact below them)",
        response=schemas.ApiKeyOut,
        errors={403: "Not in a signed-in session, or your role does not allow it"},
    )
    def on_delete(self, req, resp, key_id):
        return revoke_key(req.context.app, req.context, key_id)
