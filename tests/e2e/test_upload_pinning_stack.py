"""An upload is accepted once, proven on the local stack (ministack, AUTH=true).

The presigned POST stays valid for its whole lifetime: re-sending it must do
nothing visible. The job pins the write of its key it accepted, the stages read
only that version, and a cancelled or finished job never runs a stage."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.test_at_least_once import client, outputs, wait_until_drained

pytestmark = [pytest.mark.stack, pytest.mark.ffmpeg]

SAMPLE = Path(__file__).resolve().parents[2] / "sample_media" / "tiny_160x90.mp4"


def create_upload(local_stack: Any) -> dict[str, Any]:
    body = {"filename": SAMPLE.name, "content_type": "video/mp4", "size": SAMPLE.stat().st_size}
    created = local_stack.http.post(f"{local_stack.api_url}/uploads", json=body, timeout=30)
    assert created.status_code == 201, created.text
    return dict(created.json())


def post_form(upload: dict[str, Any], data: bytes) -> requests.Response:
    """What a browser does with the presigned POST (again and again, if it likes)."""
    form = upload["upload"]
    return requests.post(form["url"], data=form["fields"], files={"file": ("clip.mp4", data, "video/mp4")}, timeout=60)


def job_of(local_stack: Any, job_id: str) -> dict[str, Any]:
    return dict(local_stack.http.get(f"{local_stack.api_url}/jobs/{job_id}", timeout=30).json())


def wait_for_final(local_stack: Any, job_id: str, timeout_s: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = job_of(local_stack, job_id)
        if job["status"] in ("READY", "FAILED", "EXPIRED"):
            return job
        time.sleep(2)
    raise AssertionError(f"job {job_id} not final after {timeout_s} s: {job_of(local_stack, job_id)}")


def output_objects(local_stack: Any, job_id: str) -> dict[str, tuple[str, str]]:
    """Every output of the job: key → (ETag, LastModified); a stage run rewrites them."""
    s3, bucket = client(local_stack, "s3"), outputs(local_stack)["OutputsBucketName"]
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"jobs/{job_id}/").get("Contents", [])
    return {o["Key"]: (o["ETag"], o["LastModified"].isoformat()) for o in listed}


def stage_queues(local_stack: Any) -> list[str]:
    found = outputs(local_stack)
    return [found["TranscodeQueueUrl"], found["ThumbnailsQueueUrl"], found["StatusQueueUrl"]]


def test_an_upload_sent_again_after_ready_runs_no_stage_and_changes_no_output(local_stack) -> None:
    # GIVEN a job READY from its upload
    upload = create_upload(local_stack)
    job_id = upload["job_id"]
    original = SAMPLE.read_bytes()
    assert post_form(upload, original).status_code in (200, 201, 204)
    ready = wait_for_final(local_stack, job_id)
    assert ready["status"] == "READY", ready
    before = output_objects(local_stack, job_id)
    assert before

    # WHEN the same presigned POST is sent again with other bytes (same size: the policy pins it)
    swapped = original[:-64] + bytes(64)
    assert post_form(upload, swapped).status_code in (200, 201, 204)
    time.sleep(5)  # let S3's event reach the queues
    wait_until_drained(client(local_stack, "sqs"), stage_queues(local_stack))

    # THEN no stage ran (every output is the same object, not rewritten) and the job is unchanged
    assert output_objects(local_stack, job_id) == before
    after = job_of(local_stack, job_id)
    assert after["status"] == "READY" and after["updated_at"] == ready["updated_at"]
    assert after["source"] == ready["source"]


def test_an_upload_after_cancel_runs_nothing(local_stack) -> None:
    # GIVEN a job cancelled before its upload
    upload = create_upload(local_stack)
    job_id = upload["job_id"]
    cancelled = local_stack.http.delete(f"{local_stack.api_url}/uploads/{job_id}", timeout=30)
    assert cancelled.status_code < 300, cancelled.text

    # WHEN its presigned POST is used anyway
    assert post_form(upload, SAMPLE.read_bytes()).status_code in (200, 201, 204)
    time.sleep(5)
    wait_until_drained(client(local_stack, "sqs"), stage_queues(local_stack))

    # THEN nothing ran: no outputs, both stages still pending, the job as cancelled
    job = job_of(local_stack, job_id)
    assert job["status"] == "FAILED" and job["error"]["code"] == "UPLOAD_CANCELLED", job
    assert {stage["status"] for stage in job["stages"].values()} == {"PENDING"}, json.dumps(job["stages"])
    assert output_objects(local_stack, job_id) == {}
