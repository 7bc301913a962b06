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


# -- the batched path (issue 19) -------------------------------------------------------------


def _customers_file(tmp_path, prefix: str, step: int):
    """Customers (with ``prefix`` on the ids) for the first (``step`` 1) or second import."""
    if step == 1:
        rows = [
            f"{prefix}1,Bob's Bikes,business,",
            f"{prefix}2,Ann Smith,,{prefix}N2",
            f"{prefix}3,Taken number,,TAKEN",  # 422: another customer has it
            f"{prefix}4,Cy,,",
            f"{prefix}5,,,",  # 422: no name (the schema)
        ]
    else:
        rows = [
            f"{prefix}1,Bob's Bicycles,business,",  # updated
            f"{prefix}2,Ann Smith,,{prefix}N2",  # unchanged
            f"{prefix}4,Cy,,{prefix}X",  # 422: a number cannot change
            f"{prefix}6,New,individual,",
        ]
    return write(
        tmp_path / f"{prefix}c{step}.csv", "external_id,name,kind,number\n" + "\n".join(rows) + "\n"
    )


def _services_file(tmp_path, prefix: str, step: int):
    head = "external_id,customer_external_id,product,name,status,suspended_reason,auto_renew\n"
    if step == 1:
        rows = [
            f"{prefix}S1,{prefix}1,mobile-20gb,Mobile 1,,,",
            f"{prefix}S2,{prefix}2,mobile-20gb,Mobile 2,suspended,unpaid,",
            f"{prefix}S3,{prefix}9,mobile-20gb,No such customer,,,",
            f"{prefix}S4,{prefix}1,no-such,No such product,,,",
            f"{prefix}S5,{prefix}1,mobile-20gb,Cancelled,cancelled,,",
            f"{prefix}S6,{prefix}4,mobile-20gb,No renewal,,,false",
        ]
    else:
        rows = [
            f"{prefix}S1,{prefix}1,mobile-50gb,Mobile 1,,,",  # a new product: its fee
            f"{prefix}S2,{prefix}2,,Mobile 2,active,,",  # resumed: the reason cleared
            f"{prefix}S5,{prefix}1,,Cancelled,active,,",  # 409: an ended service
            f"{prefix}S6,{prefix}2,,No renewal,,,",  # 422: cannot move to another customer
        ]
    return write(tmp_path / f"{prefix}s{step}.csv", head + "\n".join(rows) + "\n")


def _snapshot(prefix: str) -> dict:
    """What the import wrote for ids with ``prefix``, with the prefix and Portico's own ids,
    numbers and times taken out, so both paths' results can be compared."""

    def plain(value):
        return value.replace(prefix, "") if isinstance(value, str) else value

    skip = {"id", "created_at", "updated_at", "period_start", "renews_at", "number"}
    customers = Customer.select().where(Customer.external_id.startswith(prefix))
    by_id = {c.id: c.external_id for c in customers}
    out: dict = {"customers": {}, "services": {}, "events": []}
    for c in customers.order_by(Customer.external_id):
        given = c.number.startswith(prefix)
        out["customers"][plain(c.external_id)] = {
            **{k: plain(v) for k, v in c.__data__.items() if k not in skip},
            "number": plain(c.number) if given else "C-assigned",
        }
        assert given or c.number.startswith("C-")
    for s in (
        Service.select().where(Service.external_id.startswith(prefix)).order_by(Service.external_id)
    ):
        row = {k: plain(v) for k, v in s.__data__.items() if k not in skip}
        row.update(customer=plain(by_id[s.customer_id]), product=s.product.code)
        row["renews"] = s.renews_at is not None
        out["services"][plain(s.external_id)] = row
    targets = {f"customer:{i}": plain(e) for i, e in by_id.items()}
    targets.update(
        {
            f"service:{s.id}": plain(s.external_id)
            for s in Service.select().where(Service.external_id.startswith(prefix))
        }
    )
    for e in (
        AuditEvent.select().where(AuditEvent.target.in_(list(targets))).order_by(AuditEvent.id)
    ):
        data = {k: plain(v) for k, v in e.data.items()}
        out["events"].append(
            (e.action, targets[e.target], plain(by_id.get(e.customer_id)), data, e.user_agent)
        )
    return out


