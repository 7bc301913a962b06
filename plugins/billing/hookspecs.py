"""The billing plugin's hooks: what happens to invoices and payments.

Added when the plugin registers (``register_hookspecs``). Plugins that need billing
implement them with a plain ``@hookimpl``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.hookspecs import hookspec

if TYPE_CHECKING:  # pragma: no cover - imports for annotations only
    from engine.app import Portico
    from plugins.billing.models import Invoice, Payment


@hookspec
def invoice_issued(app: Portico, invoice: Invoice) -> None:
    """Called inside the issuing transaction once an invoice exists with its lines and totals.

    Its PDF is rendered after commit (``invoice.pdf_ready`` tells).
    """


@hookspec
def payment_succeeded(app: Portico, payment: Payment) -> None:
    """Called once per payment, inside the transaction that records it as succeeded.

    ``payment.invoice`` is set when it paid an invoice; ``payment.purpose`` says what it
    was for.
    """


@hookspec
def payment_failed(app: Portico, payment: Payment) -> None:
    """Called once per payment, inside the transaction that records it as failed.

    ``payment.failure_code`` and ``payment.failure_message`` say why (a
    decline, failed 3-D Secure, ...). Nothing was charged.
    """
