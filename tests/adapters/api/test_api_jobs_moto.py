"""GET /jobs, GET /jobs/{id} and a job's timeline; what an answer of ours says when a store fails."""

from __future__ import annotations

import json

import pytest

from tests.adapters.api.api_requests import (
    JOB_ID,
    OUTPUTS_BUCKET,
    TABLE,
    Aws,
    FakeLambdaContext,
    call,
    call_json,
    granted,
    http_event,
    new_job,
    post_upload,
    transcoded_job,
)

# ------------------------------------------------------------------ GET /jobs


def test_GIVEN_jobs_created_at_different_times_WHEN_listed_THEN_newest_first(aws: Aws) -> None:
    for n, minute in enumerate([10, 30, 20]):
        aws.jobs.create(new_job(f"job-{n}", now=f"2025-03-14T09:{minute}:00.000000Z"))

    status, body = call_json(http_event("GET", "/jobs"))

    assert status == 200
    assert [job["job_id"] for job in body["jobs"]] == ["job-1", "job-2", "job-0"]
    assert body["next_token"] is None


def test_GIVEN_jobs_of_two_users_WHEN_each_lists_THEN_each_sees_only_their_own(aws: Aws) -> None:
    # GIVEN bob's jobs interleaved in time with alice's
    for n, minute in enumerate([10, 15, 20, 25, 30]):
        aws.jobs.create(
            new_job(f"job-{n}", owner="bob" if n % 2 else "alice", now=f"2025-03-14T09:{minute}:00.000000Z")
        )

    # WHEN
    _, alices = call_json(http_event("GET", "/jobs"))
    _, bobs = call_json(http_event("GET", "/jobs", user="bob"))
    _, carols = call_json(http_event("GET", "/jobs", user="carol"))

    # THEN
    assert [job["job_id"] for job in alices["jobs"]] == ["job-4", "job-2", "job-0"]
    assert [job["job_id"] for job in bobs["jobs"]] == ["job-3", "job-1"]
    assert carols == {"jobs": [], "next_token": None}


def test_GIVEN_more_jobs_than_the_limit_WHEN_listed_THEN_pages_follow_with_next_token(aws: Aws) -> None:
    for n in range(3):
        aws.jobs.create(new_job(f"job-{n}", now=f"2025-03-14T09:0{n}:00.000000Z"))
        aws.jobs.create(new_job(f"bobs-{n}", owner="bob", now=f"2025-03-14T09:0{n}:30.000000Z"))

    _, first = call_json(http_event("GET", "/jobs", query={"limit": "2"}))
    _, second = call_json(http_event("GET", "/jobs", query={"limit": "2", "next_token": first["next_token"]}))

    assert [job["job_id"] for job in first["jobs"]] == ["job-2", "job-1"]
    assert [job["job_id"] for job in second["jobs"]] == ["job-0"]


def test_GIVEN_a_page_token_issued_to_another_user_WHEN_listed_with_it_THEN_400_and_none_of_their_jobs(
    aws: Aws,
) -> None:
    for n in range(3):
        aws.jobs.create(new_job(f"bobs-{n}", owner="bob", now=f"2025-03-14T09:0{n}:00.000000Z"))
    _, bobs_first = call_json(http_event("GET", "/jobs", query={"limit": "1"}, user="bob"))
    assert bobs_first["next_token"]

    status, body = call_json(http_event("GET", "/jobs", query={"limit": "1", "next_token": bobs_first["next_token"]}))

    assert status == 400
    assert body["error"]["code"] == "VALIDATION_FAILED"
    assert "jobs" not in body


@pytest.mark.parametrize("query", [{"limit": "many"}, {"next_token": "bm90LWEtdG9rZW4="}])
def test_GIVEN_a_bad_limit_or_token_WHEN_listed_THEN_400(aws: Aws, query: dict[str, str]) -> None:
    status, body = call_json(http_event("GET", "/jobs", query=query))

    assert status == 400
    assert body["error"]["code"] == "VALIDATION_FAILED"


def test_GIVEN_an_unknown_job_id_WHEN_read_THEN_404_job_not_found(aws: Aws) -> None:
    status, body = call_json(http_event("GET", "/jobs/unknown"))

    assert status == 404
    assert body["error"]["code"] == "JOB_NOT_FOUND"


# ------------------------------------------------------------------ timeline


def test_GIVEN_a_new_upload_WHEN_its_events_are_read_THEN_created_by_this_request_of_the_api(aws: Aws) -> None:
    _, created = post_upload()

    status, answer = call_json(http_event("GET", f"/jobs/{created['job_id']}/events"))

    assert status == 200
    assert (answer["job_id"], answer["status"]) == (created["job_id"], "AWAITING_UPLOAD")
    [entry] = answer["events"]
    assert (entry["what"], entry["function"], entry["request_id"]) == (
        "job.created",
        "upload-api",
        FakeLambdaContext().aws_request_id,
    )
    assert entry["details"] == {"filename": "holiday.mp4", "size": 7_340_032, "method": "POST"}


def test_GIVEN_a_cancelled_upload_WHEN_its_events_are_read_THEN_created_then_cancelled(aws: Aws) -> None:
    _, created = post_upload()
    call_json(http_event("DELETE", f"/uploads/{created['job_id']}"))

    _, answer = call_json(http_event("GET", f"/jobs/{created['job_id']}/events"))

    assert [e["what"] for e in answer["events"]] == ["job.created", "upload.cancelled"]
    assert answer["events"][1]["details"]["error"]["code"] == "UPLOAD_CANCELLED"


def test_GIVEN_alices_job_WHEN_bob_reads_its_events_THEN_404_as_if_it_did_not_exist(aws: Aws) -> None:
    _, created = post_upload()

    status, answer = call_json(http_event("GET", f"/jobs/{created['job_id']}/events", user="bob"))

    assert status == 404 and answer["error"]["code"] == "JOB_NOT_FOUND"


# ------------------------------------------------------------------ errors of ours


def test_GIVEN_the_jobs_table_fails_WHEN_a_job_is_read_THEN_503_with_a_request_id_and_no_internal_names(
    aws: Aws,
) -> None:
    aws.jobs.create(new_job(JOB_ID))
    aws.dynamodb.delete_table(TableName=TABLE)  # every DynamoDB call now fails with ResourceNotFoundException
    event = http_event("GET", f"/jobs/{JOB_ID}")

    status, body = call_json(event)

    assert status == 503
    assert body["error"]["code"] == "JOB_STORE_ERROR"
    assert body["error"]["request_id"] == event["requestContext"]["requestId"]
    text = json.dumps(body)
    assert TABLE not in text and "ResourceNotFound" not in text and "GetItem" not in text


def test_GIVEN_an_output_missing_from_its_bucket_WHEN_requested_THEN_the_answer_does_not_name_the_bucket(
    aws: Aws,
) -> None:
    transcoded_job(aws)
    aws.s3.delete_object(Bucket=OUTPUTS_BUCKET, Key=f"jobs/{JOB_ID}/hls/master.m3u8")

    status, _, body = call(http_event("GET", f"/jobs/{JOB_ID}/hls/master.m3u8", query=granted(), user=None))

    assert status >= 400
    assert OUTPUTS_BUCKET not in body and "s3://" not in body and "NoSuchKey" not in body
