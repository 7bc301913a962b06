"""The email channel: the file backend, the demo mailbox, and emails whose message was lost."""

import importlib
from datetime import timedelta

import pytest
import time_machine

from engine.models import User
from engine.notify import Notice, notify
from engine.testing import Client, run_tasks
from plugins.email.models import EmailDelivery
from plugins.email.tasks import GIVE_UP_AFTER
from tests.mailserver import smtp  # noqa: F401  (fixture)


def test_demo_mailbox_lists_and_shows_emails_written_to_the_data_dir(make_app, tmp_path):
    from engine.testing import seed_people

    app = make_app(demo=True)
    seed_people(app)
    user = User.get(User.email == "bob@example.com")
    with app.database.atomic():
        notify(
            app,
            Notice(
                kind="service_expiring",
                key="demo-1",
                category="security",
                user_id=user.id,
                data={
                    "service": "Fibre",
                    "service_id": 7,
                    "days": 3,
                    "ends_at": "2026-12-01T10:00:00+00:00",
                },
            ),
        )
    run_tasks(app)
    files = list((tmp_path / "data" / "mail").glob("*.eml"))
    assert len(files) == 1 and b"Fibre ends in 3 days" in files[0].read_bytes()
    client = Client(app)
    listing = client.get("/demo/mail")
    assert listing.status_code == 200 and "Fibre ends in 3 days" in listing.text
    view = client.get(f"/demo/mail/{files[0].stem}")
    assert 'href="http://portal.test/services/7"' in view.text
    assert client.get("/demo/mail/..%2Fportico").status_code == 404


def test_no_demo_mailbox_outside_demo_mode(app):
    assert Client(app).get("/demo/mail").status_code == 404


@pytest.mark.spec("NOT-1")
def test_every_email_has_a_standard_message_id_on_the_senders_domain(make_app, smtp):
    import re
    from engine.testing import seed_people

    settings = smtp.settings()
    settings["mail"]["sender"] = "Shop <no-reply@mail.shop.example>"
    app = make_app(**settings)
    seed_people(app)
    expiry_notice(app, "msgid:1 with:colons")
    expiry_notice(app, "msgid:2")
    run_tasks(app)
    ids = [m["Message-ID"] for m in smtp.inbox.messages]
    assert len(ids) == 2 and ids[0] != ids[1]
    for found in ids:  # RFC 5322 msg-id: "<" dot-atom-text "@" domain ">"
        assert re.fullmatch(r"<[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@mail\.shop\.example>", found), found


