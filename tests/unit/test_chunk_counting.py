"""Counting a chunked transcode's chunks on the job, the stitch order, and the
chunk work orders' events (no AWS, no FFmpeg)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from job_lifecycle.domain_logic.status import JobUpdate, stitch_request
from transcode.domain_logic.chunk_planning import ChunkTask
from transcode.domain_logic.fanout import run_work_order
from upload_api.domain_logic.job_view import job_view
from vidpipe.domain.errors import StorageError, ValidationFailed
from vidpipe.domain.events import ChunkRequested, Stage, StageEvent, StageEventKind, StitchRequested, parse_chunk_work
from vidpipe.domain.inbound_events import parse_event
from vidpipe.domain.job_transitions import apply_event
from vidpipe.domain.jobs import Job, StageStatus

EVENTS = Path(__file__).parent.parent / "events"
JOB_ID = "0f8fad5b-d9cb-469f-a165-70867728950e"


def new_job() -> Job:
    return Job.new(JOB_ID, filename="long.mp4", content_type="video/mp4", size=1, now="2025-01-01T10:00:00.000000Z")


def chunk_event(chunks: dict, second: int = 1) -> StageEvent:
    return StageEvent(
        job_id=JOB_ID,
        stage=Stage.TRANSCODE,
        kind=StageEventKind.PROGRESS,
        occurred_at=f"2025-01-01T10:00:{second:02d}.000000Z",
        chunks=chunks,
    )


def apply_all(job: Job, events: list[StageEvent]) -> Job:
    for event in events:
        job = apply_event(job, event) or job
    return job


def test_GIVEN_a_plan_and_three_finished_chunks_WHEN_applied_THEN_three_of_three_done() -> None:
    events = [chunk_event({"total": 3})] + [chunk_event({"total": 3, "finished": [i]}, 2 + i) for i in (2, 0, 1)]

    job = apply_all(new_job(), events)

    assert job.stages[Stage.TRANSCODE].chunks == {"total": 3, "done": 3, "finished": [0, 1, 2]}
    assert job.stages[Stage.TRANSCODE].status is StageStatus.RUNNING
    assert 0.95 <= job.stages[Stage.TRANSCODE].progress <= 0.99


def test_GIVEN_duplicate_chunk_reports_in_any_order_THEN_each_chunk_counts_once() -> None:
    reports = [chunk_event({"total": 3, "finished": [i]}, 1 + n) for n, i in enumerate([0, 1, 1, 0, 1])]

    for order in itertools.permutations(reports):
        job = apply_all(new_job(), list(order))
        assert job.stages[Stage.TRANSCODE].chunks["done"] == 2

    once = apply_all(new_job(), reports[:1])
    assert apply_event(once, reports[0]) is None  # a pure duplicate writes nothing


def test_GIVEN_a_chunked_job_WHEN_stored_and_read_back_THEN_the_count_survives() -> None:
    job = apply_all(new_job(), [chunk_event({"total": 4, "finished": [3]})])

    assert Job.from_dict(job.to_dict()).stages[Stage.TRANSCODE].chunks == {"total": 4, "done": 1, "finished": [3]}
    assert "chunks" not in new_job().to_dict()["stages"]["transcode"]  # unchanged for single-process jobs


def test_GIVEN_a_chunked_job_WHEN_shown_THEN_total_and_done_only() -> None:
    job = apply_all(new_job(), [chunk_event({"total": 4, "finished": [3]})])

    view = job_view(job, api_url="https://api", signer=None, url_ttl_s=60)  # type: ignore[arg-type]

    assert view["stages"]["transcode"]["chunks"] == {"total": 4, "done": 1}
    assert "chunks" not in view["stages"]["thumbnails"]


def test_GIVEN_the_last_chunk_WHEN_counted_THEN_a_stitch_is_requested_and_not_before() -> None:
    job = apply_all(new_job(), [chunk_event({"total": 2}), chunk_event({"total": 2, "finished": [0]})])
    first = chunk_event({"total": 2, "finished": [0]})
    assert stitch_request(first, JobUpdate(job, changed=True, became_terminal=False)) is None

    last = chunk_event({"total": 2, "finished": [1]}, 9)
    done = apply_event(job, last)
    assert done is not None

    request = stitch_request(last, JobUpdate(done, changed=True, became_terminal=False))
    assert request == StitchRequested(job_id=JOB_ID, total=2, occurred_at=request.occurred_at)
    # a redelivered last report asks again while the transcode is not complete (the stitch is idempotent)
    assert stitch_request(last, JobUpdate(done, changed=False, became_terminal=False)) is not None


def test_GIVEN_a_completed_or_failed_transcode_THEN_no_stitch_is_requested() -> None:
    job = apply_all(new_job(), [chunk_event({"total": 1, "finished": [0]})])
    for kind in (StageEventKind.COMPLETED, StageEventKind.FAILED):
        ended = apply_event(
            job, StageEvent(job_id=JOB_ID, stage=Stage.TRANSCODE, kind=kind, occurred_at="2025-01-01T10:01:00.000000Z")
        )
        assert ended is not None
        assert stitch_request(chunk_event({"total": 1, "finished": [0]}), JobUpdate(ended, False, False)) is None


def test_GIVEN_a_chunk_event_WHEN_sent_through_eventbridge_json_THEN_parsed_back() -> None:
    event = chunk_event({"total": 3, "finished": [1]})
    wire = {"source": "vidpipe.transcode", "detail-type": event.detail_type, "detail": event.detail()}

    assert parse_event(json.loads(json.dumps(wire))) == event


def test_GIVEN_the_chunk_requested_fixture_WHEN_parsed_THEN_a_work_order_with_a_valid_task() -> None:
    order = parse_chunk_work(json.loads((EVENTS / "chunk_requested.json").read_text()))

    assert isinstance(order, ChunkRequested)
    assert (order.index, order.total) == (1, 3)
    task = ChunkTask.from_dict(order.task)
    assert [r.name for r in task.ladder] == ["360p", "240p"] and task.has_audio
    assert order.source_version == "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY"
    wire = {"source": "vidpipe.chunks", "detail-type": order.detail_type, "detail": order.detail()}
    assert parse_chunk_work(wire) == order


def test_GIVEN_a_chunk_order_WHEN_encoded_THEN_it_reads_the_upload_version_the_job_accepted(tmp_path: Path) -> None:
    # GIVEN the order of a chunk of an upload the job accepted at one version
    order = parse_chunk_work(json.loads((EVENTS / "chunk_requested.json").read_text()))
    asked: list[tuple[str, str]] = []

    def locate(key: str, version: str) -> Path:
        asked.append((key, version))
        raise StorageError("stop here: only where FFmpeg would read matters")

    # WHEN the chunk function runs it
    with pytest.raises(StorageError):
        run_work_order(
            order,
            tmp_path,
            receive_count=1,
            max_receive_count=3,
            timeout_s=60,
            locate=locate,
            work_store=None,
            output_store=None,
            publish=lambda event: None,
        )  # type: ignore[arg-type]

    # THEN FFmpeg is pointed at that version of the upload, never at whatever the key holds now
    assert asked == [(order.source_key, "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY")]


def test_GIVEN_a_stitch_request_WHEN_parsed_THEN_the_same() -> None:
    request = StitchRequested(job_id=JOB_ID, total=5)
    wire = {"source": "vidpipe.chunks", "detail-type": request.detail_type, "detail": request.detail()}

    assert parse_chunk_work(wire) == request


@pytest.mark.parametrize(
    "event",
    [
        {"source": "vidpipe.transcode", "detail-type": "Chunk Requested", "detail": {"version": 1}},
        {"source": "vidpipe.chunks", "detail-type": "Chunk Requested", "detail": {"version": 1, "job_id": "x"}},
        {"source": "vidpipe.chunks", "detail-type": "Something Else", "detail": {"version": 1}},
        {"source": "vidpipe.chunks", "detail-type": "Stitch Requested", "detail": {"version": 2}},
    ],
)
def test_GIVEN_a_malformed_work_order_THEN_validation_failed(event: dict) -> None:
    with pytest.raises(ValidationFailed):
        parse_chunk_work(event)


# ------------------------------------------------------------------ early playback


def playable_event(second: int) -> StageEvent:
    return StageEvent(
        job_id=JOB_ID, stage=Stage.TRANSCODE, kind=StageEventKind.PROGRESS,
        occurred_at=f"2025-01-01T10:00:{second:02d}.000000Z",
        outputs={"prefix": f"jobs/{JOB_ID}/hls/", "master_playlist": "master.m3u8",
                 "renditions": [{"name": "240p", "width": 426, "height": 240, "bitrate": 528000}], "playable": True},
    )  # fmt: skip


def completed_event(second: int) -> StageEvent:
    return StageEvent(
        job_id=JOB_ID, stage=Stage.TRANSCODE, kind=StageEventKind.COMPLETED,
        occurred_at=f"2025-01-01T10:00:{second:02d}.000000Z",
        outputs={"prefix": f"jobs/{JOB_ID}/hls/", "master_playlist": "master.m3u8",
                 "renditions": [{"name": "360p", "width": 640, "height": 360, "bitrate": 928000},
                                {"name": "240p", "width": 426, "height": 240, "bitrate": 528000}]},
    )  # fmt: skip


class Signer:
    def presigned_get(self, key: str, *, expires_s: int) -> str:
        return f"https://s3/{key}"


def test_GIVEN_the_lowest_rung_is_out_WHEN_applied_THEN_playable_with_a_preview_before_ready() -> None:
    job = apply_all(new_job(), [playable_event(5)])

    assert job.playable_at == "2025-01-01T10:00:05.000000Z"
    assert job.stages[Stage.TRANSCODE].status is StageStatus.RUNNING
    view = job_view(job, api_url="https://api", signer=Signer(), url_ttl_s=60)
    assert view["playable_at"] == job.playable_at and view["status"] == "PROCESSING"
    assert view["outputs"]["hls_url"] == f"https://api/jobs/{JOB_ID}/hls/master.m3u8"
    assert [r["name"] for r in view["outputs"]["renditions"]] == ["240p"]


def test_GIVEN_playable_then_completed_in_any_order_THEN_playable_at_is_the_early_time_and_outputs_the_ladder() -> None:
    for order in ([playable_event(5), completed_event(9)], [completed_event(9), playable_event(5)]):
        job = apply_all(new_job(), order)

        assert job.playable_at == "2025-01-01T10:00:05.000000Z"
        assert [r["name"] for r in job.stages[Stage.TRANSCODE].outputs["renditions"]] == ["360p", "240p"]
    # a completed ladder without an early report (the chunked path) is playable when it completes
    assert apply_all(new_job(), [completed_event(9)]).playable_at == "2025-01-01T10:00:09.000000Z"
    assert Job.from_dict(apply_all(new_job(), [playable_event(5)]).to_dict()).playable_at is not None


def test_GIVEN_a_transcode_that_fails_after_playing_early_THEN_not_playable_whatever_the_order() -> None:
    failed = StageEvent(
        job_id=JOB_ID,
        stage=Stage.TRANSCODE,
        kind=StageEventKind.FAILED,
        occurred_at="2025-01-01T10:00:07.000000Z",
        error={"code": "FFMPEG_ERROR", "message": "x"},
    )

    for order in ([playable_event(5), failed], [failed, playable_event(5)]):
        job = apply_all(new_job(), order)

        assert job.playable_at is None and job.status.value == "FAILED"
        assert "hls_url" not in job_view(job, api_url="https://api", signer=Signer(), url_ttl_s=60)["outputs"]
