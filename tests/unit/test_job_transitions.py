"""The job state machine: monotonic, idempotent, and indifferent to delivery order."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from vidpipe.domain.events import Stage, StageEvent, StageEventKind, UploadCompleted
from vidpipe.domain.job_transitions import accepted_upload, apply_event, end_upload, fail_stalled, why_no_stage_runs
from vidpipe.domain.jobs import Job, JobStatus, StageStatus

JOB_ID = "0f8fad5b-d9cb-469f-a165-70867728950e"
SIZE = 1_048_576
TRANSCODE_OUTPUTS = {"hls_key": f"jobs/{JOB_ID}/hls/master.m3u8"}
THUMBNAIL_OUTPUTS = {"poster_key": f"jobs/{JOB_ID}/thumbnails/poster.jpg"}
PROBED_SOURCE = {"duration_s": 12.5, "width": 1920, "height": 1080, "video_codec": "h264"}
FAILURE = {"code": "CORRUPT_MEDIA", "message": "ffmpeg could not decode frame 12"}

# The rank of each job status along the only allowed path; READY and FAILED are both the end.
RANK = {
    JobStatus.AWAITING_UPLOAD: 0,
    JobStatus.UPLOADED: 1,
    JobStatus.PROCESSING: 2,
    JobStatus.READY: 3,
    JobStatus.FAILED: 3,
}

Event = StageEvent | UploadCompleted


def new_job() -> Job:
    return Job.new(
        JOB_ID, filename="holiday.mp4", content_type="video/mp4", size=SIZE, now="2025-01-01T10:00:00.000000Z"
    )


def at(second: int) -> str:
    return f"2025-01-01T10:00:{second:02d}.000000Z"


def upload_completed() -> UploadCompleted:
    return UploadCompleted(
        job_id=JOB_ID, bucket="uploads", key=f"uploads/{JOB_ID}/source", size=SIZE, occurred_at=at(1)
    )


def stage_event(stage: Stage, kind: StageEventKind, second: int, **fields: Any) -> StageEvent:
    return StageEvent(job_id=JOB_ID, stage=stage, kind=kind, occurred_at=at(second), **fields)


T, TH = Stage.TRANSCODE, Stage.THUMBNAILS
STARTED, PROGRESS = StageEventKind.STARTED, StageEventKind.PROGRESS
COMPLETED, FAILED = StageEventKind.COMPLETED, StageEventKind.FAILED

SUCCESS_EVENTS: list[Event] = [
    upload_completed(),
    stage_event(T, STARTED, 2, source=PROBED_SOURCE),
    stage_event(TH, STARTED, 3),
    stage_event(T, PROGRESS, 4, progress=0.25),
    stage_event(TH, PROGRESS, 5, progress=0.5),
    stage_event(T, PROGRESS, 6, progress=0.75),
    stage_event(TH, COMPLETED, 7, outputs=THUMBNAIL_OUTPUTS),
    stage_event(T, COMPLETED, 8, outputs=TRANSCODE_OUTPUTS),
]

# Transcode fails half way while the thumbnails stage, which runs on its own, still finishes.
FAILURE_EVENTS: list[Event] = [
    upload_completed(),
    stage_event(T, STARTED, 2, source=PROBED_SOURCE),
    stage_event(TH, STARTED, 3),
    stage_event(T, PROGRESS, 4, progress=0.25),
    stage_event(T, FAILED, 5, error=FAILURE),
    stage_event(TH, PROGRESS, 6, progress=0.5),
    stage_event(TH, COMPLETED, 7, outputs=THUMBNAIL_OUTPUTS),
]


def deliver(job: Job, events: list[Event]) -> list[Job]:
    """Every state the job goes through, the first one included."""
    states = [job]
    for event in events:
        states.append(apply_event(states[-1], event) or states[-1])
    return states


def outcome(job: Job) -> dict[str, Any]:
    """What a user sees of a finished job (timestamps and progress of a failed stage aside)."""
    return {
        "status": job.status,
        "stage_statuses": {stage: state.status for stage, state in job.stages.items()},
        "outputs": {stage: state.outputs for stage, state in job.stages.items()},
        "error": job.error,
        "source": job.source,
    }


@st.composite
def redeliveries(draw: st.DrawFn, events: list[Event]) -> list[Event]:
    """Every event at least once, some of them again, in any order: what SQS may hand us."""
    duplicates = draw(st.lists(st.sampled_from(events), max_size=len(events)))
    return draw(st.permutations(events + duplicates))


def test_GIVEN_a_new_job_WHEN_the_events_arrive_in_order_THEN_it_goes_uploaded_processing_ready() -> None:
    job = new_job()

    states = deliver(job, SUCCESS_EVENTS)

    assert [state.status for state in states[:3]] == [
        JobStatus.AWAITING_UPLOAD,
        JobStatus.UPLOADED,
        JobStatus.PROCESSING,
    ]
    final = states[-1]
    assert final.status is JobStatus.READY
    assert final.stages[T].status is StageStatus.COMPLETED
    assert final.stages[T].outputs == TRANSCODE_OUTPUTS
    assert final.stages[TH].outputs == THUMBNAIL_OUTPUTS
    assert final.stages[T].progress == 1.0
    assert final.source["duration_s"] == 12.5
    assert final.error is None
    assert final.updated_at == at(8)


def test_GIVEN_a_processing_job_WHEN_a_stage_fails_THEN_the_job_is_failed_with_the_stage_error() -> None:
    job = deliver(new_job(), FAILURE_EVENTS[:4])[-1]

    failed = apply_event(job, FAILURE_EVENTS[4])

    assert failed is not None
    assert failed.status is JobStatus.FAILED
    assert failed.stages[T].status is StageStatus.FAILED
    assert failed.error == FAILURE


def test_GIVEN_a_stage_failed_without_details_WHEN_applied_THEN_the_error_still_has_a_code() -> None:
    job = deliver(new_job(), FAILURE_EVENTS[:1])[-1]

    failed = apply_event(job, stage_event(TH, FAILED, 9))

    assert failed is not None
    assert failed.error is not None
    assert failed.error["code"] == "STAGE_FAILED"


def test_GIVEN_any_event_already_applied_WHEN_it_is_delivered_again_THEN_nothing_changes() -> None:
    job = new_job()
    for event in SUCCESS_EVENTS:
        updated = apply_event(job, event)
        assert updated is not None, event

        assert apply_event(updated, event) is None, event
        job = updated


def test_GIVEN_a_ready_job_WHEN_a_stale_progress_event_arrives_THEN_nothing_changes() -> None:
    ready = deliver(new_job(), SUCCESS_EVENTS)[-1]

    assert apply_event(ready, stage_event(T, PROGRESS, 9, progress=0.1)) is None


def test_GIVEN_a_failed_job_WHEN_the_other_stage_completes_THEN_the_job_stays_failed() -> None:
    failed = deliver(new_job(), FAILURE_EVENTS[:5])[-1]

    later = apply_event(failed, FAILURE_EVENTS[-1])

    assert later is not None
    assert later.status is JobStatus.FAILED
    assert later.error == FAILURE
    assert later.stages[TH].status is StageStatus.COMPLETED


def test_GIVEN_a_job_WHEN_the_job_is_read_back_from_its_dict_THEN_it_is_the_same_job() -> None:
    job = deliver(new_job(), FAILURE_EVENTS)[-1]

    assert Job.from_dict(job.to_dict()) == job


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([SUCCESS_EVENTS, FAILURE_EVENTS]).flatmap(
        lambda events: st.tuples(st.just(events), redeliveries(events))
    )
)
def test_GIVEN_any_delivery_order_with_duplicates_WHEN_applied_THEN_the_outcome_is_that_of_the_ordered_list(
    case: tuple[list[Event], list[Event]],
) -> None:
    ordered, delivered = case
    expected = deliver(new_job(), ordered)[-1]

    states = deliver(new_job(), delivered)

    assert outcome(states[-1]) == outcome(expected)
    for before, after in zip(states, states[1:], strict=False):
        assert RANK[after.status] >= RANK[before.status]
        if before.status is JobStatus.FAILED:
            assert after.status is JobStatus.FAILED and after.error == before.error
        for stage in Stage:
            assert after.stages[stage].progress >= before.stages[stage].progress


def test_GIVEN_a_job_the_sweep_failed_from_silence_WHEN_its_stage_completes_after_all_THEN_the_job_is_ready() -> None:
    # GIVEN thumbnails done, transcode silent, and the sweep's DEAD_LETTERED verdict
    processing = deliver(new_job(), SUCCESS_EVENTS[:-1])[-1]
    verdict = {"code": "DEAD_LETTERED", "message": "the transcode stage gave up"}
    failed = fail_stalled(processing, error=verdict, now="2026-11-27T12:00:00Z")
    assert failed is not None and failed.stages[T].status is StageStatus.FAILED

    # WHEN the redriven transcode reports COMPLETED
    revived = apply_event(failed, SUCCESS_EVENTS[-1])

    # THEN the stage completes and the job is READY without the guessed error;
    # a duplicate of that report changes nothing more
    assert revived is not None
    assert revived.status is JobStatus.READY and revived.error is None
    assert revived.stages[T].status is StageStatus.COMPLETED
    assert revived.stages[T].outputs == TRANSCODE_OUTPUTS
    assert apply_event(revived, SUCCESS_EVENTS[-1]) is None


def test_GIVEN_a_job_failed_by_a_stages_own_report_WHEN_a_stage_completes_later_THEN_it_stays_failed() -> None:
    failed = deliver(new_job(), FAILURE_EVENTS)[-1]

    assert apply_event(failed, stage_event(T, COMPLETED, 9, outputs=TRANSCODE_OUTPUTS)) is None


def test_GIVEN_a_sweep_failure_WHEN_only_a_late_progress_or_started_arrives_THEN_it_stays_failed() -> None:
    processing = deliver(new_job(), SUCCESS_EVENTS[:-1])[-1]
    failed = fail_stalled(processing, error={"code": "STAGE_STALLED", "message": "m"}, now="2026-11-27T12:00:00Z")

    for late in (stage_event(T, STARTED, 9), stage_event(T, PROGRESS, 9, progress=0.9)):
        assert apply_event(failed, late) is None


# ---------------------------------------------------------------- one accepted upload


def rewrite_of_the_key(second: int, size: int = SIZE) -> UploadCompleted:
    """The presigned POST sent again: another write (version, ETag, sequencer) of the same key."""
    return UploadCompleted(
        job_id=JOB_ID,
        bucket="uploads",
        key=f"uploads/{JOB_ID}/source",
        size=size,
        occurred_at=at(second),
        etag="f" * 32,
        version_id="later",
        sequencer="99",
    )


def test_GIVEN_a_job_awaiting_its_upload_WHEN_the_upload_arrives_THEN_that_write_is_accepted() -> None:
    upload = UploadCompleted(
        job_id=JOB_ID,
        bucket="uploads",
        key=f"uploads/{JOB_ID}/source",
        size=SIZE,
        occurred_at=at(1),
        etag="a" * 32,
        version_id="v1",
        sequencer="01",
    )

    job = apply_event(new_job(), upload)

    assert job is not None and job.status is JobStatus.UPLOADED
    assert accepted_upload(job) == {"etag": "a" * 32, "version_id": "v1", "sequencer": "01"}


def test_GIVEN_a_READY_job_WHEN_its_key_is_written_again_THEN_nothing_changes() -> None:
    # GIVEN a job READY from its upload
    job = deliver(new_job(), SUCCESS_EVENTS)[-1]
    assert job.status is JobStatus.READY

    # WHEN another write of the key arrives (other bytes, another size)
    # THEN the job is not touched: the same status, source size and accepted upload
    assert apply_event(job, rewrite_of_the_key(59, size=SIZE + 1)) is None
    assert why_no_stage_runs(job, rewrite_of_the_key(59)) is not None


def test_GIVEN_a_cancelled_job_WHEN_its_upload_arrives_late_THEN_it_accepts_nothing_and_no_stage_may_run() -> None:
    cancelled = end_upload(
        new_job(), status=JobStatus.FAILED, now=at(5), error={"code": "UPLOAD_CANCELLED", "message": "cancelled"}
    )
    assert cancelled is not None

    assert apply_event(cancelled, upload_completed()) is None
    assert why_no_stage_runs(cancelled, upload_completed()) is not None
    expired = end_upload(new_job(), status=JobStatus.EXPIRED, error=None, now=at(5))
    assert expired is not None and why_no_stage_runs(expired, upload_completed()) is not None


def test_GIVEN_a_job_processing_its_upload_WHEN_asked_about_a_later_write_THEN_only_the_accepted_may_run() -> None:
    job = deliver(new_job(), SUCCESS_EVENTS[:3])[-1]
    assert job.status is JobStatus.PROCESSING

    assert why_no_stage_runs(job, upload_completed()) is None
    assert why_no_stage_runs(job, rewrite_of_the_key(4)) == (
        "a later write to the upload key: the job keeps the upload it accepted"
    )