@pytest.mark.spec("NOT-1")
def test_no_email_template_glues_two_sentences_together():
    """The templates drop the newline after a block tag (trim_blocks): text, then a tag at the
    end of a line, then more text on the next line reads "at once.If these..."."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    glued = []
    for path in sorted(
        [*root.glob("plugins/*/templates/email/*"), *root.glob("themes/*/templates/email/*")]
    ):
        lines = path.read_text().split("\n")
        for number, (line, following) in enumerate(zip(lines, lines[1:]), 1):
            text = re.sub(r"{%.*?%}", "", line).strip()
            if (
                re.search(r"%}\s*$", line)
                and text
                and not text.endswith(">")
                and following.strip()
                and not following.lstrip().startswith(("{%", "<"))
            ):
                glued.append(f"{path.relative_to(root)}:{number}")
    assert glued == []


# -- emails whose queue message was lost: the outbox sends them again (OPS-6) -----------------


def expiry_notice(app, key: str) -> None:
    user = User.get(User.email == "alice@example.com")
    with app.database.atomic():
        notify(
            app,
            Notice(
                kind="service_expiring",
                key=key,
                category="security",
                user_id=user.id,
                data={
                    "service": "Fibre",
                    "service_id": 7,
                    "days": 3,
                    "ends_at": "2026-12-01T10:00:00+00:00",
                },
            ),
        )


@pytest.fixture
def mail_app(make_app, smtp):
    from engine.testing import seed_people

    app = make_app(**smtp.settings())
    seed_people(app)
    return app


@pytest.mark.spec("NOT-4", "ENG-2", "OPS-6")
def test_an_email_whose_queue_message_was_lost_is_sent_again_once(mail_app, smtp):
    expiry_notice(mail_app, "lost-1")
    assert mail_app.tasks.relay() == 1
    mail_app.tasks.broker.flush_all()  # the broker restarted empty: the message is gone
    run_tasks(mail_app)
    assert smtp.inbox.messages == [] and EmailDelivery.get().status == "pending"

    later = mail_app.tasks.redeliver_after
    with time_machine.travel(later - timedelta(minutes=1)):
        assert mail_app.tasks.redeliver() == 0  # it may still be queued
    with time_machine.travel(later + timedelta(minutes=1)):
        assert mail_app.tasks.redeliver() == 1
        assert mail_app.tasks.redeliver() == 0  # back in the outbox: sent again once
    run_tasks(mail_app)
    assert smtp.inbox.subjects("alice@example.com") == ["Fibre ends in 3 days"]
    assert EmailDelivery.get().status == "sent"
    with time_machine.travel(later * 3):
        assert mail_app.tasks.redeliver() == 0  # done
    run_tasks(mail_app)
    assert len(smtp.inbox.messages) == 1


@pytest.mark.spec("NOT-4")
def test_a_resent_email_is_settled_when_it_cannot_go_and_never_sent_twice(mail_app, smtp, caplog):
    expiry_notice(mail_app, "dead-worker")
    expiry_notice(mail_app, "too-old")
    dead, old = EmailDelivery.select().order_by(EmailDelivery.id)
    # A worker died handing `dead` to the mail server, and its redelivery was lost too.
    EmailDelivery.update(status="sending").where(EmailDelivery.id == dead.id).execute()
    mail_app.tasks.relay()
    mail_app.tasks.broker.flush_all()
    with time_machine.travel(GIVE_UP_AFTER + timedelta(hours=1)):
        assert mail_app.tasks.redeliver() == 2
        run_tasks(mail_app)
    assert smtp.inbox.messages == []
    assert EmailDelivery.get_by_id(dead.id).status == "unconfirmed"
    assert EmailDelivery.get_by_id(old.id).status == "failed"
    assert f"email {old.id} (service_expiring) gave up" in caplog.text
    with time_machine.travel(GIVE_UP_AFTER * 2):
        assert mail_app.tasks.redeliver() == 0  # both done


@pytest.mark.spec("NOT-4")
def test_an_email_refused_to_the_last_retry_is_failed_not_retried(mail_app, smtp, caplog):
    from dramatiq.message import Message

    from engine.models import OutboxMessage
    from plugins.email.tasks import MAX_RETRIES

    expiry_notice(mail_app, "refused")
    OutboxMessage.delete().execute()  # sent below as its last retry instead
    smtp.stop()  # nothing listens: the try fails
    mail_app.tasks.broker.enqueue(
        Message(
            queue_name="default",
            actor_name="plugins.email.tasks.deliver_email",
            args=(EmailDelivery.get().id,),
            kwargs={},
            options={"retries": MAX_RETRIES},
        )
    )
    run_tasks(mail_app)
    delivery = EmailDelivery.get()
    assert (delivery.status, delivery.attempts) == ("failed", 1)
    assert "gave up" in caplog.text


def test_migration_0002_gives_older_deliveries_a_touched_at_and_reverts(mail_app):
    from playhouse.migrate import SchemaMigrator

    from engine import db

    migration = importlib.import_module("plugins.email.migrations.0002_touched_at")
    migrator = SchemaMigrator.from_database(db.database)
    expiry_notice(mail_app, "before-0002")
    migration.down(migrator, db.database)
    assert "touched_at" not in migration.columns(db.database, "email_delivery")
    migration.up(migrator, db.database)
    migration.up(migrator, db.database)  # idempotent (older databases may have had it from 0001)
    row = EmailDelivery.get()
    assert row.touched_at == row.created_at and row.status == "pending"
    schema = (
        db.database.execute_sql("SELECT current_schema()").fetchone()[0]
        if db.is_postgres()
        else None
    )
    indexes = {i.name for i in db.database.get_indexes("email_delivery", schema)}
    assert {"email_delivery_status_touched_at", "email_delivery_key_address"} <= indexes
