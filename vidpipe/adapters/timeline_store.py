"""The job events table (``JobEventsTable``: partition ``job_id``, sort
``entry_key``) holding each job's timeline; what an entry is and why it is
written once: :mod:`vidpipe.domain.timeline`.

What can go wrong: :class:`~vidpipe.domain.errors.JobStoreError` for any DynamoDB failure.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from vidpipe.adapters.dynamo_codec import decode_value, encode_value, number, string
from vidpipe.domain.errors import JobStoreError
from vidpipe.domain.timeline import TimelineEntry


class DynamoTimeline:
    """The job events table, reached through a boto3 DynamoDB client."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self.table_name = table_name

    def record(self, entry: TimelineEntry) -> None:
        """Write ``entry`` once: a second write of the same entry keeps the first
        copy and adds one to its ``deliveries``. Raises JobStoreError."""
        body = entry.to_dict()
        body.pop("deliveries")
        body["identity"] = entry.identity[:200]
        try:
            self._client.update_item(
                TableName=self.table_name,
                Key={"job_id": string(entry.job_id), "entry_key": string(entry.entry_key)},
                UpdateExpression="SET #entry = if_not_exists(#entry, :entry) ADD deliveries :one",
                ExpressionAttributeNames={"#entry": "entry"},
                ExpressionAttributeValues={":entry": encode_value(body), ":one": number(1)},
            )
        except (BotoCoreError, ClientError, TypeError, ArithmeticError) as exc:
            raise JobStoreError(f"cannot record {entry.what} of job {entry.job_id}: {exc}") from exc

    def entries(self, job_id: str) -> list[TimelineEntry]:
        """Every entry of the job, oldest first. Raises JobStoreError."""
        found: list[TimelineEntry] = []
        query: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "job_id = :job",
            "ExpressionAttributeValues": {":job": string(job_id)},
            "ConsistentRead": True,
        }
        while True:
            try:
                response = self._client.query(**query)
            except (BotoCoreError, ClientError) as exc:
                raise JobStoreError(f"cannot read the timeline of job {job_id}: {exc}") from exc
            for item in response.get("Items", []):
                entry = decode_value(item["entry"])
                entry["deliveries"] = decode_value(item.get("deliveries", number(1)))
                found.append(TimelineEntry.from_dict(job_id, entry))
            if not response.get("LastEvaluatedKey"):
                return found
            query["ExclusiveStartKey"] = response["LastEvaluatedKey"]
