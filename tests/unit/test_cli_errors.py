"""The command line answers a user's mistake with one clear line, never a traceback."""

from __future__ import annotations

import socket

import pytest

from vidpipe.cli.main import main


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
