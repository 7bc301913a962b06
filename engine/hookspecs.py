"""Every extension point of Portico, in one file.

A plugin is a module (or object) with functions decorated ``@hookimpl`` whose
names match the specifications below. Implement only the hooks you need; a
function that declares fewer arguments than the spec gets only those.

Hooks that *register* something return a list; the engine attributes each item
to the plugin that returned it, so a collision (two plugins on one route,
provider id, actor name or section id) is a start-up error naming both.
Hooks marked "first result" stop at the first plugin that answers.
Event hooks are named in the past tense and their return value is ignored.
Specs only ever gain arguments, never lose them.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:  # pragma: no cover - imports for annotations only
    import click
    from apispec import APISpec
    from marshmallow import Schema

    from engine.app import Portico
    from engine.context import Context
    from engine.models import Service
    from engine.registry import (
        Action,
        Alert,
        Balance,
        Card,
        Credit,
        Route,
        Section,
    )

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
def register_actors() -> list[Any]:
    """Return functions decorated with ``engine.tasks.task`` to run in the worker.

    The engine names each actor ``<plugin>.<function>`` and creates it on the
    configured broker, in the web and the worker processes alike.
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
def service_actions(app: Portico, ctx: Context, service: Service) -> list[Action]:
    """Return the ``Action`` links this plugin offers on a service (SVC-3)."""


@hookspec
def register_commands(cli: click.Group, app_factory: Any) -> None:
    """Add click commands to the ``portico`` command line.

    ``app_factory()`` builds the configured app when a command needs it.
    """


@hookspec
def demo_data(app: Portico, demo: dict) -> None:
    """Seed demo records; ``demo`` holds what earlier plugins created.

    Called in plugin dependency order by ``portico serve --demo`` on an empty
    database. Add what you create to ``demo`` for the plugins after you.
    """


@hookspec
def openapi(app: Portico, spec: APISpec) -> None:
    """Add components or paths to the OpenAPI document beyond the routes' own."""


# -- resolving one thing -----------------------------------------------------

@hookspec(firstresult=True)
def authenticate_request(app: Portico, req: Any) -> Any:
    """Return the ``Principal`` for a request, or ``None`` to let others try.

    First result wins. The identity plugin reads the session cookie and
    ``Authorization: Bearer`` headers.
    """


@hookspec(firstresult=True)
def service_balances(app: Portico, service: Service) -> list[Balance]:
    """Return the ``Balance`` rows of a service, in consumption order (USE-1).

    First result wins: the usage plugin answers from its buckets, a partner's
    adapter to an external charging system could answer instead.
    """


@hookspec(firstresult=True)
def credit_balance(app: Portico, service: Service, credit: Credit) -> Any:
    """Add a ``Credit`` (a top-up or refund) to a service's balances; return the new bucket.

    First result wins. Must run inside the caller's transaction.
    """


# -- providers and channels --------------------------------------------------

@hookspec
def payment_providers(app: Portico) -> list[Any]:
    """Return payment provider objects, each with a unique ``id``.

    See ``engine.payments.PaymentProvider`` for the interface.
    """


@hookspec
def notification_channels(app: Portico) -> list[Any]:
    """Return notification channel objects (email, SMS, web push), each with a unique ``id``."""


# -- events (past tense; return values are ignored) --------------------------

@hookspec
def audit_recorded(app: Portico, event: Any) -> None:
    """Called after an ``AuditEvent`` row is written (in the same transaction)."""


@hookspec
def notification_requested(app: Portico, event: Any) -> None:
    """Called when something happened that a customer may be told about.

    ``event`` is an ``engine.notify.Notice``. Observers only: delivery is
    decided per channel by ``notification_route`` and done by the channel.
    """


@hookspec
def signed_out_everywhere(app: Portico, ctx: Any, user: Any, reason: str) -> None:
    """Called when every session of a customer login was ended at once (SEC-4), in that
    transaction: a password reset ("password_reset"), a password change that signs out the
    other sessions ("password_change") or "sign out everywhere" ("sign_out_everywhere").

    ``user`` is the ``engine.models.User``. Remove what still reaches the login outside a
    session, and record it with ``engine.audit.record`` (the web push plugin removes the
    login's push subscriptions).
    """


@hookspec(firstresult=True)
def notification_route(app: Portico, notice: Any, channel: str) -> str:
    """Decide how ``notice`` reaches ``channel``: "send", "digest" or "skip".

    First result wins; with no answer the notice is sent. The notifications
    plugin answers from the customer's preferences (NOT-3).
    """


