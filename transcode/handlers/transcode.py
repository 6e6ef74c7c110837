"""Transcode Lambda: an SQS batch of "Object Created" events → HLS ladders.

Wiring only; the work is in transcode.domain_logic and vidpipe.runtime.stage_runner."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from transcode.domain_logic.encode_cost import lambda_budget
from transcode.domain_logic.fanout import fan_out
from transcode.domain_logic.hls import MASTER_PLAYLIST_NAME
from transcode.domain_logic.ladder import LadderConfig, ladder_from_text
from transcode.domain_logic.mediaconvert_submit import submit_ladder_job
from transcode.domain_logic.mp4_download import write_mp4_download
from transcode.domain_logic.subtitle_extraction import subtitle_outputs
from transcode.domain_logic.transcode_choices import Encoding, choose_encoding, url_probe_is_enough
from transcode.domain_logic.transcoding import PROBE_TIMEOUT_S, rendition_summary, source_summary, transcode_to_hls
from transcode.handlers.chunk_encode import RESERVED_TIME_S as CHUNK_RESERVED_TIME_S
from vidpipe.adapters.aws_clients import dynamodb_client, events_client, mediaconvert_client, s3_client, sqs_client
from vidpipe.adapters.chunk_queue import SqsChunkQueue
from vidpipe.adapters.event_bus import EventBridgePublisher
from vidpipe.adapters.ffmpeg.probe import probe_media, probe_media_url
from vidpipe.adapters.job_store import DynamoJobStore
from vidpipe.adapters.mediaconvert import MediaConvertJobs
from vidpipe.adapters.s3 import S3ObjectStore
from vidpipe.adapters.usage_store import DynamoUsageStore
from vidpipe.domain.errors import FfmpegError, JobNotFound, MediaError
from vidpipe.domain.events import CHUNKS_SOURCE, ChunkRequested, Stage, StageEvent
from vidpipe.domain.quotas import charge_video_minutes
from vidpipe.domain.source_info import SourceInfo
from vidpipe.domain.storage_keys import HLS_FOLDER, MP4_DOWNLOAD_NAME, job_outputs_prefix, upload_key, work_key
from vidpipe.domain.timeline import Invocation
from vidpipe.domain.webvtt import MPEGTS_TIME_ZERO
from vidpipe.runtime.observability import logger, metrics, record_transcode, tracer
from vidpipe.runtime.settings import get_settings
from vidpipe.runtime.stage_inputs import StageContext, StageWork
from vidpipe.runtime.stage_runner import INPUT_URL_EXPIRES_S, run_stage_for_record

# Time kept back from the Lambda timeout for uploading outputs and reporting a
# failure: FFmpeg is stopped before Lambda would kill us without a word.
RESERVED_TIME_S = 90

processor = BatchProcessor(event_type=EventType.SQS)


def probe_upload(context: StageContext) -> SourceInfo:
    """What the upload is: probed by its URL when that answer is enough
    (url_probe_is_enough); otherwise, or when ffprobe cannot answer over HTTP,
    downloaded and probed in full (with the checks and precise errors of
    probe_media), as is an upload already here."""
    if not context.source_path.exists():
        try:
            source = probe_media_url(context.input_url("source"), timeout_s=PROBE_TIMEOUT_S)
            if url_probe_is_enough(source.demuxer):
                return source
        except (MediaError, FfmpegError) as exc:
            logger.info("probing the upload by URL failed; downloading it", extra={"reason": str(exc)})
    context.fetch_inputs()
    return probe_media(context.source_path, timeout_s=PROBE_TIMEOUT_S)


def charge_owner_minutes(job_id: str, duration_s: float) -> None:
    """Charge the probed duration to the job owner's day (vidpipe.domain.quotas): the
    first moment the duration is known, before any encoding is spent on it.
    Raises QuotaExceeded (the stage fails the job QUOTA_EXCEEDED)."""
    settings = get_settings()
    try:
        owner = DynamoJobStore(dynamodb_client(), settings.jobs_table).get(job_id).owner
    except JobNotFound:
        # An object put in the bucket by hand: no job, no owner to charge (and
        # the status function drops its events).
        logger.warning("no job for this upload; its minutes are not charged to anyone")
        return
    charge_video_minutes(
        owner,
        job_id,
        duration_s,
        limits=settings.owner_limits(),
        usage=DynamoUsageStore(dynamodb_client(), settings.jobs_table),
        now=datetime.now(UTC),
    )


def deployment_ladder() -> LadderConfig:
    """The ladder the template configures (LadderRungs, LadderRateControl)."""
    settings = get_settings()
    return ladder_from_text(settings.ladder_rungs, settings.ladder_rate_control)


def log_analysis_fallback(reason: str) -> None:
    logger.warning("per-title analysis failed; the ladder uses its default CRF", extra={"reason": reason})


def transcode(
    context: StageContext,
    *,
    timeout_s: float,
    max_duration_s: float,
    memory_mb: int,
    charge_minutes: Callable[[str, float], None] | None = None,
) -> dict[str, Any] | None:
    """``charge_minutes(job_id, duration_s)`` charges the probed duration to the
    owner's day before anything is encoded (the handler passes
    charge_owner_minutes; None charges nothing, for a caller without a jobs table)."""
    settings = get_settings()
    source = probe_upload(context)
    encoding = choose_encoding(
        source.duration_s, chunk_threshold_s=settings.chunk_threshold_s, max_duration_s=max_duration_s
    )
    if charge_minutes is not None and encoding.costs_minutes:
        charge_minutes(context.job_id, source.duration_s)
    if encoding is Encoding.CHUNKED:
        fan_out_to_chunks(context, source, timeout_s=timeout_s)
        return None
    # One process; for a video over the limit, it reports the source and refuses it.
    deadline = time.monotonic() + timeout_s
    context.fetch_inputs()
    probed: dict[str, Any] = {}

    def on_probed(probed_source: Any) -> None:
        probed.update(source_summary(probed_source))
        context.report_source(probed)

    started = time.monotonic()
    result = transcode_to_hls(
        context.source_path,
        context.output_dir,
        timeout_s=timeout_s,
        on_progress=context.report_progress,
        on_probed=on_probed,
        max_duration_s=max_duration_s,
        ladder_config=deployment_ladder(),
        on_analysis_fallback=log_analysis_fallback,
        # Refused before FFmpeg starts when this function could not finish it in time.
        budget=lambda_budget(memory_mb, timeout_s),
        # Early playback: the lowest rung goes out (and the job is playable) first.
        on_lowest_rung=lambda rendition: context.publish_playable(
            {"master_playlist": MASTER_PLAYLIST_NAME, "renditions": [rendition_summary(rendition)]}
        ),
    )
    record_transcode(time.monotonic() - started, probed.get("duration_s"))
    if result.analysis is not None:
        logger.info("per-title ladder", extra={"analysis": result.analysis.summary()})
    # Remuxed from a rung just written (no decode): seconds, uploaded with the ladder.
    write_mp4_download(
        context.output_dir, result.renditions, context.output_dir / MP4_DOWNLOAD_NAME,
        has_audio=result.source.has_audio, scratch=context.output_dir.parent / "mp4",
        timeout_s=max(1.0, deadline - time.monotonic()),
    )  # fmt: skip
    return {
        "master_playlist": result.master_playlist.name,
        "renditions": [rendition_summary(r, result.measured.get(r.name)) for r in result.renditions],
        **subtitle_outputs(result.subtitles.renditions, result.subtitles.skipped),
        "mp4": MP4_DOWNLOAD_NAME,
        # Where captions added later put media time 0 (transcode.domain_logic.sidecar_captions).
        "mpegts_time_zero": MPEGTS_TIME_ZERO,
    }


def fan_out_to_chunks(context: StageContext, source: SourceInfo, *, timeout_s: float) -> None:
    """Plan a long upload here and order its chunks: the chunk functions encode
    them (chunk_encode), each reading its own part of the upload, and the last
    one stitches and reports Transcode Completed."""
    settings = get_settings()
    context.report_source(source_summary(source))
    work_store = S3ObjectStore(s3_client(), settings.uploads_bucket)
    publisher = EventBridgePublisher(events_client(), settings.event_bus_name, source=CHUNKS_SOURCE)
    stage_publisher = EventBridgePublisher(events_client(), settings.event_bus_name, source="vidpipe.transcode")

    # Chunk orders go straight to the chunk queue, one message group per
    # job, so jobs share the bounded chunk functions fairly (vidpipe.adapters.chunk_queue).
    chunk_queue = SqsChunkQueue(sqs_client(), settings.chunk_queue_url) if settings.chunk_queue_url else None

    def publish(event: Any) -> None:
        if isinstance(event, ChunkRequested) and chunk_queue is not None:
            chunk_queue.send(event)
        else:
            (stage_publisher if isinstance(event, StageEvent) else publisher).publish(event)

    # The chunks and the analysis read a copy of the accepted version by
    # ranges: ministack 1.5.33 ignores Range on a GET by VersionId (it sends
    # the whole object), and one copy per long upload costs little on AWS.
    source_key = pinned_copy(context, work_store, CHUNKS_INPUT_NAME)
    total = fan_out(
        context.job_id, source, context.output_dir.parent,
        source_key=source_key,
        local_source=context.source_path if context.source_path.exists() else None,
        chunk_s=settings.chunk_s, timeout_s=timeout_s, work_store=work_store, publish=publish,
        ladder_config=deployment_ladder(),
        source_url=work_store.presigned_get(source_key, expires_s=INPUT_URL_EXPIRES_S),
        on_analysis_fallback=log_analysis_fallback,
        # What one chunk function can do in the time its handler gives FFmpeg.
        chunk_budget=lambda_budget(settings.chunk_encode_memory_mb,
                                   settings.chunk_encode_timeout_s - CHUNK_RESERVED_TIME_S),
    )  # fmt: skip
    logger.info("transcode fanned out", extra={"chunks": total, "duration_s": source.duration_s})


# Readers that cannot (MediaConvert: an s3:// input names no version) or had
# better not (ranged reads on ministack) ask for a version read a copy of the
# accepted one in the chunks/ work area: no presigned POST writes there, only
# our functions, and the bucket's lifecycle deletes it.
MEDIACONVERT_INPUT_NAME = "mediaconvert-source"
CHUNKS_INPUT_NAME = "source"


def pinned_copy(context: StageContext, uploads: S3ObjectStore, name: str) -> str:
    """The key of a copy of the accepted version of the upload (``chunks/{job_id}/{name}``),
    or the upload itself when its version is unknown (a bucket without versioning).
    Raises StorageError."""
    source_key = upload_key(context.job_id)
    version = context.input_versions.get("source")
    if not version:
        return source_key
    pinned_key = work_key(context.job_id, name)
    uploads.copy_version(source_key, version, pinned_key)
    return pinned_key


def submit_to_mediaconvert(context: StageContext, *, timeout_s: float) -> None:
    """The MediaConvert backend: the job's state changes finish the stage."""
    settings = get_settings()

    def on_probed(source: SourceInfo) -> None:
        charge_owner_minutes(context.job_id, source.duration_s)
        context.report_source(source_summary(source))

    input_key = pinned_copy(context, S3ObjectStore(s3_client(), settings.uploads_bucket), MEDIACONVERT_INPUT_NAME)
    job_id = submit_ladder_job(
        context.source_path,
        job_id=context.job_id,
        source_url=f"s3://{settings.uploads_bucket}/{input_key}",
        outputs_url=f"s3://{settings.outputs_bucket}/{job_outputs_prefix(context.job_id)}",
        stack_name=settings.stack_name,
        role_arn=settings.mediaconvert_role_arn,
        submitter=MediaConvertJobs(mediaconvert_client()),
        timeout_s=timeout_s,
        max_duration_s=settings.max_duration_s,
        rate_control=settings.mediaconvert_rate_control,
        ladder_config=deployment_ladder(),
        on_probed=on_probed,
    )
    logger.info("MediaConvert job submitted", extra={"mediaconvert_job_id": job_id})


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    timeout_s = max(30.0, context.get_remaining_time_in_millis() / 1000 - RESERVED_TIME_S)
    max_duration_s = get_settings().max_duration_s
    on_mediaconvert = get_settings().transcode_backend == "mediaconvert"
    work: StageWork = (
        partial(submit_to_mediaconvert, timeout_s=timeout_s)
        if on_mediaconvert
        else partial(
            transcode,
            timeout_s=timeout_s,
            max_duration_s=max_duration_s,
            memory_mb=int(context.memory_limit_in_mb),
            charge_minutes=charge_owner_minutes,
        )
    )

    def handle(record: SQSRecord) -> None:
        run_stage_for_record(
            record.body,
            receive_count=int(record.attributes.approximate_receive_count),
            receipt_handle=record.receipt_handle,
            invocation=Invocation.of(context),
            sent_timestamp_ms=record.attributes.sent_timestamp,
            stage=Stage.TRANSCODE,
            output_folder=HLS_FOLDER,
            work=work,
            # The FFmpeg backend downloads only what it encodes here (see probe_upload).
            fetch_inputs_first=on_mediaconvert,
        )

    return process_partial_response(event=event, record_handler=handle, processor=processor, context=context)
