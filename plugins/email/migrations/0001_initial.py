"""Email deliveries."""


def up(migrator, db):
    from plugins.email.models import EmailDelivery
    db.create_tables([EmailDelivery])
