"""`vidpipe trace`: a job's timeline printed in order, with the time split into
upload, queue wait and work per stage attempt, status lag and webhooks."""

from __future__ import annotations

from typing import Any

from vidpipe_cli.trace import format_trace, stage_attempts, time_spent


def entry(at: str, what: str, function: str = "", request_id: str = "", **details: Any) -> dict[str, Any]:
    return {
        "at": f"2025-03-14T09:{at}Z",
        "what": what,
        "function": function,
        "request_id": request_id,
        "details": details,
        "recorded_at": f"2025-03-14T09:{at}Z",
        "deliveries": 1,
    }


def retried_job() -> list[dict[str, Any]]:
    """Created, uploaded after 5 s; transcode attempt 1 fails after 2 s of work and is retried
    3 s later; attempt 2 works 4 s; thumbnails run once; READY; one webhook delivery."""
    return [
        entry("00:00.000000", "job.created", "upload-api", "api-1", filename="a.mp4", size=1_000_000),
        entry("00:05.000000", "job.uploaded", "s3", size=1_000_000, recorded_by="status", job_status="UPLOADED"),
        entry("00:05.500000", "transcode.started", "transcode", "tr-1", attempt=1, queued_at="2025-03-14T09:00:05.1Z"),
        entry(
            "00:05.600000", "thumbnails.started", "thumbnails", "th-1", attempt=1, queued_at="2025-03-14T09:00:05.1Z"
        ),
        entry(
            "00:07.500000",
            "transcode.attempt_failed",
            "transcode",
            "tr-1",
            attempt=1,
            retry_in_s=3,
            error={"code": "FFMPEG_ERROR", "message": "killed"},
        ),
        entry("00:08.600000", "thumbnails.completed", "thumbnails", "th-1", attempt=1),
        entry("00:10.500000", "transcode.started", "transcode", "tr-2", attempt=2, queued_at="2025-03-14T09:00:05.1Z"),
        entry(
            "00:14.500000",
            "transcode.completed",
            "transcode",
            "tr-2",
            attempt=2,
            job_status="READY",
            outputs={"renditions": ["360p", "240p"]},
        ),
        entry("00:14.700000", "job.ready", "status", "st-9", status="READY"),
        entry("00:15.000000", "webhook.attempt", "webhook", "wh-1", attempt=1, status_code=200, outcome="delivered"),
    ]


def test_GIVEN_a_retried_stage_WHEN_attempts_are_found_THEN_one_per_invocation_with_its_outcome() -> None:
    attempts = stage_attempts(retried_job())

    assert [(a.stage, a.number, a.outcome) for a in attempts] == [
        ("transcode", 1, "attempt_failed"),
        ("thumbnails", 1, "completed"),
        ("transcode", 2, "completed"),
    ]
    first, _, second = attempts
    assert round(first.queue_wait_s or 0, 3) == 0.4 and round(first.work_s or 0, 3) == 2.0
    # the second attempt's wait runs from the original send: it includes the first attempt and the backoff
    assert round(second.queue_wait_s or 0, 3) == 5.4 and round(second.work_s or 0, 3) == 4.0


def test_GIVEN_a_finished_job_WHEN_time_is_split_THEN_upload_queue_work_total_and_webhook_are_there() -> None:
    spent = dict(time_spent(retried_job()))

    assert spent["upload (created → S3 has the file)"] == 5.0
    assert round(spent["transcode attempt 2: work (completed)"], 3) == 4.0
    assert round(spent["thumbnails attempt 1: queued until started"], 3) == 0.5
    assert round(spent["total: created → ready"], 3) == 14.7
    assert round(spent["webhook: job finished → first delivery attempt"], 3) == 0.3


def test_GIVEN_a_timeline_WHEN_printed_THEN_every_entry_in_order_with_steps_and_the_split() -> None:
    text = format_trace({"job_id": "j1", "status": "READY", "events": retried_job()})
    lines = text.splitlines()

    assert lines[0] == "job j1  READY  (10 events)"
    whats = [line.split()[2] for line in lines[2:12]]
    assert whats == [e["what"] for e in retried_job()]
    assert "retry in 3 s" in lines[6] and "FFMPEG_ERROR: killed" in lines[6]
    assert "queued 0.40 s before it" in lines[4]
    assert lines[12] == "where the time went:"
    assert any("transcode attempt 1: work (attempt failed)" in line and "2.000 s" in line for line in lines[13:])


def test_GIVEN_a_duplicate_WHEN_printed_THEN_its_entry_says_how_often_it_came() -> None:
    events = retried_job()[:2]
    events[1]["deliveries"] = 3

    assert "delivered 3×" in format_trace({"job_id": "j1", "status": "UPLOADED", "events": events})


def test_GIVEN_no_events_WHEN_printed_THEN_it_says_so() -> None:
    assert format_trace({"job_id": "j1", "status": "AWAITING_UPLOAD", "events": []}).endswith("no events recorded")
