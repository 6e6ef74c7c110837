"""Sending "import job J" to the import queue (POST /uploads with a source_url),
which the import function reads (source_import).

The message names the job only: the URL stays in the job record, out of the
queue's messages and whatever logs them.

What can go wrong: :class:`~vidpipe.domain.errors.QueueError` when SQS refuses the message.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from vidpipe.domain.errors import QueueError, ValidationFailed


class SqsImportQueue:
    """The import queue, through a boto3 SQS client."""

    def __init__(self, client: Any, queue_url: str) -> None:
        if not queue_url:
            raise ValidationFailed("setting IMPORT_QUEUE_URL is not set", code="MISCONFIGURED")
        self._client = client
        self.queue_url = queue_url

    def request_import(self, job_id: str) -> None:
        """Queue the import of ``job_id``'s source. Raises QueueError."""
        try:
            self._client.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps({"job_id": job_id}))
        except (BotoCoreError, ClientError) as exc:
            raise QueueError(f"cannot queue the import of job {job_id}: {exc}") from exc
