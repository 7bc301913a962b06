"""Signing in and out, and password reset: the portal pages and the JSON API."""

from __future__ import annotations

import falcon

from engine import audit
from engine.api import operation
from engine.db import database
from engine.errors import Problem, invalid, in_words
from engine.forms import read_form, validate_form
from engine.i18n import N_
from engine.middleware import CSRF_COOKIE, csrf_token, new_csrf_cookie
from plugins.identity import login, passwords, reset, schemas, sessions, twofactor
from plugins.identity.auth import bearer, load_user
from plugins.identity.login import LoginRefused
from plugins.identity.ratelimit import limiter

NOTICES = {
    "reset": N_("Your password has been changed. Sign in with the new one."),
    "signed-out": N_("You have signed out."),
    "expired": N_("Your session has ended. Please sign in again."),
    "email": N_("Your email address has been changed."),
    "joined": N_(
        "The account was added to your login. Sign in and choose it at the top of the page."
    ),
}


def redirect(resp: falcon.Response, path: str) -> None:
    """303 to a same-site path, keeping any cookies already set on ``resp``."""
    resp.status = falcon.HTTP_303
    resp.location = path
    resp.text = ""


def keep_private(resp: falcon.Response) -> None:
    """For a page whose URL carries a secret token (a reset or invitation link).

    APPSEC: never let the token leave in a Referer header, and never let a shared or
    back-button cache keep the page that carries it."""
    resp.set_header("Referrer-Policy", "no-referrer")
    resp.set_header("Cache-Control", "no-store")


def rotate_csrf(app, ctx, resp) -> str:
    """A fresh CSRF cookie at sign-in; returns the token forms and scripts must send."""
    cookie = new_csrf_cookie()
    resp.set_cookie(
        CSRF_COOKIE,
        cookie,
        http_only=True,
        same_site="Lax",
        path="/",
        max_age=60 * 60 * 24 * 7,
        secure=app.settings.security.cookie_secure,
    )
    ctx.extra.pop("csrf_set", None)
    return csrf_token(app, cookie)


def policy_hint(app) -> str:
    return passwords.describe(app.settings.security.password_policy)


def password_errors(app, password: str, email: str = "", field: str = "password") -> dict:
    reasons = passwords.problems(password, app.settings.security.password_policy, email=email)
    return {field: reasons} if reasons else {}


def end_session(app, ctx, row) -> None:
    """Sign out on the server; ending an impersonation session is recorded for the customer."""
    with database.atomic():
        sessions.revoke(row.id)
        if row.kind == "impersonation":
            audit.record(
                ctx,
                "impersonation.ended",
                f"user:{row.user_id}",
                {"impersonation_id": row.impersonation_id},
            )
        elif row.kind == "customer":
            audit.record(ctx, "logout", f"user:{row.user_id}")


# -- portal pages ---------------------------------------------------------------


class LoginPage:
    """``/login``: email and password; then ``/login/2fa`` when 2FA is on."""

    auth = "public"

    def on_get(self, req, resp):
        app, ctx = req.context.app, req.context
        target = login.safe_next(req.get_param("next"))
        if ctx.customer_id is not None:
            return redirect(resp, target)
        app.page(
            req,
            resp,
            "identity/login.html",
            next=target,
            email="",
            errors={},
            notice=NOTICES.get(req.get_param("notice") or ""),
        )

    def on_post(self, req, resp):
        app, ctx = req.context.app, req.context
        data, errors = validate_form(req, schemas.LoginForm)
        target = login.safe_next(read_form(req).get("next"))
        email = str(read_form(req).get("email", ""))[:254]
        if errors:
            return app.page(
                req, resp, "identity/login.html", 422, next=target, email=email, errors=errors
            )
        try:
            user = login.check_password(app, ctx, "customer", data["email"], data["password"])
        except LoginRefused as exc:
            return app.page(
                req,
                resp,
                "identity/login.html",
                exc.status,
                next=target,
                email=email,
                errors={"_form": [exc.message]},
            )
        except Problem as exc:  # rate limited
            resp.set_headers(exc.headers or {})
            return app.page(
                req,
                resp,
                "identity/login.html",
                exc.status_code,
                next=target,
                email=email,
                errors={"_form": [in_words(exc)]},
            )
        rotate_csrf(app, ctx, resp)
        if twofactor.enabled(user):
            token, row = sessions.create(app, ctx, "otp", user_id=user.id, next_path=target)
            sessions.set_cookie(app, resp, sessions.SESSION_COOKIE, token, row)
            return redirect(resp, "/login/2fa")
        login.complete(app, ctx, req, resp, user, "password")
        redirect(resp, target)


