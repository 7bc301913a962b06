"""INT-5: ``portico import KIND FILE`` and ``portico export KIND`` (CSV and JSON Lines)."""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from engine.db import connection
from engine.models import AuditEvent, Customer, Product, Service
from plugins.operator import bulk
from plugins.operator.bulk_commands import export_command, import_command


@pytest.fixture
def app(make_app):
    app = make_app()
    with connection():
        Product.create(code="mobile-20gb", name="Mobile 20 GB", monthly_fee=1500, period_days=30)
    return app


def run_import(app, *args):
    return CliRunner().invoke(import_command(lambda: app), [str(a) for a in args])


def run_export(app, *args):
    return CliRunner().invoke(export_command(lambda: app), [str(a) for a in args])


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


CUSTOMERS = "external_id,name,kind\nACC-1,Bob's Bikes,business\nACC-2,Ann Smith,\n"
SERVICES = (
    "external_id,customer_external_id,product,name,identifier\n"
    "SVC-1,ACC-1,mobile-20gb,Mobile 1,+447700900001\n"
    "SVC-2,ACC-2,mobile-20gb,Mobile 2,+447700900002\n"
)


def audit(action):
    with connection():
        return list(AuditEvent.select().where(AuditEvent.action == action))


def test_int5_csv_import_creates_then_a_rerun_changes_nothing(app, tmp_path):
    customers = write(tmp_path / "customers.csv", CUSTOMERS)
    result = run_import(app, "customers", customers)
    assert result.exit_code == 0, result.output
    assert "2 rows: 2 created, 0 updated, 0 unchanged, 0 failed" in result.output
    result = run_import(app, "services", write(tmp_path / "services.csv", SERVICES))
    assert "2 created" in result.output, result.output
    with connection():
        assert Service.get(Service.external_id == "SVC-2").customer.name == "Ann Smith"
    # One audit event per run naming the file and counts, and the per-object events.
    runs = audit("operator.imported")
    assert [(e.data["file"], e.data["created"]) for e in runs] == [
        ("customers.csv", 2),
        ("services.csv", 2),
    ]
    assert len(audit("customer.created")) == 2
    again = run_import(app, "customers", customers)
    assert "2 rows: 0 created, 0 updated, 2 unchanged, 0 failed" in again.output
    assert len(audit("customer.created")) == 2
    changed = write(tmp_path / "customers.csv", CUSTOMERS.replace("Ann Smith", "Ann Jones"))
    assert "1 updated, 1 unchanged" in run_import(app, "customers", changed).output


def test_int5_jsonl_rows_with_errors_are_reported_by_line_and_the_rest_imported(app, tmp_path):
    lines = [
        {"external_id": "ACC-1", "name": "Zoë 🚲 ﷽ e\u0301"},  # odd but valid Unicode
        {"external_id": "ACC-2", "name": "x" * 100_000},  # huge field
        "not json",
        {"external_id": "ACC-3", "name": "nul\u0000byte"},
        {"external_id": "ACC/4", "name": "slash in the id"},
        [1, 2],
        {"external_id": "ACC-5", "name": 12},
        {"external_id": "ACC-6", "name": "Fine", "kind": "alien"},
        {"external_id": "ACC-7", "name": "Fine", "colour": "red"},
        {"external_id": "ACC-8", "name": "Also fine"},
    ]
    text = "\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n"
    path = write(tmp_path / "customers.jsonl", text)
    result = run_import(app, "customers", path)
    assert result.exit_code == 1
    for line in (2, 3, 4, 5, 6, 7, 8, 9):
        assert f"line {line}: " in result.output, line
    assert "line 1:" not in result.output and "line 10:" not in result.output
    assert "line 2: name:" in result.output
    assert "2 created, 0 updated, 0 unchanged, 8 failed" in result.output
    with connection():
        assert Customer.get(Customer.external_id == "ACC-1").name == "Zoë 🚲 ﷽ e\u0301"
        assert Customer.select().where(Customer.external_id.is_null(False)).count() == 2


def test_int5_csv_hostile_rows_and_service_rules_per_line(app, tmp_path):
    write(tmp_path / "c.csv", CUSTOMERS)
    run_import(app, "customers", tmp_path / "c.csv")
    text = SERVICES + (
        "SVC-3,ACC-9,mobile-20gb,No such customer,\n"
        "SVC-4,ACC-1,no-such-product,Mobile 4,\n"
        "SVC-5,ACC-1,mobile-20gb,Too,many,cells\n"
    ).replace("\n", "\r\n")
    path = tmp_path / "services.csv"
    huge = "SVC-8,ACC-1,mobile-20gb," + "y" * 300_000 + ",\n"  # over the CSV reader's limit
    path.write_bytes(
        text.encode()
        + b"SVC-7,ACC-1,mobile-20gb,\xff\xfe bytes,\n"
        + huge.encode()
        + b"SVC-9,ACC-2,mobile-20gb,Last,\n"
        + b'"SVC-6,ACC-1,mobile-20gb,unterminated\n'
    )
    result = run_import(app, "services", path)
    assert "line 7: name: Not text" in result.output
    assert "line 8: Not readable as CSV: field larger than field limit" in result.output
    assert "line 10: " in result.output  # the unterminated quote
    assert "line 4: customer_external_id: No such customer." in result.output
    assert "line 5: product: No such product." in result.output
    assert "line 6: 6 cells" in result.output
    assert "3 created" in result.output  # SVC-1, SVC-2 and SVC-9 after the huge line


