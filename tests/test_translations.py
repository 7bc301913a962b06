"""Every message a customer can meet, in Simplified Chinese: the Python side (problem+json
titles and details, field messages, marshmallow's own messages, email subjects, reasons) and
the templates (no literal text outside ``_()`` / ``{% trans %}``).

The catalogue tests themselves (every message id extracted, every one translated) are in
tests/test_i18n.py; the ones here find the text that never became a message id.
"""

from __future__ import annotations

import ast
import copy
import inspect
import pickle
import re
from datetime import timedelta
from pathlib import Path

import jinja2
import marshmallow
import pytest
from marshmallow import fields, validate

from engine.db import utcnow
from engine.field_messages import MESSAGES, translate_filled
from engine.i18n import Message, N_, Translator, translate
from engine.models import Product, Service, User
from engine.testing import Client, problem, seed_people

ROOT = Path(__file__).resolve().parent.parent
ZH = {"Accept-Language": "zh-CN"}
CJK = re.compile(r"[\u4e00-\u9fff]")
CATALOGUE = Translator().get("zh_Hans")


def zh(message: str) -> str:
    return CATALOGUE.gettext(message)


def chinese(text: str) -> bool:
    return bool(CJK.search(text))


# -- the mechanism ---------------------------------------------------------------------


def test_a_marked_message_reads_as_english_and_translates_with_its_values():
    message = N_("At most %(limit)s events per batch.", limit=500)
    assert message == "At most 500 events per batch."
    assert translate(message, CATALOGUE.gettext) == zh("At most %(limit)s events per batch.") % {
        "limit": 500
    }
    assert "500" in translate(message, CATALOGUE.gettext)
    # marshmallow deep-copies fields (and their messages) for every schema instance
    for copied in (copy.deepcopy(message), pickle.loads(pickle.dumps(message))):
        assert isinstance(copied, Message) and copied.variables == {"limit": 500}


def test_a_marked_value_inside_a_message_is_translated_too():
    inner = N_("Not found")
    outer = N_("%(title)s. %(detail)s", title=inner, detail="C-100")
    assert translate(outer, CATALOGUE.gettext) == zh("%(title)s. %(detail)s") % {
        "title": zh("Not found"),
        "detail": "C-100",  # not a marked message: a value, shown as it is
    }


def test_text_that_is_no_message_comes_back_unchanged():
    for text in ("Alice Example", "C-100", "", "50%"):
        assert translate(text, CATALOGUE.gettext) == text
    assert translate({"a": ["Alice"], "b": {"c": 3}}, CATALOGUE.gettext) == {
        "a": ["Alice"],
        "b": {"c": 3},
    }


# -- marshmallow's own messages ------------------------------------------------------------


class _Blank(dict):
    def __missing__(self, key):
        return "{" + key + "}"


def marshmallow_messages() -> set[str]:
    """Every message marshmallow can write, with the structure it fills in when a field or
    validator is made (a date field's kind, "greater than or equal to") and the values it
    fills in on each error left as ``{name}``."""
    found: set[str] = set()
    for cls in vars(fields).values():
        if inspect.isclass(cls) and issubclass(cls, fields.Field):
            for message in getattr(cls, "default_error_messages", {}).values():
                message = re.sub(r"\{(\w+)![rsa]\}", r"{\1}", message)  # "{input!r}"
                for awareness in ("aware", "naive"):
                    found.add(
                        message.format_map(
                            _Blank(
                                obj_type=getattr(cls, "OBJ_TYPE", "{obj_type}"),
                                awareness=awareness,
                            )
                        )
                    )
    found |= set(marshmallow.Schema._default_error_messages.values())
    r = validate.Range
    for low in (r.message_gte, r.message_gt):
        found.add(r.message_min.format(min_op=low))
        for high in (r.message_lte, r.message_lt):
            found.add(r.message_all.format(min_op=low, max_op=high))
    for high in (r.message_lte, r.message_lt):
        found.add(r.message_max.format(max_op=high))
    for cls in vars(validate).values():
        if inspect.isclass(cls) and issubclass(cls, validate.Validator) and cls is not r:
            for name, value in vars(cls).items():
                if name.startswith(("message", "default_message")) and isinstance(value, str):
                    found.add(value)
    return {m for m in found if "{obj_type}" not in m}


