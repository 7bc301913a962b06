"""HTML forms: read a posted form once, validate it with the same marshmallow schema as the API."""

from __future__ import annotations

import re
from typing import Any

import falcon
from marshmallow import Schema, ValidationError

from engine.i18n import N_

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
    cached: dict[str, Any] = cache["form"]
    return cached


NUL_MESSAGE = N_("Contains a NUL character, which is not allowed.")
SURROGATE_MESSAGE = N_("Contains a character that is not valid Unicode (a lone surrogate).")
#: A lone UTF-16 surrogate: JSON's "\ud800" escape decodes to one, and no UTF-8 text (the
#: database's, the page's) can hold it.
_SURROGATE = re.compile("[\ud800-\udfff]")


def _text_problem(value: Any) -> str | None:
    """Why ``value`` (or any text nested in it, keys too) cannot be stored, or None."""
    stack = [value]
    while stack:  # no recursion: a deep body must not overflow the stack
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return NUL_MESSAGE
            if _SURROGATE.search(item):
                return SURROGATE_MESSAGE
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return None


def text_errors(data: dict[str, Any]) -> dict[str, list[str]]:
    """Field → [message] for each field holding text no field takes: a NUL (PostgreSQL cannot
    store it) or a lone surrogate (not Unicode text at all). Refused at the edge, field by
    field, like any other bad input; a key that is such text is reported as ``_schema``."""
    errors: dict[str, list[str]] = {}
    for key, value in data.items():
        bad_key = _text_problem(key)
        problem = bad_key or _text_problem(value)
        if problem:
            errors["_schema" if bad_key else key] = [problem]
    return errors


def validate_form(
    req: falcon.Request, schema_cls: type[Schema]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Validate the posted form: returns (data, errors); errors are field → [messages].

    Unknown fields (the CSRF token, the submit button) are ignored.
    """
    raw = {k: v for k, v in read_form(req).items() if k != "csrf_token"}
    refused = text_errors(raw)
    try:
        data = schema_cls().load(raw, unknown="exclude")
    except ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
        return {}, {**messages, **refused}
    return ({}, refused) if refused else (data, {})
