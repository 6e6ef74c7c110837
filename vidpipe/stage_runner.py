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
5. upload what it wrote under ``jobs/{job_id}/{output_folder}/`` and publish
   "<Stage> Completed" with the outputs (file names relative to that ``prefix``).

An event that is not an upload of ours is logged and dropped: retrying it
would fail the same way.

Two variations (both optional arguments): a stage may read something else than
the upload (``read_input``: the thumbnails function reads MediaConvert's frame
captures), and its work may hand the job to a service that reports completion
on its own (``work`` returns None: the MediaConvert backend), in which case
nothing is uploaded and no "Completed" is published here.

A :class:`~vidpipe.errors.MediaError` is final (the same bytes fail the same
way), and so is :class:`~vidpipe.errors.QuotaExceeded` (the owner's day has no
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
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from vidpipe.aws_clients import dynamodb_client, events_client, s3_client, sqs_client
from vidpipe.errors import JobNotFound, MediaError, QuotaExceeded, UploadNotAccepted, ValidationFailed, VidpipeError
from vidpipe.event_bus import EventBridgePublisher
from vidpipe.events import (
    Stage,
    StageEvent,
    StageEventKind,
    UploadCompleted,
    iso_utc,
    parse_object_created,
    utc_now,
)
from vidpipe.job_store import DynamoJobStore
from vidpipe.jobs import Job, awaits_acceptance, why_no_stage_runs
from vidpipe.message_lease import MessageLease
from vidpipe.observability import Invocation, correlate, logger
from vidpipe.scratch import check_scratch_room
from vidpipe.settings import get_settings
from vidpipe.storage import S3ObjectStore
from vidpipe.timeline import DynamoTimeline, TimelineEntry, TimelineRecorder

PROGRESS_MIN_INTERVAL_S = 2.0
PROGRESS_MIN_STEP = 0.05
# How long a stage's presigned input URL lives: past the longest FFmpeg run reading it.
INPUT_URL_EXPIRES_S = 1200


class EventPublisher(Protocol):
    def publish(self, event: Any) -> None: ...


class SourceStore(Protocol):
    def download(self, key: str, path: Path, *, version_id: str | None = None, etag: str | None = None) -> None: ...
    def presigned_get(self, key: str, *, expires_s: int, version_id: str | None = None) -> str: ...
    def version_with_etag(self, key: str, etag: str) -> str | None: ...


class JobReader(Protocol):
    """What a stage reads of the job store (DynamoJobStore): the job, never a write.
    Raises JobNotFound."""

    def get(self, job_id: str) -> Job: ...


class OutputStore(Protocol):
    def upload_tree(self, local_dir: Path, prefix: str) -> list[str]: ...


@dataclass
class StageContext:
    """What a stage's work function gets: where the source is, where to write,
    and how to report progress (0..1; throttled before it reaches the bus)."""

    job_id: str
    source_path: Path
    output_dir: Path
    report_progress: Callable[[float], None]
    report_source: Callable[[dict[str, Any]], None] = field(default=lambda _: None)
    # Early playback: upload what output_dir holds now and announce these outputs
    # as playable (a Progress event with outputs and "playable": true).
    publish_playable: Callable[[dict[str, Any]], None] = field(default=lambda _: None)
    # Every object fetched for the stage, by local name (``source`` for an upload).
    inputs: dict[str, Path] = field(default_factory=dict)
    # For a stage run with fetch_inputs_first=False: download the inputs now
    # (once; later calls do nothing), or get a URL FFmpeg can read one by ranges.
    fetch_inputs: Callable[[], None] = field(default=lambda: None)
    input_url: Callable[[str], str] = field(default=lambda name: "")
    # The version each input is read at (the accepted upload's), by local name;
    # whoever reads an input some other way (chunk orders, MediaConvert) asks for it.
    input_versions: dict[str, str] = field(default_factory=dict)


# The outputs' description, or None when another service finishes the stage.
StageWork = Callable[[StageContext], dict[str, Any] | None]


@dataclass(frozen=True)
class StageInput:
    """The job a stage message is about, and the objects to fetch for it
    (local file name → key in the stage's input bucket)."""

    job_id: str
    objects: dict[str, str]
    # Set when the input is the user's upload: the job must accept it first.
    upload: UploadCompleted | None = None


def upload_input(eventbridge_event: dict[str, Any]) -> StageInput:
    """S3's "Object Created" for an upload: fetch the source. Raises ValidationFailed otherwise."""
    upload = parse_object_created(eventbridge_event)
    return StageInput(job_id=upload.job_id, objects={"source": upload.key}, upload=upload)


# The status function gets the same "Object Created" as the stages, at the same
# moment, and is the job's one writer: a stage that reads the job first waits
# this long for it to accept the upload, then leaves the message to SQS's retry.
ACCEPTANCE_WAIT_S = 20.0
ACCEPTANCE_POLL_S = 1.0


def admit_upload(
    jobs: JobReader,
    upload: UploadCompleted,
    *,
    wait_s: float = ACCEPTANCE_WAIT_S,
) -> str | None:
    """None when a stage may work on ``upload``, otherwise why not (no such
    job, another write of the key accepted, the job cancelled, expired or
    finished: see vidpipe.jobs.why_no_stage_runs).

    The job accepts its upload when the status function applies the upload's
    event (vidpipe.jobs.accept_upload); until it has, this re-reads the job.
    Raises UploadNotAccepted when it still has not after ``wait_s`` (SQS
    delivers the message again), and whatever the store raises."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            job = jobs.get(upload.job_id)
        except JobNotFound:
            return "no such job (an object put in the bucket by hand?)"
        if not awaits_acceptance(job):
            return why_no_stage_runs(job, upload)
        if time.monotonic() >= deadline:
            raise UploadNotAccepted(f"job {upload.job_id} has not accepted its upload after {wait_s:.0f} s")
        time.sleep(ACCEPTANCE_POLL_S)


@dataclass(frozen=True)
class StageAttempt:
    """Which invocation runs this attempt, and since when its message waited:
    carried on every event of the attempt (``trace``) so the job's timeline can
    tell queue wait from work; ``retry_in_s`` is the backoff if it fails."""

    function: str = ""
    request_id: str = ""
    number: int = 1
    queued_at: str | None = None
    retry_in_s: int | None = None

    def trace(self) -> dict[str, Any]:
        found: dict[str, Any] = {"function": self.function, "request_id": self.request_id, "attempt": self.number}
        if self.queued_at:
            found["queued_at"] = self.queued_at
        return found


def queued_at_of(sent_timestamp_ms: str | int | None) -> str | None:
    """SQS's SentTimestamp (epoch milliseconds) as ISO-8601 UTC, None when absent."""
    try:
        return iso_utc(datetime.fromtimestamp(int(sent_timestamp_ms) / 1000, UTC))  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None


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
        prefix = f"jobs/{job_id}/{output_folder}/"

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
    except (MediaError, QuotaExceeded) as exc:
        logger.warning("media rejected", extra={"error": exc.to_dict()})
        publish(StageEventKind.FAILED, error=exc.to_dict())
    except Exception as exc:
        _record_failed_attempt(timeline, job_id, stage, attempt, exc, receive_count, max_receive_count)
        if receive_count < max_receive_count:
            logger.exception("stage failed; SQS will retry", extra={"attempt": receive_count})
            raise
        error = (
            exc.to_dict()
            if isinstance(exc, VidpipeError)
            else {
                "code": "INTERNAL_ERROR",
                "message": f"{type(exc).__name__}: {exc}",
            }
        )
        error["message"] = f"gave up after {receive_count} attempts: {error['message']}"
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
    last = receive_count >= max_receive_count
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


def retry_delay_s(attempt: int, base_s: int) -> int:
    """How long a failed message waits before its next attempt: base, 4x base,
    16x base..., at most 15 minutes."""
    return int(min(900, base_s * 4 ** max(0, attempt - 1)))


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
    attempt runs, the message is held in short leases (:mod:`vidpipe.message_lease`),
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
        with message_lease(receipt_handle, queue_url=settings.queue_url, lease_s=settings.lease_s):
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


def schedule_retry(receipt_handle: str, receive_count: int) -> None:
    """Cut a failed message's wait to the backoff of its attempt (to zero after
    the last one, so SQS moves it to the dead-letter queue now rather than after
    the visibility timeout). Never raises: the retry then simply comes later."""
    settings = get_settings()
    if not settings.queue_url:
        return
    last = receive_count >= settings.max_receive_count
    delay = 0 if last else retry_delay_s(receive_count, settings.retry_base_s)
    try:
        sqs_client().change_message_visibility(
            QueueUrl=settings.queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=delay
        )
        logger.info("retry scheduled", extra={"attempt": receive_count, "retry_in_s": delay})
    except Exception:
        logger.exception("could not shorten the retry delay")


def message_lease(receipt_handle: str | None, *, queue_url: str, lease_s: int) -> AbstractContextManager[Any]:
    """A lease on the record's message, or nothing when there is no message to
    hold (a direct invocation, or leases turned off with lease_s=0)."""
    if not (receipt_handle and queue_url and lease_s > 0):
        return nullcontext()

    def set_visibility(seconds: int) -> None:
        sqs_client().change_message_visibility(
            QueueUrl=queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
        )

    return MessageLease(set_visibility, lease_s=lease_s)
