"""A portal process that dies on purpose, for tests/test_faults.py: ``os._exit`` at a fault point.

    python tests/fault_child.py purchase <point,...> <runs each> <service> <product> <user id>
    python tests/fault_child.py webhook <provider id> <payload file>...

The settings are ``make_app``'s, as JSON in ``PORTICO_FAULT_SETTINGS``. The app is
built once; each run is a ``fork()``ed child that sends one real request through
the WSGI app and dies at the point (no exception handler, no rollback, no
``finally``: the kernel closes its database connection). The parent prints one
exit status per run as JSON.

Fault points of a top-up purchase:

- ``before_charge``: the purchase and its pending payment are committed; the
  provider is never called.
- ``after_created``: the provider created its payment object and we committed
  its reference; it was never confirmed (no money moved).
- ``after_charge``: the card was charged; we die inside the transaction that
  records it (nothing of it commits).
- ``after_commit``: the payment, the credit and the receipt are committed; we
  die before the answer (and the idempotency record) is written.
- ``webhook`` (``webhook`` command): inside the transaction that applies the
  provider's event.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from engine import hookimpl  # noqa: E402

DIED = 86
POINTS = ("before_charge", "after_created", "after_charge", "after_commit")


def die() -> None:
    os._exit(DIED)


class FaultPoint:
    def __init__(self, point: str):
        self.point = point

    @hookimpl(tryfirst=True)
    def payment_succeeded(self, app, payment):
        if self.point in ("after_charge", "webhook"):
            die()


def arm(app, point: str) -> None:
    """Put the crash where ``point`` says (in this child only)."""
    from plugins.billing import payments

    if point == "after_commit":
        charge = payments.charge
        payments.charge = lambda *a, **kw: (charge(*a, **kw), die())
        return
    for provider in app.providers.values():
        original = provider.charge
        if point == "before_charge":
            provider.charge = lambda *a, **kw: die()
        elif point == "after_created":

            def charge(app_, request, on_created=None, _original=original):
                def created(ref):
                    on_created(ref)
                    die()

                return _original(app_, request, on_created=created)

            provider.charge = charge


def build(fault: FaultPoint):
    from engine.app import create_app
    from engine.settings import load_settings
    from engine.testing import PrincipalHeader

    overrides = json.loads(os.environ["PORTICO_FAULT_SETTINGS"])
    settings = load_settings(None, environ={}, overrides=overrides)
    return create_app(
        settings, extra_plugins=[("test-auth", PrincipalHeader()), ("test-fault", fault)]
    )


def forked(app, run) -> int:
    """Run ``run()`` in a child process; its exit status."""
    app.database.close_all()  # the child opens connections of its own
    pid = os.fork()
    if pid == 0:
        try:
            run()
        except BaseException as exc:  # noqa: BLE001 - a run that did not reach its point
            print(f"run failed: {exc!r}", file=sys.stderr)
            os._exit(1)
        os._exit(0)  # the fault point was never reached
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def purchase(points: str, runs: int, service_id: int, product_id: int, user_id: int) -> list[int]:
    """``runs`` purchases dying at each of ``points`` in turn (in that order)."""
    from engine.testing import Client

    fault = FaultPoint("")
    app = build(fault)

    def run(point):
        fault.point = point
        arm(app, point)
        client = Client(app, headers={"X-Test-User": str(user_id)})
        answer = client.post(
            f"/api/v1/services/{service_id}/topups",
            json={"product_id": product_id},
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        print(f"answered {answer.status_code}: {answer.text[:300]}", file=sys.stderr)

    return [forked(app, lambda p=point: run(p)) for point in points.split(",") for _ in range(runs)]


def webhook(provider_id: str, files: list[str]) -> list[int]:
    from engine.testing import Client

    app = build(FaultPoint("webhook"))

    def deliver(path: Path):
        answer = Client(app).raw.simulate_post(
            f"/webhooks/{provider_id}",
            body=path.read_bytes(),
            headers={
                "Content-Type": "application/json",
                "Stripe-Signature": path.with_suffix(".sig").read_text(),
            },
        )
        print(f"answered {answer.status_code}: {answer.text[:300]}", file=sys.stderr)

    return [forked(app, lambda p=Path(f): deliver(p)) for f in files]


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "purchase":
        codes = purchase(args[0], *(int(a) for a in args[1:]))
    else:
        codes = webhook(args[0], args[1:])
    print(json.dumps(codes))
