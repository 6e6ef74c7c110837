"""Issue 15 items 1 and 3 on the local stack: a title and passthrough, renaming,
and deleting a job (a READY one, and one still being transcoded in chunks),
through the API and `vidpipe delete`."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

pytestmark = pytest.mark.stack

SAMPLES = Path(__file__).resolve().parents[2] / "sample_media"


def upload(stack: Any, sample: Path, **extra: str) -> str:
    """POST /uploads (with ``extra`` fields), then the presigned POST, as a browser does."""
    http = stack.http
    body = {"filename": sample.name, "content_type": "video/mp4", "size": sample.stat().st_size, **extra}
    created = http.post(f"{stack.api_url}/uploads", json=body, timeout=30)
    assert created.status_code == 201, created.text
    plan = created.json()["upload"]
    with sample.open("rb") as handle:
        sent = requests.post(plan["url"], data=plan["fields"], files={"file": handle}, timeout=60)
    assert sent.status_code in (200, 201, 204), sent.text
    return str(created.json()["job_id"])


def wait_for(stack: Any, job_id: str, statuses: set[str], timeout_s: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = stack.http.get(f"{stack.api_url}/jobs/{job_id}", timeout=30).json()
        if job.get("status") in statuses:
            return dict(job)
        time.sleep(1)
    pytest.fail(f"job {job_id} never reached {statuses}")


def leftovers(stack: Any, job_id: str) -> list[str]:
    """Every object version of the job in both buckets."""
    s3 = boto3.client(
        "s3",
        endpoint_url=stack.aws_endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    found = []
    for bucket in (b["Name"] for b in s3.list_buckets()["Buckets"]):
        for prefix in (f"uploads/{job_id}/", f"chunks/{job_id}/", f"jobs/{job_id}/"):
            answer = s3.list_object_versions(Bucket=bucket, Prefix=prefix)
            found += [f"{bucket}/{v['Key']}" for v in answer.get("Versions", []) + answer.get("DeleteMarkers", [])]
    return found


def test_a_titled_job_is_renamed_then_deleted_and_its_urls_stop_working(local_stack) -> None:
    # GIVEN a READY job uploaded with a title and a passthrough
    job_id = upload(local_stack, SAMPLES / "tiny_160x90.mp4", title="Tiny clip", passthrough="order-4711")
    job = wait_for(local_stack, job_id, {"READY"})
    assert (job["title"], job["passthrough"]) == ("Tiny clip", "order-4711")

    # WHEN renamed THEN 200 with the job; a bad title is a 400 with the reason
    renamed = local_stack.http.patch(f"{local_stack.api_url}/jobs/{job_id}", json={"title": "Tiny, renamed"})
    assert renamed.status_code == 200 and renamed.json()["title"] == "Tiny, renamed"
    bad = local_stack.http.patch(f"{local_stack.api_url}/jobs/{job_id}", json={"title": "x" * 201})
    assert bad.status_code in (400, 422) and "title" in bad.text

    # WHEN deleted with the CLI
    poster, playlist = job["outputs"]["poster_url"], job["outputs"]["hls_url"]
    assert requests.get(poster, timeout=30).status_code == 200
    deleted = local_stack.vidpipe("delete", job_id, "--json", timeout=120)

    # THEN it is gone everywhere, and the URLs handed out before stop working
    assert deleted.returncode == 0, deleted.stdout + deleted.stderr
    assert json.loads(deleted.stdout)["results"] == [{"job_id": job_id, "deleted": True}]
    assert local_stack.http.get(f"{local_stack.api_url}/jobs/{job_id}", timeout=30).status_code == 404
    listed = local_stack.http.get(f"{local_stack.api_url}/jobs?limit=100", timeout=30).json()["jobs"]
    assert job_id not in {j["job_id"] for j in listed}
    assert requests.get(poster, timeout=30).status_code in (403, 404)
    assert requests.get(playlist, timeout=30).status_code == 404
    assert leftovers(local_stack, job_id) == []
    # and a second delete is a 404
    again = local_stack.http.delete(f"{local_stack.api_url}/jobs/{job_id}", timeout=30)
    assert again.status_code == 404 and again.json()["error"]["code"] == "JOB_NOT_FOUND"


def test_a_job_deleted_while_its_chunks_encode_leaves_nothing_behind(local_stack) -> None:
    # GIVEN the 20 s sample, transcoded in chunks, under way
    job_id = upload(local_stack, SAMPLES / "long_20s_640x360.mp4")
    wait_for(local_stack, job_id, {"PROCESSING"}, timeout_s=120)

    # WHEN deleted while its stages work
    answer = local_stack.http.delete(f"{local_stack.api_url}/jobs/{job_id}", timeout=60)
    assert answer.status_code == 204, answer.text

    # THEN whatever the stages were writing is removed by them (or was never written):
    # nothing of the job is left once they have had time to finish
    # (a chunk of this sample encodes in a few seconds: nothing empty for 10 s comes back)
    deadline, left, empty_since = time.monotonic() + 120, ["?"], None
    while time.monotonic() < deadline:
        time.sleep(2)
        left = leftovers(local_stack, job_id)
        if left:
            empty_since = None
        elif empty_since is None:
            empty_since = time.monotonic()
        elif time.monotonic() - empty_since >= 10:
            break
    assert left == []
    assert local_stack.http.get(f"{local_stack.api_url}/jobs/{job_id}", timeout=30).status_code == 404
