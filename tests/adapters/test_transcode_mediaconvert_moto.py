"""The transcode function with TRANSCODE_BACKEND=mediaconvert (moto for S3 and
EventBridge, real ffprobe, botocore's MediaConvert model for the request): the
upload is probed, the job submitted with the template's role, and the stage
left RUNNING for MediaConvert's own events to finish."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.validate import ParamValidator
from moto import mock_aws

import transcode.handlers.transcode as transcode_handler
from tests.adapters.api.api_requests import FakeLambdaContext, clear_caches
from tests.moto_resources import REGION, create_jobs_table, use_fake_credentials
from vidpipe.adapters.job_store import DynamoJobStore
from vidpipe.adapters.usage_store import DynamoUsageStore
from vidpipe.domain.events import parse_object_created
from vidpipe.domain.job_transitions import apply_event
from vidpipe.domain.jobs import Job
from vidpipe.domain.mediaconvert_events import META_JOB_ID, META_STACK
from vidpipe.runtime.settings import get_settings

pytestmark = pytest.mark.ffmpeg

EVENTS = Path(__file__).resolve().parents[1] / "events"
SAMPLE = Path(__file__).resolve().parents[2] / "sample_media" / "portrait_rotated.mp4"
JOB_ID = "3f2b8c1e7d4a4e2b9c612a5d8e0f4b17"
UPLOADS, OUTPUTS, BUS = "vidpipe-uploads-test", "vidpipe-outputs-test", "vidpipe-test-events"
ROLE = "arn:aws:iam::111122223333:role/vidpipe-MediaConvertRole-1A2B3C"


class RecordingMediaConvert:
    """A mediaconvert client that checks each request against botocore's model."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self._shape = (
            boto3.client("mediaconvert", region_name=REGION).meta.service_model.operation_model("CreateJob").input_shape
        )

    def create_job(self, **request: Any) -> dict[str, Any]:
        report = ParamValidator().validate(request, self._shape)
        assert not report.has_errors(), report.generate_report()
        self.requests.append(request)
        return {"Job": {"Id": "1671476818694-phptj0"}}


@pytest.fixture
def mediaconvert(monkeypatch: pytest.MonkeyPatch) -> Iterator[RecordingMediaConvert]:
    use_fake_credentials(monkeypatch)
    for name, value in {
        "JOBS_TABLE": "jobs",
        "UPLOADS_BUCKET": UPLOADS,
        "OUTPUTS_BUCKET": OUTPUTS,
        "EVENT_BUS_NAME": BUS,
        "TRANSCODE_BACKEND": "mediaconvert",
        "MEDIACONVERT_ROLE_ARN": ROLE,
        "STACK_NAME": "vidpipe-prod",
        "LADDER_RUNGS": "720:2800,360:800",
    }.items():
        monkeypatch.setenv(name, value)
    clear_caches()
    recording = RecordingMediaConvert()
    monkeypatch.setattr(transcode_handler, "mediaconvert_client", lambda: recording)
    with mock_aws():
        create_jobs_table(boto3.client("dynamodb", region_name=REGION), "jobs")
        yield recording
    clear_caches()


def sqs_event_for_upload(written: dict[str, Any]) -> dict[str, Any]:
    """S3's event for the PutObject answer ``written`` (its ETag and version)."""
    upload = json.loads((EVENTS / "s3_object_created.json").read_text())
    upload["detail"]["bucket"]["name"] = UPLOADS
    upload["detail"]["object"].update(
        key=f"uploads/{JOB_ID}/source",
        etag=written["ETag"].strip('"'),
        size=SAMPLE.stat().st_size,
        **{"version-id": written["VersionId"]},
    )
    record = copy.deepcopy(json.loads((EVENTS / "sqs_record_transcode_completed.json").read_text())["Records"][0])
    record["body"] = json.dumps(upload)
    return {"Records": [record]}


def create_accepted_job(written: dict[str, Any]) -> None:
    """The job, owned by alice (the probed minutes are charged to her day), whose
    status function accepted the write ``written`` of its key (the stage reads that decision)."""
    awaiting = Job.new(
        JOB_ID,
        filename="clip.mp4",
        content_type="video/mp4",
        size=SAMPLE.stat().st_size,
        now="2025-03-14T09:00:00Z",
        owner="alice",
    )
    upload_event = json.loads(sqs_event_for_upload(written)["Records"][0]["body"])
    jobs = DynamoJobStore(boto3.client("dynamodb", region_name=REGION), "jobs")
    jobs.create(apply_event(awaiting, parse_object_created(upload_event)))


