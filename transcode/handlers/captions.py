"""Captions Lambda: an SQS batch of S3 "Object Created" events for
``captions/{job_id}/{caption_id}`` → the caption validated, converted to
segmented WebVTT and added to the job's master playlist. No video is touched.

Wiring only; the work is in transcode.domain_logic.sidecar_captions."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from transcode.domain_logic.sidecar_captions import process_caption
from vidpipe.adapters.aws_clients import dynamodb_client, s3_client
from vidpipe.adapters.job_store import DynamoJobStore
from vidpipe.adapters.s3 import S3ObjectStore
from vidpipe.domain.errors import InvalidCaptions, JobNotFound, ValidationFailed
from vidpipe.domain.storage_keys import caption_of_upload_key
from vidpipe.runtime.observability import logger, tracer
from vidpipe.runtime.settings import get_settings

processor = BatchProcessor(event_type=EventType.SQS)


def handle_record(record: SQSRecord) -> None:
    """One S3 event. A key outside captions/, a job or caption that is gone:
    logged and dropped (a retry would not change them). Storage and job store
    failures are raised for SQS to retry."""
    settings = get_settings()
    key = str(json.loads(record.body).get("detail", {}).get("object", {}).get("key", ""))
    try:
        job_id, caption_id = caption_of_upload_key(key)
    except ValidationFailed:
        logger.warning("not a caption upload; dropped", extra={"key": key})
        return
    with tempfile.TemporaryDirectory() as scratch:
        try:
            caption = process_caption(
                job_id,
                caption_id,
                Path(scratch),
                jobs=DynamoJobStore(dynamodb_client(), settings.jobs_table),
                uploads=S3ObjectStore(s3_client(), settings.uploads_bucket),
                outputs=S3ObjectStore(s3_client(), settings.outputs_bucket),
            )
        except (JobNotFound, InvalidCaptions) as exc:
            logger.warning("caption for no job or no caption record; dropped", extra={"key": key, "why": str(exc)})
            return
    logger.info("caption processed", extra={"job_id": job_id, "caption_id": caption_id, "status": caption["status"]})


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=handle_record, processor=processor, context=context)
