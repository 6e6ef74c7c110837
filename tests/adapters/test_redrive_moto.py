"""vidpipe redrive against moto's SQS: dead-lettered messages go back, none lost."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.moto_resources import use_fake_credentials
from vidpipe_cli.redrive import QUEUES, dead_letter_counts, redrive


@pytest.fixture
def queues(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, dict[str, str]]]:
    use_fake_credentials(monkeypatch)
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        outputs = {}
        for name, (source_output, dead_letter_output) in QUEUES.items():
            outputs[source_output] = sqs.create_queue(QueueName=name)["QueueUrl"]
            outputs[dead_letter_output] = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
        yield sqs, outputs


def bodies(sqs: Any, url: str) -> list[str]:
    found = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        found += [m["Body"] for m in batch]
        for m in batch:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return sorted(found)


def test_GIVEN_dead_lettered_messages_WHEN_redriven_THEN_each_is_back_on_its_source_queue_once(queues) -> None:
    sqs, outputs = queues
    sent = [f'{{"n": {i}}}' for i in range(23)]
    for body in sent:
        sqs.send_message(QueueUrl=outputs["TranscodeDeadLetterQueueUrl"], MessageBody=body)
    sqs.send_message(QueueUrl=outputs["StatusDeadLetterQueueUrl"], MessageBody='{"status": 1}')
    assert dead_letter_counts(sqs, outputs) == {
        "transcode": 23,
        "thumbnails": 0,
        "chunk": 0,
        "status": 1,
        "webhooks": 0,
    }

    results = redrive(sqs, outputs, ["transcode"])

    assert [(r.queue, r.moved) for r in results] == [("transcode", 23)]
    assert bodies(sqs, outputs["TranscodeQueueUrl"]) == sorted(sent)
    assert dead_letter_counts(sqs, outputs) == {"transcode": 0, "thumbnails": 0, "chunk": 0, "status": 1, "webhooks": 0}
