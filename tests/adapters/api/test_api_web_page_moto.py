"""The web page and its files, the OpenAPI document, and the 404 of anything else."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.adapters.api.api_requests import (
    Aws,
    call,
    call_json,
    http_event,
)

# ------------------------------------------------------------------ web page


def test_GIVEN_the_root_path_WHEN_requested_THEN_the_web_page_as_html(aws: Aws) -> None:
    status, headers, body = call(http_event("GET", "/"))

    assert status == 200
    assert headers["content-type"].startswith("text/html")
    assert "<html" in body.lower()


def test_GIVEN_the_app_script_WHEN_requested_THEN_javascript(aws: Aws) -> None:
    status, headers, body = call(http_event("GET", "/static/app.js"))

    assert status == 200
    assert "javascript" in headers["content-type"]
    assert body == (Path(__file__).parents[3] / "upload_api" / "web" / "static" / "app.js").read_text()


@pytest.mark.parametrize("path", ["/static/nope.js", "/static/..%2F..%2Fhandlers%2Fapi.py", "/nowhere"])
def test_GIVEN_a_missing_file_or_route_WHEN_requested_THEN_404(aws: Aws, path: str) -> None:
    status, body = call_json(http_event("GET", path))

    assert status == 404
    assert body["error"]["code"] == "NOT_FOUND"


def test_GIVEN_no_token_WHEN_the_openapi_document_is_requested_THEN_200_with_the_document(aws: Aws) -> None:
    status, document = call_json(http_event("GET", "/openapi.json", user=None))

    assert status == 200
    assert document["info"]["title"] == "vidpipe"
    assert "/uploads" in document["paths"]
