"""The web page (upload form, progress, player) and its scripts and styles,
served from upload_api/web without a token.

Each file is read and gzipped once per container, not per request, and answered
with an ETag: a browser that has it gets a 304 without the body. The page itself
is revalidated on every load (it names the scripts); the scripts and styles may
be kept a few minutes (their names carry no version, so not longer: a deploy
must reach a browser within minutes)."""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

WEB_ROOT = Path(__file__).resolve().parent.parent / "web"
PAGE_CACHE_CONTROL = "no-cache"
STATIC_CACHE_CONTROL = "public, max-age=300"
# Smaller than this, gzip saves less than its own header costs.
GZIP_MIN_BYTES = 1024

router = APIGatewayHttpRouter()


@dataclass(frozen=True)
class StaticFile:
    content_type: str
    body: bytes
    gzipped: bytes | None
    etag: str


# No return annotations on these routes: the resolver's response validation
# would serialise a gzipped body as text. Unannotated, non-JSON answers pass as they are.
@router.get("/")
def get_web_page():
    return _answer(WEB_ROOT / "index.html", PAGE_CACHE_CONTROL)


# The page's own files are not part of the API's document.
@router.get("/static/<name>", include_in_schema=False)
def get_static(name: str):
    return _answer(WEB_ROOT / "static" / name, STATIC_CACHE_CONTROL)


@router.get("/static/vendor/<name>", include_in_schema=False)
def get_vendor_static(name: str):
    return _answer(WEB_ROOT / "static" / "vendor" / name, STATIC_CACHE_CONTROL)


def _answer(path: Path, cache_control: str) -> Response[Any]:
    resolved = path.resolve()
    if not resolved.is_file() or WEB_ROOT.resolve() not in resolved.parents:
        raise NotFoundError(f"no file {path.name}")
    static = _read(resolved)
    headers = {"Cache-Control": cache_control, "ETag": static.etag, "Vary": "Accept-Encoding"}
    headers_in = router.current_event.headers or {}
    if static.etag in headers_in.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    if static.gzipped is not None and "gzip" in headers_in.get("accept-encoding", ""):
        # Bytes: the resolver sends them base64-encoded, as API Gateway wants binary bodies.
        headers["Content-Encoding"] = "gzip"
        return Response(status_code=200, content_type=static.content_type, body=static.gzipped, headers=headers)
    return Response(status_code=200, content_type=static.content_type, body=static.body.decode(), headers=headers)


@cache
def _read(path: Path) -> StaticFile:
    """The file, gzipped and tagged, once per container (the files change only with a deploy)."""
    body = path.read_bytes()
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if content_type.startswith("text/") or content_type in {"application/javascript", "text/javascript"}:
        content_type += "; charset=utf-8"
    gzipped = gzip.compress(body, compresslevel=9, mtime=0) if len(body) >= GZIP_MIN_BYTES else None
    return StaticFile(content_type, body, gzipped, etag=f'"{hashlib.sha256(body).hexdigest()[:32]}"')
