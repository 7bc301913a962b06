"""The email channel's file backend and the demo mailbox."""
import pytest

from engine.models import User
from engine.notify import Notice, notify
from engine.testing import Client, run_tasks


def test_demo_mailbox_lists_and_shows_emails_written_to_the_data_dir(make_app, tmp_path):
    from engine.testing import seed_people
    app = make_app(demo=True)
    seed_people(app)
    user = User.get(User.email == "bob@example.com")
    with app.database.atomic():
        notify(app, Notice(kind="service_expiring", key="demo-1", category="security",
                           user_id=user.id, data={"service": "Fibre", "service_id": 7, "days": 3,
                                                  "ends_at": "2026-12-01T10:00:00+00:00"}))
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
