"""Run localstripe for the tests: ``python localstripe_server.py PORT STATE_FILE``.

Two test-side adjustments, so the production code path stays Stripe's:

- localstripe keeps its state in ``/tmp/localstripe.pickle``, shared by every
  instance on the machine; here each test session gets its own file.
- localstripe refuses ``off_session`` on ``POST /v1/payment_intents/{id}/confirm``,
  which Stripe accepts (the customer is not present); here it is accepted. With
  a card that needs authentication the intent then waits in ``requires_action``
  and the provider gives up on it, as it must off-session.
"""

from __future__ import annotations

import pickle
import sys

from localstripe import resources

PORT, STATE = sys.argv[1], sys.argv[2]


def _load(self):
    return None  # every session starts empty


def _dump(self):
    with open(STATE, "wb") as f:
        pickle.dump(self, f, protocol=pickle.HIGHEST_PROTOCOL)


resources.Store.try_load_from_disk = _load
resources.Store.dump_to_disk = _dump
_confirm = resources.PaymentIntent._api_confirm


def _confirm_off_session(id, payment_method=None, off_session=None, **kwargs):
    return _confirm(id, payment_method=payment_method, **kwargs)


resources.extra_apis[:] = [
    (method, url, _confirm_off_session if url == "/v1/payment_intents/{id}/confirm" else func)
    for method, url, func in resources.extra_apis
]

from localstripe import server  # noqa: E402 - after the patches, which it reads at import

if __name__ == "__main__":
    sys.argv = [sys.argv[0], "--port", PORT, "--from-scratch"]
    server.start()
