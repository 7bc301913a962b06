"""The account plugin's public facade: what other plugins may use of it.

Other plugins import account only from here and name ``account`` in their
``plugin_requires`` or ``plugin_optional``. Anything not listed in ``__all__`` is private.

- ``describe_events(app, ctx, rows)``: audit events as the activity log shows them
  (ACCT-5), in ``ctx``'s language and time zone: each a dict with ``description`` (the
  sentence), ``kind``, ``actor`` (the login, or the staff member and whom they acted as),
  ``at``, ``ip``, ``device``, ``data`` and the rest of the ``ActivityOut`` shape. The staff
  console reads a customer's log through it.
"""

from __future__ import annotations

from plugins.account.activity import describe_events

__all__ = ["describe_events"]
