"""One row per task run."""

from peewee import CharField, IntegerField

from engine.db import BaseModel, UTCDateTimeField, utcnow


class JobRun(BaseModel):
    name = CharField(max_length=50)
    arg = CharField(max_length=200, default="")
    message_id = CharField(max_length=36, default="")
    scheduled_at = CharField(max_length=50, default="")
    pid = IntegerField()
    created_at = UTCDateTimeField(default=utcnow)

    @classmethod
    def names(cls, name: str, arg: str | None = None) -> list[str]:
        query = cls.select().where(cls.name == name)
        if arg is not None:
            query = query.where(cls.arg == arg)
        return [r.arg for r in query.order_by(cls.id)]
