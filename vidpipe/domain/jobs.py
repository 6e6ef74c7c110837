"""The job record: its statuses, its stages, and how it is stored as a dict.

The rules that move a job forward (at least once, in any order) are in
:mod:`vidpipe.domain.job_transitions`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from vidpipe.domain.events import Stage


class JobStatus(StrEnum):
    AWAITING_UPLOAD = "AWAITING_UPLOAD"
    UPLOADED = "UPLOADED"
    PROCESSING = "PROCESSING"
    READY = "READY"
    FAILED = "FAILED"
    EXPIRED = "EXPIRED"
    # DELETE /jobs/{id} has begun: the job is hidden from the API, every stage
    # drops its work, and the record goes once the files are gone.
    DELETING = "DELETING"


class StageStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


TERMINAL_JOB_STATUSES = frozenset({JobStatus.READY, JobStatus.FAILED, JobStatus.EXPIRED})
# Error codes of failures the sweep infers from silence; a late COMPLETED report overrides them.
SWEEP_VERDICTS = frozenset({"DEAD_LETTERED", "STAGE_STALLED"})
# The open states the job store indexes (``open_state``), by which the sweep
# asks for the jobs that are not finished: awaiting the upload, in progress
# (UPLOADED or PROCESSING), READY/FAILED with "Job Ready"/"Job Failed" still
# in the outbox, or being deleted (a DELETE that stopped half way).
AWAITING_UPLOAD = "AWAITING_UPLOAD"
IN_PROGRESS = "IN_PROGRESS"
FINISHED_EVENT_PENDING = "FINISHED_EVENT_PENDING"
BEING_DELETED = "BEING_DELETED"


@dataclass
class StageState:
    status: StageStatus = StageStatus.PENDING
    progress: float = 0.0
    outputs: dict[str, Any] = field(default_factory=dict)
    # A chunked transcode: {"total": n, "done": k, "finished": [chunk indexes]};
    # empty otherwise (and then left out of the record).
    chunks: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        record = {"status": self.status.value, "progress": self.progress, "outputs": self.outputs}
        if self.chunks:
            record["chunks"] = self.chunks
        return record

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StageState:
        return cls(
            status=StageStatus(data.get("status", StageStatus.PENDING)),
            progress=float(data.get("progress", 0.0)),
            outputs=dict(data.get("outputs") or {}),
            chunks=dict(data.get("chunks") or {}),
        )


@dataclass
class Job:
    """One upload and everything made from it. ``version`` is the optimistic
    lock the job store checks on every write."""

    job_id: str
    status: JobStatus
    created_at: str
    updated_at: str
    source: dict[str, Any]
    stages: dict[Stage, StageState] = field(default_factory=lambda: {stage: StageState() for stage in Stage})
    error: dict[str, str] | None = None
    # How the bytes come in: empty for a single presigned POST; for a multipart
    # upload {upload_id, part_size, part_count}, which the parts/complete/abort
    # calls need. Never shown to clients as is.
    upload: dict[str, Any] = field(default_factory=dict)
    # The API user who created the job; only they see it.
    owner: str = "anonymous"
    version: int = 0
    # When the first rendition could be played (early playback), before READY.
    playable_at: str | None = None
    # The outbox of "Job Ready" / "Job Failed": {id, status, occurred_at, pending}.
    # Written in the same conditional save that makes the job READY or FAILED,
    # so the event cannot be forgotten when the publish after the save fails;
    # ``pending`` is cleared once the event is on the bus. The id stays the same
    # on every retry, so receivers can drop the copies (see mark_finished).
    finished_event: dict[str, Any] | None = None
    # The user's name for the video (renamed with PATCH /jobs/{id}) and their
    # own opaque string (Mux's passthrough): both shown back and sent with webhooks.
    title: str | None = None
    passthrough: str | None = None
    # Caption files added to the READY job (POST /jobs/{id}/captions), in order:
    # {caption_id, language, label, filename, content_type, size, status, error}
    # with status AWAITING_UPLOAD, READY or FAILED (that caption only, never the job).
    captions: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def new(
        cls,
        job_id: str,
        *,
        filename: str,
        content_type: str,
        size: int,
        now: str,
        owner: str = "anonymous",
        title: str | None = None,
        passthrough: str | None = None,
    ) -> Job:
        return cls(
            job_id=job_id,
            owner=owner,
            status=JobStatus.AWAITING_UPLOAD,
            created_at=now,
            updated_at=now,
            source={"filename": filename, "content_type": content_type, "size": size},
            title=title,
            passthrough=passthrough,
        )

    def to_dict(self) -> dict[str, Any]:
        return (
            {
                "job_id": self.job_id,
                "status": self.status.value,
                "created_at": self.created_at,
                "updated_at": self.updated_at,
                "source": self.source,
                "stages": {stage.value: state.to_dict() for stage, state in self.stages.items()},
                "error": self.error,
                "upload": self.upload,
                "owner": self.owner,
                "version": self.version,
            }
            | ({"playable_at": self.playable_at} if self.playable_at else {})
            | ({"finished_event": self.finished_event} if self.finished_event else {})
            | ({"title": self.title} if self.title is not None else {})
            | ({"passthrough": self.passthrough} if self.passthrough is not None else {})
            | ({"captions": self.captions} if self.captions else {})
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Job:
        stages = data.get("stages") or {}
        return cls(
            job_id=str(data["job_id"]),
            status=JobStatus(data["status"]),
            created_at=str(data["created_at"]),
            updated_at=str(data["updated_at"]),
            source=dict(data.get("source") or {}),
            stages={stage: StageState.from_dict(stages.get(stage.value) or {}) for stage in Stage},
            error=data.get("error"),
            upload=dict(data.get("upload") or {}),
            owner=str(data.get("owner") or "anonymous"),
            version=int(data.get("version", 0)),
            playable_at=data.get("playable_at"),
            finished_event=data.get("finished_event"),
            title=data.get("title"),
            passthrough=data.get("passthrough"),
            captions=[dict(caption) for caption in data.get("captions") or []],
        )

    @property
    def is_deleting(self) -> bool:
        """DELETE /jobs/{id} has begun: no stage may write for this job any more."""
        return self.status is JobStatus.DELETING

    @property
    def finished_event_pending(self) -> bool:
        return bool(self.finished_event and self.finished_event.get("pending"))
