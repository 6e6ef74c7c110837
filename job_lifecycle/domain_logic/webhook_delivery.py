"""Webhook delivery: when one of a user's jobs ends, each URL they registered
(upload_api's webhook routes) gets one signed "Job Ready" / "Job Failed".

Why a function behind a queue rather than an EventBridge API destination: an
API destination signs nothing of ours (it can add a static header, not an HMAC
over the body with a timestamp), takes one connection per destination (not
one per user's URL), and the local stack does not run API destinations. A rule
on "Job Ready"/"Job Failed" → SQS → this function is the same template on AWS
and locally, retries with our backoff and ends in a dead-letter queue.

Delivery is at least once. Each attempt is written to the job's timeline; a
retry skips the URLs that already answered 2xx for this event (their
"delivered" entry is in the timeline), so a receiver that answered gets no
second copy because another URL failed. The body, and its ``id``, are the same
on every attempt, so a receiver can still drop a copy it has seen.

What can go wrong: ValidationFailed for a message that is not a job finished
event; WebhookDeliveryFailed when some URL did not take the delivery (SQS
retries it), with code WEBHOOK_DESTINATION_REFUSED when its host now resolves
to a refused address (checked again at every delivery: DNS rebinding).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

from vidpipe.domain.access import SigningKeys
from vidpipe.domain.errors import JobNotFound, ValidationFailed, WebhookDeliveryFailed
from vidpipe.domain.events import utc_now
from vidpipe.domain.jobs import Job
from vidpipe.domain.timeline import Invocation, TimelineEntry
from vidpipe.domain.webhooks import SIGNATURE_HEADER, Webhook, sign, signing_secrets

FINISHED_TYPES = {"Job Ready": "job.ready", "Job Failed": "job.failed"}


class WebhookList(Protocol):
    def list(self, owner: str) -> list[Webhook]: ...


class OwnerLookup(Protocol):
    def get(self, job_id: str) -> Job: ...


class Timeline(Protocol):
    def record(self, entry: TimelineEntry) -> None: ...
    def entries(self, job_id: str) -> list[TimelineEntry]: ...


class Sender(Protocol):
    def post(self, url: str, body: bytes, headers: dict[str, str]) -> int: ...


@dataclass(frozen=True)
class JobFinishedNotice:
    """The "Job Ready"/"Job Failed" event as a webhook sends it."""

    delivery_id: str
    kind: str  # job.ready | job.failed
    job_id: str
    status: str
    error: dict[str, str] | None
    occurred_at: str

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> JobFinishedNotice:
        """Raises ValidationFailed for anything but our "Job Ready"/"Job Failed"."""
        detail = event.get("detail")
        kind = FINISHED_TYPES.get(str(event.get("detail-type")))
        if event.get("source") != "vidpipe.status" or kind is None or not isinstance(detail, dict):
            raise ValidationFailed(f"not a job finished event: {event.get('source')} {event.get('detail-type')}")
        try:
            job_id, status, occurred_at = str(detail["job_id"]), str(detail["status"]), str(detail["occurred_at"])
        except KeyError as exc:
            raise ValidationFailed(f"job finished event without {exc}") from exc
        # The id stays the same on every retry: the receiver's key to drop copies.
        # The job's outbox id first: the status function or the sweep may publish
        # the same "Job Ready" again (each PutEvents gets a new EventBridge id).
        identity = json.dumps(detail, sort_keys=True, default=str)
        delivery_id = str(
            detail.get("event_id") or event.get("id") or hashlib.sha256(identity.encode()).hexdigest()[:32]
        )
        return cls(
            delivery_id=delivery_id,
            kind=kind,
            job_id=job_id,
            status=status,
            error=detail.get("error"),
            occurred_at=occurred_at,
        )

    def body(self, *, title: str | None = None, passthrough: str | None = None) -> bytes:
        """The signed JSON body; ``title`` and ``passthrough`` are the job's as it is when sent."""
        payload = {
            "id": self.delivery_id,
            "type": self.kind,
            "occurred_at": self.occurred_at,
            "job": {
                "job_id": self.job_id,
                "status": self.status,
                "error": self.error,
                "title": title,
                "passthrough": passthrough,
            },
        }
        return json.dumps(payload, separators=(",", ":")).encode()


@dataclass
class DeliveryOutcome:
    delivered: list[str] = field(default_factory=list)
    already_delivered: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def deliver(
    notice: JobFinishedNotice,
    *,
    jobs: OwnerLookup,
    registry: WebhookList,
    timeline: Timeline,
    sender: Sender,
    signing_keys: SigningKeys,
    invocation: Invocation,
    attempt: int,
    last_attempt: bool,
) -> DeliveryOutcome:
    """Send ``notice`` to every webhook of the job's owner that has not taken it yet.

    Raises WebhookDeliveryFailed when one did not, after writing each attempt to the timeline."""
    outcome = DeliveryOutcome()
    try:
        job = jobs.get(notice.job_id)
    except JobNotFound:
        return outcome  # nobody to tell
    if job.is_deleting:
        return outcome  # deleted since it finished: nothing to tell about it
    owner = job.owner
    delivered_before = {
        entry.details.get("webhook_id")
        for entry in timeline.entries(notice.job_id)
        if entry.what == "webhook.attempt"
        and entry.details.get("delivery_id") == notice.delivery_id
        and entry.details.get("outcome") == "delivered"
    }
    body = notice.body(title=job.title, passthrough=job.passthrough)
    for hook in registry.list(owner):
        if hook.webhook_id in delivered_before:
            outcome.already_delivered.append(hook.webhook_id)
            continue
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "vidpipe-webhooks/1",
            "Vidpipe-Delivery": notice.delivery_id,
            "Vidpipe-Event": notice.kind,
            SIGNATURE_HEADER: sign(signing_secrets(signing_keys, owner, hook.webhook_id), body),
        }
        started, started_at = time.monotonic(), utc_now()
        details: dict[str, Any] = {
            "webhook_id": hook.webhook_id,
            "url": _shown_url(hook.url),
            "delivery_id": notice.delivery_id,
            "event": notice.kind,
            "attempt": attempt,
        }
        try:
            status = sender.post(hook.url, body, headers)
            details["status_code"] = status
            ok = 200 <= status < 300
            problem = "" if ok else f"HTTP {status}"
        except WebhookDeliveryFailed as exc:
            ok, problem = False, exc.message
            details["error"] = {"code": exc.code, "message": exc.message}
        details["duration_ms"] = round((time.monotonic() - started) * 1000)
        details["outcome"] = "delivered" if ok else ("gave_up" if last_attempt else "failed")
        timeline.record(
            TimelineEntry(
                job_id=notice.job_id,
                at=started_at,
                what="webhook.attempt",
                function=invocation.function,
                request_id=invocation.request_id,
                identity=f"{notice.delivery_id}|{hook.webhook_id}|{attempt}",
                details=details,
            )
        )
        if ok:
            outcome.delivered.append(hook.webhook_id)
        else:
            outcome.failed[hook.webhook_id] = problem
    if outcome.failed:
        raise WebhookDeliveryFailed(
            f"{len(outcome.failed)} webhook(s) did not take {notice.kind} of job {notice.job_id}: "
            + "; ".join(f"{hook_id}: {problem}" for hook_id, problem in outcome.failed.items())
        )
    return outcome


def _shown_url(url: str) -> str:
    """The URL without its query: a receiver may put a token there, and timelines are read by people."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"
