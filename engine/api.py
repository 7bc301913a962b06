"""Helpers for JSON resources: validation at the edge, keyset pages, OpenAPI.

A responder declares what it takes and returns; the decorator validates the
input with marshmallow (bad input → 422 problem+json with field messages,
nothing runs) and dumps the return value::

    class ServiceList:
        @operation("List your services", query=PageQuery, response=ServicePage)
        def on_get(self, req, resp, query):
            return paginate(owned(Service, req.context.customer_id), Service.id, query)
"""

from __future__ import annotations

import base64
import functools
import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import falcon
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import INCLUDE, Schema, ValidationError, fields, validate

from engine.bodies import read_json
from engine.context import MAX_ID
from engine.errors import invalid
from engine.forms import text_errors
from engine.i18n import N_
from engine.money import as_json
from engine.registry import PUBLIC

API_PREFIX = "/api/v1"
RESPONDERS = ("get", "post", "put", "patch", "delete")


@dataclass
class OperationInfo:
    summary: str
    body: type[Schema] | None
    query: type[Schema] | None
    response: type[Schema] | None
    status: int
    description: str
    many: bool
    money: bool
    errors: dict


def operation(
    summary: str,
    *,
    body: type[Schema] | None = None,
    query: type[Schema] | None = None,
    response: type[Schema] | None = None,
    status: int = 200,
    description: str = "",
    many: bool = False,
    money: bool = False,
    errors: dict[int, str] | None = None,
):
    """Declare a JSON responder: validates ``body``/``query``, dumps the result with ``response``.

    ``money=True`` documents the ``Idempotency-Key`` header (money-moving POSTs).
    ``errors`` documents the other problem answers it gives, e.g. ``{409: "Already on"}``.
    """
    info = OperationInfo(
        summary, body, query, response, status, description, many, money, dict(errors or {})
    )
    dumper: list[Schema] = []  # one schema instance, made on first use: building one per
    # request (marshmallow deep-copies every field) cost more than many a dump

    def dump(result):
        if isinstance(result, Dumped):
            return result.data
        if response is None:
            return result
        if not dumper:
            dumper.append(response(many=many))
        return dumper[0].dump(result)

    def decorate(fn):
        @functools.wraps(fn)
        def responder(self, req, resp, **params):
            if body is not None:
                params["body"] = load(body, read_json(req))
            if query is not None:
                params["query"] = load(query, req.params)
            result = fn(self, req, resp, **params)
            resp.status = (
                falcon.code_to_http_status(status)
                if resp.status == falcon.HTTP_200
                else resp.status
            )
            if result is not None:
                resp.media = dump(result)

        responder.__openapi__ = info  # type: ignore[attr-defined]  # mypy types no function attrs
        return responder

    return decorate


@dataclass(frozen=True)
class Dumped:
    """A result already dumped by the operation's response schema (kept from a cache)."""

    data: Any


def load(schema_cls: type[Schema], data: Any) -> dict:
    """Validate ``data``; any problem becomes a 422 with field-by-field messages."""
    if not isinstance(data, dict):
        raise invalid({"_schema": [N_("Expected a JSON object.")]})
    refused = text_errors(data)
    if refused:
        raise invalid(refused)
    try:
        return schema_cls().load(data)
    except ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
        raise invalid(messages) from None


# -- lists: {"items": [...], "next": cursor} with keyset pagination -----------


class PageQuery(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))
    cursor = fields.String(load_default=None, allow_none=True)


def page_schema(item: type[Schema], name: str) -> type[Schema]:
    """The list envelope for ``item``: ``{"items": [...], "next": str|null}``."""
    return Schema.from_dict(
        {
            "items": fields.List(fields.Nested(item)),
            "next": fields.String(
                allow_none=True, metadata={"description": "cursor of the next page"}
            ),
        },
        name=name,
    )


def encode_cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> Any:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError):
        raise invalid(
            {"cursor": [N_("Not a valid cursor: use the 'next' value of the previous page.")]}
        ) from None


def paginate(query, key_field, page: dict, descending: bool = True) -> dict:
    """One keyset page of ``query`` ordered by ``key_field`` (an integer id)."""
    limit = page.get("limit", 50)
    if page.get("cursor"):
        after = decode_cursor(page["cursor"])
        if isinstance(after, bool) or not isinstance(after, int) or not 0 <= after <= MAX_ID + 1:
            raise invalid({"cursor": [N_("Not a valid cursor.")]})
        query = query.where(key_field < after if descending else key_field > after)
    order = key_field.desc() if descending else key_field.asc()
    rows = list(query.order_by(order).limit(limit + 1))
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "items": rows,
        "next": encode_cursor(getattr(rows[-1], key_field.name)) if more else None,
    }


