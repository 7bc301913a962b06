"""Invoice PDFs and archives in shared storage (BILL-3, BILL-7, OPS-5), and the bill run.

Downloads stream the stored file with validators (ETag, Last-Modified, 304) and never
render again; any node serves a document any other node stored; a bill run renders each
invoice once, on several processes, and resumes after an interruption.
"""

from __future__ import annotations

import hashlib
import io
import os
import signal
import subprocess
import sys
import time
import zipfile
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
import time_machine
from click.testing import CliRunner

from billing_helpers import customer, invoice_for
from engine.testing import TEST_ENVIRON, Client, PrincipalHeader, as_user, run_tasks
from plugins.billing import documents
from plugins.billing.commands import billing_group
from plugins.billing.models import Invoice


def node(make_app, tmp_path, name: str, **storage):
    """One portal node: its own data folder, the test's database, ``storage`` settings."""
    return make_app(
        plugins=[("test-auth", PrincipalHeader())], data_dir=str(tmp_path / name), storage=storage
    )


@pytest.fixture
def app(make_app, tmp_path):
    return node(make_app, tmp_path, "node-a")


@pytest.fixture
def alice(app):
    return customer("alice")


def get(app, user, path, **headers):
    return as_user(Client(app), user).get(path, headers=headers)


# -- downloads ----------------------------------------------------------------------------


@pytest.mark.spec("BILL-3")
def test_a_stored_pdf_answers_with_validators_and_304s(app, alice):
    c, user = alice
    invoice = documents.store_pdf(app, invoice_for(app, c.id, 1500).id)
    url = f"/api/v1/invoices/{invoice.id}/pdf"
    first = get(app, user, url)
    assert first.status_code == 200 and first.content.startswith(b"%PDF")
    assert first.headers["etag"] == f'"{invoice.pdf_sha256}"'
    assert hashlib.sha256(first.content).hexdigest() == invoice.pdf_sha256
    assert first.headers["content-length"] == str(len(first.content))
    assert first.headers["cache-control"] == "private, no-cache"
    assert first.headers["last-modified"] == format_datetime(
        invoice.pdf_rendered_at.replace(microsecond=0), usegmt=True
    )

    for page in (url, f"/billing/invoices/{invoice.id}/pdf"):
        same = get(app, user, page, **{"If-None-Match": first.headers["etag"]})
        assert same.status_code == 304 and same.content == b"", page
        assert same.headers["etag"] == first.headers["etag"]
        since = get(app, user, page, **{"If-Modified-Since": first.headers["last-modified"]})
        assert since.status_code == 304
    assert get(app, user, url, **{"If-None-Match": '"another"'}).status_code == 200
    assert (
        get(
            app,
            user,
            url,
            **{"If-None-Match": '"another"', "If-Modified-Since": first.headers["last-modified"]},
        ).status_code
        == 200
    )  # the ETag decides when both are sent
    early = format_datetime(invoice.pdf_rendered_at - timedelta(days=1), usegmt=True)
    assert get(app, user, url, **{"If-Modified-Since": early}).status_code == 200
    assert get(app, user, url, **{"If-Modified-Since": "yesterday"}).status_code == 200


class FileWrapper:
    """A WSGI server's ``wsgi.file_wrapper``: records what the application hands it."""

    def __init__(self):
        self.given = []

    def __call__(self, filelike, block_size=8192):
        self.given.append(filelike)
        return iter(lambda: filelike.read(block_size), b"")


@pytest.mark.spec("BILL-3")
def test_a_local_pdf_is_handed_to_the_server_as_a_file_for_sendfile(app, alice):
    c, user = alice
    invoice = documents.store_pdf(app, invoice_for(app, c.id, 1500).id)
    wrapper = FileWrapper()
    client = as_user(Client(app), user)
    result = client.raw.simulate_get(
        f"/api/v1/invoices/{invoice.id}/pdf",
        headers=client.headers,
        extras={"wsgi.file_wrapper": wrapper},
    )
    assert result.status_code == 200
    [given] = wrapper.given
    assert given.fileno() > 0  # gunicorn sendfile()s what has a file descriptor
    assert os.path.samefile(given.name, app.storage.path(invoice.pdf_path))
    assert result.content == app.storage.read(invoice.pdf_path)


