"""Send dead-lettered messages back to the queue they came from.

A message lands in a dead-letter queue after its consumer failed on every
attempt (a crash, a timeout, an outage, a bug since fixed). Once the cause is
fixed, ``vidpipe redrive`` puts each message back on its source queue, where
it is consumed as if it were new; every consumer is idempotent, so a message
that did partly succeed does no harm. A job the sweep failed from silence
(DEAD_LETTERED, STAGE_STALLED) becomes READY once its redriven stage completes;
a job failed by a stage's own report stays FAILED (the status function never
overrides a real failure).

What can go wrong: botocore errors are raised as they are (this is an
operator's command; the message says which call failed)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Stack outputs: (source queue, dead-letter queue) per consumer.
QUEUES = {
    "transcode": ("TranscodeQueueUrl", "TranscodeDeadLetterQueueUrl"),
    "thumbnails": ("ThumbnailsQueueUrl", "ThumbnailsDeadLetterQueueUrl"),
    "chunk": ("ChunkQueueUrl", "ChunkDeadLetterQueueUrl"),
    "status": ("StatusQueueUrl", "StatusDeadLetterQueueUrl"),
    "webhooks": ("WebhookQueueUrl", "WebhookDeadLetterQueueUrl"),
}


@dataclass(frozen=True)
class RedriveResult:
    queue: str
    moved: int


def redrive_queue(sqs: Any, *, dead_letter_url: str, source_url: str, limit: int = 10_000) -> int:
    """Move up to ``limit`` messages from the dead-letter queue to the source
    queue; returns how many. Each is sent before it is deleted, so a crash in
    between duplicates a message rather than losing it (consumers are idempotent)."""
    moved = 0
    while moved < limit:
        batch = sqs.receive_message(
            QueueUrl=dead_letter_url,
            MaxNumberOfMessages=min(10, limit - moved),
            WaitTimeSeconds=1,
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not batch:
            return moved
        for message in batch:
            sent: dict[str, Any] = {"QueueUrl": source_url, "MessageBody": message["Body"]}
            if message.get("MessageAttributes"):
                sent["MessageAttributes"] = message["MessageAttributes"]
            sqs.send_message(**sent)
            sqs.delete_message(QueueUrl=dead_letter_url, ReceiptHandle=message["ReceiptHandle"])
            moved += 1
    return moved


def dead_letter_counts(sqs: Any, outputs: dict[str, str]) -> dict[str, int]:
    """Messages waiting in each dead-letter queue (approximate, as SQS says)."""
    counts = {}
    for name, (_, dead_letter_output) in QUEUES.items():
        attributes = sqs.get_queue_attributes(
            QueueUrl=outputs[dead_letter_output], AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        counts[name] = int(attributes["ApproximateNumberOfMessages"])
    return counts


def redrive(sqs: Any, outputs: dict[str, str], queues: list[str]) -> list[RedriveResult]:
    results = []
    for name in queues:
        source_output, dead_letter_output = QUEUES[name]
        moved = redrive_queue(sqs, dead_letter_url=outputs[dead_letter_output], source_url=outputs[source_output])
        results.append(RedriveResult(queue=name, moved=moved))
    return results
