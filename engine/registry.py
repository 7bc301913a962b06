"""The small value types plugins return from hooks."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Route:
    """A URI template and the Falcon resource that answers it."""
    path: str
    resource: Any
    suffix: str | None = None


@dataclass(frozen=True)
class Section:
    """A navigation entry (ACC-3). ``order`` sorts the menu, lowest first."""
    id: str
    title: str
    path: str
    icon: str = "circle"
    order: int = 100


@dataclass(frozen=True)
class Card:
    """A dashboard card (DASH-1): a template rendered with ``data``."""
    id: str
    title: str
    template: str
    data: dict = field(default_factory=dict)
    order: int = 100


@dataclass(frozen=True)
class Alert:
    """An in-portal alert (NOT-2). ``level`` is info, warning or danger."""
    id: str
    level: str
    message: str
    link: str | None = None
    dismissible: bool = True


@dataclass(frozen=True)
class Action:
    """A link offered on a service card (SVC-3)."""
    id: str
    label: str
    href: str
    order: int = 100


@dataclass(frozen=True)
class Balance:
    """One balance row of a service (USE-1), as the API outline shapes it."""
    id: Any
    type: str  # data, voice, sms, mms, monetary
    remaining: int
    initial: int
    unit: str  # bytes, seconds, messages, or an ISO currency
    weight: int
    expires_at: datetime | None
    name: str = ""


@dataclass(frozen=True)
class Credit:
    """Something to add to a service's balances (a top-up, a refund, a renewal)."""
    type: str
    amount: int
    unit: str
    weight: int = 20
    expires_at: datetime | None = None
    reference: str = ""
    name: str = ""
