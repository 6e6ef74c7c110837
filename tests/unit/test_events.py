"""Parsing the events the status function receives, from real-shaped JSON fixtures."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from vidpipe.domain.errors import ValidationFailed
from vidpipe.domain.events import JobFinished, Stage, StageEvent, StageEventKind, UploadCompleted
from vidpipe.domain.inbound_events import parse_event, parse_sqs_body

EVENTS = Path(__file__).parent.parent / "events"
JOB_ID = "3f2b8c1e-7d4a-4e2b-9c61-2a5d8e0f4b17"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return data


def test_GIVEN_s3_object_created_for_an_upload_WHEN_parsed_THEN_upload_completed_for_its_job() -> None:
    event = parse_event(load("s3_object_created.json"))

    assert event == UploadCompleted(
        job_id=JOB_ID,
        bucket="vidpipe-uploads-111122223333",
        key=f"uploads/{JOB_ID}/source",
        size=7340032,
        occurred_at="2025-03-14T09:26:53Z",
        etag="9b2cf535f27731c974343645a3985328",
        version_id="AZ2xrb0UBqVZ5Pd.dAQZF1_ZMKgHEcf4",
        sequencer="0067D3F5DD3A2B9C41",
    )


def test_GIVEN_transcode_completed_WHEN_parsed_THEN_a_stage_event_with_its_outputs() -> None:
    event = parse_event(load("transcode_completed.json"))

    assert isinstance(event, StageEvent)
    assert (event.job_id, event.stage, event.kind) == (JOB_ID, Stage.TRANSCODE, StageEventKind.COMPLETED)
    assert event.outputs is not None
    assert event.outputs["hls_key"] == f"jobs/{JOB_ID}/hls/master.m3u8"
    assert event.detail_type == "Transcode Completed"


def test_GIVEN_thumbnails_failed_WHEN_parsed_THEN_a_stage_event_with_its_error() -> None:
    event = parse_event(load("thumbnails_failed.json"))

    assert isinstance(event, StageEvent)
    assert (event.stage, event.kind) == (Stage.THUMBNAILS, StageEventKind.FAILED)
    assert event.error == {"code": "CORRUPT_MEDIA", "message": "ffmpeg could not decode a frame at 00:00:04.000"}


def test_GIVEN_an_sqs_record_WHEN_its_body_is_parsed_THEN_it_is_the_eventbridge_event_inside() -> None:
    record = load("sqs_record_transcode_completed.json")["Records"][0]

    event = parse_sqs_body(record["body"])

    assert event == parse_event(load("transcode_completed.json"))


def test_GIVEN_a_stage_event_WHEN_its_detail_is_published_and_read_back_THEN_it_is_the_same_event() -> None:
    original = parse_event(load("thumbnails_failed.json"))
    assert isinstance(original, StageEvent)
    envelope = {**load("thumbnails_failed.json"), "detail": json.loads(json.dumps(original.detail()))}

    assert parse_event(envelope) == original


def test_GIVEN_a_finished_job_WHEN_described_THEN_detail_type_follows_the_status() -> None:
    assert JobFinished(job_id=JOB_ID, status="READY").detail_type == "Job Ready"
    failed = JobFinished(job_id=JOB_ID, status="FAILED", error={"code": "X", "message": "y"})
    assert failed.detail_type == "Job Failed"
    assert failed.detail()["job_id"] == JOB_ID


def with_detail(name: str, **changes: Any) -> dict[str, Any]:
    event = copy.deepcopy(load(name))
    event["detail"].update(changes)
    return event


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(with_detail("transcode_completed.json", version=2), id="newer-version"),
        pytest.param(with_detail("transcode_completed.json", version="1"), id="version-as-text"),
        pytest.param(with_detail("transcode_completed.json", stage="audio"), id="unknown-stage"),
        pytest.param(with_detail("transcode_completed.json", kind="Paused"), id="unknown-kind"),
        pytest.param({**load("transcode_completed.json"), "source": "someone.else"}, id="foreign-source"),
        pytest.param({**load("transcode_completed.json"), "detail": None}, id="no-detail"),
        pytest.param(
            with_detail("s3_object_created.json", object={"key": "uploads/../etc/passwd", "size": 1}),
            id="s3-key-outside-uploads",
        ),
        pytest.param(
            with_detail("s3_object_created.json", object={"key": "uploads//source", "size": 1}),
            id="s3-key-without-job-id",
        ),
        pytest.param(
            with_detail("s3_object_created.json", object={"key": f"jobs/{JOB_ID}/hls/master.m3u8"}),
            id="s3-key-not-an-upload",
        ),
        pytest.param(with_detail("s3_object_created.json", bucket="not-a-dict"), id="s3-malformed-bucket"),
    ],
)
def test_GIVEN_an_event_we_do_not_understand_WHEN_parsed_THEN_validation_failed(event: dict[str, Any]) -> None:
    with pytest.raises(ValidationFailed):
        parse_event(event)


def test_GIVEN_an_event_without_job_id_WHEN_parsed_THEN_validation_failed() -> None:
    event = load("transcode_completed.json")
    del event["detail"]["job_id"]

    with pytest.raises(ValidationFailed):
        parse_event(event)


@pytest.mark.parametrize("body", ["not json", "[1, 2]", ""])
def test_GIVEN_an_sqs_body_that_is_not_an_event_WHEN_parsed_THEN_validation_failed(body: str) -> None:
    with pytest.raises(ValidationFailed):
        parse_sqs_body(body)
