"""Importing a job's source from its URL: stream the answer into the job's
upload key with S3 multipart, one part in memory at a time, so S3 sends the
same "Object Created" event a browser upload does and the pipeline runs
unchanged.

A job created with a ``source_url`` waits AWAITING_UPLOAD like any other; its
import message may come more than once (at least once), and the user may
cancel it meanwhile, so :func:`import_source` works only for a job that still
awaits its source, and an upload key already written (an earlier attempt got
through) counts as imported.

Bounds: at most ``max_bytes`` (the largest upload: the stages' scratch space),
the whole download within ``deadline_s``, and the owner's daily bytes charged
before the object is completed (the size is known only then).

A job it fails gets its "Job Failed" in the outbox and, given a ``publisher``,
published at once (webhooks go out now, not when the sweep finds it).

What can go wrong, each ending the job FAILED with the error's code:
SourceUnreachable (no usable answer; retried first when ``retryable``),
SourceNotVideo (a web page, text, an image, a playlist), SourceTooLarge,
DestinationRefused (SOURCE_URL_REFUSED: a redirect or a new DNS answer leads
inside), QuotaExceeded (the day's bytes). StorageError and JobStoreError are
raised: the message is retried.
"""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from vidpipe.domain import storage_keys
from vidpipe.domain.errors import (
    DestinationRefused,
    EventPublishError,
    QuotaExceeded,
    SourceImportFailed,
    SourceNotVideo,
    SourceTooLarge,
    SourceUnreachable,
    UploadNotOpen,
)
from vidpipe.domain.events import iso_utc
from vidpipe.domain.finished_event_outbox import FinishedEventPublisher, publish_finished_event
from vidpipe.domain.job_transitions import end_upload, mark_finished
from vidpipe.domain.jobs import Job, JobStatus
from vidpipe.domain.quotas import OwnerLimits, UsageStore, release_if_ended, usage_day
from vidpipe.domain.stored_objects import UploadedPart

MiB = 1024 * 1024
# Above S3's 5 MiB floor for every part but the last; one part is what we hold in memory.
PART_BYTES = 8 * MiB
READ_BYTES = 1 * MiB
STORED_CONTENT_TYPE = "application/octet-stream"
_VIDEO_TYPE = re.compile(r"video/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")
# Answers that are certainly no video file, by their Content-Type. Anything else
# (application/octet-stream, binary/octet-stream, no type at all) is left to the
# probe, which reads the bytes.
_NOT_VIDEO_PREFIXES = ("text/", "image/")
_NOT_VIDEO_TYPES = frozenset(
    {
        "application/json",
        "application/xml",
        "application/xhtml+xml",
        "application/javascript",
        "application/pdf",
        "application/vnd.apple.mpegurl",
        "application/x-mpegurl",
        "audio/mpegurl",
        "audio/x-mpegurl",
        "application/dash+xml",
    }
)


class FetchedSource(Protocol):
    content_type: str
    content_length: int | None

    def chunks(self, size: int) -> Iterator[bytes]: ...

    def close(self) -> None: ...


class SourceFetcher(Protocol):
    def open(self, url: str) -> FetchedSource: ...


class JobStore(Protocol):
    def get(self, job_id: str) -> Job: ...

    def save(self, job: Job, *, expected_version: int) -> Job: ...


class StreamingUploads(Protocol):
    def start_multipart(self, key: str, *, content_type: str) -> str: ...

    def upload_part(self, key: str, *, upload_id: str, part_number: int, body: bytes) -> UploadedPart: ...

    def complete_multipart(self, key: str, *, upload_id: str, parts: list[UploadedPart]) -> None: ...

    def abort_multipart(self, key: str, *, upload_id: str) -> None: ...


@dataclass(frozen=True)
class ImportLimits:
    max_bytes: int
    deadline_s: float


@dataclass(frozen=True)
class ImportQuota:
    """The owner's daily bytes (vidpipe.domain.quotas): charged once the size is known."""

    limits: OwnerLimits
    usage: UsageStore


@dataclass(frozen=True)
class ImportOutcome:
    job_id: str
    result: str  # "imported", "skipped" or "failed"
    detail: str = ""
    size: int = 0


