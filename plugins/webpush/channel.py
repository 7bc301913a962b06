"""The push channel: one delivery row per notice and browser, sent by a task."""

from __future__ import annotations

import logging

import peewee

from engine.notify import Channel
from plugins.webpush.models import PushDelivery, PushSubscription

log = logging.getLogger("portico.webpush")


class PushChannel(Channel):
    id = "push"
    label = "Push"

    def accept(self, app, notice) -> None:
        if notice.sensitive:
            # APPSEC(SEC-1): the engine never routes a sensitive notice here; if a caller did,
            # a reset link would leave the account through a browser anyone may have subscribed.
            log.error("push channel refused sensitive notice %s", notice.kind)
            return
        if notice.user_id is None:
            return
        title = _title(app, notice)
        for sub in PushSubscription.select().where(PushSubscription.user == notice.user_id):
            try:
                with app.database.atomic():
                    row = PushDelivery.create(
                        key=notice.key,
                        subscription=sub,
                        title=title,
                        url=notice.data.get("url", "/"),
                    )
            except peewee.IntegrityError:
                continue  # already accepted for this browser
            from plugins.webpush import (
                tasks as webpush_tasks,
            )  # imported late, as the plugin does elsewhere

            app.tasks.enqueue(webpush_tasks.deliver_push, row.id)


def _title(app, notice) -> str:
    """The email subject line doubles as the push title, in the user's language."""
    from engine.models import User

    user = User.get_or_none(User.id == notice.user_id)
    locale = notice.locale or (user.locale if user else "") or app.settings.default_locale
    text = app.theme.render_plain(
        f"email/{notice.kind}.txt",
        locale,
        data=notice.data,
        app_url=app.url,
        support=app.settings.support,
    )
    return text.partition("\n")[0].strip()[:200]
