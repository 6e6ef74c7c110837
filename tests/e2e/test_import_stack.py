"""Import from a URL on the local stack: the sample clip, served by an HTTP
server started here on the one loopback port the stack allows (behind a
redirect), becomes a READY job through the same S3 event as an upload; a
missing file and a web page end their jobs FAILED with their own codes; the
metadata service, the stack's own endpoint and other loopback ports are
refused at registration (400), so nothing ever connects to them."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

pytestmark = [pytest.mark.stack, pytest.mark.ffmpeg]

SAMPLE = Path(__file__).resolve().parents[2] / "sample_media" / "tiny_160x90.mp4"


class SourceServer(BaseHTTPRequestHandler):
    requested: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        SourceServer.requested.append(self.path)
        if self.path == "/media/tiny.mp4":
            self._answer(200, "video/mp4", SAMPLE.read_bytes())
        elif self.path == "/share/tiny":
            self.send_response(302)
            self.send_header("Location", "/media/tiny.mp4")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/watch":
            self._answer(200, "text/html; charset=utf-8", b"<!doctype html><title>a player page</title>")
        else:
            self._answer(404, "text/plain", b"not here")

    def _answer(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def source_base(local_stack: Any) -> Iterator[str]:
    """The source server, on the one loopback port the stack's outbound rules allow."""
    SourceServer.requested = []
    server = ThreadingHTTPServer(("127.0.0.1", local_stack.webhook_receiver_port), SourceServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def import_url(local_stack: Any, url: str) -> requests.Response:
    # 120 s: run alone, this module's first call meets the API and authorizer functions cold.
    return local_stack.http.post(f"{local_stack.api_url}/uploads", json={"source_url": url}, timeout=120)


def finished_job(local_stack: Any, job_id: str, timeout_s: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job: dict[str, Any] = local_stack.http.get(f"{local_stack.api_url}/jobs/{job_id}", timeout=30).json()
        if job["status"] in ("READY", "FAILED", "EXPIRED"):
            return job
        time.sleep(1)
    raise AssertionError(f"job {job_id} did not finish within {timeout_s} s: {job}")


def test_GIVEN_a_clip_behind_a_redirect_WHEN_imported_THEN_the_job_becomes_ready_like_an_upload(
    local_stack: Any, source_base: str
) -> None:
    # `vidpipe submit URL` asks the API for the import (POST /uploads {source_url}) and follows the job
    submitted = local_stack.vidpipe("submit", f"{source_base}/share/tiny", "--wait", "--json", timeout=600)
    assert submitted.returncode == 0, submitted.stderr + submitted.stdout
    [job] = json.loads(submitted.stdout)

    assert job["status"] == "READY", job["error"]
    assert job["source"]["size"] == SAMPLE.stat().st_size
    assert job["source"]["filename"] == "tiny"
    assert job["outputs"]["hls_url"] and job["outputs"]["poster_url"]
    assert SourceServer.requested[:2] == ["/share/tiny", "/media/tiny.mp4"]


@pytest.mark.parametrize(("path", "code"), [("/gone.mp4", "SOURCE_UNREACHABLE"), ("/watch", "SOURCE_NOT_VIDEO")])
def test_GIVEN_a_url_that_is_no_video_WHEN_imported_THEN_the_job_fails_with_its_own_code(
    local_stack: Any, source_base: str, path: str, code: str
) -> None:
    created = import_url(local_stack, f"{source_base}{path}")

    assert created.status_code == 201, created.text
    job = finished_job(local_stack, created.json()["job_id"], timeout_s=120)

    assert job["status"] == "FAILED"
    assert job["error"]["code"] == code and job["error"]["message"]


def test_GIVEN_urls_that_lead_inside_WHEN_imported_THEN_400_at_registration(local_stack: Any, source_base: str) -> None:
    gateway = local_stack.aws_endpoint_url.rstrip("/")
    inside = [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        f"{gateway}/_ministack/reset",
        f"{local_stack.api_url}/jobs",
        "http://127.0.0.1:1/clip.mp4",
        "http://localhost:1/clip.mp4",
    ]

    for url in inside:
        refused = import_url(local_stack, url)
        assert refused.status_code == 400, url
        assert refused.json()["error"]["code"] == "SOURCE_URL_REFUSED", url
