"""The HTTP API Lambda (and its authorizer) end to end in one process: API Gateway
HTTP API (payload 2.0) events in, real S3, DynamoDB and Secrets Manager calls
against moto.

Requests behind the authorizer carry ``requestContext.authorizer.lambda.user``,
as API Gateway passes on what the authorizer answered; the public routes (the
page, a job's playlists and storyboard) carry no authorizer context."""

from __future__ import annotations

import base64
import copy
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from moto import mock_aws

from tests.moto_resources import (
    create_job_events_table,
    create_jobs_table,
    create_revoked_tokens_table,
    create_webhooks_table,
    use_fake_credentials,
)
from upload_api.handlers import api
from vidpipe.adapters import aws_clients
from vidpipe.adapters import secrets as secrets_module
from vidpipe.adapters.cloudfront_signing import SigningKeyPair, generate_signing_key_pair
from vidpipe.adapters.job_store import DynamoJobStore
from vidpipe.domain import access
from vidpipe.domain.access import (
    API_TOKENS,
    OUTPUT_GRANTS,
    WEBHOOK_SIGNING,
    SigningKeys,
    grant_is_valid,
    mint_api_token,
    output_grant,
)
from vidpipe.domain.events import Stage
from vidpipe.domain.jobs import Job, JobStatus, StageState, StageStatus
from vidpipe.domain.webhooks import signing_secret
from vidpipe.runtime import settings
from vidpipe_cli.tokens import revoke_token

EVENTS = Path(__file__).parent.parent / "events"
REGION = "us-east-1"
TABLE = "vidpipe-test-jobs"
EVENTS_TABLE = "vidpipe-test-job-events"
WEBHOOKS_TABLE = "vidpipe-test-webhooks"
UPLOADS_BUCKET = "vidpipe-test-uploads"
OUTPUTS_BUCKET = "vidpipe-test-outputs"
API_URL = "http://127.0.0.1:4566/_aws/execute-api/vidpipe"
JOB_ID = "3f2b8c1e7d4a4e2b9c612a5d8e0f4b17"
OTHER_JOB_ID = "9a7c5e3b1d2f4a6c8e0b2d4f6a8c0e1d"
# One key set per purpose, each with keys of its own, as the template generates them.
KEYS_PREFIX = "vidpipe-test/keys/"
API_KEYS = SigningKeys(API_TOKENS, "k1", {"k1": "vidpipe-test-api-key-6d0f2b8e4a1c9e3b7f5a0d2c8e6b4a19"})
GRANT_KEYS = SigningKeys(OUTPUT_GRANTS, "k1", {"k1": "vidpipe-test-grant-key-0d2c8e6b4a196d0f2b8e4a1c9e3b7f5a"})
WEBHOOK_KEYS = SigningKeys(WEBHOOK_SIGNING, "k1", {"k1": "vidpipe-test-webhook-key-4a1c9e3b7f5a0d2c8e6b4a196d0f2b8e"})
REVOKED_TABLE = "vidpipe-test-revoked-tokens"
MiB = 1024 * 1024
MULTIPART_THRESHOLD = 10 * MiB

MASTER_PLAYLIST = """\
#EXTM3U
#EXT-X-VERSION:6
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-STREAM-INF:BANDWIDTH=1200000,AVERAGE-BANDWIDTH=896000,RESOLUTION=640x360,FRAME-RATE=30.000,CODECS="avc1.64001e,mp4a.40.2"
360p/index.m3u8
"""
MEDIA_PLAYLIST = """\
#EXTM3U
#EXT-X-VERSION:6
#EXT-X-TARGETDURATION:4
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-PLAYLIST-TYPE:VOD
#EXT-X-INDEPENDENT-SEGMENTS
#EXTINF:4.000000,
seg_00000.ts
#EXTINF:3.480000,
seg_00001.ts
#EXT-X-ENDLIST
"""
STORYBOARD = "WEBVTT\n\n00:00:00.000 --> 00:00:05.000\nsprite.jpg#xywh=0,0,160,90\n"


@dataclass
class FakeLambdaContext:
    function_name: str = "vidpipe-UploadApiFunction-4mUe1GQ9sCtY"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:111122223333:function:vidpipe-UploadApiFunction-4mUe1GQ9sCtY"
    aws_request_id: str = "6f1c8a2e-4b7d-4e0a-9d3c-2b5e8f7a1c90"

    def get_remaining_time_in_millis(self) -> int:
        return 14_000


def _clear_caches() -> None:
    settings.get_settings.cache_clear()
    aws_clients.s3_client.cache_clear()
    aws_clients.dynamodb_client.cache_clear()
    aws_clients.events_client.cache_clear()
    aws_clients.secrets_client.cache_clear()
    secrets_module.forget_signing_keys()
    api._cdn_signing_key.cache_clear()


@dataclass
class Aws:
    s3: Any
    dynamodb: Any

    @property
    def jobs(self) -> DynamoJobStore:
        return DynamoJobStore(self.dynamodb, TABLE)

    def job_count(self) -> int:
        # Jobs only: the owners' usage counters share the table (vidpipe.adapters.usage_store).
        return int(
            self.dynamodb.scan(
                TableName=TABLE,
                Select="COUNT",
                FilterExpression="attribute_exists(#status)",
                ExpressionAttributeNames={"#status": "status"},
            )["Count"]
        )


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    use_fake_credentials(monkeypatch)
    for name, value in {
        "JOBS_TABLE": TABLE,
        "UPLOADS_BUCKET": UPLOADS_BUCKET,
        "OUTPUTS_BUCKET": OUTPUTS_BUCKET,
        "EVENT_BUS_NAME": "vidpipe-test-events",
        "PUBLIC_API_URL": API_URL + "/",
        "MAX_UPLOAD_BYTES": str(100 * 1024 * 1024),
        "MULTIPART_THRESHOLD_BYTES": str(MULTIPART_THRESHOLD),
        "UPLOAD_URL_TTL_SECONDS": "900",
        "OUTPUT_URL_TTL_SECONDS": "600",
        "SIGNING_KEYS_PREFIX": KEYS_PREFIX,
        "REVOKED_TOKENS_TABLE": REVOKED_TABLE,
        "JOB_EVENTS_TABLE": EVENTS_TABLE,
        "WEBHOOKS_TABLE": WEBHOOKS_TABLE,
        "POWERTOOLS_SERVICE_NAME": "upload-api",
    }.items():
        monkeypatch.setenv(name, value)
    _clear_caches()
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=UPLOADS_BUCKET)
        s3.create_bucket(Bucket=OUTPUTS_BUCKET)
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        create_jobs_table(dynamodb, TABLE)
        create_job_events_table(dynamodb, EVENTS_TABLE)
        create_webhooks_table(dynamodb, WEBHOOKS_TABLE)
        create_revoked_tokens_table(dynamodb, REVOKED_TABLE)
        secrets = boto3.client("secretsmanager", region_name=REGION)
        for keys in (API_KEYS, GRANT_KEYS, WEBHOOK_KEYS):
            secrets.create_secret(
                Name=KEYS_PREFIX + keys.purpose, SecretString=json.dumps({"current": keys.current, **keys.keys})
            )
        yield Aws(s3=s3, dynamodb=dynamodb)
    _clear_caches()


