"""The built-in provisioners (the ``provision_addon`` hook's fallback answers).

- ``instant``: the add-on needs nothing from the network (a content pass, a
  roaming flag the network reads from us): it is active at once.
- ``static_ip``: takes a free address from the operator's pool
  (``[addons] static_ip_pool``); when the pool is used up it fails, and the
  customer's one-off payment is refunded. Removal frees the address.
- ``webhook``: the operator's systems do it (INT-6). They hear ``addon.ordered`` (or
  ``addon.cancelled`` for a removal) by webhook and call back
  ``POST /api/v1/operator/addons/{id}/provisioned`` or ``.../failed``
  (``plugins.addons.public.settle``); meanwhile the add-on stays pending, and after
  ``MAX_PENDING_CHECKS`` checks (an hour) without an answer it fails.

A partner's plugin answers for its own ``provisioner`` ids before these.
"""

from __future__ import annotations

import ipaddress

from engine.i18n import N_
from plugins.addons.models import ServiceAddon

POOL_EMPTY = N_(
    "No static IP address is free right now, so we could not set this up. Any "
    "payment for it is refunded."
)


def builtin(app, service, addon: ServiceAddon, action: str) -> dict | None:
    if addon.provisioner == "instant":
        return {"status": "active"}
    if addon.provisioner == "static_ip":
        return static_ip(app, addon, action)
    if addon.provisioner == "webhook":
        return {"status": "pending"}  # until the operator calls back (settle)
    return None


def static_ip(app, addon: ServiceAddon, action: str) -> dict:
    if action == "remove":
        return {"status": "active"}  # the address returns to the pool when the row lets it go
    if addon.reference:  # a repeated delivery: the address it already has
        return {"status": "active", "reference": addon.reference, "detail": addon.reference}
    pool = ipaddress.ip_network(app.settings.plugin("addons")["static_ip_pool"], strict=False)
    used = {
        r
        for (r,) in ServiceAddon.select(ServiceAddon.reference)
        .where((ServiceAddon.provisioner == "static_ip") & ServiceAddon.reference.is_null(False))
        .tuples()
    }
    for host in pool.hosts():
        if str(host) not in used:
            # Two tasks picking one address at once: the unique index refuses the second,
            # whose task then retries and takes the next one.
            return {"status": "active", "reference": str(host), "detail": str(host)}
    return {"status": "failed", "message": POOL_EMPTY}
