"""Push subscription API: the browser registers where to send pushes for this user."""

from __future__ import annotations

import falcon

from engine import audit, outbound
from engine.api import PageQuery, operation, paginate
from engine.context import get_owned, owned
from engine.errors import invalid
from engine.i18n import N_
from plugins.webpush import schemas, service
from plugins.webpush.models import PushSubscription


class PublicKey:
    @operation("The VAPID public key for PushManager.subscribe()", response=schemas.PublicKeyOut)
    def on_get(self, req, resp):
        return {"public_key": req.context.app.settings.plugin("webpush").vapid_public_key}


class Subscriptions:
    @operation(
        "Your browsers subscribed to push", query=PageQuery, response=schemas.SubscriptionList
    )
    def on_get(self, req, resp, query):
        ctx = req.context
        mine = owned(PushSubscription, ctx.require_customer()).where(
            PushSubscription.user == ctx.principal.user_id
        )
        return paginate(mine, PushSubscription.id, query)

    @operation(
        "Subscribe this browser to push notifications",
        body=schemas.SubscriptionIn,
        response=schemas.SubscriptionOut,
        status=201,
        errors={
            403: "Under impersonation, or with an API key: the account holder "
            "subscribes in their own session (IMP-6)"
        },
    )
    def on_post(self, req, resp, body):
        ctx = req.context
        service.require_subscriber(ctx)
        try:
            outbound.check_url(ctx.app, body["endpoint"])  # checked again at each push
        except outbound.UnsafeURL as exc:
            raise invalid({"endpoint": [str(exc)]}) from None
        with ctx.app.database.atomic():
            sub = PushSubscription.get_or_none(PushSubscription.endpoint == body["endpoint"])
            if sub is not None and sub.user_id != ctx.principal.user_id:
                sub.delete_instance()  # the browser now belongs to someone else
                sub = None
            if sub is None:
                sub = PushSubscription.create(
                    user=ctx.principal.user_id,
                    endpoint=body["endpoint"],
                    p256dh=body["keys"]["p256dh"],
                    auth=body["keys"]["auth"],
                    user_agent=ctx.user_agent,
                )
                audit.record(ctx, "push.subscribed", f"push_subscription:{sub.id}")
        return sub


class Subscription:
    @operation("Unsubscribe a browser", status=204)
    def on_delete(self, req, resp, subscription_id):
        ctx = req.context
        sub = get_owned(PushSubscription, subscription_id, ctx)
        if sub.user_id != ctx.principal.user_id:
            raise falcon.HTTPNotFound(title=N_("Not found"))
        with ctx.app.database.atomic():
            sub.delete_instance()
            audit.record(ctx, "push.unsubscribed", f"push_subscription:{sub.id}")