def http_event(
    method: str, path: str, *, body: Any = None, query: dict[str, str] | None = None, user: str | None = "alice"
) -> dict[str, Any]:
    """The recorded POST /uploads event (alice's), turned into another request:
    ``user`` is who the authorizer let in, None for a request that did not pass
    through the authorizer (a public route)."""
    event: dict[str, Any] = json.loads((EVENTS / "http_api_post_uploads.json").read_text())
    event = copy.deepcopy(event)
    if user is None:
        event["requestContext"].pop("authorizer")
        event["headers"].pop("authorization")
    else:
        # The recorded event holds a token of the old format: requests carry a fresh one.
        event["requestContext"]["authorizer"] = {"lambda": {"user": user}}
        event["headers"]["authorization"] = f"Bearer {mint_api_token(API_KEYS, user).token}"
    event["rawPath"] = path
    event["requestContext"]["http"].update(method=method, path=path)
    if query:
        event["rawQueryString"] = "&".join(f"{k}={v}" for k, v in query.items())
        event["queryStringParameters"] = dict(query)
    if method == "GET":
        event.pop("body", None)
        for header in ("content-length", "content-type"):
            event["headers"].pop(header, None)
    elif body is not None:
        event["body"] = body if isinstance(body, str) else json.dumps(body)
        event["headers"]["content-length"] = str(len(event["body"].encode()))
    return event


def call(event: dict[str, Any]) -> tuple[int, dict[str, str], str]:
    from upload_api.handlers.api import lambda_handler

    response = lambda_handler(event, FakeLambdaContext())
    headers = {name.lower(): value for name, value in (response.get("headers") or {}).items()}
    body = response.get("body") or ""
    if response.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    return response["statusCode"], headers, body


def call_json(event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    status, headers, body = call(event)
    assert headers["content-type"].startswith("application/json")
    data: dict[str, Any] = json.loads(body)
    return status, data


def post_upload(user: str = "alice", **overrides: Any) -> tuple[int, dict[str, Any]]:
    body = {"filename": "holiday.mp4", "content_type": "video/mp4", "size": 7_340_032, **overrides}
    return call_json(http_event("POST", "/uploads", body=body, user=user))


def query_of(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def grant_query(grant: str) -> dict[str, str]:
    """``expires=..&grant=..`` as the query parameters API Gateway hands over."""
    return dict(pair.split("=", 1) for pair in grant.split("&"))


def granted(job_id: str = JOB_ID, user: str = "alice") -> dict[str, str]:
    """The output grant the owner gets in GET /jobs/{id}."""
    status, job = call_json(http_event("GET", f"/jobs/{job_id}", user=user))
    assert status == 200, job
    outputs = job["outputs"]
    return query_of(outputs.get("hls_url") or outputs["storyboard_vtt_url"])


def new_job(job_id: str, owner: str = "alice", now: str = "2025-03-14T09:26:41.000000Z") -> Job:
    return Job.new(job_id, filename="holiday.mp4", content_type="video/mp4", size=7_340_032, now=now, owner=owner)


def transcoded_job(aws: Aws, job_id: str = JOB_ID) -> Job:
    """Alice's job whose transcode finished, with its playlists in the outputs bucket."""
    prefix = f"jobs/{job_id}/hls/"
    job = new_job(job_id)
    job.status = JobStatus.PROCESSING
    job.stages[Stage.TRANSCODE] = StageState(
        StageStatus.COMPLETED,
        1.0,
        {
            "prefix": prefix,
            "master_playlist": "master.m3u8",
            "renditions": [{"name": "360p", "width": 640, "height": 360, "bitrate": 896_000}],
        },
    )
    aws.jobs.create(job)
    aws.s3.put_object(Bucket=OUTPUTS_BUCKET, Key=prefix + "master.m3u8", Body=MASTER_PLAYLIST.encode())
    aws.s3.put_object(Bucket=OUTPUTS_BUCKET, Key=prefix + "360p/index.m3u8", Body=MEDIA_PLAYLIST.encode())
    return job


def thumbnailed_job(aws: Aws, job_id: str = JOB_ID) -> Job:
    """Alice's job whose thumbnails finished, with its storyboard in the outputs bucket."""
    job = new_job(job_id)
    prefix = f"jobs/{job_id}/thumbnails/"
    job.stages[Stage.THUMBNAILS] = StageState(
        StageStatus.COMPLETED,
        1.0,
        {"prefix": prefix, "poster": "poster.jpg", "sprite": "sprite.jpg", "storyboard": "storyboard.vtt"},
    )
    aws.jobs.create(job)
    aws.s3.put_object(Bucket=OUTPUTS_BUCKET, Key=prefix + "storyboard.vtt", Body=STORYBOARD.encode())
    return job


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


# ------------------------------------------------------------------ authentication and ownership


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/uploads", {"filename": "a.mp4", "content_type": "video/mp4", "size": 10}),
        ("GET", "/jobs", None),
        ("GET", f"/jobs/{JOB_ID}", None),
        ("POST", f"/uploads/{JOB_ID}/parts", {"part_numbers": [1]}),
        ("GET", f"/uploads/{JOB_ID}/parts", None),
        ("POST", f"/uploads/{JOB_ID}/complete", {"parts": [{"part_number": 1, "etag": "abc"}]}),
        ("DELETE", f"/uploads/{JOB_ID}", None),
    ],
)
def test_GIVEN_a_request_without_authorizer_context_WHEN_handled_THEN_401_unauthenticated_and_nothing_changes(
    aws: Aws, method: str, path: str, body: Any
) -> None:
    # GIVEN alice's job exists, and a request API Gateway did not pass through the authorizer
    aws.jobs.create(new_job(JOB_ID))

    status, response = call_json(http_event(method, path, body=body, user=None))

    assert status == 401
    assert response["error"]["code"] == "UNAUTHENTICATED"
    assert "token" in response["error"]["message"]
    assert aws.job_count() == 1
    assert aws.jobs.get(JOB_ID).status is JobStatus.AWAITING_UPLOAD


