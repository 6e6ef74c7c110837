"""Issue 15 through the API handler against moto: a title and passthrough on
POST /uploads, PATCH /jobs/{id} renaming, DELETE /jobs/{id} removing the
upload (every version), the work files, the outputs and the record."""

from __future__ import annotations

import pytest

from tests.adapters.api.api_requests import (
    EVENTS_TABLE,
    JOB_ID,
    MULTIPART_THRESHOLD,
    OUTPUTS_BUCKET,
    UPLOADS_BUCKET,
    Aws,
    call,
    call_json,
    granted,
    http_event,
    post_upload,
    transcoded_job,
)
from vidpipe.adapters.timeline_store import DynamoTimeline
from vidpipe.domain.jobs import JobStatus
from vidpipe.domain.timeline import TimelineEntry


def _keys(aws: Aws, bucket: str, prefix: str) -> list[str]:
    answer = aws.s3.list_object_versions(Bucket=bucket, Prefix=prefix)
    return [item["Key"] for item in answer.get("Versions", []) + answer.get("DeleteMarkers", [])]


# ------------------------------------------------------------------ title and passthrough


def test_GIVEN_an_upload_with_title_and_passthrough_WHEN_the_job_is_read_THEN_both_come_back(aws: Aws) -> None:
    status, created = post_upload(title="  Holiday in Crete ", passthrough=" order-4711 ")

    _, job = call_json(http_event("GET", f"/jobs/{created['job_id']}"))

    assert status == 201
    # The title is trimmed; the passthrough is opaque and comes back byte for byte.
    assert (job["title"], job["passthrough"]) == ("Holiday in Crete", " order-4711 ")


def test_GIVEN_an_upload_without_them_WHEN_the_job_is_read_THEN_both_are_null(aws: Aws) -> None:
    _, created = post_upload()

    _, job = call_json(http_event("GET", f"/jobs/{created['job_id']}"))

    assert job["title"] is None and job["passthrough"] is None


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"title": "x" * 201}, "title"),
        ({"title": "   "}, "blank"),
        ({"title": "two\nlines"}, "control characters"),
        ({"title": 12}, "title"),
        ({"passthrough": "p" * 256}, "passthrough"),
    ],
)
def test_GIVEN_a_bad_title_or_passthrough_WHEN_uploaded_THEN_400_with_the_reason_and_no_job(
    aws: Aws, overrides: dict[str, object], reason: str
) -> None:
    status, body = post_upload(**overrides)

    assert status in (400, 422), body
    assert reason in str(body)
    assert aws.job_count() == 0


def test_GIVEN_a_job_WHEN_renamed_THEN_200_with_the_job_and_the_title_stays(aws: Aws) -> None:
    _, created = post_upload(title="draft")
    path = f"/jobs/{created['job_id']}"

    status, job = call_json(http_event("PATCH", path, body={"title": "Final cut"}))
    _, again = call_json(http_event("GET", path))

    assert status == 200 and job["title"] == "Final cut" and job["job_id"] == created["job_id"]
    assert again["title"] == "Final cut"


@pytest.mark.parametrize("body", [{"title": ""}, {"title": "t" * 201}, {"title": "a\tb"}, {}, {"title": 3}])
def test_GIVEN_a_bad_rename_WHEN_patched_THEN_400_and_the_title_is_unchanged(aws: Aws, body: dict[str, object]) -> None:
    _, created = post_upload(title="draft")
    path = f"/jobs/{created['job_id']}"

    status, answer = call_json(http_event("PATCH", path, body=body))
    _, job = call_json(http_event("GET", path))

    assert status in (400, 422), answer
    assert job["title"] == "draft"


def test_GIVEN_someone_elses_job_WHEN_renamed_or_deleted_THEN_404_and_it_is_untouched(aws: Aws) -> None:
    _, created = post_upload(title="alice's")
    path = f"/jobs/{created['job_id']}"

    renamed, _ = call_json(http_event("PATCH", path, body={"title": "bob's now"}, user="bob"))
    deleted, _, _ = call(http_event("DELETE", path, user="bob"))

    assert (renamed, deleted) == (404, 404)
    assert aws.jobs.get(created["job_id"]).title == "alice's"


