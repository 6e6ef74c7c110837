"""Which event an SQS message of the status queue carries: one of our stage
events, S3's "Object Created" for an upload, or a MediaConvert state change
read as a transcode event. Its own module so that the event models
(:mod:`vidpipe.domain.events`) and the MediaConvert reading
(:mod:`vidpipe.domain.mediaconvert_events`, built on them) need not import each other.

What can go wrong: :func:`parse_event` raises ValidationFailed for an event it
does not understand (a newer ``version``, a missing ``job_id``...).
"""

from __future__ import annotations

import json
from typing import Any

from vidpipe.domain.errors import ValidationFailed
from vidpipe.domain.events import (
    EVENT_VERSION,
    SOURCE_PREFIX,
    Stage,
    StageEvent,
    StageEventKind,
    UploadCompleted,
    parse_object_created,
)
from vidpipe.domain.mediaconvert_events import parse_state_change


def parse_event(event: dict[str, Any]) -> StageEvent | UploadCompleted:
    """Parse one EventBridge event (as delivered in an SQS message body)."""
    detail = event.get("detail")
    if not isinstance(detail, dict):
        raise ValidationFailed("event has no detail")
    source = str(event.get("source", ""))
    if source == "aws.s3" and event.get("detail-type") == "Object Created":
        return parse_object_created(event)
    if source == "aws.mediaconvert":
        # The MediaConvert backend's state changes stand for transcode events.
        return parse_state_change(event)
    if not source.startswith(SOURCE_PREFIX):
        raise ValidationFailed(f"unknown event source {source!r}")
    if detail.get("version") != EVENT_VERSION:
        raise ValidationFailed(f"unsupported event version {detail.get('version')!r}")
    try:
        return StageEvent(
            job_id=str(detail["job_id"]),
            stage=Stage(detail["stage"]),
            kind=StageEventKind(detail["kind"]),
            occurred_at=str(detail["occurred_at"]),
            progress=float(detail["progress"]) if detail.get("progress") is not None else None,
            source=detail.get("source"),
            outputs=detail.get("outputs"),
            error=detail.get("error"),
            chunks=detail.get("chunks"),
            trace=detail["trace"] if isinstance(detail.get("trace"), dict) else None,
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise ValidationFailed(f"malformed stage event: {exc}") from exc


def parse_sqs_body(body: str) -> StageEvent | UploadCompleted:
    """An SQS record's body holds the EventBridge event as JSON."""
    try:
        event = json.loads(body)
    except json.JSONDecodeError as exc:
        raise ValidationFailed("SQS message body is not JSON") from exc
    if not isinstance(event, dict):
        raise ValidationFailed("SQS message body is not a JSON object")
    return parse_event(event)