@pytest.mark.parametrize("authorizer", [{}, {"lambda": None}, {"lambda": {}}, {"lambda": {"user": ""}}])
def test_GIVEN_an_authorizer_context_without_a_user_WHEN_posting_THEN_401_and_no_job(
    aws: Aws, authorizer: dict[str, Any]
) -> None:
    event = http_event("POST", "/uploads", body={"filename": "a.mp4", "content_type": "video/mp4", "size": 10})
    event["requestContext"]["authorizer"] = authorizer

    status, response = call_json(event)

    assert status == 401
    assert response["error"]["code"] == "UNAUTHENTICATED"
    assert aws.job_count() == 0


def multipart_upload() -> str:
    """Alice's job awaiting a multipart upload (3 parts of 8 MiB at most)."""
    status, created = post_upload(size=2 * MULTIPART_THRESHOLD)
    assert status == 201 and created["upload"]["method"] == "MULTIPART", created
    return str(created["job_id"])


def test_GIVEN_alices_job_WHEN_bob_reads_it_THEN_404_as_if_it_did_not_exist(aws: Aws) -> None:
    _, created = post_upload()

    bobs_status, bobs_view = call_json(http_event("GET", f"/jobs/{created['job_id']}", user="bob"))
    _, unknown = call_json(http_event("GET", "/jobs/unknown", user="bob"))
    alices_status, _ = call_json(http_event("GET", f"/jobs/{created['job_id']}"))

    assert bobs_status == 404
    assert bobs_view["error"]["code"] == "JOB_NOT_FOUND"
    # Nothing tells bob the job exists: the answer is the one for an unknown id.
    assert bobs_view["error"]["message"] == unknown["error"]["message"].replace("unknown", created["job_id"])
    assert alices_status == 200


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("POST", "/parts", {"part_numbers": [1, 2]}),
        ("GET", "/parts", None),
        ("POST", "/complete", {"parts": [{"part_number": n, "etag": "abc"} for n in (1, 2, 3)]}),
        ("DELETE", "", None),
    ],
    ids=["sign-parts", "list-parts", "complete", "cancel"],
)
def test_GIVEN_alices_multipart_upload_WHEN_bob_calls_its_routes_THEN_404_and_the_upload_is_untouched(
    aws: Aws, method: str, suffix: str, body: Any
) -> None:
    job_id = multipart_upload()

    status, response = call_json(http_event(method, f"/uploads/{job_id}{suffix}", body=body, user="bob"))

    assert status == 404
    assert response["error"]["code"] == "JOB_NOT_FOUND"
    assert "parts" not in response
    job = aws.jobs.get(job_id)
    assert job.status is JobStatus.AWAITING_UPLOAD
    assert job.version == 0
    # The multipart upload is still open: alice can go on with it.
    alices_status, parts = call_json(http_event("GET", f"/uploads/{job_id}/parts"))
    assert alices_status == 200
    assert parts["upload_id"] == job.upload["upload_id"]


def test_GIVEN_alices_multipart_upload_WHEN_alice_calls_its_routes_THEN_they_answer_her(aws: Aws) -> None:
    job_id = multipart_upload()

    signed_status, signed = call_json(http_event("POST", f"/uploads/{job_id}/parts", body={"part_numbers": [2]}))
    listed_status, listed = call_json(http_event("GET", f"/uploads/{job_id}/parts"))
    cancelled_status, cancelled = call_json(http_event("DELETE", f"/uploads/{job_id}"))

    assert signed_status == 200
    assert [part["part_number"] for part in signed["parts"]] == [2]
    assert listed_status == 200
    assert listed["parts"] == []
    assert cancelled_status == 200
    assert cancelled == {"job_id": job_id, "status": "FAILED"}


# ------------------------------------------------------------------ web page


def test_GIVEN_the_root_path_WHEN_requested_THEN_the_web_page_as_html(aws: Aws) -> None:
    status, headers, body = call(http_event("GET", "/"))

    assert status == 200
    assert headers["content-type"].startswith("text/html")
    assert "<html" in body.lower()


def test_GIVEN_the_app_script_WHEN_requested_THEN_javascript(aws: Aws) -> None:
    status, headers, body = call(http_event("GET", "/static/app.js"))

    assert status == 200
    assert "javascript" in headers["content-type"]
    assert body == (Path(__file__).parents[2] / "upload_api" / "web" / "static" / "app.js").read_text()


@pytest.mark.parametrize("path", ["/static/nope.js", "/static/..%2F..%2Fhandlers%2Fapi.py", "/nowhere"])
def test_GIVEN_a_missing_file_or_route_WHEN_requested_THEN_404(aws: Aws, path: str) -> None:
    status, body = call_json(http_event("GET", path))

    assert status == 404
    assert body["error"]["code"] == "NOT_FOUND"


# ------------------------------------------------------------------ outputs


def test_GIVEN_a_transcoded_job_WHEN_read_THEN_its_hls_urls_point_at_the_api_with_the_jobs_grant(aws: Aws) -> None:
    transcoded_job(aws)
    before = time.time()

    _, job = call_json(http_event("GET", f"/jobs/{JOB_ID}"))

    hls_url, rendition_url = job["outputs"]["hls_url"], job["outputs"]["renditions"][0]["url"]
    # PUBLIC_API_URL ends with a slash: the URLs still have a single one.
    assert hls_url.partition("?")[0] == f"{API_URL}/jobs/{JOB_ID}/hls/master.m3u8"
    assert rendition_url.partition("?")[0] == f"{API_URL}/jobs/{JOB_ID}/hls/360p/index.m3u8"
    grant = query_of(hls_url)
    assert set(grant) == {"expires", "kid", "grant"}
    assert query_of(rendition_url) == grant
    assert grant_is_valid(GRANT_KEYS, JOB_ID, grant)
    assert not grant_is_valid(GRANT_KEYS, OTHER_JOB_ID, grant)
    # It lasts OUTPUT_URL_TTL_SECONDS, like the presigned URLs it leads to.
    assert before + 600 - 1 <= int(grant["expires"]) <= time.time() + 600


def test_GIVEN_a_thumbnailed_job_WHEN_listed_THEN_its_storyboard_url_carries_the_jobs_grant(aws: Aws) -> None:
    thumbnailed_job(aws)

    _, listed = call_json(http_event("GET", "/jobs"))

    [job] = listed["jobs"]
    url = job["outputs"]["storyboard_vtt_url"]
    assert url.partition("?")[0] == f"{API_URL}/jobs/{JOB_ID}/thumbnails/storyboard.vtt"
    assert grant_is_valid(GRANT_KEYS, JOB_ID, query_of(url))


