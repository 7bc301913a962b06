"""The job runs table."""


def up(migrator, db):
    from jobs_plugin.models import JobRun
    db.create_tables([JobRun])
