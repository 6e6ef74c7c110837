"""Jobs in DynamoDB, written under an optimistic lock.

The table's key is ``job_id`` (S). The global secondary index ``by_owner``
(partition ``owner``, sort ``created_at``, projecting ALL attributes) lists one
user's jobs newest first with one Query.

We use the low-level client, not the resource: the resource hands numbers back
as ``Decimal`` and refuses ``float``. Here floats go in as ``Decimal(str(x))``
and come back as ``int`` when whole, ``float`` otherwise.

What can go wrong: :class:`~vidpipe.domain.errors.JobNotFound` for an unknown id,
:class:`~vidpipe.domain.errors.ConcurrentUpdate` when another writer got there first
(the version moved on, or the job id already exists),
:class:`~vidpipe.domain.errors.ValidationFailed` for a paging token we did not issue
or a bad limit, and :class:`~vidpipe.domain.errors.JobStoreError` for any other
DynamoDB or botocore failure (throttling, denied access, a value DynamoDB
cannot store such as NaN).
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from vidpipe.adapters.dynamo_codec import decode_item, encode_item, error_code, number, string
from vidpipe.domain.errors import ConcurrentUpdate, JobNotFound, JobStoreError, ValidationFailed
from vidpipe.domain.jobs import AWAITING_UPLOAD, BEING_DELETED, FINISHED_EVENT_PENDING, IN_PROGRESS, Job, JobStatus

OWNER_INDEX = "by_owner"
# A sparse index of the jobs that are not finished: only they carry
# ``open_state`` (AWAITING_UPLOAD, or IN_PROGRESS for UPLOADED and PROCESSING)
# and ``open_since`` (creation time while awaiting the upload, last update
# while in progress). The sweep reads just those, however many jobs the table
# holds, to expire abandoned uploads and to fail jobs that stopped moving.
# (FINISHED_EVENT_PENDING: a READY or FAILED job whose "Job Ready"/"Job Failed"
# is still in its outbox, open_since when it finished: the sweep publishes it
# if no retry did. BEING_DELETED: a DELETING job, open_since when it was
# marked: the sweep finishes a delete that stopped half way.)
OPEN_JOBS_INDEX = "by_open_state"
MAX_PAGE_SIZE = 100
_KEY_ATTRIBUTES = frozenset({"job_id", "owner", "created_at"})


def job_to_item(job: Job) -> dict[str, Any]:
    """The job as a DynamoDB item (attribute-value format).

    Raises JobStoreError for a value DynamoDB cannot hold (NaN, infinity)."""
    record = job.to_dict()
    if job.status is JobStatus.AWAITING_UPLOAD:
        record["open_state"], record["open_since"] = AWAITING_UPLOAD, job.created_at
    elif job.status in (JobStatus.UPLOADED, JobStatus.PROCESSING):
        record["open_state"], record["open_since"] = IN_PROGRESS, job.updated_at
    elif job.status is JobStatus.DELETING:
        record["open_state"], record["open_since"] = BEING_DELETED, job.updated_at
    elif job.finished_event_pending:
        record["open_state"] = FINISHED_EVENT_PENDING
        record["open_since"] = str((job.finished_event or {}).get("occurred_at") or job.updated_at)
    try:
        return encode_item(record)
    except (TypeError, ArithmeticError) as exc:
        raise JobStoreError(f"job {job.job_id} holds a value DynamoDB cannot store: {exc}") from exc


def item_to_job(item: dict[str, Any]) -> Job:
    """Read back an item written by :func:`job_to_item`."""
    record = decode_item(item)
    record.pop("open_state", None)
    record.pop("open_since", None)
    return Job.from_dict(record)


def _encode_token(last_key: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(last_key, sort_keys=True).encode()).decode()


def _decode_token(token: str, owner: str) -> dict[str, Any]:
    """Raises ValidationFailed unless the token is one :meth:`list_recent` issued to ``owner``."""
    try:
        key = json.loads(base64.urlsafe_b64decode(token.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError) as exc:
        raise ValidationFailed("invalid next_token") from exc
    # Check the shape and the owner, so a forged token cannot start the Query
    # in another user's partition.
    if (
        not isinstance(key, dict)
        or set(key) != _KEY_ATTRIBUTES
        or not all(isinstance(value, dict) and set(value) == {"S"} for value in key.values())
        or not all(isinstance(value["S"], str) for value in key.values())
        or key["owner"]["S"] != owner
    ):
        raise ValidationFailed("invalid next_token")
    return key


class DynamoJobStore:
    """The jobs table, reached through a boto3 DynamoDB client."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self.table_name = table_name

    def create(self, job: Job) -> None:
        """Store a new job as it is (its version included).

        Raises ConcurrentUpdate when a job with that id exists, JobStoreError
        for any other failure."""
        try:
            self._client.put_item(
                TableName=self.table_name,
                Item=job_to_item(job),
                ConditionExpression="attribute_not_exists(job_id)",
            )
        except (BotoCoreError, ClientError) as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise ConcurrentUpdate(f"job {job.job_id} already exists") from exc
            raise JobStoreError(f"cannot create job {job.job_id}: {error_code(exc)}: {exc}") from exc

    def get(self, job_id: str) -> Job:
        """The latest saved job.

        The read is strongly consistent: the read-modify-write of the status
        function would otherwise keep losing the version check against its own
        last write. Raises JobNotFound, or JobStoreError for any failure."""
        try:
            response = self._client.get_item(
                TableName=self.table_name,
                Key={"job_id": string(job_id)},
                ConsistentRead=True,
            )
        except (BotoCoreError, ClientError) as exc:
            raise JobStoreError(f"cannot read job {job_id}: {error_code(exc)}: {exc}") from exc
        item = response.get("Item")
        # Usage counters (vidpipe.adapters.usage_store) share the table under keys no
        # job id has; whatever lacks a status is not a job.
        if not item or "status" not in item:
            raise JobNotFound(f"no job {job_id}")
        return item_to_job(item)

    def list_recent(self, owner: str, limit: int = 20, next_token: str | None = None) -> tuple[list[Job], str | None]:
        """Up to ``limit`` of ``owner``'s jobs, newest first, and the token of the next page
        (None at the end; the last full page may be followed by an empty one).

        The index is eventually consistent: a job created a moment ago may be
        missing. Raises ValidationFailed for a limit outside 1..100 or a token
        we did not issue, JobStoreError for any failure."""
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise ValidationFailed(f"limit must be between 1 and {MAX_PAGE_SIZE}, not {limit}")
        query: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": OWNER_INDEX,
            "KeyConditionExpression": "#owner = :owner",
            "ExpressionAttributeNames": {"#owner": "owner"},
            "ExpressionAttributeValues": {":owner": string(owner)},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if next_token is not None:
            query["ExclusiveStartKey"] = _decode_token(next_token, owner)
        try:
            response = self._client.query(**query)
        except (BotoCoreError, ClientError) as exc:
            raise JobStoreError(f"cannot list jobs: {error_code(exc)}: {exc}") from exc
        # A job being deleted is already gone for its owner (a page may come out one short).
        jobs = [job for job in map(item_to_job, response.get("Items", [])) if not job.is_deleting]
        last_key = response.get("LastEvaluatedKey")
        return jobs, (_encode_token(last_key) if last_key else None)

    def list_open(self, state: str, *, since_before: str, limit: int = 100) -> list[Job]:
        """Up to ``limit`` unfinished jobs in ``state`` (AWAITING_UPLOAD,
        IN_PROGRESS or FINISHED_EVENT_PENDING) whose ``open_since`` is before ``since_before`` (ISO-8601
        UTC), oldest first. Raises JobStoreError."""
        try:
            response = self._client.query(
                TableName=self.table_name,
                IndexName=OPEN_JOBS_INDEX,
                KeyConditionExpression="open_state = :state AND open_since < :before",
                ExpressionAttributeValues={":state": string(state), ":before": string(since_before)},
                Limit=limit,
            )
        except (BotoCoreError, ClientError) as exc:
            raise JobStoreError(f"cannot list {state} jobs: {error_code(exc)}: {exc}") from exc
        return [item_to_job(item) for item in response.get("Items", [])]

    def delete(self, job_id: str) -> None:
        """Remove the job's record, only once it is DELETING (what
        vidpipe.domain.job_deletion marks first); a record already gone
        is fine. Raises ConcurrentUpdate when the job is not DELETING,
        JobStoreError for any other failure."""
        try:
            self._client.delete_item(
                TableName=self.table_name,
                Key={"job_id": string(job_id)},
                ConditionExpression="attribute_not_exists(job_id) OR #status = :deleting",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":deleting": string(JobStatus.DELETING.value)},
            )
        except (BotoCoreError, ClientError) as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise ConcurrentUpdate(f"job {job_id} is not being deleted: its record stays") from exc
            raise JobStoreError(f"cannot delete job {job_id}: {error_code(exc)}: {exc}") from exc

    def save(self, job: Job, *, expected_version: int) -> Job:
        """Replace the stored job with ``job`` at version ``expected_version + 1``,
        provided the stored version is still ``expected_version``; return what
        was written.

        Raises ConcurrentUpdate when the stored version differs (or the job is
        gone): re-read, re-apply and try again. JobStoreError for any other
        failure."""
        written = copy.deepcopy(job)
        written.version = expected_version + 1
        try:
            self._client.put_item(
                TableName=self.table_name,
                Item=job_to_item(written),
                ConditionExpression="version = :expected",
                ExpressionAttributeValues={":expected": number(expected_version)},
            )
        except (BotoCoreError, ClientError) as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise ConcurrentUpdate(f"job {job.job_id} is no longer at version {expected_version}") from exc
            raise JobStoreError(f"cannot save job {job.job_id}: {error_code(exc)}: {exc}") from exc
        return written
