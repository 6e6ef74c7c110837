"""Looking into the stage functions' dead-letter queues without taking anything out.

A stage reports a job FAILED itself on its last attempt, except when that
attempt dies without a word (killed, past Lambda's timeout): then the message
reaches the dead-letter queue and nothing has told the job. The sweep asks this
adapter which jobs have a message waiting there and fails them with the reason.
The messages stay where they are, for ``vidpipe redrive``.

What can go wrong: SQS errors become ``QueueError``; a message that names no
job is skipped."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from vidpipe.domain.errors import QueueError, ValidationFailed
from vidpipe.domain.events import parse_object_created
from vidpipe.domain.mediaconvert_events import META_JOB_ID

# Each look receives at most 10 messages; a few looks see a small queue whole,
# and the next sweep sees the rest of a large one.
LOOKS_PER_QUEUE = 10


class DeadLetterQueues:
    """The stages' dead-letter queues as ``(stage, queue URL)`` pairs; a stage
    may have several (the transcode stage's own and its chunks')."""

    def __init__(self, sqs: Any, queues: Iterable[tuple[str, str]]) -> None:
        self._sqs = sqs
        self.queues = tuple(queues)

    def stranded_jobs(self) -> dict[str, str]:
        """``{job_id: stage}`` for every job with a message in a stage's dead-letter queue.

        Messages are received with a visibility timeout of 0, so each stays
        visible and in place; SQS may then show the same message twice, which
        only repeats a key here."""
        stranded: dict[str, str] = {}
        for stage, url in self.queues:
            for _ in range(LOOKS_PER_QUEUE):
                try:
                    messages = self._sqs.receive_message(
                        QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0, WaitTimeSeconds=0
                    ).get("Messages", [])
                except (BotoCoreError, ClientError) as exc:
                    raise QueueError(f"could not read the {stage} dead-letter queue: {exc}") from exc
                if not messages:
                    break
                for message in messages:
                    job_id = _job_id_of(message.get("Body", ""))
                    if job_id:
                        stranded[job_id] = stage
        return stranded


def _job_id_of(body: str) -> str | None:
    """The job of an upload event (transcode, thumbnails), of one of our own
    events that names it (a chunk or stitch order), or of a MediaConvert state change."""
    try:
        event = json.loads(body)
    except json.JSONDecodeError:
        return None
    try:
        return parse_object_created(event).job_id
    except (ValidationFailed, AttributeError, TypeError):
        pass
    detail = event.get("detail") if isinstance(event, dict) else None
    if not isinstance(detail, dict):
        return None
    # A MediaConvert state change (thumbnails from frame captures) names the job in its user metadata.
    metadata = detail.get("userMetadata")
    job_id = detail.get("job_id") or (metadata.get(META_JOB_ID) if isinstance(metadata, dict) else None)
    return job_id if isinstance(job_id, str) and job_id else None
