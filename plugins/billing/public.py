"""The billing plugin's public facade: what other plugins may use of it.

A plugin that sells something (top-ups, add-ons, a partner's) imports billing only from
here (an import-linter contract checks it) and names ``billing`` in its
``plugin_requires``. Anything not listed in ``__all__`` is private and may change.

- ``payments``: charging a card for something else (``new_payment`` inside the transaction
  that records what is bought, then ``charge``; ``complete``, ``reconcile``, ``refund``,
  ``invoice_purchase``, ``record_inclusive_charge``; saved cards: ``cards_of``,
  ``saved_card``, ``chosen_card``, ``saved_cards_refusal``; ``Attempt``, ``DECLINED``).
- ``checkout``: the pay-once flow of a portal form (``submit``, ``new_key``, ``pay_with``,
  ``challenge``, ``widget_csp``) and the JSON API's answer to a payment (``pay_answer``).
- ``rate_limit(app, "pay" | "card", *who)``: count a payment attempt; 429 when over;
  ``rate_limit_service(app, service)``: the same for a payment for one service.
- ``pushed``: invoices, transactions and offline payments pushed by the operator's billing
  system (INT-4): ``upsert_invoice``, ``upsert_transaction``, ``record_payment``
  ``(ctx, external_id, customer_id, values)``, each one transaction, returning
  ``Pushed(row, change)``; ``PAYMENT_METHODS``, ``MAX_AMOUNT``.
- ``Invoice``, ``Transaction``, ``Payment`` and ``PaymentMethod`` (models, for foreign keys and reading),
  ``PayOut`` (the payment part of an API answer's schema).
"""

from __future__ import annotations

from plugins.billing import checkout, payments, pushed
from plugins.billing.models import Invoice, Payment, PaymentMethod, Transaction
from plugins.billing.ratelimits import hit as rate_limit
from plugins.billing.ratelimits import hit_service as rate_limit_service
from plugins.billing.schemas import PayOut

__all__ = [
    "Invoice",
    "Transaction",
    "pushed",
    "Payment",
    "PaymentMethod",
    "PayOut",
    "checkout",
    "payments",
    "rate_limit",
    "rate_limit_service",
]
