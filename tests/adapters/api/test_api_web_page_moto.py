"""The web page and its files, the OpenAPI document, and the 404 of anything else."""

from __future__ import annotations

import base64
import gzip
from pathlib import Path
from typing import Any

import pytest

from tests.adapters.api.api_requests import (
    Aws,
    FakeLambdaContext,
    call_json,
    http_event,
)

STATIC = Path(__file__).parents[3] / "upload_api" / "web" / "static"

# ------------------------------------------------------------------ web page


def fetch(path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    """GET ``path`` as a browser with ``headers`` (and no Accept-Encoding unless given):
    status, headers and the body's bytes as sent (still gzipped if it was)."""
    from upload_api.handlers.api import lambda_handler

    event: dict[str, Any] = http_event("GET", path, user=None)
    event["headers"].pop("accept-encoding", None)
    event["headers"].update({name.replace("_", "-"): value for name, value in headers.items()})
    response = lambda_handler(event, FakeLambdaContext())
    body = response.get("body") or ""
    raw = base64.b64decode(body) if response.get("isBase64Encoded") else body.encode()
    return response["statusCode"], {k.lower(): v for k, v in (response.get("headers") or {}).items()}, raw


def test_GIVEN_the_root_path_WHEN_requested_THEN_the_web_page_as_html_revalidated_each_time(aws: Aws) -> None:
    status, headers, body = fetch("/")

    assert status == 200
    assert headers["content-type"].startswith("text/html")
    assert "<html" in body.decode().lower()
    assert headers["cache-control"] == "no-cache"


def test_GIVEN_the_app_script_WHEN_requested_THEN_javascript_kept_for_minutes(aws: Aws) -> None:
    status, headers, body = fetch("/static/app.js")

    assert status == 200
    assert "javascript" in headers["content-type"]
    assert body == (STATIC / "app.js").read_bytes()
    assert headers["cache-control"] == "public, max-age=300"
    assert "content-encoding" not in headers


def test_GIVEN_a_browser_that_accepts_gzip_WHEN_hls_js_requested_THEN_gzipped_and_a_third_of_the_size(
    aws: Aws,
) -> None:
    status, headers, body = fetch("/static/vendor/hls.min.js", accept_encoding="gzip, deflate, br")

    original = (STATIC / "vendor" / "hls.min.js").read_bytes()
    assert status == 200
    assert headers["content-encoding"] == "gzip"
    assert headers["vary"] == "Accept-Encoding"
    assert gzip.decompress(body) == original
    assert len(body) < len(original) / 3


def test_GIVEN_the_etag_of_a_file_WHEN_requested_again_with_it_THEN_304_without_a_body(aws: Aws) -> None:
    _, first, _ = fetch("/static/style.css")

    status, headers, body = fetch("/static/style.css", if_none_match=first["etag"])
    changed, _, again = fetch("/static/style.css", if_none_match='"an-older-version"')

    assert status == 304
    assert body == b""
    assert headers["etag"] == first["etag"]
    assert (changed, again) == (200, (STATIC / "style.css").read_bytes())


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
