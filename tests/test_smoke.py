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
