"""What every stage does around its work: events, scratch folder, uploads, retries."""

from __future__ import annotations

import copy
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from vidpipe.domain.errors import CorruptMedia, JobNotFound, NotAVideo, StorageError, UploadNotAccepted
from vidpipe.domain.events import Stage, StageEvent, StageEventKind, parse_object_created
from vidpipe.domain.job_transitions import apply_event
from vidpipe.domain.jobs import Job, JobStatus, StageStatus
from vidpipe.runtime import stage_inputs, stage_runner
from vidpipe.runtime.observability import logger
from vidpipe.runtime.stage_inputs import StageContext
from vidpipe.runtime.stage_runner import PROGRESS_MIN_INTERVAL_S, run_stage

EVENTS = Path(__file__).parent.parent / "events"
JOB_ID = "3f2b8c1e-7d4a-4e2b-9c61-2a5d8e0f4b17"
SOURCE_KEY = f"uploads/{JOB_ID}/source"
SOURCE_BYTES = b"\x00\x00\x00\x20ftypisom fake mp4 bytes"


def object_created() -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / "s3_object_created.json").read_text())
    return event


@dataclass
class FakeSourceStore:
    downloads: list[tuple[str, Path]] = field(default_factory=list)
    error: Exception | None = None
    # How each download was pinned: (version_id, etag).
    pins: list[tuple[str | None, str | None]] = field(default_factory=list)
    # The versions S3 holds, by ETag (for an event without a version id).
    versions_by_etag: dict[str, str] = field(default_factory=dict)

    def download(self, key: str, path: Path, *, version_id: str | None = None, etag: str | None = None) -> None:
        self.downloads.append((key, path))
        self.pins.append((version_id, etag))
        if self.error is not None:
            raise self.error
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(SOURCE_BYTES)

    def presigned_get(self, key: str, *, expires_s: int, version_id: str | None = None) -> str:
        return f"https://uploads.example/{key}" + (f"?versionId={version_id}" if version_id else "")

    def version_with_etag(self, key: str, etag: str) -> str | None:
        return self.versions_by_etag.get(etag)


@dataclass
class FakeOutputStore:
    calls: list[tuple[Path, str]] = field(default_factory=list)
    files_at_upload: list[dict[str, bytes]] = field(default_factory=list)

    def upload_tree(self, local_dir: Path, prefix: str) -> list[str]:
        self.calls.append((local_dir, prefix))
        files = {p.relative_to(local_dir).as_posix(): p.read_bytes() for p in local_dir.rglob("*") if p.is_file()}
        self.files_at_upload.append(files)
        return sorted(prefix + name for name in files)

    deleted_folders: list[str] = field(default_factory=list)

    def delete_prefix(self, prefix: str) -> int:
        self.deleted_folders.append(prefix)
        return 0


@dataclass
class FakePublisher:
    events: list[StageEvent] = field(default_factory=list)
    clock: list[float] | None = None  # the fake clock's value when each event was published
    times: list[float] = field(default_factory=list)

    def publish(self, event: Any) -> None:
        self.events.append(event)
        if self.clock is not None:
            self.times.append(self.clock[0])

    @property
    def kinds(self) -> list[StageEventKind]:
        return [event.kind for event in self.events]


@dataclass
class Fakes:
    source: FakeSourceStore = field(default_factory=FakeSourceStore)
    output: FakeOutputStore = field(default_factory=FakeOutputStore)
    publisher: FakePublisher = field(default_factory=FakePublisher)


def run(
    fakes: Fakes,
    work: Any,
    scratch: Path,
    *,
    event: dict[str, Any] | None = None,
    receive_count: int = 1,
    max_receive_count: int = 3,
    stage: Stage = Stage.TRANSCODE,
    folder: str = "hls",
) -> None:
    run_stage(
        stage=stage,
        eventbridge_event=event if event is not None else object_created(),
        receive_count=receive_count,
        max_receive_count=max_receive_count,
        output_folder=folder,
        source_store=fakes.source,
        output_store=fakes.output,
        publisher=fakes.publisher,
        work=work,
        scratch_root=scratch,
    )


def hls_work(context: StageContext) -> dict[str, Any]:
    """Reads the source and writes a small HLS tree, as the transcode stage would."""
    assert context.source_path.read_bytes() == SOURCE_BYTES
    (context.output_dir / "master.m3u8").write_text("#EXTM3U\n")
    (context.output_dir / "360p").mkdir()
    (context.output_dir / "360p" / "index.m3u8").write_text("#EXTM3U\n")
    (context.output_dir / "360p" / "seg_00000.ts").write_bytes(b"G" * 188)
    return {"master_playlist": "master.m3u8", "renditions": [{"name": "360p", "width": 640, "height": 360}]}


