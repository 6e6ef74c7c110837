"""POST /uploads {source_url}: the job is recorded AWAITING_UPLOAD and its
import queued (moto SQS); a URL that leads inside is a 400 at once, nothing
recorded, nothing queued. Names are resolved by a stub: no DNS."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import boto3
import pytest

from tests.adapters.api.api_requests import REGION, Aws, call_json, http_event
from upload_api.routes import uploads
from vidpipe.adapters import aws_clients
from vidpipe.runtime import settings

ANSWERS = {
    "videos.example": ["93.184.215.14"],
    "rebound.example": ["93.184.215.14", "127.0.0.1"],
    "private.example": ["10.1.2.3"],
}


@pytest.fixture
def queue(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The import queue (its URL in the API's settings) and a stub resolver."""
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="vidpipe-test-imports")["QueueUrl"]
    monkeypatch.setenv("IMPORT_QUEUE_URL", url)
    monkeypatch.setenv("WEBHOOK_ALLOWED_HOSTS", "127.0.0.1:8123")
    settings.get_settings.cache_clear()
    aws_clients.sqs_client.cache_clear()

    def resolve(host: str, _port: int) -> Sequence[str]:
        return ANSWERS[host]

    monkeypatch.setattr(uploads, "resolve_host", resolve)
    yield sqs, url
    aws_clients.sqs_client.cache_clear()


def queued(queue: Any) -> list[dict[str, Any]]:
    sqs, url = queue
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(message["Body"]) for message in messages]


def post_import(url: str, user: str = "alice", **extra: Any) -> tuple[int, dict[str, Any]]:
    return call_json(http_event("POST", "/uploads", body={"source_url": url, **extra}, user=user))


def test_GIVEN_an_https_source_url_WHEN_posted_THEN_201_a_job_awaiting_its_source_and_its_import_queued(
    aws: Aws, queue: Any
) -> None:
    url = "https://videos.example/clips/holiday.mp4?X-Amz-Signature=secret"

    status, created = post_import(url)

    assert status == 201
    assert created["upload"] == {"method": "IMPORT", "source_url": url}
    job = aws.jobs.get(created["job_id"])
    assert (job.status.value, job.owner) == ("AWAITING_UPLOAD", "alice")
    assert job.source["filename"] == "holiday.mp4"
    assert job.upload == {"method": "IMPORT", "source_url": url}
    # The message names the job only: the URL (its signature a credential) stays in the record.
    assert queued(queue) == [{"job_id": created["job_id"]}]
    # The job shows where it comes from by scheme and host only, and to its owner only.
    status, shown = call_json(http_event("GET", f"/jobs/{created['job_id']}"))
    assert status == 200 and shown["source"]["imported_from"] == "https://videos.example"
    assert "secret" not in json.dumps(shown)
    assert call_json(http_event("GET", f"/jobs/{created['job_id']}", user="bob"))[0] == 404


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("https://[fd00:ec2::254]/latest/meta-data/", "metadata"),
        ("https://private.example/clip.mp4", "private"),
        ("https://rebound.example/clip.mp4", "loopback"),
        ("https://2130706433/clip.mp4", "loopback"),
        ("http://videos.example/clip.mp4", "https://"),
        ("http://127.0.0.1:9000/clip.mp4", "loopback"),
        ("file:///etc/passwd", "https://"),
    ],
)
def test_GIVEN_a_source_url_that_leads_inside_WHEN_posted_THEN_400_source_url_refused_and_nothing_recorded(
    aws: Aws, queue: Any, url: str, reason: str
) -> None:
    status, body = post_import(url)

    assert status == 400
    assert body["error"]["code"] == "SOURCE_URL_REFUSED"
    assert reason in body["error"]["message"]
    assert aws.job_count() == 0 and queued(queue) == []


def test_GIVEN_an_allowed_local_server_WHEN_posted_over_http_THEN_accepted(aws: Aws, queue: Any) -> None:
    status, created = post_import("http://127.0.0.1:8123/clip.mp4")

    assert status == 201
    assert queued(queue) == [{"job_id": created["job_id"]}]


@pytest.mark.parametrize(
    "body",
    [
        {"source_url": "https://videos.example/clip.mp4", "filename": "clip.mp4"},
        {"source_url": "https://videos.example/clip.mp4", "size": 10},
        {"filename": "clip.mp4", "content_type": "video/mp4"},
        {},
        {"source_url": 12},
        {"source_url": ""},
    ],
)
def test_GIVEN_a_body_that_is_neither_a_file_nor_a_url_WHEN_posted_THEN_400_with_the_reason(
    aws: Aws, queue: Any, body: dict[str, Any]
) -> None:
    status, answer = call_json(http_event("POST", "/uploads", body=body))

    assert status == 400
    assert answer["error"]["code"] == "VALIDATION_FAILED" and answer["error"]["message"]
    assert aws.job_count() == 0


def test_GIVEN_a_queue_that_refuses_WHEN_posted_THEN_503_and_the_job_ends_failed_not_waiting_a_day(
    aws: Aws, queue: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMPORT_QUEUE_URL", queue[1] + "-gone")
    settings.get_settings.cache_clear()

    status, body = post_import("https://videos.example/clip.mp4")

    assert status == 503
    assert body["error"]["code"] == "QUEUE_ERROR"
    (job,) = aws.jobs.list_recent("alice")[0]
    assert job.status.value == "FAILED" and job.error == {
        "code": "IMPORT_NOT_STARTED",
        "message": "the import could not be started; submit the URL again",
    }
