"""The engine's extension points: what every portal has.

A plugin is a module (or object) with functions decorated ``@hookimpl`` whose
names match the specifications below, or those a plugin adds for its own domain
(``register_hookspecs``: billing's payment events live in ``plugins/billing/hookspecs.py``).
Implement only the hooks you need; a function that declares fewer arguments than
the spec gets only those.

Hooks that *register* something return a list; the engine attributes each item
to the plugin that returned it, so a collision (two plugins on one route,
provider id, actor name or section id) is a start-up error naming both.
Hooks marked "first result" stop at the first plugin that answers.
Event hooks are named in the past tense and their return value is ignored.
Specs only ever gain arguments, never lose them.
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable

import pluggy

if TYPE_CHECKING:  # pragma: no cover - imports for annotations only
    import click
    import falcon
    from apispec import APISpec
    from marshmallow import Schema

    from engine.app import Portico
    from engine.context import Context, Principal
    from engine.models import AuditEvent
    from engine.notify import Channel, Notice
    from engine.payments import PaymentProvider
    from engine.registry import Alert, Card, Route, Section
    from engine.retention import Archive

#: Marks a hook specification; a plugin's own ``hookspecs.py`` uses it too.
hookspec = pluggy.HookspecMarker("portico")


# -- describing the plugin ---------------------------------------------------


@hookspec
def plugin_requires() -> list[str]:
    """Return the names of the plugins this plugin needs to be enabled.

    Disabling a needed plugin is a start-up error naming both plugins. Name every plugin
    whose public facade (``plugins.<name>.public``) this plugin imports.
    """


@hookspec
def plugin_optional() -> list[str]:
    """Return the names of plugins this plugin uses when they are enabled, and works without.

    Such a plugin loads after them when they are there; import their public facade only
    inside a function that first checks ``"<name>" in app.plugins.enabled``.
    """


@hookspec
def register_hookspecs() -> list[ModuleType]:
    """Return the modules holding the hook specifications this plugin owns.

    Specs in them are added when the plugin registers (pluggy's ``add_hookspecs``), so a
    plugin's domain events (billing's ``payment_succeeded``) are specified by that plugin,
    not by the engine. Mark each spec with ``engine.hookspecs.hookspec``. Another plugin
    implementing them and able to run without you marks its hookimpls
    ``@hookimpl(optionalhook=True)``.
    """


@hookspec
def register_settings() -> type[Schema]:
    """Return a marshmallow ``Schema`` for this plugin's ``[<plugin name>]`` table.

    Values are validated at start-up (messages name the key) and read with
    ``app.settings.plugin("<name>")``. Mark secret fields with
    ``metadata={"secret": True}`` so ``portico check`` redacts them.
    """


# -- what a plugin brings: data, code, pages ---------------------------------


@hookspec
def register_models() -> list[type]:
    """Return the peewee model classes this plugin owns.

    Tables are created by the plugin's ``migrations/`` (``portico migrate``).
    """


@hookspec
def register_routes(app: Portico) -> list[Route]:
    """Return ``Route(path, resource)`` items to mount on the Falcon app.

    JSON routes live under ``/api/v1``; portal pages anywhere else. A resource
    sets ``auth = "customer" | "public"`` (default ``"customer"``). A staff route (under
    ``/staff`` or ``/api/v1/staff``) must declare ``Route(..., permission=...)``: a
    permission name, ``ANY_STAFF`` or ``PUBLIC`` (SEC-5; an undeclared one stops start-up).
    """


@hookspec
def register_actors() -> list[Callable[..., Any]]:
    """Return functions decorated with ``engine.tasks.task`` to run in the worker.

    The engine names each actor after its function (``<module>.<function>``) and creates
    it on the configured broker, in the web and the worker processes alike.
    """


@hookspec
def register_archives(app: Portico) -> list[Archive]:
    """Return ``engine.retention.Archive`` tables whose old rows ``portico archive`` moves to
    files in storage and then deletes (OPS-7): the model, its time column, the days to keep
    (from settings; 0 keeps rows forever) and, optionally, old rows that must stay.
    """


@hookspec
def template_dirs() -> list[str]:
    """Return extra template folders (a plugin's own ``templates/`` is found without this)."""


@hookspec
def static_dirs() -> list[str]:
    """Return extra static folders (a plugin's own ``static/`` is found without this).

    Files are served under ``/static/<plugin>/...``; a theme overrides them.
    """


@hookspec
def register_sections(app: Portico) -> list[Section]:
    """Return the navigation ``Section`` items this plugin adds (ACC-3)."""


@hookspec
def dashboard_cards(app: Portico, ctx: Context) -> list[Card]:
    """Return the dashboard ``Card`` items for the signed-in customer (DASH-1)."""


@hookspec
def portal_alerts(app: Portico, ctx: Context) -> list[Alert]:
    """Return the in-portal ``Alert`` items for the signed-in customer (NOT-2)."""


@hookspec
def register_commands(cli: click.Group, app_factory: Callable[[], Portico]) -> None:
    """Add click commands to the ``portico`` command line.

    ``app_factory()`` builds the configured app when a command needs it.
    """


@hookspec
def demo_data(app: Portico, demo: dict[str, Any]) -> None:
    """Seed demo records; ``demo`` holds what earlier plugins created.

    Called in plugin dependency order by ``portico serve --demo`` on an empty
    database. Add what you create to ``demo`` for the plugins after you.
    """


@hookspec
def openapi(app: Portico, spec: APISpec) -> None:
    """Add components or paths to the OpenAPI document beyond the routes' own."""


# -- resolving one thing -----------------------------------------------------


@hookspec(firstresult=True)
def authenticate_request(app: Portico, req: falcon.Request) -> Principal | None:
    """Return the ``Principal`` for a request, or ``None`` to let others try.

    First result wins. The identity plugin reads the session cookie and
    ``Authorization: Bearer`` headers.
    """


# -- providers and channels --------------------------------------------------


@hookspec
def payment_providers(app: Portico) -> list[PaymentProvider]:
    """Return payment provider objects, each with a unique ``id``.

    See ``engine.payments.PaymentProvider`` for the interface.
    """


@hookspec
def notification_channels(app: Portico) -> list[Channel]:
    """Return notification channel objects (email, SMS, web push), each with a unique ``id``.

    See ``engine.notify.Channel`` for the interface.
    """


# -- events (past tense; return values are ignored) --------------------------


@hookspec
def audit_recorded(app: Portico, event: AuditEvent) -> None:
    """Called after an ``AuditEvent`` row is written (in the same transaction)."""


@hookspec
def event_emitted(
    app: Portico, event_type: str, data: dict[str, Any], customer_id: int | None
) -> None:
    """A business event happened (``engine.events.emit``, INT-6), in the transaction of the
    change: ``event_type`` is one of ``engine.events.EVENT_TYPES``, ``data`` plain JSON. The
    webhooks plugin records it for delivery to the operator's endpoints."""


@hookspec
def notification_requested(app: Portico, event: Notice) -> None:
    """Called when something happened that a customer may be told about.

    ``event`` is an ``engine.notify.Notice``. Observers only: delivery is
    decided per channel by ``notification_route`` and done by the channel.
    """


@hookspec(firstresult=True)
def notification_route(app: Portico, notice: Notice, channel: str) -> str | None:
    """Decide how ``notice`` reaches ``channel``: "send", "digest" or "skip".

    First result wins; with no answer the notice is sent. The notifications
    plugin answers from the customer's preferences (NOT-3).
    """


@hookspec(firstresult=True)
def balance_threshold(app: Portico, customer_id: int, balance_type: str) -> int | None:
    """Return the low-balance threshold for a customer and balance type (NOT-3).

    Percent of the initial amount for data, voice, sms and mms; minor units for
    monetary credit. First result wins; the notifications plugin answers from
    the customer's preferences. Callers fall back to 10 (percent) when no one answers.
    Rating asks the bulk ``balance_thresholds`` first: a plugin that answers this
    should answer that too.
    """


@hookspec(firstresult=True)
def balance_thresholds(
    app: Portico, customer_ids: list[int], balance_type: str
) -> dict[int, int] | None:
    """Return ``{customer_id: threshold}`` for many customers at once (bulk ``balance_threshold``).

    First result wins. Rating asks once per batch and balance type instead of
    once per customer; customers missing from the answer (or every customer,
    when no plugin answers) fall back to ``balance_threshold`` one by one.
    """
