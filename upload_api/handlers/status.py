"""Status Lambda: applies upload and stage events to the job record.

Wiring only; the rules are in vidpipe.jobs (apply_event) and
upload_api.domain_logic.status (read, apply, conditional write, retry)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from upload_api.domain_logic.status import record_event, stitch_request
from vidpipe.aws_clients import dynamodb_client, events_client
from vidpipe.errors import ValidationFailed
from vidpipe.event_bus import EventBridgePublisher
from vidpipe.events import CHUNKS_SOURCE, parse_sqs_body
from vidpipe.job_store import DynamoJobStore
from vidpipe.observability import logger
from vidpipe.settings import get_settings

processor = BatchProcessor(event_type=EventType.SQS)


def handle_record(record: SQSRecord) -> None:
    settings = get_settings()
    try:
        event = parse_sqs_body(record.body)
    except ValidationFailed as exc:
        # Retrying cannot make a malformed event readable: log it and move on.
        logger.error("dropping an unreadable event", extra={"reason": exc.message})
        return
    logger.append_keys(job_id=event.job_id)
    try:
        update = record_event(DynamoJobStore(dynamodb_client(), settings.jobs_table), event)
        if update is None:
            # Jobs are created before their upload URL exists, so this is an
            # object someone put in the bucket by hand: nothing to update.
            logger.warning("event for an unknown job", extra={"event": type(event).__name__})
            return
        stitch = stitch_request(event, update)
        if stitch is not None:  # a chunked transcode has all its chunks: stitch them
            EventBridgePublisher(events_client(), settings.event_bus_name, source=CHUNKS_SOURCE).publish(stitch)
            logger.info("stitch requested", extra={"chunks": stitch.total})
        if not update.changed:
            logger.info("event changed nothing (duplicate or stale)", extra={"event": type(event).__name__})
            return
        logger.info("job updated", extra={"status": update.job.status.value})
        finished = update.finished_event()
        if finished is not None:
            publisher = EventBridgePublisher(events_client(), settings.event_bus_name, source="vidpipe.status")
            publisher.publish(finished)
    finally:
        logger.remove_keys(["job_id"])


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=handle_record, processor=processor,
                                    context=context)