def test_every_marshmallow_message_is_listed_for_translation():
    """A marshmallow upgrade that adds a message fails here until engine/field_messages.py
    lists it (and the zh_Hans catalogue translates it)."""
    missing = sorted(marshmallow_messages() - set(MESSAGES))
    assert not missing, f"add these to engine.field_messages.MESSAGES: {missing}"


def test_filled_in_marshmallow_messages_translate_with_their_values():
    for english, values in [
        ("Longer than maximum length 500.", ["500"]),
        ("Must be greater than or equal to 1 and less than or equal to 100.", ["1", "100"]),
        ("Must be one of: monthly, weekly.", ["monthly, weekly"]),
        ('"tomorrow" cannot be formatted as a datetime.', ["tomorrow"]),
        ("Missing data for required field.", []),
    ]:
        text = translate(english, CATALOGUE.gettext)
        assert chinese(text) and all(v in text for v in values), (english, text)
    assert translate_filled("Alice said: Longer than maximum", CATALOGUE.gettext) == (
        "Alice said: Longer than maximum"
    )


BRACES = re.compile(r"\{(\w+)\}")


def test_marshmallow_translations_keep_their_values():
    for message in MESSAGES:
        assert set(BRACES.findall(zh(message))) == set(BRACES.findall(message)), message


# -- answers in the visitor's language -------------------------------------------------------


@pytest.fixture
def people(make_app):
    app = make_app()
    app.demo = seed_people(app)
    return app


def both(client: Client, method: str, path: str, **kw) -> tuple[dict, dict]:
    """The problem answered in English and in Chinese."""
    en = problem(client.request(method, path, **kw))
    cn = problem(client.request(method, path, headers=ZH, **kw))
    return en, cn


def test_problem_titles_and_details_answer_in_chinese(people):
    client = Client(people)
    for method, path, kw in [
        ("GET", "/api/v1/account", {}),  # sign in required
        ("GET", "/api/v1/no-such-thing", {}),  # Falcon's own 404
        ("POST", "/api/v1/auth/login", {"body": "{", "headers": {"Content-Type": "text/plain"}}),
    ]:
        headers = kw.pop("headers", {})
        en = problem(client.request(method, path, headers=headers, **kw))
        cn = problem(client.request(method, path, headers={**headers, **ZH}, **kw))
        assert cn["status"] == en["status"] and cn["type"] == en["type"], path
        assert cn["title"] == zh(en["title"]) and chinese(cn["title"]), (path, cn)
        if "detail" in en:
            assert chinese(cn["detail"]), (path, cn)


def test_validation_errors_answer_in_chinese_marshmallow_messages_included(people):
    client = Client(people)
    en, cn = both(client, "POST", "/api/v1/auth/login", json={"password": 5})
    assert en["errors"]["email"] == ["Missing data for required field."]
    assert cn["errors"]["email"] == [zh("Missing data for required field.")]
    assert cn["errors"]["password"] == [zh("Not a valid string.")]
    assert cn["title"] == zh(en["title"]) and chinese(cn["detail"])


def test_a_message_with_values_answers_in_chinese_with_the_values(make_app):
    app = make_app(web={"max_body_bytes": 1024})
    en, cn = both(Client(app), "POST", "/api/v1/auth/login", json={"email": "x" * 2048})
    assert en["detail"] == "Send at most 1024 bytes."
    assert cn["detail"] == zh("Send at most %(limit)s bytes.") % {"limit": 1024}
    assert chinese(cn["errors"]["_schema"][0]) and "1024" in cn["errors"]["_schema"][0]


def test_a_refused_form_shows_its_messages_in_chinese(people):
    client = Client(people)
    page = client.post(
        "/login",
        form={"email": "alice@example.com", "password": "not her password"},
        headers=ZH,
    )
    assert page.status_code in (200, 401, 422)
    assert zh("The email or password is not right.") in page.text
    assert "The email or password is not right." not in page.text
    # marshmallow's own message with its values filled in: "Length must be between 3 and 254."
    blank = client.post("/login", form={"email": "", "password": ""}, headers=ZH)
    assert zh("Length must be between {min} and {max}.").format(min=3, max=254) in blank.text
    assert zh("Enter a valid email address.") in blank.text


