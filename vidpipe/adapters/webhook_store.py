"""Registered webhooks in DynamoDB: partition ``owner``, sort ``webhook_id``,
so one Query finds everything a user wants told when a job ends.

What can go wrong: :class:`~vidpipe.domain.errors.JobStoreError` for any DynamoDB failure.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from vidpipe.adapters.dynamo_codec import string
from vidpipe.domain.errors import JobStoreError
from vidpipe.domain.webhooks import Webhook


class DynamoWebhookStore:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self.table_name = table_name

    def create(self, hook: Webhook) -> None:
        item = {
            name: string(value)
            for name, value in {
                "owner": hook.owner,
                "webhook_id": hook.webhook_id,
                "url": hook.url,
                "created_at": hook.created_at,
            }.items()
        }
        try:
            self._client.put_item(
                TableName=self.table_name, Item=item, ConditionExpression="attribute_not_exists(webhook_id)"
            )
        except (BotoCoreError, ClientError) as exc:
            raise JobStoreError(f"cannot register webhook {hook.webhook_id}: {exc}") from exc

    def list(self, owner: str) -> list[Webhook]:
        """The owner's webhooks, oldest id first (a user has a handful at most)."""
        try:
            response = self._client.query(
                TableName=self.table_name,
                KeyConditionExpression="#owner = :owner",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":owner": string(owner)},
                ConsistentRead=True,
            )
        except (BotoCoreError, ClientError) as exc:
            raise JobStoreError(f"cannot list the webhooks of {owner}: {exc}") from exc
        return [
            Webhook(
                owner=item["owner"]["S"],
                webhook_id=item["webhook_id"]["S"],
                url=item["url"]["S"],
                created_at=item["created_at"]["S"],
            )
            for item in response.get("Items", [])
        ]

    def delete(self, owner: str, webhook_id: str) -> bool:
        """False when the owner has no such webhook (someone else's is as unknown as a missing one)."""
        try:
            response = self._client.delete_item(
                TableName=self.table_name,
                Key={"owner": string(owner), "webhook_id": string(webhook_id)},
                ReturnValues="ALL_OLD",
            )
        except (BotoCoreError, ClientError) as exc:
            raise JobStoreError(f"cannot delete webhook {webhook_id}: {exc}") from exc
        return bool(response.get("Attributes"))
