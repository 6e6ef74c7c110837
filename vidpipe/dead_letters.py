"""Looking into the stage functions' dead-letter queues without taking anything out.

A stage reports a job FAILED itself on its last attempt, except when that
attempt dies without a word (killed, past Lambda's timeout): then the message
reaches the dead-letter queue and nothing has told the job. The sweep asks this
adapter which jobs have a message waiting there and fails them with the reason.
The messages stay where they are, for ``vidpipe redrive``.

What can go wrong: SQS errors become ``QueueError``; a message that is not an
upload event of ours is skipped (it names no job)."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from vidpipe.errors import QueueError, ValidationFailed
from vidpipe.events import parse_object_created

# Each look receives at most 10 messages; a few looks see a small queue whole,
# and the next sweep sees the rest of a large one.
LOOKS_PER_QUEUE = 10


class DeadLetterQueues:
    """The stages' dead-letter queues, by stage name (``{"transcode": url}``)."""

    def __init__(self, sqs: Any, queue_urls: dict[str, str]) -> None:
        self._sqs = sqs
        self.queue_urls = queue_urls

    def stranded_jobs(self) -> dict[str, str]:
        """``{job_id: stage}`` for every job with a message in a stage's dead-letter queue.

        Messages are received with a visibility timeout of 0, so each stays
        visible and in place; SQS may then show the same message twice, which
        only repeats a key here."""
        stranded: dict[str, str] = {}
        for stage, url in self.queue_urls.items():
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
    try:
        return parse_object_created(json.loads(body)).job_id
    except (json.JSONDecodeError, ValidationFailed, AttributeError, TypeError):
        return None
