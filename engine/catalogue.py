"""What every staff-edited product catalogue shares (top-ups, add-ons, a partner's own): the
table's common columns and how staff save an entry, the fields of an entry in the API, the
staff listing's query, and the rule that an entry's code never changes."""

from __future__ import annotations

from typing import Callable, ClassVar

import peewee
from marshmallow import Schema, ValidationError, fields, validate, validates
from peewee import BooleanField, CharField, IntegerField, TextField

from engine import db
from engine.api import PageQuery, operation, paginate
from engine.audit import record
from engine.context import get_or_404
from engine.db import BaseModel, CurrencyField, UTCDateTimeField, utcnow
from engine.errors import invalid
from engine.i18n import N_
from engine.models import SERVICE_TYPES


class CatalogueEntry(BaseModel):
    """The columns every catalogue table has; a catalogue subclasses it and adds its own.

    Entries are offered by ``position`` within a service type. Staff retire an
    entry (``active`` false) rather than delete it: what customers bought keeps
    a copy of it, so editing the catalogue never rewrites history.
    """

    audit_prefix: ClassVar[str]  # "topup": audit events topup.product_saved, _retired, _restored

    code = CharField(max_length=60, unique=True)
    service_type = CharField(max_length=20)
    name = CharField(max_length=100)
    description = TextField(default="")
    currency = CurrencyField(default="GBP")
    position = IntegerField(default=0)
    active = BooleanField(default=True)
    created_at = UTCDateTimeField(default=utcnow)
    updated_at = UTCDateTimeField(default=utcnow)

    class Meta:
        indexes = ((("service_type", "active", "position"), False),)

    @classmethod
    def listing(
        cls, service_type: str | None = None, active_only: bool = True, first_by=()
    ) -> peewee.Select:
        """Entries of one service type (or all), by ``first_by`` columns, then position."""
        query = cls.select()
        if service_type:
            query = query.where(cls.service_type == service_type)
        if active_only:
            query = query.where(cls.active)
        return query.order_by(*first_by, cls.position, cls.id)

    @classmethod
    def save_entry(
        cls,
        ctx,
        entry: CatalogueEntry | None,
        values: dict,
        check: Callable[[dict], None] | None = None,
    ) -> CatalogueEntry:
        """Staff create (``entry`` None) or change an entry, audited. ``check(merged)`` sees the
        entry as it would be (raise ``invalid`` to refuse); a taken code is a field error."""
        editable = [
            f for f in cls._meta.sorted_field_names if f not in ("id", "created_at", "updated_at")
        ]
        merged = {f: getattr(entry, f) for f in editable} if entry is not None else {}
        merged.update(values)
        if "currency" in values:
            merged["currency"] = values["currency"].upper()
        if check is not None:
            check(merged)
        verb = (
            "saved"
            if set(values) != {"active"}
            else "retired"
            if not values["active"]
            else "restored"
        )
        try:
            with db.database.atomic():
                if entry is None:
                    entry = cls.create(**merged)
                else:
                    for key, value in merged.items():
                        setattr(entry, key, value)
                    entry.updated_at = utcnow()
                    entry.save()
                record(
                    ctx,
                    f"{cls.audit_prefix}.product_{verb}",
                    f"{cls.audit_prefix}_product:{entry.id}",
                    dict(values),
                )
        except peewee.IntegrityError:
            raise invalid({"code": [N_("Another catalogue entry has this code.")]}) from None
        return entry


class CatalogueQuery(PageQuery):
    """The staff listing: every entry, retired ones too, of one service type or all."""

    service_type = fields.String(load_default=None, validate=validate.OneOf(SERVICE_TYPES))


class CatalogueEntryIn(Schema):
    """The fields every catalogue entry has, as staff send them; a catalogue adds its own."""

    code = fields.String(
        required=True,
        validate=validate.Regexp(
            r"^[a-z0-9][a-z0-9._-]{0,59}\Z",
            error=N_("Lower-case letters, digits, '.', '_' and '-' (up to 60)."),
        ),
    )
    service_type = fields.String(required=True, validate=validate.OneOf(SERVICE_TYPES))
    name = fields.String(required=True, validate=validate.Length(1, 100))
    description = fields.String(load_default="", validate=validate.Length(max=1000))
    currency = fields.String(
        load_default="GBP",
        validate=validate.Regexp(r"^[A-Za-z]{3}\Z", error=N_("An ISO 4217 code, e.g. GBP.")),
    )
    position = fields.Integer(load_default=0, validate=validate.Range(0, 10000))
    active = fields.Boolean(load_default=True)


class CataloguePatch:
    """Put before a catalogue's entry schema (``class XPatch(CataloguePatch, XIn)``): any field
    may change, except the code, which past purchases and partner integrations refer to."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("partial", True)
        super().__init__(*args, **kwargs)

    @validates("code")
    def code_stays(self, value, **kwargs):
        raise ValidationError(N_("The code of an entry cannot change; create a new entry."))


def staff_api(
    model: type[CatalogueEntry],
    save: Callable,
    *,
    noun: str,
    spec: str,
    entry: type[Schema],
    page: type[Schema],
    new: type[Schema],
    patch: type[Schema],
) -> tuple[type, type]:
    """The staff catalogue API of one catalogue, for staff with the ``catalogue`` permission
    (the plugin declares it on each ``Route``):
    ``(Entries, Entry)``, resources for ``GET|POST .../<noun>-products`` and
    ``GET|PATCH|DELETE .../<noun>-products/{product_id}``. ``save(ctx, entry|None, values)``
    is the plugin's rule (usually ``model.save_entry`` with its checks)."""

    class Entries:
        @operation(
            f"The {noun} catalogue, every service type, retired entries too",
            query=CatalogueQuery,
            response=page,
        )
        def on_get(self, req, resp, query):
            return paginate(
                model.listing(query["service_type"], active_only=False),
                model.id,
                query,
                descending=False,
            )

        @operation(f"Add a catalogue entry ({spec})", body=new, response=entry, status=201)
        def on_post(self, req, resp, body):
            return save(req.context, None, body)

    class Entry:
        @operation("One catalogue entry", response=entry)
        def on_get(self, req, resp, product_id):
            return get_or_404(model, product_id)

        @operation(
            "Change a catalogue entry (what customers already bought keeps its terms)",
            body=patch,
            response=entry,
        )
        def on_patch(self, req, resp, product_id, body):
            return save(req.context, get_or_404(model, product_id), body)

        @operation(
            "Retire a catalogue entry: no longer offered; what customers bought stays",
            response=entry,
        )
        def on_delete(self, req, resp, product_id):
            return save(req.context, get_or_404(model, product_id), {"active": False})

    for cls in (Entries, Entry):
        cls.__qualname__ = cls.__name__ = f"Staff{model.__name__}{cls.__name__}"
    return Entries, Entry
