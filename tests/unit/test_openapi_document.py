"""The OpenAPI document the API serves at GET /openapi.json: generated from the
routes, it lists every route of the HTTP API (ARCHITECTURE.md's and ours) with
its methods, and says which ones need an API token."""

from __future__ import annotations

import json
from typing import Any

import pytest

from upload_api.handlers.api import openapi_document

# ARCHITECTURE.md's HTTP API: uploads (one presigned POST, or multipart), jobs, the web page.
ARCHITECTURE_ROUTES = {
    "/uploads": {"post"},
    "/uploads/{job_id}/parts": {"get", "post"},
    "/uploads/{job_id}/complete": {"post"},
    "/uploads/{job_id}": {"delete"},
    "/jobs": {"get"},
    "/jobs/{job_id}": {"get", "patch", "delete"},  # PATCH renames, DELETE deletes (issue 15)
    "/": {"get"},
}
# Ours on top: a job's timeline, webhooks, and the outputs players fetch with a grant.
OUR_ROUTES = {
    "/jobs/{job_id}/events": {"get"},
    "/webhooks": {"get", "post"},
    "/webhooks/{webhook_id}": {"delete"},
    "/jobs/{job_id}/hls/master.m3u8": {"get"},
    "/jobs/{job_id}/hls/{rendition}/index.m3u8": {"get"},
    "/jobs/{job_id}/hls/{playlist}": {"get"},
    "/jobs/{job_id}/thumbnails/storyboard.vtt": {"get"},
}
# Reached without a token (the template's public routes): the page and the granted outputs.
PUBLIC_PATHS = {"/", *(path for path in OUR_ROUTES if "/hls/" in path or "/thumbnails/" in path)}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(openapi_document())
    return parsed


def test_GIVEN_the_api_WHEN_its_document_is_generated_THEN_every_route_is_listed_with_its_methods(
    document: dict[str, Any],
) -> None:
    listed = {path: set(operations) for path, operations in document["paths"].items()}

    assert listed == {**ARCHITECTURE_ROUTES, **OUR_ROUTES}
    assert document["openapi"].startswith("3.")


def test_GIVEN_the_document_WHEN_read_THEN_only_the_public_routes_go_without_the_api_token(
    document: dict[str, Any],
) -> None:
    security = {
        (path, method): operation.get("security")
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    }

    for (path, method), needs in security.items():
        expected = None if path in PUBLIC_PATHS else [{"api_token": []}]
        assert needs == expected, f"{method.upper()} {path}"
    assert document["components"]["securitySchemes"]["api_token"]["scheme"] == "bearer"


def test_GIVEN_the_upload_route_WHEN_documented_THEN_its_body_names_the_fields_a_client_sends(
    document: dict[str, Any],
) -> None:
    body = document["paths"]["/uploads"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    schema = document["components"]["schemas"][body["$ref"].rpartition("/")[2]]

    # A file to upload, or a video to import from a URL: one or the other.
    assert [set(shape["required"]) for shape in schema["oneOf"]] == [
        {"filename", "content_type", "size"},
        {"source_url"},
    ]
    assert {"filename", "content_type", "size", "source_url"} <= set(schema["properties"])


def test_GIVEN_the_upload_route_WHEN_documented_THEN_title_and_passthrough_are_optional_and_bounded(
    document: dict[str, Any],
) -> None:
    body = document["paths"]["/uploads"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    schema = document["components"]["schemas"][body["$ref"].rpartition("/")[2]]

    assert {"title", "passthrough"} <= set(schema["properties"]) and not {"title", "passthrough"} & set(
        # Since imports by source_url, no field of the upload body is required in the schema itself.
        schema.get("required", [])
    )
    assert "200" in json.dumps(schema["properties"]["title"]) and "255" in json.dumps(
        schema["properties"]["passthrough"]
    )
