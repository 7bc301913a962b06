"""Write a migration that creates tables from frozen copies of models (``python -m engine.freeze``).

A migration must keep creating the tables it created the day it was written,
whatever the models become, so it may not import them. This renders the
models' schema as plain peewee classes inside the migration file: only what
the table's DDL depends on (field types, lengths, nullability, keys, indexes,
checks), no defaults or methods. Tables of other plugins that the models
reference become stubs with just their name (and the referenced column when
it is not ``id``).

    python -m engine.freeze plugins.topups.models:MODELS "Top-up tables." > 0001_initial.py
"""

from __future__ import annotations

import importlib
import re
import sys

import peewee


def freeze(models, doc: str) -> str:
    """The source of a migration creating ``models``' tables (dropping them in ``down``)."""
    models = peewee.sort_models(models)
    stubs: dict[type, dict[str, peewee.Field]] = {}
    for model in models:
        for field in model._meta.sorted_fields:
            if isinstance(field, peewee.ForeignKeyField) and field.rel_model not in models:
                refs = stubs.setdefault(field.rel_model, {})
                if field.rel_field.name != "id" or type(field.rel_field) is not peewee.AutoField:
                    refs[field.rel_field.name] = field.rel_field
    names: set[str] = {"Model"}
    blocks = [
        _stub(model, fields, names)
        for model, fields in sorted(stubs.items(), key=lambda item: item[0].__name__)
    ]
    blocks += [_model(model, names) for model in models]
    listed = _pack("TABLES = [", [m.__name__ for m in models], "]", "")
    imports = f"from peewee import {', '.join(sorted(names))}"
    if len(imports) > 99:
        imports = "from peewee import (\n" + "".join(f"    {n},\n" for n in sorted(names)) + ")"
    return "\n".join(
        [
            f'"""{doc}"""',
            imports,
            "",
            "",
            "\n\n\n".join(blocks),
            "",
            "",
            listed,
            "",
            "",
            "def up(migrator, db):",
            "    with db.bind_ctx(TABLES):",
            "        db.create_tables(TABLES, safe=False)",
            "",
            "",
            "def down(migrator, db):",
            "    with db.bind_ctx(TABLES):",
            "        db.drop_tables(TABLES, safe=False)",
            "",
        ]
    )


def _stub(model, fields: dict, names: set) -> str:
    lines = [f"class {model.__name__}(Model):  # another plugin's table, only referenced"]
    lines += [_field(f, names, f"    {f.name} = ", stub=True) for f in fields.values()]
    lines += [""] if fields else []
    lines += ["    class Meta:", f"        table_name = {_q(model._meta.table_name)}"]
    return "\n".join(lines)


def _model(model, names: set) -> str:
    meta = model._meta
    lines = [f"class {model.__name__}(Model):"]
    for field in meta.sorted_fields:
        if not (
            type(field) is peewee.AutoField and field.name == "id" and field.column_name == "id"
        ):
            lines.append(_field(field, names, f"    {field.name} = "))
    lines += [
        "",
        "    class Meta:",
        f"        table_name = {_q(meta.table_name)}",
        "        legacy_table_names = False  # index names start with the table's",
    ]
    if isinstance(meta.primary_key, peewee.CompositeKey):
        names.add("CompositeKey")
        keys = ", ".join(_q(n) for n in meta.primary_key.field_names)
        lines.append(f"        primary_key = CompositeKey({keys})")
    indexes = []
    for index in meta.indexes or ():
        if not isinstance(index, (tuple, list)):
            raise SystemExit(f"{meta.table_name}: index {index!r} must be frozen by hand")
        columns, unique = index
        indexes.append(
            f"(({', '.join(_q(c) for c in columns)}{',' * (len(columns) == 1)}), {unique})"
        )
    if indexes:
        lines.append(
            _pack(
                "        indexes = (",
                indexes,
                ",)" if len(indexes) == 1 else ")",
                "                   ",
            )
        )
    if meta.constraints:
        raise SystemExit(f"{meta.table_name}: table constraints must be frozen by hand")
    return "\n".join(lines)


def _field(field: peewee.Field, names: set, head: str, stub: bool = False) -> str:
    """``CharField(max_length=20, unique=True)``: the peewee class whose DDL the field has."""
    cls: type[peewee.Field] = next(c for c in type(field).__mro__ if c.__module__ == "peewee")
    if cls.field_type != type(field).field_type:
        raise SystemExit(f"{field}: {type(field).__name__} changes the column type; freeze by hand")
    names.add(cls.__name__)
    args = []
    if isinstance(field, peewee.ForeignKeyField):
        rel = field.rel_model
        args.append('"self"' if rel is field.model else rel.__name__)
        if field.rel_field.name != "id":
            args.append(f"field={_q(field.rel_field.name)}")
        if field.column_name != field.name + "_id" and field.column_name != field.name:
            args.append(f"column_name={_q(field.column_name)}")
    elif field.column_name != field.name:
        args.append(f"column_name={_q(field.column_name)}")
    if field.primary_key and not isinstance(field, peewee.AutoField):
        args.append("primary_key=True")
    if isinstance(field, peewee.CharField):
        args.append(f"max_length={field.max_length}")
    if isinstance(field, peewee.DecimalField):
        args.append(f"max_digits={field.max_digits}, decimal_places={field.decimal_places}")
    call = f"{head}{cls.__name__}("
    if stub:
        return _pack(call, args, ")", " " * len(call))
    if field.null:
        args.append("null=True")
    if field.unique:
        args.append("unique=True")
    elif isinstance(field, peewee.ForeignKeyField) and not field.index:
        args.append("index=False")
    elif field.index and not isinstance(field, peewee.ForeignKeyField):
        args.append("index=True")
    for option in ("on_delete", "on_update"):
        if getattr(field, option, None):
            args.append(f"{option}={_q(getattr(field, option))}")
    checks = []
    for constraint in field.constraints or ():
        found = re.fullmatch(r"CHECK \((.*)\)", getattr(constraint, "sql", ""), re.S)
        if found is None:
            raise SystemExit(f"{field}: constraint {constraint!r} must be frozen by hand")
        checks.append(f"Check({_q(found.group(1))})")
    if checks:
        names.add("Check")
        args.append(f"constraints=[{', '.join(checks)}]")
    if field.collation or field.sequence:
        raise SystemExit(f"{field}: collation/sequence must be frozen by hand")
    return _pack(call, args, ")", " " * len(call))


def _pack(head: str, items: list[str], tail: str, indent: str) -> str:
    """``head`` + the items joined by commas + ``tail``, lines broken before 100 characters."""
    lines, line = [], head
    for i, item in enumerate(items):
        piece = item + ("," if i < len(items) - 1 else tail)
        if line not in (head, indent) and len(line) + 1 + len(piece) > 99:
            lines.append(line.rstrip())
            line = indent
        line += ("" if line in (head, indent) else " ") + piece
    if not items:
        line += tail
    return "\n".join(lines + [line])


def _q(text: str) -> str:
    """A string literal in the house style (double quotes)."""
    return f'"{text}"' if re.fullmatch(r"[^\"\\\n]*", text) else repr(text)


def main(argv: list[str]) -> int:
    if len(argv) != 2 or ":" not in argv[0]:
        print(__doc__, file=sys.stderr)
        return 2
    module, _, attr = argv[0].partition(":")
    found = getattr(importlib.import_module(module), attr)
    models = [found] if isinstance(found, type) else list(found)
    sys.stdout.write(freeze(models, argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
