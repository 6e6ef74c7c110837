"""Chunk-encode Lambda: an SQS batch of chunk work orders ("Chunk Requested",
"Stitch Requested") from the vidpipe bus → HLS segments, then playlists.

Wiring only; the work is in transcode.domain_logic.fanout."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from transcode.domain_logic.fanout import run_work_order
from vidpipe.adapters.aws_clients import dynamodb_client, events_client, s3_client
from vidpipe.adapters.event_bus import EventBridgePublisher
from vidpipe.adapters.job_store import DynamoJobStore
from vidpipe.adapters.s3 import S3ObjectStore
from vidpipe.domain.errors import JobDeleted, ValidationFailed
from vidpipe.domain.events import parse_chunk_work
from vidpipe.domain.storage_keys import job_outputs_prefix, work_prefix
from vidpipe.runtime.deletion_guard import WritesForLiveJob, job_is_gone
from vidpipe.runtime.observability import correlate, logger, tracer
from vidpipe.runtime.settings import get_settings
from vidpipe.runtime.sqs_message_policy import hold_message, schedule_retry
from vidpipe.runtime.stage_runner import INPUT_URL_EXPIRES_S

# Kept back from the Lambda timeout for uploading segments and reporting a failure.
RESERVED_TIME_S = 60

processor = BatchProcessor(event_type=EventType.SQS)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    timeout_s = max(30.0, context.get_remaining_time_in_millis() / 1000 - RESERVED_TIME_S)

    def handle(record: SQSRecord) -> None:
        settings = get_settings()
        try:
            order = parse_chunk_work(json.loads(record.body))
        except (ValidationFailed, json.JSONDecodeError) as exc:
            logger.error("dropping a message that is not a chunk work order", extra={"reason": str(exc)})
            return
        correlate(order.job_id)
        receive_count = int(record.attributes.approximate_receive_count)
        scratch = Path(tempfile.mkdtemp(prefix=f"chunk-{order.job_id}-"))
        try:
            uploads = S3ObjectStore(s3_client(), settings.uploads_bucket)
            outputs = S3ObjectStore(s3_client(), settings.outputs_bucket)
            jobs = DynamoJobStore(dynamodb_client(), settings.jobs_table)
            if job_is_gone(jobs, order.job_id):
                # Deleted after its chunks were ordered: encode nothing, and take
                # away what the planner or earlier chunks left.
                uploads.delete_prefix(work_prefix(order.job_id))
                outputs.delete_prefix(job_outputs_prefix(order.job_id))
                logger.info("chunk work dropped: the job was deleted")
                return
            # Held in short leases, as the stages' messages are: a chunk whose
            # function dies without a word is offered again within one lease.
            with hold_message(record.receipt_handle, queue_url=settings.queue_url, lease_s=settings.lease_s):
                run_work_order(
                    order, scratch,
                    receive_count=receive_count,
                    max_receive_count=settings.max_receive_count,
                    timeout_s=timeout_s,
                    # FFmpeg reads only the chunk's part of the source, by ranged GETs,
                    # of the version the job accepted (signed into the URL).
                    locate=lambda key, version: uploads.presigned_get(key, expires_s=INPUT_URL_EXPIRES_S,
                                                                      version_id=version or None),
                    # A delete while the chunk encodes: what it wrote is removed (vidpipe.runtime.deletion_guard).
                    work_store=WritesForLiveJob(uploads, jobs=jobs, job_id=order.job_id,
                                                folder=work_prefix(order.job_id)),
                    output_store=WritesForLiveJob(outputs, jobs=jobs, job_id=order.job_id,
                                                  folder=job_outputs_prefix(order.job_id)),
                    publish=EventBridgePublisher(events_client(), settings.event_bus_name,
                                                 source="vidpipe.transcode").publish,
                )  # fmt: skip
        except JobDeleted:
            logger.info("chunk work dropped: the job was deleted while it ran")
        except Exception:
            logger.exception("chunk work failed", extra={"attempt": receive_count})
            schedule_retry(record.receipt_handle, receive_count)
            raise
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
            logger.remove_keys(["job_id", "correlation_id"])

    return process_partial_response(event=event, record_handler=handle, processor=processor, context=context)