@pytest.mark.spec("BILL-3", "OPS-5")
def test_a_pdf_missing_from_storage_is_an_error_never_a_new_render(app, alice):
    """Rendering again would give the customer a document other than the one issued."""
    c, user = alice
    invoice = documents.store_pdf(app, invoice_for(app, c.id, 1500).id)
    app.storage.delete(invoice.pdf_path)
    answer = get(app, user, f"/api/v1/invoices/{invoice.id}/pdf")
    assert answer.status_code == 500 and answer.json["type"].endswith("/file-missing")
    assert not app.storage.exists(invoice.pdf_path)
    assert Invoice.get_by_id(invoice.id).pdf_sha256 == invoice.pdf_sha256


def test_a_pdf_stored_by_portico_0_1_0_in_the_data_folder_is_moved_into_storage(app, alice):
    c, user = alice
    invoice = invoice_for(app, c.id, 1500)
    key = documents.pdf_key(invoice)
    legacy = app.settings.data_path / key  # 0.1.0: <data_dir>/invoices/<customer>/<number>.pdf
    legacy.parent.mkdir(parents=True)
    legacy.write_bytes(b"%PDF-1.7 issued by 0.1.0")
    Invoice.update(
        pdf_path=key,
        pdf_sha256=hashlib.sha256(legacy.read_bytes()).hexdigest(),
        pdf_rendered_at=datetime(2026, 1, 1, tzinfo=timezone.utc),
    ).execute()
    answer = get(app, user, f"/api/v1/invoices/{invoice.id}/pdf")
    assert answer.status_code == 200 and answer.content == b"%PDF-1.7 issued by 0.1.0"
    assert app.storage.read(key) == b"%PDF-1.7 issued by 0.1.0"


# -- any node serves any document (OPS-5) --------------------------------------------------


@pytest.mark.spec("OPS-5", "BILL-3", "BILL-7")
@pytest.mark.parametrize("backend", ["database", "s3"])
def test_any_node_serves_a_pdf_and_an_archive_another_node_stored(
    make_app, tmp_path, request, backend
):
    storage = (
        request.getfixturevalue("s3").settings() if backend == "s3" else {"backend": "database"}
    )
    worker = node(make_app, tmp_path, "worker-node", **storage)
    c, user = customer("alice")
    first = invoice_for(worker, c.id, 1500, issued_at=datetime(2026, 1, 1, tzinfo=timezone.utc))
    second = invoice_for(worker, c.id, 2500, issued_at=datetime(2026, 2, 1, tzinfo=timezone.utc))
    run_tasks(worker)  # the worker renders and stores both
    web = node(make_app, tmp_path, "web-node", **storage)  # another node, another data folder
    for invoice in (first, second):
        stored = Invoice.get_by_id(invoice.id)
        answer = get(web, user, f"/api/v1/invoices/{invoice.id}/pdf")
        assert answer.status_code == 200
        assert hashlib.sha256(answer.content).hexdigest() == stored.pdf_sha256
        assert answer.content == worker.storage.read(stored.pdf_path)
    archive = get(worker, user, f"/api/v1/invoices/archive?ids={first.id},{second.id}")
    assert archive.status_code == 200
    again = get(web, user, f"/api/v1/invoices/archive?ids={first.id},{second.id}")
    assert again.content == archive.content and again.headers["etag"] == archive.headers["etag"]
    assert "content-length" in again.headers  # the stored zip, not a new one
    for data_dir in (tmp_path / "worker-node", tmp_path / "web-node"):
        assert not list(data_dir.rglob("*.pdf")) and not list(data_dir.rglob("*.zip"))


@pytest.mark.spec("OPS-5", "BILL-3")
def test_s3_redirect_sends_the_owner_to_a_signed_url_of_the_bucket(make_app, tmp_path, s3):
    import requests

    web = node(make_app, tmp_path, "web-node", **s3.settings(s3_redirect=True))
    c, user = customer("alice")
    bob, _ = customer("bob")
    invoice = documents.store_pdf(web, invoice_for(web, c.id, 1500).id)
    answer = get(web, user, f"/api/v1/invoices/{invoice.id}/pdf")
    assert answer.status_code == 302
    location = answer.headers["location"]
    assert location.startswith(s3.server.url) and "Signature" in location
    pdf = requests.get(location, timeout=10)
    assert hashlib.sha256(pdf.content).hexdigest() == invoice.pdf_sha256
    assert f'filename="{invoice.number}.pdf"' in pdf.headers["content-disposition"]
    theirs = documents.store_pdf(web, invoice_for(web, bob.id, 900).id)
    assert get(web, user, f"/api/v1/invoices/{theirs.id}/pdf").status_code == 404


