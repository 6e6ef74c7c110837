"""record_event: one read-modify-write per event, retried when another writer wins."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest

from job_lifecycle.domain_logic.status import record_event
from vidpipe.domain.errors import ConcurrentUpdate, JobNotFound
from vidpipe.domain.events import Stage, StageEvent, StageEventKind, UploadCompleted
from vidpipe.domain.job_transitions import fail_stalled
from vidpipe.domain.jobs import Job, JobStatus, StageStatus

JOB_ID = "5b1c9a1e-4f0e-4d2c-9a57-0c4d1d0bb6a1"


class InMemoryJobStore:
    """A job store with the same version check as DynamoJobStore.

    ``before_save`` runs just before each save's check: a test uses it to play
    the part of another status function writing in between."""

    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}
        self.saves = 0
        self.conflicts = 0
        self.before_save: Callable[[], None] | None = None

    def get(self, job_id: str) -> Job:
        if job_id not in self.jobs:
            raise JobNotFound(f"no job {job_id}")
        return copy.deepcopy(self.jobs[job_id])

    def save(self, job: Job, *, expected_version: int) -> Job:
        if self.before_save is not None:
            hook, self.before_save = self.before_save, None
            hook()
        stored = self.jobs.get(job.job_id)
        if stored is None or stored.version != expected_version:
            self.conflicts += 1
            raise ConcurrentUpdate(f"job {job.job_id} is no longer at version {expected_version}")
        written = copy.deepcopy(job)
        written.version = expected_version + 1
        self.jobs[job.job_id] = written
        self.saves += 1
        return copy.deepcopy(written)


def stage_event(stage: Stage, kind: StageEventKind, **fields: object) -> StageEvent:
    return StageEvent(job_id=JOB_ID, stage=stage, kind=kind, **fields)  # type: ignore[arg-type]


def uploaded() -> UploadCompleted:
    return UploadCompleted(
        job_id=JOB_ID, bucket="uploads", key=f"uploads/{JOB_ID}/source", size=10, occurred_at="2025-01-01T10:00:01Z"
    )


@pytest.fixture
def store() -> InMemoryJobStore:
    fake = InMemoryJobStore()
    fake.jobs[JOB_ID] = Job.new(
        JOB_ID, filename="a.mp4", content_type="video/mp4", size=10, now="2025-01-01T10:00:00.000000Z"
    )
    return fake


def test_GIVEN_a_waiting_job_WHEN_the_upload_event_is_recorded_THEN_it_is_saved_uploaded_at_the_next_version(
    store: InMemoryJobStore,
) -> None:
    update = record_event(store, uploaded())

    assert update is not None
    assert update.changed and not update.became_terminal
    assert update.job.status is JobStatus.UPLOADED
    assert store.jobs[JOB_ID].version == 1
    assert update.finished_event() is None


def test_GIVEN_another_writer_saves_first_WHEN_recording_THEN_it_rereads_and_keeps_both_changes(
    store: InMemoryJobStore,
) -> None:
    def other_status_function() -> None:
        assert record_event(store, stage_event(Stage.THUMBNAILS, StageEventKind.STARTED)) is not None

    store.before_save = other_status_function

    update = record_event(store, stage_event(Stage.TRANSCODE, StageEventKind.PROGRESS, progress=0.4))

    assert update is not None and update.changed
    assert store.conflicts == 1
    assert store.saves == 2
    saved = store.jobs[JOB_ID]
    assert saved.version == 2
    assert saved.stages[Stage.THUMBNAILS].status is StageStatus.RUNNING
    assert saved.stages[Stage.TRANSCODE].progress == 0.4


def test_GIVEN_the_version_check_always_fails_WHEN_recording_THEN_it_gives_up_with_concurrent_update(
    store: InMemoryJobStore,
) -> None:
    def always_conflict(job: Job, *, expected_version: int) -> Job:
        raise ConcurrentUpdate("lost again")

    store.save = always_conflict  # type: ignore[method-assign]

    with pytest.raises(ConcurrentUpdate):
        record_event(store, uploaded(), max_attempts=3)


def test_GIVEN_transcode_done_WHEN_thumbnails_completed_is_delivered_twice_THEN_only_the_first_finishes_the_job(
    store: InMemoryJobStore,
) -> None:
    record_event(store, uploaded())
    record_event(store, stage_event(Stage.TRANSCODE, StageEventKind.COMPLETED, outputs={"hls_key": "k"}))
    completed = stage_event(Stage.THUMBNAILS, StageEventKind.COMPLETED, outputs={"poster_key": "p"})

    first = record_event(store, completed)
    second = record_event(store, completed)

    assert first is not None and second is not None
    assert first.became_terminal and first.job.status is JobStatus.READY
    finished = first.finished_event()
    assert finished is not None and finished.detail_type == "Job Ready"
    assert not second.changed and not second.became_terminal
    assert second.finished_event() is None


def test_GIVEN_a_competing_writer_finishes_the_job_WHEN_our_retry_reapplies_THEN_we_do_not_report_it_again(
    store: InMemoryJobStore,
) -> None:
    record_event(store, uploaded())
    record_event(store, stage_event(Stage.TRANSCODE, StageEventKind.COMPLETED, outputs={"hls_key": "k"}))
    completed = stage_event(Stage.THUMBNAILS, StageEventKind.COMPLETED, outputs={"poster_key": "p"})
    reports: list[bool] = []

    def same_event_delivered_to_another_invocation() -> None:
        update = record_event(store, completed)
        assert update is not None
        reports.append(update.became_terminal)

    store.before_save = same_event_delivered_to_another_invocation

    ours = record_event(store, completed)

    assert ours is not None
    reports.append(ours.became_terminal)
    assert reports == [True, False]


def test_GIVEN_a_processing_job_WHEN_a_stage_fails_THEN_job_failed_is_reported_with_the_error(
    store: InMemoryJobStore,
) -> None:
    error = {"code": "CORRUPT_MEDIA", "message": "no video frames"}

    update = record_event(store, stage_event(Stage.TRANSCODE, StageEventKind.FAILED, error=error))

    assert update is not None and update.became_terminal
    finished = update.finished_event()
    assert finished is not None
    assert finished.detail_type == "Job Failed"
    assert finished.detail()["error"] == error


def test_GIVEN_no_such_job_WHEN_recording_THEN_none_and_nothing_written(store: InMemoryJobStore) -> None:
    stray = StageEvent(job_id="not-a-job", stage=Stage.TRANSCODE, kind=StageEventKind.STARTED)

    assert record_event(store, stray) is None
    assert store.saves == 0


def test_GIVEN_a_job_the_sweep_failed_WHEN_the_redriven_stage_completes_THEN_job_ready_is_reported_once(
    store: InMemoryJobStore,
) -> None:
    record_event(store, uploaded())
    record_event(store, stage_event(Stage.THUMBNAILS, StageEventKind.COMPLETED, outputs={"poster_key": "p"}))
    current = store.get(JOB_ID)
    verdict = fail_stalled(current, error={"code": "DEAD_LETTERED", "message": "m"}, now="2026-11-27T12:00:00Z")
    assert verdict is not None
    store.save(verdict, expected_version=current.version)
    completed = stage_event(Stage.TRANSCODE, StageEventKind.COMPLETED, outputs={"hls_key": "k"})

    first = record_event(store, completed)
    second = record_event(store, completed)

    assert first is not None and first.became_terminal and first.job.status is JobStatus.READY
    finished = first.finished_event()
    assert finished is not None and finished.detail_type == "Job Ready"
    assert second is not None and not second.became_terminal


def test_GIVEN_an_event_that_moves_the_job_WHEN_recorded_THEN_the_update_knows_the_status_before() -> None:
    store = InMemoryJobStore()
    store.jobs[JOB_ID] = Job.new(
        JOB_ID, filename="a.mp4", content_type="video/mp4", size=10, now="2025-01-01T10:00:00Z"
    )

    update = record_event(store, uploaded())

    assert update is not None
    assert (update.previous_status, update.job.status) == (JobStatus.AWAITING_UPLOAD, JobStatus.UPLOADED)


def test_GIVEN_the_upload_event_WHEN_recorded_then_delivered_again_THEN_only_the_first_moved_the_job(
    store: InMemoryJobStore,
) -> None:
    first = record_event(store, uploaded())
    again = record_event(store, uploaded())

    assert first is not None and first.new_status() is JobStatus.UPLOADED
    assert again is not None and again.new_status() is None


def test_GIVEN_a_processing_job_WHEN_progress_is_recorded_THEN_it_changed_the_job_but_not_its_status(
    store: InMemoryJobStore,
) -> None:
    record_event(store, uploaded())
    record_event(store, stage_event(Stage.TRANSCODE, StageEventKind.STARTED))

    update = record_event(store, stage_event(Stage.TRANSCODE, StageEventKind.PROGRESS, progress=0.5))

    assert update is not None and update.changed
    assert update.new_status() is None
