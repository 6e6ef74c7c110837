"""Webhooks on the local stack: a receiver started here (on the loopback port the
stack allows) gets exactly one correctly signed delivery per finished job (READY
and FAILED), each after a first 500 that is retried; a tampered body fails
verification; every attempt is in the timeline. The stack's own endpoint, other
loopback ports and the metadata service are refused at registration."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from vidpipe.domain.errors import WebhookSignatureInvalid
from vidpipe.domain.webhooks import SIGNATURE_HEADER, verify_signature

pytestmark = [pytest.mark.stack, pytest.mark.ffmpeg]

SAMPLE = Path(__file__).resolve().parents[2] / "sample_media" / "tiny_160x90.mp4"
USER = "webhook-tester"  # a user of their own: other tests' jobs never reach this receiver


@dataclass
class Received:
    body: bytes
    signature: str
    delivery_id: str
    answered: int


class FlakyReceiver(BaseHTTPRequestHandler):
    """Answers 500 to the first copy of each delivery, 200 to the next ones."""

    received: list[Received] = []
    lock = threading.Lock()

    def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        delivery_id = self.headers.get("Vidpipe-Delivery", "")
        with self.lock:
            first = not any(r.delivery_id == delivery_id for r in self.received)
            status = 500 if first else 200
            self.received.append(Received(body, self.headers.get(SIGNATURE_HEADER, ""), delivery_id, status))
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver_url(local_stack: Any) -> Iterator[str]:
    """The receiver, on the one loopback port the stack lets webhooks reach."""
    FlakyReceiver.received = []
    server = ThreadingHTTPServer(("127.0.0.1", local_stack.webhook_receiver_port), FlakyReceiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks"
    server.shutdown()
    server.server_close()


@pytest.fixture
def tester(local_stack: Any, receiver_url: str) -> Iterator[tuple[requests.Session, str, str]]:
    """The tester's API session, their token, and the secret of their webhook at the receiver."""
    minted = local_stack.vidpipe("token", USER, timeout=60)
    assert minted.returncode == 0, minted.stderr
    token = minted.stdout.strip()
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    registered = session.post(f"{local_stack.api_url}/webhooks", json={"url": receiver_url}, timeout=30)
    assert registered.status_code == 201, registered.text
    hook = registered.json()
    try:
        yield session, token, hook["secret"]
    finally:
        session.delete(f"{local_stack.api_url}/webhooks/{hook['webhook_id']}", timeout=30)


def accepted(timeout_s: float, count: int) -> list[Received]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with FlakyReceiver.lock:
            done = [r for r in FlakyReceiver.received if r.answered == 200]
        if len(done) >= count:
            return done
        time.sleep(0.5)
    raise AssertionError(f"only {len(done)} of {count} deliveries accepted: {FlakyReceiver.received}")


def test_GIVEN_a_registered_webhook_WHEN_one_job_is_ready_and_one_fails_THEN_one_signed_delivery_each_after_a_retry(
    local_stack: Any, tester: tuple[requests.Session, str, str], tmp_path: Path
) -> None:
    session, token, secret = tester
    noise = tmp_path / "noise.mp4"
    noise.write_bytes(random.Random(3).randbytes(20_000))

    # WHEN the tester submits a video that works and one that is not a video
    submitted = local_stack.vidpipe(
        "submit", str(SAMPLE), str(noise), "--wait", "--json", "--api-token", token, timeout=600
    )
    jobs = {job["status"]: job["job_id"] for job in json.loads(submitted.stdout)}
    assert set(jobs) == {"READY", "FAILED"}, submitted.stdout

    # THEN the receiver accepts one delivery per job, each the retry of a first copy it refused with 500
    done = accepted(timeout_s=120, count=2)
    time.sleep(5)  # and nothing more comes
    with FlakyReceiver.lock:
        everything = list(FlakyReceiver.received)
    assert len(done) == 2 and len(everything) == 4, everything
    by_type = {json.loads(r.body)["type"]: r for r in done}
    assert set(by_type) == {"job.ready", "job.failed"}, [r.body for r in everything]
    assert json.loads(by_type["job.ready"].body)["job"]["job_id"] == jobs["READY"]
    failed_job = json.loads(by_type["job.failed"].body)["job"]
    assert (failed_job["job_id"], failed_job["error"]["code"]) == (jobs["FAILED"], "NOT_A_VIDEO")
    for delivery in everything:
        verify_signature(secret, delivery.body, delivery.signature)  # every copy is correctly signed
    # AND a tampered body fails verification
    tampered = by_type["job.failed"].body.replace(b"FAILED", b"READY")
    with pytest.raises(WebhookSignatureInvalid):
        verify_signature(secret, tampered, by_type["job.failed"].signature)

    # AND the ready job's timeline shows the refused attempt, then the delivery, after READY
    events = session.get(f"{local_stack.api_url}/jobs/{jobs['READY']}/events", timeout=30).json()["events"]
    attempts = [
        (e["details"]["attempt"], e["details"].get("status_code"), e["details"]["outcome"])
        for e in events
        if e["what"] == "webhook.attempt"
    ]
    assert attempts == [(1, 500, "failed"), (2, 200, "delivered")], attempts
    whats = [e["what"] for e in events]
    assert whats.index("job.ready") < whats.index("webhook.attempt")


def test_GIVEN_the_local_stack_WHEN_a_webhook_points_inside_THEN_400_with_the_reason_and_nothing_registered(
    local_stack: Any,
) -> None:
    session = local_stack.http
    gateway = urlsplit(local_stack.aws_endpoint_url)
    inside = {
        # the stack's own gateway: a delivery there would wipe every user's data
        f"http://{gateway.hostname}:{gateway.port}/_ministack/reset": "own endpoint",
        f"http://2130706433:{gateway.port}/_ministack/reset": "own endpoint",
        f"http://localhost:{gateway.port}/_ministack/reset": "own endpoint",
        # a loopback port nobody allowed, even next to the allowed one
        f"http://127.0.0.1:{local_stack.webhook_receiver_port + 1}/hooks": "loopback",
        f"http://[::1]:{local_stack.webhook_receiver_port}/hooks": "loopback",
        "http://169.254.169.254/latest/meta-data/": "metadata",
        "http://0x0a000001/": "private",
    }
    before = session.get(f"{local_stack.api_url}/webhooks", timeout=30).json()["webhooks"]

    for url, reason in inside.items():
        answer = session.post(f"{local_stack.api_url}/webhooks", json={"url": url}, timeout=30)
        assert answer.status_code == 400, (url, answer.text)
        assert answer.json()["error"]["code"] == "DESTINATION_REFUSED" and reason in answer.json()["error"]["message"]

    assert session.get(f"{local_stack.api_url}/webhooks", timeout=30).json()["webhooks"] == before
