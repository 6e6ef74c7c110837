"""`vidpipe list`, `delete`, `cancel`, `--version`, JSON errors, and polling that
rides out short outages, against a small fake API on loopback."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from vidpipe_cli.api_client import VidpipeClient
from vidpipe_cli.main import main

JOB = {
    "job_id": "a" * 32,
    "status": "READY",
    "title": "Holiday",
    "created_at": "2026-01-01T00:00:00Z",
    "source": {"filename": "holiday.mp4", "duration_s": 12.5, "width": 1280, "height": 720},
    "stages": {},
    "outputs": {},
}


class FakeApi(BaseHTTPRequestHandler):
    # (method, path) -> list of (status, body) answered in turn (the last one repeats)
    answers: dict[tuple[str, str], list[tuple[int, Any]]] = {}
    bodies: list[Any] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            FakeApi.bodies.append(json.loads(self.rfile.read(length)))
        queue = self.answers.get((self.command, self.path.split("?")[0])) or [(404, {"error": {"code": "X"}})]
        status, body = queue.pop(0) if len(queue) > 1 else queue[0]
        payload = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_DELETE = do_POST = do_PATCH = _answer  # noqa: N815 - http.server's method names

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def api() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), FakeApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    FakeApi.answers = {}
    FakeApi.bodies = []


def run(*argv: str, api: str) -> int:
    return main([*argv, "--api-url", api, "--api-token", "t"])


def test_GIVEN_the_cli_WHEN_asked_its_version_THEN_it_prints_it(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_code:
        main(["--version"])

    assert exit_code.value.code == 0
    assert capsys.readouterr().out.startswith("vidpipe ")


def test_GIVEN_jobs_WHEN_listed_THEN_one_line_each_with_title_duration_and_size(
    api: str, capsys: pytest.CaptureFixture[str]
) -> None:
    FakeApi.answers = {("GET", "/jobs"): [(200, {"jobs": [JOB], "next_token": None})]}

    assert run("list", api=api) == 0

    line = capsys.readouterr().out.strip()
    assert line.startswith("a" * 32) and "READY" in line and "12.5 s" in line and "1280x720" in line
    assert line.endswith("Holiday")


def test_GIVEN_one_job_deleted_and_one_missing_WHEN_deleted_with_json_THEN_both_reported_and_exit_1(
    api: str, capsys: pytest.CaptureFixture[str]
) -> None:
    FakeApi.answers = {
        ("DELETE", f"/jobs/{'a' * 32}"): [(204, None)],
        ("DELETE", f"/jobs/{'b' * 32}"): [(404, {"error": {"code": "JOB_NOT_FOUND", "message": "no job"}})],
    }

    code = run("delete", "a" * 32, "b" * 32, "--json", api=api)

    results = json.loads(capsys.readouterr().out)["results"]
    assert code == 1
    assert [(r["job_id"][0], r["deleted"]) for r in results] == [("a", True), ("b", False)]
    assert results[1]["error"]["code"] == "JOB_NOT_FOUND"


def test_GIVEN_an_upload_already_arrived_WHEN_cancelled_with_json_THEN_the_error_is_json_on_stdout(
    api: str, capsys: pytest.CaptureFixture[str]
) -> None:
    FakeApi.answers = {
        ("DELETE", "/uploads/j1"): [(409, {"error": {"code": "UPLOAD_NOT_OPEN", "message": "job j1 is PROCESSING"}})]
    }

    code = run("cancel", "j1", "--json", api=api)

    out, err = capsys.readouterr()
    assert code == 1 and err == ""
    assert json.loads(out) == {
        "error": {"code": "UPLOAD_NOT_OPEN", "message": "job j1 is PROCESSING", "http_status": 409}
    }


def test_GIVEN_an_unreachable_api_WHEN_status_is_asked_with_json_THEN_the_error_is_json(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    code = main(["status", "j1", "--json", "--api-url", f"http://127.0.0.1:{port}", "--api-token", "t"])

    assert code == 1
    assert json.loads(capsys.readouterr().out)["error"]["code"] == "API_UNREACHABLE"


def test_GIVEN_the_api_briefly_unwell_WHEN_a_job_is_followed_THEN_polling_goes_on_until_it_is_ready(api: str) -> None:
    FakeApi.answers = {
        ("GET", "/jobs/j1"): [
            (200, {**JOB, "status": "PROCESSING"}),
            (503, {"message": "Service Unavailable"}),
            (502, {"message": "Bad Gateway"}),
            (200, JOB),
        ]
    }

    job = VidpipeClient(api, token="t").wait("j1", timeout_s=30, poll_s=0.01)

    assert job["status"] == "READY"


def test_GIVEN_a_real_error_WHEN_a_job_is_followed_THEN_polling_stops_at_once(api: str) -> None:
    FakeApi.answers = {("GET", "/jobs/j1"): [(404, {"error": {"code": "JOB_NOT_FOUND", "message": "no job j1"}})]}

    with pytest.raises(Exception, match="JOB_NOT_FOUND"):
        VidpipeClient(api, token="t").wait("j1", timeout_s=30, poll_s=0.01)


def test_GIVEN_an_https_url_WHEN_submitted_THEN_the_service_is_asked_to_import_it_and_the_job_printed(
    api: str, capsys: pytest.CaptureFixture[str]
) -> None:
    FakeApi.answers = {
        ("POST", "/uploads"): [(201, {"job_id": "j1", "status": "AWAITING_UPLOAD", "upload": {"method": "IMPORT"}})],
        ("GET", "/jobs/j1"): [(200, {**JOB, "job_id": "j1", "status": "AWAITING_UPLOAD"})],
    }

    code = run("submit", "https://media.example/clip.mp4", "--json", api=api)

    assert code == 0
    assert FakeApi.bodies == [{"source_url": "https://media.example/clip.mp4"}]
    assert [job["job_id"] for job in json.loads(capsys.readouterr().out)] == ["j1"]


def test_GIVEN_a_missing_file_among_urls_WHEN_submitted_THEN_nothing_is_sent_and_the_file_named(
    api: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run("submit", "https://media.example/clip.mp4", "no-such-file.mp4", "--json", api=api)

    assert code == 1 and FakeApi.bodies == []
    error = json.loads(capsys.readouterr().out)["error"]
    assert error["code"] == "FILE_NOT_FOUND" and "no-such-file.mp4" in error["message"]