@hookspec(firstresult=True)
def balance_threshold(app: Portico, customer_id: int, balance_type: str) -> int:
    """Return the low-balance threshold for a customer and balance type (NOT-3).

    Percent of the initial amount for data, voice, sms and mms; minor units for
    monetary credit. First result wins; the notifications plugin answers from
    the customer's preferences. Callers fall back to 10 (percent) when no one answers.
    Rating asks the bulk ``balance_thresholds`` first: a plugin that answers this
    should answer that too.
    """


# -- services and usage (SVC, USE) ---------------------------------------------

@hookspec(firstresult=True)
def auto_topup_status(app: Portico, service: Service) -> dict | None:
    """Return the auto top-up state of a service's monetary credit (USE-6, TOP-3).

    ``{"enabled": bool, "threshold": int, "amount": int, "currency": str}`` in
    minor units, or ``None`` when no plugin manages auto top-ups. First result wins.
    """


@hookspec
def service_status_changed(app: Portico, service: Service, old_status: str, new_status: str,
                           reason: str) -> None:
    """Called inside the transaction that changed a service's status (cancelled, expired, ...)."""


@hookspec
def service_renewed(app: Portico, service: Service, previous_period_start: Any) -> None:
    """Called inside the renewal transaction once a service has entered a new period.

    ``service.period_start`` is the new period's start. The usage plugin resets
    base-plan buckets here; a billing plugin may charge the period's fee.
    """


@hookspec
def usage_rated(app: Portico, service: Service, before: dict, after: dict) -> None:
    """Called once per service per rated batch, inside the rating transaction.

    ``before`` and ``after`` map a balance type (data, voice, sms, mms,
    monetary) to its remaining total, e.g. for auto top-up to watch the credit.
    """


@hookspec
def balance_low(app: Portico, service: Service, balance: Balance, threshold: int) -> None:
    """Called once when a balance type falls below the customer's threshold.

    ``threshold`` is what ``balance_threshold`` answered (percent of the initial
    amount; minor units for monetary credit). ``balance`` is the total of that
    type (``id`` is None). Fired inside the rating transaction, once per
    crossing: it fires again only after the balance has gone back above the
    threshold (a top-up or a renewal).
    """


@hookspec
def invoice_issued(app: Portico, invoice: Any) -> None:
    """Called inside the issuing transaction once an invoice exists with its lines and totals.

    ``invoice`` is a ``plugins.billing.models.Invoice``; its PDF is rendered
    after commit (``invoice.pdf_ready`` tells).
    """


@hookspec
def payment_succeeded(app: Portico, payment: Any) -> None:
    """Called once per payment, inside the transaction that records it as succeeded.

    ``payment`` is a ``plugins.billing.models.Payment`` (``invoice`` is set when
    it paid an invoice; ``purpose`` says what it was for).
    """


@hookspec
def payment_failed(app: Portico, payment: Any) -> None:
    """Called once per payment, inside the transaction that records it as failed.

    ``payment.failure_code`` and ``payment.failure_message`` say why (a
    decline, failed 3-D Secure, ...). Nothing was charged.
    """


@hookspec(firstresult=True)
def balance_thresholds(app: Portico, customer_ids: list[int], balance_type: str) -> dict[int, int]:
    """Return ``{customer_id: threshold}`` for many customers at once (bulk ``balance_threshold``).

    First result wins. Rating asks once per batch and balance type instead of
    once per customer; customers missing from the answer (or every customer,
    when no plugin answers) fall back to ``balance_threshold`` one by one.
    """


# -- add-ons (ADD-2) ---------------------------------------------------------------

@hookspec(firstresult=True)
def provision_addon(app: Portico, service: Service, addon: Any, action: str) -> dict | None:
    """Carry out an add-on on the network side; return the outcome, or ``None`` if not yours.

    ``addon`` is a ``plugins.addons.models.ServiceAddon``: answer only when its
    ``provisioner`` is one you own. ``action`` is "activate" or "remove". Return
    ``{"status": "active"}`` (done; optional ``"reference"`` and ``"detail"`` to
    show the customer), ``{"status": "failed", "message": ...}`` (refused: the
    one-off charge is refunded) or ``{"status": "pending"}`` (still working: you
    are asked again later). Raise for a temporary error: the task retries with
    backoff. Called from a background task, outside any transaction, maybe more
    than once for one add-on: be idempotent on ``addon.id``. First result wins.
    """
