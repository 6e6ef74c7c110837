"""Versioned, typed events that the stages publish and the status function reads.

Stages publish to the custom bus (``EVENT_BUS_NAME``) with
``source = "vidpipe.<stage>"`` and ``detail-type = "<Stage> <Kind>"``, e.g.
``"Transcode Completed"``. The detail always carries ``version`` and ``job_id``
(the correlation id of every log line and metric).

The status function also reads S3's own "Object Created" event (from the
default bus), which marks the upload as done (:func:`parse_object_created`).
Which of these, or of MediaConvert's events, an incoming message is:
:mod:`vidpipe.domain.inbound_events`.

What can go wrong: the parsers raise ValidationFailed for an event they do not
understand (a missing ``job_id``, a key outside the layout...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from vidpipe.domain.errors import ValidationFailed
from vidpipe.domain.storage_keys import job_id_from_upload_key

EVENT_VERSION = 1
SOURCE_PREFIX = "vidpipe."


class Stage(StrEnum):
    TRANSCODE = "transcode"
    THUMBNAILS = "thumbnails"


class StageEventKind(StrEnum):
    STARTED = "Started"
    PROGRESS = "Progress"
    COMPLETED = "Completed"
    FAILED = "Failed"


def iso_utc(moment: datetime) -> str:
    """ISO-8601 UTC with microseconds: sortable as text, precise enough to order events."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def utc_now() -> str:
    return iso_utc(datetime.now(UTC))


@dataclass(frozen=True)
class StageEvent:
    """One step of one stage of one job.

    ``progress`` is 0..1 (Progress events); ``source`` is the probed source
    description (Started events of the transcode stage); ``outputs`` are S3 keys
    (Completed); ``error`` is ``{code, message}`` (Failed)."""

    job_id: str
    stage: Stage
    kind: StageEventKind
    occurred_at: str = field(default_factory=utc_now)
    progress: float | None = None
    source: dict[str, Any] | None = None
    outputs: dict[str, Any] | None = None
    error: dict[str, str] | None = None
    version: int = EVENT_VERSION
    # Chunked transcodes (Progress events): {"total": n} when the source is split,
    # {"total": n, "finished": [index]} when a chunk's encode is done.
    chunks: dict[str, Any] | None = None
    # Who published it: {function, request_id, attempt, queued_at} of the stage
    # invocation, for the job's timeline (vidpipe.domain.timeline). Optional: events
    # without it are read as before.
    trace: dict[str, Any] | None = None

    @property
    def detail_type(self) -> str:
        return f"{self.stage.value.title()} {self.kind.value}"

    def detail(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "version": self.version,
            "job_id": self.job_id,
            "stage": self.stage.value,
            "kind": self.kind.value,
            "occurred_at": self.occurred_at,
        }
        for name in ("progress", "source", "outputs", "error", "chunks", "trace"):
            value = getattr(self, name)
            if value is not None:
                body[name] = value
        return body


@dataclass(frozen=True)
class UploadCompleted:
    """S3 says the source object exists: the upload is done.

    ``etag``, ``version_id`` (only when the bucket keeps versions and S3 says
    which; ministack does not) and ``sequencer`` (orders the writes to one key)
    tell this write of the key from any later one: the job pins the first it
    accepts and every stage reads exactly that (vidpipe.domain.job_transitions.accept_upload)."""

    job_id: str
    bucket: str
    key: str
    size: int
    occurred_at: str
    etag: str = ""
    version_id: str = ""
    sequencer: str = ""

    def identity(self) -> dict[str, str]:
        """Which write of the key this is, as the job records it when it accepts it."""
        return {"etag": self.etag, "version_id": self.version_id, "sequencer": self.sequencer}


@dataclass(frozen=True)
class JobFinished:
    """Published by the status function when a job reaches READY or FAILED."""

    job_id: str
    status: str
    error: dict[str, str] | None = None
    occurred_at: str = field(default_factory=utc_now)
    # Stable across re-publishing (the job's outbox id): EventBridge gives each
    # PutEvents a new ``id``, so consumers drop copies by this one.
    event_id: str | None = None

    @property
    def detail_type(self) -> str:
        return "Job Ready" if self.status == "READY" else "Job Failed"

    def detail(self) -> dict[str, Any]:
        return {
            "version": EVENT_VERSION,
            "job_id": self.job_id,
            "status": self.status,
            "error": self.error,
            "occurred_at": self.occurred_at,
        } | ({"event_id": self.event_id} if self.event_id else {})


