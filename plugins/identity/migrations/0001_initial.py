"""Identity tables: sessions, devices, login guards, reset links, 2FA, API keys, rate counters."""
from peewee import CharField, DateTimeField, DoubleField, ForeignKeyField, IntegerField, Model


class Customer(Model):  # another plugin's table, only referenced
    class Meta:
        table_name = "customer"


class StaffUser(Model):  # another plugin's table, only referenced
    class Meta:
        table_name = "staff_user"


class User(Model):  # another plugin's table, only referenced
    class Meta:
        table_name = "user"


class ApiKey(Model):
    customer = ForeignKeyField(Customer, on_delete="CASCADE")
    user = ForeignKeyField(User, on_delete="CASCADE")
    name = CharField(max_length=100)
    prefix = CharField(max_length=16)
    key_hash = CharField(max_length=64, unique=True)
    access = CharField(max_length=20)
    expires_at = DateTimeField()
    created_at = DateTimeField()
    last_used_at = DateTimeField(null=True)
    last_used_ip = CharField(max_length=64)
    revoked_at = DateTimeField(null=True)

    class Meta:
        table_name = "api_key"
        legacy_table_names = False  # index names start with the table's
        indexes = ((("customer", "id"), False),)


class BackupCode(Model):
    user = ForeignKeyField(User, on_delete="CASCADE")
    code_hash = CharField(max_length=64, index=True)
    used_at = DateTimeField(null=True)
    created_at = DateTimeField()

    class Meta:
        table_name = "backup_code"
        legacy_table_names = False  # index names start with the table's


class KnownDevice(Model):
    user = ForeignKeyField(User, on_delete="CASCADE")
    device_hash = CharField(max_length=64)
    user_agent = CharField(max_length=300)
    first_seen_at = DateTimeField()
    last_seen_at = DateTimeField()

    class Meta:
        table_name = "known_device"
        legacy_table_names = False  # index names start with the table's
        indexes = ((("user", "device_hash"), True),)


class LoginGuard(Model):
    key = CharField(max_length=300, unique=True)
    failures = IntegerField()
    locked_until = DateTimeField(null=True)
    updated_at = DateTimeField(index=True)

    class Meta:
        table_name = "login_guard"
        legacy_table_names = False  # index names start with the table's


class PasswordReset(Model):
    user = ForeignKeyField(User, on_delete="CASCADE")
    token_hash = CharField(max_length=64, unique=True)
    email = CharField(max_length=254)
    password_changed_at = DateTimeField()
    reason = CharField(max_length=20)
    created_at = DateTimeField()
    used_at = DateTimeField(null=True)

    class Meta:
        table_name = "password_reset"
        legacy_table_names = False  # index names start with the table's


class RateCounter(Model):
    key = CharField(max_length=300, unique=True)
    count = IntegerField()
    expires_at = DoubleField(index=True)

    class Meta:
        table_name = "rate_counter"
        legacy_table_names = False  # index names start with the table's


class Session(Model):
    token_hash = CharField(max_length=64, unique=True)
    kind = CharField(max_length=20)
    user = ForeignKeyField(User, null=True, on_delete="CASCADE")
    staff = ForeignKeyField(StaffUser, null=True, on_delete="CASCADE")
    impersonation_id = IntegerField(null=True)
    created_at = DateTimeField()
    last_seen_at = DateTimeField()
    expires_at = DateTimeField()
    idle_seconds = IntegerField()
    ip = CharField(max_length=64)
    user_agent = CharField(max_length=300)
    next_path = CharField(max_length=500)
    revoked_at = DateTimeField(null=True)

    class Meta:
        table_name = "session"
        legacy_table_names = False  # index names start with the table's


class TwoFactor(Model):
    user = ForeignKeyField(User, unique=True, on_delete="CASCADE")
    secret = CharField(max_length=64)  # 200 since 0002
    confirmed_at = DateTimeField(null=True)
    last_step = IntegerField()
    created_at = DateTimeField()

    class Meta:
        table_name = "two_factor"
        legacy_table_names = False  # index names start with the table's


TABLES = [ApiKey, BackupCode, KnownDevice, LoginGuard, PasswordReset, RateCounter, Session,
TwoFactor]


def up(migrator, db):
    with db.bind_ctx(TABLES):
        db.create_tables(TABLES, safe=False)


def down(migrator, db):
    with db.bind_ctx(TABLES):
        db.drop_tables(TABLES, safe=False)