@pytest.mark.spec("OPS-5", "BILL-3")
def test_a_node_without_shared_storage_does_not_render_the_pdf_again(make_app, tmp_path):
    worker = node(make_app, tmp_path, "worker-node")
    c, user = customer("alice")
    invoice = documents.store_pdf(worker, invoice_for(worker, c.id, 1500).id)
    web = node(make_app, tmp_path, "web-node")  # local storage, not shared: a misconfiguration
    assert get(web, user, f"/api/v1/invoices/{invoice.id}/pdf").status_code == 500
    assert not web.storage.exists(invoice.pdf_path)
    assert Invoice.get_by_id(invoice.id).pdf_sha256 == invoice.pdf_sha256


# -- archives (BILL-7) --------------------------------------------------------------------


@pytest.mark.spec("BILL-7")
def test_an_archive_is_stored_once_built_and_served_from_storage_after(app, alice):
    c, user = alice
    ids = [invoice_for(app, c.id, 1000 * n).id for n in (1, 2, 3)]
    url = f"/api/v1/invoices/archive?ids={','.join(map(str, ids))}"
    built = get(app, user, url)
    assert built.status_code == 200 and built.headers["content-type"] == "application/zip"
    [stored] = list(app.storage.keys("archives/"))
    assert stored.key == f"archives/{c.id}/{built.headers['etag'].strip(chr(34))}.zip"
    assert app.storage.read(stored.key) == built.content
    assert zipfile.ZipFile(io.BytesIO(built.content)).testzip() is None

    wrapper = FileWrapper()
    client = as_user(Client(app), user)
    again = client.raw.simulate_get(
        "/api/v1/invoices/archive",
        headers=client.headers,
        query_string=f"ids={','.join(map(str, ids))}",
        extras={"wsgi.file_wrapper": wrapper},
    )
    assert again.content == built.content and len(wrapper.given) == 1  # streamed from storage
    assert get(app, user, url, **{"If-None-Match": built.headers["etag"]}).status_code == 304

    # A payment changes the index (paid, status): another archive, under another key.
    Invoice.update(amount_paid=1200, status="paid").where(Invoice.id == ids[0]).execute()
    paid = get(app, user, url)
    assert paid.headers["etag"] != built.headers["etag"]
    index = zipfile.ZipFile(io.BytesIO(paid.content)).read("invoices.csv").decode()
    assert "12.00,paid" in index
    assert len(list(app.storage.keys("archives/"))) == 2


@pytest.mark.spec("BILL-7")
def test_an_archive_holds_invoices_issued_before_1980(app, alice):
    """Zip dates start in 1980; history imported from before then is dated 1980-01-01."""
    c, user = alice
    old = invoice_for(app, c.id, 1000, issued_at=datetime(1975, 6, 1, tzinfo=timezone.utc))
    answer = get(app, user, f"/api/v1/invoices/archive?ids={old.id}")
    assert answer.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(answer.content))
    assert archive.testzip() is None
    assert archive.getinfo(f"{old.number}.pdf").date_time[:3] == (1980, 1, 1)
    assert f"{old.number},1975-06-01" in archive.read("invoices.csv").decode()


@pytest.mark.spec("BILL-7")
def test_stored_archives_are_deleted_after_a_day(app, alice):
    c, user = alice
    invoice = invoice_for(app, c.id, 1000)
    get(app, user, f"/api/v1/invoices/archive?ids={invoice.id}")
    assert documents.prune_archives(app) == 0
    with time_machine.travel(datetime.now(timezone.utc) + timedelta(days=1, minutes=1)):
        assert documents.prune_archives(app) == 1
    assert not list(app.storage.keys("archives/"))
    assert app.storage.exists(Invoice.get_by_id(invoice.id).pdf_path)  # PDFs stay


# -- rendering ----------------------------------------------------------------------------


def pdf_pages(data: bytes) -> list[str]:
    from pypdf import PdfReader

    return [page.extract_text() for page in PdfReader(io.BytesIO(data)).pages]


