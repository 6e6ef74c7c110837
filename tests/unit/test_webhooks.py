"""Webhooks: the signature a receiver checks, URL rules, registration, and
delivery (retries skip what was delivered; every attempt is in the timeline)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

from job_lifecycle.domain_logic.webhook_delivery import JobFinishedNotice, deliver
from upload_api.domain_logic.webhooks import MAX_WEBHOOKS_PER_USER, check_webhook_url, register_webhook
from vidpipe.adapters.outbound_guard import OutboundGuard, OutboundPolicy
from vidpipe.domain.access import API_TOKENS, WEBHOOK_SIGNING, SigningKeys
from vidpipe.domain.errors import (
    DestinationRefused,
    JobNotFound,
    ValidationFailed,
    WebhookDeliveryFailed,
    WebhookSignatureInvalid,
)
from vidpipe.domain.jobs import Job, JobStatus
from vidpipe.domain.timeline import Invocation, TimelineEntry
from vidpipe.domain.webhooks import (
    SIGNATURE_HEADER,
    Webhook,
    current_signing_secret,
    sign,
    signing_secret,
    signing_secrets,
    verify_signature,
)

SECRET = "whsec_test-secret"
BODY = b'{"id":"e1","type":"job.ready","job":{"job_id":"j1","status":"READY","error":null}}'
NOW = 1_741_944_461
KEY_1 = "webhook-key-1-2f9c4e1a7b3d5f8e0a6c9d8e7f6a5b4c"
KEY_2 = "webhook-key-2-0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d"
# The old deployment secret, kept as a kid so receivers registered before keys had ids keep verifying.
LEGACY_KEY = "old-deployment-secret-0123456789abcdefghijklmn"
KEYS = SigningKeys(WEBHOOK_SIGNING, "k1", {"k1": KEY_1})


# ------------------------------------------------------------------ signature


def test_GIVEN_a_signed_body_WHEN_verified_with_the_secret_THEN_it_passes() -> None:
    header = sign(SECRET, BODY, timestamp=NOW)

    assert header.startswith(f"t={NOW},v1=")
    verify_signature(SECRET, BODY, header, now=NOW + 10)


@pytest.mark.parametrize(
    ("body", "secret", "now", "reason"),
    [
        (BODY.replace(b"READY", b"FAILED"), SECRET, NOW, "does not match"),
        (BODY + b" ", SECRET, NOW, "does not match"),
        (BODY, "whsec_someone-else", NOW, "does not match"),
        (BODY, SECRET, NOW + 301, "replay"),
        (BODY, SECRET, NOW - 301, "replay"),
    ],
    ids=["tampered", "one-byte-more", "wrong-secret", "too-old", "from-the-future"],
)
def test_GIVEN_a_changed_body_secret_or_a_stale_time_WHEN_verified_THEN_refused(
    body: bytes, secret: str, now: int, reason: str
) -> None:
    with pytest.raises(WebhookSignatureInvalid, match=reason):
        verify_signature(secret, body, sign(SECRET, BODY, timestamp=NOW), now=now)


@pytest.mark.parametrize("header", [None, "", "v1=abc", f"t={NOW}", "t=soon,v1=abc"])
def test_GIVEN_a_malformed_header_WHEN_verified_THEN_refused_without_another_error(header: str | None) -> None:
    with pytest.raises(WebhookSignatureInvalid):
        verify_signature(SECRET, BODY, header, now=NOW)


def test_GIVEN_two_signatures_during_a_secret_rollover_WHEN_one_matches_THEN_it_passes() -> None:
    header = sign(["whsec_the-old-one", SECRET], BODY, timestamp=NOW)

    # None is verify_signature's "accepted"; refusals raise
    assert verify_signature(SECRET, BODY, header, now=NOW) is None
    assert verify_signature("whsec_the-old-one", BODY, header, now=NOW) is None
    with pytest.raises(WebhookSignatureInvalid, match="does not match"):
        verify_signature("whsec_someone-else", BODY, header, now=NOW)


def test_GIVEN_webhooks_WHEN_secrets_are_derived_THEN_stable_per_webhook_and_different_across_them() -> None:
    first = signing_secret("deployment", "alice", "hook-1")

    assert first == signing_secret("deployment", "alice", "hook-1") and first.startswith("whsec_")
    assert (
        len(
            {
                first,
                signing_secret("deployment", "alice", "hook-2"),
                signing_secret("deployment", "bob", "hook-1"),
                signing_secret("rotated", "alice", "hook-1"),
            }
        )
        == 4
    )


def test_GIVEN_a_rotation_of_the_webhook_keys_WHEN_a_delivery_is_signed_THEN_receivers_of_either_kid_verify_it() -> (
    None
):
    # k1 -> k2: a receiver registered under k1 (or under the old deployment
    # secret, kept as kid "legacy") holds that secret until its owner re-registers.
    rotating = SigningKeys(WEBHOOK_SIGNING, "k2", {"legacy": LEGACY_KEY, "k1": KEY_1, "k2": KEY_2})
    header = sign(signing_secrets(rotating, "alice", "hook-1"), BODY, timestamp=NOW)

    assert current_signing_secret(rotating, "alice", "hook-1") == signing_secret(KEY_2, "alice", "hook-1")
    for held in (
        signing_secret(KEY_1, "alice", "hook-1"),
        signing_secret(KEY_2, "alice", "hook-1"),
        signing_secret(LEGACY_KEY, "alice", "hook-1"),
    ):
        verify_signature(held, BODY, header, now=NOW)
    # ... and once k1 is removed, a receiver still holding its secret is refused
    removed = SigningKeys(WEBHOOK_SIGNING, "k2", {"k2": KEY_2})
    with pytest.raises(WebhookSignatureInvalid, match="does not match"):
        verify_signature(
            signing_secret(KEY_1, "alice", "hook-1"),
            BODY,
            sign(signing_secrets(removed, "alice", "hook-1"), BODY, timestamp=NOW),
            now=NOW,
        )


def test_GIVEN_keys_of_another_purpose_WHEN_a_webhook_secret_is_derived_THEN_value_error() -> None:
    with pytest.raises(ValueError, match="webhook-signing"):
        current_signing_secret(SigningKeys(API_TOKENS, "k1", {"k1": KEY_1}), "alice", "hook-1")


# ------------------------------------------------------------------ registration


def public_guard(allow_http: bool = False) -> OutboundGuard:
    """Every name resolves to one public address (a stub: no DNS, no connection)."""
    return OutboundGuard(OutboundPolicy.build(allow_http=allow_http), lambda host, port: ["93.184.215.14"])


@pytest.mark.parametrize("url", ["https://example.com/hooks", " https://example.com:8443/a?token=x "])
def test_GIVEN_an_https_url_WHEN_checked_THEN_accepted(url: str) -> None:
    assert check_webhook_url(url, guard=public_guard()) == url.strip()


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://example.com/", "https://"),
        ("ftp://example.com/", "https://"),
        ("https:///path", "no host"),
        ("https://user:pw@example.com/", "user name"),
        ("example.com/hooks", "https://"),
        ("https://example.com/a b", "spaces"),
        ("https://169.254.169.254/latest/meta-data/", "metadata"),
        ("https://[::1]/", "loopback"),
        ("https://2130706433/", "loopback"),
        ("https://10.1/", "private"),
    ],
)
def test_GIVEN_a_url_we_refuse_WHEN_checked_THEN_validation_failed(url: str, reason: str) -> None:
    with pytest.raises(ValidationFailed, match=reason):
        check_webhook_url(url, guard=public_guard())


def test_GIVEN_http_allowed_WHEN_an_http_url_is_checked_THEN_accepted() -> None:
    assert check_webhook_url("http://example.com:8080/hook", guard=public_guard(allow_http=True)) == (
        "http://example.com:8080/hook"
    )


def test_GIVEN_a_name_resolving_inside_WHEN_registered_THEN_refused_and_nothing_stored() -> None:
    registry = FakeRegistry()
    inside = OutboundGuard(OutboundPolicy.build(allow_http=False), lambda host, port: ["93.184.215.14", "10.0.0.1"])

    with pytest.raises(DestinationRefused, match="hooks.example resolves to 10.0.0.1, a private address"):
        register_webhook("alice", "https://hooks.example/h", registry=registry, signing_keys=KEYS, guard=inside)

    assert registry.hooks == []


@dataclass
class FakeRegistry:
    hooks: list[Webhook] = field(default_factory=list)

    def create(self, hook: Webhook) -> None:
        self.hooks.append(hook)

    def list(self, owner: str) -> list[Webhook]:
        return [hook for hook in self.hooks if hook.owner == owner]


def test_GIVEN_a_url_WHEN_registered_THEN_stored_and_its_secret_shown_once() -> None:
    registry = FakeRegistry()

    answer = register_webhook(
        "alice", "https://example.com/h", registry=registry, signing_keys=KEYS, guard=public_guard(), new_id="hook-1"
    )

    assert answer["secret"] == signing_secret(KEY_1, "alice", "hook-1")
    assert registry.hooks[0].to_dict() == {k: v for k, v in answer.items() if k != "secret"}
    assert "secret" not in registry.hooks[0].to_dict()


def test_GIVEN_a_user_at_the_limit_WHEN_registering_another_THEN_refused() -> None:
    registry = FakeRegistry([Webhook("alice", f"h{n}", "https://e.com", "t") for n in range(MAX_WEBHOOKS_PER_USER)])

    with pytest.raises(ValidationFailed, match="at most"):
        register_webhook("alice", "https://e.com/x", registry=registry, signing_keys=KEYS, guard=public_guard())


# ------------------------------------------------------------------ delivery


def finished_event(kind: str = "Job Ready") -> dict:
    return {
        "version": "0",
        "id": "evt-1",
        "detail-type": kind,
        "source": "vidpipe.status",
        "time": "2025-03-14T09:27:41Z",
        "detail": {
            "version": 1,
            "job_id": "j1",
            "status": "READY" if kind == "Job Ready" else "FAILED",
            "error": None,
            "occurred_at": "2025-03-14T09:27:41.204518Z",
        },
    }


@dataclass
class FakeJobs:
    title: str | None = "Holiday"
    passthrough: str | None = "order-42"
    deleting: bool = False

    def get(self, job_id: str) -> Job:
        if job_id != "j1":
            raise JobNotFound(job_id)
        job = Job.new(
            "j1",
            filename="a.mp4",
            content_type="video/mp4",
            size=1,
            now="2026-01-01T00:00:00Z",
            owner="alice",
            title=self.title,
            passthrough=self.passthrough,
        )
        if self.deleting:
            job.status = JobStatus.DELETING
        return job


@dataclass
class FakeTimeline:
    recorded: list[TimelineEntry] = field(default_factory=list)

    def record(self, entry: TimelineEntry) -> None:
        self.recorded.append(entry)

    def entries(self, job_id: str) -> list[TimelineEntry]:
        return [entry for entry in self.recorded if entry.job_id == job_id]


@dataclass
class FakeSender:
    answers: dict[str, list[int]]
    sent: list[tuple[str, bytes, dict[str, str]]] = field(default_factory=list)

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        self.sent.append((url, body, headers))
        answer = self.answers[url].pop(0)
        if answer == 0:
            raise WebhookDeliveryFailed("no answer from the receiver: connection refused")
        return answer


def run_delivery(
    sender: FakeSender,
    timeline: FakeTimeline,
    registry: FakeRegistry,
    attempt: int,
    last: bool = False,
    jobs: FakeJobs | None = None,
) -> None:
    deliver(
        JobFinishedNotice.from_event(finished_event()),
        jobs=jobs or FakeJobs(),
        registry=registry,
        timeline=timeline,
        sender=sender,
        signing_keys=KEYS,
        invocation=Invocation("webhook", f"req-{attempt}"),
        attempt=attempt,
        last_attempt=last,
    )


def two_hooks() -> FakeRegistry:
    return FakeRegistry(
        [
            Webhook("alice", "ok", "https://ok.example/h?token=s3cret", "t"),
            Webhook("alice", "flaky", "https://flaky.example/h", "t"),
            Webhook("bob", "bobs", "https://bob.example/h", "t"),
        ]
    )


def test_GIVEN_one_receiver_failing_once_WHEN_delivered_twice_THEN_each_receiver_took_it_exactly_once() -> None:
    sender = FakeSender({"https://ok.example/h?token=s3cret": [200], "https://flaky.example/h": [500, 204]})
    timeline, registry = FakeTimeline(), two_hooks()

    with pytest.raises(WebhookDeliveryFailed, match="flaky: HTTP 500"):
        run_delivery(sender, timeline, registry, attempt=1)
    run_delivery(sender, timeline, registry, attempt=2)

    assert [url for url, _, _ in sender.sent] == [
        "https://ok.example/h?token=s3cret",
        "https://flaky.example/h",
        "https://flaky.example/h",
    ]
    assert [(e.details["webhook_id"], e.details["attempt"], e.details["outcome"]) for e in timeline.recorded] == [
        ("ok", 1, "delivered"),
        ("flaky", 1, "failed"),
        ("flaky", 2, "delivered"),
    ]
    assert timeline.recorded[0].details["url"] == "https://ok.example/h"  # the query (a token) is not shown
    assert timeline.recorded[0].request_id == "req-1" and timeline.recorded[2].function == "webhook"


def test_GIVEN_a_delivery_WHEN_sent_THEN_the_body_is_the_same_each_time_and_signed_with_the_hooks_secret() -> None:
    sender = FakeSender({"https://ok.example/h?token=s3cret": [200], "https://flaky.example/h": [500, 200]})
    timeline, registry = FakeTimeline(), two_hooks()
    with pytest.raises(WebhookDeliveryFailed):
        run_delivery(sender, timeline, registry, attempt=1)
    run_delivery(sender, timeline, registry, attempt=2)

    bodies = {body for _, body, _ in sender.sent}
    assert len(bodies) == 1
    assert json.loads(bodies.pop()) == {
        "id": "evt-1",
        "type": "job.ready",
        "occurred_at": "2025-03-14T09:27:41.204518Z",
        "job": {"job_id": "j1", "status": "READY", "error": None, "title": "Holiday", "passthrough": "order-42"},
    }
    for url, body, headers in sender.sent:
        hook_id = "ok" if "ok." in url else "flaky"
        verify_signature(signing_secret(KEY_1, "alice", hook_id), body, headers[SIGNATURE_HEADER])
        assert headers["Vidpipe-Delivery"] == "evt-1" and headers["Vidpipe-Event"] == "job.ready"


def test_GIVEN_an_unreachable_receiver_on_the_last_attempt_WHEN_delivered_THEN_gave_up_is_recorded() -> None:
    sender = FakeSender({"https://only.example/": [0]})
    timeline = FakeTimeline()

    with pytest.raises(WebhookDeliveryFailed, match="connection refused"):
        run_delivery(
            sender,
            timeline,
            FakeRegistry([Webhook("alice", "only", "https://only.example/", "t")]),
            attempt=5,
            last=True,
        )

    [entry] = timeline.recorded
    assert entry.details["outcome"] == "gave_up" and entry.details["error"]["code"] == "WEBHOOK_DELIVERY_FAILED"


def test_GIVEN_a_job_that_is_gone_WHEN_delivered_THEN_nothing_is_sent() -> None:
    sender, timeline = FakeSender({}), FakeTimeline()
    event = finished_event()
    event["detail"]["job_id"] = "gone"

    deliver(
        JobFinishedNotice.from_event(event),
        jobs=FakeJobs(),
        registry=two_hooks(),
        timeline=timeline,
        sender=sender,
        signing_keys=KEYS,
        invocation=Invocation("webhook", "r"),
        attempt=1,
        last_attempt=False,
    )

    assert sender.sent == [] and timeline.recorded == []


@pytest.mark.parametrize(
    "change", [{"source": "vidpipe.transcode"}, {"detail-type": "Transcode Completed"}, {"detail": None}]
)
def test_GIVEN_an_event_that_is_not_a_job_finishing_WHEN_read_THEN_validation_failed(change: dict) -> None:
    with pytest.raises(ValidationFailed):
        JobFinishedNotice.from_event({**finished_event(), **change})


def test_GIVEN_job_failed_WHEN_read_THEN_its_type_is_job_failed() -> None:
    assert JobFinishedNotice.from_event(finished_event("Job Failed")).kind == "job.failed"


def test_GIVEN_a_job_with_a_title_and_passthrough_WHEN_delivered_THEN_the_body_carries_both() -> None:
    sender = FakeSender({"https://ok.example/h": [200]})
    registry = FakeRegistry([Webhook("alice", "ok", "https://ok.example/h", "t")])

    run_delivery(sender, FakeTimeline(), registry, attempt=1)

    job = json.loads(sender.sent[0][1])["job"]
    assert (job["title"], job["passthrough"]) == ("Holiday", "order-42")


def test_GIVEN_a_job_without_them_WHEN_delivered_THEN_the_body_says_null() -> None:
    sender = FakeSender({"https://ok.example/h": [200]})
    registry = FakeRegistry([Webhook("alice", "ok", "https://ok.example/h", "t")])

    run_delivery(sender, FakeTimeline(), registry, attempt=1, jobs=FakeJobs(title=None, passthrough=None))

    job = json.loads(sender.sent[0][1])["job"]
    assert job["title"] is None and job["passthrough"] is None


def test_GIVEN_a_job_being_deleted_WHEN_its_finished_event_is_delivered_THEN_nobody_is_called() -> None:
    sender = FakeSender({"https://ok.example/h": [200]})
    registry = FakeRegistry([Webhook("alice", "ok", "https://ok.example/h", "t")])

    run_delivery(sender, FakeTimeline(), registry, attempt=1, jobs=FakeJobs(deleting=True))

    assert sender.sent == []
