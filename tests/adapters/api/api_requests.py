"""Requests to the HTTP API Lambda in one process, shared by the tests of its
routes: API Gateway HTTP API (payload 2.0) events in, real S3, DynamoDB and
Secrets Manager calls against moto (the ``aws`` fixture of this folder's conftest).

Requests behind the authorizer carry ``requestContext.authorizer.lambda.user``,
as API Gateway passes on what the authorizer answered; the public routes (the
page, a job's playlists and storyboard) carry no authorizer context."""

from __future__ import annotations

import base64
import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import vidpipe.adapters.secrets as access
from upload_api.routes import stores
from vidpipe.adapters import aws_clients
from vidpipe.adapters.job_store import DynamoJobStore
from vidpipe.domain.access import API_TOKENS, OUTPUT_GRANTS, WEBHOOK_SIGNING, SigningKeys, mint_api_token
from vidpipe.domain.events import Stage
from vidpipe.domain.jobs import Job, JobStatus, StageState, StageStatus
from vidpipe.runtime import settings

EVENTS = Path(__file__).parents[2] / "events"
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


def clear_caches() -> None:
    settings.get_settings.cache_clear()
    aws_clients.s3_client.cache_clear()
    aws_clients.dynamodb_client.cache_clear()
    aws_clients.events_client.cache_clear()
    aws_clients.secrets_client.cache_clear()
    access.forget_signing_keys()
    stores.cdn_signing_key.cache_clear()


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
