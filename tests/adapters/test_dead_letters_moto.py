"""The sweep's look into the stages' dead-letter queues, against moto's SQS."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.moto_resources import use_fake_credentials
from vidpipe.adapters.dead_letters import DeadLetterQueues
from vidpipe.domain.errors import QueueError

UPLOAD_EVENT = json.loads((Path(__file__).parents[1] / "events" / "s3_object_created.json").read_text())


def upload_event(job_id: str) -> str:
    event = copy.deepcopy(UPLOAD_EVENT)
    event["detail"]["object"]["key"] = f"uploads/{job_id}/source"
    return json.dumps(event)


@pytest.fixture
def dead_letter_queues(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, dict[str, str]]]:
    use_fake_credentials(monkeypatch)
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        urls = {stage: sqs.create_queue(QueueName=f"{stage}-dlq")["QueueUrl"] for stage in ("transcode", "thumbnails")}
        yield sqs, urls


def test_GIVEN_dead_lettered_uploads_WHEN_looked_at_THEN_each_job_is_named_with_its_stage_and_nothing_is_taken(
    dead_letter_queues: tuple[Any, dict[str, str]],
) -> None:
    sqs, urls = dead_letter_queues
    for job_id in ("job-a", "job-b"):
        sqs.send_message(QueueUrl=urls["transcode"], MessageBody=upload_event(job_id))
    sqs.send_message(QueueUrl=urls["thumbnails"], MessageBody=upload_event("job-c"))
    sqs.send_message(QueueUrl=urls["thumbnails"], MessageBody="not an upload event")

    stranded = DeadLetterQueues(sqs, urls.items()).stranded_jobs()

    assert stranded == {"job-a": "transcode", "job-b": "transcode", "job-c": "thumbnails"}
    # every message is still there, visible, for `vidpipe redrive`
    for url, expected in ((urls["transcode"], 2), (urls["thumbnails"], 2)):
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert int(attributes["ApproximateNumberOfMessages"]) == expected
        assert int(attributes["ApproximateNumberOfMessagesNotVisible"]) == 0


def test_GIVEN_empty_dead_letter_queues_WHEN_looked_at_THEN_no_job(
    dead_letter_queues: tuple[Any, dict[str, str]],
) -> None:
    sqs, urls = dead_letter_queues
    assert DeadLetterQueues(sqs, urls.items()).stranded_jobs() == {}


def test_GIVEN_a_queue_that_does_not_exist_WHEN_looked_at_THEN_queue_error_naming_the_stage(
    dead_letter_queues: tuple[Any, dict[str, str]],
) -> None:
    sqs, urls = dead_letter_queues
    missing = {"transcode": urls["transcode"].replace("transcode-dlq", "gone")}
    with pytest.raises(QueueError, match="transcode dead-letter queue"):
        DeadLetterQueues(sqs, missing.items()).stranded_jobs()


def test_GIVEN_a_dead_lettered_chunk_order_WHEN_looked_at_THEN_its_job_is_named_under_its_stage(
    dead_letter_queues: tuple[Any, dict[str, str]],
) -> None:
    sqs, urls = dead_letter_queues
    chunk_queue = sqs.create_queue(QueueName="chunk-dlq")["QueueUrl"]
    order = {
        "version": "0",
        "detail-type": "Chunk Requested",
        "source": "vidpipe.transcode",
        "detail": {"version": 1, "job_id": "job-d", "index": 2, "total": 3},
    }
    sqs.send_message(QueueUrl=chunk_queue, MessageBody=json.dumps(order))

    stranded = DeadLetterQueues(sqs, [*urls.items(), ("transcode", chunk_queue)]).stranded_jobs()

    assert stranded == {"job-d": "transcode"}


def test_GIVEN_a_dead_lettered_mediaconvert_state_change_WHEN_looked_at_THEN_its_job_is_named(
    dead_letter_queues: tuple[Any, dict[str, str]],
) -> None:
    sqs, urls = dead_letter_queues
    complete = json.loads((Path(__file__).parents[1] / "events" / "mediaconvert_complete.json").read_text())
    sqs.send_message(QueueUrl=urls["thumbnails"], MessageBody=json.dumps(complete))

    stranded = DeadLetterQueues(sqs, urls.items()).stranded_jobs()

    assert stranded == {complete["detail"]["userMetadata"]["vidpipe_job_id"]: "thumbnails"}
