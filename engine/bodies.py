"""Request bodies (SEC-3): capped before anything reads them, and JSON parsed within limits.

- ``cap(req, limit)``: the middleware calls it first on every request. A body over
  ``web.max_body_bytes`` is a 413 before it is read; a chunked body (no ``Content-Length``)
  is read up to the limit and no further, then handed on like any other.
- ``JSON``: the media handler for ``application/json``. Nesting deeper than ``MAX_DEPTH``,
  ``NaN`` and ``Infinity`` are refused (400); a number too big for a float becomes the
  exact integer, so the field's own range refuses it with a field message.
- ``read_json(req)``: the JSON body of an API call; a body without ``Content-Type`` is
  refused (415) rather than guessed to be JSON.
"""

from __future__ import annotations

import io
import json
import math
from decimal import Decimal
from typing import Any, NoReturn

import falcon
from falcon.media import JSONHandler

from engine.errors import Problem
from engine.i18n import N_

#: The deepest nesting of arrays and objects a JSON body may have. Portico's own shapes
#: nest three levels; the parser (recursive in C) would fail near 1,000.
MAX_DEPTH = 32
JSON_TYPE = "application/json"


def too_large(limit: int) -> Problem:
    return Problem(
        413,
        N_("The request body is too large"),
        N_("Send at most %(limit)s bytes.", limit=limit),
        errors={"_schema": [N_("The body is larger than %(limit)s bytes.", limit=limit)]},
    )


def cap(req: falcon.Request, limit: int) -> None:
    """Refuse a body over ``limit`` bytes (413) before any part of the app reads it."""
    length = req.content_length  # a malformed Content-Length is a 400 from Falcon
    if length is not None:
        if length > limit:
            raise too_large(limit)
        return
    if not _chunked(req):
        return  # no Content-Length and not chunked: there is no body
    # APPSEC: read one byte past the limit, never the whole stream. The server has
    # taken off the chunked framing; the rest of the app sees an ordinary body.
    data = req.stream.read(limit + 1)
    if len(data) > limit:
        raise too_large(limit)
    req.stream = req.env["wsgi.input"] = io.BytesIO(data)
    req.env["CONTENT_LENGTH"] = str(len(data))


def _chunked(req: falcon.Request) -> bool:
    return "chunked" in (req.get_header("Transfer-Encoding") or "").lower()


def _too_deep() -> Problem:
    return Problem(
        400,
        N_("The JSON is nested too deeply"),
        N_("Arrays and objects may nest at most %(depth)s levels.", depth=MAX_DEPTH),
        errors={"_schema": [N_("Nested more than %(depth)s levels deep.", depth=MAX_DEPTH)]},
    )


def _depth(value: Any) -> int:
    """How deeply arrays and objects nest in ``value`` (walked without recursion)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            item = item.values()
        elif not isinstance(item, list):
            continue
        deepest = max(deepest, level)
        if level > MAX_DEPTH:
            break
        stack.extend((child, level + 1) for child in item)
    return deepest


def _float(text: str) -> float | int:
    """A JSON number with a fraction or exponent; one past a float's range stays exact
    (``1e400`` is the integer 10**400), so a range check refuses it, not an overflow."""
    number = float(text)
    return number if math.isfinite(number) else int(Decimal(text))


def _constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def loads(text: str) -> Any:
    """``json.loads`` within Portico's limits (see the module docstring)."""
    try:
        value = json.loads(text, parse_float=_float, parse_constant=_constant)
    except RecursionError:
        raise _too_deep() from None
    if _depth(value) > MAX_DEPTH:
        raise _too_deep()
    return value


JSON = JSONHandler(loads=loads)


def read_json(req: falcon.Request) -> Any:
    """The request's JSON body; no body is ``{}``. Any other or no ``Content-Type`` is a 415:
    guessing would let a page on another site send JSON without a CORS preflight."""
    if not req.content_length:
        return {}
    if (req.content_type or "").split(";")[0].strip().lower() != JSON_TYPE:
        raise falcon.HTTPUnsupportedMediaType(
            title=N_("Unsupported media type"),
            description=N_("Send the body as JSON with 'Content-Type: application/json'."),
        )
    try:
        return req.get_media()
    except falcon.MediaMalformedError:
        raise falcon.HTTPBadRequest(
            title=N_("Malformed JSON"), description=N_("The request body is not valid JSON.")
        ) from None
