"""Large uploads on the local stack: multipart through the CLI, interrupted and
resumed; cancel; expiry of abandoned uploads; part URLs bound to their own job."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config

from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.stack

BIG_FILE_BYTES = 256 * 1024**2


def aws(stack: Any, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=stack.aws_endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3}),
    )


def uploads_bucket(stack: Any) -> str:
    names = [b["Name"] for b in aws(stack, "s3").list_buckets()["Buckets"]]
    [bucket] = [name for name in names if "uploadsbucket" in name]
    return bucket


def sha256_of_object(stack: Any, key: str) -> str:
    body = aws(stack, "s3").get_object(Bucket=uploads_bucket(stack), Key=key)["Body"]
    digest = hashlib.sha256()
    for chunk in iter(lambda: body.read(8 * 1024 * 1024), b""):
        digest.update(chunk)
    return digest.hexdigest()


def start_multipart(stack: Any, size: int = 300 * 1024 * 1024) -> dict[str, Any]:
    response = stack.http.post(
        f"{stack.api_url}/uploads", timeout=30, json={"filename": "big.mp4", "content_type": "video/mp4", "size": size}
    )
    assert response.status_code == 201, response.text
    assert response.json()["upload"]["method"] == "MULTIPART"
    return response.json()


@pytest.fixture
def big_file(tmp_path: Path) -> tuple[Path, str]:
    """GIVEN a 256 MiB file made on the fly (random bytes: nothing compresses or dedupes
    it): 32 parts of 8 MiB, enough to interrupt part-way. (`make bench` sends 1 GiB.)"""
    path = tmp_path / "camera-original.mp4"
    digest = hashlib.sha256()
    with path.open("wb") as handle:
        for _ in range(BIG_FILE_BYTES // (16 * 1024 * 1024)):
            chunk = os.urandom(16 * 1024 * 1024)
            digest.update(chunk)
            handle.write(chunk)
    return path, digest.hexdigest()


def test_cli_multipart_upload_interrupted_then_resumed_stores_identical_bytes(local_stack, big_file) -> None:
    path, expected_sha256 = big_file
    journal = Path(local_stack.environment["VIDPIPE_DATA_DIR"]) / "uploads-in-progress"
    # WHEN the CLI starts uploading and is killed after a few parts
    process = subprocess.Popen(
        [sys.executable, "-m", "vidpipe_cli.main", "submit", str(path), "--json", "--concurrency", "4"],
        cwd=PROJECT_ROOT,
        env=local_stack.environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    job_id, parts_before = None, []
    while time.monotonic() < deadline and process.poll() is None:
        entries = list(journal.glob("*.json")) if journal.exists() else []
        if entries:
            job_id = json.loads(entries[0].read_text())["job_id"]
            answer = local_stack.http.get(f"{local_stack.api_url}/uploads/{job_id}/parts", timeout=30).json()
            parts_before = answer.get("parts", [])
            if len(parts_before) >= 3:
                break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert job_id is not None, "the CLI never wrote its journal"
    plan = local_stack.http.get(f"{local_stack.api_url}/uploads/{job_id}/parts", timeout=30).json()
    assert 3 <= len(plan["parts"]) < plan["part_count"], "the upload was not interrupted part-way"

    # AND the same command runs again
    resumed = local_stack.vidpipe("submit", str(path), "--json", timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    [job] = json.loads(resumed.stdout)

    # THEN it finished the same job, and S3 holds exactly the file's bytes
    assert job["job_id"] == job_id
    assert not list(journal.glob("*.json")), "the journal entry outlived the upload"
    assert sha256_of_object(local_stack, f"uploads/{job_id}/source") == expected_sha256
    # AND the job moves on as after a single upload (random bytes: it ends FAILED, not a video)
    final = local_stack.http.get(f"{local_stack.api_url}/jobs/{job_id}", timeout=30).json()
    deadline = time.monotonic() + 300
    while final["status"] not in ("READY", "FAILED") and time.monotonic() < deadline:
        time.sleep(2)
        final = local_stack.http.get(f"{local_stack.api_url}/jobs/{job_id}", timeout=30).json()
    assert final["status"] == "FAILED" and final["error"]["code"] == "NOT_A_VIDEO", final
    assert final["source"]["size"] == BIG_FILE_BYTES


def test_cancel_aborts_the_multipart_upload_and_fails_the_job(local_stack) -> None:
    created = start_multipart(local_stack)
    job_id, upload = created["job_id"], created["upload"]
    part = requests.put(upload["parts"][0]["url"], data=os.urandom(upload["part_size"]), timeout=60)
    assert part.status_code == 200
    # WHEN the upload is cancelled
    cancelled = local_stack.http.delete(f"{local_stack.api_url}/uploads/{job_id}", timeout=30)
    # THEN the job is FAILED with UPLOAD_CANCELLED, S3 holds no upload, and the upload takes no more calls
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "FAILED"
    job = local_stack.http.get(f"{local_stack.api_url}/jobs/{job_id}", timeout=30).json()
    assert job["status"] == "FAILED" and job["error"]["code"] == "UPLOAD_CANCELLED"
    pending = aws(local_stack, "s3").list_multipart_uploads(Bucket=uploads_bucket(local_stack)).get("Uploads", [])
    assert upload["upload_id"] not in {u["UploadId"] for u in pending}
    again = local_stack.http.get(f"{local_stack.api_url}/uploads/{job_id}/parts", timeout=30)
    assert again.status_code == 409 and again.json()["error"]["code"] == "UPLOAD_NOT_OPEN"


def test_completing_with_a_wrong_etag_is_refused(local_stack) -> None:
    size = 101 * 1024 * 1024  # just above the multipart threshold
    created = start_multipart(local_stack, size=size)
    job_id, upload = created["job_id"], created["upload"]
    data = os.urandom(size)
    parts = []
    for part in upload["parts"]:
        start = (part["part_number"] - 1) * upload["part_size"]
        answer = requests.put(part["url"], data=data[start : start + upload["part_size"]], timeout=60)
        parts.append({"part_number": part["part_number"], "etag": answer.headers["ETag"]})
    tampered = [{**parts[0], "etag": '"0123456789abcdef0123456789abcdef"'}, *parts[1:]]
    complete_url = f"{local_stack.api_url}/uploads/{job_id}/complete"
    refused = local_stack.http.post(complete_url, json={"parts": tampered}, timeout=30)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "UPLOAD_INCOMPLETE"
    accepted = local_stack.http.post(complete_url, json={"parts": parts}, timeout=30)
    assert accepted.status_code == 200


def test_a_part_url_cannot_write_another_jobs_upload(local_stack) -> None:
    first, second = start_multipart(local_stack), start_multipart(local_stack)
    url = first["upload"]["parts"][0]["url"]
    # WHEN job A's part URL is pointed at job B's upload (or B's key)
    forged_upload = url.replace(first["upload"]["upload_id"], second["upload"]["upload_id"])
    forged_key = url.replace(first["job_id"], second["job_id"])
    body = os.urandom(5 * 1024 * 1024)
    # THEN S3 refuses both: the key and the upload id are part of the signature
    assert requests.put(forged_upload, data=body, timeout=60).status_code == 403
    assert requests.put(forged_key, data=body, timeout=60).status_code == 403
    # AND asking the API for part URLs of a job signs that job's own upload only
    fresh = local_stack.http.post(
        f"{local_stack.api_url}/uploads/{second['job_id']}/parts", json={"part_numbers": [1]}, timeout=30
    ).json()
    assert second["upload"]["upload_id"] in fresh["parts"][0]["url"]
    assert first["upload"]["upload_id"] not in fresh["parts"][0]["url"]


def test_an_abandoned_upload_is_expired_by_the_scheduled_sweep(local_stack) -> None:
    created = start_multipart(local_stack)
    job_id = created["job_id"]
    stack = aws(local_stack, "cloudformation")
    function = stack.describe_stack_resource(StackName="vidpipe", LogicalResourceId="SweepFunction")
    name = function["StackResourceDetail"]["PhysicalResourceId"]
    # WHEN the sweep runs as its schedule would, a day and a minute later
    # (a Scheduled Event carries the time it fired; the sweep expires by it)
    fired = (datetime.now(UTC) + timedelta(days=1, minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    event = {
        "version": "0",
        "id": "test",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": fired,
        "region": "us-east-1",
        "resources": [],
        "detail": {},
    }
    answer = aws(local_stack, "lambda").invoke(FunctionName=name, Payload=json.dumps(event).encode())
    result = json.loads(answer["Payload"].read())
    # THEN the job is EXPIRED with a reason, and its multipart upload is gone
    assert job_id in result["expired"], result
    job = local_stack.http.get(f"{local_stack.api_url}/jobs/{job_id}", timeout=30).json()
    assert job["status"] == "EXPIRED" and job["error"]["code"] == "UPLOAD_EXPIRED"
    pending = aws(local_stack, "s3").list_multipart_uploads(Bucket=uploads_bucket(local_stack)).get("Uploads", [])
    assert created["upload"]["upload_id"] not in {u["UploadId"] for u in pending}


def test_the_uploads_bucket_aborts_incomplete_multipart_uploads_by_lifecycle(local_stack) -> None:
    rules = aws(local_stack, "s3").get_bucket_lifecycle_configuration(Bucket=uploads_bucket(local_stack))["Rules"]
    assert any(rule.get("AbortIncompleteMultipartUpload") and rule["Status"] == "Enabled" for rule in rules)
