"""Webhook Lambda: "Job Ready" / "Job Failed" from its queue → one signed POST
to each URL the job's owner registered. Wiring only; the rules are in
job_lifecycle.domain_logic.webhook_delivery, the signature in vidpipe.domain.webhooks."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from job_lifecycle.domain_logic.webhook_delivery import JobFinishedNotice, deliver
from vidpipe.adapters.aws_clients import dynamodb_client
from vidpipe.adapters.job_store import DynamoJobStore
from vidpipe.adapters.outbound_guard import OutboundGuard, OutboundPolicy, Resolver, system_resolver
from vidpipe.adapters.secrets import signing_keys
from vidpipe.adapters.timeline_store import DynamoTimeline
from vidpipe.adapters.webhook_sender import HttpWebhookSender
from vidpipe.adapters.webhook_store import DynamoWebhookStore
from vidpipe.domain.access import WEBHOOK_SIGNING
from vidpipe.domain.delivery_attempts import is_last_attempt
from vidpipe.domain.errors import ValidationFailed, WebhookDeliveryFailed
from vidpipe.domain.timeline import Invocation
from vidpipe.runtime.observability import correlate, logger, tracer
from vidpipe.runtime.settings import get_settings
from vidpipe.runtime.sqs_message_policy import schedule_retry

processor = BatchProcessor(event_type=EventType.SQS)
# getaddrinfo; a test puts a stub here (tests never resolve real names).
resolve_host: Resolver = system_resolver


def _sender() -> HttpWebhookSender:
    settings = get_settings()
    policy = OutboundPolicy.build(
        allow_http=settings.webhook_allow_http,
        allowed_hosts=settings.webhook_allowed_hosts,
        own_endpoint_urls=settings.own_endpoint_urls,
    )
    return HttpWebhookSender(OutboundGuard(policy, resolve_host), timeout_s=10)


def handle_record(record: SQSRecord, lambda_context: LambdaContext | None = None) -> None:
    settings = get_settings()
    try:
        notice = JobFinishedNotice.from_event(json.loads(record.body))
    except (ValueError, ValidationFailed) as exc:
        logger.error("dropping a message that is not a job finished event", extra={"reason": str(exc)})
        return
    correlate(notice.job_id)
    attempt = int(record.attributes.approximate_receive_count)
    try:
        outcome = deliver(
            notice,
            jobs=DynamoJobStore(dynamodb_client(), settings.jobs_table),
            registry=DynamoWebhookStore(dynamodb_client(), settings.webhooks_table),
            timeline=DynamoTimeline(dynamodb_client(), settings.job_events_table),
            sender=_sender(),
            signing_keys=signing_keys(WEBHOOK_SIGNING),
            invocation=Invocation.of(lambda_context),
            attempt=attempt,
            last_attempt=is_last_attempt(attempt, settings.max_receive_count),
        )
        logger.info(
            "webhooks done",
            extra={"delivered": len(outcome.delivered), "already_delivered": len(outcome.already_delivered)},
        )
    except WebhookDeliveryFailed as exc:
        logger.warning("webhook delivery failed", extra={"attempt": attempt, "reason": exc.message})
        schedule_retry(record.receipt_handle, attempt)
        raise
    finally:
        logger.remove_keys(["job_id", "correlation_id"])


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=handle_record, processor=processor, context=context)
