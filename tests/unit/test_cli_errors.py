"""The command line answers a user's mistake with one clear line, never a traceback."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from vidpipe_cli.main import main


def closed_port() -> int:
    """A local port nothing listens on (bound, read, released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_GIVEN_an_api_url_nobody_answers_at_WHEN_status_is_asked_THEN_one_line_and_exit_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"http://127.0.0.1:{closed_port()}"

    code = main(["status", "0f8fad5bd9cb469fa16570867728950e", "--api-url", url, "--api-token", "t"])

    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("vidpipe: 0 API_UNREACHABLE: cannot reach http://127.0.0.1:") and err.count("\n") == 1
    assert "Traceback" not in err


class _GatewayRefusal(BaseHTTPRequestHandler):
    """What API Gateway answers when the Lambda authorizer says no."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's method name
        body = b'{"message":"Forbidden"}'
        self.send_response(403)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_GIVEN_the_gateway_refuses_the_token_WHEN_status_is_asked_THEN_one_line_naming_the_reasons_and_the_fix(
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = HTTPServer(("127.0.0.1", 0), _GatewayRefusal)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        code = main(
            [
                "status",
                "0f8fad5bd9cb469fa16570867728950e",
                "--api-url",
                f"http://127.0.0.1:{server.server_port}",
                "--api-token",
                "vp2.k1.x.y",
            ]
        )
    finally:
        server.shutdown()
        server.server_close()

    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1
    assert err.startswith("vidpipe: 403 UNAUTHENTICATED: the API refused the token")
    assert "expired, revoked" in err and "vidpipe token USER" in err