# -- emails and the reasons they give --------------------------------------------------------


def test_an_expired_service_tells_a_chinese_customer_in_chinese(people):
    """The "expired" reason, and the subject, in the customer's language (the email plugin
    renders each delivery in the language of its recipient)."""
    from plugins.email.models import EmailDelivery
    from plugins.email.tasks import render
    from plugins.services import service as rules

    alice = User.get(User.email == "alice@example.com")
    User.update(locale="zh_Hans").where(User.id == alice.id).execute()
    product = Product.get_or_create(code="mob-30", defaults={"name": "Mobile 30"})[0]
    line = Service.create(
        customer=people.demo["customers"]["alice"],
        product=product,
        name="Line 42",
        status="active",
        expires_at=utcnow() - timedelta(hours=1),
        auto_renew=False,
    )
    assert rules.expire(people, line.id)
    delivery = EmailDelivery.get(
        (EmailDelivery.kind == "service_deactivated") & (EmailDelivery.user_id == alice.id)
    )
    assert delivery.locale == "zh_Hans"
    subject, text, html = render(people, delivery)
    assert subject == zh("%(service)s is no longer active") % {"service": "Line 42"}
    assert zh("The service reached its end date.") in text
    assert zh("expired") in text and "expired" not in text
    assert html is not None and zh("The service reached its end date.") in html


# -- no message left unmarked -----------------------------------------------------------------

#: Where a message meets a reader: problems, field errors, validators' messages.
RAISERS = {"Problem", "invalid", "ValidationError", "UnsafeURL", "UnresolvableURL"}
#: Settings (the engine's, a plugin's ``settings.py``) are checked by ``portico check`` for
#: the operator, in the terminal, in English.
NOT_SHOWN_TO_READERS = "settings.py"


def _unmarked(node: ast.AST | None) -> list[ast.AST]:
    """String literals and f-strings in ``node`` (a message, or a dict/list of them) that are
    not wrapped in ``N_()``/``_()``."""
    if node is None:
        return []
    if isinstance(node, ast.Call) and getattr(node.func, "id", "") in ("N_", "_"):
        return []
    if isinstance(node, ast.JoinedStr):
        return [node]
    if isinstance(node, ast.Constant):
        return [node] if isinstance(node.value, str) and node.value.strip() else []
    if isinstance(node, ast.Dict):
        return [n for v in node.values for n in _unmarked(v)]
    if isinstance(node, ast.DictComp):
        return _unmarked(node.value)
    if isinstance(node, (ast.List, ast.Tuple)):
        return [n for v in node.elts for n in _unmarked(v)]
    if isinstance(node, ast.IfExp):
        return _unmarked(node.body) + _unmarked(node.orelse)
    return []


def _messages_in(node: ast.Call) -> list[ast.AST | None]:
    name = getattr(node.func, "id", None) or getattr(node.func, "attr", "")
    kw = {k.arg: k.value for k in node.keywords if k.arg}
    found: list[ast.AST | None] = [kw.get("error_messages")]
    if getattr(node.func, "value", None) is not None and getattr(node.func.value, "id", "") == (
        "validate"
    ):
        found.append(kw.get("error"))  # validate.Range(..., error="...")
    if name == "Problem":
        found += [*node.args[1:3], kw.get("title"), kw.get("detail"), kw.get("errors")]
    elif name == "invalid":
        found += [*node.args[:2], kw.get("title")]
    elif name in RAISERS:
        found += node.args[:1]
    elif name.startswith("HTTP"):
        found += [kw.get("title"), kw.get("description")]
    return found


