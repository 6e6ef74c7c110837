"""Chunk orders go to the chunk queue one message group per job (vidpipe.adapters.chunk_queue),
the tenant key SQS fair queues balance, and read back as the same orders."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.moto_resources import REGION, use_fake_credentials
from vidpipe.adapters.chunk_queue import SqsChunkQueue, chunk_order_message
from vidpipe.domain.errors import QueueError
from vidpipe.domain.events import ChunkRequested, parse_chunk_work


@pytest.fixture
def sqs(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    use_fake_credentials(monkeypatch)
    with mock_aws():
        yield boto3.client("sqs", region_name=REGION)


def order(job_id: str, index: int, total: int) -> ChunkRequested:
    task = {"index": index, "start_s": index * 32.0}
    return ChunkRequested(job_id, index, total, task, f"uploads/{job_id}/source", occurred_at="2026-12-03T12:00:00Z")


def test_GIVEN_a_chunk_order_WHEN_made_a_message_THEN_its_job_is_the_group_and_the_body_reads_back() -> None:
    chunk = order("job-a", 3, 10)

    message = chunk_order_message(chunk, "https://sqs.example/chunks")

    assert message["MessageGroupId"] == "job-a"
    assert message["QueueUrl"] == "https://sqs.example/chunks"
    assert parse_chunk_work(json.loads(message["MessageBody"])) == chunk


def test_GIVEN_a_long_job_and_a_short_one_WHEN_their_orders_are_queued_THEN_each_job_is_one_group_of_its_own(
    sqs: Any,
) -> None:
    # A standard queue, as the template's ChunkQueue: with group ids it is a fair queue on AWS.
    url = sqs.create_queue(QueueName="chunks")["QueueUrl"]
    queue = SqsChunkQueue(sqs, url)
    for index in range(50):
        queue.send(order("long-job", index, 50))
    for index in range(5):
        queue.send(order("short-job", index, 5))

    groups: Counter[str] = Counter()
    while messages := sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["MessageGroupId"]
    ).get("Messages"):
        for message in messages:
            work = parse_chunk_work(json.loads(message["Body"]))
            assert message["Attributes"]["MessageGroupId"] == work.job_id
            groups[work.job_id] += 1
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    assert groups == {"long-job": 50, "short-job": 5}


def test_GIVEN_a_queue_that_is_gone_WHEN_an_order_is_sent_THEN_queue_error(sqs: Any) -> None:
    queue = SqsChunkQueue(sqs, "https://sqs.us-east-1.amazonaws.com/123456789012/missing")

    with pytest.raises(QueueError, match="chunk 0 of job job-a"):
        queue.send(order("job-a", 0, 1))
