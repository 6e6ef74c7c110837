"""Registering, listing and deleting webhooks through the API."""

from __future__ import annotations

import pytest

from tests.adapters.api.api_requests import (
    WEBHOOK_KEYS,
    Aws,
    call_json,
    clear_caches,
    http_event,
)
from upload_api.routes import webhooks
from vidpipe.domain.webhooks import signing_secret

# ------------------------------------------------------------------ webhooks

# What the API's resolver answers in these tests (a stub: no DNS, nothing is connected to).
NAMES = {"example.com": ["93.184.215.14"], "rebound.example": ["93.184.215.14", "10.0.0.1"], "localhost": ["127.0.0.1"]}


@pytest.fixture(autouse=True)
def stub_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    def resolve(host: str, port: int) -> list[str]:
        if host not in NAMES:
            raise OSError(f"{host}: Name or service not known")
        return NAMES[host]

    monkeypatch.setattr(webhooks, "resolve_host", resolve)


def test_GIVEN_an_https_url_WHEN_registered_THEN_201_with_its_secret_once_and_listed_without_it(aws: Aws) -> None:
    status, registered = call_json(http_event("POST", "/webhooks", body={"url": "https://example.com/hooks"}))
    _, listed = call_json(http_event("GET", "/webhooks"))

    assert status == 201
    assert registered["secret"] == signing_secret(WEBHOOK_KEYS.keys["k1"], "alice", registered["webhook_id"])
    assert listed == {"webhooks": [{k: v for k, v in registered.items() if k != "secret"}]}


def test_GIVEN_an_http_url_on_a_deployment_that_wants_https_WHEN_registered_THEN_400(aws: Aws) -> None:
    status, answer = call_json(http_event("POST", "/webhooks", body={"url": "http://example.com/hooks"}))

    assert status == 400 and "https://" in answer["error"]["message"]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://169.254.169.254/latest/meta-data/", "169.254.169.254 is a cloud metadata service"),
        ("https://[::ffff:127.0.0.1]/", "::ffff:7f00:1 is an IPv4-mapped address (of 127.0.0.1)"),
        ("https://0x7f000001/", "127.0.0.1 is a loopback address"),
        ("https://10.1/", "10.0.0.1 is a private address"),
        ("https://rebound.example/h", "host rebound.example resolves to 10.0.0.1, a private address"),
        ("https://localhost/", "host localhost resolves to 127.0.0.1, a loopback address"),
        ("https://nowhere.example/", "host nowhere.example cannot be resolved"),
    ],
)
def test_GIVEN_a_url_reaching_inside_WHEN_registered_THEN_400_with_the_reason_and_nothing_stored(
    aws: Aws, url: str, reason: str
) -> None:
    status, answer = call_json(http_event("POST", "/webhooks", body={"url": url}))
    _, listed = call_json(http_event("GET", "/webhooks"))

    assert status == 400 and answer["error"] == {"code": "DESTINATION_REFUSED", "message": reason}
    assert listed == {"webhooks": []}


def test_GIVEN_local_receivers_allowed_WHEN_the_stacks_own_endpoint_is_registered_THEN_400(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a deployment allowing http and a receiver on localhost:8123, and the API at 127.0.0.1:4566
    monkeypatch.setenv("WEBHOOK_ALLOW_HTTP", "true")
    monkeypatch.setenv("WEBHOOK_ALLOWED_HOSTS", "127.0.0.1:8123, localhost:8123 127.0.0.1:4566")
    clear_caches()

    allowed, _ = call_json(http_event("POST", "/webhooks", body={"url": "http://localhost:8123/hooks"}))
    other_port, _ = call_json(http_event("POST", "/webhooks", body={"url": "http://localhost:8124/hooks"}))
    itself, answer = call_json(http_event("POST", "/webhooks", body={"url": "http://127.1:4566/_ministack/reset"}))

    assert (allowed, other_port, itself) == (201, 400, 400)
    assert answer["error"]["message"] == "127.0.0.1 is this stack's own endpoint (port 4566)"


def test_GIVEN_alices_webhook_WHEN_bob_lists_or_deletes_it_THEN_he_sees_nothing_and_it_stays(aws: Aws) -> None:
    _, registered = call_json(http_event("POST", "/webhooks", body={"url": "https://example.com/hooks"}))
    path = f"/webhooks/{registered['webhook_id']}"

    _, bobs = call_json(http_event("GET", "/webhooks", user="bob"))
    bobs_status, bobs_answer = call_json(http_event("DELETE", path, user="bob"))
    alices_status, _ = call_json(http_event("DELETE", path))
    again_status, _ = call_json(http_event("DELETE", path))

    assert bobs == {"webhooks": []}
    assert bobs_status == 404 and bobs_answer["error"]["code"] == "WEBHOOK_NOT_FOUND"
    assert (alices_status, again_status) == (200, 404)
