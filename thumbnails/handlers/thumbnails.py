"""Thumbnails Lambda: an SQS batch of "Object Created" events → poster,
thumbnails, sprite sheet and WebVTT storyboard.

Wiring only; the work is in thumbnails.domain_logic and vidpipe.stage_runner."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from thumbnails.domain_logic.thumbnail_set import make_thumbnails
from vidpipe.events import Stage
from vidpipe.observability import Invocation, logger, tracer
from vidpipe.stage_runner import StageContext, run_stage_for_record

RESERVED_TIME_S = 30  # kept back from the Lambda timeout to upload and report

processor = BatchProcessor(event_type=EventType.SQS)


def thumbnails(context: StageContext, *, timeout_s: float) -> dict[str, Any]:
    return make_thumbnails(context.source_path, context.output_dir, timeout_s=timeout_s).to_outputs()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    timeout_s = max(20.0, context.get_remaining_time_in_millis() / 1000 - RESERVED_TIME_S)

    def handle(record: SQSRecord) -> None:
        run_stage_for_record(
            record.body,
            receive_count=int(record.attributes.approximate_receive_count),
            receipt_handle=record.receipt_handle,
            invocation=Invocation.of(context),
            sent_timestamp_ms=record.attributes.sent_timestamp,
            stage=Stage.THUMBNAILS,
            output_folder="thumbnails",
            work=lambda ctx: thumbnails(ctx, timeout_s=timeout_s),
        )

    return process_partial_response(event=event, record_handler=handle, processor=processor, context=context)