class SecondFactorPage:
    """``/login/2fa``: the TOTP (or backup) code after a correct password."""

    auth = "public"

    def _pending(self, req):
        row = sessions.find(req.cookies.get(sessions.SESSION_COOKIE), ("otp",))
        user = load_user(row.user_id) if row is not None else None
        return row, user

    def on_get(self, req, resp):
        row, user = self._pending(req)
        if user is None:
            return redirect(resp, "/login?notice=expired")
        req.context.app.page(req, resp, "identity/login_2fa.html", errors={})

    def on_post(self, req, resp):
        app, ctx = req.context.app, req.context
        row, user = self._pending(req)
        if user is None:
            return redirect(resp, "/login?notice=expired")
        data, errors = validate_form(req, schemas.OtpForm)
        if errors:
            return app.page(req, resp, "identity/login_2fa.html", 422, errors=errors)
        try:
            result = login.second_factor(app, ctx, user, data["otp"])
        except LoginRefused as exc:
            if exc.slug == "login-locked":
                sessions.revoke(row.id)
                sessions.clear_cookie(app, resp, sessions.SESSION_COOKIE)
                return app.page(
                    req,
                    resp,
                    "identity/login.html",
                    exc.status,
                    next="/",
                    email=user.email,
                    errors={"_form": [exc.message]},
                )
            return app.page(
                req, resp, "identity/login_2fa.html", exc.status, errors={"otp": [exc.message]}
            )
        except Problem as exc:
            resp.set_headers(exc.headers or {})
            return app.page(
                req,
                resp,
                "identity/login_2fa.html",
                exc.status_code,
                errors={"otp": [in_words(exc)]},
            )
        sessions.revoke(row.id)  # the password-only token dies; a new one is issued
        login.complete(
            app,
            ctx,
            req,
            resp,
            user,
            "password+backup code" if result == "backup" else "password+totp",
        )
        redirect(
            resp,
            "/account/security?notice=backup"
            if result == "backup"
            else login.safe_next(row.next_path),
        )


class LogoutPage:
    """``POST /logout``: ends the session on the server, not just in the browser."""

    auth = "public"

    def on_post(self, req, resp):
        app, ctx = req.context.app, req.context
        row = ctx.extra.get("session")
        if row is not None and row.kind in ("customer", "impersonation"):
            end_session(app, ctx, row)
        sessions.clear_cookie(app, resp, sessions.SESSION_COOKIE)
        redirect(
            resp,
            "/staff"
            if row is not None and row.kind == "impersonation"
            else "/login?notice=signed-out",
        )


class ForgotPage:
    """``/password/forgot``: always the same answer, whether or not the email is registered."""

    auth = "public"

    def on_get(self, req, resp):
        req.context.app.page(req, resp, "identity/forgot.html", errors={}, email="")

    def on_post(self, req, resp):
        app, ctx = req.context.app, req.context
        data, errors = validate_form(req, schemas.ForgotBody)
        email = str(read_form(req).get("email", ""))[:254]
        if errors:
            return app.page(req, resp, "identity/forgot.html", 422, errors=errors, email=email)
        try:
            limiter(app).hit("reset", "ip", ctx.ip or "-")
            limiter(app).hit("reset", "email", data["email"].strip().lower())
        except Problem as exc:
            resp.set_headers(exc.headers or {})
            return app.page(
                req,
                resp,
                "identity/forgot.html",
                429,
                email=email,
                errors={"_form": [in_words(exc)]},
            )
        reset.request_reset(app, data["email"])
        app.page(req, resp, "identity/forgot.html", sent=reset.SENT_MESSAGE)


class ResetPage:
    """``/password/reset?token=...``: choose the new password."""

    auth = "public"

    def on_get(self, req, resp):
        app = req.context.app
        keep_private(resp)
        token = req.get_param("token") or ""
        if reset.valid(token) is None:
            return app.page(req, resp, "identity/reset.html", 410, invalid=reset.INVALID_MESSAGE)
        app.page(req, resp, "identity/reset.html", token=token, errors={}, policy=policy_hint(app))

    def on_post(self, req, resp):
        app, ctx = req.context.app, req.context
        keep_private(resp)
        data, errors = validate_form(req, schemas.ResetForm)
        token = str(read_form(req).get("token", ""))[:200]
        row = reset.valid(token)
        if row is None:
            return app.page(req, resp, "identity/reset.html", 410, invalid=reset.INVALID_MESSAGE)
        if not errors:
            errors = password_errors(app, data["password"], row.user.email)
            if not errors and data["password"] != data["password_confirm"]:
                errors = {"password_confirm": [N_("The two passwords are not the same.")]}
        if errors:
            return app.page(
                req,
                resp,
                "identity/reset.html",
                422,
                token=token,
                errors=errors,
                policy=policy_hint(app),
            )
        if not reset.complete(app, ctx, row, data["password"]):
            return app.page(req, resp, "identity/reset.html", 410, invalid=reset.INVALID_MESSAGE)
        sessions.clear_cookie(app, resp, sessions.SESSION_COOKIE)
        redirect(resp, "/login?notice=reset")


