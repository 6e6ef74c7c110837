"""GuardedSourceFetcher against a real HTTP server on 127.0.0.1: the body
streams back, redirects are followed by hand with every hop checked and
bounded, HTTP errors say whether a retry may help, and a URL (or a hop) that
leads inside is refused before any connection is made. Names are resolved by
stubs and every connection is recorded: no DNS, no traffic off loopback."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from vidpipe.adapters.outbound_guard import OutboundGuard, OutboundPolicy
from vidpipe.adapters.source_fetcher import MAX_REDIRECTS, GuardedSourceFetcher, SourceUrlPolicy
from vidpipe.domain.errors import DestinationRefused, SourceUnreachable

CLIP = b"\x00\x00\x00\x20ftypisom" + bytes(range(256)) * 64


class Source(BaseHTTPRequestHandler):
    requested: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        Source.requested.append(self.path)
        if self.path == "/clip.mp4":
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4; charset=binary")
            self.send_header("Content-Length", str(len(CLIP)))
            self.end_headers()
            self.wfile.write(CLIP)
            return
        if self.path.startswith("/hops/"):
            left = int(self.path.rsplit("/", 1)[1])
            self._redirect("/clip.mp4" if left == 0 else f"/hops/{left - 1}")
        elif self.path.startswith("/to?"):
            self._redirect(self.path.split("?", 1)[1])
        else:
            self.send_response(int(self.path.strip("/")))
            self.send_header("Content-Length", "0")
            self.end_headers()

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def port() -> Iterator[int]:
    Source.requested = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Source)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every TCP connection the fetcher opens; anything off loopback fails the test before it leaves."""
    opened: list[tuple[str, int]] = []
    real = socket.create_connection

    def recording(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        opened.append(address)
        assert address[0].startswith("127."), f"a connection to {address} was attempted"
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", recording)
    return opened


def stub_resolver(answers: dict[str, Sequence[str]]) -> Any:
    def resolve(host: str, _port: int) -> Sequence[str]:
        return answers[host]

    return resolve


def fetcher(*allowed: str, answers: dict[str, Sequence[str]] | None = None) -> GuardedSourceFetcher:
    policy = OutboundPolicy.build(allow_http=True, allowed_hosts=allowed, own_endpoint_urls=())
    return GuardedSourceFetcher(SourceUrlPolicy(OutboundGuard(policy, stub_resolver(answers or {}))), timeout_s=5)


def test_GIVEN_an_allowed_loopback_source_WHEN_opened_THEN_the_body_streams_with_its_type_and_length(
    port: int, connections: list[tuple[str, int]]
) -> None:
    source = fetcher(f"127.0.0.1:{port}").open(f"http://127.0.0.1:{port}/clip.mp4")
    try:
        body = b"".join(source.chunks(1000))
    finally:
        source.close()

    assert body == CLIP
    assert (source.content_type, source.content_length) == ("video/mp4", len(CLIP))
    assert connections == [("127.0.0.1", port)]


def test_GIVEN_redirects_WHEN_opened_THEN_each_hop_is_followed_up_to_the_bound(port: int) -> None:
    allowed = fetcher(f"127.0.0.1:{port}")

    source = allowed.open(f"http://127.0.0.1:{port}/hops/{MAX_REDIRECTS - 1}")
    source.close()
    with pytest.raises(SourceUnreachable, match=f"more than {MAX_REDIRECTS} redirects") as raised:
        allowed.open(f"http://127.0.0.1:{port}/hops/{MAX_REDIRECTS}")

    assert source.url.endswith("/clip.mp4")
    assert not raised.value.retryable


@pytest.mark.parametrize(
    ("location", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data/iam/security-credentials/", "metadata"),
        ("http://[fd00:ec2::254]/latest/meta-data/", "metadata"),
        ("https://inside.test/clip.mp4", "private"),
        ("http://videos.test/clip.mp4", "https://"),
        ("http://127.0.0.1:9/clip.mp4", "loopback"),
    ],
    ids=["metadata", "metadata-v6", "name-resolving-inside", "http-to-a-host-not-allowed", "loopback-other-port"],
)
def test_GIVEN_a_redirect_that_leads_inside_WHEN_followed_THEN_refused_without_connecting_there(
    port: int, connections: list[tuple[str, int]], location: str, reason: str
) -> None:
    answers = {"inside.test": ["93.184.215.14", "10.0.0.5"], "videos.test": ["93.184.215.14"]}

    with pytest.raises(DestinationRefused, match=reason) as raised:
        fetcher(f"127.0.0.1:{port}", answers=answers).open(f"http://127.0.0.1:{port}/to?{location}")

    assert raised.value.code == "SOURCE_URL_REFUSED"
    assert connections == [("127.0.0.1", port)]  # only the first hop was connected to


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("https://rebound.test/clip.mp4", "loopback"),
        ("https://wide.test/clip.mp4", "private"),
        ("ftp://videos.test/clip.mp4", "https://"),
        ("https://user:secret@videos.test/clip.mp4", "user name or password"),
    ],
)
def test_GIVEN_a_source_url_that_leads_inside_WHEN_opened_THEN_refused_before_any_connection(
    connections: list[tuple[str, int]], url: str, reason: str
) -> None:
    # rebound.test: a name whose DNS now answers loopback (rebinding); wide.test: one answer of several is private.
    answers = {
        "rebound.test": ["127.0.0.1"],
        "wide.test": ["93.184.215.14", "192.168.1.20"],
        "videos.test": ["1.1.1.1"],
    }

    with pytest.raises(DestinationRefused, match=reason):
        fetcher(answers=answers).open(url)

    assert connections == []


@pytest.mark.parametrize(("status", "retryable"), [(404, False), (403, False), (503, True), (429, True)])
def test_GIVEN_an_http_error_WHEN_opened_THEN_unreachable_saying_whether_a_retry_may_help(
    port: int, status: int, retryable: bool
) -> None:
    with pytest.raises(SourceUnreachable, match=f"HTTP {status}") as raised:
        fetcher(f"127.0.0.1:{port}").open(f"http://127.0.0.1:{port}/{status}")

    assert raised.value.retryable is retryable


def test_GIVEN_nobody_listening_WHEN_opened_THEN_unreachable_and_retryable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]

    with pytest.raises(SourceUnreachable, match="did not answer") as raised:
        fetcher(f"127.0.0.1:{free}").open(f"http://127.0.0.1:{free}/clip.mp4")

    assert raised.value.retryable
