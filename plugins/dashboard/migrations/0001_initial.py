"""Alert dismissals."""


def up(migrator, db):
    from plugins.dashboard.models import AlertDismissal
    db.create_tables([AlertDismissal])
