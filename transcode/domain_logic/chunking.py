"""Chunked transcoding of long videos: plan, encode each chunk, stitch.

One Lambda has 15 minutes and a few vCPUs; a long source is cut into chunks
that many functions encode at once. The pieces are plain functions so the same
code runs one chunk per Lambda (transcode.domain_logic.fanout, wired by
transcode.handlers) or every chunk in one process (:func:`transcode_chunked`,
here, for tests and the benchmark):

1. plan (transcode.domain_logic.chunk_planning): cut the source's timeline every
   ``chunk_s`` seconds, the video between two frames and the audio on its grid
   of AAC frames; a source FFmpeg cannot seek in quickly is remuxed first;
2. encode each chunk (transcode.domain_logic.chunk_encoding, its audio
   trimmed by transcode.domain_logic.chunk_audio): every rung, from only the
   chunk's part of the source, on the whole file's timeline;
3. stitch (transcode.domain_logic.chunk_stitching): each rendition's media
   playlist (the chunks' segments in order; no media is touched) and the
   master playlist.

What can go wrong: the MediaErrors of :func:`vidpipe.adapters.ffmpeg.probe.probe_media`,
FfmpegError when FFmpeg fails or runs out of time, or a chunk comes out
shorter than planned; ValueError for a chunk length that is not a positive
multiple of the segment length.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from transcode.domain_logic.chunk_encoding import encode_chunk
from transcode.domain_logic.chunk_planning import (
    DEFAULT_CHUNK_S,
    ChunkTask,
    check_chunk_length,
    plan_chunks,
    seekable_source,
)
from transcode.domain_logic.chunk_stitching import stitch_playlists
from transcode.domain_logic.hls import DEFAULT_SEGMENT_S, MASTER_PLAYLIST_NAME
from transcode.domain_logic.ladder import DEFAULT_LADDER, LadderConfig, output_frame_rate
from transcode.domain_logic.transcoding import TranscodeResult, check_complete, plan_title_ladder, probe_source


@dataclass(frozen=True)
class ChunkedTimings:
    """Wall-clock seconds of each step of :func:`transcode_chunked` (for the
    benchmark): ``plan_s`` is the planner's (and a remux's, if any)."""

    plan_s: float
    chunks_s: tuple[float, ...]
    stitch_s: float


def transcode_chunked(
    input_path: Path,
    output_dir: Path,
    *,
    timeout_s: float,
    chunk_s: float = DEFAULT_CHUNK_S,
    work_dir: Path | None = None,
    max_duration_s: float | None = None,
    segment_s: int = DEFAULT_SEGMENT_S,
    ladder_config: LadderConfig = DEFAULT_LADDER,
    on_timings: Callable[[ChunkedTimings], None] | None = None,
) -> TranscodeResult:
    """The whole chunked path in one process, chunk after chunk: the same outputs
    as :func:`transcode.domain_logic.transcoding.transcode_to_hls` (renditions,
    durations, frame counts), made the way the chunk functions make them.

    ``chunk_s`` must be a positive multiple of ``segment_s`` (so segments do not
    straddle chunks). ``work_dir`` holds a remuxed source when one is needed
    (default: a folder next to ``output_dir``). Raises what the steps raise, and
    MediaTooLong as transcode_to_hls does."""
    check_chunk_length(chunk_s, segment_s)
    deadline = time.monotonic() + timeout_s
    source = probe_source(input_path, timeout_s=timeout_s, max_duration_s=max_duration_s)
    output_dir = output_dir.absolute()
    work_dir = (work_dir or output_dir.parent / f"{output_dir.name}-chunks").absolute()
    ladder, _ = plan_title_ladder(input_path, source, ladder_config, work_dir / "analysis",
                                  timeout_s=_left(deadline), segment_s=segment_s)  # fmt: skip

    started = time.monotonic()
    chunk_source, readable = seekable_source(input_path, source, work_dir, timeout_s=_left(deadline))
    plan = plan_chunks(readable, chunk_s=chunk_s)
    plan_s = time.monotonic() - started
    outputs, chunk_times = [], []
    for index in range(plan.total):
        started = time.monotonic()
        task = ChunkTask.of(plan, index, ladder, readable, segment_s)
        outputs.append(encode_chunk(task, chunk_source, output_dir, timeout_s=_left(deadline)))
        chunk_times.append(time.monotonic() - started)
    started = time.monotonic()
    measured = stitch_playlists(
        outputs,
        ladder,
        has_audio=source.has_audio,
        frame_rate=output_frame_rate(source.frame_rate),
        output_dir=output_dir,
    )
    check_complete(source.duration_s, measured)
    if on_timings is not None:
        on_timings(ChunkedTimings(plan_s, tuple(chunk_times), time.monotonic() - started))
    return TranscodeResult(source=source, renditions=ladder, master_playlist=output_dir / MASTER_PLAYLIST_NAME)


def _left(deadline: float) -> float:
    return max(1.0, deadline - time.monotonic())
