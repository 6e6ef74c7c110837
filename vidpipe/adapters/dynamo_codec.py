"""Python values to DynamoDB attribute values and back, for every table we keep
(jobs, job timelines, usage, webhooks, token revocations).

Floats go through their shortest text on the way in (so 0.1 stays 0.1, not
0.1000000000000000055...) and numbers come back as int when whole, float
otherwise, so a record reads back as it was written.

What can go wrong: :func:`encode_value` raises TypeError for a type DynamoDB
cannot hold and ArithmeticError (decimal.InvalidOperation) for NaN or infinity;
callers turn both into their own error.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def _to_storable(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {key: _to_storable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_to_storable(item) for item in value]
    return value


def _from_stored(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: _from_stored(item) for key, item in value.items()}
    if isinstance(value, list | set):
        return [_from_stored(item) for item in value]
    return value


def encode_value(value: Any) -> dict[str, Any]:
    """One Python value as an attribute value (``{"M": ...}``, ``{"N": "1"}``...)."""
    encoded: dict[str, Any] = _serializer.serialize(_to_storable(value))  # type: ignore[assignment]
    return encoded


def decode_value(attribute: dict[str, Any]) -> Any:
    return _from_stored(_deserializer.deserialize(attribute))  # type: ignore[arg-type]


def encode_item(record: dict[str, Any]) -> dict[str, Any]:
    return {name: encode_value(value) for name, value in record.items()}


def decode_item(item: dict[str, Any]) -> dict[str, Any]:
    return {name: decode_value(value) for name, value in item.items()}


def string(value: str) -> dict[str, str]:
    return {"S": value}


def number(value: int | float) -> dict[str, str]:
    return {"N": str(value)}


def error_code(exc: BotoCoreError | ClientError) -> str:
    """DynamoDB's error code (``ConditionalCheckFailedException``...), or the
    botocore exception's name when no answer came back."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return type(exc).__name__