def paginate_dated(query, date_field, id_field, page: dict) -> dict:
    """One keyset page of ``query``, newest first by ``date_field`` then ``id_field``.

    For rows whose order is their date, not their id (a transaction recorded
    late for an earlier day). The cursor is the last row's ``[date, id]``.
    """
    limit = page.get("limit", 50)
    if page.get("cursor"):
        after = decode_cursor(page["cursor"])
        try:
            when, last = after
            when = datetime.fromisoformat(when)
            if when.tzinfo is None or isinstance(last, bool) or not 0 < last <= MAX_ID:
                raise ValueError(after)
        except (TypeError, ValueError):
            raise invalid({"cursor": [N_("Not a valid cursor.")]}) from None
        query = query.where((date_field < when) | ((date_field == when) & (id_field < last)))
    rows = list(query.order_by(date_field.desc(), id_field.desc()).limit(limit + 1))
    more = len(rows) > limit
    rows = rows[:limit]
    if not more:
        return {"items": rows, "next": None}
    tail = rows[-1]
    return {
        "items": rows,
        "next": encode_cursor(
            [getattr(tail, date_field.name).isoformat(), getattr(tail, id_field.name)]
        ),
    }


# -- shared shapes ------------------------------------------------------------


def Id(**kwargs) -> fields.Integer:  # noqa: N802 - a field type, like fields.Integer
    """A row id sent by a client: too big for the database is a field error, not a 500."""
    kwargs.setdefault("validate", validate.Range(1, MAX_ID, error=N_("Not a valid id.")))
    return fields.Integer(**kwargs)


class AwareDateTime(fields.AwareDateTime):
    """An ISO 8601 time that has a UTC equivalent (0001-01-01T00:00+14:00 has none)."""

    def _deserialize(self, value, attr, data, **kwargs):
        moment = super()._deserialize(value, attr, data, **kwargs)
        try:
            moment.astimezone(timezone.utc)
        except OverflowError:
            raise ValidationError(N_("Not a valid time: out of range.")) from None
        return moment


#: The largest amount of money, in minor units, any request may name: 1,000,000.00 in a
#: currency with two decimals. Every money column holds it (PostgreSQL ``integer``), and a sum
#: of twenty such amounts (an invoice's total) too. Documented in docs/billing.md.
MAX_AMOUNT = 100_000_000


class Amount(fields.Integer):
    """Money sent by a client, in minor units (1050 is 10.50). Every money field of every
    schema is one, so none takes more than ``MAX_AMOUNT`` (1e20 is a field error, not an
    overflow). A field may narrow the range (a credit is negative: ``minimum=-MAX_AMOUNT``)."""

    def __init__(self, *, minimum: int = 0, maximum: int = MAX_AMOUNT, **kwargs):
        if not -MAX_AMOUNT <= minimum <= maximum <= MAX_AMOUNT:
            raise ValueError(f"an Amount lies within ±{MAX_AMOUNT}: got {minimum}..{maximum}")
        kwargs.setdefault("validate", validate.Range(minimum, maximum))
        super().__init__(**kwargs)


class MajorAmount(fields.Decimal):
    """Money as people type it in a form, in major units with two decimals (12.50); at most
    ``MAX_AMOUNT`` minor units, like ``Amount``. Never negative: forms take no credits."""

    def __init__(self, **kwargs):
        kwargs.setdefault("validate", validate.Range(0, Decimal(MAX_AMOUNT).scaleb(-2)))
        super().__init__(places=2, **kwargs)


class MoneySchema(Schema):
    """Money: integer minor units and an ISO currency, e.g. {"amount": 1050, "currency": "GBP"}."""

    amount = Amount(minimum=-MAX_AMOUNT, required=True)
    currency = fields.String(required=True, validate=validate.Length(equal=3))


#: The API's money object (``engine.money.as_json``), here beside the schemas that use it.
money = as_json


class ProblemSchema(Schema):
    """RFC 9457: a problem may carry extension members (e.g. ``support``), so more keys are allowed."""

    class Meta:
        unknown = INCLUDE

    type = fields.String()
    title = fields.String()
    status = fields.Integer()
    detail = fields.String()
    errors = fields.Dict(keys=fields.String())


# -- OpenAPI -----------------------------------------------------------------


