"""A job's timeline on the local stack: complete and in order after a normal run,
after a retried failure, and after duplicate deliveries; `vidpipe trace` prints it."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_at_least_once import client, deliver_ready_run_three_times_shuffled, outputs, wait_until_drained
from tests.e2e.test_faults import FfmpegKiller, upload, wait_final

pytestmark = [pytest.mark.stack, pytest.mark.ffmpeg]

SAMPLE = Path(__file__).resolve().parents[2] / "sample_media" / "tiny_160x90.mp4"


def timeline(local_stack: Any, job_id: str) -> list[dict[str, Any]]:
    """The job's timeline once every delivery is in: a job can be READY while a
    late copy of an earlier event (a Started behind a cold status worker) still waits."""
    wait_until_drained(client(local_stack, "sqs"), [outputs(local_stack)["StatusQueueUrl"]])
    response = local_stack.http.get(f"{local_stack.api_url}/jobs/{job_id}/events", timeout=30)
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["events"]
    return events


def assert_in_time_order(events: list[dict[str, Any]]) -> None:
    assert [e["at"] for e in events] == sorted(e["at"] for e in events)


def whats(events: list[dict[str, Any]]) -> list[str]:
    return [e["what"] for e in events if e["what"] != "transcode.progress" and e["what"] != "thumbnails.progress"]


def test_GIVEN_a_normal_run_WHEN_its_timeline_is_read_THEN_every_step_once_in_order_with_its_function(
    local_stack: Any,
) -> None:
    # GIVEN a job that went READY
    result = local_stack.vidpipe("submit", str(SAMPLE), "--wait", "--json", timeout=600)
    [job] = json.loads(result.stdout)
    assert job["status"] == "READY", job

    # WHEN its timeline is read
    events = timeline(local_stack, job["job_id"])

    # THEN it holds each step once, in time order, each naming the function and invocation that did it
    assert_in_time_order(events)
    steps = whats(events)
    assert steps[:2] == ["job.created", "job.uploaded"]
    assert steps[-1] == "job.ready"
    for stage in ("transcode", "thumbnails"):
        assert steps.count(f"{stage}.started") == 1 and steps.count(f"{stage}.completed") == 1
        assert steps.index(f"{stage}.started") < steps.index(f"{stage}.completed")
    by_what = {e["what"]: e for e in events}
    assert by_what["job.created"]["function"] == "upload-api"
    assert by_what["job.ready"]["function"] == "status"
    started = by_what["transcode.started"]
    assert started["function"] == "transcode" and len(started["request_id"]) >= 8
    assert started["details"]["attempt"] == 1 and started["details"]["queued_at"] <= started["at"]
    assert by_what["transcode.completed"]["request_id"] == started["request_id"]
    assert by_what["job.uploaded"]["details"]["job_status"] == "UPLOADED"
    assert all(e["deliveries"] == 1 for e in events)

    # AND `vidpipe trace` tells where the time went
    traced = local_stack.vidpipe("trace", job["job_id"], timeout=60)
    assert traced.returncode == 0, traced.stderr
    assert "where the time went:" in traced.stdout
    assert "transcode attempt 1: queued until started" in traced.stdout
    assert "transcode attempt 1: work (completed)" in traced.stdout
    assert "total: created → ready" in traced.stdout

    # AND `vidpipe logs` shows the job's lines from every function, merged in time order
    wanted = {"upload-api", "status", "transcode", "thumbnails"}
    deadline = time.monotonic() + 60
    while True:
        logged = local_stack.vidpipe("logs", job["job_id"], timeout=60)
        lines = logged.stdout.splitlines()
        if wanted <= {line.split()[1] for line in lines} or time.monotonic() > deadline:
            break
        time.sleep(2)  # a function's lines reach CloudWatch Logs when its invocation ends
    assert wanted <= {line.split()[1] for line in lines}, logged.stdout + logged.stderr
    assert [line.split()[0] for line in lines] == sorted(line.split()[0] for line in lines)
    assert any("stage started" in line and "transcode" in line for line in lines)


def test_GIVEN_a_transcode_killed_once_WHEN_its_timeline_is_read_THEN_the_failed_attempt_and_the_retry_are_there(
    local_stack: Any,
) -> None:
    # GIVEN a job whose first transcode attempt is killed
    job_id = upload(local_stack)
    killer = FfmpegKiller(job_id, times=1)
    killer.start()
    job = wait_final(local_stack, job_id)
    killer.stop.set()
    assert killer.killed == 1 and job["status"] == "READY", job

    # WHEN its timeline is read
    events = timeline(local_stack, job_id)

    # THEN attempt 1 started and failed (with the retry delay), attempt 2 started and completed, then READY
    assert_in_time_order(events)
    transcode = [
        (e["what"], e["details"].get("attempt"))
        for e in events
        if e["what"].startswith("transcode.") and e["what"] != "transcode.progress"
    ]
    assert transcode == [
        ("transcode.started", 1),
        ("transcode.attempt_failed", 1),
        ("transcode.started", 2),
        ("transcode.completed", 2),
    ], transcode
    failed = next(e for e in events if e["what"] == "transcode.attempt_failed")
    assert failed["details"]["retry_in_s"] == 3 and failed["details"]["error"]["code"] == "FFMPEG_ERROR"
    assert whats(events)[-1] == "job.ready"

    traced = local_stack.vidpipe("trace", job_id, timeout=60)
    assert "transcode attempt 1: work (attempt failed)" in traced.stdout, traced.stdout
    assert "transcode attempt 2: queued until started" in traced.stdout


def test_GIVEN_stage_events_delivered_three_times_WHEN_the_timeline_is_read_THEN_one_entry_each_counted_thrice(
    local_stack: Any,
) -> None:
    # GIVEN a job whose stage events we deliver ourselves, each three times, shuffled
    created = local_stack.http.post(
        f"{local_stack.api_url}/uploads",
        timeout=30,
        json={"filename": "x.mp4", "content_type": "video/mp4", "size": 1000},
    ).json()
    job_id = created["job_id"]

    # WHEN each of a successful run's stage events is delivered three times, shuffled
    deliver_ready_run_three_times_shuffled(
        local_stack, job_id, seed=11, trace={"function": "test", "request_id": "req-0", "attempt": 1}
    )

    # THEN the timeline has the creation, one entry per event (delivered 3 times) and one READY, in order
    events = timeline(local_stack, job_id)
    assert_in_time_order(events)
    assert [e["what"] for e in events] == [
        "job.created",
        "transcode.started",
        "transcode.progress",
        "transcode.completed",
        "thumbnails.started",
        "thumbnails.completed",
        "job.ready",
    ]
    assert [e["deliveries"] for e in events[1:6]] == [3, 3, 3, 3, 3]
    assert events[6]["deliveries"] == 1
