"""EventBridgePublisher against moto's EventBridge, read back through an SQS target."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from tests.moto_resources import use_fake_credentials
from vidpipe.adapters.event_bus import EventBridgePublisher
from vidpipe.domain.errors import EventPublishError
from vidpipe.domain.events import JobFinished, Stage, StageEvent, StageEventKind
from vidpipe.domain.inbound_events import parse_sqs_body

BUS = "vidpipe-test"
JOB_ID = "a4a7c0de-1f2e-4b3c-8d9e-0f1a2b3c4d5e"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Any, str]]:
    """An events client, an SQS client and the URL of a queue that gets every vidpipe event on the bus."""
    use_fake_credentials(monkeypatch)
    with mock_aws():
        events = boto3.client("events", region_name="us-east-1")
        sqs = boto3.client("sqs", region_name="us-east-1")
        events.create_event_bus(Name=BUS)
        queue_url = sqs.create_queue(QueueName="status")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(
            Name="all-vidpipe", EventBusName=BUS, EventPattern=json.dumps({"source": [{"prefix": "vidpipe."}]})
        )
        events.put_targets(Rule="all-vidpipe", EventBusName=BUS, Targets=[{"Id": "status", "Arn": queue_arn}])
        yield events, sqs, queue_url


def received(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(message["Body"]) for message in messages]


def test_GIVEN_a_stage_event_WHEN_published_THEN_the_status_queue_gets_it_and_parses_it_back(
    aws: tuple[Any, Any, str],
) -> None:
    events, sqs, queue_url = aws
    event = StageEvent(job_id=JOB_ID, stage=Stage.TRANSCODE, kind=StageEventKind.PROGRESS, progress=0.42)

    EventBridgePublisher(events, BUS, "vidpipe.transcode").publish(event)

    [delivered] = received(sqs, queue_url)
    assert delivered["source"] == "vidpipe.transcode"
    assert delivered["detail-type"] == "Transcode Progress"
    assert delivered["detail"] == event.detail()
    assert parse_sqs_body(json.dumps(delivered)) == event


def test_GIVEN_a_finished_job_WHEN_published_THEN_job_failed_carries_the_error(
    aws: tuple[Any, Any, str],
) -> None:
    events, sqs, queue_url = aws
    error = {"code": "CORRUPT_MEDIA", "message": "no video frames"}

    EventBridgePublisher(events, BUS, "vidpipe.status").publish(JobFinished(JOB_ID, "FAILED", error))

    [delivered] = received(sqs, queue_url)
    assert delivered["detail-type"] == "Job Failed"
    assert delivered["detail"]["job_id"] == JOB_ID
    assert delivered["detail"]["error"] == error


def test_GIVEN_no_such_bus_WHEN_publishing_THEN_event_publish_error(aws: tuple[Any, Any, str]) -> None:
    events, _, _ = aws
    publisher = EventBridgePublisher(events, "no-such-bus", "vidpipe.transcode")

    with pytest.raises(EventPublishError, match=JOB_ID) as raised:
        publisher.publish(StageEvent(job_id=JOB_ID, stage=Stage.TRANSCODE, kind=StageEventKind.STARTED))

    assert raised.value.__cause__ is not None


def test_GIVEN_eventbridge_rejects_the_entry_WHEN_publishing_THEN_event_publish_error_with_its_reason(
    aws: tuple[Any, Any, str],
) -> None:
    # moto only rejects entries that lack a field, which ours never do: stub the answer instead.
    events, _, _ = aws
    stubber = Stubber(events)
    stubber.add_response(
        "put_events",
        {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "ThrottlingException", "ErrorMessage": "slow down"}]},
    )
    publisher = EventBridgePublisher(events, BUS, "vidpipe.thumbnails")

    with stubber, pytest.raises(EventPublishError, match="ThrottlingException"):
        publisher.publish(StageEvent(job_id=JOB_ID, stage=Stage.THUMBNAILS, kind=StageEventKind.COMPLETED))


def test_GIVEN_a_source_outside_our_prefix_WHEN_building_a_publisher_THEN_it_is_refused(
    aws: tuple[Any, Any, str],
) -> None:
    events, _, _ = aws

    with pytest.raises(ValueError, match="vidpipe."):
        EventBridgePublisher(events, BUS, "transcode")
