"""`vidpipe trace JOB_ID`: what happened to a job, and where the time went.

Reads the job's timeline (``GET /jobs/{id}/events``, see vidpipe/domain/timeline.py)
and prints each entry with the time since the job was created and since the
previous entry, then the time split into its parts: the upload, and for each
attempt of each stage the wait in its queue (from the moment SQS got the
message to the moment the function started, retry backoff included) and the
work (from start to completed, failed or the failed attempt), the delay of the
status updates (event to record), and the webhook deliveries.

Everything here is pure: it takes the API's answer and returns text.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

STAGE_ENDINGS = ("completed", "failed", "attempt_failed")


def parse_time(stamp: str) -> datetime:
    """ISO-8601 as we and AWS write it (``Z`` or an offset, with or without fractions)."""
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def seconds_between(start: str, end: str) -> float:
    return (parse_time(end) - parse_time(start)).total_seconds()


@dataclass(frozen=True)
class Attempt:
    """One run of a stage: one Lambda invocation."""

    stage: str
    request_id: str
    number: int | None
    queued_at: str | None
    started_at: str | None
    ended_at: str | None
    outcome: str  # completed, failed, attempt_failed, or running

    @property
    def queue_wait_s(self) -> float | None:
        if self.queued_at and self.started_at:
            return max(0.0, seconds_between(self.queued_at, self.started_at))
        return None

    @property
    def work_s(self) -> float | None:
        if self.started_at and self.ended_at:
            return max(0.0, seconds_between(self.started_at, self.ended_at))
        return None


def stage_attempts(events: list[dict[str, Any]]) -> list[Attempt]:
    """The attempts of every stage, in the order they started. Entries of one
    attempt share its request id (the stage puts it on each event it sends)."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for event in events:
        stage, _, step = event["what"].partition(".")
        if stage in ("job", "upload", "webhook") or not step:
            continue
        key = (stage, event.get("request_id") or f"unknown-{len(found)}")
        attempt = found.setdefault(
            key,
            {
                "stage": stage,
                "request_id": key[1],
                "number": None,
                "queued_at": None,
                "started_at": None,
                "ended_at": None,
                "outcome": "running",
            },
        )
        details = event.get("details") or {}
        attempt["number"] = attempt["number"] or details.get("attempt")
        attempt["queued_at"] = attempt["queued_at"] or details.get("queued_at")
        if step == "started":
            attempt["started_at"] = event["at"]
        elif step in STAGE_ENDINGS and attempt["ended_at"] is None:
            attempt["ended_at"], attempt["outcome"] = event["at"], step
    return [Attempt(**values) for values in found.values()]


def time_spent(events: list[dict[str, Any]]) -> list[tuple[str, float]]:
    """(what, seconds) pairs that say where the job's time went."""
    first = {event["what"]: event for event in reversed(events)}  # the first entry of each kind
    spent: list[tuple[str, float]] = []
    if "job.created" in first and "job.uploaded" in first:
        spent.append(
            (
                "upload (created → S3 has the file)",
                seconds_between(first["job.created"]["at"], first["job.uploaded"]["at"]),
            )
        )
    for attempt in stage_attempts(events):
        label = f"{attempt.stage} attempt {attempt.number or '?'}"
        if attempt.queue_wait_s is not None:
            # From SQS's send to the function's start: a cold start counts here too.
            spent.append((f"{label}: queued until started", attempt.queue_wait_s))
        if attempt.work_s is not None:
            spent.append((f"{label}: work ({attempt.outcome.replace('_', ' ')})", attempt.work_s))
    lags = [
        seconds_between(e["at"], e["recorded_at"])
        for e in events
        if (e.get("details") or {}).get("recorded_by") and e.get("recorded_at")
    ]
    if lags:
        spent.append((f"status updates: event → job record (mean of {len(lags)})", sum(lags) / len(lags)))
        spent.append(("status updates: slowest", max(lags)))
    finished = first.get("job.ready") or first.get("job.failed")
    if finished and "job.created" in first:
        spent.append(
            (
                f"total: created → {finished['what'].split('.')[1]}",
                seconds_between(first["job.created"]["at"], finished["at"]),
            )
        )
    webhooks = [e for e in events if e["what"] == "webhook.attempt"]
    if finished and webhooks:
        spent.append(
            ("webhook: job finished → first delivery attempt", seconds_between(finished["at"], webhooks[0]["at"]))
        )
    return spent


def describe(event: dict[str, Any]) -> str:
    """The details of one entry, in a few words."""
    details = dict(event.get("details") or {})
    words = []
    if "attempt" in details:
        words.append(f"attempt {details['attempt']}")
    if "progress" in details:
        words.append(f"{float(details['progress']) * 100:.0f}%")
    if "size" in details:
        words.append(f"{int(details['size']) / 1e6:.2f} MB")
    if "filename" in details:
        words.append(str(details["filename"]))
    if details.get("queued_at") and event["what"].endswith(".started"):
        words.append(f"queued {seconds_between(details['queued_at'], event['at']):.2f} s before it")
    outputs = details.get("outputs") or {}
    if outputs.get("renditions"):
        words.append("renditions " + ",".join(outputs["renditions"]))
    if "thumbnails" in outputs:
        words.append(f"{outputs['thumbnails']} thumbnails")
    if details.get("error"):
        words.append(f"{details['error'].get('code')}: {details['error'].get('message', '')[:80]}")
    if "retry_in_s" in details:
        words.append(f"retry in {details['retry_in_s']} s")
    if details.get("dead_letter"):
        words.append("message to the dead-letter queue")
    if "status_code" in details:
        words.append(f"HTTP {details['status_code']}")
    if "outcome" in details:
        words.append(str(details["outcome"]))
    if "url" in details:
        words.append(str(details["url"]))
    if details.get("job_status"):
        words.append(f"→ job {details['job_status']}")
    if int(event.get("deliveries", 1)) > 1:
        words.append(f"delivered {event['deliveries']}×")
    return ", ".join(words)


def format_trace(answer: dict[str, Any]) -> str:
    """The text `vidpipe trace` prints for ``GET /jobs/{id}/events``'s answer."""
    events = answer.get("events") or []
    lines = [f"job {answer.get('job_id', '?')}  {answer.get('status', '?')}  ({len(events)} events)"]
    if not events:
        return "\n".join(lines + ["  no events recorded"])
    origin = events[0]["at"]
    lines.append(f"  {'since start':>11}  {'step':>8}  {'what':<26} {'function':<11} {'request':<8}  details")
    previous = origin
    for event in events:
        since, step = seconds_between(origin, event["at"]), seconds_between(previous, event["at"])
        request = (event.get("request_id") or "")[:8]
        lines.append(
            f"  {since:>10.3f}s  {step:>7.3f}s  {event['what']:<26} {event.get('function', ''):<11} "
            f"{request:<8}  {describe(event)}".rstrip()
        )
        previous = event["at"]
    spent = time_spent(events)
    if spent:
        lines.append("where the time went:")
        width = max(len(label) for label, _ in spent)
        lines += [f"  {label:<{width}}  {seconds:8.3f} s" for label, seconds in spent]
    return "\n".join(lines)
