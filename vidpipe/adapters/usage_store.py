"""Per-owner usage counters (vidpipe.domain.quotas) as items of the jobs table.

The table's key schema stays as it is (``job_id``, a string): usage items take
keys no job id can have (job ids are hex), ``usage#active#{owner}`` for the
owner's set of active job ids and ``usage#day#{owner}#{YYYY-MM-DD}`` for a
day's bytes and video seconds. They carry no ``owner``, ``status`` or
``open_state``, so the jobs' indexes never see them, and ``usage_expires_at``
lets the table's TTL delete a day's item a few days after it ended.

Every change is one UpdateItem with a condition, which DynamoDB applies
atomically: two concurrent requests cannot both pass the last slot or the
last bytes of the day. A new upload's slot, bytes and job record are one
TransactWriteItems of those same conditional writes plus the job's PutItem
(:meth:`DynamoUsageStore.record_admitted_job`).

What can go wrong: :class:`~vidpipe.domain.errors.JobStoreError` for any DynamoDB or
botocore failure other than a refused condition (which is an answer: False).
"""

from __future__ import annotations

import calendar
import random
import time
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from vidpipe.adapters.dynamo_codec import number, string
from vidpipe.adapters.job_store import job_to_item
from vidpipe.domain.errors import ConcurrentUpdate, JobStoreError
from vidpipe.domain.jobs import Job
from vidpipe.domain.quotas import DailyUsage, OwnerLimits, Refusal

USAGE_KEY_PREFIX = "usage#"
# A day's counters are kept a little past the day (for support questions), then
# the table's TTL removes them.
DAILY_USAGE_KEPT_DAYS = 3
# DynamoDB cancels a transaction that meets another write of the same item in
# flight (TransactionConflict): one owner's parallel uploads all write their
# active-jobs item. Tried again after a short random wait, a few times.
TRANSACTION_ATTEMPTS = 5
TRANSACTION_RETRY_WAIT_S = 0.02


def active_key(owner: str) -> dict[str, Any]:
    return {"job_id": {"S": f"{USAGE_KEY_PREFIX}active#{owner}"}}


def daily_key(owner: str, day: str) -> dict[str, Any]:
    return {"job_id": {"S": f"{USAGE_KEY_PREFIX}day#{owner}#{day}"}}


def _expires_at(day: str) -> str:
    """Epoch seconds (DynamoDB TTL) DAILY_USAGE_KEPT_DAYS after the day ends."""
    end = datetime.strptime(day, "%Y-%m-%d") + timedelta(days=1 + DAILY_USAGE_KEPT_DAYS)
    return str(calendar.timegm(end.timetuple()))


def _refused(exc: BotoCoreError | ClientError) -> bool:
    code = exc.response.get("Error", {}).get("Code") if isinstance(exc, ClientError) else None
    return code == "ConditionalCheckFailedException"


