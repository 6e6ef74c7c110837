"""The HTTP API Lambda end to end in one process: API Gateway HTTP API (payload 2.0)
events in, real S3 and DynamoDB calls against moto."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from moto import mock_aws

from tests.moto_resources import create_jobs_table, use_fake_credentials
from vidpipe import aws_clients, settings
from vidpipe.events import Stage
from vidpipe.job_store import DynamoJobStore
from vidpipe.jobs import Job, JobStatus, StageState, StageStatus

EVENTS = Path(__file__).parent.parent / "events"
REGION = "us-east-1"
TABLE = "vidpipe-test-jobs"
UPLOADS_BUCKET = "vidpipe-test-uploads"
OUTPUTS_BUCKET = "vidpipe-test-outputs"
API_URL = "http://127.0.0.1:4566/_aws/execute-api/vidpipe"
JOB_ID = "3f2b8c1e7d4a4e2b9c612a5d8e0f4b17"

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
    invoked_function_arn: str = (
        "arn:aws:lambda:us-east-1:111122223333:function:vidpipe-UploadApiFunction-4mUe1GQ9sCtY"
    )
    aws_request_id: str = "6f1c8a2e-4b7d-4e0a-9d3c-2b5e8f7a1c90"

    def get_remaining_time_in_millis(self) -> int:
        return 14_000


def _clear_caches() -> None:
    settings.get_settings.cache_clear()
    aws_clients.s3_client.cache_clear()
    aws_clients.dynamodb_client.cache_clear()
    aws_clients.events_client.cache_clear()


@dataclass
class Aws:
    s3: Any
    dynamodb: Any

    @property
    def jobs(self) -> DynamoJobStore:
        return DynamoJobStore(self.dynamodb, TABLE)


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
        "UPLOAD_URL_TTL_SECONDS": "900",
        "OUTPUT_URL_TTL_SECONDS": "600",
    }.items():
        monkeypatch.setenv(name, value)
    _clear_caches()
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=UPLOADS_BUCKET)
        s3.create_bucket(Bucket=OUTPUTS_BUCKET)
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        create_jobs_table(dynamodb, TABLE)
        yield Aws(s3=s3, dynamodb=dynamodb)
    _clear_caches()


def http_event(method: str, path: str, *, body: Any = None, query: dict[str, str] | None = None) -> dict[str, Any]:
    """The recorded POST /uploads event, turned into another request."""
    event: dict[str, Any] = json.loads((EVENTS / "http_api_post_uploads.json").read_text())
    event = copy.deepcopy(event)
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


def post_upload(**overrides: Any) -> tuple[int, dict[str, Any]]:
    body = {"filename": "holiday.mp4", "content_type": "video/mp4", "size": 7_340_032, **overrides}
    return call_json(http_event("POST", "/uploads", body=body))


def transcoded_job(aws: Aws, job_id: str = JOB_ID) -> Job:
    """A job whose transcode finished, with its playlists in the outputs bucket."""
    prefix = f"jobs/{job_id}/hls/"
    job = Job.new(job_id, filename="holiday.mp4", content_type="video/mp4", size=7_340_032,
                  now="2025-03-14T09:26:41.000000Z")
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
    assert aws.jobs.list_recent()[0] == []


def test_GIVEN_a_text_file_WHEN_posted_THEN_415_and_no_job(aws: Aws) -> None:
    status, response = post_upload(filename="notes.txt", content_type="text/plain")

    assert status == 415
    assert response["error"]["code"] == "UNSUPPORTED_MEDIA_TYPE"
    assert "text/plain" in response["error"]["message"]
    assert aws.jobs.list_recent()[0] == []


def test_GIVEN_a_file_over_the_limit_WHEN_posted_THEN_413_and_no_job(aws: Aws) -> None:
    status, response = post_upload(size=100 * 1024 * 1024 + 1)

    assert status == 413
    assert response["error"]["code"] == "UPLOAD_TOO_LARGE"
    assert aws.jobs.list_recent()[0] == []


# ------------------------------------------------------------------ GET /jobs


def test_GIVEN_jobs_created_at_different_times_WHEN_listed_THEN_newest_first(aws: Aws) -> None:
    for n, minute in enumerate([10, 30, 20]):
        aws.jobs.create(Job.new(f"job-{n}", filename=f"{n}.mp4", content_type="video/mp4", size=1,
                                now=f"2025-03-14T09:{minute}:00.000000Z"))

    status, body = call_json(http_event("GET", "/jobs"))

    assert status == 200
    assert [job["job_id"] for job in body["jobs"]] == ["job-1", "job-2", "job-0"]
    assert body["next_token"] is None


def test_GIVEN_more_jobs_than_the_limit_WHEN_listed_THEN_pages_follow_with_next_token(aws: Aws) -> None:
    for n in range(3):
        aws.jobs.create(Job.new(f"job-{n}", filename="a.mp4", content_type="video/mp4", size=1,
                                now=f"2025-03-14T09:0{n}:00.000000Z"))

    _, first = call_json(http_event("GET", "/jobs", query={"limit": "2"}))
    _, second = call_json(http_event("GET", "/jobs", query={"limit": "2", "next_token": first["next_token"]}))

    assert [job["job_id"] for job in first["jobs"]] == ["job-2", "job-1"]
    assert [job["job_id"] for job in second["jobs"]] == ["job-0"]


@pytest.mark.parametrize("query", [{"limit": "many"}, {"next_token": "bm90LWEtdG9rZW4="}])
def test_GIVEN_a_bad_limit_or_token_WHEN_listed_THEN_400(aws: Aws, query: dict[str, str]) -> None:
    status, body = call_json(http_event("GET", "/jobs", query=query))

    assert status == 400
    assert body["error"]["code"] == "VALIDATION_FAILED"


def test_GIVEN_an_unknown_job_id_WHEN_read_THEN_404_job_not_found(aws: Aws) -> None:
    status, body = call_json(http_event("GET", "/jobs/unknown"))

    assert status == 404
    assert body["error"]["code"] == "JOB_NOT_FOUND"


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


def test_GIVEN_a_transcoded_job_WHEN_read_THEN_its_hls_urls_point_at_the_api(aws: Aws) -> None:
    transcoded_job(aws)

    _, job = call_json(http_event("GET", f"/jobs/{JOB_ID}"))

    # PUBLIC_API_URL ends with a slash: the URLs still have a single one.
    assert job["outputs"]["hls_url"] == f"{API_URL}/jobs/{JOB_ID}/hls/master.m3u8"
    assert job["outputs"]["renditions"][0]["url"] == f"{API_URL}/jobs/{JOB_ID}/hls/360p/index.m3u8"


def test_GIVEN_a_transcoded_job_WHEN_the_master_playlist_is_requested_THEN_its_text_as_is(aws: Aws) -> None:
    transcoded_job(aws)

    status, headers, body = call(http_event("GET", f"/jobs/{JOB_ID}/hls/master.m3u8"))

    assert status == 200
    assert headers["content-type"] == "application/vnd.apple.mpegurl"
    assert "max-age=60" in headers["cache-control"]
    assert body == MASTER_PLAYLIST


def test_GIVEN_a_transcoded_job_WHEN_a_media_playlist_is_requested_THEN_segments_are_presigned_urls(aws: Aws) -> None:
    transcoded_job(aws)

    status, headers, body = call(http_event("GET", f"/jobs/{JOB_ID}/hls/360p/index.m3u8"))

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
    job = Job.new(JOB_ID, filename="a.mp4", content_type="video/mp4", size=1, now="2025-03-14T09:26:41.000000Z")
    prefix = f"jobs/{JOB_ID}/thumbnails/"
    job.stages[Stage.THUMBNAILS] = StageState(
        StageStatus.COMPLETED, 1.0,
        {"prefix": prefix, "poster": "poster.jpg", "sprite": "sprite.jpg", "storyboard": "storyboard.vtt"},
    )
    aws.jobs.create(job)
    aws.s3.put_object(Bucket=OUTPUTS_BUCKET, Key=prefix + "storyboard.vtt", Body=STORYBOARD.encode())

    status, headers, body = call(http_event("GET", f"/jobs/{JOB_ID}/thumbnails/storyboard.vtt"))

    assert status == 200
    assert headers["content-type"] == "text/vtt"
    lines = body.splitlines()
    assert lines[:3] == ["WEBVTT", "", "00:00:00.000 --> 00:00:05.000"]
    url, _, fragment = lines[3].partition("#")
    assert fragment == "xywh=0,0,160,90"
    assert urlsplit(url).path.endswith(f"/{prefix}sprite.jpg")
    assert "X-Amz-Signature" in parse_qs(urlsplit(url).query)


@pytest.mark.parametrize("rendition", ["..", "360p%2F..%2F..", "..%2F..%2Fthumbnails", "360P"])
def test_GIVEN_a_rendition_name_that_is_not_ours_WHEN_requested_THEN_404(aws: Aws, rendition: str) -> None:
    transcoded_job(aws)

    status, body = call_json(http_event("GET", f"/jobs/{JOB_ID}/hls/{rendition}/index.m3u8"))

    assert status == 404
    assert body["error"]["code"] == "JOB_NOT_FOUND"
    assert "no rendition" in body["error"]["message"]


@pytest.mark.parametrize("path", ["hls/master.m3u8", "hls/360p/index.m3u8", "thumbnails/storyboard.vtt"])
def test_GIVEN_a_job_not_yet_processed_WHEN_its_outputs_are_requested_THEN_404_job_not_found(
    aws: Aws, path: str
) -> None:
    _, created = post_upload()

    status, body = call_json(http_event("GET", f"/jobs/{created['job_id']}/{path}"))

    assert status == 404
    assert body["error"]["code"] == "JOB_NOT_FOUND"
    assert "outputs yet" in body["error"]["message"]


@pytest.mark.parametrize("path", ["hls/master.m3u8", "hls/360p/index.m3u8"])
def test_GIVEN_an_unknown_job_WHEN_its_playlists_are_requested_THEN_404_job_not_found(aws: Aws, path: str) -> None:
    status, body = call_json(http_event("GET", f"/jobs/unknown/{path}"))

    assert status == 404
    assert body["error"]["code"] == "JOB_NOT_FOUND"
