"""The web page (upload form, progress, player) and its scripts and styles,
served from upload_api/web without a token."""

from __future__ import annotations

import mimetypes
from pathlib import Path

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

WEB_ROOT = Path(__file__).resolve().parent.parent / "web"

router = APIGatewayHttpRouter()


@router.get("/")
def get_web_page() -> Response[str]:
    return _static_file(WEB_ROOT / "index.html")


# The page's own files are not part of the API's document.
@router.get("/static/<name>", include_in_schema=False)
def get_static(name: str) -> Response[str]:
    return _static_file(WEB_ROOT / "static" / name)


@router.get("/static/vendor/<name>", include_in_schema=False)
def get_vendor_static(name: str) -> Response[str]:
    return _static_file(WEB_ROOT / "static" / "vendor" / name)


def _static_file(path: Path) -> Response[str]:
    resolved = path.resolve()
    if not resolved.is_file() or WEB_ROOT.resolve() not in resolved.parents:
        raise NotFoundError(f"no file {path.name}")
    content_type = mimetypes.guess_type(resolved.name)[0] or "application/octet-stream"
    if content_type.startswith("text/") or content_type in {"application/javascript", "text/javascript"}:
        content_type += "; charset=utf-8"
    return Response(status_code=200, content_type=content_type, body=resolved.read_text(encoding="utf-8"))