# ------------------------------------------------------------------ happy path


def test_GIVEN_an_upload_WHEN_the_work_succeeds_THEN_started_then_completed_with_prefix_and_outputs(
    tmp_path: Path,
) -> None:
    fakes = Fakes()

    run(fakes, hls_work, tmp_path)

    assert fakes.publisher.kinds == [StageEventKind.STARTED, StageEventKind.COMPLETED]
    assert {(e.job_id, e.stage) for e in fakes.publisher.events} == {(JOB_ID, Stage.TRANSCODE)}
    completed = fakes.publisher.events[-1]
    assert completed.outputs == {
        "prefix": f"jobs/{JOB_ID}/hls/",
        "master_playlist": "master.m3u8",
        "renditions": [{"name": "360p", "width": 640, "height": 360}],
    }
    assert completed.error is None


def test_GIVEN_an_upload_WHEN_the_work_succeeds_THEN_the_source_is_downloaded_and_every_output_uploaded(
    tmp_path: Path,
) -> None:
    fakes = Fakes()

    run(fakes, hls_work, tmp_path)

    [(key, _)] = fakes.source.downloads
    assert key == SOURCE_KEY
    [(local_dir, prefix)] = fakes.output.calls
    assert prefix == f"jobs/{JOB_ID}/hls/"
    assert fakes.output.files_at_upload == [
        {"master.m3u8": b"#EXTM3U\n", "360p/index.m3u8": b"#EXTM3U\n", "360p/seg_00000.ts": b"G" * 188}
    ]
    # The source is downloaded next to the outputs, never into the folder that is uploaded.
    assert local_dir.name == "out"


def test_GIVEN_the_thumbnails_stage_WHEN_it_succeeds_THEN_events_name_that_stage_and_its_folder(
    tmp_path: Path,
) -> None:
    fakes = Fakes()

    run(fakes, lambda ctx: {"poster": "poster.jpg"}, tmp_path, stage=Stage.THUMBNAILS, folder="thumbnails")

    assert [e.detail_type for e in fakes.publisher.events] == ["Thumbnails Started", "Thumbnails Completed"]
    assert fakes.publisher.events[-1].outputs == {"prefix": f"jobs/{JOB_ID}/thumbnails/", "poster": "poster.jpg"}


def test_GIVEN_work_that_reports_the_probed_source_WHEN_run_THEN_a_progress_event_carries_it(tmp_path: Path) -> None:
    fakes = Fakes()
    probed = {"duration_s": 7.48, "width": 1920, "height": 1080, "video_codec": "h264"}

    def work(context: StageContext) -> dict[str, Any]:
        context.report_source(probed)
        return {}

    run(fakes, work, tmp_path)

    assert fakes.publisher.kinds == [StageEventKind.STARTED, StageEventKind.PROGRESS, StageEventKind.COMPLETED]
    assert fakes.publisher.events[1].source == probed
    assert fakes.publisher.events[1].progress == 0.0


# ------------------------------------------------------------------ failures


@pytest.mark.parametrize("error", [NotAVideo("ffprobe found no video stream"), CorruptMedia("invalid NAL unit size")])
def test_GIVEN_work_that_meets_a_media_error_WHEN_run_THEN_failed_with_its_code_and_no_exception(
    tmp_path: Path, error: Exception
) -> None:
    fakes = Fakes()

    def work(context: StageContext) -> dict[str, Any]:
        raise error

    run(fakes, work, tmp_path, receive_count=1)

    assert fakes.publisher.kinds == [StageEventKind.STARTED, StageEventKind.FAILED]
    assert fakes.publisher.events[-1].error == error.to_dict()  # type: ignore[attr-defined]
    assert fakes.output.calls == []


def test_GIVEN_an_infrastructure_error_on_attempt_1_of_3_WHEN_run_THEN_it_is_raised_and_no_failed_event(
    tmp_path: Path,
) -> None:
    fakes = Fakes(source=FakeSourceStore(error=StorageError("cannot download s3://b/k: SlowDown")))

    with pytest.raises(StorageError, match="SlowDown"):
        run(fakes, hls_work, tmp_path, receive_count=1, max_receive_count=3)

    assert fakes.publisher.kinds == [StageEventKind.STARTED]
    assert fakes.output.calls == []