def test_int5_dry_run_writes_nothing(app, tmp_path):
    path = write(tmp_path / "customers.csv", CUSTOMERS + "ACC-3,,\n")
    result = run_import(app, "customers", path, "--dry-run")
    assert "dry run, nothing written: 3 rows: 2 created" in result.output
    assert "line 4: name:" in result.output
    with connection():
        assert not Customer.select().where(Customer.external_id.is_null(False)).exists()
    assert audit("operator.imported") == [] and audit("customer.created") == []
    # Rows that name rows earlier in the same file check out in a dry run too.
    both = write(tmp_path / "s.csv", SERVICES)
    assert "line" in run_import(app, "services", both, "--dry-run").output  # no customers yet


def test_int5_all_or_nothing_writes_nothing_on_any_error(app, tmp_path):
    path = write(tmp_path / "customers.csv", CUSTOMERS + "ACC-3,,\n")
    result = run_import(app, "customers", path, "--all-or-nothing")
    assert result.exit_code == 1
    assert "all or nothing: errors, nothing written" in result.output
    with connection():
        assert not Customer.select().where(Customer.external_id.is_null(False)).exists()
    (run,) = audit("operator.imported")
    assert run.data["rolled_back"] is True and run.data["failed"] == 1
    good = write(tmp_path / "good.csv", CUSTOMERS)
    assert "2 created" in run_import(app, "customers", good, "--all-or-nothing").output


def test_int5_an_interrupted_import_resumes_after_its_last_committed_batch(app, tmp_path):
    rows = "".join(f"ACC-{i},Customer {i},\n" for i in range(1, 11))
    path = write(tmp_path / "customers.csv", "external_id,name,kind\n" + rows)
    with connection(), pytest.raises(KeyboardInterrupt):
        bulk.import_file(app, "customers", str(path), batch_size=3, stop_after=7)
    with connection():
        assert Customer.select().where(Customer.external_id.is_null(False)).count() == 6
    saved = json.loads((tmp_path / "customers.csv.portico-import").read_text())
    assert saved["line"] == 7  # rows on lines 2-7 committed
    result = run_import(app, "customers", path, "--batch-size", "3")
    assert "4 rows (resumed after line 7): 4 created" in result.output, result.output
    assert not os.path.exists(tmp_path / "customers.csv.portico-import")
    # A changed file is not resumed: every row is read again (and is unchanged).
    write(tmp_path / "customers.csv", "external_id,name,kind\n" + rows + "\n")
    with connection(), pytest.raises(KeyboardInterrupt):
        bulk.import_file(app, "customers", str(path), batch_size=3, stop_after=4)
    write(tmp_path / "customers.csv", "external_id,name,kind\n" + rows)
    assert (
        "10 rows: 0 created, 0 updated, 10 unchanged" in run_import(app, "customers", path).output
    )


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_int5_export_then_import_is_all_unchanged(app, tmp_path, fmt):
    write(tmp_path / "c.csv", CUSTOMERS)
    run_import(app, "customers", tmp_path / "c.csv")
    run_import(app, "services", write(tmp_path / "s.csv", SERVICES))
    contacts = (
        '{"external_id": "P-1", "customer_external_id": "ACC-1", "first_name": "Bob", '
        '"email": "bob@example.com", "is_primary": true}\n'
    )
    sites = '{"external_id": "S-1", "customer_external_id": "ACC-1", "line1": "1 High St", "city": "London", "country": "GB"}\n'
    run_import(app, "contacts", write(tmp_path / "p.jsonl", contacts))
    run_import(app, "sites", write(tmp_path / "site.jsonl", sites))
    run_import(
        app,
        "services",
        write(
            tmp_path / "s2.jsonl",
            '{"external_id": "SVC-1", "customer_external_id": "ACC-1", '
            '"name": "Mobile 1", "site_external_id": "S-1", "status": "suspended", '
            '"suspended_reason": "unpaid"}\n',
        ),
    )
    for kind, count in (("customers", 2), ("contacts", 1), ("sites", 1), ("services", 2)):
        out = tmp_path / f"{kind}-out.{fmt}"
        result = run_export(app, kind, "--output", out)
        assert result.exit_code == 0, result.output
        assert f"{count} {kind} written" in result.output
        again = run_import(app, kind, out)
        assert f"{count} rows: 0 created, 0 updated, {count} unchanged, 0 failed" in again.output, (
            kind,
            again.output,
        )
    stdout = run_export(app, "customers", "--format", "jsonl").output.splitlines()
    assert [json.loads(line)["external_id"] for line in stdout] == ["ACC-1", "ACC-2"]


def test_int5_usage_rows_are_rated_once(app, tmp_path):
    write(tmp_path / "c.csv", CUSTOMERS)
    run_import(app, "customers", tmp_path / "c.csv")
    run_import(app, "services", write(tmp_path / "s.csv", SERVICES))
    from engine.db import utcnow

    at = utcnow().isoformat()
    usage = write(
        tmp_path / "usage.csv",
        "id,service_external_id,type,quantity,occurred_at\n"
        f"E-1,SVC-1,sms,1,{at}\n"
        f"E-2,SVC-9,sms,1,{at}\n"
        f"E-3,SVC-2,sms,1e3,{at}\n"
        f"E-4,SVC-2,data,2048,{at}\n",
    )
    result = run_import(app, "usage", usage)
    assert "line 3: service_external_id: No such service." in result.output, result.output
    assert "line 4: quantity:" in result.output
    assert "4 rows: 2 created, 0 updated, 0 unchanged, 2 failed" in result.output
    again = run_import(app, "usage", usage).output
    assert "4 rows: 0 created, 0 updated, 2 unchanged, 2 failed" in again