# -- JSON API ---------------------------------------------------------------------


class LoginAPI:
    """``POST /api/v1/auth/login``."""

    auth = "public"
    # APPSEC: no CSRF token needed even when a session cookie rides along: the body must be
    # JSON (other types get 415), which a cross-site page cannot send without a CORS preflight.
    csrf = False

    @operation(
        "Sign in: returns a bearer token and sets the session cookie",
        body=schemas.LoginBody,
        response=schemas.TokenOut,
        errors={
            401: "Wrong email or password, or the 2FA code is missing or wrong",
            429: "Too many attempts, or the email is locked",
        },
        description="Send `otp` too when 2FA is on; without it the answer is 401 "
        "with type `otp-required`. Five failures lock the email for 30 "
        "minutes (429, type `login-locked`).",
    )
    def on_post(self, req, resp, body):
        app, ctx = req.context.app, req.context
        try:
            user = login.check_password(app, ctx, "customer", body["email"], body["password"])
            method = "password"
            if twofactor.enabled(user):
                if not body.get("otp"):
                    raise Problem(
                        401,
                        N_("Two-step verification code required"),
                        N_("Send the code from the authenticator app (or a backup code) as 'otp'."),
                        type="otp-required",
                        errors={"otp": [N_("Enter the code from your app.")]},
                    )
                result = login.second_factor(app, ctx, user, body["otp"])
                method = "password+backup code" if result == "backup" else "password+totp"
        except LoginRefused as exc:
            raise Problem(
                exc.status,
                exc.message,
                type=exc.slug,
                errors={exc.field: [exc.message]} if exc.field else None,
            ) from None
        token, row = login.complete(app, ctx, req, resp, user, method, via="api")
        return {
            "token": token,
            "expires_at": row.expires_at,
            "csrf_token": rotate_csrf(app, ctx, resp),
        }


class LogoutAPI:
    """``POST /api/v1/auth/logout``: ends the calling session (cookie or bearer token)."""

    @operation("Sign out: the session token stops working at once", response=schemas.StatusOut)
    def on_post(self, req, resp):
        app, ctx = req.context.app, req.context
        row = ctx.extra.get("session")
        if row is None:
            raise Problem(
                400,
                N_("Not a session"),
                N_("API keys are revoked under /account/api-keys, not signed out."),
            )
        end_session(app, ctx, row)
        if bearer(req) is None:
            sessions.clear_cookie(app, resp, sessions.SESSION_COOKIE)
        return {"status": "signed-out", "detail": "The session has ended."}


class ForgotAPI:
    """``POST /api/v1/auth/password/forgot``."""

    auth = "public"

    @operation(
        "Ask for a password reset link",
        body=schemas.ForgotBody,
        response=schemas.StatusOut,
        status=202,
        errors={429: "Too many requests"},
        description="The answer is the same whether or not the email is registered.",
    )
    def on_post(self, req, resp, body):
        app, ctx = req.context.app, req.context
        limiter(app).hit("reset", "ip", ctx.ip or "-")
        limiter(app).hit("reset", "email", body["email"].strip().lower())
        reset.request_reset(app, body["email"])
        return {"status": "sent", "detail": reset.SENT_MESSAGE}


class ResetAPI:
    """``POST /api/v1/auth/password/reset``."""

    auth = "public"

    @operation(
        "Set a new password with the token from the reset email",
        body=schemas.ResetBody,
        response=schemas.StatusOut,
    )
    def on_post(self, req, resp, body):
        app, ctx = req.context.app, req.context
        row = reset.valid(body["token"])
        if row is None:
            raise invalid({"token": [reset.INVALID_MESSAGE]})
        errors = password_errors(app, body["password"], row.user.email)
        if errors:
            raise invalid(errors)
        if not reset.complete(app, ctx, row, body["password"]):
            raise invalid({"token": [reset.INVALID_MESSAGE]})
        return {"status": "changed", "detail": "Sign in with the new password."}
