"""The built-in email channel (NOT-4): records each delivery once, sends it from the worker."""

from __future__ import annotations

from engine import hookimpl
from engine.registry import Route


@hookimpl
def register_models():
    from plugins.email.models import EmailDelivery

    return [EmailDelivery]


@hookimpl
def register_actors():
    from plugins.email.tasks import deliver_email

    return [deliver_email]


@hookimpl
def notification_channels(app):
    from plugins.email.channel import EmailChannel

    return [EmailChannel()]


@hookimpl
def register_routes(app):
    if not app.settings.demo:
        return []
    from plugins.email import resources

    return [
        Route("/demo/mail", resources.MailList()),
        Route("/demo/mail/{name}", resources.MailView()),
    ]
