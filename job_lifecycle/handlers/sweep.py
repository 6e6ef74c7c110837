"""Sweep Lambda: run by a scheduled EventBridge rule, it EXPIREs jobs whose
upload never arrived and FAILs jobs whose stage was dead-lettered or that
stopped moving. Wiring only; the rules
are in job_lifecycle.domain_logic.sweep."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from job_lifecycle.domain_logic.sweep import JobFolders, SweepResult, sweep
from vidpipe.adapters.aws_clients import dynamodb_client, events_client, s3_client, sqs_client
from vidpipe.adapters.dead_letters import DeadLetterQueues
from vidpipe.adapters.event_bus import EventBridgePublisher
from vidpipe.adapters.job_store import DynamoJobStore
from vidpipe.adapters.s3 import S3ObjectStore
from vidpipe.adapters.timeline_store import DynamoTimeline
from vidpipe.adapters.usage_store import DynamoUsageStore
from vidpipe.domain.errors import VidpipeError
from vidpipe.domain.events import utc_now
from vidpipe.domain.timeline import Invocation, TimelineEntry
from vidpipe.runtime.observability import logger, metrics, record_job_finished, tracer
from vidpipe.runtime.settings import get_settings


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
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = get_settings()
    result = sweep(
        DynamoJobStore(dynamodb_client(), settings.jobs_table),
        S3ObjectStore(s3_client(), settings.uploads_bucket),
        EventBridgePublisher(events_client(), settings.event_bus_name, source="vidpipe.status"),
        now=sweep_time(event),
        upload_expiry_s=settings.upload_expiry_s,
        stall_limit_s=settings.stall_limit_s,
        dead_letters=DeadLetterQueues(sqs_client(), settings.stage_dead_letter_queues),
        max_attempts=settings.max_receive_count,
        usage=DynamoUsageStore(dynamodb_client(), settings.jobs_table),
        folders=JobFolders(
            uploads=S3ObjectStore(s3_client(), settings.uploads_bucket),
            outputs=S3ObjectStore(s3_client(), settings.outputs_bucket),
        ),
    )
    for job_id in result.expired:
        logger.info("upload expired", extra={"job_id": job_id})
    for job_id in result.dead_lettered:
        logger.warning("dead-lettered job failed", extra={"job_id": job_id})
        record_job_finished("FAILED", "DEAD_LETTERED")
    for job_id in result.stalled:
        logger.warning("stalled job failed", extra={"job_id": job_id})
        record_job_finished("FAILED", "STAGE_STALLED")
    for job_id in result.deleted:
        logger.warning("an interrupted delete finished", extra={"job_id": job_id})
    _record_on_timelines(result, Invocation.of(context))
    return asdict(result)


def _record_on_timelines(result: SweepResult, invocation: Invocation) -> None:
    """Best effort: the jobs are already ended; a timeline entry is their story, not their state."""
    settings = get_settings()
    if not settings.job_events_table:
        return
    timeline = DynamoTimeline(dynamodb_client(), settings.job_events_table)
    for what, job_ids in (
        ("job.expired", result.expired),
        ("job.dead_lettered", result.dead_lettered),
        ("job.stalled", result.stalled),
        ("job.deleted", result.deleted),
    ):
        for job_id in job_ids:
            try:
                timeline.record(
                    TimelineEntry(
                        job_id=job_id,
                        at=utc_now(),
                        what=what,
                        function=invocation.function,
                        request_id=invocation.request_id,
                        identity=what,
                    )
                )
            except VidpipeError:
                logger.exception("could not write to the job's timeline", extra={"job_id": job_id})