def test_GIVEN_a_transcoded_job_WHEN_the_master_playlist_is_requested_with_its_grant_THEN_renditions_carry_it(
    aws: Aws,
) -> None:
    transcoded_job(aws)
    grant = granted()

    # A player fetches it with a plain GET: no token, so no authorizer context.
    status, headers, body = call(http_event("GET", f"/jobs/{JOB_ID}/hls/master.m3u8", query=grant, user=None))

    assert status == 200
    assert headers["content-type"] == "application/vnd.apple.mpegurl"
    assert "max-age=60" in headers["cache-control"]
    # The playlist as written, but for the relative rendition reference, which
    # would otherwise drop the grant.
    assert body == MASTER_PLAYLIST.replace(
        "360p/index.m3u8", f"360p/index.m3u8?expires={grant['expires']}&kid={grant['kid']}&grant={grant['grant']}"
    )


def test_GIVEN_a_transcoded_job_WHEN_a_media_playlist_is_requested_THEN_segments_are_presigned_urls(aws: Aws) -> None:
    transcoded_job(aws)

    status, headers, body = call(http_event("GET", f"/jobs/{JOB_ID}/hls/360p/index.m3u8", query=granted(), user=None))

    assert status == 200
    assert headers["content-type"] == "application/vnd.apple.mpegurl"
    lines = body.splitlines()
    assert [line for line in lines if line.startswith("#")] == [
        line for line in MEDIA_PLAYLIST.splitlines() if line.startswith("#")
    ]
    segments = [line for line in lines if line and not line.startswith("#")]
    assert len(segments) == 2
    for number, url in enumerate(segments):
        parts = urlsplit(url)
        assert parts.scheme == "https"
        assert OUTPUTS_BUCKET in parts.netloc + parts.path
        assert parts.path.endswith(f"/jobs/{JOB_ID}/hls/360p/seg_0000{number}.ts")
        query = parse_qs(parts.query)
        assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
        assert query["X-Amz-Expires"] == ["600"]
        assert "X-Amz-Signature" in query


def test_GIVEN_a_thumbnailed_job_WHEN_the_storyboard_is_requested_THEN_the_sprite_is_presigned(aws: Aws) -> None:
    thumbnailed_job(aws)
    prefix = f"jobs/{JOB_ID}/thumbnails/"

    status, headers, body = call(
        http_event("GET", f"/jobs/{JOB_ID}/thumbnails/storyboard.vtt", query=granted(), user=None)
    )

    assert status == 200
    assert headers["content-type"] == "text/vtt"
    lines = body.splitlines()
    assert lines[:3] == ["WEBVTT", "", "00:00:00.000 --> 00:00:05.000"]
    url, _, fragment = lines[3].partition("#")
    assert fragment == "xywh=0,0,160,90"
    assert urlsplit(url).path.endswith(f"/{prefix}sprite.jpg")
    assert "X-Amz-Signature" in parse_qs(urlsplit(url).query)


OUTPUT_PATHS = ["hls/master.m3u8", "hls/360p/index.m3u8", "thumbnails/storyboard.vtt"]


def _tampered(grant: dict[str, str]) -> dict[str, str]:
    mac = grant["grant"]
    return {**grant, "grant": ("A" if mac[0] != "A" else "B") + mac[1:]}


BAD_GRANTS: dict[str, Any] = {
    "none": lambda grant: {},
    "tampered-grant": _tampered,
    "extended-expiry": lambda grant: {**grant, "expires": str(int(grant["expires"]) + 86_400)},
    "expired": lambda grant: grant_query(output_grant(GRANT_KEYS, JOB_ID, ttl_s=600, now=time.time() - 3600)),
    "other-jobs-grant": lambda grant: grant_query(output_grant(GRANT_KEYS, OTHER_JOB_ID, ttl_s=600)),
    "other-secret": lambda grant: grant_query(
        output_grant(SigningKeys(OUTPUT_GRANTS, "k1", {"k1": "not-" + GRANT_KEYS.keys["k1"]}), JOB_ID, ttl_s=600)
    ),
    "expires-only": lambda grant: {"expires": grant["expires"]},
    "grant-only": lambda grant: {"grant": grant["grant"]},
    "no-kid": lambda grant: {"expires": grant["expires"], "grant": grant["grant"]},
    "unknown-kid": lambda grant: {**grant, "kid": "k2"},
    # A grant MAC'd with the api-tokens key (one key for two purposes is what we no longer do).
    "api-tokens-key": lambda grant: grant_query(
        output_grant(SigningKeys(OUTPUT_GRANTS, "k1", API_KEYS.keys), JOB_ID, ttl_s=600)
    ),
    "expires-not-a-number": lambda grant: {**grant, "expires": "tomorrow"},
    # API Gateway hands over the query decoded: %C3%A9 arrives as "é".
    "non-ascii-grant": lambda grant: {**grant, "grant": "é" + grant["grant"][1:]},
}


@pytest.mark.parametrize("bad", list(BAD_GRANTS))
@pytest.mark.parametrize("path", OUTPUT_PATHS)
def test_GIVEN_a_finished_job_WHEN_an_output_is_requested_without_a_valid_grant_THEN_401(
    aws: Aws, path: str, bad: str
) -> None:
    # GIVEN alice's finished job, and another job of hers with outputs of its own
    job = transcoded_job(aws)
    job.stages[Stage.THUMBNAILS] = StageState(
        StageStatus.COMPLETED,
        1.0,
        {
            "prefix": f"jobs/{JOB_ID}/thumbnails/",
            "poster": "p.jpg",
            "sprite": "sprite.jpg",
            "storyboard": "storyboard.vtt",
        },
    )
    aws.jobs.save(job, expected_version=job.version)
    aws.s3.put_object(Bucket=OUTPUTS_BUCKET, Key=f"jobs/{JOB_ID}/thumbnails/storyboard.vtt", Body=STORYBOARD.encode())
    transcoded_job(aws, OTHER_JOB_ID)
    query = BAD_GRANTS[bad](granted())

    # WHEN (as a player would, and as the owner would: neither helps)
    for user in (None, "alice"):
        status, body = call_json(http_event("GET", f"/jobs/{JOB_ID}/{path}", query=query or None, user=user))

        # THEN
        assert status == 401, user
        assert body["error"]["code"] == "UNAUTHENTICATED"
        assert "GET /jobs/{id}" in body["error"]["message"]
    # while the genuine grant works
    assert call(http_event("GET", f"/jobs/{JOB_ID}/{path}", query=granted(), user=None))[0] == 200


