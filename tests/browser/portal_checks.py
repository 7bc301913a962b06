"""What every portal page must pass in a browser, and quick sign-in for the portal suite.

- ``signed_in(new_page, live_server, email, viewport)``: a page already signed in (one API
  sign-in per user and server, its session cookie reused: the sign-in rate limit stays out of
  the way, and the sign-in form itself is tested in test_identity_browser.py).
- ``check_page(page, live_server)``: axe-core finds no serious or critical WCAG 2.2 A/AA
  violation, nothing is wider than the screen, no request leaves the portal's host, and the
  HTML is under 100 KB. Returns the page's weights for the report.

axe-core comes from the npm registry: ``npm ci`` in tests/browser (package.json there).
"""

from __future__ import annotations

import json
import time
import urllib.request
from email.header import decode_header, make_header
from pathlib import Path
from urllib.parse import urlparse

from engine.testing import need_service

AXE = Path(__file__).resolve().parent / "node_modules" / "axe-core" / "axe.min.js"
#: WCAG 2.0/2.1/2.2 A and AA rules, plus axe's best practices (landmarks, headings, regions).
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]
HTML_LIMIT = 100 * 1024
#: How long to wait for the demo's background worker (one thread) to finish something: under
#: CI load it has been seen to take tens of seconds. Only a deadline: waits end when done.
WORKER_DEADLINE_MS = 90_000
_sessions: dict[tuple[str, str], list[dict]] = {}


def wait_until(target, expression: str, arg=None, timeout: float = 15.0) -> None:
    """Until `expression` (a JavaScript function) is true on a page or element.

    Playwright's own wait_for_function compiles its predicate with eval inside the page, which
    the portal's Content-Security-Policy forbids once the first check has passed; evaluate()
    goes through DevTools and is allowed, so this polls with it instead."""
    deadline = time.monotonic() + timeout
    while not (
        target.evaluate(expression, arg) if arg is not None else target.evaluate(expression)
    ):
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout:g} s: {expression}")
        time.sleep(0.05)


def axe_source() -> str:
    if not AXE.is_file():
        need_service(
            "axe-core",
            FileNotFoundError(f"{AXE} is missing: run `npm ci` in {AXE.parent.parent.parent}"),
        )
    return AXE.read_text(encoding="utf-8")


def session_cookies(live_server, email: str) -> list[dict]:
    """Cookies of a fresh portal session for ``email`` (signed in through the JSON API)."""
    key = (live_server.url, email)
    if key not in _sessions:
        request = urllib.request.Request(
            live_server.url + "/api/v1/auth/login",
            method="POST",
            data=json.dumps({"email": email, "password": live_server.password}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 200
            cookies = [
                c.split(";", 1)[0].split("=", 1) for c in answer.headers.get_all("Set-Cookie")
            ]
        _sessions[key] = [{"name": n, "value": v, "url": live_server.url} for n, v in cookies]
    return _sessions[key]


def sign_in(page, live_server, email: str, password: str | None = None, *, home: bool = True):
    """Through the login form, as a person does; waits for the dashboard unless ``home`` is
    False (a wrong password, or a second step such as 2FA, comes next)."""
    page.goto(live_server.url + "/login")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(password or live_server.password)
    page.get_by_role("button", name="Sign in").click()
    if home:
        page.wait_for_url(live_server.url + "/")


def subject_of(message) -> str:
    return str(make_header(decode_header(message["Subject"])))


def body_text(message) -> str:
    part = next(p for p in message.walk() if p.get_content_type() == "text/plain")
    return part.get_payload(decode=True).decode()


def wait_for_mail(
    live_server, subject: str, to: str | None = None, timeout: float = WORKER_DEADLINE_MS / 1000
):
    """The first email whose subject holds ``subject`` (sent to ``to``, when given): the demo's
    in-process worker writes each as an .eml file into the mail folder."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in live_server.mails():
            if subject in subject_of(message) and (to is None or to in str(message["To"])):
                return message
        time.sleep(0.2)
    raise AssertionError(
        f"no email '{subject}' to {to or 'anyone'}; got "
        f"{[(str(m['To']), subject_of(m)) for m in live_server.mails()]}"
    )


def signed_in(new_page, live_server, email: str, viewport: str = "desktop", **options):
    page = new_page(viewport, **options)
    page.context.add_cookies(session_cookies(live_server, email))
    return page


def api_get(live_server, email: str, path: str) -> dict:
    """A JSON API answer for ``email`` (to find ids the pages show)."""
    cookie = "; ".join(f"{c['name']}={c['value']}" for c in session_cookies(live_server, email))
    status, _, body = live_server.get(
        path, headers={"Cookie": cookie, "Accept": "application/json"}
    )
    assert status == 200, (path, status, body[:300])
    return json.loads(body)


def axe_violations(page, impacts=("serious", "critical"), within: str | None = None) -> list[str]:
    """axe-core's violations of the given impacts on the page as it is now, one line each;
    ``within``: only inside the element that CSS selector names (e.g. a menu opened over the
    page, which axe would otherwise report as covering the links under it)."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(axe_source())  # through DevTools: the page's CSP does not apply
    found = page.evaluate(
        """async ([tags, within]) => {
        const result = await axe.run(within ? {include: [within]} : document,
                                     {runOnly: {type: "tag", values: tags},
                                                resultTypes: ["violations"]});
        return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.slice(0, 5).map(n => n.target.join(" "))}));
    }""",
        [AXE_TAGS, within],
    )
    return [
        f"{v['impact']} {v['id']} ({v['help']}): {', '.join(v['nodes'])}"
        for v in found
        if v["impact"] in impacts
    ]


def assert_accessible(page, within: str | None = None) -> None:
    problems = axe_violations(page, within=within)
    assert not problems, f"axe-core on {page.url}:\n" + "\n".join(problems)


def assert_fits_the_screen(page) -> None:
    width = page.viewport_size["width"]
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width, f"{page.url} is {scroll}px wide on a {width}px screen"


def assert_only_own_host(live_server, urls: list[str]) -> None:
    own = urlparse(live_server.url).netloc
    foreign = [
        u
        for u in urls
        if urlparse(u).scheme in ("http", "https", "ws", "wss") and urlparse(u).netloc != own
    ]
    assert not foreign, f"requests to third-party hosts: {foreign}"


def page_weight(page) -> dict:
    """Bytes of the page's HTML and of the files it loaded (from the browser's timing entries)."""
    return page.evaluate("""() => {
        const doc = performance.getEntriesByType("navigation")[0];
        const files = performance.getEntriesByType("resource");
        return {html: doc ? doc.decodedBodySize : document.documentElement.outerHTML.length,
                files: files.reduce((sum, r) => sum + (r.decodedBodySize || 0), 0),
                requests: 1 + files.length};
    }""")


def check_page(page, live_server, requests_seen: list[str] | None = None) -> dict:
    """Every page-wide rule at once; returns the page's weights."""
    assert_accessible(page)
    assert_fits_the_screen(page)
    if requests_seen is not None:
        assert_only_own_host(live_server, requests_seen)
    weight = page_weight(page)
    assert 0 < weight["html"] < HTML_LIMIT, f"{page.url}: {weight['html']} bytes of HTML"
    return weight