def test_GIVEN_an_infrastructure_error_on_attempt_2_of_3_WHEN_run_THEN_it_is_still_left_to_sqs(
    tmp_path: Path,
) -> None:
    fakes = Fakes(source=FakeSourceStore(error=StorageError("cannot download s3://b/k: SlowDown")))

    with pytest.raises(StorageError):
        run(fakes, hls_work, tmp_path, receive_count=2, max_receive_count=3)

    assert StageEventKind.FAILED not in fakes.publisher.kinds


def test_GIVEN_an_infrastructure_error_on_attempt_3_of_3_WHEN_run_THEN_failed_with_the_reason_and_raised(
    tmp_path: Path,
) -> None:
    fakes = Fakes(source=FakeSourceStore(error=StorageError("cannot download s3://b/k: SlowDown")))

    with pytest.raises(StorageError):
        run(fakes, hls_work, tmp_path, receive_count=3, max_receive_count=3)

    assert fakes.publisher.kinds == [StageEventKind.STARTED, StageEventKind.FAILED]
    error = fakes.publisher.events[-1].error
    assert error == {
        "code": "STORAGE_ERROR",
        "message": "gave up after 3 attempts: cannot download s3://b/k: SlowDown",
    }


def test_GIVEN_an_unexpected_bug_on_the_last_attempt_WHEN_run_THEN_failed_as_internal_error_and_raised(
    tmp_path: Path,
) -> None:
    fakes = Fakes()

    def work(context: StageContext) -> dict[str, Any]:
        raise KeyError("bitrate")

    with pytest.raises(KeyError):
        run(fakes, work, tmp_path, receive_count=3, max_receive_count=3)

    error = fakes.publisher.events[-1].error
    assert error is not None
    assert error["code"] == "INTERNAL_ERROR"
    assert error["message"].startswith("gave up after 3 attempts: KeyError")


@pytest.mark.parametrize(
    "key", ["thumbnails/poster.jpg", f"uploads/{JOB_ID}/source/extra", "uploads//source", f"uploads/{JOB_ID}/other"]
)
def test_GIVEN_an_event_for_a_key_that_is_not_an_upload_WHEN_run_THEN_nothing_is_published_or_raised(
    tmp_path: Path, key: str
) -> None:
    event = object_created()
    event["detail"]["object"]["key"] = key
    fakes = Fakes()

    run(fakes, hls_work, tmp_path, event=event)

    assert fakes.publisher.events == []
    assert fakes.source.downloads == []
    assert list(tmp_path.iterdir()) == []


def test_GIVEN_an_event_without_bucket_or_object_WHEN_run_THEN_it_is_dropped(tmp_path: Path) -> None:
    event = copy.deepcopy(object_created())
    del event["detail"]["object"]
    fakes = Fakes()

    run(fakes, hls_work, tmp_path, event=event)

    assert fakes.publisher.events == []


# ------------------------------------------------------------------ scratch and logging


def test_GIVEN_a_successful_run_WHEN_it_ends_THEN_the_scratch_folder_is_gone(tmp_path: Path) -> None:
    seen: list[Path] = []

    def work(context: StageContext) -> dict[str, Any]:
        seen.append(context.source_path.parent)
        return hls_work(context)

    run(Fakes(), work, tmp_path)

    assert seen and seen[0].parent == tmp_path
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("receive_count", [1, 3])
def test_GIVEN_a_failing_run_WHEN_it_ends_THEN_the_scratch_folder_is_gone_too(
    tmp_path: Path, receive_count: int
) -> None:
    def work(context: StageContext) -> dict[str, Any]:
        hls_work(context)
        raise StorageError("cannot upload")

    with pytest.raises(StorageError):
        run(Fakes(), work, tmp_path, receive_count=receive_count)

    assert list(tmp_path.iterdir()) == []


def test_GIVEN_a_media_error_WHEN_it_ends_THEN_the_scratch_folder_is_gone_and_the_job_id_leaves_the_logs(
    tmp_path: Path,
) -> None:
    def work(context: StageContext) -> dict[str, Any]:
        assert logger.get_current_keys().get("job_id") == JOB_ID
        raise NotAVideo("no video stream")

    run(Fakes(), work, tmp_path)

    assert list(tmp_path.iterdir()) == []
    assert "job_id" not in logger.get_current_keys()


