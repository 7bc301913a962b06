"""The forecast table."""


def up(migrator, db):
    from acme_weather.models import Forecast
    db.create_tables([Forecast])


def down(migrator, db):
    from acme_weather.models import Forecast
    db.drop_tables([Forecast])
