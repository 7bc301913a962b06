"""Web push (NOT-4, MOB-3): a notification channel through the browser's push service.

Active when VAPID keys are configured (``portico webpush keys`` makes a pair);
without them the channel and its API are absent. The account holder subscribes
a browser in their own session (never staff impersonating, never an API key,
IMP-6); a password reset or "sign out everywhere" removes every browser of the
login (SEC-4, ``security.sign_out_removes_push``). Push never carries a
sensitive notice (SEC-1).
"""

from __future__ import annotations

from engine import hookimpl
from engine.registry import Route


@hookimpl
def register_settings():
    from plugins.webpush.schemas import WebPushSettings

    return WebPushSettings


def configured(app) -> bool:
    conf = app.settings.plugin("webpush")
    return bool(conf.get("vapid_private_key") and conf.get("vapid_public_key"))


@hookimpl
def register_models():
    from plugins.webpush.models import PushDelivery, PushSubscription

    return [PushSubscription, PushDelivery]


@hookimpl
def register_routes(app):
    if not configured(app):
        return []
    from plugins.webpush import resources

    return [
        Route("/api/v1/push/key", resources.PublicKey()),
        Route("/api/v1/push/subscriptions", resources.Subscriptions()),
        Route("/api/v1/push/subscriptions/{subscription_id}", resources.Subscription()),
    ]


@hookimpl
def register_actors():
    from plugins.webpush.tasks import deliver_push

    return [deliver_push]


@hookimpl
def notification_channels(app):
    if not configured(app):
        return []
    from plugins.webpush.channel import PushChannel

    return [PushChannel()]


@hookimpl(optionalhook=True)  # the identity plugin's hook; it may be disabled
def signed_out_everywhere(app, ctx, user, reason):
    if app.settings.security.sign_out_removes_push:
        from plugins.webpush.service import remove_all

        remove_all(ctx, user, reason)


@hookimpl
def register_commands(cli, app_factory):
    from plugins.webpush.commands import webpush

    cli.add_command(webpush)
