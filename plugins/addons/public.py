"""The add-ons plugin's public facade: what other plugins may use of it.

- ``settle(app, addon_id, outcome, answer)``: an outside provisioner's answer for an add-on
  of the ``webhook`` provisioner (INT-6): ``outcome`` "active" or "failed"; ``answer`` may
  hold ``reference``, ``detail`` (set-up) or ``message`` (failure). Returns the add-on (None
  when there is none); 409 when it is not waiting for an answer.
"""

from __future__ import annotations

from plugins.addons.models import ServiceAddon
from plugins.addons.service import settle

__all__ = ["ServiceAddon", "settle"]
