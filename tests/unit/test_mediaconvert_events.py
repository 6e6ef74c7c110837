"""MediaConvert "Job State Change" events (fixtures shaped as AWS documents them)
read as our transcode events, and a COMPLETE read as a list of frame captures."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from vidpipe.domain.errors import ValidationFailed
from vidpipe.domain.events import Stage, StageEventKind
from vidpipe.domain.inbound_events import parse_sqs_body
from vidpipe.domain.job_transitions import apply_event
from vidpipe.domain.jobs import Job, JobStatus, StageStatus
from vidpipe.domain.mediaconvert_events import parse_captures_ready, parse_state_change

EVENTS = Path(__file__).resolve().parents[1] / "events"
JOB_ID = "0b9f5a4c2d8e4f1a9c3b7d6e5f4a3b2c"


def fixture(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / f"mediaconvert_{name}.json").read_text())


def uploaded_job() -> Job:
    job = Job.new(JOB_ID, filename="clip.mp4", content_type="video/mp4", size=1000, now="2022-12-19T19:00:00.000000Z")
    job.status = JobStatus.UPLOADED
    return job


def test_GIVEN_PROGRESSING_WHEN_parsed_from_an_sqs_body_THEN_the_transcode_stage_is_running() -> None:
    event = parse_sqs_body(json.dumps(fixture("progressing")))

    assert (event.job_id, event.stage, event.kind, event.progress) == (
        JOB_ID,
        Stage.TRANSCODE,
        StageEventKind.PROGRESS,
        None,
    )
    job = apply_event(uploaded_job(), event)
    assert job is not None and job.stages[Stage.TRANSCODE].status is StageStatus.RUNNING
    assert job.status is JobStatus.PROCESSING


def test_GIVEN_STATUS_UPDATE_WHEN_parsed_THEN_progress_is_jobPercentComplete_and_the_time_keeps_milliseconds() -> None:
    event = parse_state_change(fixture("status_update"))

    assert event.kind is StageEventKind.PROGRESS
    assert event.progress == 0.07
    # detail.timestamp 1671477681737 ms, not the envelope's whole second
    assert event.occurred_at == "2022-12-19T19:21:21.737000Z"


def test_GIVEN_STATUS_UPDATE_at_100_percent_WHEN_parsed_THEN_progress_stops_below_1_until_COMPLETE() -> None:
    raw = fixture("status_update")
    raw["detail"]["jobProgress"]["jobPercentComplete"] = 100

    assert parse_state_change(raw).progress == 0.99


def test_GIVEN_STATUS_UPDATE_without_a_percentage_WHEN_parsed_THEN_no_progress_value() -> None:
    raw = fixture("status_update")
    del raw["detail"]["jobProgress"]

    event = parse_state_change(raw)
    assert event.kind is StageEventKind.PROGRESS and event.progress is None


def test_GIVEN_COMPLETE_WHEN_parsed_THEN_the_outputs_are_the_planned_renditions_with_their_playlists() -> None:
    event = parse_state_change(fixture("complete"))

    assert event.kind is StageEventKind.COMPLETED
    assert event.outputs == {
        "prefix": f"jobs/{JOB_ID}/hls/",
        "master_playlist": "master.m3u8",
        "renditions": [
            {"name": "720p", "width": 1280, "height": 720, "bitrate": 2928000, "playlist": "master_720p.m3u8"},
            {"name": "480p", "width": 854, "height": 480, "bitrate": 1528000, "playlist": "master_480p.m3u8"},
            {"name": "360p", "width": 640, "height": 360, "bitrate": 928000, "playlist": "master_360p.m3u8"},
            {"name": "240p", "width": 426, "height": 240, "bitrate": 528000, "playlist": "master_240p.m3u8"},
        ],
    }


def test_GIVEN_COMPLETE_with_the_MP4_file_group_WHEN_parsed_THEN_the_outputs_name_the_download() -> None:
    raw = fixture("complete")
    mp4_path = f"s3://amzn-s3-demo-bucket/jobs/{JOB_ID}/hls/download.mp4"
    raw["detail"]["outputGroupDetails"].append(
        {"type": "FILE_GROUP", "outputDetails": [{"outputFilePaths": [mp4_path], "durationInMs": 6000}]}
    )

    event = parse_state_change(raw)

    assert event.kind is StageEventKind.COMPLETED
    assert event.outputs is not None and event.outputs["mp4"] == "download.mp4"
    assert "mp4" not in (parse_state_change(fixture("complete")).outputs or {})  # a job from before: none


def test_GIVEN_COMPLETE_missing_a_planned_playlist_WHEN_parsed_THEN_the_stage_fails_not_a_broken_READY() -> None:
    raw = fixture("complete")
    raw["detail"]["outputGroupDetails"][0]["outputDetails"].pop(1)  # 480p

    event = parse_state_change(raw)

    assert event.kind is StageEventKind.FAILED
    assert event.error is not None and event.error["code"] == "MEDIACONVERT_ERROR" and "480p" in event.error["message"]


def test_GIVEN_COMPLETE_whose_outputs_are_outside_the_job_folder_WHEN_parsed_THEN_refused() -> None:
    raw = json.loads(json.dumps(fixture("complete")).replace(f"/jobs/{JOB_ID}/hls/", "/jobs/someone-else/hls/"))

    with pytest.raises(ValidationFailed, match="outside the job"):
        parse_state_change(raw)


def test_GIVEN_ERROR_WHEN_applied_THEN_the_job_FAILS_with_MEDIACONVERT_ERROR_and_the_service_s_message() -> None:
    event = parse_state_change(fixture("error"))

    job = apply_event(uploaded_job(), event)

    assert job is not None and job.status is JobStatus.FAILED
    assert job.error == {"code": "MEDIACONVERT_ERROR", "message": "MediaConvert error 1040: Example error message"}


def test_GIVEN_CANCELED_WHEN_parsed_THEN_the_stage_fails() -> None:
    raw = fixture("progressing")
    raw["detail"]["status"] = "CANCELED"

    event = parse_state_change(raw)
    assert event.kind is StageEventKind.FAILED and event.error is not None
    assert event.error["code"] == "MEDIACONVERT_ERROR"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda e: e["detail"].update(status="INPUT_INFORMATION"), "not one we read"),
        (lambda e: e["detail"].update(userMetadata={}), "no vidpipe job id"),
        (lambda e: e["detail"].pop("userMetadata"), "no vidpipe job id"),
        (lambda e: e.update({"detail-type": "MediaConvert Job Queue Hop"}), "not a MediaConvert job state change"),
    ],
    ids=["other-state", "not-ours", "no-metadata", "other-detail-type"],
)
def test_GIVEN_an_event_we_do_not_read_WHEN_parsed_THEN_ValidationFailed(change: Any, reason: str) -> None:
    raw = fixture("progressing")
    change(raw)

    with pytest.raises(ValidationFailed, match=reason):
        parse_state_change(raw)


def test_GIVEN_events_out_of_order_WHEN_applied_THEN_a_late_STATUS_UPDATE_does_not_undo_COMPLETE() -> None:
    job = uploaded_job()
    for name in ("complete", "status_update", "progressing"):
        job = apply_event(job, parse_state_change(fixture(name))) or job

    assert job.stages[Stage.TRANSCODE].status is StageStatus.COMPLETED
    assert job.stages[Stage.TRANSCODE].progress == 1.0


def test_GIVEN_COMPLETE_WHEN_read_for_captures_THEN_every_capture_from_0_to_the_last_one_in_order() -> None:
    captures = parse_captures_ready(fixture("complete"))

    assert captures.job_id == JOB_ID
    assert captures.keys == tuple(f"jobs/{JOB_ID}/captures/frame.{i:07d}.jpg" for i in range(6))
    assert (captures.interval_ms, captures.duration_s) == (1000, 6.0)


def test_GIVEN_a_COMPLETE_without_captures_or_not_COMPLETE_WHEN_read_for_captures_THEN_ValidationFailed() -> None:
    raw = copy.deepcopy(fixture("complete"))
    raw["detail"]["outputGroupDetails"].pop(1)
    with pytest.raises(ValidationFailed, match="without frame captures"):
        parse_captures_ready(raw)
    with pytest.raises(ValidationFailed, match="has no captures"):
        parse_captures_ready(fixture("status_update"))
