"""A caption file added to a READY job becomes a SUBTITLES rendition, without
touching the video.

The caption upload (``captions/{job_id}/{caption_id}`` in the uploads bucket)
is read, validated (SubRip or WebVTT, UTF-8, at most 1 MiB), converted to
segmented WebVTT under ``hls/captions-{caption_id}/``, marked READY in the job,
and the master playlist is rewritten to list every READY caption. A broken
file marks that caption FAILED with the reason; the job stays READY.

Two captions finishing at once both rewrite the master: each writes after
marking its caption READY and then checks the job again, writing once more if
a caption became READY meanwhile, so the last write lists them all.

Ports, not boto3: ``jobs`` (get/save), ``uploads`` (download), ``outputs``
(read_text, upload_tree, upload_file).

What can go wrong: StorageError and JobStoreError from the ports (retried by
SQS); JobNotFound for a job deleted meanwhile (nothing to do).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from transcode.domain_logic.chunk_encoding import CHUNKED_MPEGTS_TIME_ZERO
from transcode.domain_logic.hls import DEFAULT_SEGMENT_S, MASTER_PLAYLIST_NAME
from transcode.domain_logic.subtitle_extraction import write_rendition_files
from vidpipe.domain.errors import ConcurrentUpdate, InvalidCaptions
from vidpipe.domain.events import Stage, utc_now
from vidpipe.domain.jobs import Job
from vidpipe.domain.storage_keys import caption_folder, caption_upload_key
from vidpipe.domain.subtitles import SubtitleRendition, master_with_subtitles
from vidpipe.domain.webvtt import MPEGTS_TIME_ZERO, read_caption_file, render_webvtt

CAPTION_READY = "READY"
CAPTION_FAILED = "FAILED"
CAPTION_AWAITING_UPLOAD = "AWAITING_UPLOAD"
SAVE_ATTEMPTS = 5


class JobStore(Protocol):
    def get(self, job_id: str) -> Job: ...
    def save(self, job: Job, *, expected_version: int) -> Job: ...


class UploadStore(Protocol):
    def download(self, key: str, path: Path) -> None: ...


class OutputStore(Protocol):
    def read_text(self, key: str) -> str: ...
    def upload_tree(self, local_dir: Path, prefix: str) -> list[str]: ...
    def upload_file(self, path: Path, key: str, *, content_type: str | None = None) -> None: ...


def caption_rendition(caption: dict[str, Any]) -> SubtitleRendition:
    """The SUBTITLES rendition of an added caption (never DEFAULT: the viewer picks it)."""
    return SubtitleRendition(caption_folder(caption["caption_id"]), caption["label"], caption["language"])


def process_caption(
    job_id: str, caption_id: str, scratch: Path, *, jobs: JobStore, uploads: UploadStore, outputs: OutputStore
) -> dict[str, Any]:
    """Validate and publish one uploaded caption file; return the caption's
    record as stored (status READY, or FAILED with ``error``). A repeat (SQS
    delivers at least once) does the same work again and ends the same way."""
    job = jobs.get(job_id)
    _caption(job, caption_id)  # InvalidCaptions when the job has no such caption
    hls = str(job.stages[Stage.TRANSCODE].outputs.get("prefix") or "")
    local = scratch / "caption"
    scratch.mkdir(parents=True, exist_ok=True)
    uploads.download(caption_upload_key(job_id, caption_id), local)
    try:
        cues = read_caption_file(local.read_bytes())
    except InvalidCaptions as exc:
        return _mark(job_id, caption_id, jobs, status=CAPTION_FAILED, error=exc.to_dict())
    duration_s = float(job.source.get("duration_s") or max(cue.end_s for cue in cues))
    folder = scratch / caption_folder(caption_id)
    write_rendition_files(
        folder,
        render_webvtt(cues),
        duration_s=duration_s,
        segment_s=DEFAULT_SEGMENT_S,
        mpegts_time_zero=mpegts_time_zero(job.stages[Stage.TRANSCODE].outputs),
    )
    outputs.upload_tree(folder, hls + caption_folder(caption_id))
    stored = _mark(job_id, caption_id, jobs, status=CAPTION_READY, error=None)
    publish_master(job_id, scratch, jobs=jobs, outputs=outputs)
    return stored


def mpegts_time_zero(transcode_outputs: dict[str, Any]) -> int:
    """Where media time 0 is on the job's video segments' MPEG-TS clock: as the
    transcode recorded it; a job transcoded before it did tells by its chunks."""
    recorded = transcode_outputs.get("mpegts_time_zero")
    if recorded is not None:
        return int(recorded)
    return CHUNKED_MPEGTS_TIME_ZERO if transcode_outputs.get("chunks") else MPEGTS_TIME_ZERO


def publish_master(job_id: str, scratch: Path, *, jobs: JobStore, outputs: OutputStore) -> None:
    """Rewrite the job's master playlist to list every READY caption, until the
    job shows no caption that became READY while we wrote."""
    for _ in range(SAVE_ATTEMPTS):
        job = jobs.get(job_id)
        ready = [caption_rendition(c) for c in job.captions if c.get("status") == CAPTION_READY]
        key = str(job.stages[Stage.TRANSCODE].outputs.get("prefix") or "") + MASTER_PLAYLIST_NAME
        master = master_with_subtitles(outputs.read_text(key), ready)
        path = scratch / MASTER_PLAYLIST_NAME
        path.write_text(master, encoding="utf-8")
        outputs.upload_file(path, key, content_type="application/vnd.apple.mpegurl")
        now_ready = {c["caption_id"] for c in jobs.get(job_id).captions if c.get("status") == CAPTION_READY}
        if now_ready == {c["caption_id"] for c in job.captions if c.get("status") == CAPTION_READY}:
            return


def _caption(job: Job, caption_id: str) -> dict[str, Any]:
    for caption in job.captions:
        if caption.get("caption_id") == caption_id:
            return caption
    raise InvalidCaptions(f"job {job.job_id} has no caption {caption_id}")


def _mark(job_id: str, caption_id: str, jobs: JobStore, *, status: str, error: dict[str, str] | None) -> dict[str, Any]:
    """Set the caption's status (optimistic lock, re-read on a conflict)."""
    for attempt in range(SAVE_ATTEMPTS):
        job = jobs.get(job_id)
        caption = _caption(job, caption_id)
        caption.update({"status": status, "error": error, "updated_at": utc_now()})
        try:
            jobs.save(job, expected_version=job.version)
            return caption
        except ConcurrentUpdate:
            if attempt == SAVE_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")
