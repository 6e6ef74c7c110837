"""POST /uploads, the multipart calls, and the per-owner limits an upload is admitted under."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest

from tests.adapters.api.api_requests import (
    MULTIPART_THRESHOLD,
    UPLOADS_BUCKET,
    Aws,
    MiB,
    call,
    call_json,
    http_event,
    post_upload,
)
from vidpipe.runtime import settings

# ------------------------------------------------------------------ POST /uploads


def test_GIVEN_the_recorded_post_uploads_event_WHEN_handled_THEN_201_with_a_presigned_post_for_the_upload_key(
    aws: Aws,
) -> None:
    status, body = call_json(http_event("POST", "/uploads"))

    assert status == 201
    job_id = body["job_id"]
    upload = body["upload"]
    assert upload["method"] == "POST"
    assert UPLOADS_BUCKET in upload["url"]
    fields = upload["fields"]
    assert fields["key"] == f"uploads/{job_id}/source"
    assert fields["Content-Type"] == "video/mp4"
    assert fields["x-amz-algorithm"] == "AWS4-HMAC-SHA256"
    assert upload["expires_at"].endswith("Z")
    policy = json.loads(base64.b64decode(fields["policy"]))
    assert {"key": f"uploads/{job_id}/source"} in policy["conditions"]
    assert {"Content-Type": "video/mp4"} in policy["conditions"]
    assert ["content-length-range", 7_340_032, 7_340_032] in policy["conditions"]
    # The recorded event came through the authorizer as alice: the job is hers.
    assert aws.jobs.get(job_id).owner == "alice"


@pytest.mark.parametrize("user", ["alice", "bob", "user@example.com"])
def test_GIVEN_a_caller_WHEN_an_upload_is_created_THEN_the_job_is_owned_by_the_caller(aws: Aws, user: str) -> None:
    status, created = post_upload(user=user)

    assert status == 201
    assert aws.jobs.get(created["job_id"]).owner == user
    assert [job.job_id for job in aws.jobs.list_recent(user)[0]] == [created["job_id"]]


def test_GIVEN_a_created_upload_WHEN_its_job_is_read_THEN_it_is_awaiting_upload_with_the_source(aws: Aws) -> None:
    _, created = post_upload(filename="Ferien am Meer.mov", content_type="video/quicktime", size=1234)

    status, job = call_json(http_event("GET", f"/jobs/{created['job_id']}"))

    assert status == 200
    assert job["job_id"] == created["job_id"]
    assert job["status"] == "AWAITING_UPLOAD"
    assert job["source"] == {"filename": "Ferien am Meer.mov", "content_type": "video/quicktime", "size": 1234}
    assert job["stages"]["transcode"] == {"status": "PENDING", "progress": 0}
    assert job["outputs"] == {}
    assert job["error"] is None


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"content_type": "video/mp4", "size": 10}, "filename"),
        ({"filename": "a.mp4", "content_type": "video/mp4", "size": 0}, "size"),
        ({"filename": "a.mp4", "content_type": "video/mp4", "size": "lots"}, "size"),
        ({"filename": "", "content_type": "video/mp4", "size": 10}, "filename"),
        ({"filename": "   ", "content_type": "video/mp4", "size": 10}, "filename"),
        ({"filename": "a\x00.mp4", "content_type": "video/mp4", "size": 10}, "control"),
        ({"filename": "a" * 256, "content_type": "video/mp4", "size": 10}, "filename"),
        ({"filename": "../../etc/passwd.mp4", "content_type": "video/mp4", "size": 10}, "not a path"),
        ("this is not json", ""),
    ],
)
def test_GIVEN_an_invalid_upload_body_WHEN_posted_THEN_400_validation_failed_with_a_reason(
    aws: Aws, body: Any, reason: str
) -> None:
    status, response = call_json(http_event("POST", "/uploads", body=body))

    assert status == 400
    assert response["error"]["code"] == "VALIDATION_FAILED"
    assert response["error"]["message"]
    assert reason in response["error"]["message"]
    assert aws.job_count() == 0


def test_GIVEN_a_text_file_WHEN_posted_THEN_415_and_no_job(aws: Aws) -> None:
    status, response = post_upload(filename="notes.txt", content_type="text/plain")

    assert status == 415
    assert response["error"]["code"] == "UNSUPPORTED_MEDIA_TYPE"
    assert "text/plain" in response["error"]["message"]
    assert aws.job_count() == 0


def test_GIVEN_a_file_over_the_limit_WHEN_posted_THEN_413_and_no_job(aws: Aws) -> None:
    status, response = post_upload(size=100 * 1024 * 1024 + 1)

    assert status == 413
    assert response["error"]["code"] == "UPLOAD_TOO_LARGE"
    assert aws.job_count() == 0


# ------------------------------------------------------------------ per-owner limits


def use_limits(monkeypatch: pytest.MonkeyPatch, **variables: str) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    settings.get_settings.cache_clear()


def test_GIVEN_an_owner_at_the_active_jobs_limit_WHEN_posting_THEN_429_with_retry_after_and_a_reason(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_limits(monkeypatch, MAX_ACTIVE_JOBS_PER_OWNER="2")
    assert post_upload()[0] == 201
    assert post_upload()[0] == 201

    status, headers, body = call(
        http_event(
            "POST", "/uploads", user="alice", body={"filename": "third.mp4", "content_type": "video/mp4", "size": 1_000}
        )
    )

    assert status == 429
    assert headers["retry-after"] == "30"
    error = json.loads(body)["error"]
    assert error["code"] == "QUOTA_EXCEEDED"
    assert error["limit"] == "active_jobs"
    assert "2 jobs in progress" in error["message"]
    assert aws.job_count() == 2
    # Another owner is not held back by alice's jobs.
    assert post_upload(user="bob")[0] == 201


def test_GIVEN_an_owner_at_the_limit_WHEN_a_large_file_is_posted_THEN_429_and_no_multipart_upload_left_open(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_limits(monkeypatch, MAX_ACTIVE_JOBS_PER_OWNER="1")
    status, created = post_upload(size=MULTIPART_THRESHOLD + 1)
    assert status == 201
    assert created["upload"]["method"] == "MULTIPART"

    assert post_upload(size=MULTIPART_THRESHOLD + 1)[0] == 429

    # Only the admitted job's multipart upload is open: the refused one was aborted.
    open_uploads = aws.s3.list_multipart_uploads(Bucket=UPLOADS_BUCKET).get("Uploads", [])
    assert [upload["UploadId"] for upload in open_uploads] == [created["upload"]["upload_id"]]
    assert aws.job_count() == 1


def test_GIVEN_an_owner_at_the_limit_WHEN_an_upload_is_cancelled_THEN_its_slot_is_free_again(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_limits(monkeypatch, MAX_ACTIVE_JOBS_PER_OWNER="1")
    status, created = post_upload()
    assert status == 201
    assert post_upload()[0] == 429

    assert call_json(http_event("DELETE", f"/uploads/{created['job_id']}"))[0] == 200

    assert post_upload()[0] == 201


def test_GIVEN_the_days_bytes_nearly_used_WHEN_posting_more_THEN_429_retry_after_the_days_end(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_limits(monkeypatch, MAX_UPLOAD_BYTES_PER_OWNER_PER_DAY=str(10 * MiB))
    assert post_upload(size=6 * MiB)[0] == 201

    before = time.time()
    status, headers, body = call(
        http_event(
            "POST",
            "/uploads",
            user="alice",
            body={"filename": "more.mp4", "content_type": "video/mp4", "size": 5 * MiB},
        )
    )

    assert status == 429
    error = json.loads(body)["error"]
    assert error["limit"] == "upload_bytes_per_day"
    # Honest: the seconds left until 00:00 UTC, when the day's bytes reset.
    seconds_to_midnight = 86400 - int(before) % 86400
    assert abs(int(headers["retry-after"]) - seconds_to_midnight) <= 2
    assert error["retry_after_s"] == int(headers["retry-after"])
    assert post_upload(size=4 * MiB)[0] == 201  # what is left still fits