@pytest.mark.parametrize("rendition", ["..", "360p%2F..%2F..", "..%2F..%2Fthumbnails", "360P"])
def test_GIVEN_a_rendition_name_that_is_not_ours_WHEN_requested_THEN_404(aws: Aws, rendition: str) -> None:
    transcoded_job(aws)

    status, body = call_json(
        http_event("GET", f"/jobs/{JOB_ID}/hls/{rendition}/index.m3u8", query=granted(), user=None)
    )

    assert status == 404
    assert body["error"]["code"] == "JOB_NOT_FOUND"
    assert "no rendition" in body["error"]["message"]


@pytest.mark.parametrize("path", OUTPUT_PATHS)
def test_GIVEN_a_job_not_yet_processed_WHEN_its_outputs_are_requested_THEN_404_job_not_found(
    aws: Aws, path: str
) -> None:
    _, created = post_upload()
    # Its view has no output URLs yet; a grant for it is still well formed.
    grant = grant_query(output_grant(GRANT_KEYS, created["job_id"], ttl_s=600))

    status, body = call_json(http_event("GET", f"/jobs/{created['job_id']}/{path}", query=grant, user=None))

    assert status == 404
    assert body["error"]["code"] == "JOB_NOT_FOUND"
    assert "outputs yet" in body["error"]["message"]


@pytest.mark.parametrize("path", ["hls/master.m3u8", "hls/360p/index.m3u8"])
def test_GIVEN_an_unknown_job_WHEN_its_playlists_are_requested_THEN_404_with_a_grant_401_without(
    aws: Aws, path: str
) -> None:
    grant = grant_query(output_grant(GRANT_KEYS, "unknown", ttl_s=600))

    granted_status, granted_body = call_json(http_event("GET", f"/jobs/unknown/{path}", query=grant, user=None))
    bare_status, bare_body = call_json(http_event("GET", f"/jobs/unknown/{path}", user=None))

    assert granted_status == 404
    assert granted_body["error"]["code"] == "JOB_NOT_FOUND"
    # Without a grant, nothing tells whether the job exists.
    assert bare_status == 401
    assert bare_body["error"]["code"] == "UNAUTHENTICATED"


# ------------------------------------------------------------------ authorizer


def authorizer_event(headers: dict[str, str]) -> dict[str, Any]:
    """What API Gateway sends a REQUEST authorizer (payload 2.0) for the recorded request."""
    recorded: dict[str, Any] = json.loads((EVENTS / "http_api_post_uploads.json").read_text())
    recorded["requestContext"].pop("authorizer")
    authorization = headers.get("authorization")
    return {
        "version": "2.0",
        "type": "REQUEST",
        "routeArn": "arn:aws:execute-api:eu-west-1:111122223333:k3x9q7wz2a/$default/POST/uploads",
        "identitySource": [authorization] if authorization else [],
        "routeKey": "$default",
        "rawPath": recorded["rawPath"],
        "rawQueryString": "",
        "headers": headers,
        "requestContext": recorded["requestContext"],
    }


def authorize(headers: dict[str, str]) -> dict[str, Any]:
    from upload_api.handlers.authorizer import lambda_handler

    answer: dict[str, Any] = lambda_handler(authorizer_event(headers), FakeLambdaContext())
    return answer


def test_GIVEN_a_requests_token_WHEN_authorized_THEN_alice_is_let_in_as_the_api_expects(aws: Aws) -> None:
    request = http_event("POST", "/uploads")

    answer = authorize(request["headers"])

    # The simple response: API Gateway hands its context to the API as
    # requestContext.authorizer.lambda, where the API reads the user.
    assert answer["isAuthorized"] is True
    assert answer["context"]["user"] == request["requestContext"]["authorizer"]["lambda"]["user"] == "alice"
    token = request["headers"]["authorization"].removeprefix("Bearer ")
    assert answer["context"]["token_id"] == access.unverified_claims(token).token_id


def test_GIVEN_a_request_let_in_by_the_oidc_jwt_authorizer_WHEN_it_creates_an_upload_THEN_the_subject_owns_the_job(
    aws: Aws,
) -> None:
    # With OidcIssuer set, API Gateway puts the JWT's claims where the Lambda authorizer's context was.
    event = http_event("POST", "/uploads", body={"filename": "a.mp4", "content_type": "video/mp4", "size": 1000})
    event["requestContext"]["authorizer"] = {
        "jwt": {"claims": {"sub": "0f3a9c2e-cognito-sub", "iss": "https://x"}, "scopes": None}
    }

    status, created = call_json(event)

    assert status == 201
    assert aws.jobs.get(created["job_id"]).owner == "0f3a9c2e-cognito-sub"


def _other_deployments_token() -> str:
    return mint_api_token(SigningKeys(API_TOKENS, "k1", {"k1": "another-deployments-key-0123456789ab"}), "alice").token


def _resigned_by(keys_of_purpose: SigningKeys) -> str:
    """alice's token MAC'd with another purpose's key bytes (as if one key served both)."""
    return mint_api_token(SigningKeys(API_TOKENS, "k1", keys_of_purpose.keys), "alice").token


@pytest.mark.parametrize(
    "authorization",
    [
        "",
        "Bearer",
        "Bearer vp2.k1.not.the-right-signature",
        "Basic YWxpY2U6cGFzc3dvcmQ=",
        f"Bearer {_other_deployments_token()}",
        f"Token {mint_api_token(API_KEYS, 'alice').token}",
        "Bearer " + mint_api_token(API_KEYS, "alice", ttl_s=60, now=time.time() - 61).token,
        f"Bearer {_resigned_by(GRANT_KEYS)}",
        f"Bearer {_resigned_by(WEBHOOK_KEYS)}",
        # The old format, of a deployment whose secret was this very api-tokens key: refused all the same.
        "Bearer vp1.alice.IeAohi6T3dYmyXjLnJIg1wssKV297lEsK41e45vLtSk",
        "Bearer vp2.k1.é",
    ],
    ids=[
        "empty",
        "no-token",
        "forged",
        "basic",
        "other-deployment",
        "other-scheme",
        "expired",
        "grant-key",
        "webhook-key",
        "old-format",
        "non-ascii",
    ],
)
def test_GIVEN_no_valid_token_WHEN_authorized_THEN_refused(aws: Aws, authorization: str) -> None:
    headers = {"content-type": "application/json"}
    if authorization:
        headers["authorization"] = authorization

    assert authorize(headers) == {"isAuthorized": False}


