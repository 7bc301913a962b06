"""The appearance switch: light, dark or as the device, remembered in a cookie (issue 18)."""

from __future__ import annotations

import re

import pytest

DARK = re.compile(r'<link rel="stylesheet" href="/static/css/[^"]*dark\.css[^"]*"([^>]*)>')


def dark_links(html: str) -> list[str]:
    """The media attribute of each dark stylesheet the page loads ("" when unconditional)."""
    return [m.group(1).strip() for m in DARK.finditer(html)]


@pytest.mark.spec("MOB-1")
def test_the_device_decides_until_the_visitor_chooses(client):
    page = client.get("/").text
    assert '<meta name="color-scheme" content="light dark">' in page
    assert dark_links(page) == ['media="(prefers-color-scheme: dark)"']

    answer = client.post("/appearance", form={"scheme": "dark", "next": "/login?x=1"})
    assert answer.status_code == 303 and answer.headers["location"].endswith("/login?x=1")
    cookie = answer.cookies["scheme"]
    assert cookie.value == "dark" and cookie.http_only and cookie.same_site == "Lax"
    assert cookie.max_age == 365 * 24 * 3600
    page = client.get("/").text
    assert '<meta name="color-scheme" content="dark">' in page
    assert dark_links(page) == [""]  # dark whatever the device says
    assert '<option value="dark" selected>' in page

    client.post("/appearance", form={"scheme": "light"})
    page = client.get("/").text
    assert '<meta name="color-scheme" content="light">' in page and dark_links(page) == []


def test_the_switch_needs_the_csrf_token_and_a_known_scheme(client):
    client.get("/")
    assert client.post("/appearance", form={"scheme": "dark"}, csrf=False).status_code == 403
    for bad in ["", "sepia", "dark\x00", "x" * 10_000]:
        answer = client.post("/appearance", form={"scheme": bad})
        assert answer.status_code == 400 and "scheme" not in answer.cookies
        assert "Choose one of: system, light, dark" in answer.text


def test_a_forged_cookie_falls_back_to_the_device(client):
    page = client.get("/", headers={"Cookie": 'scheme="><script>'}).text
    assert '<meta name="color-scheme" content="light dark">' in page and "<script>\"" not in page


def test_the_switch_goes_back_only_within_the_portal(client):
    answer = client.post("/appearance", form={"scheme": "dark", "next": "https://evil.example/"})
    assert answer.status_code == 303 and "evil.example" not in answer.headers["location"]
