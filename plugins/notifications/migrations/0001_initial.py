"""Notification preferences and digest items."""


def up(migrator, db):
    from plugins.notifications.models import DigestItem, NotificationPreference
    db.create_tables([NotificationPreference, DigestItem])
