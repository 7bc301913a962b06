"""Push subscriptions and deliveries."""


def up(migrator, db):
    from plugins.webpush.models import PushDelivery, PushSubscription
    db.create_tables([PushSubscription, PushDelivery])