def test_GIVEN_a_users_token_WHEN_authorized_THEN_that_user_whatever_the_header_case(aws: Aws) -> None:
    issued = mint_api_token(API_KEYS, "bob")

    assert authorize({"Authorization": f"bearer {issued.token}"}) == {
        "isAuthorized": True,
        "context": {"user": "bob", "token_id": issued.claims.token_id},
    }


def test_GIVEN_a_token_revoked_by_id_WHEN_authorized_THEN_refused_and_the_users_other_token_still_works(
    aws: Aws,
) -> None:
    revoked, kept = mint_api_token(API_KEYS, "bob"), mint_api_token(API_KEYS, "bob")
    assert authorize({"authorization": f"Bearer {revoked.token}"})["isAuthorized"] is True

    revoke_token(aws.dynamodb, {"RevokedTokensTableName": REVOKED_TABLE}, revoked.claims.token_id)

    assert authorize({"authorization": f"Bearer {revoked.token}"}) == {"isAuthorized": False}
    assert authorize({"authorization": f"Bearer {kept.token}"})["isAuthorized"] is True


def test_GIVEN_a_rotated_api_key_WHEN_tokens_of_both_kids_are_authorized_THEN_both_in_until_the_old_kid_is_removed(
    aws: Aws,
) -> None:
    secrets = boto3.client("secretsmanager", region_name=REGION)
    old = mint_api_token(API_KEYS, "bob")
    second_key = "vidpipe-test-api-key-2-b7f5a0d2c8e6b4a196d0f2b8e4a1"
    rotated = SigningKeys(API_TOKENS, "k2", {**API_KEYS.keys, "k2": second_key})
    secrets.put_secret_value(
        SecretId=KEYS_PREFIX + API_TOKENS, SecretString=json.dumps({"current": "k2", **rotated.keys})
    )
    secrets_module.forget_signing_keys()  # what KEYS_CACHE_S seconds do in a running function
    new = mint_api_token(rotated, "bob")

    assert authorize({"authorization": f"Bearer {old.token}"})["isAuthorized"] is True
    assert authorize({"authorization": f"Bearer {new.token}"})["isAuthorized"] is True

    secrets.put_secret_value(
        SecretId=KEYS_PREFIX + API_TOKENS, SecretString=json.dumps({"current": "k2", "k2": rotated.keys["k2"]})
    )
    secrets_module.forget_signing_keys()

    assert authorize({"authorization": f"Bearer {old.token}"}) == {"isAuthorized": False}
    assert authorize({"authorization": f"Bearer {new.token}"})["isAuthorized"] is True


# ------------------------------------------------------------------ every output URL expires
# On AWS the outputs come through CloudFront, whose key group refuses any URL
# without a valid signature; locally (and with OutputsDelivery=s3-presigned)
# they are presigned S3 GETs. Either way no URL we hand out is valid forever.

CDN_URL = "https://d111111abcdef8.cloudfront.net"
CDN_KEY_PAIR_ID = "K2JCJMDEHXQW5F"
CDN_KEY_SECRET = "vidpipe-test/cdn-signing-key"


@lru_cache(maxsize=1)
def cdn_key_pair() -> SigningKeyPair:
    return generate_signing_key_pair()


def deliver_through_the_cdn(monkeypatch: pytest.MonkeyPatch, *, with_key: bool = True) -> None:
    """The API's environment on a stack with OutputsDelivery=cloudfront."""
    monkeypatch.setenv("OUTPUTS_CDN_URL", CDN_URL + "/")
    if with_key:
        pair = cdn_key_pair()
        boto3.client("secretsmanager", region_name=REGION).create_secret(
            Name=CDN_KEY_SECRET,
            SecretString=json.dumps({"private_key": pair.private_key_pem, "public_key": pair.public_key_pem}),
        )
        monkeypatch.setenv("OUTPUTS_CDN_KEY_PAIR_ID", CDN_KEY_PAIR_ID)
        monkeypatch.setenv("OUTPUTS_CDN_SIGNING_KEY_SECRET_ID", CDN_KEY_SECRET)
    _clear_caches()


def ready_job(aws: Aws) -> None:
    """Alice's job with both stages done: playlists, storyboard and images."""
    transcoded_job(aws)
    job = aws.jobs.get(JOB_ID)
    job.stages[Stage.THUMBNAILS] = StageState(
        StageStatus.COMPLETED, 1.0,
        {"prefix": f"jobs/{JOB_ID}/thumbnails/", "poster": "poster.jpg", "sprite": "sprite.jpg",
         "storyboard": "storyboard.vtt", "thumbnails": ["thumb_0001.jpg", "thumb_0002.jpg"]},
    )  # fmt: skip
    aws.dynamodb.delete_item(TableName=TABLE, Key={"job_id": {"S": JOB_ID}})
    aws.jobs.create(job)
    aws.s3.put_object(Bucket=OUTPUTS_BUCKET, Key=f"jobs/{JOB_ID}/thumbnails/storyboard.vtt", Body=STORYBOARD.encode())


def urls_in(value: Any) -> list[str]:
    """Every URL in a JSON document."""
    if isinstance(value, dict):
        return [url for item in value.values() for url in urls_in(item)]
    if isinstance(value, list):
        return [url for item in value for url in urls_in(item)]
    return [value] if isinstance(value, str) and "://" in value else []


def references_in(text: str) -> list[str]:
    """Every reference of a playlist or storyboard: lines of their own, URI
    attributes and cue payloads."""
    found: list[str] = []
    for line in text.splitlines():
        if line.startswith("#"):
            found.extend(re.findall(r'URI="([^"]*)"', line))
        elif line and "-->" not in line and line != "WEBVTT":
            found.append(line.split("#xywh=")[0])
    return found


def expiry_of(url: str) -> int:
    """When ``url`` stops working (epoch seconds), read from its own signature;
    fails the test for a URL that carries none."""
    query = query_of(url)
    if "Policy" in query:  # CloudFront custom policy
        assert set(query) == {"Policy", "Signature", "Key-Pair-Id"}, url
        alphabet = str.maketrans({"-": "+", "_": "=", "~": "/"})
        [statement] = json.loads(base64.b64decode(query["Policy"].translate(alphabet)))["Statement"]
        assert statement["Resource"] == f"{CDN_URL}/jobs/{JOB_ID}/*", url
        return int(statement["Condition"]["DateLessThan"]["AWS:EpochTime"])
    if "X-Amz-Expires" in query:  # presigned S3 GET (SigV4)
        signed_at = datetime.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        return int(signed_at.timestamp()) + int(query["X-Amz-Expires"])
    if "grant" in query:  # the API's own output grant (playlists, storyboard)
        return int(query["expires"])
    raise AssertionError(f"this output URL never expires: {url}")


