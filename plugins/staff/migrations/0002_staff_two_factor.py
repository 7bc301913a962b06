"""``staff_two_factor``: staff members' authenticators (a database made by ``0001`` has it)."""


def up(migrator, db):
    from plugins.staff.models import StaffTwoFactor
    db.create_tables([StaffTwoFactor])  # IF NOT EXISTS


def down(migrator, db):
    from plugins.staff.models import StaffTwoFactor
    db.drop_tables([StaffTwoFactor])