def uploaded_and_accepted() -> tuple[Any, Any, str, dict[str, Any]]:
    """The buckets (the uploads one keeps versions, as the template's does), the
    sample written as the job's upload and accepted by its job, and a queue that
    receives every event the stage publishes: (s3, sqs, that queue's URL, the write)."""
    s3, events, sqs = (boto3.client(name, region_name=REGION) for name in ("s3", "events", "sqs"))
    for bucket in (UPLOADS, OUTPUTS):
        s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=UPLOADS, VersioningConfiguration={"Status": "Enabled"})
    written = s3.put_object(Bucket=UPLOADS, Key=f"uploads/{JOB_ID}/source", Body=SAMPLE.read_bytes())
    create_accepted_job(written)
    events.create_event_bus(Name=BUS)
    queue = sqs.create_queue(QueueName="published")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="all", EventBusName=BUS, EventPattern=json.dumps({"source": [{"prefix": "vidpipe."}]}))
    events.put_targets(Rule="all", EventBusName=BUS, Targets=[{"Id": "q", "Arn": queue_arn}])
    return s3, sqs, queue, written


def test_GIVEN_the_mediaconvert_backend_WHEN_an_upload_arrives_THEN_one_job_is_submitted_from_the_probed_ladder(
    mediaconvert: RecordingMediaConvert,
) -> None:
    s3, sqs, queue, written = uploaded_and_accepted()

    # ... and the key is written again before MediaConvert reads it (a re-sent POST)
    s3.put_object(Bucket=UPLOADS, Key=f"uploads/{JOB_ID}/source", Body=b"swapped in later")

    response = transcode_handler.lambda_handler(sqs_event_for_upload(written), FakeLambdaContext())

    assert response == {"batchItemFailures": []}
    [request] = mediaconvert.requests
    assert request["Role"] == ROLE
    assert request["UserMetadata"][META_JOB_ID] == JOB_ID
    assert request["UserMetadata"][META_STACK] == "vidpipe-prod"
    # MediaConvert's s3:// input names no version: it reads a copy of the accepted one.
    pinned_key = f"chunks/{JOB_ID}/mediaconvert-source"
    assert request["Settings"]["Inputs"][0]["FileInput"] == f"s3://{UPLOADS}/{pinned_key}"
    assert s3.get_object(Bucket=UPLOADS, Key=pinned_key)["Body"].read() == SAMPLE.read_bytes()
    hls = request["Settings"]["OutputGroups"][0]
    assert hls["OutputGroupSettings"]["HlsGroupSettings"]["Destination"] == f"s3://{OUTPUTS}/jobs/{JOB_ID}/hls/master"
    # The deployment's ladder (LADDER_RUNGS), portrait because the clip is rotated.
    assert [
        (o["NameModifier"], o["VideoDescription"]["Width"] < o["VideoDescription"]["Height"]) for o in hls["Outputs"]
    ] == [("_720p", True), ("_360p", True)]
    # Nothing was encoded or uploaded here, and the stage is left running.
    assert s3.list_objects_v2(Bucket=OUTPUTS).get("KeyCount", 0) == 0
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    kinds = [json.loads(m["Body"])["detail-type"] for m in messages]
    assert kinds == ["Transcode Started", "Transcode Progress"]
    probed = json.loads(messages[1]["Body"])["detail"]["source"]
    assert probed["width"] < probed["height"]


def test_GIVEN_an_owner_whose_days_minutes_are_used_up_WHEN_the_upload_is_probed_THEN_transcode_fails_quota_exceeded(
    mediaconvert: RecordingMediaConvert, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAX_VIDEO_MINUTES_PER_OWNER_PER_DAY", "1")
    get_settings.cache_clear()
    s3, sqs, queue, written = uploaded_and_accepted()
    # GIVEN alice's minute of today went to another video
    usage = DynamoUsageStore(boto3.client("dynamodb", region_name=REGION), "jobs")
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    assert usage.add_video_seconds_once("alice", today, "earlier-job", 60, limit=60)

    response = transcode_handler.lambda_handler(sqs_event_for_upload(written), FakeLambdaContext())

    # THEN the message is handled (no retry could help before midnight), nothing
    # was submitted, and the job is told why.
    assert response == {"batchItemFailures": []}
    assert mediaconvert.requests == []
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    failed = [json.loads(m["Body"]) for m in messages if json.loads(m["Body"])["detail-type"] == "Transcode Failed"]
    [error] = [event["detail"]["error"] for event in failed]
    assert error["code"] == "QUOTA_EXCEEDED"
    assert "00:00 UTC" in error["message"]
