"""The core answers: health, the OpenAPI document, the home page, problem+json."""

import pytest

from engine.testing import problem


def test_healthz_reports_database_and_broker(client):
    result = client.get("/healthz")
    assert result.status_code == 200
    assert result.json["database"] == "ok" and result.json["broker"] == "ok"


@pytest.mark.spec("ENG-1")
def test_openapi_document_tags_operations_by_plugin(client):
    doc = client.get("/api/v1/openapi.json").json
    assert doc["openapi"] == "3.1.0"
    assert doc["paths"]["/dashboard"]["get"]["tags"] == ["dashboard"]


def test_unknown_path_is_problem_json_404(client):
    body = problem(client.get("/api/v1/nothing-here"))
    assert body["status"] == 404 and body["type"] == "/problems/not-found"


def test_api_needs_a_principal(client):
    assert problem(client.get("/api/v1/dashboard"))["status"] == 401


def test_client_ip_trusts_forwarded_for_only_from_configured_proxies(make_app):
    from engine.middleware import client_ip

    class Req:
        def __init__(self, remote, xff):
            self.remote_addr, self.xff = remote, xff

        def get_header(self, name):
            return self.xff

    proxies = {"10.0.0.1"}
    assert client_ip(Req("10.0.0.1", "203.0.113.9"), proxies) == "203.0.113.9"
    # A client cannot pick its address by sending the header itself...
    assert client_ip(Req("198.51.100.7", "1.2.3.4"), proxies) == "198.51.100.7"
    # ...nor by prepending a forged hop in front of what our proxy appended.
    assert client_ip(Req("10.0.0.1", "1.2.3.4, 203.0.113.9"), proxies) == "203.0.113.9"
    assert client_ip(Req("10.0.0.1", None), proxies) == "10.0.0.1"
