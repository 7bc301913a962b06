"""HTML forms: read a posted form once, validate it with the same marshmallow schema as the API."""
from __future__ import annotations

from typing import Any

import falcon
from marshmallow import Schema, ValidationError

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def read_form(req: falcon.Request) -> dict[str, Any]:
    """The posted form as a dict (cached: the body can be read only once)."""
    cache = req.context.extra
    if "form" not in cache:
        form: dict[str, Any] = {}
        ctype = (req.content_type or "").split(";")[0].strip()
        if ctype == FORM_TYPES[0] and req.content_length:
            form = dict(req.get_media() or {})
        elif ctype == FORM_TYPES[1]:
            for part in req.get_media():
                if not part.filename:
                    form[part.name] = part.get_text()
        cache["form"] = form
    return cache["form"]


NUL_MESSAGE = "Contains a NUL character, which is not allowed."


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_has_nul(v) for v in value)
    return False


def nul_errors(data: dict) -> dict:
    """Field → [message] for each field holding a NUL: no text field takes one (PostgreSQL
    cannot store it), so it is refused at the edge like any other bad input."""
    return {k: [NUL_MESSAGE] for k, v in data.items() if _has_nul(v)}


def validate_form(req: falcon.Request, schema_cls: type[Schema]) -> tuple[dict, dict]:
    """Validate the posted form: returns (data, errors); errors are field → [messages].

    Unknown fields (the CSRF token, the submit button) are ignored.
    """
    raw = {k: v for k, v in read_form(req).items() if k != "csrf_token"}
    refused = nul_errors(raw)
    try:
        data = schema_cls().load(raw, unknown="exclude")
    except ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
        return {}, {**messages, **refused}
    return ({}, refused) if refused else (data, {})
