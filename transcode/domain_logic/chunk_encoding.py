"""Encoding one chunk: every rung of the ladder from the chunk's part of the source.

:func:`encode_chunk` reads only its part of the source (a presigned URL in
Lambda, so FFmpeg fetches byte ranges) and encodes every rung with the ladder's
exact x264 options:

* video: FFmpeg seeks to the keyframe before the chunk, decodes from there and
  ``trim`` keeps exactly the frames of the chunk. Keyframes in the source do not
  matter for correctness, only for how much is decoded and dropped: the
  boundaries are re-encoded whatever the source's GOP;
* audio: the chunk's AAC frames are encoded with pre-roll and post-roll, and
  only the chunk's own frames are kept (transcode.domain_logic.chunk_audio says
  why the joins then neither drift nor click).

Both keep the source's timestamps (``-copyts``) shifted by
:data:`TIMELINE_OFFSET_S`, so chunks line up with each other to the tick. What a
chunk wrote (:class:`ChunkOutput`) is what the stitch
(transcode.domain_logic.chunk_stitching) lists.

What can go wrong: FfmpegError when FFmpeg fails or runs out of time, does not
write a playlist or segment, or a chunk comes out shorter than planned; a
MediaError for a chunk FFmpeg cannot decode.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from transcode.domain_logic.chunk_audio import audio_pad_samples, audio_window, keep_adts_frames
from transcode.domain_logic.chunk_planning import ChunkTask
from transcode.domain_logic.hls import ladder_filter_graph, video_encoder_args
from vidpipe.adapters.ffmpeg.inputs import input_args, source_input_args
from vidpipe.adapters.ffmpeg.process import run_ffmpeg
from vidpipe.domain.errors import FfmpegError
from vidpipe.domain.filter_graph import FilterGraph
from vidpipe.domain.webvtt import MPEGTS_CLOCK_HZ, MPEGTS_TIME_ZERO

# Every timestamp of the chunks' segments is the source's plus this: the source's
# first frames may have negative decode times (B-frames) and the audio starts one
# AAC frame early (the encoder's priming), which the MPEG-TS muxer cannot write.
TIMELINE_OFFSET_S = 10.0
# So media time 0 is here on the chunked ladder's MPEG-TS clock, not at
# MPEGTS_TIME_ZERO: its subtitle segments' X-TIMESTAMP-MAP must say so.
CHUNKED_MPEGTS_TIME_ZERO = MPEGTS_TIME_ZERO + round(TIMELINE_OFFSET_S * MPEGTS_CLOCK_HZ)
# FFmpeg seeks this much before a chunk's first frame: the container's start
# offset and the seek's own rounding must not land it after the frame.
SEEK_MARGIN_S = 1.0


@dataclass(frozen=True)
class Segment:
    """One HLS segment a chunk encode wrote: its file name (relative to the
    rendition's folder), duration and size."""

    uri: str
    duration_s: float
    size_bytes: int


@dataclass(frozen=True)
class ChunkOutput:
    """The segments one chunk added to each rendition, in order."""

    index: int
    segments: dict[str, list[Segment]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "segments": {
                name: [[segment.uri, segment.duration_s, segment.size_bytes] for segment in segments]
                for name, segments in self.segments.items()
            },
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChunkOutput:
        return cls(
            index=int(data["index"]),
            segments={
                str(name): [Segment(str(uri), float(duration), int(size)) for uri, duration, size in segments]
                for name, segments in data["segments"].items()
            },
        )


def chunk_playlist_name(index: int) -> str:
    return f"chunk_{index:04d}.m3u8"


def chunk_segment_pattern(index: int) -> str:
    """Segment names of chunk ``index``: unique across chunks, in playback order by name."""
    return f"c{index:04d}_%03d.ts"


def _seek_target_s(start_s: float) -> float:
    """Where FFmpeg is told to seek for a part starting at ``start_s``."""
    return max(0.0, start_s - SEEK_MARGIN_S)


def _seek_args(start_s: float | None) -> list[str]:
    """Input options that start reading at the keyframe before ``start_s`` (and
    leave exact trimming to our filters: -noaccurate_seek)."""
    if start_s is None:
        return []
    return ["-noaccurate_seek", "-ss", f"{_seek_target_s(start_s):.6f}"]


def build_chunk_audio_args(
    task: ChunkTask, source: Path | str, output_path: Path, *, bitrate_kbps: int, pad_to_samples: int | None
) -> list[str]:
    """FFmpeg arguments encoding the chunk's audio window to raw AAC frames (ADTS).

    ``pad_to_samples``: silence after the source's audio until the window holds
    this many samples, for a source whose audio ends before its video (each
    chunk must carry audio, or players stall at a chunk without it)."""
    window = audio_window(task)
    trim = f"atrim=start_pts={window.first}" + ("" if window.last is None else f":end_pts={window.last}")
    if pad_to_samples is not None:
        trim += f",apad=whole_len={pad_to_samples}"
    return [
        "-copyts", *_seek_args(window.first / task.sample_rate if task.bounds.audio_start is not None else None),
        *source_input_args(source, task.demuxer),
        "-map", "0:a:0", "-af", trim,
        # The ladder's audio: -ac 2 downmixes 5.1 and upmixes mono as the single-process path does.
        "-c:a", "aac", "-ac", "2", "-b:a", f"{bitrate_kbps}k",
        "-f", "adts", str(output_path),
    ]  # fmt: skip


def build_chunk_args(task: ChunkTask, source: Path | str, audio_path: Path | None, output_dir: Path) -> list[str]:
    """FFmpeg arguments encoding the chunk's frames of ``source`` into every rung,
    muxed with the chunk's kept AAC frames (``audio_path``; None without audio)."""
    ladder, bounds = task.ladder, task.bounds
    graph = FilterGraph()
    video = graph.add_input([*_seek_args(bounds.start_s), *source_input_args(source, task.demuxer)])["v:0"]
    rungs = ladder_filter_graph(
        video,
        ladder,
        task.frame_rate,
        grid_start_s=_grid_start_s(task),
        trim_start_s=bounds.start_s,
        trim_end_s=bounds.end_s,
        colour=task.colour,
    )
    compiled = graph.compile(rungs)
    args = ["-copyts", *compiled.input_args]
    if audio_path is not None:
        # The kept frames carry no timestamps: place the first where it starts in the source.
        first_s = audio_window(task).kept_start / task.sample_rate
        args += ["-itsoffset", f"{first_s:.9f}", *input_args(audio_path, "aac")]
    args += compiled.filter_args
    audio_map = f"{compiled.input_count}:a:0"  # the input after the graph's
    for rung in compiled.outputs:
        args += ["-map", rung]
        if audio_path is not None:
            args += ["-map", audio_map]
    # Plain arguments from here: ffmpeg-python 0.2.0 sorts output options and takes -b:v:N only as dict keys.
    # Keyframes every segment_s from the chunk's first frame: the chunk keeps the
    # source's timestamps (-copyts), so "t" does not start at 0 here.
    args += video_encoder_args(ladder, task.frame_rate, task.segment_s, chunk_relative=True)
    if audio_path is not None:
        args += ["-c:a", "copy"]  # already the ladder's AAC
    stream_map = " ".join(
        f"v:{index},a:{index},name:{rendition.name}" if audio_path is not None else f"v:{index},name:{rendition.name}"
        for index, rendition in enumerate(ladder)
    )
    args += [
        "-output_ts_offset", str(TIMELINE_OFFSET_S),
        "-f", "hls",
        "-hls_time", str(task.segment_s),
        "-hls_playlist_type", "vod",
        "-hls_segment_type", "mpegts",
        "-hls_flags", "independent_segments",
        "-hls_segment_filename", str(output_dir / "%v" / chunk_segment_pattern(task.index)),
        "-var_stream_map", stream_map,
        str(output_dir / "%v" / chunk_playlist_name(task.index)),
    ]  # fmt: skip
    return args


def _grid_start_s(task: ChunkTask) -> float | None:
    """Where the chunk's constant-rate grid starts: on the whole file's grid
    (from its first frame, ``video_start_s``), at the last instant of it before
    FFmpeg's seek target, so the frames around the chunk's start are placed as
    a single pass places them. None for the first chunk: the file's own start."""
    if task.bounds.start_s is None:
        return None
    step = 1 / task.frame_rate
    slots = math.floor((Fraction(_seek_target_s(task.bounds.start_s)) - Fraction(task.video_start_s)) / step)
    return float(Fraction(task.video_start_s) + max(0, slots) * step)


def encode_chunk(
    task: ChunkTask,
    source: Path | str,
    output_dir: Path,
    *,
    timeout_s: float,
) -> ChunkOutput:
    """Encode every rung of one chunk of ``source`` (a local path, or a URL FFmpeg
    reads by ranges) into ``output_dir/{rendition}/c{index}_NNN.ts``.

    Raises FfmpegError (also when
    the chunk comes out shorter than its bounds: a seek that landed late), or a
    MediaError for a chunk FFmpeg cannot decode."""
    deadline = time.monotonic() + timeout_s
    output_dir = output_dir.absolute()
    output_dir.mkdir(parents=True, exist_ok=True)
    audio_path = None
    if task.has_audio and task.sample_rate:
        audio_path = output_dir / f"audio_{task.index:04d}.aac"
        encoded = output_dir / f"audio_{task.index:04d}.encoded.aac"
        window = audio_window(task)
        pad_to = audio_pad_samples(task, window)
        bitrate = task.ladder[0].audio_bitrate_kbps
        run_ffmpeg(
            build_chunk_audio_args(task, source, encoded, bitrate_kbps=bitrate, pad_to_samples=pad_to),
            timeout_s=timeout_s,
        )
        keep_adts_frames(encoded, audio_path, window)
        encoded.unlink()
    run_ffmpeg(build_chunk_args(task, source, audio_path, output_dir), timeout_s=max(1.0, deadline - time.monotonic()))
    if audio_path is not None:
        audio_path.unlink()
    segments = {
        rendition.name: read_chunk_playlist(output_dir / rendition.name / chunk_playlist_name(task.index))
        for rendition in task.ladder
    }
    _check_chunk_length(task, segments)
    return ChunkOutput(index=task.index, segments=segments)


def _check_chunk_length(task: ChunkTask, segments: dict[str, list[Segment]]) -> None:
    """A chunk with both bounds must come out as long as they say, within a
    frame: shorter means FFmpeg's seek landed after the chunk's first frame."""
    bounds = task.bounds
    if bounds.start_s is None or bounds.end_s is None:
        return
    expected = bounds.end_s - bounds.start_s
    for name, listed in segments.items():
        made = sum(segment.duration_s for segment in listed)
        if abs(made - expected) > 1.5 / float(task.frame_rate):
            raise FfmpegError(
                f"chunk {task.index + 1} of {task.total} ({name}) lasts {made:.3f} s, not {expected:.3f} s"
            )


def read_chunk_playlist(playlist: Path) -> list[Segment]:
    """The segments a chunk's media playlist lists, with their sizes.
    Raises FfmpegError when the playlist or a segment is missing."""
    try:
        lines = [line.strip() for line in playlist.read_text(encoding="utf-8").splitlines()]
    except OSError as exc:
        raise FfmpegError(f"FFmpeg did not write the playlist {playlist}: {exc}") from exc
    segments, duration = [], None
    for line in lines:
        if line.startswith("#EXTINF:"):
            duration = float(line.partition(":")[2].split(",")[0])
        elif line and not line.startswith("#") and duration is not None:
            try:
                size = (playlist.parent / line).stat().st_size
            except OSError as exc:
                raise FfmpegError(f"FFmpeg did not write the segment {line}: {exc}") from exc
            segments.append(Segment(line, duration, size))
            duration = None
    if not segments:
        raise FfmpegError(f"the chunk playlist {playlist} lists no segment")
    return segments
