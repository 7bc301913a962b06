"""The services plugin's hooks: a service's actions and its life cycle (SVC).

Added when the plugin registers (``register_hookspecs``).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from engine.hookspecs import hookspec

if TYPE_CHECKING:  # pragma: no cover - imports for annotations only
    from engine.app import Portico
    from engine.context import Context
    from engine.models import Service
    from engine.registry import Action


@hookspec
def service_actions(app: Portico, ctx: Context, service: Service) -> list[Action]:
    """Return the ``Action`` links this plugin offers on a service (SVC-3)."""


@hookspec
def service_status_changed(
    app: Portico, service: Service, old_status: str, new_status: str, reason: str
) -> None:
    """Called inside the transaction that changed a service's status (cancelled, expired, ...)."""


@hookspec
def service_renewed(app: Portico, service: Service, previous_period_start: datetime | None) -> None:
    """Called inside the renewal transaction once a service has entered a new period.

    ``service.period_start`` is the new period's start. The usage plugin resets
    base-plan buckets here; a billing plugin may charge the period's fee.
    """