def build_openapi(app) -> dict:
    """The OpenAPI 3.1 document of every mounted JSON route, tagged by plugin."""
    spec = APISpec(
        title="Portico API",
        version=app.version,
        openapi_version="3.1.0",
        plugins=[MarshmallowPlugin()],
        info={
            "description": "Customer self-service API. Authenticate with the "
            "session cookie or `Authorization: Bearer <token or API "
            "key>`. Money is `{amount, currency}`, the amount in "
            "minor units (1050 is 10.50); an amount a request sends "
            f"is at most {MAX_AMOUNT:,} either way (1,000,000.00 "
            "with two decimals). Bodies are JSON "
            "(`Content-Type: application/json`), at most "
            "`web.max_body_bytes` (1 MiB unless the operator "
            "changes it)."
        },
    )
    spec.components.schema("Problem", schema=ProblemSchema)
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    spec.components.security_scheme(
        "session", {"type": "apiKey", "in": "cookie", "name": "portico_session"}
    )
    spec.components.security_scheme(
        "serviceToken",
        {
            "type": "http",
            "scheme": "bearer",
            "description": "An operator service token "
            "(`pst_...`, `portico token create`): the only credential of `/operator/...` (INT-1)",
        },
    )
    tags = set()
    for plugin, route in app.routes:
        if not route.path.startswith(API_PREFIX):
            continue
        ops = {}
        for method in RESPONDERS:
            name = f"on_{method}_{route.suffix}" if route.suffix else f"on_{method}"
            info = getattr(getattr(route.resource, name, None), "__openapi__", None)
            if info is not None:
                ops[method] = _operation(info, plugin, route, method)
        if ops:
            tags.add(plugin)
            spec.path(path=route.path[len(API_PREFIX) :] or "/", operations=ops)
    spec.options["servers"] = [{"url": app.settings.base_url.rstrip("/") + API_PREFIX}]
    app.plugins.hook.openapi(app=app, spec=spec)
    doc = spec.to_dict()
    doc["tags"] = [{"name": t} for t in sorted(tags)]
    return doc


def _operation(info: OperationInfo, plugin: str, route, method: str) -> dict:
    path, permission = route.path, route.permission_for(method)
    auth = "public" if permission == PUBLIC else getattr(route.resource, "auth", "customer")
    op: dict = {
        "summary": info.summary,
        "tags": [plugin],
        "operationId": f"{plugin}_{method}_{path[len(API_PREFIX) :].strip('/').replace('/', '_').replace('{', '').replace('}', '') or 'root'}",
    }
    if info.description:
        op["description"] = info.description
    if permission is not None:  # SEC-5: what the staff route declares
        op["x-portico-permission"] = permission
    params = [
        {"in": "path", "name": n, "required": True, "schema": {"type": "string"}}
        for n in _path_params(path)
    ]
    if info.query is not None:
        params.append({"in": "query", "schema": info.query})
    if info.money:
        params.append(
            {
                "in": "header",
                "name": "Idempotency-Key",
                "required": False,
                "schema": {"type": "string", "maxLength": 255},
                "description": "Repeat the request with the same key to get the first "
                "result; the money moves once.",
            }
        )
    if params:
        op["parameters"] = params
    if info.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": info.body}},
        }
    ok: dict = {"description": "OK"}
    if info.response is not None:
        schema = {"type": "array", "items": info.response} if info.many else info.response
        ok["content"] = {"application/json": {"schema": schema}}
    problem = {"content": {"application/problem+json": {"schema": "Problem"}}}
    op["responses"] = {str(info.status): ok}
    if auth != "public":
        op["security"] = (
            [{"serviceToken": []}] if auth == "service" else [{"bearer": []}, {"session": []}]
        )
        op["responses"]["401"] = {"description": "Not signed in", **problem}
    if params and any(p["in"] == "path" for p in params):
        op["responses"]["404"] = {"description": "Not found (or not yours)", **problem}
    if info.body is not None:
        op["responses"]["400"] = {"description": "The body is not valid JSON", **problem}
        op["responses"]["415"] = {"description": "The body is not application/json", **problem}
    if info.body is not None or info.query is not None:
        op["responses"]["422"] = {"description": "Invalid input; see errors", **problem}
    if method != "get" and auth != "public":
        op["responses"]["403"] = {"description": "Read-only key or not allowed", **problem}
    if info.money:
        op["responses"]["409"] = {
            "description": "A request with this Idempotency-Key is still being processed",
            **problem,
        }
    for code, text in info.errors.items():  # a 2xx is another success with the same body
        op["responses"][str(code)] = (
            {**ok, "description": text} if code < 400 else {"description": text, **problem}
        )
    return op


def _path_params(path: str) -> list[str]:
    return [m.split(":")[0] for m in re.findall(r"{([^}]+)}", path)]