@pytest.mark.spec("INT-5")
def test_int5_batched_import_writes_the_same_rows_and_events_as_the_per_row_path(
    app, tmp_path, caplog
):
    """The batched writes keep the service layer's rules: defaults, 422 and 409 per line,
    numbers, updates, unchanged rows, one audit event per change; bad rows in a batch leave
    the good ones imported."""
    caplog.set_level("INFO", logger="portico.operator")
    with connection():
        Product.create(code="mobile-50gb", name="Mobile 50 GB", monthly_fee=2500, period_days=30)
        Customer.create(number="TAKEN", name="Someone", external_id="OTHER")
    reports = {}
    for prefix, one_by_one in (("R-", True), ("B-", False)):
        outcome = []
        for step in (1, 2):
            for kind, make in (("customers", _customers_file), ("services", _services_file)):
                path = str(make(tmp_path, prefix, step))
                with connection():
                    r = bulk.import_file(app, kind, path, one_by_one=one_by_one)
                errors = [(e.line, e.message.replace(prefix, "")) for e in r.errors]
                outcome.append((kind, step, r.counts(), errors))
        reports[prefix] = outcome
    assert reports["B-"] == reports["R-"]
    assert "row by row" not in caplog.text  # the batched path did it all
    first_customers = reports["B-"][0]
    assert first_customers[2] == {"created": 3, "updated": 0, "unchanged": 0, "failed": 2}
    assert [line for line, _ in first_customers[3]] == [4, 6]
    assert "Another customer has this number" in first_customers[3][0][1]
    second_services = reports["B-"][3]
    assert second_services[2] == {"created": 0, "updated": 2, "unchanged": 0, "failed": 2}
    with connection():
        per_row, batched_ = _snapshot("R-"), _snapshot("B-")
        assert batched_ == per_row
        assert batched_["services"]["S1"]["monthly_fee"] == 2500
        assert batched_["services"]["S2"]["suspended_reason"] == ""
        assert len([e for e in batched_["events"] if e[0] == "customer.created"]) == 4
        numbers = [c.number for c in Customer.select() if c.number.startswith("C-")]
        assert len(numbers) == len(set(numbers)) == 6


def test_int5_a_batch_that_meets_a_concurrent_writer_falls_back_to_rows(app, caplog):
    """A customer created by another connection between the batch's read and its INSERT:
    the batch's savepoint is rolled back and its rows go one by one, nothing lost or doubled."""
    from engine.db import database, is_postgres

    if not is_postgres():
        pytest.skip("SQLite's write lock keeps other writers out for the whole transaction")
    import psycopg2

    from engine.context import Context
    from plugins.operator import batched
    from engine import upserts as rules

    caplog.set_level("INFO", logger="portico.operator")

    def racing_lookups(rows, existing):
        look = batched.customer_lookups(rows, existing)
        other = psycopg2.connect(dbname=database.obj.database, **database.obj.connect_params)
        with other, other.cursor() as cur:
            cur.execute(
                "INSERT INTO customer (external_id, number, name, kind, api_access, created_at,"
                " updated_at) VALUES ('ACC-2', 'RACE-1', 'Raced', 'individual', false, now(),"
                " now())"
            )
        other.close()
        return look

    write_ = batched.writer(
        Customer,
        "customer",
        rules.prepare_customer,
        racing_lookups,
        bulk.upserts(rules.upsert_customer),
    )
    rows = [(f"ACC-{i}", {"name": f"Customer {i}"}) for i in range(1, 4)]
    ctx = Context(app=app, user_agent="portico import")
    with connection():
        with database.atomic():
            done = write_(ctx, rows)
        assert done == ["created", "updated", "created"]
        assert "customer batch met a database error, row by row" in caplog.text
        assert Customer.select().where(Customer.external_id.startswith("ACC-")).count() == 3
        assert Customer.get(Customer.external_id == "ACC-2").number == "RACE-1"
    assert [e.target.split(":")[0] for e in audit("customer.created")] == ["customer"] * 2
    assert len(audit("customer.updated")) == 1