def every_served_url(job_view: dict[str, Any]) -> list[str]:
    """The job view's URLs, then every reference inside each playlist and
    storyboard they lead to (fetched as a player would, without a token)."""
    found = urls_in(job_view["outputs"])
    for url in list(found):
        path = urlsplit(url).path
        if not url.startswith(API_URL):
            continue
        api_path = path.removeprefix(urlsplit(API_URL).path)
        status, _, body = call(http_event("GET", api_path, query=query_of(url), user=None))
        assert status == 200, (url, body)
        for reference in references_in(body):
            absolute = reference if "://" in reference else f"{url.rsplit('/', 1)[0]}/{reference}"
            found.append(absolute)
            if urlsplit(absolute).path.endswith(".m3u8") and absolute.startswith(API_URL):
                media_path = urlsplit(absolute).path.removeprefix(urlsplit(API_URL).path)
                status, _, media = call(http_event("GET", media_path, query=query_of(absolute), user=None))
                assert status == 200, (absolute, media)
                found.extend(references_in(media))
    return found


@pytest.mark.parametrize("delivery", ["cloudfront", "s3-presigned"])
def test_GIVEN_a_ready_job_WHEN_a_player_follows_every_url_THEN_each_one_expires_within_the_url_ttl(
    aws: Aws, monkeypatch: pytest.MonkeyPatch, delivery: str
) -> None:
    # GIVEN a job with playlists, a storyboard, a poster, a sprite and thumbnails
    if delivery == "cloudfront":
        deliver_through_the_cdn(monkeypatch)
    ready_job(aws)
    before = time.time()

    # WHEN the owner reads the job and a player fetches every playlist and storyboard it names
    status, view = call_json(http_event("GET", f"/jobs/{JOB_ID}"))
    assert status == 200
    served = every_served_url(view)

    # THEN every URL (job view, master, media playlist, storyboard) expires within the TTL (600 s)
    kinds = {urlsplit(url).path.rsplit("/", 1)[-1] for url in served}
    assert {"master.m3u8", "index.m3u8", "seg_00000.ts", "seg_00001.ts", "storyboard.vtt", "poster.jpg",
            "sprite.jpg", "thumb_0001.jpg", "thumb_0002.jpg"} <= kinds  # fmt: skip
    for url in served:
        assert before - 5 < expiry_of(url) <= time.time() + 600 + 5, url
    # AND the files themselves come from the CDN (signed) or S3 (presigned), never a plain URL
    files = [url for url in served if not url.startswith(API_URL)]
    expected_host = "d111111abcdef8.cloudfront.net" if delivery == "cloudfront" else f"{OUTPUTS_BUCKET}"
    assert files and all(expected_host in urlsplit(url).netloc + urlsplit(url).path for url in files), files