def parse_object_created(event: dict[str, Any]) -> UploadCompleted:
    """Parse S3's EventBridge "Object Created" event for an upload key."""
    detail = event.get("detail") or {}
    try:
        bucket = str(detail["bucket"]["name"])
        key = str(detail["object"]["key"])
        size = int(detail["object"].get("size", 0))
        written = detail["object"]
    except (KeyError, TypeError, ValueError) as exc:
        raise ValidationFailed(f"malformed Object Created event: {exc}") from exc
    return UploadCompleted(
        job_id=job_id_from_upload_key(key),
        bucket=bucket,
        key=key,
        size=size,
        occurred_at=str(event.get("time") or utc_now()),
        etag=str(written.get("etag") or "").strip('"'),
        version_id=str(written.get("version-id") or ""),
        sequencer=str(written.get("sequencer") or ""),
    )


# ---------------------------------------------------------------- chunked transcodes
# Work orders for the chunk-encode function, on the vidpipe bus under their own
# source, so the status function's rule does not pick them up.
CHUNKS_SOURCE = "vidpipe.chunks"


@dataclass(frozen=True)
class ChunkRequested:
    """Encode one chunk: published by the transcode planner, once per chunk.

    ``task`` is the encoding task (transcode.domain_logic.chunk_planning.ChunkTask as a
    dict: the chunk's bounds and the job's encoding parameters); ``source_key``
    names the file in the uploads bucket the chunk reads its part of (the upload
    itself, or its remux into an indexed container); ``source_version`` is the
    upload's version the job accepted (empty for the remux, which only our
    functions write): a later write to the key is never read."""

    job_id: str
    index: int
    total: int
    task: dict[str, Any]
    source_key: str
    occurred_at: str = field(default_factory=utc_now)
    source_version: str = ""

    detail_type = "Chunk Requested"

    def detail(self) -> dict[str, Any]:
        return {
            "version": EVENT_VERSION,
            "job_id": self.job_id,
            "index": self.index,
            "total": self.total,
            "task": self.task,
            "source_key": self.source_key,
            "source_version": self.source_version,
            "occurred_at": self.occurred_at,
        }


@dataclass(frozen=True)
class StitchRequested:
    """Every chunk of the job is encoded: write the playlists. Published by the
    status function when the job record counts the last chunk."""

    job_id: str
    total: int
    occurred_at: str = field(default_factory=utc_now)

    detail_type = "Stitch Requested"

    def detail(self) -> dict[str, Any]:
        return {"version": EVENT_VERSION, "job_id": self.job_id, "total": self.total, "occurred_at": self.occurred_at}


def parse_chunk_work(event: dict[str, Any]) -> ChunkRequested | StitchRequested:
    """Parse a "Chunk Requested" or "Stitch Requested" event. Raises ValidationFailed."""
    detail = event.get("detail")
    if event.get("source") != CHUNKS_SOURCE or not isinstance(detail, dict):
        raise ValidationFailed(f"not a chunk work order: source {event.get('source')!r}")
    if detail.get("version") != EVENT_VERSION:
        raise ValidationFailed(f"unsupported event version {detail.get('version')!r}")
    try:
        if event.get("detail-type") == ChunkRequested.detail_type:
            return ChunkRequested(
                job_id=str(detail["job_id"]),
                index=int(detail["index"]),
                total=int(detail["total"]),
                task=dict(detail["task"]),
                source_key=str(detail["source_key"]),
                occurred_at=str(detail["occurred_at"]),
                source_version=str(detail.get("source_version") or ""),
            )
        if event.get("detail-type") == StitchRequested.detail_type:
            return StitchRequested(
                job_id=str(detail["job_id"]), total=int(detail["total"]), occurred_at=str(detail["occurred_at"])
            )
    except (KeyError, ValueError, TypeError) as exc:
        raise ValidationFailed(f"malformed chunk work order: {exc}") from exc
    raise ValidationFailed(f"unknown chunk work order {event.get('detail-type')!r}")