def test_every_message_a_reader_can_meet_is_marked_for_translation():
    """A problem's title or detail, a field message, a validator's error: ``N_("...")`` (with
    ``%(name)s`` values, never an f-string), so it is extracted and shown translated."""
    unmarked = []
    for folder in ("engine", "plugins"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if "migrations" in path.parts or "scaffold" in path.parts:
                continue
            if path.name == NOT_SHOWN_TO_READERS:
                continue
            source = path.read_text(encoding="utf-8")
            for node in ast.walk(ast.parse(source)):
                candidates: list[ast.AST | None] = []
                if isinstance(node, ast.Call):
                    candidates = _messages_in(node)
                elif isinstance(node, ast.Assign) and any(
                    isinstance(t, ast.Subscript)
                    and getattr(t.value, "id", "") == "errors"
                    or getattr(t, "id", "") == "errors"
                    for t in node.targets
                ):
                    candidates = [node.value]
                for candidate in candidates:
                    for bad in _unmarked(candidate):
                        text = ast.get_source_segment(source, bad) or ""
                        unmarked.append(f"{relative}:{bad.lineno}: {text[:70]}")
    assert not unmarked, "wrap these in N_() (values as %(name)s keywords):\n" + "\n".join(unmarked)


# -- templates ------------------------------------------------------------------------------

#: Literal text a template may show as it is: names and symbols, the same in every language.
ALLOWED_LITERALS = {"Portico"}
TEMPLATE_GLOBS = (
    "themes/*/templates/**/*.html",
    "themes/*/templates/**/*.txt",
    "plugins/*/templates/**/*.html",
    "plugins/*/templates/**/*.txt",
)
HOLE = "\x00"
NOT_TEXT = re.compile(r"<(script|style|code|pre)\b.*?</\1\s*>|<!--.*?-->", re.S | re.I)
TAG = re.compile(r"<[^>]*>", re.S)
SPOKEN_ATTRIBUTES = re.compile(
    r"""\b(alt|title|placeholder|aria-label|label)\s*=\s*("[^"]*"|'[^']*')""", re.I
)
ENTITY = re.compile(r"&#?\w+;")
LETTER = re.compile(r"[^\W\d_]")
LEXER = jinja2.Environment(extensions=["jinja2.ext.i18n"], trim_blocks=True, lstrip_blocks=True)


def template_text(source: str) -> str:
    """The template's literal text, every tag, expression and ``{% trans %}`` block a hole."""
    out: list[str] = []
    in_trans, previous = 0, None
    for _, kind, value in LEXER.lex(source):
        if kind == "data":
            if not in_trans:
                out.append(value)
            continue
        if kind == "name" and previous == "block_begin":
            in_trans += {"trans": 1, "endtrans": -1}.get(value, 0)
        if not out or out[-1] != HOLE:
            out.append(HOLE)
        if kind != "whitespace":
            previous = kind
    return "".join(out)


def literal_text(source: str, html: bool) -> list[str]:
    """Pieces of text with letters a reader would see (or hear) untranslated."""
    text, found = template_text(source), []
    if html:
        text = NOT_TEXT.sub(HOLE, text)
        for tag in TAG.findall(text):
            for _, value in SPOKEN_ATTRIBUTES.findall(tag):
                found += value[1:-1].split(HOLE)
        text = ENTITY.sub(" ", TAG.sub(HOLE, text))
    found += text.split(HOLE)
    pieces = (" ".join(piece.split()) for piece in found)
    return [p for p in pieces if LETTER.search(p) and p not in ALLOWED_LITERALS]


def test_literal_text_is_found():
    assert literal_text("<p>Hello {{ name }}</p>", html=True) == ["Hello"]
    assert literal_text('<input placeholder="Your name">', html=True) == ["Your name"]
    assert literal_text("<p>{% trans %}Hello {{ name }}{% endtrans %}</p>", html=True) == []
    assert literal_text('<a href="/x/{{ id }}" class="b">{{ _("Go") }}</a>', html=True) == []
    assert literal_text("<code>Authorization: Bearer</code>&nbsp;·", html=True) == []
    assert literal_text("{{ _('Subject') }}\nDear customer,", html=False) == ["Dear customer,"]


def test_templates_have_no_untranslated_text():
    """Every word a template shows goes through ``_()`` or ``{% trans %}`` (email text
    parts included); only ``ALLOWED_LITERALS`` may stand as they are."""
    untranslated = {}
    for pattern in TEMPLATE_GLOBS:
        for path in sorted(ROOT.glob(pattern)):
            found = literal_text(path.read_text(encoding="utf-8"), html=path.suffix == ".html")
            if found:
                untranslated[path.relative_to(ROOT).as_posix()] = found
    assert not untranslated, f"wrap in _() or {{% trans %}}: {untranslated}"
