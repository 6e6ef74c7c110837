"""Thumbnails Lambda: an SQS batch of "Object Created" events → poster,
thumbnails, sprite sheet and WebVTT storyboard. With the MediaConvert backend
the batch holds MediaConvert "COMPLETE" events instead, and the same files are
made from the job's frame captures.

Wiring only; the work is in thumbnails.domain_logic and vidpipe.runtime.stage_runner."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from thumbnails.domain_logic.captures import thumbnails_from_captures
from thumbnails.domain_logic.seek_grab import make_thumbnails_by_seeks, seekable_by_index, uses_seeks
from thumbnails.domain_logic.thumbnail_set import make_thumbnails
from vidpipe.adapters.ffmpeg.probe import probe_media_url
from vidpipe.domain.errors import FfmpegError, MediaError
from vidpipe.domain.events import Stage
from vidpipe.domain.mediaconvert_events import is_state_change, parse_captures_ready
from vidpipe.domain.source_info import SourceInfo
from vidpipe.domain.storage_keys import THUMBNAILS_FOLDER
from vidpipe.domain.timeline import Invocation
from vidpipe.runtime.observability import logger, tracer
from vidpipe.runtime.settings import get_settings
from vidpipe.runtime.stage_inputs import StageContext, StageInput, StageWork, upload_input
from vidpipe.runtime.stage_runner import run_stage_for_record

RESERVED_TIME_S = 30  # kept back from the Lambda timeout to upload and report
PROBE_TIMEOUT_S = 60.0  # ffprobe of the upload's URL: a few ranged GETs of its index

processor = BatchProcessor(event_type=EventType.SQS)


def thumbnails(context: StageContext, *, timeout_s: float) -> dict[str, Any]:
    """A long upload (one the transcode splits into chunks, so its transcode is
    quick) by one seek per tile over its URL; a short one downloaded and read in
    one pass, which is quicker for it (docs/PERFORMANCE.md, "Thumbnails by seeks")."""
    source = _probe_by_url(context)
    if source is not None and uses_seeks(source.duration_s, chunk_threshold_s=get_settings().chunk_threshold_s):
        url = context.input_url("source")
        return make_thumbnails_by_seeks(url, context.output_dir, source=source, timeout_s=timeout_s).to_outputs()
    context.fetch_inputs()
    return make_thumbnails(context.source_path, context.output_dir, timeout_s=timeout_s).to_outputs()


def _probe_by_url(context: StageContext) -> SourceInfo | None:
    """The upload probed over its URL when that answer is enough to seek in it;
    None otherwise (the one-pass path then downloads and probes it in full)."""
    try:
        source = probe_media_url(context.input_url("source"), timeout_s=PROBE_TIMEOUT_S)
    except (MediaError, FfmpegError) as exc:
        logger.info("probing the upload by URL failed; downloading it", extra={"reason": str(exc)})
        return None
    return source if seekable_by_index(source.demuxer) else None


def captures_input(eventbridge_event: dict[str, Any]) -> StageInput:
    """A MediaConvert COMPLETE event: fetch its frame captures, numbered in time order."""
    captures = parse_captures_ready(eventbridge_event)
    return StageInput(job_id=captures.job_id, objects={f"capture_{i:05d}.jpg": k for i, k in enumerate(captures.keys)})


def thumbnails_of_captures(context: StageContext, eventbridge_event: dict[str, Any]) -> dict[str, Any]:
    captures = parse_captures_ready(eventbridge_event)
    return thumbnails_from_captures(
        [context.inputs[name] for name in sorted(context.inputs)],
        context.output_dir,
        interval_ms=captures.interval_ms,
        duration_s=captures.duration_s,
    ).to_outputs()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    timeout_s = max(20.0, context.get_remaining_time_in_millis() / 1000 - RESERVED_TIME_S)

    def handle(record: SQSRecord) -> None:
        event = _json_or_none(record.body)
        # Thumbnails come from the upload itself, or (MediaConvert backend) from
        # the job's frame captures once its COMPLETE state change arrives.
        work: StageWork
        if event is not None and is_state_change(event):
            work = partial(thumbnails_of_captures, eventbridge_event=event)
            read_input, input_bucket = captures_input, get_settings().outputs_bucket
        else:
            work = partial(thumbnails, timeout_s=timeout_s)
            read_input, input_bucket = upload_input, None
        run_stage_for_record(
            record.body,
            receive_count=int(record.attributes.approximate_receive_count),
            receipt_handle=record.receipt_handle,
            invocation=Invocation.of(context),
            sent_timestamp_ms=record.attributes.sent_timestamp,
            stage=Stage.THUMBNAILS,
            output_folder=THUMBNAILS_FOLDER,
            work=work,
            read_input=read_input,
            input_bucket=input_bucket,
            # An upload is downloaded only when its thumbnails are made in one pass (see thumbnails()).
            fetch_inputs_first=read_input is captures_input,
        )

    return process_partial_response(event=event, record_handler=handle, processor=processor, context=context)


def _json_or_none(body: str) -> Any:
    try:
        return json.loads(body)
    except json.JSONDecodeError:
        return None  # run_stage_for_record logs and drops it