class DynamoUsageStore:
    """The owners' usage counters in the jobs table, through a boto3 DynamoDB client."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self.table_name = table_name

    def _update(self, what: str, **request: Any) -> bool:
        try:
            self._client.update_item(TableName=self.table_name, **request)
        except (BotoCoreError, ClientError) as exc:
            if _refused(exc):
                return False
            raise JobStoreError(f"cannot {what}: {exc}") from exc
        return True

    def take_active_slot(self, owner: str, job_id: str, *, limit: int) -> bool:
        return self._update(f"take an active-job slot for {owner}", **_take_slot_request(owner, job_id, limit))

    def release_active_slot(self, owner: str, job_id: str) -> None:
        # DELETE from a set is a no-op for a missing element: a repeat frees nothing more.
        self._update(
            f"release the active-job slot of {job_id}",
            Key=active_key(owner),
            UpdateExpression="DELETE active_jobs :job",
            ExpressionAttributeValues={":job": {"SS": [job_id]}},
        )

    def active_job_ids(self, owner: str) -> set[str]:
        item = self._get(active_key(owner), f"read the active jobs of {owner}")
        return set(item.get("active_jobs", {}).get("SS", []))

    def add_upload_bytes(self, owner: str, day: str, size: int, *, limits: OwnerLimits) -> bool:
        request = _charge_bytes_request(owner, day, size, limits)
        return self._update(f"charge {size} bytes to {owner}'s {day}", **request)

    def refund_upload_bytes(self, owner: str, day: str, size: int) -> None:
        self._update(
            f"refund {size} bytes to {owner}'s {day}",
            Key=daily_key(owner, day),
            UpdateExpression="ADD upload_bytes :minus",
            ExpressionAttributeValues={":minus": number(-size)},
        )

    def add_video_seconds_once(self, owner: str, day: str, job_id: str, seconds: int, *, limit: int) -> bool:
        added = self._update(
            f"charge {seconds} s of video of {job_id} to {owner}'s {day}",
            Key=daily_key(owner, day),
            UpdateExpression="ADD video_seconds :seconds, charged_jobs :job "
            "SET quota_owner = :owner, usage_expires_at = :expires",
            ConditionExpression="(attribute_not_exists(charged_jobs) OR NOT contains(charged_jobs, :job_id)) "
            "AND (attribute_not_exists(video_seconds) OR video_seconds <= :room)",
            ExpressionAttributeValues={
                ":seconds": number(seconds),
                ":job": {"SS": [job_id]},
                ":job_id": string(job_id),
                ":room": number(limit - seconds),
                ":owner": string(owner),
                ":expires": {"N": _expires_at(day)},
            },
        )
        if added:
            return True
        # Refused: either this job was charged already (a retried stage), which
        # is success, or the day has no room for it.
        item = self._get(daily_key(owner, day), f"read {owner}'s usage of {day}")
        return job_id in item.get("charged_jobs", {}).get("SS", [])

    def daily_usage(self, owner: str, day: str) -> DailyUsage:
        item = self._get(daily_key(owner, day), f"read {owner}'s usage of {day}")
        return DailyUsage(
            upload_bytes=int(item.get("upload_bytes", {}).get("N", "0")),
            video_seconds=int(item.get("video_seconds", {}).get("N", "0")),
        )

    def record_admitted_job(self, job: Job, size: int, *, day: str, limits: OwnerLimits) -> Refusal | None:
        writes = [
            {"Update": {"TableName": self.table_name, **_take_slot_request(job.owner, job.job_id, limits.active_jobs)}},
            {"Update": {"TableName": self.table_name, **_charge_bytes_request(job.owner, day, size, limits)}},
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": job_to_item(job),
                    "ConditionExpression": "attribute_not_exists(job_id)",
                }
            },
        ]
        for attempt in range(1, TRANSACTION_ATTEMPTS + 1):
            try:
                self._client.transact_write_items(TransactItems=writes)
                return None
            except (BotoCoreError, ClientError) as exc:
                reasons = _cancellation_reasons(exc)
                if reasons[:1] == ["ConditionalCheckFailed"]:
                    return "active_jobs"
                if reasons[1:2] == ["ConditionalCheckFailed"]:
                    return "daily_allowance"
                if reasons[2:3] == ["ConditionalCheckFailed"]:
                    raise ConcurrentUpdate(f"job {job.job_id} already exists") from exc
                if "TransactionConflict" not in reasons or attempt == TRANSACTION_ATTEMPTS:
                    raise JobStoreError(f"cannot record job {job.job_id} with its usage: {exc}") from exc
            time.sleep(random.uniform(1, 2) * attempt * TRANSACTION_RETRY_WAIT_S)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _get(self, key: dict[str, Any], what: str) -> dict[str, Any]:
        try:
            response = self._client.get_item(TableName=self.table_name, Key=key, ConsistentRead=True)
        except (BotoCoreError, ClientError) as exc:
            raise JobStoreError(f"cannot {what}: {exc}") from exc
        return dict(response.get("Item") or {})


def _take_slot_request(owner: str, job_id: str, limit: int) -> dict[str, Any]:
    """The conditional UpdateItem adding ``job_id`` to the owner's active jobs."""
    return {
        "Key": active_key(owner),
        "UpdateExpression": "ADD active_jobs :job SET quota_owner = :owner",
        "ConditionExpression": "attribute_not_exists(active_jobs) OR size(active_jobs) < :limit",
        "ExpressionAttributeValues": {":job": {"SS": [job_id]}, ":owner": string(owner), ":limit": number(limit)},
    }


def _charge_bytes_request(owner: str, day: str, size: int, limits: OwnerLimits) -> dict[str, Any]:
    """The conditional UpdateItem adding ``size`` to the day's bytes (refused
    past the limit, or when the day's minutes are used up)."""
    return {
        "Key": daily_key(owner, day),
        "UpdateExpression": "ADD upload_bytes :size SET quota_owner = :owner, usage_expires_at = :expires",
        "ConditionExpression": "(attribute_not_exists(upload_bytes) OR upload_bytes <= :room) "
        "AND (attribute_not_exists(video_seconds) OR video_seconds < :seconds_limit)",
        "ExpressionAttributeValues": {
            ":size": number(size),
            ":room": number(limits.upload_bytes_per_day - size),
            ":seconds_limit": number(limits.video_seconds_per_day),
            ":owner": string(owner),
            ":expires": {"N": _expires_at(day)},
        },
    }


def _cancellation_reasons(exc: BotoCoreError | ClientError) -> list[str]:
    """The per-write codes of a cancelled transaction ("None" for a write that
    was fine), in the order of the writes; empty for any other failure."""
    if not isinstance(exc, ClientError):
        return []
    return [str(reason.get("Code", "None")) for reason in exc.response.get("CancellationReasons", [])]
