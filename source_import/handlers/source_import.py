"""Import Lambda: "import job J" from its queue → the job's source_url fetched
into its upload key (then S3's event starts the pipeline), or the job FAILED
with the reason. Wiring only; the work is in source_import.domain_logic.importing,
the fetching rules in vidpipe.adapters.source_fetcher."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from source_import.domain_logic.importing import ImportLimits, ImportQuota, import_source
from vidpipe.adapters.aws_clients import dynamodb_client, events_client, s3_client
from vidpipe.adapters.event_bus import EventBridgePublisher
from vidpipe.adapters.job_store import DynamoJobStore
from vidpipe.adapters.outbound_guard import OutboundGuard, OutboundPolicy, Resolver, system_resolver
from vidpipe.adapters.s3 import S3ObjectStore
from vidpipe.adapters.source_fetcher import GuardedSourceFetcher, SourceUrlPolicy
from vidpipe.adapters.usage_store import DynamoUsageStore
from vidpipe.domain.delivery_attempts import is_last_attempt
from vidpipe.domain.errors import VidpipeError
from vidpipe.runtime.observability import correlate, logger, tracer
from vidpipe.runtime.settings import get_settings
from vidpipe.runtime.sqs_message_policy import hold_message, schedule_retry

processor = BatchProcessor(event_type=EventType.SQS)
# getaddrinfo; a test puts a stub here (tests never resolve real names).
resolve_host: Resolver = system_resolver


def source_fetcher() -> GuardedSourceFetcher:
    """The webhooks' outbound rules (the same allow-list), https only except
    for the allowed hosts (vidpipe.adapters.source_fetcher)."""
    settings = get_settings()
    policy = OutboundPolicy.build(
        allow_http=True,
        allowed_hosts=settings.webhook_allowed_hosts,
        own_endpoint_urls=settings.own_endpoint_urls,
    )
    return GuardedSourceFetcher(SourceUrlPolicy(OutboundGuard(policy, resolve_host)))


def handle_record(record: SQSRecord) -> None:
    settings = get_settings()
    try:
        job_id = str(json.loads(record.body)["job_id"])
    except (ValueError, KeyError, TypeError) as exc:
        logger.error("dropping a message that is not an import request", extra={"reason": str(exc)})
        return
    correlate(job_id)
    attempt = int(record.attributes.approximate_receive_count)
    try:
        # Held in short leases, as the stages hold theirs: a function killed mid-download
        # gives its message back within one lease, not after the queue's 72 minutes.
        with hold_message(record.receipt_handle, queue_url=settings.queue_url, lease_s=settings.lease_s):
            outcome = import_source(
                job_id,
                jobs=DynamoJobStore(dynamodb_client(), settings.jobs_table),
                fetcher=source_fetcher(),
                store=S3ObjectStore(s3_client(), settings.uploads_bucket),
                limits=ImportLimits(max_bytes=settings.max_upload_bytes, deadline_s=settings.import_deadline_s),
                quota=ImportQuota(settings.owner_limits(), DynamoUsageStore(dynamodb_client(), settings.jobs_table)),
                # The status function's source: webhooks and subscribers see one kind of "Job Failed".
                publisher=EventBridgePublisher(events_client(), settings.event_bus_name, source="vidpipe.status"),
                last_attempt=is_last_attempt(attempt, settings.max_receive_count),
            )
        logger.info("import done", extra={"result": outcome.result, "detail": outcome.detail, "size": outcome.size})
    except Exception as exc:
        # A source that may answer later, or our own failure (S3, DynamoDB): tried
        # again after our backoff. What no retry can fix has already failed the job.
        reason = exc.message if isinstance(exc, VidpipeError) else repr(exc)
        logger.warning("import failed; it will be tried again", extra={"attempt": attempt, "reason": reason})
        schedule_retry(record.receipt_handle, attempt)
        raise
    finally:
        logger.remove_keys(["job_id", "correlation_id"])


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=handle_record, processor=processor, context=context)