def test_int5_a_batch_naming_an_external_id_twice_goes_row_by_row(app, tmp_path, caplog):
    caplog.set_level("INFO", logger="portico.operator")
    path = write(tmp_path / "c.csv", CUSTOMERS + "ACC-1,Bob's Bicycles,business\n")
    result = run_import(app, "customers", path)
    assert "3 rows: 2 created, 1 updated, 0 unchanged, 0 failed" in result.output
    assert "customer batch names an external id twice: row by row" in caplog.text
    with connection():
        assert Customer.get(Customer.external_id == "ACC-1").name == "Bob's Bicycles"


#: Statements of one batch of new customers (savepoint, the batch's rows FOR UPDATE, the
#: highest id, the numbers in use, the INSERT, its audit events, release), of new services
#: (savepoint, rows, customers, products, INSERT, events, release) and of a re-run (savepoint,
#: rows, release; services also read their customers and products).
BATCH_QUERIES = {"customers": 9, "services": 9, "customers again": 3, "services again": 5}


@pytest.mark.spec("INT-5")
def test_int5_a_batch_runs_a_known_number_of_statements(app):
    from engine.context import Context
    from engine.db import database, is_postgres
    from engine.testing import sql_seen

    if not is_postgres():
        pytest.skip("the statement count that matters is PostgreSQL's (SQLite inserts by rows)")
    ctx = Context(app=app, user_agent="portico import")
    seen = {}
    for size in (5, 40):
        customers = [(f"ACC-{size}-{i}", {"name": f"C {i}"}) for i in range(size)]
        services = [
            (
                f"SVC-{size}-{i}",
                {"customer_external_id": k, "product": "mobile-20gb", "name": f"M {i}"},
            )
            for i, (k, _) in enumerate(customers)
        ]
        for label, kind, rows in (
            ("customers", "customers", customers),
            ("services", "services", services),
            ("customers again", "customers", customers),
            ("services again", "services", services),
        ):
            with connection(), database.atomic(), sql_seen() as queries:
                done = bulk.KINDS[kind].batch(ctx, rows)
            assert set(done) == {"unchanged" if "again" in label else "created"}
            seen[label, size] = len(queries)
            assert len(queries) == BATCH_QUERIES[label], (label, size, queries)
    assert len(audit("customer.created")) == 45 and len(audit("service.created")) == 45


