"""The account plugin's public facade: what other plugins may use of it.

Other plugins import account only from here and name ``account`` in their
``plugin_requires`` or ``plugin_optional``. Anything not listed in ``__all__`` is private.

- ``describe_events(rows, viewer_id=None)``: audit events as the activity log shows them
  (ACCT-5): each a dict with ``description`` (an English msgid: translate it with ``_()``),
  ``actor`` (the login, or the staff member and whom they acted as), ``at``, ``ip``,
  ``data`` and the rest of the ``ActivityOut`` shape. The staff console reads a customer's
  log through it.
"""

from __future__ import annotations

from plugins.account.service import describe_events

__all__ = ["describe_events"]
