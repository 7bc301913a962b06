"""The sandbox plugin's public facade: what other plugins may use of it.

Other plugins import sandbox only from here and name ``sandbox`` in their
``plugin_requires`` or ``plugin_optional``. Anything not listed in ``__all__`` is private.

- ``token_for(number, month, year)``: what the sandbox widget makes of a test card, for demo
  data that saves cards without a browser.
"""

from __future__ import annotations

from plugins.sandbox.provider import token_for

__all__ = ["token_for"]