def import_source(
    job_id: str,
    *,
    jobs: JobStore,
    fetcher: SourceFetcher,
    store: StreamingUploads,
    limits: ImportLimits,
    quota: ImportQuota | None = None,
    publisher: FinishedEventPublisher | None = None,
    last_attempt: bool = True,
    clock: Callable[[], float] = time.monotonic,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> ImportOutcome:
    """Fetch the job's source into its upload key, or end the job FAILED with
    the reason. Raises a retryable SourceUnreachable (unless ``last_attempt``)
    and our own infrastructure errors, for the message to be tried again."""
    job = jobs.get(job_id)
    url = str(job.upload.get("source_url") or "")
    if not url:
        return ImportOutcome(job_id, "skipped", "the job has no source_url")
    if job.status is not JobStatus.AWAITING_UPLOAD:
        return ImportOutcome(job_id, "skipped", f"the job is {job.status.value}: its source is decided")
    try:
        size = _stream_into_upload_key(
            job, url, fetcher=fetcher, store=store, limits=limits, quota=quota, now=now, clock=clock
        )
    except SourceImportFailed as exc:
        if exc.retryable and not last_attempt:
            raise
        return _fail(job, exc.to_dict(), jobs=jobs, quota=quota, publisher=publisher, now=now())
    except (DestinationRefused, SourceTooLarge, QuotaExceeded) as exc:
        return _fail(job, exc.to_dict(), jobs=jobs, quota=quota, publisher=publisher, now=now())
    return ImportOutcome(job_id, "imported", size=size)


def not_video_reason(content_type: str, first_bytes: bytes) -> str | None:
    """Why an answer is certainly not a video file (by its type or its first
    bytes), or None when the probe should decide."""
    if content_type.startswith(_NOT_VIDEO_PREFIXES) or content_type in _NOT_VIDEO_TYPES:
        return f"the URL serves {content_type}, not a video file"
    start = first_bytes.lstrip()[:7].upper()
    if start.startswith(b"#EXTM3U"):
        return "the URL serves an HLS playlist: give the URL of one video file"
    if start.startswith((b"<", b"{")):
        return "the URL serves a web page or a document, not a video file"
    return None


def _stream_into_upload_key(
    job: Job,
    url: str,
    *,
    fetcher: SourceFetcher,
    store: StreamingUploads,
    limits: ImportLimits,
    quota: ImportQuota | None,
    now: Callable[[], datetime],
    clock: Callable[[], float],
) -> int:
    """The number of bytes written to the job's upload key."""
    deadline = clock() + limits.deadline_s
    source = fetcher.open(url)
    try:
        if source.content_length is not None and source.content_length > limits.max_bytes:
            raise _too_large(limits.max_bytes, f"the URL announces {source.content_length} bytes")
        content_type = source.content_type if _VIDEO_TYPE.fullmatch(source.content_type) else STORED_CONTENT_TYPE
        key = storage_keys.upload_key(job.job_id)
        upload_id = store.start_multipart(key, content_type=content_type)
        try:
            parts = _upload_parts(source, key, upload_id, store=store, limits=limits, deadline=deadline, clock=clock)
            size = sum(part["size"] for part in parts)
            if quota is not None:
                _charge_bytes(job, size, quota, now())
            store.complete_multipart(key, upload_id=upload_id, parts=parts)
        except UploadNotOpen:
            # An earlier attempt completed the object: its "Object Created" event is on its way.
            store.abort_multipart(key, upload_id=upload_id)
            return 0
        except BaseException:
            store.abort_multipart(key, upload_id=upload_id)
            raise
        return size
    finally:
        source.close()


def _upload_parts(
    source: FetchedSource,
    key: str,
    upload_id: str,
    *,
    store: StreamingUploads,
    limits: ImportLimits,
    deadline: float,
    clock: Callable[[], float],
) -> list[UploadedPart]:
    """Copy the body into parts of PART_BYTES (the last one shorter), checking
    the size, the deadline and, on the first bytes, that it is no web page."""
    parts: list[UploadedPart] = []
    pending = bytearray()
    received = 0
    for chunk in source.chunks(READ_BYTES):
        if received == 0:
            reason = not_video_reason(source.content_type, chunk)
            if reason:
                raise SourceNotVideo(reason)
        received += len(chunk)
        if received > limits.max_bytes:
            raise _too_large(limits.max_bytes, f"the download passed {limits.max_bytes} bytes")
        if clock() > deadline:
            raise SourceUnreachable(f"the download took longer than {limits.deadline_s:g} s; it was stopped")
        pending += chunk
        while len(pending) >= PART_BYTES:
            parts.append(_put_part(store, key, upload_id, len(parts) + 1, bytes(pending[:PART_BYTES])))
            del pending[:PART_BYTES]
    if received == 0:
        reason = not_video_reason(source.content_type, b"")
        raise SourceNotVideo(reason or "the URL serves an empty answer")
    if pending:
        parts.append(_put_part(store, key, upload_id, len(parts) + 1, bytes(pending)))
    return parts


def _put_part(store: StreamingUploads, key: str, upload_id: str, number: int, body: bytes) -> UploadedPart:
    return store.upload_part(key, upload_id=upload_id, part_number=number, body=body)


def _too_large(max_bytes: int, what: str) -> SourceTooLarge:
    return SourceTooLarge(f"{what}; the largest source accepted is {max_bytes} bytes")


def _charge_bytes(job: Job, size: int, quota: ImportQuota, moment: datetime) -> None:
    """Charge the imported bytes to the owner's day, as POST /uploads charges a
    declared size; QuotaExceeded (final for this job) when they do not fit."""
    if quota.usage.add_upload_bytes(job.owner, usage_day(moment), size, limits=quota.limits):
        return
    raise QuotaExceeded(
        f"this source ({size} bytes) would pass today's limit of {quota.limits.upload_bytes_per_day} bytes",
        retry_after_s=1,
        limit="upload_bytes_per_day",
    )


def _fail(
    job: Job,
    error: dict[str, str],
    *,
    jobs: JobStore,
    quota: ImportQuota | None,
    publisher: FinishedEventPublisher | None,
    now: datetime,
) -> ImportOutcome:
    """End the job FAILED with ``error`` (unless it moved meanwhile: cancelled,
    or its source arrived), put "Job Failed" in its outbox and publish it, and
    free the owner's active-job slot. A publish that fails is not retried here:
    the event stays in the outbox, and the sweep publishes it (same id)."""
    moment = iso_utc(now)
    ended = end_upload(job, status=JobStatus.FAILED, error=error, now=moment)
    if ended is None:
        return ImportOutcome(job.job_id, "skipped", f"the job is {job.status.value}")
    failed = copy.deepcopy(ended)
    mark_finished(failed, previous_status=job.status, version=job.version + 1, now=moment)
    saved = jobs.save(failed, expected_version=job.version)
    if quota is not None:
        release_if_ended(saved, usage=quota.usage)
    detail = f"{error['code']}: {error['message']}"
    if publisher is not None:
        try:
            publish_finished_event(jobs, publisher, saved)
        except EventPublishError as exc:
            detail += f" (its Job Failed event waits for the sweep: {exc.message})"
    return ImportOutcome(job.job_id, "failed", detail)
