"""The job timeline's pure pieces: entry keys (idempotent, time-ordered), the
entries made from events, and a failed stage attempt written by the stage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.unit.test_stage_runner import JOB_ID, Fakes, FakeSourceStore, hls_work, object_created
from vidpipe.domain.errors import StorageError
from vidpipe.domain.events import JobFinished, Stage, StageEvent, StageEventKind
from vidpipe.domain.inbound_events import parse_event, parse_sqs_body
from vidpipe.domain.timeline import Invocation, TimelineEntry, entry_for_event, entry_for_finished, event_identity
from vidpipe.runtime.sqs_message_policy import StageAttempt, queued_at_of
from vidpipe.runtime.stage_runner import run_stage

EVENTS = Path(__file__).parent.parent / "events"
STATUS = Invocation(function="status", request_id="0b7e5c1a-status")
TRACE = {"function": "transcode", "request_id": "9d3c-transcode", "attempt": 2, "queued_at": "2025-03-14T09:27:30Z"}


def envelope(event: StageEvent) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "c3f0",
        "detail-type": event.detail_type,
        "source": f"vidpipe.{event.stage.value}",
        "account": "111122223333",
        "time": "2025-03-14T09:27:41Z",
        "region": "eu-west-1",
        "resources": [],
        "detail": event.detail(),
    }


def completed(at: str = "2025-03-14T09:27:41.204518Z") -> StageEvent:
    return StageEvent(
        job_id=JOB_ID,
        stage=Stage.TRANSCODE,
        kind=StageEventKind.COMPLETED,
        occurred_at=at,
        outputs={"prefix": f"jobs/{JOB_ID}/hls/", "renditions": [{"name": "360p"}, {"name": "240p"}]},
        trace=TRACE,
    )


def test_GIVEN_one_event_delivered_twice_WHEN_entries_are_made_THEN_both_have_the_same_key() -> None:
    body = json.dumps(envelope(completed()))

    first, second = (
        entry_for_event(parse_sqs_body(body), identity=event_identity(json.loads(body)), recorded_by=STATUS)
        for _ in range(2)
    )

    assert first.entry_key == second.entry_key


def test_GIVEN_the_stage_running_again_WHEN_its_events_are_recorded_THEN_they_are_new_entries() -> None:
    again = completed(at="2025-03-14T09:29:00.000001Z")

    keys = {
        entry_for_event(e, identity=event_identity(envelope(e)), recorded_by=STATUS).entry_key
        for e in (completed(), again)
    }

    assert len(keys) == 2


def test_GIVEN_entries_at_different_times_WHEN_their_keys_are_sorted_THEN_they_are_in_time_order() -> None:
    times = ["2025-03-14T09:27:41.204518Z", "2025-03-14T09:27:09.000001Z", "2025-03-14T10:00:00.000000Z"]
    entries = [
        TimelineEntry(job_id=JOB_ID, at=t, what=w, function="f", request_id="r", identity=t)
        for t, w in zip(times, ["z.last", "a.first", "m.middle"], strict=True)
    ]

    assert [e.at for e in sorted(entries, key=lambda e: e.entry_key)] == sorted(times)


def test_GIVEN_a_stage_event_with_its_trace_WHEN_made_an_entry_THEN_it_names_the_stage_invocation() -> None:
    entry = entry_for_event(completed(), identity="x", recorded_by=STATUS, job_status="PROCESSING")

    assert (entry.what, entry.function, entry.request_id) == ("transcode.completed", "transcode", "9d3c-transcode")
    assert entry.details == {
        "recorded_by": "status",
        "recorded_by_request_id": "0b7e5c1a-status",
        "job_status": "PROCESSING",
        "attempt": 2,
        "queued_at": "2025-03-14T09:27:30Z",
        "outputs": {"prefix": f"jobs/{JOB_ID}/hls/", "renditions": ["360p", "240p"]},
    }


def test_GIVEN_the_upload_event_WHEN_made_an_entry_THEN_it_is_job_uploaded_at_s3s_time_with_the_size() -> None:
    event = parse_event(json.loads((EVENTS / "s3_object_created.json").read_text()))

    entry = entry_for_event(event, identity="x", recorded_by=STATUS, job_status="UPLOADED")

    assert (entry.what, entry.at, entry.function) == ("job.uploaded", event.occurred_at, "s3")
    assert entry.details["size"] == event.size and entry.details["job_status"] == "UPLOADED"


def test_GIVEN_a_job_that_failed_WHEN_its_finish_is_recorded_THEN_one_identity_whatever_the_time() -> None:
    error = {"code": "NOT_A_VIDEO", "message": "no"}
    first = entry_for_finished(JobFinished(job_id=JOB_ID, status="FAILED", error=error), recorded_by=STATUS)

    assert (first.what, first.identity, first.details) == (
        "job.failed",
        "job.finished",
        {"status": "FAILED", "error": error},
    )


def test_GIVEN_a_stage_event_with_a_trace_WHEN_sent_and_parsed_THEN_the_trace_survives() -> None:
    assert parse_event(envelope(completed())).trace == TRACE


def test_GIVEN_an_older_event_without_trace_WHEN_parsed_THEN_trace_is_none() -> None:
    event = StageEvent(job_id=JOB_ID, stage=Stage.TRANSCODE, kind=StageEventKind.STARTED)

    assert "trace" not in event.detail()
    assert parse_event(envelope(event)).trace is None


def test_GIVEN_sqs_sent_timestamp_WHEN_converted_THEN_iso_utc_and_none_when_missing() -> None:
    assert queued_at_of("1741944461318") == "2025-03-14T09:27:41.318000Z"
    assert queued_at_of(None) is None
    assert queued_at_of("soon") is None


class RecordingTimeline:
    def __init__(self) -> None:
        self.entries: list[TimelineEntry] = []

    def record(self, entry: TimelineEntry) -> None:
        self.entries.append(entry)


def run_failing(tmp_path: Path, receive_count: int, timeline: RecordingTimeline) -> Fakes:
    fakes = Fakes(source=FakeSourceStore(error=StorageError("cannot download: SlowDown")))
    attempt = StageAttempt(
        function="transcode", request_id="req-1", number=receive_count, queued_at="2025-03-14T09:27:30Z", retry_in_s=12
    )
    with pytest.raises(StorageError, match="SlowDown"):
        run_stage(
            stage=Stage.TRANSCODE,
            eventbridge_event=object_created(),
            receive_count=receive_count,
            max_receive_count=3,
            output_folder="hls",
            source_store=fakes.source,
            output_store=fakes.output,
            publisher=fakes.publisher,
            work=hls_work,
            scratch_root=tmp_path,
            attempt=attempt,
            timeline=timeline,
        )
    return fakes


def test_GIVEN_a_failed_attempt_that_will_be_retried_WHEN_run_THEN_the_timeline_says_when(tmp_path: Path) -> None:
    timeline = RecordingTimeline()

    fakes = run_failing(tmp_path, 2, timeline)

    [entry] = timeline.entries
    assert (entry.what, entry.function, entry.request_id) == ("transcode.attempt_failed", "transcode", "req-1")
    assert entry.details == {
        "attempt": 2,
        "retry_in_s": 12,
        "error": {"code": "STORAGE_ERROR", "message": "cannot download: SlowDown"},
    }
    assert fakes.publisher.events[0].trace == {
        "function": "transcode",
        "request_id": "req-1",
        "attempt": 2,
        "queued_at": "2025-03-14T09:27:30Z",
    }


def test_GIVEN_the_last_attempt_failing_WHEN_run_THEN_the_timeline_says_the_message_goes_to_the_dlq(
    tmp_path: Path,
) -> None:
    timeline = RecordingTimeline()

    run_failing(tmp_path, 3, timeline)

    [entry] = timeline.entries
    assert entry.details["dead_letter"] is True and "retry_in_s" not in entry.details


def test_GIVEN_a_timeline_that_cannot_be_written_WHEN_an_attempt_fails_THEN_the_original_error_is_raised(
    tmp_path: Path,
) -> None:
    class BrokenTimeline(RecordingTimeline):
        def record(self, entry: TimelineEntry) -> None:
            raise RuntimeError("table gone")

    fakes = run_failing(tmp_path, 1, BrokenTimeline())  # raises StorageError("cannot download...") inside

    assert fakes.publisher.kinds == [StageEventKind.STARTED]
