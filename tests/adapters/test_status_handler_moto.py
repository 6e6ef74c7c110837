"""The status Lambda against moto, with the SQS event as Lambda hands it over:
each event goes into the job's timeline once, however often it is delivered,
and the write that finishes the job adds one "job.ready" entry."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from moto import mock_aws

from tests.moto_resources import REGION, create_job_events_table, create_jobs_table, use_fake_credentials
from vidpipe.adapters import aws_clients
from vidpipe.adapters.job_store import DynamoJobStore
from vidpipe.adapters.timeline_store import DynamoTimeline
from vidpipe.domain.events import Stage, StageEvent, StageEventKind
from vidpipe.domain.jobs import Job, JobStatus, StageStatus
from vidpipe.runtime import settings

EVENTS = Path(__file__).parent.parent / "events"
JOBS, TIMELINE, BUS = "vidpipe-test-jobs", "vidpipe-test-job-events", "vidpipe-test-events"
JOB_ID = "3f2b8c1e-7d4a-4e2b-9c61-2a5d8e0f4b17"  # the job of the recorded SQS event


@dataclass
class FakeLambdaContext:
    function_name: str = "vidpipe-StatusFunction-50765B94BC1EA"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:111122223333:function:vidpipe-StatusFunction-50765B94BC1EA"
    aws_request_id: str = "0b7e5c1a-status"

    def get_remaining_time_in_millis(self) -> int:
        return 25_000


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    use_fake_credentials(monkeypatch)
    for name, value in {
        "JOBS_TABLE": JOBS,
        "JOB_EVENTS_TABLE": TIMELINE,
        "EVENT_BUS_NAME": BUS,
        "UPLOADS_BUCKET": "u",
        "OUTPUTS_BUCKET": "o",
        "POWERTOOLS_SERVICE_NAME": "status",
    }.items():
        monkeypatch.setenv(name, value)
    settings.get_settings.cache_clear()
    aws_clients.dynamodb_client.cache_clear()
    aws_clients.events_client.cache_clear()
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        create_jobs_table(client, JOBS)
        create_job_events_table(client, TIMELINE)
        boto3.client("events", region_name=REGION).create_event_bus(Name=BUS)
        job = Job.new(JOB_ID, filename="a.mp4", content_type="video/mp4", size=10, now="2025-03-14T09:27:00Z")
        job.status = JobStatus.PROCESSING
        job.stages[Stage.THUMBNAILS].status = StageStatus.COMPLETED
        DynamoJobStore(client, JOBS).create(job)
        yield client
    settings.get_settings.cache_clear()
    aws_clients.dynamodb_client.cache_clear()
    aws_clients.events_client.cache_clear()


def sqs_event(*bodies: str) -> dict[str, Any]:
    recorded = json.loads((EVENTS / "sqs_record_transcode_completed.json").read_text())
    template = recorded["Records"][0]
    records = []
    for n, body in enumerate(bodies):
        record = copy.deepcopy(template)
        record["messageId"], record["body"] = f"m{n}", body
        records.append(record)
    return {"Records": records}


def test_GIVEN_the_completing_event_delivered_three_times_WHEN_handled_THEN_one_entry_and_one_job_ready(
    dynamodb: Any,
) -> None:
    from job_lifecycle.handlers.status import lambda_handler

    recorded = json.loads((EVENTS / "sqs_record_transcode_completed.json").read_text())
    body = recorded["Records"][0]["body"]

    answer = lambda_handler(sqs_event(body, body), FakeLambdaContext())
    lambda_handler(sqs_event(body), FakeLambdaContext())

    assert answer == {"batchItemFailures": []}
    entries = DynamoTimeline(dynamodb, TIMELINE).entries(JOB_ID)
    assert [(e.what, e.deliveries) for e in entries] == [("transcode.completed", 3), ("job.ready", 1)]
    assert entries[0].details["job_status"] == "READY"
    assert (entries[1].function, entries[1].request_id) == ("status", "0b7e5c1a-status")


def test_GIVEN_a_stage_event_carrying_its_trace_WHEN_handled_THEN_the_entry_names_the_stage_invocation(
    dynamodb: Any,
) -> None:
    from job_lifecycle.handlers.status import lambda_handler

    event = StageEvent(
        job_id=JOB_ID,
        stage=Stage.TRANSCODE,
        kind=StageEventKind.PROGRESS,
        progress=0.4,
        trace={"function": "transcode", "request_id": "req-t", "attempt": 2},
    )
    envelope = {
        "version": "0",
        "id": "x",
        "detail-type": event.detail_type,
        "source": "vidpipe.transcode",
        "time": "2025-03-14T09:27:41Z",
        "detail": event.detail(),
    }

    lambda_handler(sqs_event(json.dumps(envelope)), FakeLambdaContext())

    [entry] = DynamoTimeline(dynamodb, TIMELINE).entries(JOB_ID)
    assert (entry.what, entry.function, entry.request_id) == ("transcode.progress", "transcode", "req-t")
    assert entry.details["attempt"] == 2 and entry.details["progress"] == 0.4
    assert "job_status" not in entry.details  # PROCESSING before and after


class FlakyEventBridge:
    """An EventBridge client whose first PutEvents fails (throttled), as a stand-in
    for the bus the handler publishes to; it records what it accepted."""

    def __init__(self) -> None:
        self.calls = 0
        self.accepted: list[dict[str, Any]] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803 (boto3's name)
        self.calls += 1
        if self.calls == 1:
            from botocore.exceptions import ClientError

            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "PutEvents")
        self.accepted.extend(Entries)
        return {"FailedEntryCount": 0, "Entries": [{"EventId": f"eb-{self.calls}"}]}


def test_GIVEN_job_ready_cannot_be_published_WHEN_the_message_is_redelivered_THEN_it_is_published_then_once(
    dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from job_lifecycle.handlers import status

    bus = FlakyEventBridge()
    monkeypatch.setattr(status, "events_client", lambda: bus)
    body = json.loads((EVENTS / "sqs_record_transcode_completed.json").read_text())["Records"][0]["body"]

    # READY is saved, the publish is throttled: the (one-record) batch fails and SQS keeps the message.
    with pytest.raises(BatchProcessingError):
        status.lambda_handler(sqs_event(body), FakeLambdaContext())
    second = status.lambda_handler(sqs_event(body), FakeLambdaContext())  # SQS redelivers the message
    third = status.lambda_handler(sqs_event(body), FakeLambdaContext())  # and once more, a plain duplicate

    assert second == third == {"batchItemFailures": []}
    [published] = bus.accepted
    detail = json.loads(published["Detail"])
    assert (published["DetailType"], detail["status"]) == ("Job Ready", "READY")
    job = DynamoJobStore(dynamodb, JOBS).get(JOB_ID)
    assert detail["event_id"] == job.finished_event["id"] and not job.finished_event_pending


def test_GIVEN_a_job_holding_an_active_slot_WHEN_its_completing_event_is_handled_THEN_the_slot_is_free(
    dynamodb: Any,
) -> None:

    from job_lifecycle.handlers.status import lambda_handler
    from vidpipe.adapters.usage_store import DynamoUsageStore

    # GIVEN the job (owner "anonymous") and another of the same owner hold both slots
    usage = DynamoUsageStore(dynamodb, JOBS)
    assert usage.take_active_slot("anonymous", JOB_ID, limit=2)
    assert usage.take_active_slot("anonymous", "other-job", limit=2)
    body = json.loads((EVENTS / "sqs_record_transcode_completed.json").read_text())["Records"][0]["body"]

    lambda_handler(sqs_event(body), FakeLambdaContext())
    lambda_handler(sqs_event(body), FakeLambdaContext())  # a redelivery frees nothing more

    assert DynamoJobStore(dynamodb, JOBS).get(JOB_ID).status is JobStatus.READY
    assert usage.active_job_ids("anonymous") == {"other-job"}


def test_GIVEN_a_job_in_progress_WHEN_a_progress_event_is_handled_THEN_it_keeps_its_slot(dynamodb: Any) -> None:

    from job_lifecycle.handlers.status import lambda_handler
    from vidpipe.adapters.usage_store import DynamoUsageStore

    usage = DynamoUsageStore(dynamodb, JOBS)
    usage.take_active_slot("anonymous", JOB_ID, limit=2)
    event = StageEvent(job_id=JOB_ID, stage=Stage.TRANSCODE, kind=StageEventKind.PROGRESS, progress=0.4)
    envelope = {
        "version": "0",
        "id": "x",
        "detail-type": event.detail_type,
        "source": "vidpipe.transcode",
        "time": "2025-03-14T09:27:41Z",
        "detail": event.detail(),
    }

    lambda_handler(sqs_event(json.dumps(envelope)), FakeLambdaContext())

    assert usage.active_job_ids("anonymous") == {JOB_ID}
