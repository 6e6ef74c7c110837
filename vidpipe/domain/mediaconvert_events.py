"""MediaConvert's "MediaConvert Job State Change" events, read as our own.

MediaConvert publishes these on the default bus (``source = aws.mediaconvert``).
Our rules pass on only the jobs of this stack (``detail.userMetadata``), to the
status queue (every state we use) and to the thumbnails queue (COMPLETE). Here
they are translated, as pure functions, into what the FFmpeg path publishes:

=============  ==========================================================
PROGRESSING    "Transcode Progress" (the stage is running)
STATUS_UPDATE  "Transcode Progress" with ``jobProgress.jobPercentComplete``
COMPLETE       "Transcode Completed" with the same ``outputs`` as FFmpeg's
ERROR          "Transcode Failed", code MEDIACONVERT_ERROR
CANCELED       "Transcode Failed", code MEDIACONVERT_ERROR
=============  ==========================================================

and, for the thumbnails function, COMPLETE into the list of frame captures.

The job submitted by :mod:`transcode.domain_logic.mediaconvert_job` carries the
``UserMetadata`` keys below; MediaConvert returns them on every event.

What can go wrong: ValidationFailed for an event that is not a state change of
one of our jobs (no job id in its metadata, a state we do not read, a COMPLETE
without the HLS group).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from vidpipe.domain.errors import MediaConvertError, ValidationFailed
from vidpipe.domain.events import Stage, StageEvent, StageEventKind, iso_utc, utc_now
from vidpipe.domain.storage_keys import is_job_output

SOURCE = "aws.mediaconvert"
DETAIL_TYPE = "MediaConvert Job State Change"

# UserMetadata keys (MediaConvert's metadata is a map of strings).
META_JOB_ID = "vidpipe_job_id"
META_STACK = "vidpipe_stack"
META_RENDITIONS = "vidpipe_renditions"
META_DURATION_MS = "vidpipe_duration_ms"
META_CAPTURE_INTERVAL_MS = "vidpipe_capture_interval_ms"

# A MediaConvert job says "100 %" before its last files are in S3; only COMPLETE means done.
MAX_RUNNING_PROGRESS = 0.99
# frame.0000036.jpg: MediaConvert numbers captures with seven digits from 0.
_CAPTURE_NAME = re.compile(r"^(?P<base>.+)\.(?P<index>\d{7})\.jpg$")


@dataclass(frozen=True)
class CapturesReady:
    """The frame captures of a completed job: S3 keys in the outputs bucket, in
    time order (capture i shows the picture at i x ``interval_ms``)."""

    job_id: str
    keys: tuple[str, ...]
    interval_ms: int
    duration_s: float


def is_state_change(event: dict[str, Any]) -> bool:
    return event.get("source") == SOURCE and event.get("detail-type") == DETAIL_TYPE


def parse_state_change(event: dict[str, Any]) -> StageEvent:
    """The transcode StageEvent that a MediaConvert state change stands for."""
    detail, metadata = _detail_and_metadata(event)
    job_id = metadata[META_JOB_ID]
    status = detail.get("status")
    occurred_at = _occurred_at(event, detail)

    def stage_event(kind: StageEventKind, **fields: Any) -> StageEvent:
        return StageEvent(job_id=job_id, stage=Stage.TRANSCODE, kind=kind, occurred_at=occurred_at, **fields)

    if status == "PROGRESSING":
        return stage_event(StageEventKind.PROGRESS)
    if status == "STATUS_UPDATE":
        return stage_event(StageEventKind.PROGRESS, progress=_percent_complete(detail))
    if status == "COMPLETE":
        try:
            outputs = completed_outputs(detail, metadata)
        except MediaConvertError as exc:
            return stage_event(StageEventKind.FAILED, error=exc.to_dict())
        return stage_event(StageEventKind.COMPLETED, outputs=outputs)
    if status == "ERROR":
        message = f"MediaConvert error {detail.get('errorCode', '?')}: {detail.get('errorMessage', 'no message')}"
        return stage_event(StageEventKind.FAILED, error=MediaConvertError(message).to_dict())
    if status == "CANCELED":
        cancelled = MediaConvertError("the MediaConvert job was cancelled before it finished")
        return stage_event(StageEventKind.FAILED, error=cancelled.to_dict())
    raise ValidationFailed(f"MediaConvert state {status!r} is not one we read")


def completed_outputs(detail: dict[str, Any], metadata: dict[str, str]) -> dict[str, Any]:
    """The ``outputs`` of "Transcode Completed" from a COMPLETE event: the HLS
    folder (``prefix``), the master playlist and the planned renditions, each
    with the media playlist MediaConvert wrote for it, and the MP4 download
    (``mp4``, its name in that folder) when the file group wrote it.

    Raises MediaConvertError when the event lacks the HLS group or one of the
    planned playlists (a job that cannot be played must not be READY), and
    ValidationFailed when our metadata is unreadable."""
    job_id = metadata[META_JOB_ID]
    group = _output_group(detail, "HLS_GROUP")
    if group is None or not group.get("playlistFilePaths"):
        raise MediaConvertError("MediaConvert reported COMPLETE without an HLS playlist")
    master_key = _s3_key(str(group["playlistFilePaths"][0]))
    prefix, _, master_name = master_key.rpartition("/")
    if not is_job_output(prefix, job_id):
        raise ValidationFailed(f"HLS output {master_key!r} is outside the job's folder")
    written = {
        _s3_key(str(path)).rpartition("/")[2]
        for output in group.get("outputDetails") or []
        for path in output.get("outputFilePaths") or []
    }
    renditions = []
    base = master_name.removesuffix(".m3u8")
    for planned in _planned_renditions(metadata):
        playlist = f"{base}_{planned['name']}.m3u8"
        if playlist not in written:
            raise MediaConvertError(f"MediaConvert wrote no playlist for the {planned['name']} rendition")
        renditions.append({**planned, "playlist": playlist})
    outputs: dict[str, Any] = {"prefix": f"{prefix}/", "master_playlist": master_name, "renditions": renditions}
    # The MP4 download, when the job wrote one into the HLS folder (a job
    # submitted before MP4 downloads existed did not: it stays without).
    for group in detail.get("outputGroupDetails") or []:
        for output in (group.get("outputDetails") or []) if isinstance(group, dict) else []:
            for path in output.get("outputFilePaths") or []:
                folder, _, name = _s3_key(str(path)).rpartition("/")
                if folder == prefix and name.endswith(".mp4"):
                    outputs["mp4"] = name
    return outputs


def parse_captures_ready(event: dict[str, Any]) -> CapturesReady:
    """The frame captures of a COMPLETE event. MediaConvert names only the last
    capture of a frame-capture output (``.../frame.0000036.jpg``); the others
    are numbered from 0 up to it in the same folder.

    Raises ValidationFailed for an event that is not a COMPLETE of our job with
    a frame-capture output."""
    detail, metadata = _detail_and_metadata(event)
    if detail.get("status") != "COMPLETE":
        raise ValidationFailed(f"MediaConvert state {detail.get('status')!r} has no captures")
    job_id = metadata[META_JOB_ID]
    group = _output_group(detail, "FILE_GROUP") or {}
    last_paths = [
        str(path) for output in group.get("outputDetails") or [] for path in output.get("outputFilePaths") or []
    ]
    matches = [(key, _CAPTURE_NAME.match(key.rpartition("/")[2])) for key in map(_s3_key, last_paths)]
    captures = [(key, match) for key, match in matches if match]
    if not captures:
        raise ValidationFailed("MediaConvert reported COMPLETE without frame captures")
    last_key, match = captures[0]
    folder = last_key.rpartition("/")[0]
    if not is_job_output(folder, job_id):
        raise ValidationFailed(f"captures {last_key!r} are outside the job's folder")
    count = int(match["index"]) + 1
    try:
        interval_ms = int(metadata[META_CAPTURE_INTERVAL_MS])
        duration_s = int(metadata[META_DURATION_MS]) / 1000
    except (KeyError, ValueError) as exc:
        raise ValidationFailed(f"MediaConvert job metadata lacks the capture timing: {exc}") from exc
    keys = tuple(f"{folder}/{match['base']}.{index:07d}.jpg" for index in range(count))
    return CapturesReady(job_id=job_id, keys=keys, interval_ms=interval_ms, duration_s=duration_s)


def _detail_and_metadata(event: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    if not is_state_change(event):
        raise ValidationFailed("not a MediaConvert job state change")
    detail = event.get("detail")
    if not isinstance(detail, dict):
        raise ValidationFailed("MediaConvert event has no detail")
    metadata = detail.get("userMetadata")
    if not isinstance(metadata, dict) or not metadata.get(META_JOB_ID):
        raise ValidationFailed("MediaConvert event carries no vidpipe job id (not one of our jobs)")
    return detail, {str(key): str(value) for key, value in metadata.items()}


def _occurred_at(event: dict[str, Any], detail: dict[str, Any]) -> str:
    # detail.timestamp is in milliseconds; the envelope's time only in seconds,
    # too coarse to order a STATUS_UPDATE and the COMPLETE right after it.
    timestamp = detail.get("timestamp")
    if isinstance(timestamp, int | float) and timestamp > 0:
        return iso_utc(datetime.fromtimestamp(timestamp / 1000, UTC))
    return str(event.get("time") or utc_now())


def _percent_complete(detail: dict[str, Any]) -> float | None:
    progress = detail.get("jobProgress")
    percent = progress.get("jobPercentComplete") if isinstance(progress, dict) else None
    if not isinstance(percent, int | float):
        return None
    return round(min(max(percent / 100, 0.0), MAX_RUNNING_PROGRESS), 3)


def _output_group(detail: dict[str, Any], group_type: str) -> dict[str, Any] | None:
    for group in detail.get("outputGroupDetails") or []:
        if isinstance(group, dict) and group.get("type") == group_type:
            return group
    return None


def _planned_renditions(metadata: dict[str, str]) -> list[dict[str, Any]]:
    try:
        renditions = json.loads(metadata[META_RENDITIONS])
        return [
            {"name": str(r["name"]), "width": int(r["width"]), "height": int(r["height"]), "bitrate": int(r["bitrate"])}
            for r in renditions
        ]
    except (KeyError, TypeError, ValueError) as exc:
        raise ValidationFailed(f"MediaConvert job metadata has no readable renditions: {exc}") from exc


def _s3_key(url: str) -> str:
    """``s3://bucket/a/b`` → ``a/b``."""
    if not url.startswith("s3://") or "/" not in url[5:]:
        raise ValidationFailed(f"not an S3 URL: {url!r}")
    return url[5:].split("/", 1)[1]
