"""Who is asking on the operator API: a service token, and nothing else (INT-1).

``Authorization: Bearer pst_...`` on ``/api/v1/operator/...`` is a system with a service
token. There, any other credential (a session, a customer's API key) is a 401; elsewhere a
service token opens nothing (the engine's middleware refuses it on every other route).
"""

from __future__ import annotations

from engine.context import Principal
from engine.errors import Problem
from engine.i18n import N_
from plugins.identity.public import bearer
from plugins.operator import tokens
from plugins.operator.ratelimit import limiter

PREFIX = "/api/v1/operator"


def is_operator_path(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


def authenticate(app, req) -> Principal | None:
    if not is_operator_path(req.path):
        return None  # other plugins decide; a service token is refused there
    for value in req.params.values():
        values = value if isinstance(value, list) else [value]
        if any(str(v).startswith(tokens.TOKEN_PREFIX) for v in values):
            raise Problem(
                401,
                N_("Service tokens are not accepted in the URL"),
                N_(
                    "Send it in the Authorization header, and revoke this one: URLs end up in logs."
                ),
                type="token-in-url",
            )
    token = bearer(req)
    if token is None or not token.startswith(tokens.TOKEN_PREFIX):
        raise Problem(
            401,
            N_("The operator API takes a service token"),
            N_(
                "Send 'Authorization: Bearer pst_...' (portico token create); "
                "customer and staff sign-ins do not open it."
            ),
            type="service-token-required",
        )
    row = tokens.resolve(token, req.context.ip)
    limiter(app).hit(row)  # 429 with Retry-After over the token's rate
    req.context.extra["service_token"] = tokens.describe(row)
    return Principal(kind="service", token_id=row.id, scopes=row.scope_set, via="service_token")