def test_GIVEN_the_cdn_WHEN_a_media_playlist_is_served_THEN_one_signature_covers_all_its_segments(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    deliver_through_the_cdn(monkeypatch)
    transcoded_job(aws)

    status, _, body = call(http_event("GET", f"/jobs/{JOB_ID}/hls/360p/index.m3u8", query=granted(), user=None))

    assert status == 200
    segments = [line for line in body.splitlines() if line and not line.startswith("#")]
    assert [url.split("?")[0] for url in segments] == [
        f"{CDN_URL}/jobs/{JOB_ID}/hls/360p/seg_0000{number}.ts" for number in range(2)
    ]
    assert len({urlsplit(url).query for url in segments}) == 1
    query = query_of(segments[0])
    assert query["Key-Pair-Id"] == CDN_KEY_PAIR_ID
    signature = base64.b64decode(query["Signature"].translate(str.maketrans({"-": "+", "_": "=", "~": "/"})))
    policy = base64.b64decode(query["Policy"].translate(str.maketrans({"-": "+", "_": "=", "~": "/"})))
    public_key = serialization.load_pem_public_key(cdn_key_pair().public_key_pem.encode())
    public_key.verify(signature, policy, padding.PKCS1v15(), hashes.SHA1())  # raises when CloudFront would refuse


def test_GIVEN_the_cdn_without_a_signing_key_WHEN_a_job_is_read_THEN_no_plain_cdn_url_is_handed_out(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    deliver_through_the_cdn(monkeypatch, with_key=False)
    thumbnailed_job(aws)

    status, body = call_json(http_event("GET", f"/jobs/{JOB_ID}"))

    assert status >= 400
    assert body["error"]["code"] == "MISCONFIGURED"
    assert CDN_URL not in json.dumps(body)


# ------------------------------------------------------------------ MediaConvert outputs
# MediaConvert writes every media playlist next to the master (hls/master_360p.m3u8,
# its segments beside it); GET /jobs/{id} points each rendition at it.

FLAT_MEDIA_PLAYLIST = """\
#EXTM3U
#EXT-X-VERSION:3
#EXT-X-TARGETDURATION:4
#EXT-X-MEDIA-SEQUENCE:1
#EXT-X-PLAYLIST-TYPE:VOD
#EXTINF:4,
master_360p_00001.ts
#EXTINF:2,
master_360p_00002.ts
#EXT-X-ENDLIST
"""


def mediaconvert_job(aws: Aws) -> None:
    prefix = f"jobs/{JOB_ID}/hls/"
    job = new_job(JOB_ID)
    job.status = JobStatus.PROCESSING
    job.stages[Stage.TRANSCODE] = StageState(
        StageStatus.COMPLETED,
        1.0,
        {
            "prefix": prefix,
            "master_playlist": "master.m3u8",
            "renditions": [
                {"name": "360p", "width": 640, "height": 360, "bitrate": 928_000, "playlist": "master_360p.m3u8"}
            ],
        },
    )
    aws.jobs.create(job)
    aws.s3.put_object(Bucket=OUTPUTS_BUCKET, Key=prefix + "master_360p.m3u8", Body=FLAT_MEDIA_PLAYLIST.encode())


def test_GIVEN_a_mediaconvert_job_WHEN_read_THEN_the_rendition_url_names_its_flat_playlist_and_nothing_internal(
    aws: Aws,
) -> None:
    mediaconvert_job(aws)

    status, body = call_json(http_event("GET", f"/jobs/{JOB_ID}"))

    assert status == 200
    [rendition] = body["outputs"]["renditions"]
    assert set(rendition) == {"name", "width", "height", "bitrate", "url"}
    assert urlsplit(rendition["url"]).path.endswith(f"/jobs/{JOB_ID}/hls/master_360p.m3u8")


def test_GIVEN_a_mediaconvert_job_WHEN_its_flat_playlist_is_requested_THEN_segments_are_presigned(aws: Aws) -> None:
    mediaconvert_job(aws)

    status, headers, body = call(http_event("GET", f"/jobs/{JOB_ID}/hls/master_360p.m3u8", query=granted(), user=None))

    assert status == 200
    assert headers["content-type"] == "application/vnd.apple.mpegurl"
    segments = [line for line in body.splitlines() if line and not line.startswith("#")]
    assert [urlsplit(url).path.rsplit("/", 4)[-4:] for url in segments] == [
        ["jobs", JOB_ID, "hls", "master_360p_00001.ts"],
        ["jobs", JOB_ID, "hls", "master_360p_00002.ts"],
    ]
    assert all("X-Amz-Signature" in url for url in segments)


@pytest.mark.parametrize("playlist", ["master_360p.ts", "..%2Fthumbnails.m3u8", ".m3u8", "MASTER.m3u8"])
def test_GIVEN_a_name_that_is_not_a_playlist_of_ours_WHEN_requested_THEN_404(aws: Aws, playlist: str) -> None:
    mediaconvert_job(aws)

    status, body = call_json(http_event("GET", f"/jobs/{JOB_ID}/hls/{playlist}", query=granted(), user=None))

    assert status == 404
    assert body["error"]["code"] == "JOB_NOT_FOUND"


def test_GIVEN_no_grant_WHEN_the_flat_playlist_is_requested_THEN_401(aws: Aws) -> None:
    mediaconvert_job(aws)

    status, body = call_json(http_event("GET", f"/jobs/{JOB_ID}/hls/master_360p.m3u8", user=None))

    assert status == 401


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


# ------------------------------------------------------------------ webhooks

# What the API's resolver answers in these tests (a stub: no DNS, nothing is connected to).
NAMES = {"example.com": ["93.184.215.14"], "rebound.example": ["93.184.215.14", "10.0.0.1"], "localhost": ["127.0.0.1"]}


@pytest.fixture(autouse=True)
def stub_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    from upload_api.handlers import api

    def resolve(host: str, port: int) -> list[str]:
        if host not in NAMES:
            raise OSError(f"{host}: Name or service not known")
        return NAMES[host]

    monkeypatch.setattr(api, "resolve_host", resolve)


def test_GIVEN_an_https_url_WHEN_registered_THEN_201_with_its_secret_once_and_listed_without_it(aws: Aws) -> None:
    status, registered = call_json(http_event("POST", "/webhooks", body={"url": "https://example.com/hooks"}))
    _, listed = call_json(http_event("GET", "/webhooks"))

    assert status == 201
    assert registered["secret"] == signing_secret(WEBHOOK_KEYS.keys["k1"], "alice", registered["webhook_id"])
    assert listed == {"webhooks": [{k: v for k, v in registered.items() if k != "secret"}]}


def test_GIVEN_an_http_url_on_a_deployment_that_wants_https_WHEN_registered_THEN_400(aws: Aws) -> None:
    status, answer = call_json(http_event("POST", "/webhooks", body={"url": "http://example.com/hooks"}))

    assert status == 400 and "https://" in answer["error"]["message"]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://169.254.169.254/latest/meta-data/", "169.254.169.254 is a cloud metadata service"),
        ("https://[::ffff:127.0.0.1]/", "::ffff:7f00:1 is an IPv4-mapped address (of 127.0.0.1)"),
        ("https://0x7f000001/", "127.0.0.1 is a loopback address"),
        ("https://10.1/", "10.0.0.1 is a private address"),
        ("https://rebound.example/h", "host rebound.example resolves to 10.0.0.1, a private address"),
        ("https://localhost/", "host localhost resolves to 127.0.0.1, a loopback address"),
        ("https://nowhere.example/", "host nowhere.example cannot be resolved"),
    ],
)
def test_GIVEN_a_url_reaching_inside_WHEN_registered_THEN_400_with_the_reason_and_nothing_stored(
    aws: Aws, url: str, reason: str
) -> None:
    status, answer = call_json(http_event("POST", "/webhooks", body={"url": url}))
    _, listed = call_json(http_event("GET", "/webhooks"))

    assert status == 400 and answer["error"] == {"code": "DESTINATION_REFUSED", "message": reason}
    assert listed == {"webhooks": []}


def test_GIVEN_local_receivers_allowed_WHEN_the_stacks_own_endpoint_is_registered_THEN_400(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a deployment allowing http and a receiver on localhost:8123, and the API at 127.0.0.1:4566
    monkeypatch.setenv("WEBHOOK_ALLOW_HTTP", "true")
    monkeypatch.setenv("WEBHOOK_ALLOWED_HOSTS", "127.0.0.1:8123, localhost:8123 127.0.0.1:4566")
    _clear_caches()

    allowed, _ = call_json(http_event("POST", "/webhooks", body={"url": "http://localhost:8123/hooks"}))
    other_port, _ = call_json(http_event("POST", "/webhooks", body={"url": "http://localhost:8124/hooks"}))
    itself, answer = call_json(http_event("POST", "/webhooks", body={"url": "http://127.1:4566/_ministack/reset"}))

    assert (allowed, other_port, itself) == (201, 400, 400)
    assert answer["error"]["message"] == "127.0.0.1 is this stack's own endpoint (port 4566)"


def test_GIVEN_alices_webhook_WHEN_bob_lists_or_deletes_it_THEN_he_sees_nothing_and_it_stays(aws: Aws) -> None:
    _, registered = call_json(http_event("POST", "/webhooks", body={"url": "https://example.com/hooks"}))
    path = f"/webhooks/{registered['webhook_id']}"

    _, bobs = call_json(http_event("GET", "/webhooks", user="bob"))
    bobs_status, bobs_answer = call_json(http_event("DELETE", path, user="bob"))
    alices_status, _ = call_json(http_event("DELETE", path))
    again_status, _ = call_json(http_event("DELETE", path))

    assert bobs == {"webhooks": []}
    assert bobs_status == 404 and bobs_answer["error"]["code"] == "WEBHOOK_NOT_FOUND"
    assert (alices_status, again_status) == (200, 404)


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
