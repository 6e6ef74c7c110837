"""HttpWebhookSender against a real HTTP server on this machine: the receiver's
status comes back, redirects are not followed, no answer is WebhookDeliveryFailed."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from vidpipe.errors import WebhookDeliveryFailed
from vidpipe.webhooks import HttpWebhookSender


class Receiver(BaseHTTPRequestHandler):
    received: list[tuple[str, bytes, str]] = []

    def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.received.append((self.path, body, self.headers.get("Vidpipe-Signature", "")))
        if self.path == "/moved":
            self.send_response(307)
            self.send_header("Location", "/elsewhere")
        else:
            self.send_response(int(self.path.strip("/") or 200))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    Receiver.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_GIVEN_a_receiver_WHEN_posted_to_THEN_it_gets_the_body_and_headers_and_we_get_its_status(receiver: str) -> None:
    sender = HttpWebhookSender(timeout_s=5)

    assert sender.post(f"{receiver}/204", b'{"a":1}', {"Vidpipe-Signature": "t=1,v1=x"}) == 204
    assert sender.post(f"{receiver}/500", b"{}", {}) == 500
    assert Receiver.received[0] == ("/204", b'{"a":1}', "t=1,v1=x")


def test_GIVEN_a_redirect_WHEN_posted_THEN_it_is_not_followed(receiver: str) -> None:
    assert HttpWebhookSender(timeout_s=5).post(f"{receiver}/moved", b"{}", {}) == 307
    assert [path for path, _, _ in Receiver.received] == ["/moved"]


def test_GIVEN_nobody_listening_WHEN_posted_THEN_webhook_delivery_failed() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(WebhookDeliveryFailed, match="no answer"):
        HttpWebhookSender(timeout_s=2).post(f"http://127.0.0.1:{port}/", b"{}", {})
