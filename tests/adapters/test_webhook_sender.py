"""HttpWebhookSender against real HTTP(S) servers on this machine's loopback:
the receiver's status comes back, redirects are not followed, the connection
goes to the address checked (never a second resolution), TLS is verified
against the host name, and a name that now resolves inside is not sent to at
all (DNS rebinding). Names are resolved by stubs: no DNS, no traffic off loopback."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from job_lifecycle.domain_logic.webhook_delivery import JobFinishedNotice, deliver
from upload_api.domain_logic.webhooks import register_webhook
from vidpipe.adapters.outbound_guard import OutboundGuard, OutboundPolicy
from vidpipe.adapters.webhook_sender import HttpWebhookSender
from vidpipe.domain.access import WEBHOOK_SIGNING, SigningKeys
from vidpipe.domain.errors import WebhookDeliveryFailed
from vidpipe.domain.jobs import Job
from vidpipe.domain.timeline import Invocation, TimelineEntry
from vidpipe.domain.webhooks import Webhook

WEBHOOK_KEYS = SigningKeys(WEBHOOK_SIGNING, "k1", {"k1": "webhook-key-for-the-sender-tests"})


class Receiver(BaseHTTPRequestHandler):
    received: list[tuple[str, bytes, str, str]] = []

    def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.received.append(
            (self.path, body, self.headers.get("Vidpipe-Signature", ""), self.headers.get("Host", ""))
        )
        if self.path == "/moved":
            self.send_response(307)
            self.send_header("Location", "/elsewhere")
        else:
            self.send_response(int(self.path.strip("/") or 200))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def serve(address: str, tls: ssl.SSLContext | None = None) -> Iterator[int]:
    """A receiver on ``address``; its port."""
    Receiver.received = []
    server = ThreadingHTTPServer((address, 0), Receiver)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


@pytest.fixture
def port() -> Iterator[int]:
    """A receiver on 127.0.0.1."""
    with serve("127.0.0.1") as port:
        yield port


def loopback_sender(*allowed: str, resolver: Any = None, tls: ssl.SSLContext | None = None) -> HttpWebhookSender:
    policy = OutboundPolicy.build(allow_http=True, allowed_hosts=allowed)
    return HttpWebhookSender(OutboundGuard(policy, resolver or refuse_to_resolve), timeout_s=5, tls=tls)


def refuse_to_resolve(host: str, port: int) -> Sequence[str]:
    raise AssertionError(f"{host} was looked up")


def test_GIVEN_an_allowed_receiver_WHEN_posted_to_THEN_it_gets_the_body_and_headers_and_we_get_its_status(
    port: int,
) -> None:
    sender = loopback_sender(f"127.0.0.1:{port}")

    assert sender.post(f"http://127.0.0.1:{port}/204", b'{"a":1}', {"Vidpipe-Signature": "t=1,v1=x"}) == 204
    assert sender.post(f"http://127.0.0.1:{port}/500", b"{}", {}) == 500
    assert Receiver.received[0] == ("/204", b'{"a":1}', "t=1,v1=x", f"127.0.0.1:{port}")


def test_GIVEN_a_redirect_WHEN_posted_THEN_it_is_not_followed(port: int) -> None:
    assert loopback_sender(f"127.0.0.1:{port}").post(f"http://127.0.0.1:{port}/moved", b"{}", {}) == 307
    assert [path for path, *_ in Receiver.received] == ["/moved"]


def test_GIVEN_nobody_listening_WHEN_posted_THEN_webhook_delivery_failed() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(WebhookDeliveryFailed, match="no answer"):
        loopback_sender(f"127.0.0.1:{port}").post(f"http://127.0.0.1:{port}/", b"{}", {})


def test_GIVEN_a_loopback_receiver_not_allowed_WHEN_posted_THEN_refused_and_it_gets_nothing(port: int) -> None:
    with pytest.raises(WebhookDeliveryFailed, match="loopback") as raised:
        loopback_sender().post(f"http://127.0.0.1:{port}/", b"{}", {})

    assert raised.value.code == "WEBHOOK_DESTINATION_REFUSED"
    assert Receiver.received == []


def test_GIVEN_a_name_checked_to_one_address_WHEN_posted_THEN_the_connection_goes_to_that_address() -> None:
    # GIVEN a receiver on 127.0.0.2 only, and a stub resolver saying localhost is 127.0.0.2
    # (the system would say 127.0.0.1, where nothing listens on that port)
    resolved: list[str] = []

    def stub(host: str, _port: int) -> list[str]:
        resolved.append(host)
        return ["127.0.0.2"]

    with serve("127.0.0.2") as port:
        # WHEN a delivery goes to http://localhost:port (allowed)
        status = loopback_sender(f"localhost:{port}", resolver=stub).post(f"http://localhost:{port}/202", b"{}", {})

        # THEN it reached 127.0.0.2, asked for localhost in the Host header, and the name was resolved once
        assert status == 202
        assert Receiver.received[0][3] == f"localhost:{port}"
        assert resolved == ["localhost"]


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path


@pytest.fixture(scope="module")
def hooks_test_certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """A self-signed certificate for the name hooks.test only."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    folder = tmp_path_factory.mktemp("tls")
    certificate = Certificate(folder / "cert.pem", folder / "key.pem")
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=hooks.test",
            "-addext",
            "subjectAltName=DNS:hooks.test",
            "-keyout",
            str(certificate.key),
            "-out",
            str(certificate.cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return certificate


def test_GIVEN_https_to_a_checked_address_WHEN_posted_THEN_the_certificate_is_verified_against_the_host_name(
    hooks_test_certificate: Certificate,
) -> None:
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(hooks_test_certificate.cert, hooks_test_certificate.key)
    client_tls = ssl.create_default_context(cafile=str(hooks_test_certificate.cert))
    with serve("127.0.0.1", tls=server_tls) as port:
        sender = loopback_sender(
            f"hooks.test:{port}", f"other.test:{port}", tls=client_tls, resolver=lambda host, _port: ["127.0.0.1"]
        )

        # WHEN the name matches the certificate THEN it is delivered (over the checked address)
        assert sender.post(f"https://hooks.test:{port}/204", b"{}", {}) == 204
        # WHEN another name reaches the same address THEN the certificate does not match it: nothing is sent
        with pytest.raises(WebhookDeliveryFailed, match="certificate"):
            sender.post(f"https://other.test:{port}/204", b"{}", {})
        assert [path for path, *_ in Receiver.received] == ["/204"]


# ------------------------------------------------------------------ DNS rebinding, through deliver()


@dataclass
class Registry:
    hooks: list[Webhook] = field(default_factory=list)

    def create(self, hook: Webhook) -> None:
        self.hooks.append(hook)

    def list(self, owner: str) -> list[Webhook]:
        return [hook for hook in self.hooks if hook.owner == owner]


@dataclass
class Jobs:
    def get(self, job_id: str) -> Any:
        return Job.new(
            job_id, filename="a.mp4", content_type="video/mp4", size=1, now="2025-03-14T09:00:00Z", owner="alice"
        )


@dataclass
class Timeline:
    recorded: list[TimelineEntry] = field(default_factory=list)

    def record(self, entry: TimelineEntry) -> None:
        self.recorded.append(entry)

    def entries(self, job_id: str) -> list[TimelineEntry]:
        return list(self.recorded)


FINISHED = {
    "version": "0",
    "id": "evt-1",
    "detail-type": "Job Ready",
    "source": "vidpipe.status",
    "detail": {"job_id": "j1", "status": "READY", "error": None, "occurred_at": "2025-03-14T09:27:41Z"},
}


@pytest.mark.parametrize("inside", ["127.0.0.1", "10.0.0.1", "::1"])
def test_GIVEN_a_name_public_at_registration_WHEN_it_resolves_inside_at_delivery_THEN_nothing_is_sent_and_the_attempt_says_why(  # noqa: E501
    port: int, inside: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN alice registered hooks.example while it resolved to a public address
    registry = Registry()
    at_registration = OutboundGuard(OutboundPolicy.build(allow_http=True), lambda host, _port: ["93.184.215.14"])
    register_webhook(
        "alice",
        f"http://hooks.example:{port}/h",
        registry=registry,
        signing_keys=WEBHOOK_KEYS,
        guard=at_registration,
        new_id="hook-1",
    )
    # AND now the name answers an address inside (where, for 127.0.0.1, a receiver listens)
    connections: list[Any] = []
    monkeypatch.setattr(socket, "create_connection", lambda *args, **kwargs: connections.append(args))
    sender = HttpWebhookSender(OutboundGuard(OutboundPolicy.build(allow_http=True), lambda host, _port: [inside]))
    timeline = Timeline()

    # WHEN the job's end is delivered
    with pytest.raises(WebhookDeliveryFailed, match="hook-1: not sent: host hooks.example resolves to"):
        deliver(
            JobFinishedNotice.from_event(FINISHED),
            jobs=Jobs(),
            registry=registry,
            timeline=timeline,
            sender=sender,
            signing_keys=WEBHOOK_KEYS,
            invocation=Invocation("webhook", "r"),
            attempt=1,
            last_attempt=False,
        )

    # THEN no connection was even tried, the receiver got nothing, and the attempt is a failure with its reason
    assert connections == [] and Receiver.received == []
    [entry] = timeline.recorded
    assert entry.details["outcome"] == "failed"
    assert entry.details["error"]["code"] == "WEBHOOK_DESTINATION_REFUSED"
    assert f"resolves to {inside}" in entry.details["error"]["message"]