@pytest.mark.spec("BILL-3")
def test_the_invoice_stylesheet_is_parsed_once_for_many_invoices(app, alice, monkeypatch):
    import weasyprint

    c, user = alice
    ids = [invoice_for(app, c.id, 1000 + n).id for n in range(2)]
    long = invoice_for(app, c.id, *range(100, 160))  # 60 lines: more than one page
    parsed = []
    real = weasyprint.CSS

    def counted(*args, **kwargs):
        parsed.append(kwargs.get("string", "")[:40])
        return real(*args, **kwargs)

    monkeypatch.setattr(weasyprint, "CSS", counted)
    monkeypatch.setattr(documents, "RENDERER", documents._Renderer())  # a new process's
    stored, failed = documents.store_pdfs(app, [*ids, long.id])
    assert failed == [] and len(stored) == 3
    assert len(parsed) == 1, parsed  # the template's <style>, once for the three
    for invoice in Invoice.select().where(Invoice.id.in_(stored)):
        pages = pdf_pages(app.storage.read(invoice.pdf_path))
        assert invoice.number in pages[0] and "Tax number" in pages[0]
        # the footer carries the number on every page (string-set, not the CSS text)
        for n, text in enumerate(pages, 1):
            assert f"{invoice.number} · {n} / {len(pages)}" in text, text[-120:]
    assert len(pdf_pages(app.storage.read(Invoice.get_by_id(long.id).pdf_path))) > 1


def test_a_document_with_css_of_its_own_is_rendered_as_it_is():
    renderer = documents._Renderer()
    linked = '<link rel="stylesheet" href="x.css"><style>p { color: red }</style><p>x</p>'
    assert renderer._take_styles(linked, "/tmp") == (linked, [])
    counter = "<style>@counter-style c { system: cyclic; symbols: a; }</style><p>x</p>"
    assert renderer._take_styles(counter, "/tmp") == (counter, [])
    html, sheets = renderer._take_styles("<style>p { color: red }</style><p>x</p>", "/tmp")
    assert html == "<p>x</p>" and len(sheets) == 1
    assert renderer._take_styles("<style>p { color: red }</style><p>y</p>", "/tmp")[1] == sheets


# -- the bill run -------------------------------------------------------------------------


def bill_run(app, *args):
    return CliRunner().invoke(billing_group(lambda: app), ["run", *args])


def issued(app, customer_id: int, count: int, start=datetime(2025, 1, 1, tzinfo=timezone.utc)):
    return [
        invoice_for(app, customer_id, 1000 + n, issued_at=start + timedelta(days=31 * n)).id
        for n in range(count)
    ]


@pytest.mark.spec("BILL-3")
def test_a_bill_run_renders_every_pending_invoice_once_on_several_processes(app, alice):
    c, user = alice
    ids = issued(app, c.id, 6)
    assert "6 invoices without a stored PDF" in bill_run(app, "--dry-run").output
    result = bill_run(app, "--processes", "2", "--batch", "2")
    assert result.exit_code == 0, result.output
    assert "6 of 6 invoices rendered and stored" in result.output
    assert "2 processes" in result.output and "0 failed" in result.output
    for invoice in Invoice.select().where(Invoice.id.in_(ids)):
        assert invoice.pdf_path == documents.pdf_key(invoice)
        assert hashlib.sha256(app.storage.read(invoice.pdf_path)).hexdigest() == invoice.pdf_sha256
    again = bill_run(app)
    assert again.exit_code == 0 and "0 invoices without a stored PDF" in again.output


@pytest.mark.spec("BILL-3")
def test_a_bill_run_resumes_with_the_rest_and_keeps_what_was_stored(app, alice):
    c, user = alice
    ids = issued(app, c.id, 5)
    documents.store_pdfs(app, ids[:2])  # as far as an interrupted run got
    before = {
        i.id: (i.pdf_sha256, i.pdf_rendered_at)
        for i in Invoice.select().where(Invoice.id.in_(ids[:2]))
    }
    # And a PDF stored just before the interruption, its invoice not yet updated:
    third = Invoice.get_by_id(ids[2])
    app.storage.put(documents.pdf_key(third), b"%PDF-stored before the interruption")
    result = bill_run(app, "--processes", "1")
    assert result.exit_code == 0, result.output
    assert "3 of 3 invoices rendered and stored" in result.output
    for invoice in Invoice.select().where(Invoice.id.in_(ids[:2])):
        assert (invoice.pdf_sha256, invoice.pdf_rendered_at) == before[invoice.id]
    assert (
        Invoice.get_by_id(ids[2]).pdf_sha256
        == hashlib.sha256(b"%PDF-stored before the interruption").hexdigest()
    )  # the stored one, not a new render


