"""source_import.domain_logic.importing with fakes: the source streams into
the upload key in parts, the bounds hold (size, time, not a video), and every
failure ends the job FAILED with its own code, or is retried when it may pass."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from source_import.domain_logic.importing import (
    PART_BYTES,
    ImportLimits,
    ImportQuota,
    import_source,
    not_video_reason,
)
from upload_api.domain_logic.imports import FALLBACK_FILENAME, filename_from_url
from vidpipe.domain.errors import (
    ConcurrentUpdate,
    DestinationRefused,
    EventPublishError,
    SourceUnreachable,
    UploadNotOpen,
)
from vidpipe.domain.events import JobFinished
from vidpipe.domain.jobs import Job, JobStatus
from vidpipe.domain.quotas import OwnerLimits
from vidpipe.domain.stored_objects import UploadedPart

JOB_ID = "5d1c7e9a3b2f4c6e8a0b1d3f5e7a9c2b"
KEY = f"uploads/{JOB_ID}/source"
URL = "https://videos.example/clips/holiday.mp4"
MP4_START = b"\x00\x00\x00\x20ftypisom"
LIMITS = ImportLimits(max_bytes=50 * 1024 * 1024, deadline_s=600)
NOW = datetime(2025, 3, 14, 9, 26, 41, tzinfo=UTC)


def awaiting_import(url: str = URL) -> Job:
    job = Job.new(JOB_ID, filename="holiday.mp4", content_type="application/octet-stream", size=0, now="t0")
    job.owner = "alice"
    job.upload = {"method": "IMPORT", "source_url": url}
    return job


@dataclass
class FakeJobs:
    job: Job
    saved: list[Job] = field(default_factory=list)

    def get(self, job_id: str) -> Job:
        assert job_id == self.job.job_id
        return self.job

    def save(self, job: Job, *, expected_version: int) -> Job:
        if expected_version != self.job.version:
            raise ConcurrentUpdate("moved")
        job.version = expected_version + 1
        self.job = job
        self.saved.append(job)
        return job


@dataclass
class FakeSource:
    body: bytes
    content_type: str = "video/mp4"
    content_length: int | None = None
    closed: bool = False

    def chunks(self, size: int) -> Iterator[bytes]:
        for start in range(0, len(self.body), size):
            yield self.body[start : start + size]

    def close(self) -> None:
        self.closed = True


@dataclass
class FakeFetcher:
    answer: FakeSource | Exception
    opened: list[str] = field(default_factory=list)

    def open(self, url: str) -> FakeSource:
        self.opened.append(url)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


@dataclass
class FakeUploads:
    key_written_already: bool = False
    started: list[tuple[str, str]] = field(default_factory=list)
    parts: list[tuple[int, int]] = field(default_factory=list)  # (part number, size)
    completed: dict[str, bytes] = field(default_factory=dict)
    aborted: list[str] = field(default_factory=list)
    _bodies: dict[int, bytes] = field(default_factory=dict)

    def start_multipart(self, key: str, *, content_type: str) -> str:
        self.started.append((key, content_type))
        return "upload-1"

    def upload_part(self, key: str, *, upload_id: str, part_number: int, body: bytes) -> UploadedPart:
        self.parts.append((part_number, len(body)))
        self._bodies[part_number] = body
        return UploadedPart(part_number=part_number, etag=f"etag-{part_number}", size=len(body))

    def complete_multipart(self, key: str, *, upload_id: str, parts: list[UploadedPart]) -> None:
        if self.key_written_already:
            raise UploadNotOpen("already written")
        self.completed[key] = b"".join(self._bodies[part["part_number"]] for part in parts)

    def abort_multipart(self, key: str, *, upload_id: str) -> None:
        self.aborted.append(upload_id)


@dataclass
class FakeUsage:
    bytes_left: int
    charged: list[int] = field(default_factory=list)
    released: list[str] = field(default_factory=list)

    def add_upload_bytes(self, owner: str, day: str, size: int, *, limits: OwnerLimits) -> bool:
        if size > self.bytes_left:
            return False
        self.charged.append(size)
        self.bytes_left -= size
        return True

    def release_active_slot(self, owner: str, job_id: str) -> None:
        self.released.append(job_id)


@dataclass
class FakeBus:
    failing: bool = False
    published: list[JobFinished] = field(default_factory=list)

    def publish(self, event: JobFinished) -> None:
        if self.failing:
            raise EventPublishError("PutEvents: ServiceUnavailable")
        self.published.append(event)


def run(
    answer: FakeSource | Exception,
    *,
    jobs: FakeJobs | None = None,
    uploads: FakeUploads | None = None,
    limits: ImportLimits = LIMITS,
    usage: FakeUsage | None = None,
    last_attempt: bool = True,
    clock: list[float] | None = None,
    publisher: FakeBus | None = None,
) -> tuple[str, FakeJobs, FakeUploads]:
    jobs = jobs or FakeJobs(awaiting_import())
    uploads = uploads or FakeUploads()
    ticks = iter(clock or [0.0] * 10_000)
    quota = ImportQuota(OwnerLimits(10, 10**12, 300), usage) if usage else None  # type: ignore[arg-type]
    outcome = import_source(
        JOB_ID,
        jobs=jobs,
        fetcher=FakeFetcher(answer),
        store=uploads,
        limits=limits,
        quota=quota,
        publisher=publisher,
        last_attempt=last_attempt,
        clock=lambda: next(ticks),
        now=lambda: NOW,
    )
    return outcome.result, jobs, uploads


def test_GIVEN_a_video_larger_than_a_part_WHEN_imported_THEN_it_lands_whole_at_the_upload_key_in_bounded_parts() -> (
    None
):
    body = MP4_START + bytes(range(256)) * (PART_BYTES * 2 // 256 + 1000)

    result, jobs, uploads = run(FakeSource(body, content_length=len(body)))

    assert result == "imported"
    assert uploads.completed[KEY] == body
    assert [size for _, size in uploads.parts] == [PART_BYTES, PART_BYTES, len(body) - 2 * PART_BYTES]
    assert uploads.started == [(KEY, "video/mp4")]
    # The job waits for S3's event, as after a browser upload: the import writes nothing to it.
    assert jobs.saved == [] and jobs.job.status is JobStatus.AWAITING_UPLOAD


def test_GIVEN_no_video_content_type_WHEN_imported_THEN_the_object_is_stored_as_octet_stream_for_the_probe() -> None:
    result, _, uploads = run(FakeSource(MP4_START + b"rest", content_type="binary/octet-stream"))

    assert result == "imported"
    assert uploads.started == [(KEY, "application/octet-stream")]


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        (FakeSource(MP4_START, content_length=LIMITS.max_bytes + 1), "SOURCE_TOO_LARGE"),
        (
            FakeSource(b"<!doctype html><html>sign in</html>", content_type="application/octet-stream"),
            "SOURCE_NOT_VIDEO",
        ),
        (FakeSource(b"#EXTM3U\n#EXT-X-VERSION:3\n", content_type=""), "SOURCE_NOT_VIDEO"),
        (FakeSource(MP4_START, content_type="text/html"), "SOURCE_NOT_VIDEO"),
        (FakeSource(b""), "SOURCE_NOT_VIDEO"),
        (SourceUnreachable("videos.example answered HTTP 404 Not Found"), "SOURCE_UNREACHABLE"),
        (DestinationRefused("a redirect to 169.254.169.254", code="SOURCE_URL_REFUSED"), "SOURCE_URL_REFUSED"),
    ],
    ids=["announced-too-large", "html-page", "hls-playlist", "text-type", "empty", "http-404", "redirect-inside"],
)
def test_GIVEN_a_source_that_cannot_be_imported_WHEN_imported_THEN_the_job_fails_with_its_code_and_frees_its_slot(
    answer: FakeSource | Exception, code: str
) -> None:
    usage = FakeUsage(bytes_left=10**9)

    result, jobs, uploads = run(answer, usage=usage)

    assert result == "failed"
    assert jobs.job.status is JobStatus.FAILED
    assert jobs.job.error is not None and jobs.job.error["code"] == code and jobs.job.error["message"]
    assert uploads.completed == {}
    assert uploads.aborted == ["upload-1"] * len(uploads.started)  # every started upload is dropped
    assert usage.released == [JOB_ID]
    # "Job Failed" waits in the outbox: webhooks hear of it as of any failure.
    assert jobs.job.finished_event is not None and jobs.job.finished_event["pending"]


def test_GIVEN_a_download_that_passes_the_limit_without_announcing_it_WHEN_imported_THEN_it_stops_there() -> None:
    limits = ImportLimits(max_bytes=3 * 1024 * 1024, deadline_s=600)
    body = MP4_START + bytes(10 * 1024 * 1024)

    result, jobs, uploads = run(FakeSource(body, content_length=None), limits=limits)

    assert result == "failed"
    assert jobs.job.error is not None and jobs.job.error["code"] == "SOURCE_TOO_LARGE"
    assert sum(size for _, size in uploads.parts) <= limits.max_bytes
    assert uploads.aborted == ["upload-1"]


def test_GIVEN_a_download_slower_than_the_deadline_WHEN_imported_THEN_the_job_fails_unreachable() -> None:
    limits = ImportLimits(max_bytes=LIMITS.max_bytes, deadline_s=60)
    body = MP4_START + bytes(5 * 1024 * 1024)
    clock = [0.0] + [30.0 * n for n in range(1, 100)]  # 30 s per MiB read

    result, jobs, _ = run(FakeSource(body), limits=limits, clock=clock)

    assert result == "failed"
    assert jobs.job.error is not None and jobs.job.error["code"] == "SOURCE_UNREACHABLE"
    assert "longer than 60 s" in jobs.job.error["message"]


def test_GIVEN_a_source_that_may_answer_later_WHEN_not_the_last_attempt_THEN_it_is_raised_for_a_retry() -> None:
    busy = SourceUnreachable("videos.example answered HTTP 503", retryable=True)

    with pytest.raises(SourceUnreachable):
        run(busy, last_attempt=False)
    result, jobs, _ = run(busy, last_attempt=True)

    assert result == "failed"
    assert jobs.job.error is not None and jobs.job.error["code"] == "SOURCE_UNREACHABLE"


@pytest.mark.parametrize("status", [JobStatus.FAILED, JobStatus.UPLOADED, JobStatus.EXPIRED])
def test_GIVEN_a_job_whose_source_is_decided_WHEN_its_import_message_comes_THEN_nothing_is_fetched(
    status: JobStatus,
) -> None:
    job = awaiting_import()
    job.status = status
    fetcher_answer = FakeSource(MP4_START)

    result, jobs, uploads = run(fetcher_answer, jobs=FakeJobs(job))

    assert result == "skipped"
    assert uploads.started == [] and jobs.saved == []


def test_GIVEN_an_upload_key_an_earlier_attempt_wrote_WHEN_imported_again_THEN_it_counts_as_imported() -> None:
    result, jobs, uploads = run(FakeSource(MP4_START + b"x"), uploads=FakeUploads(key_written_already=True))

    assert result == "imported"
    assert uploads.aborted == ["upload-1"]
    assert jobs.saved == []


def test_GIVEN_an_owner_with_few_bytes_left_today_WHEN_imported_THEN_the_bytes_are_charged_or_the_job_fails() -> None:
    body = MP4_START + bytes(1000)
    enough, short = FakeUsage(bytes_left=10_000), FakeUsage(bytes_left=100)

    assert run(FakeSource(body), usage=enough)[0] == "imported"
    result, jobs, uploads = run(FakeSource(body), usage=short)

    assert enough.charged == [len(body)]
    assert result == "failed"
    assert jobs.job.error is not None and jobs.job.error["code"] == "QUOTA_EXCEEDED"
    assert uploads.completed == {} and uploads.aborted == ["upload-1"]


@pytest.mark.parametrize(
    ("content_type", "first_bytes", "refused"),
    [
        ("video/mp4", MP4_START, False),
        ("application/octet-stream", b"\x1aE\xdf\xa3", False),  # Matroska
        ("", b"G\x40\x11\x10", False),  # MPEG-TS
        ("image/png", b"\x89PNG", True),
        ("application/json", b"{}", True),
        ("application/octet-stream", b"  \n<?xml version='1.0'?>", True),
        ("application/vnd.apple.mpegurl", b"#EXTM3U", True),
    ],
)
def test_GIVEN_an_answer_WHEN_sniffed_THEN_only_what_is_certainly_no_video_is_refused(
    content_type: str, first_bytes: bytes, refused: bool
) -> None:
    assert (not_video_reason(content_type, first_bytes) is not None) is refused


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("https://videos.example/clips/holiday%20trip.mp4?X-Amz-Signature=abc", "holiday trip.mp4"),
        ("https://videos.example/", FALLBACK_FILENAME),
        ("https://videos.example/a/..", FALLBACK_FILENAME),
        ("https://videos.example/clip%0A.mp4", FALLBACK_FILENAME),
        ("https://videos.example/clip%E2%80%AEgnp.mp4", FALLBACK_FILENAME),
        ("https://videos.example/dir%2Fclip.mp4", FALLBACK_FILENAME),
    ],
)
def test_GIVEN_a_source_url_WHEN_its_job_is_named_THEN_only_a_plausible_file_name_is_taken(url: str, name: str) -> None:
    assert filename_from_url(url) == name


def test_GIVEN_a_bus_WHEN_an_import_fails_THEN_job_failed_is_published_at_once_and_cleared() -> None:
    bus = FakeBus()

    result, jobs, _ = run(SourceUnreachable("videos.example answered HTTP 404 Not Found"), publisher=bus)

    assert result == "failed"
    [event] = bus.published
    assert (event.status, event.job_id) == ("FAILED", JOB_ID)
    assert event.error is not None and event.error["code"] == "SOURCE_UNREACHABLE"
    assert jobs.job.finished_event is not None and not jobs.job.finished_event["pending"]


def test_GIVEN_the_bus_down_WHEN_an_import_fails_THEN_the_job_fails_and_its_event_waits_for_the_sweep() -> None:
    result, jobs, _ = run(SourceUnreachable("videos.example answered HTTP 404 Not Found"), publisher=FakeBus(True))

    assert result == "failed" and jobs.job.status is JobStatus.FAILED
    assert jobs.job.finished_event is not None and jobs.job.finished_event["pending"]
