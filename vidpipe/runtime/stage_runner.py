"""What every processing stage (transcode, thumbnails) does around its own work.

For one SQS record holding S3's "Object Created" event:

1. find the job id in the object key and put it on every log line;
2. ask the job whether this upload may be worked on (:func:`admit_upload`):
   the status function accepts (pins) the first write of the key it sees; a
   later write, or any write to a cancelled or finished job, is logged and
   dropped here, before any work or event;
3. publish "<Stage> Started", download the accepted version of the source into
   a scratch folder (refused with SOURCE_TOO_LARGE when the folder cannot hold it);
4. call the stage's ``work`` function, which writes files into its output
   folder, reports progress and returns a description of the outputs;
5. upload what it wrote under ``jobs/{job_id}/{output_folder}/`` (vidpipe.domain.storage_keys) and publish
   "<Stage> Completed" with the outputs (file names relative to that ``prefix``).

An event that is not an upload of ours is logged and dropped: retrying it
would fail the same way.

Two variations (both optional arguments): a stage may read something else than
the upload (``read_input``: the thumbnails function reads MediaConvert's frame
captures), and its work may hand the job to a service that reports completion
on its own (``work`` returns None: the MediaConvert backend), in which case
nothing is uploaded and no "Completed" is published here.

A :class:`~vidpipe.domain.errors.MediaError` is final (the same bytes fail the same
way), and so is :class:`~vidpipe.domain.errors.QuotaExceeded` (the owner's day has no
room for the video until it rolls over): the stage publishes "<Stage> Failed"
with its code and the record counts as handled. Any other error is raised so SQS delivers the record again, except
on the last allowed attempt, where the job is failed with the reason rather
than left to the dead-letter queue alone.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidpipe.adapters.aws_clients import dynamodb_client, events_client, s3_client
from vidpipe.adapters.event_bus import EventBridgePublisher
from vidpipe.adapters.job_store import DynamoJobStore
from vidpipe.adapters.s3 import S3ObjectStore
from vidpipe.adapters.timeline_store import DynamoTimeline
from vidpipe.domain.delivery_attempts import gave_up_error, is_last_attempt, retry_delay_s
from vidpipe.domain.errors import JobDeleted, MediaError, QuotaExceeded, ValidationFailed, VidpipeError
from vidpipe.domain.events import Stage, StageEvent, StageEventKind, utc_now
from vidpipe.domain.storage_keys import job_outputs_prefix, stage_outputs_prefix
from vidpipe.domain.timeline import Invocation, TimelineEntry, TimelineRecorder
from vidpipe.runtime.deletion_guard import WritesForLiveJob, job_is_gone
from vidpipe.runtime.observability import correlate, logger
from vidpipe.runtime.scratch import check_scratch_room
from vidpipe.runtime.settings import get_settings
from vidpipe.runtime.sqs_message_policy import StageAttempt, hold_message, queued_at_of, schedule_retry
from vidpipe.runtime.stage_inputs import (
    ACCEPTANCE_WAIT_S,
    EventPublisher,
    JobReader,
    OutputStore,
    SourceStore,
    StageContext,
    StageInput,
    StageWork,
    admit_upload,
    upload_input,
)

PROGRESS_MIN_INTERVAL_S = 2.0
PROGRESS_MIN_STEP = 0.05
# How long a stage's presigned input URL lives: past the longest FFmpeg run reading it.
INPUT_URL_EXPIRES_S = 1200


@dataclass
class _ProgressThrottle:
    publish: Callable[[float], None]
    last_time: float = 0.0
    last_value: float = 0.0

    def __call__(self, fraction: float) -> None:
        now = time.monotonic()
        if now - self.last_time >= PROGRESS_MIN_INTERVAL_S and fraction - self.last_value >= PROGRESS_MIN_STEP:
            self.last_time, self.last_value = now, fraction
            self.publish(fraction)


def run_stage(
    *,
    stage: Stage,
    eventbridge_event: dict[str, Any],
    receive_count: int,
    max_receive_count: int,
    output_folder: str,
    source_store: SourceStore,
    output_store: OutputStore,
    publisher: EventPublisher,
    work: StageWork,
    scratch_root: Path | None = None,
    read_input: Callable[[dict[str, Any]], StageInput] = upload_input,
    attempt: StageAttempt | None = None,
    timeline: TimelineRecorder | None = None,
    fetch_inputs_first: bool = True,
    jobs: JobReader | None = None,
    free_bytes: Callable[[Path], int] | None = None,
    acceptance_wait_s: float = ACCEPTANCE_WAIT_S,
) -> None:
    """Run ``work`` for the upload named in ``eventbridge_event`` (or whatever
    ``read_input`` finds in it). See the module doc.

    With ``jobs``, an upload is worked on only once its job accepted it
    (:func:`admit_upload`), and read at the accepted version only.
    ``acceptance_wait_s`` is how long to wait for that.
    ``free_bytes`` tells how much the scratch folder can still hold (the
    disk's free space by default).

    With ``fetch_inputs_first`` False nothing is downloaded before ``work``,
    which calls ``context.fetch_inputs()`` if it needs the files (the transcode
    stage plans a long MP4 from its URL and never downloads it).

    With ``attempt``, every event carries its trace; with ``timeline``, a failed
    attempt is written to the job's timeline (its retry delay, or that the
    message now goes to the dead-letter queue)."""
    try:
        stage_input = read_input(eventbridge_event)
    except ValidationFailed as exc:
        logger.error("dropping an event this stage does not read", extra={"reason": exc.message})
        return
    job_id = stage_input.job_id
    correlate(job_id)
    logger.append_keys(stage=stage.value)

    def publish(kind: StageEventKind, **fields: Any) -> None:
        trace = attempt.trace() if attempt else None
        publisher.publish(StageEvent(job_id=job_id, stage=stage, kind=kind, trace=trace, **fields))

    scratch = Path(tempfile.mkdtemp(prefix=f"{stage.value}-{job_id}-", dir=scratch_root))
    try:
        upload = stage_input.upload
        versions: dict[str, str] = {}
        if upload is not None and jobs is not None:
            why_not = admit_upload(jobs, upload, wait_s=acceptance_wait_s)
            if why_not is not None:
                # Dropped, not retried: the job's answer will not change.
                logger.info("stage skipped: nothing to do for this upload", extra={"reason": why_not})
                return
        elif jobs is not None and job_is_gone(jobs, job_id):
            # Not an upload (MediaConvert's frame captures): the job is read here instead.
            logger.info("stage skipped: the job was deleted")
            return
        if jobs is not None:
            # A delete while this stage works: what it writes afterwards is removed (vidpipe.runtime.deletion_guard).
            output_store = WritesForLiveJob(output_store, jobs=jobs, job_id=job_id, folder=job_outputs_prefix(job_id))
        if upload is not None and jobs is not None:
            version = upload.version_id or source_store.version_with_etag(upload.key, upload.etag)
            if version:
                versions["source"] = version
            else:
                logger.warning("the upload's version is unknown (bucket without versioning?): read by ETag only")
        logger.info("stage started", extra={"attempt": receive_count})
        publish(StageEventKind.STARTED)
        inputs = {name: scratch / name for name in stage_input.objects}
        fetched: list[bool] = []

        def fetch_inputs() -> None:
            if not fetched:
                if upload is not None:
                    check_scratch_room(scratch, upload.size, what="the upload", free_bytes=free_bytes)
                for name, key in stage_input.objects.items():
                    pinned_etag = upload.etag if upload is not None and jobs is not None and name == "source" else None
                    source_store.download(key, inputs[name], version_id=versions.get(name), etag=pinned_etag)
                fetched.append(True)

        if fetch_inputs_first:
            fetch_inputs()
        source_path = scratch / "source"
        context = StageContext(
            job_id=job_id,
            source_path=source_path,
            output_dir=scratch / "out",
            report_progress=_ProgressThrottle(lambda f: publish(StageEventKind.PROGRESS, progress=round(f, 3))),
            report_source=lambda source: publish(StageEventKind.PROGRESS, progress=0.0, source=source),
            inputs=inputs,
            fetch_inputs=fetch_inputs,
            input_url=lambda name: source_store.presigned_get(
                stage_input.objects[name], expires_s=INPUT_URL_EXPIRES_S, version_id=versions.get(name)
            ),
            input_versions=versions,
        )
        prefix = stage_outputs_prefix(job_id, output_folder)

        def publish_playable(outputs: dict[str, Any]) -> None:
            output_store.upload_tree(context.output_dir, prefix)
            publish(StageEventKind.PROGRESS, outputs={"prefix": prefix, **outputs, "playable": True})
            logger.info("first outputs playable", extra={"outputs": outputs})

        context.publish_playable = publish_playable
        context.output_dir.mkdir()
        outputs = work(context)
        if outputs is None:
            logger.info("stage handed over; its completion is reported by the service that took it")
            return
        output_store.upload_tree(context.output_dir, prefix)
        outputs = {"prefix": prefix, **outputs}
        publish(StageEventKind.COMPLETED, outputs=outputs)
        logger.info("stage completed", extra={"outputs": outputs})
    except JobDeleted:
        logger.info("stage dropped: the job was deleted while it worked")
    except (MediaError, QuotaExceeded) as exc:
        logger.warning("media rejected", extra={"error": exc.to_dict()})
        publish(StageEventKind.FAILED, error=exc.to_dict())
    except Exception as exc:
        _record_failed_attempt(timeline, job_id, stage, attempt, exc, receive_count, max_receive_count)
        if not is_last_attempt(receive_count, max_receive_count):
            logger.exception("stage failed; SQS will retry", extra={"attempt": receive_count})
            raise
        error = gave_up_error(exc, receive_count)
        logger.exception("stage failed on its last attempt", extra={"error": error})
        publish(StageEventKind.FAILED, error=error)
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        logger.remove_keys(["job_id", "correlation_id", "stage"])


def _record_failed_attempt(
    timeline: TimelineRecorder | None,
    job_id: str,
    stage: Stage,
    attempt: StageAttempt | None,
    exc: Exception,
    receive_count: int,
    max_receive_count: int,
) -> None:
    """Best effort: the retry must happen even when the timeline cannot be written."""
    if timeline is None:
        return
    attempt = attempt or StageAttempt(number=receive_count)
    last = is_last_attempt(receive_count, max_receive_count)
    details: dict[str, Any] = {
        "attempt": receive_count,
        "error": exc.to_dict()
        if isinstance(exc, VidpipeError)
        else {"code": "INTERNAL_ERROR", "message": f"{type(exc).__name__}: {exc}"},
    }
    if last:
        details["dead_letter"] = True
    elif attempt.retry_in_s is not None:
        details["retry_in_s"] = attempt.retry_in_s
    try:
        timeline.record(
            TimelineEntry(
                job_id=job_id,
                at=utc_now(),
                what=f"{stage.value}.attempt_failed",
                function=attempt.function,
                request_id=attempt.request_id,
                identity=f"{attempt.request_id}|{receive_count}",
                details=details,
            )
        )
    except Exception:
        logger.exception("could not write the failed attempt to the job's timeline")


def run_stage_for_record(
    record_body: str,
    *,
    receive_count: int,
    stage: Stage,
    output_folder: str,
    work: StageWork,
    receipt_handle: str | None = None,
    read_input: Callable[[dict[str, Any]], StageInput] = upload_input,
    input_bucket: str | None = None,
    invocation: Invocation | None = None,
    sent_timestamp_ms: str | int | None = None,
    fetch_inputs_first: bool = True,
) -> None:
    """:func:`run_stage` wired to the real adapters, for one SQS record of a
    stage function (the two stage handlers differ only in their arguments).

    When an attempt fails, the message's visibility is cut to a short backoff
    (to zero after the last attempt, so it goes to the dead-letter queue at
    once): otherwise SQS would act on it only after the queue's visibility
    timeout, which must exceed the longest transcode (90 minutes). While the
    attempt runs, the message is held in short leases (:mod:`vidpipe.runtime.sqs_message_policy`),
    so an attempt that dies without a word is retried within one lease.

    ``input_bucket`` is where ``read_input``'s objects are (the uploads bucket
    by default)."""
    try:
        eventbridge_event = json.loads(record_body)
    except json.JSONDecodeError:
        logger.error("dropping an SQS message that is not JSON")
        return
    settings = get_settings()
    attempt = StageAttempt(
        function=invocation.function if invocation else "",
        request_id=invocation.request_id if invocation else "",
        number=receive_count,
        queued_at=queued_at_of(sent_timestamp_ms),
        retry_in_s=retry_delay_s(receive_count, settings.retry_base_s),
    )
    timeline = DynamoTimeline(dynamodb_client(), settings.job_events_table) if settings.job_events_table else None
    try:
        with hold_message(receipt_handle, queue_url=settings.queue_url, lease_s=settings.lease_s):
            run_stage(
                stage=stage,
                eventbridge_event=eventbridge_event,
                receive_count=receive_count,
                max_receive_count=settings.max_receive_count,
                output_folder=output_folder,
                source_store=S3ObjectStore(s3_client(), input_bucket or settings.uploads_bucket),
                output_store=S3ObjectStore(s3_client(), settings.outputs_bucket),
                publisher=EventBridgePublisher(
                    events_client(), settings.event_bus_name, source=f"vidpipe.{stage.value}"
                ),
                work=work,
                read_input=read_input,
                attempt=attempt,
                timeline=timeline,
                fetch_inputs_first=fetch_inputs_first,
                jobs=DynamoJobStore(dynamodb_client(), settings.jobs_table),
            )
    except Exception:
        if receipt_handle:
            schedule_retry(receipt_handle, receive_count)
        raise
