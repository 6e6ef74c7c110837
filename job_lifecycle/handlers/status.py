"""Status Lambda: applies upload and stage events to the job record.

Wiring only; the rules are in vidpipe.domain.jobs (apply_event) and
job_lifecycle.domain_logic.status (read, apply, conditional write, retry)."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from job_lifecycle.domain_logic.status import record_event, stitch_request
from vidpipe.adapters.aws_clients import dynamodb_client, events_client, s3_client
from vidpipe.adapters.event_bus import EventBridgePublisher
from vidpipe.adapters.job_store import DynamoJobStore
from vidpipe.adapters.s3 import S3ObjectStore
from vidpipe.adapters.timeline_store import DynamoTimeline
from vidpipe.adapters.usage_store import DynamoUsageStore
from vidpipe.domain.errors import ValidationFailed
from vidpipe.domain.events import CHUNKS_SOURCE, UploadCompleted
from vidpipe.domain.finished_event_outbox import publish_finished_event
from vidpipe.domain.inbound_events import parse_sqs_body
from vidpipe.domain.quotas import release_if_ended
from vidpipe.domain.storage_keys import outputs_bucket_folders, uploads_bucket_folders
from vidpipe.domain.timeline import Invocation, entry_for_event, entry_for_finished, event_identity
from vidpipe.runtime.observability import correlate, logger, metrics, record_job_finished, record_upload_size, tracer
from vidpipe.runtime.settings import get_settings

processor = BatchProcessor(event_type=EventType.SQS)


def delete_job_folders(job_id: str, settings: Any) -> int:
    """Delete every folder of the job in both buckets; how many objects went."""
    uploads = S3ObjectStore(s3_client(), settings.uploads_bucket)
    outputs = S3ObjectStore(s3_client(), settings.outputs_bucket)
    return sum(uploads.delete_prefix(folder) for folder in uploads_bucket_folders(job_id)) + sum(
        outputs.delete_prefix(folder) for folder in outputs_bucket_folders(job_id)
    )


def handle_record(record: SQSRecord, lambda_context: LambdaContext | None = None) -> None:
    settings = get_settings()
    try:
        event = parse_sqs_body(record.body)
    except ValidationFailed as exc:
        # Retrying cannot make a malformed event readable: log it and move on.
        logger.error("dropping an unreadable event", extra={"reason": exc.message})
        return
    correlate(event.job_id)
    try:
        store = DynamoJobStore(dynamodb_client(), settings.jobs_table)
        update = record_event(store, event)
        if update is None or update.job.is_deleting:
            # Jobs are created before their upload URL exists, so this job was
            # deleted (or is being deleted) and something still came for it: a
            # MediaConvert job finishing late, an upload sent with a URL handed
            # out before the delete (or an object someone put in the bucket by
            # hand). Nothing to update; whatever it left is deleted.
            logger.warning("event for a deleted or unknown job", extra={"event": type(event).__name__})
            removed = delete_job_folders(event.job_id, settings)
            if removed:
                logger.info("deleted what arrived after the job was deleted", extra={"objects": removed})
            return
        # Once the job has ended its owner's active-job slot is free. Also on a
        # duplicate that changed nothing: had we died between saving the end
        # and freeing the slot, the redelivery frees it (freeing is idempotent).
        release_if_ended(update.job, usage=DynamoUsageStore(dynamodb_client(), settings.jobs_table))
        stitch = stitch_request(event, update)
        if stitch is not None:  # a chunked transcode has all its chunks: stitch them
            EventBridgePublisher(events_client(), settings.event_bus_name, source=CHUNKS_SOURCE).publish(stitch)
            logger.info("stitch requested", extra={"chunks": stitch.total})
        invocation = Invocation.of(lambda_context)
        timeline = DynamoTimeline(dynamodb_client(), settings.job_events_table) if settings.job_events_table else None
        if timeline is not None:
            # Every delivery is recorded, duplicates included: they land on the
            # same entry (its deliveries count), so the timeline shows them once.
            # job_status marks the events that moved the job to a new status.
            new_status = update.new_status()
            timeline.record(
                entry_for_event(
                    event,
                    identity=event_identity(json.loads(record.body)),
                    recorded_by=invocation,
                    job_status=new_status.value if new_status is not None else None,
                )
            )
        if not update.changed:
            logger.info("event changed nothing (duplicate or stale)", extra={"event": type(event).__name__})
        else:
            logger.info("job updated", extra={"status": update.job.status.value})
            if isinstance(event, UploadCompleted):
                record_upload_size(event.size)
            finished = update.finished_event()
            if finished is not None:
                if timeline is not None:
                    timeline.record(entry_for_finished(finished, recorded_by=invocation))
                record_job_finished(finished.status, (finished.error or {}).get("code"))
        # Whether this event finished the job or is the retry of one whose
        # publish failed: what waits in the outbox goes out now, same id.
        publisher = EventBridgePublisher(events_client(), settings.event_bus_name, source="vidpipe.status")
        if publish_finished_event(store, publisher, update.job) is not None:
            logger.info("job finished event published", extra={"status": update.job.status.value})
    finally:
        logger.remove_keys(["job_id", "correlation_id"])


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=handle_record, processor=processor, context=context)