# ------------------------------------------------------------------ DELETE /jobs/{id}


def test_GIVEN_a_transcoded_job_WHEN_deleted_THEN_upload_versions_work_files_outputs_and_record_are_gone(
    aws: Aws,
) -> None:
    # GIVEN a job with its outputs, two versions of its upload (a re-sent POST), work files
    transcoded_job(aws)
    aws.s3.put_bucket_versioning(Bucket=UPLOADS_BUCKET, VersioningConfiguration={"Status": "Enabled"})
    for body in (b"first", b"second"):
        aws.s3.put_object(Bucket=UPLOADS_BUCKET, Key=f"uploads/{JOB_ID}/source", Body=body)
    aws.s3.put_object(Bucket=UPLOADS_BUCKET, Key=f"chunks/{JOB_ID}/plan.json", Body=b"{}")
    aws.s3.put_object(Bucket=OUTPUTS_BUCKET, Key="jobs/other-job/hls/master.m3u8", Body=b"#EXTM3U")
    grant = granted()

    # WHEN
    status, _, body = call(http_event("DELETE", f"/jobs/{JOB_ID}"))

    # THEN nothing of it is left, and another job's files are untouched
    assert (status, body) == (204, "")
    assert _keys(aws, UPLOADS_BUCKET, f"uploads/{JOB_ID}/") == []
    assert _keys(aws, UPLOADS_BUCKET, f"chunks/{JOB_ID}/") == []
    assert _keys(aws, OUTPUTS_BUCKET, f"jobs/{JOB_ID}/") == []
    assert _keys(aws, OUTPUTS_BUCKET, "jobs/other-job/") == ["jobs/other-job/hls/master.m3u8"]
    assert call_json(http_event("GET", f"/jobs/{JOB_ID}"))[0] == 404
    assert call_json(http_event("GET", "/jobs"))[1]["jobs"] == []
    # an output URL handed out before the delete is refused now
    assert call(http_event("GET", f"/jobs/{JOB_ID}/hls/master.m3u8", query=grant, user=None))[0] == 404
    # and the timeline keeps a tombstone
    entries = [entry.what for entry in _timeline(aws)]
    assert "job.deleted" in entries


def _timeline(aws: Aws) -> list[TimelineEntry]:
    return DynamoTimeline(aws.dynamodb, EVENTS_TABLE).entries(JOB_ID)


def test_GIVEN_a_deleted_job_WHEN_deleted_again_THEN_404(aws: Aws) -> None:
    transcoded_job(aws)

    first = call(http_event("DELETE", f"/jobs/{JOB_ID}"))[0]
    second, body = call_json(http_event("DELETE", f"/jobs/{JOB_ID}"))

    assert (first, second) == (204, 404)
    assert body["error"]["code"] == "JOB_NOT_FOUND"


def test_GIVEN_a_delete_that_stopped_half_way_WHEN_deleted_again_THEN_it_finishes(aws: Aws) -> None:
    # GIVEN a job left DELETING (the first DELETE timed out after marking it)
    job = transcoded_job(aws)
    job.status = JobStatus.DELETING
    aws.jobs.save(job, expected_version=job.version)

    # WHILE it is hidden
    assert call_json(http_event("GET", f"/jobs/{JOB_ID}"))[0] == 404
    assert call_json(http_event("GET", "/jobs"))[1]["jobs"] == []

    # WHEN deleted again THEN it finishes
    assert call(http_event("DELETE", f"/jobs/{JOB_ID}"))[0] == 204
    assert _keys(aws, OUTPUTS_BUCKET, f"jobs/{JOB_ID}/") == []
    assert aws.job_count() == 0


def test_GIVEN_a_job_awaiting_a_multipart_upload_WHEN_deleted_THEN_its_upload_is_aborted_and_its_slot_free(
    aws: Aws,
) -> None:
    status, created = post_upload(size=MULTIPART_THRESHOLD + 1)
    assert status == 201 and created["upload"]["method"] == "MULTIPART"

    assert call(http_event("DELETE", f"/jobs/{created['job_id']}"))[0] == 204

    assert aws.s3.list_multipart_uploads(Bucket=UPLOADS_BUCKET).get("Uploads", []) == []
    assert aws.job_count() == 0