# ------------------------------------------------------------------ progress throttling


def test_GIVEN_frequent_progress_reports_WHEN_run_THEN_at_most_one_progress_event_per_two_seconds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(stage_runner, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    fakes = Fakes(publisher=FakePublisher(clock=clock))
    # (time, fraction): four reports a second for ten seconds, progress growing steadily.
    reports = [(1000.0 + i * 0.25, round(0.02 * (i + 1), 3)) for i in range(40)]

    def work(context: StageContext) -> dict[str, Any]:
        for at, fraction in reports:
            clock[0] = at
            context.report_progress(fraction)
        return {}

    run(fakes, work, tmp_path)

    progress = [
        (t, e.progress)
        for t, e in zip(fakes.publisher.times, fakes.publisher.events, strict=True)
        if e.kind is StageEventKind.PROGRESS
    ]
    times = [t for t, _ in progress]
    assert len(progress) == 5  # 10 s of reports, one every 2 s
    assert all(later - earlier >= PROGRESS_MIN_INTERVAL_S for earlier, later in itertools.pairwise(times))
    # The first report big enough (0.06 at t=1000.5), then the first one 2 s after each published one.
    assert progress == [(1000.5, 0.06), (1002.5, 0.22), (1004.5, 0.38), (1006.5, 0.54), (1008.5, 0.7)]


def test_GIVEN_progress_that_barely_moves_WHEN_reported_over_time_THEN_small_steps_are_not_published(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [5000.0]
    monkeypatch.setattr(stage_runner, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    fakes = Fakes()

    def work(context: StageContext) -> dict[str, Any]:
        for step, fraction in enumerate([0.10, 0.11, 0.12, 0.13, 0.16]):
            clock[0] = 5000.0 + 10 * step  # always long enough apart
            context.report_progress(fraction)
        return {}

    run(fakes, work, tmp_path)

    assert [e.progress for e in fakes.publisher.events if e.kind is StageEventKind.PROGRESS] == [0.1, 0.16]


# ---------------------------------------------------------------- one accepted upload per job

ACCEPTED_VERSION = "AZ2xrb0UBqVZ5Pd.dAQZF1_ZMKgHEcf4"  # the fixture event's


@dataclass
class FakeJobStore:
    """The jobs table as a stage sees it (read only). ``accepted_after`` reads,
    the status function applies ``status_applies`` (the upload event it got)."""

    jobs: dict[str, Job] = field(default_factory=dict)
    status_applies: dict[str, Any] | None = None
    accepted_after: int = 0
    reads: int = 0

    def get(self, job_id: str) -> Job:
        self.reads += 1
        if job_id not in self.jobs:
            raise JobNotFound(job_id)
        if self.status_applies is not None and self.reads > self.accepted_after:
            accepted = apply_event(self.jobs[job_id], parse_object_created(self.status_applies))
            self.jobs[job_id] = accepted or self.jobs[job_id]
            self.status_applies = None
        return copy.deepcopy(self.jobs[job_id])


def awaiting_job() -> Job:
    return Job.new(JOB_ID, filename="clip.mp4", content_type="video/mp4", size=7340032, now="2025-03-14T09:00:00Z")


def rewritten(event: dict[str, Any], *, version_id: str, etag: str, sequencer: str) -> dict[str, Any]:
    """The same key written again (the presigned POST re-sent): another version."""
    later = copy.deepcopy(event)
    later["detail"]["object"].update({"version-id": version_id, "etag": etag, "sequencer": sequencer})
    return later


@pytest.fixture(autouse=True)
def quick_acceptance_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hardly any real waiting for the job's decision in unit tests."""
    monkeypatch.setattr(stage_inputs, "ACCEPTANCE_POLL_S", 0.01)


def accepted_job(event: dict[str, Any] | None = None) -> Job:
    """A job whose upload the status function accepted (``event``, the fixture's by default)."""
    job = apply_event(awaiting_job(), parse_object_created(event or object_created()))
    assert job is not None
    return job


def run_gated(
    fakes: Fakes,
    jobs: FakeJobStore,
    scratch: Path,
    *,
    event: dict[str, Any] | None = None,
    free_bytes: Any = None,
    work: Any = hls_work,
    receive_count: int = 1,
) -> None:
    run_stage(
        stage=Stage.TRANSCODE,
        eventbridge_event=event if event is not None else object_created(),
        receive_count=receive_count,
        max_receive_count=3,
        output_folder="hls",
        source_store=fakes.source,
        output_store=fakes.output,
        publisher=fakes.publisher,
        work=work,
        scratch_root=scratch,
        jobs=jobs,
        free_bytes=free_bytes or (lambda _folder: 100 * 1024**3),
        acceptance_wait_s=0.3,
    )


def test_GIVEN_a_stage_that_gets_the_upload_first_WHEN_the_job_accepts_it_THEN_only_that_version_is_read(
    tmp_path: Path,
) -> None:
    # GIVEN a job awaiting its upload, which the status function accepts a moment
    # after the transcode stage has read the job
    fakes = Fakes()
    jobs = FakeJobStore({JOB_ID: awaiting_job()}, status_applies=object_created(), accepted_after=2)
    urls: list[str] = []

    def probe_by_url_then_encode(context: StageContext) -> dict[str, Any]:
        urls.append(context.input_url("source"))
        return hls_work(context)

    # WHEN the stage gets the upload's event
    run_gated(fakes, jobs, tmp_path, work=probe_by_url_then_encode)

    # THEN it waited for the job's decision (and read it once more after writing,
    # in case it was deleted meanwhile), and read the accepted version only
    assert jobs.reads == 4
    assert fakes.source.pins == [(ACCEPTED_VERSION, "9b2cf535f27731c974343645a3985328")]
    assert urls == [f"https://uploads.example/{SOURCE_KEY}?versionId={ACCEPTED_VERSION}"]
    assert fakes.publisher.kinds == [StageEventKind.STARTED, StageEventKind.COMPLETED]


def test_GIVEN_a_job_that_never_accepts_WHEN_the_wait_is_over_THEN_raised_for_sqs_to_deliver_again(
    tmp_path: Path,
) -> None:
    fakes, jobs = Fakes(), FakeJobStore({JOB_ID: awaiting_job()})

    with pytest.raises(UploadNotAccepted):
        run_gated(fakes, jobs, tmp_path)

    assert fakes.source.downloads == []
    assert StageEventKind.STARTED not in fakes.publisher.kinds


def test_GIVEN_a_READY_job_WHEN_its_upload_is_sent_again_THEN_no_stage_runs_and_no_output_changes(
    tmp_path: Path,
) -> None:
    # GIVEN a job that accepted the upload and is READY
    job = accepted_job()
    job.status = JobStatus.READY
    for state in job.stages.values():
        state.status = StageStatus.COMPLETED
    fakes, jobs = Fakes(), FakeJobStore({JOB_ID: job})

    # WHEN other bytes are POSTed to its key (a new version) and, for good
    # measure, the accepted upload's own event is delivered once more
    run_gated(
        fakes,
        jobs,
        tmp_path,
        event=rewritten(object_created(), version_id="later", etag="f" * 32, sequencer="0067D3F5DD3A2B9C99"),
    )
    run_gated(fakes, jobs, tmp_path)

    # THEN nothing runs: no event, no download, no upload, the job unchanged
    assert fakes.publisher.events == []
    assert fakes.source.downloads == [] and fakes.output.calls == []
    assert jobs.jobs[JOB_ID].status is JobStatus.READY
    assert list(tmp_path.iterdir()) == []


def test_GIVEN_a_job_in_progress_WHEN_its_key_is_written_again_THEN_the_later_write_runs_nothing(
    tmp_path: Path,
) -> None:
    # GIVEN a job that accepted its upload, whose transcode runs
    fakes, jobs = Fakes(), FakeJobStore({JOB_ID: accepted_job()})
    run_gated(fakes, jobs, tmp_path)
    events_before = list(fakes.publisher.events)

    # WHEN other bytes land on the key while it is processing
    run_gated(
        fakes,
        jobs,
        tmp_path,
        event=rewritten(object_created(), version_id="later", etag="f" * 32, sequencer="0067D3F5DD3A2B9C99"),
    )

    # THEN the later write is not worked on, and the job keeps the upload it accepted
    assert fakes.publisher.events == events_before
    assert len(fakes.source.downloads) == 1
    assert jobs.jobs[JOB_ID].upload["accepted"]["version_id"] == ACCEPTED_VERSION


def test_GIVEN_a_cancelled_job_WHEN_its_upload_arrives_late_THEN_no_stage_runs_and_the_job_accepts_nothing(
    tmp_path: Path,
) -> None:
    # GIVEN a job cancelled before its upload (DELETE /uploads/{id})
    job = awaiting_job()
    job.status, job.error = JobStatus.FAILED, {"code": "UPLOAD_CANCELLED", "message": "cancelled"}
    fakes, jobs = Fakes(), FakeJobStore({JOB_ID: job}, status_applies=object_created())

    # WHEN the presigned POST is used anyway (the status function gets its event too)
    run_gated(fakes, jobs, tmp_path)

    # THEN nothing runs, and the job accepted nothing
    assert fakes.publisher.events == [] and fakes.source.downloads == []
    assert "accepted" not in jobs.jobs[JOB_ID].upload
    assert jobs.jobs[JOB_ID].error == {"code": "UPLOAD_CANCELLED", "message": "cancelled"}


def test_GIVEN_a_job_the_sweep_failed_WHEN_its_message_is_redriven_THEN_the_stage_runs_to_finish_it(
    tmp_path: Path,
) -> None:
    # GIVEN a job the sweep failed from silence (DEAD_LETTERED)
    job = accepted_job()
    job.status, job.error = JobStatus.FAILED, {"code": "DEAD_LETTERED", "message": "dead-lettered"}
    fakes, jobs = Fakes(), FakeJobStore({JOB_ID: job})

    # WHEN `vidpipe redrive` sends the stage's message back
    run_gated(fakes, jobs, tmp_path)

    # THEN the stage runs (its Completed overrides the sweep's guess)
    assert fakes.publisher.kinds == [StageEventKind.STARTED, StageEventKind.COMPLETED]


def test_GIVEN_an_event_without_version_id_WHEN_staged_THEN_the_version_with_the_accepted_etag_is_read(
    tmp_path: Path,
) -> None:
    # GIVEN ministack's event (no version id) and a bucket that keeps versions
    event = object_created()
    del event["detail"]["object"]["version-id"]
    fakes, jobs = Fakes(), FakeJobStore({JOB_ID: accepted_job(event)})
    fakes.source.versions_by_etag = {"9b2cf535f27731c974343645a3985328": "v-accepted", "f" * 32: "v-later"}

    run_gated(fakes, jobs, tmp_path, event=event)

    assert fakes.source.pins == [("v-accepted", "9b2cf535f27731c974343645a3985328")]


def test_GIVEN_an_upload_larger_than_the_scratch_space_WHEN_staged_THEN_FAILED_SOURCE_TOO_LARGE_before_download(
    tmp_path: Path,
) -> None:
    # GIVEN a stage whose scratch folder has 100 MiB free: too little for the
    # 7 MB upload and room for the outputs besides
    fakes, jobs = Fakes(), FakeJobStore({JOB_ID: accepted_job()})

    # WHEN it gets the upload
    run_gated(fakes, jobs, tmp_path, free_bytes=lambda _folder: 100 * 1024**2)

    # THEN the job fails at once with its own code, nothing downloaded, no retry
    assert fakes.publisher.kinds == [StageEventKind.STARTED, StageEventKind.FAILED]
    assert fakes.publisher.events[-1].error["code"] == "SOURCE_TOO_LARGE"
    assert "7340032 bytes" in fakes.publisher.events[-1].error["message"]
    assert fakes.source.downloads == []


def test_GIVEN_the_job_deleted_while_the_stage_encodes_WHEN_it_uploads_THEN_it_removes_the_folder_and_reports_nothing(
    tmp_path: Path,
) -> None:
    # GIVEN a job accepted when the stage starts, deleted (DELETING) while it encodes
    fakes = Fakes()
    jobs = FakeJobStore({JOB_ID: accepted_job()})

    def encode_then_deleted(context: StageContext) -> dict[str, Any]:
        outputs = hls_work(context)
        jobs.jobs[JOB_ID].status = JobStatus.DELETING
        return outputs

    # WHEN
    run_gated(fakes, jobs, tmp_path, work=encode_then_deleted)

    # THEN what it wrote is removed, no Completed is published, and nothing is retried (no raise)
    assert fakes.output.deleted_folders == [f"jobs/{JOB_ID}/"]
    assert fakes.publisher.kinds == [StageEventKind.STARTED]


def test_GIVEN_a_job_being_deleted_WHEN_its_upload_event_arrives_THEN_the_stage_does_nothing(tmp_path: Path) -> None:
    fakes = Fakes()
    job = accepted_job()
    job.status = JobStatus.DELETING

    run_gated(fakes, FakeJobStore({JOB_ID: job}), tmp_path)

    assert fakes.publisher.kinds == [] and fakes.output.calls == []
