"""What the transcode function does with an upload, decided from plain facts
(no AWS, no FFmpeg run): whether the answer of a probe by URL is enough, and
whether the video is encoded in this function, fanned out to the chunk
functions, or refused as too long."""

from __future__ import annotations

from enum import Enum

from transcode.domain_logic.chunk_planning import SEEKABLE_DEMUXERS


def url_probe_is_enough(demuxer: str) -> bool:
    """True when ffprobe's answer over a presigned URL can be planned on: an
    MP4/MOV has an index, which ffprobe reads with a few ranged GETs, so a long
    upload is planned without downloading it. Any other container (MPEG-TS,
    Matroska...) is downloaded and probed in full: its duration over HTTP is an
    estimate, and the chunks need it remuxed from the file anyway."""
    return demuxer in SEEKABLE_DEMUXERS


class Encoding(Enum):
    """How a probed upload is encoded."""

    # This function encodes the whole ladder in one FFmpeg process.
    SINGLE_PROCESS = "single_process"
    # This function plans; the chunk functions encode a part each, the last stitches.
    CHUNKED = "chunked"
    # Over the duration limit: the single-process path reports what the upload
    # is and then refuses it (MEDIA_TOO_LONG) before encoding anything.
    TOO_LONG = "too_long"

    @property
    def costs_minutes(self) -> bool:
        """Whether the owner's day is charged the video's minutes: a refused one costs nothing."""
        return self is not Encoding.TOO_LONG


def choose_encoding(duration_s: float, *, chunk_threshold_s: float, max_duration_s: float) -> Encoding:
    """Chunked above ``chunk_threshold_s`` (many functions at once finish a long
    video sooner, and each stays within Lambda's time limit), one process up to
    it, and nothing above ``max_duration_s``."""
    if duration_s > max_duration_s:
        return Encoding.TOO_LONG
    if duration_s > chunk_threshold_s:
        return Encoding.CHUNKED
    return Encoding.SINGLE_PROCESS
