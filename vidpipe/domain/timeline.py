"""A job's timeline: every event and state change of one job, in time order.

Each entry says what happened (``what``: ``job.created``, ``job.uploaded``,
``transcode.started``, ``transcode.progress``, ``transcode.completed``,
``transcode.attempt_failed``, ``job.ready``, ``webhook.attempt``...), when
(``at``), which function did it (``function``, the service name) and in which
invocation (``request_id``, the Lambda request id), with ``details``.

Why a table of its own (``JobEventsTable``: partition ``job_id``, sort
``entry_key``) rather than items in the jobs table: the jobs table's key is
``job_id`` alone, and giving it a sort key would replace the table; a job's
entries under one partition come back in order with one Query, and the jobs
table's conditional writes never contend with timeline writes.

Delivery is at least once, so recording is idempotent: the sort key is
``{at}#{what}#{digest}``, where the digest is made from the entry's identity
(the event itself for an event, the SQS message and attempt for a failed
attempt...). A duplicate therefore lands on the same item; the write keeps the
first copy (``if_not_exists``) and counts ``deliveries``. The ``at`` prefix,
ISO-8601 UTC with microseconds, keeps the Query in time order.

The table itself: :mod:`vidpipe.adapters.timeline_store` (JobStoreError for
any DynamoDB failure).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any, Protocol

from vidpipe.domain.events import JobFinished, StageEvent, StageEventKind, UploadCompleted, utc_now


@dataclass(frozen=True)
class Invocation:
    """Which function ran and in which Lambda invocation: every timeline entry
    names both, so an entry leads straight to its log lines."""

    function: str
    request_id: str

    @classmethod
    def of(cls, context: Any) -> Invocation:
        # The service name (transcode, status...) rather than the deployed
        # function name, which CloudFormation suffixes with a random id.
        function = os.environ.get("POWERTOOLS_SERVICE_NAME") or str(getattr(context, "function_name", ""))
        return cls(function=function, request_id=str(getattr(context, "aws_request_id", "")))


@dataclass(frozen=True)
class TimelineEntry:
    job_id: str
    at: str
    what: str
    function: str
    request_id: str
    identity: str
    details: dict[str, Any] = field(default_factory=dict)
    recorded_at: str = field(default_factory=utc_now)
    deliveries: int = 1

    @property
    def entry_key(self) -> str:
        digest = hashlib.sha256(f"{self.what}|{self.identity}".encode()).hexdigest()[:16]
        return f"{self.at}#{self.what}#{digest}"

    def to_dict(self) -> dict[str, Any]:
        """The entry as the API returns it."""
        return {
            "at": self.at,
            "what": self.what,
            "function": self.function,
            "request_id": self.request_id,
            "details": self.details,
            "recorded_at": self.recorded_at,
            "deliveries": self.deliveries,
        }

    @classmethod
    def from_dict(cls, job_id: str, data: dict[str, Any]) -> TimelineEntry:
        return cls(
            job_id=job_id,
            at=str(data["at"]),
            what=str(data["what"]),
            function=str(data.get("function", "")),
            request_id=str(data.get("request_id", "")),
            identity=str(data.get("identity", "")),
            details=dict(data.get("details") or {}),
            recorded_at=str(data.get("recorded_at", data["at"])),
            deliveries=int(data.get("deliveries", 1)),
        )


class TimelineRecorder(Protocol):
    def record(self, entry: TimelineEntry) -> None: ...


def event_identity(event: dict[str, Any]) -> str:
    """What makes two deliveries the same event: its source, type and detail
    (EventBridge's duplicates repeat all three; a stage that runs again makes
    new events, with new times)."""
    body = {"source": event.get("source"), "detail-type": event.get("detail-type"), "detail": event.get("detail")}
    return json.dumps(body, sort_keys=True, default=str)


def entry_for_event(
    event: StageEvent | UploadCompleted,
    *,
    identity: str,
    recorded_by: Invocation,
    job_status: str | None = None,
) -> TimelineEntry:
    """The timeline entry of an upload or stage event, as the status function
    receives it. ``job_status`` is the job's status when this event changed it
    (None when it changed nothing: a duplicate, a stale report)."""
    details: dict[str, Any] = {"recorded_by": recorded_by.function, "recorded_by_request_id": recorded_by.request_id}
    if job_status is not None:
        details["job_status"] = job_status
    if isinstance(event, UploadCompleted):
        details["size"] = event.size
        return TimelineEntry(
            job_id=event.job_id,
            at=event.occurred_at,
            what="job.uploaded",
            function="s3",
            request_id="",
            identity=identity,
            details=details,
        )
    trace = event.trace or {}
    for name in ("attempt", "queued_at"):
        if trace.get(name) is not None:
            details[name] = trace[name]
    if event.progress is not None and event.kind is StageEventKind.PROGRESS:
        details["progress"] = event.progress
    if event.error:
        details["error"] = event.error
    if event.kind is StageEventKind.COMPLETED and event.outputs:
        details["outputs"] = _outputs_summary(event.outputs)
    return TimelineEntry(
        job_id=event.job_id,
        at=event.occurred_at,
        what=f"{event.stage.value}.{event.kind.value.lower()}",
        function=str(trace.get("function") or event.stage.value),
        request_id=str(trace.get("request_id") or ""),
        identity=identity,
        details=details,
    )


def entry_for_finished(finished: JobFinished, *, recorded_by: Invocation) -> TimelineEntry:
    """READY or FAILED: written once per job, by the one write that finished it."""
    details: dict[str, Any] = {"status": finished.status}
    if finished.error:
        details["error"] = finished.error
    return TimelineEntry(
        job_id=finished.job_id,
        at=finished.occurred_at,
        what=f"job.{finished.status.lower()}",
        function=recorded_by.function,
        request_id=recorded_by.request_id,
        identity="job.finished",
        details=details,
    )


def _outputs_summary(outputs: dict[str, Any]) -> dict[str, Any]:
    """Enough of a stage's outputs to read in a timeline (not every file name)."""
    summary: dict[str, Any] = {}
    renditions = outputs.get("renditions")
    if isinstance(renditions, list):
        summary["renditions"] = [str(r.get("name")) for r in renditions if isinstance(r, dict)]
    thumbnails = outputs.get("thumbnails")
    if isinstance(thumbnails, list):
        summary["thumbnails"] = len(thumbnails)
    if outputs.get("prefix"):
        summary["prefix"] = outputs["prefix"]
    return summary
