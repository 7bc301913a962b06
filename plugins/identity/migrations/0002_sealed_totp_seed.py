"""``two_factor.secret`` widens to 200 characters: it now holds the sealed seed (about 150).

Seeds stored before are plaintext; the identity plugin still reads them and seals each one at
its next accepted code (``twofactor.check_totp``). SQLite does not enforce the length.
"""
from engine.db import is_postgres


def up(migrator, db):
    if is_postgres():
        db.execute_sql('ALTER TABLE "two_factor" ALTER COLUMN "secret" TYPE varchar(200)')


def down(migrator, db):
    pass  # a narrower column could not hold the sealed seeds
