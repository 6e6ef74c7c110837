"""Expiry Lambda: run by a scheduled EventBridge rule, it EXPIREs jobs whose
upload never arrived. Wiring only; the rule is in upload_api.domain_logic.expiry."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from upload_api.domain_logic.expiry import expire_abandoned_uploads
from vidpipe.aws_clients import dynamodb_client, s3_client
from vidpipe.job_store import DynamoJobStore
from vidpipe.observability import logger
from vidpipe.settings import get_settings
from vidpipe.storage import S3ObjectStore


def sweep_time(event: dict[str, Any]) -> datetime:
    """The scheduled event's own ``time`` (when the rule fired), else now."""
    stamp = event.get("time")
    if isinstance(stamp, str):
        try:
            return datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(UTC)
        except ValueError:
            logger.warning("scheduled event with an unreadable time", extra={"time": stamp})
    return datetime.now(UTC)


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = get_settings()
    expired = expire_abandoned_uploads(
        DynamoJobStore(dynamodb_client(), settings.jobs_table),
        S3ObjectStore(s3_client(), settings.uploads_bucket),
        now=sweep_time(event),
        expiry_s=settings.upload_expiry_s,
    )
    for job_id in expired:
        logger.info("upload expired", extra={"job_id": job_id})
    return {"expired": expired}
