"""What a stage's work function gets (:class:`StageContext`), what a stage
message asks for (:class:`StageInput`), the stores the stage runner reads and
writes through (Protocols: boto3 adapters in Lambda, fakes in tests), and the
wait for the job to accept its upload (:func:`admit_upload`).

What can go wrong: :func:`upload_input` raises ValidationFailed for an event
that is not an upload of ours; :func:`admit_upload` raises UploadNotAccepted
when the job has not decided in time, and whatever the store raises.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from vidpipe.domain.errors import JobNotFound, UploadNotAccepted
from vidpipe.domain.events import UploadCompleted, parse_object_created
from vidpipe.domain.job_transitions import awaits_acceptance, why_no_stage_runs
from vidpipe.domain.jobs import Job


class EventPublisher(Protocol):
    def publish(self, event: Any) -> None: ...


class SourceStore(Protocol):
    def download(self, key: str, path: Path, *, version_id: str | None = None, etag: str | None = None) -> None: ...
    def presigned_get(self, key: str, *, expires_s: int, version_id: str | None = None) -> str: ...
    def version_with_etag(self, key: str, etag: str) -> str | None: ...


class JobReader(Protocol):
    """What a stage reads of the job store (DynamoJobStore): the job, never a write.
    Raises JobNotFound."""

    def get(self, job_id: str) -> Job: ...


class OutputStore(Protocol):
    def upload_tree(self, local_dir: Path, prefix: str) -> list[str]: ...
    # Removes a deleted job's folder (vidpipe.runtime.deletion_guard).
    def delete_prefix(self, prefix: str) -> int: ...


@dataclass
class StageContext:
    """What a stage's work function gets: where the source is, where to write,
    and how to report progress (0..1; throttled before it reaches the bus)."""

    job_id: str
    source_path: Path
    output_dir: Path
    report_progress: Callable[[float], None]
    report_source: Callable[[dict[str, Any]], None] = field(default=lambda _: None)
    # Early playback: upload what output_dir holds now and announce these outputs
    # as playable (a Progress event with outputs and "playable": true).
    publish_playable: Callable[[dict[str, Any]], None] = field(default=lambda _: None)
    # Every object fetched for the stage, by local name (``source`` for an upload).
    inputs: dict[str, Path] = field(default_factory=dict)
    # For a stage run with fetch_inputs_first=False: download the inputs now
    # (once; later calls do nothing), or get a URL FFmpeg can read one by ranges.
    fetch_inputs: Callable[[], None] = field(default=lambda: None)
    input_url: Callable[[str], str] = field(default=lambda name: "")
    # The version each input is read at (the accepted upload's), by local name;
    # whoever reads an input some other way (chunk orders, MediaConvert) asks for it.
    input_versions: dict[str, str] = field(default_factory=dict)


# The outputs' description, or None when another service finishes the stage.
StageWork = Callable[[StageContext], dict[str, Any] | None]


@dataclass(frozen=True)
class StageInput:
    """The job a stage message is about, and the objects to fetch for it
    (local file name → key in the stage's input bucket)."""

    job_id: str
    objects: dict[str, str]
    # Set when the input is the user's upload: the job must accept it first.
    upload: UploadCompleted | None = None


def upload_input(eventbridge_event: dict[str, Any]) -> StageInput:
    """S3's "Object Created" for an upload: fetch the source. Raises ValidationFailed otherwise."""
    upload = parse_object_created(eventbridge_event)
    return StageInput(job_id=upload.job_id, objects={"source": upload.key}, upload=upload)


# The status function gets the same "Object Created" as the stages, at the same
# moment, and is the job's one writer: a stage that reads the job first waits
# this long for it to accept the upload, then leaves the message to SQS's retry.
ACCEPTANCE_WAIT_S = 20.0
ACCEPTANCE_POLL_S = 1.0


def admit_upload(
    jobs: JobReader,
    upload: UploadCompleted,
    *,
    wait_s: float = ACCEPTANCE_WAIT_S,
) -> str | None:
    """None when a stage may work on ``upload``, otherwise why not (no such
    job, another write of the key accepted, the job cancelled, expired or
    finished: see vidpipe.domain.job_transitions.why_no_stage_runs).

    The job accepts its upload when the status function applies the upload's
    event (vidpipe.domain.job_transitions.accept_upload); until it has, this re-reads the job.
    Raises UploadNotAccepted when it still has not after ``wait_s`` (SQS
    delivers the message again), and whatever the store raises."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            job = jobs.get(upload.job_id)
        except JobNotFound:
            return "no such job (an object put in the bucket by hand?)"
        if not awaits_acceptance(job):
            return why_no_stage_runs(job, upload)
        if time.monotonic() >= deadline:
            raise UploadNotAccepted(f"job {upload.job_id} has not accepted its upload after {wait_s:.0f} s")
        time.sleep(ACCEPTANCE_POLL_S)