@pytest.mark.spec("BILL-3")
def test_a_bill_run_chooses_by_issue_date_and_can_hand_the_work_to_workers(app, alice):
    c, user = alice
    ids = issued(app, c.id, 4)  # 2025-01-01, 02-01, 03-04, 04-04
    result = bill_run(app, "--from", "2025-02-01", "--to", "2025-03-04", "--dry-run")
    assert "2 invoices without a stored PDF" in result.output
    result = bill_run(app, "--from", "2025-02-01", "--to", "2025-03-04", "--enqueue")
    assert (
        result.exit_code == 0 and "2 invoices handed to the workers in 1 batches" in result.output
    )
    run_tasks(app)
    rendered = {i.id for i in Invoice.select().where(Invoice.pdf_path != "")}
    assert rendered == set(ids)  # the two enqueued, and the renders issuing queued
    bad = bill_run(app, "--from", "2025-13-01")
    assert bad.exit_code == 2 and "--from" in bad.output


@pytest.mark.spec("BILL-3")
def test_an_invoice_that_fails_does_not_stop_the_bill_run(app, alice, monkeypatch):
    c, user = alice
    ids = issued(app, c.id, 3)
    broken = Invoice.get_by_id(ids[1])
    real = documents._render

    def render(app_, values):
        if values["invoice"].id == broken.id:
            raise ValueError("the template failed")
        return real(app_, values)

    monkeypatch.setattr(documents, "_render", render)
    result = bill_run(app, "--processes", "1")
    assert result.exit_code == 1
    assert f"{broken.number}: ValueError: the template failed" in result.output
    assert "2 of 3 invoices rendered and stored" in result.output and "1 failed" in result.output
    assert not Invoice.get_by_id(broken.id).pdf_ready


@pytest.mark.spec("BILL-3")
def test_an_interrupted_bill_run_keeps_its_work_and_the_next_run_does_the_rest(app, alice):
    """``portico billing run`` in a process of its own, stopped with Ctrl-C part way through."""
    c, user = alice
    ids = issued(app, c.id, 40)
    settings = app.settings
    env = {
        **os.environ,
        **TEST_ENVIRON,
        "PORTICO_DATABASE_URL": settings.database_url,
        "PORTICO_DATA_DIR": str(settings.data_path),
        "PORTICO_BROKER_URL": settings.broker_url,
        "PORTICO_SECRET_KEY": settings.secret_key,
        "PORTICO_PLUGINS_ENTRY_POINTS": "false",
    }
    command = [
        sys.executable,
        "-m",
        "engine.cli",
        "billing",
        "run",
        "--processes",
        "1",
        "--batch",
        "2",
    ]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while Invoice.select().where(Invoice.id.in_(ids) & (Invoice.pdf_path != "")).count() < 2:
        assert process.poll() is None and time.monotonic() < deadline, process.stdout.read()
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    output = process.communicate(timeout=120)[0].decode()
    assert process.returncode == 130, output
    assert "Interrupted: run it again to render the rest." in output
    kept = {
        i.id: i.pdf_sha256
        for i in Invoice.select().where(Invoice.id.in_(ids) & (Invoice.pdf_path != ""))
    }
    assert 2 <= len(kept) < len(ids)
    rest = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert rest.returncode == 0, rest.stdout + rest.stderr
    assert f"{len(ids) - len(kept)} of {len(ids) - len(kept)} invoices" in rest.stdout
    after = {i.id: i.pdf_sha256 for i in Invoice.select().where(Invoice.id.in_(ids))}
    assert all(after[i] for i in ids)
    assert all(after[i] == digest for i, digest in kept.items())  # never rendered again
    for i in Invoice.select().where(Invoice.id.in_(ids)):
        assert hashlib.sha256(app.storage.read(i.pdf_path)).hexdigest() == i.pdf_sha256
