"""Sending "Chunk Requested" orders straight to the chunk queue, one message
group per job.

Why not through the bus like the other events: the chunk queue is shared by
every long video being transcoded, and its consumers are bounded (the event
source mapping's MaximumConcurrency), so a job of 500 chunks queued ahead of a
job of 5 would hold every chunk function until it is done. On AWS a standard
queue whose messages carry a ``MessageGroupId`` is a *fair queue*: when one
group (here one job) takes a disproportionate share of the consumers' time or
of the messages in flight, SQS hands out the other groups' messages first.
EventBridge can only give an SQS target one fixed group id, not one per job,
so the planner sends the orders itself. The message body is the envelope
EventBridge would have delivered, so the chunk-encode function reads orders
and stitch requests (which still come through the bus) the same way.

What can go wrong: :class:`~vidpipe.domain.errors.QueueError` when SQS refuses the
message (the transcode attempt then fails and is retried; orders are
idempotent, so orders sent before the failure may be sent twice).
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from vidpipe.domain.errors import QueueError
from vidpipe.domain.events import CHUNKS_SOURCE, ChunkRequested


def chunk_order_message(order: ChunkRequested, queue_url: str) -> dict[str, Any]:
    """The SendMessage request for ``order``: the bus's envelope as the body,
    the job id as the message group (the tenant a fair queue balances)."""
    envelope = {"source": CHUNKS_SOURCE, "detail-type": order.detail_type, "detail": order.detail()}
    return {"QueueUrl": queue_url, "MessageBody": json.dumps(envelope), "MessageGroupId": order.job_id}


class SqsChunkQueue:
    """The chunk queue, through a boto3 SQS client."""

    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self.queue_url = queue_url

    def send(self, order: ChunkRequested) -> None:
        """Queue one chunk order. Raises QueueError."""
        try:
            self._client.send_message(**chunk_order_message(order, self.queue_url))
        except (BotoCoreError, ClientError) as exc:
            raise QueueError(f"cannot queue chunk {order.index} of job {order.job_id}: {exc}") from exc
