"""The email channel: decide the address and locale, record the delivery, enqueue it."""

from __future__ import annotations

import peewee

from engine.models import User
from engine.notify import Channel
from plugins.email.models import EmailDelivery


class EmailChannel(Channel):
    id = "email"
    label = "Email"

    def accept(self, app, notice) -> None:
        address, locale = notice.email, notice.locale
        if notice.user_id is not None:
            user = User.get_or_none(User.id == notice.user_id)
            if user is None:
                return
            address = address or user.email
            locale = locale or user.locale
        if not address:
            return
        try:
            with app.database.atomic():
                delivery = EmailDelivery.create(
                    key=notice.key,
                    kind=notice.kind,
                    address=address,
                    user_id=notice.user_id,
                    customer_id=notice.customer_id,
                    data=notice.data,
                    locale=locale or app.settings.default_locale,
                )
        except peewee.IntegrityError:
            return  # this notice was already accepted for this address: deliver once
        from plugins.email import (
            tasks as email_tasks,
        )  # imported late, as the plugin does elsewhere

        app.tasks.enqueue(email_tasks.deliver_email, delivery.id)