@pytest.mark.spec("INT-2", "INT-5")
def test_int5_imported_contacts_with_portal_access_are_invited_once(app, tmp_path):
    from plugins.operator.models import Invitation

    run_import(app, "customers", write(tmp_path / "customers.csv", CUSTOMERS))
    contacts = write(
        tmp_path / "contacts.csv",
        "external_id,customer_external_id,first_name,email,portal_access\n"
        "CON-1,ACC-1,Bob,bob@bikes.example,true\n"
        "CON-2,ACC-1,Kim,kim@bikes.example,\n",
    )
    result = run_import(app, "contacts", contacts)
    assert "2 created" in result.output, result.output
    again = run_import(app, "contacts", contacts)  # a re-run sends no second invitation
    assert "2 unchanged" in again.output, again.output
    with connection():
        invited = [i.contact.external_id for i in Invitation.select()]
    assert invited == ["CON-1"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_int5_a_kind_of_a_disabled_plugin_is_refused_clearly(make_app, tmp_path):
    app = make_app(disabled=["addons"])
    result = run_export(app, "addon_products")
    assert result.exit_code == 2
    assert "addon_products: the addons plugin is disabled" in result.output
    rows = write(tmp_path / "a.jsonl", '{"external_id": "X", "name": "X"}\n')
    assert "the addons plugin is disabled" in run_import(app, "addon_products", rows).output


@pytest.mark.spec("INT-4", "INT-5")
def test_int5_invoices_and_payments_from_a_file_once(app, tmp_path):
    from plugins.billing.models import Invoice

    run_import(app, "customers", write(tmp_path / "customers.csv", CUSTOMERS))
    line = {"description": "Line rental", "quantity": 1, "unit_amount": 1000}
    line |= {"tax_rate": 2000, "tax_amount": 200}
    invoice = {
        "external_id": "INV-1",
        "customer_external_id": "ACC-1",
        "number": "OP-1",
        "issued_at": "2026-12-01T09:00:00+00:00",
        "due_at": "2026-12-15T09:00:00+00:00",
        "currency": "GBP",
        "lines": [line],
        "subtotal": 1000,
        "tax_total": 200,
        "total": 1200,
        "notify": False,
    }
    bad = {**invoice, "external_id": "INV-2", "number": "OP-2", "total": 1}
    invoices = write(tmp_path / "invoices.jsonl", f"{json.dumps(invoice)}\n{json.dumps(bad)}\n")
    result = run_import(app, "invoices", invoices)
    assert "2 rows: 1 created, 0 updated, 0 unchanged, 1 failed" in result.output, result.output
    assert "line 2: total" in result.output  # the totals must add up, as in the API
    again = run_import(app, "invoices", invoices)
    assert "1 unchanged" in again.output and "0 created" in again.output
    # An invoice's lines do not fit a CSV row: said before anything is read.
    csv_file = write(tmp_path / "invoices.csv", "external_id,number\nINV-3,OP-3\n")
    refused = run_import(app, "invoices", csv_file)
    assert refused.exit_code == 2 and "csv cannot hold these rows; use jsonl" in refused.output
    payments = write(
        tmp_path / "payments.csv",
        "external_id,customer_external_id,invoice_external_id,amount,currency,method,received_at\n"
        "PAY-1,ACC-1,INV-1,1200,GBP,bank_transfer,2026-12-03T10:00:00+00:00\n",
    )
    assert "1 created" in run_import(app, "payments", payments).output
    assert "1 unchanged" in run_import(app, "payments", payments).output  # money moves once
    with connection():
        assert Invoice.get(Invoice.external_id == "INV-1").status == "paid"
    # The export: what was pushed in, in the columns the import takes; back in, unchanged.
    charge = write(
        tmp_path / "transactions.csv",
        "external_id,customer_external_id,kind,description,amount,currency\n"
        "TX-1,ACC-1,charge,Engineer visit,3000,GBP\n",
    )
    assert "1 created" in run_import(app, "transactions", charge).output
    for kind, fmt in (("invoices", "jsonl"), ("transactions", "csv"), ("payments", "csv")):
        out = tmp_path / f"export-{kind}.{fmt}"
        exported = run_export(app, kind, "--output", out)
        assert exported.exit_code == 0, exported.output
        back = run_import(app, kind, out)
        assert "1 rows: 0 created, 0 updated, 1 unchanged, 0 failed" in back.output, back.output
    [row] = [json.loads(x) for x in (tmp_path / "export-invoices.jsonl").read_text().splitlines()]
    assert row["external_id"] == "INV-1" and row["lines"][0]["unit_amount"] == 1000
    assert "status" not in row  # paid: its payments make it paid again elsewhere
    paid = (tmp_path / "export-payments.csv").read_text().splitlines()
    assert paid[1].startswith("PAY-1,ACC-1,INV-1,1200,GBP,bank_transfer,")
    assert "2026-12-03T10:00:00+00:00" in paid[1]
    assert (
        "TX-1,ACC-1,charge,Engineer visit,3000,GBP"
        in (tmp_path / "export-transactions.csv").read_text()
    )
