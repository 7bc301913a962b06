"""The add-ons plugin's hook: carrying out an add-on on the network (ADD-2).

Added when the plugin registers (``register_hookspecs``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.hookspecs import hookspec

if TYPE_CHECKING:  # pragma: no cover - imports for annotations only
    from engine.app import Portico
    from engine.models import Service
    from plugins.addons.models import ServiceAddon


@hookspec(firstresult=True)
def provision_addon(
    app: Portico, service: Service, addon: ServiceAddon, action: str
) -> dict[str, str] | None:
    """Carry out an add-on on the network side; return the outcome, or ``None`` if not yours.

    Answer only when ``addon.provisioner`` is one you own. ``action`` is "activate" or
    "remove". Return
    ``{"status": "active"}`` (done; optional ``"reference"`` and ``"detail"`` to
    show the customer), ``{"status": "failed", "message": ...}`` (refused: the
    one-off charge is refunded) or ``{"status": "pending"}`` (still working: you
    are asked again later). Raise for a temporary error: the task retries with
    backoff. Called from a background task, outside any transaction, maybe more
    than once for one add-on: be idempotent on ``addon.id``. First result wins.
    """
