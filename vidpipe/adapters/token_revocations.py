"""Revoked API tokens in DynamoDB: one item per token id, ``{token_id,
expires_at}``, in a table of its own (so the authorizer may read it and nothing
else). ``expires_at`` is the table's TTL attribute and the token's own expiry:
once the token has expired it is refused anyway, so DynamoDB may drop the item
and the list never grows beyond the tokens still alive.

What can go wrong: :class:`~vidpipe.domain.errors.JobStoreError` for any DynamoDB
failure. The authorizer lets that propagate (API Gateway answers 500): a
revocation list we cannot read must not let a revoked token in.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from vidpipe.adapters.dynamo_codec import number, string
from vidpipe.domain.errors import JobStoreError


class DynamoTokenRevocations:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self.table_name = table_name

    def revoke(self, token_id: str, *, until: int) -> None:
        """Refuse ``token_id`` from now on; ``until`` (epoch seconds) is when the
        token expires anyway (or later). Revoking again changes nothing."""
        try:
            self._client.update_item(
                TableName=self.table_name,
                Key={"token_id": string(token_id)},
                UpdateExpression="SET expires_at = if_not_exists(expires_at, :until)",
                ExpressionAttributeValues={":until": number(int(until))},
            )
        except (BotoCoreError, ClientError) as exc:
            raise JobStoreError(f"cannot revoke token {token_id}: {exc}") from exc

    def is_revoked(self, token_id: str) -> bool:
        try:
            # Consistent: a revocation counts from the moment it was written.
            answer = self._client.get_item(
                TableName=self.table_name,
                Key={"token_id": string(token_id)},
                ConsistentRead=True,
                ProjectionExpression="token_id",
            )
        except (BotoCoreError, ClientError) as exc:
            raise JobStoreError(f"cannot read the revocation of token {token_id}: {exc}") from exc
        return "Item" in answer
