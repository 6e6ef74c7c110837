"""Chunk planning: where a long source is cut, and the task each chunk encoder gets.

:func:`plan_chunks` cuts the source's timeline every ``chunk_s`` seconds: the
video a quarter frame before each cut frame (between two frames of the
constant-rate grid, and off the half-frame ties that rounding to the grid's time
base could tip either way), the audio on its own grid of AAC frames (1024
samples from the audio's first sample), at the first frame at or after the
video's cut. Nothing is split or copied: the plan is a list of numbers.
:class:`ChunkTask` is one chunk of the plan with the job's exact encoding
parameters: what a chunk encoder (transcode.domain_logic.chunk_encoding) needs.

Sources in a container other than MP4/MOV are first remuxed (stream copy) into
Matroska with an index (:func:`remux_for_seeking`): MPEG-TS, AVI or a browser's
WebM without cues cannot be seeked quickly, and every chunk would read the file
from its start.

What can go wrong: ValueError for a chunk length that is not positive (or, from
:func:`check_chunk_length`, not a multiple of the segment length); FfmpegError
when the remux fails or runs out of time, and the MediaErrors of
:func:`vidpipe.adapters.ffmpeg.probe.probe_media` on the remuxed file.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from transcode.domain_logic.hls import DEFAULT_SEGMENT_S
from transcode.domain_logic.ladder import Rendition, output_frame_rate
from transcode.domain_logic.transcoding import PROBE_TIMEOUT_S
from vidpipe.adapters.ffmpeg.inputs import input_args
from vidpipe.adapters.ffmpeg.probe import probe_media
from vidpipe.adapters.ffmpeg.process import run_ffmpeg
from vidpipe.domain.colour import VideoColour, assume_untagged
from vidpipe.domain.source_info import SourceInfo

# Default chunk length: 32 s of 1080p ladder encodes in about 15 s on a
# 6-vCPU function (see docs/PERFORMANCE.md), and 113 chunks cover an hour.
DEFAULT_CHUNK_S = 32
# A video cut falls this share of a frame before the first frame of the next chunk.
CUT_EARLY_FRAMES = 0.25
# A last chunk shorter than this share of chunk_s is merged into the one before.
MIN_TAIL_RATIO = 0.25
AAC_FRAME_SAMPLES = 1024
# Demuxers FFmpeg seeks in by an index, without reading the file from the start.
SEEKABLE_DEMUXERS = frozenset({"mov"})
REMUXED_NAME = "seekable.mkv"


@dataclass(frozen=True)
class ChunkBounds:
    """One chunk's part of the source's timeline. Video: the frames with
    ``start_s <= pts < end_s`` (seconds); audio: the samples
    ``audio_start <= pts < audio_end`` (in samples, on the AAC frame grid).
    None means the source's start (for the first chunk) or end (for the last)."""

    start_s: float | None
    end_s: float | None
    audio_start: int | None
    audio_end: int | None


@dataclass(frozen=True)
class ChunkPlan:
    """The chunks, in order, and the audio grid's origin (the audio's first
    sample, ``audio_origin`` in samples of ``sample_rate``; 0 without audio)."""

    chunks: tuple[ChunkBounds, ...]
    audio_origin: int = 0
    sample_rate: int = 0

    @property
    def total(self) -> int:
        return len(self.chunks)


def plan_chunks(source: SourceInfo, *, chunk_s: float) -> ChunkPlan:
    """Cut ``source`` every ``chunk_s`` seconds from its first frame (see the
    module doc). A last chunk shorter than ``MIN_TAIL_RATIO * chunk_s`` is not
    made. Raises ValueError for a non-positive ``chunk_s``."""
    if chunk_s <= 0:
        raise ValueError(f"chunk length must be positive, not {chunk_s}")
    origin = source.video_start_s
    count = 1
    while count * chunk_s < source.duration_s - MIN_TAIL_RATIO * chunk_s:
        count += 1
    # A quarter of an *output* frame: the cuts fall between frames of the grid the
    # renditions are made on (at most 60 fps), which a 120 fps source's frames halve.
    early_s = CUT_EARLY_FRAMES / float(output_frame_rate(source.frame_rate))
    cuts = [origin + index * chunk_s - early_s for index in range(1, count)]
    rate = source.audio_sample_rate if source.has_audio else 0
    audio_origin = round(source.audio_start_s * rate)
    # The first AAC frame (counted from the audio's first sample) that starts at or after each video cut.
    audio_cuts = [
        audio_origin + AAC_FRAME_SAMPLES * math.ceil((cut * rate - audio_origin) / AAC_FRAME_SAMPLES) for cut in cuts
    ]
    starts: list[float | None] = [None, *cuts]
    ends: list[float | None] = [*cuts, None]
    audio_starts: list[int | None] = [None, *audio_cuts]
    audio_ends: list[int | None] = [*audio_cuts, None]
    chunks = tuple(
        ChunkBounds(start, end, audio_start if rate else None, audio_end if rate else None)
        for start, end, audio_start, audio_end in zip(starts, ends, audio_starts, audio_ends, strict=True)
    )
    return ChunkPlan(chunks=chunks, audio_origin=audio_origin, sample_rate=rate)


def check_chunk_length(chunk_s: float, segment_s: int) -> None:
    """ValueError unless ``chunk_s`` is a positive whole multiple of ``segment_s``."""
    if chunk_s <= 0 or chunk_s % segment_s:
        raise ValueError(f"the chunk length ({chunk_s} s) must be a positive multiple of the segment ({segment_s} s)")


def remux_for_seeking(source_path: Path, source: SourceInfo, output_path: Path, *, timeout_s: float) -> Path:
    """Copy the video and first audio stream of ``source_path`` into Matroska,
    which FFmpeg writes with an index (cues): every chunk can then seek to its
    part. Stream copy only: about as fast as the disk. Returns ``output_path``."""
    args = [*input_args(source_path, source.demuxer), "-map", "0:v:0"]
    if source.has_audio:
        args += ["-map", "0:a:0"]
    args += ["-c", "copy", "-f", "matroska", str(output_path)]
    run_ffmpeg(args, timeout_s=timeout_s)
    return output_path


def seekable_source(
    source_path: Path, source: SourceInfo, work_dir: Path, *, timeout_s: float
) -> tuple[Path, SourceInfo]:
    """The file the chunks read, and what it is: ``source_path`` itself when
    FFmpeg can seek in it by an index, otherwise its remux (see the module doc)."""
    if source.demuxer in SEEKABLE_DEMUXERS:
        return source_path, source
    work_dir.mkdir(parents=True, exist_ok=True)
    remuxed = remux_for_seeking(source_path, source, work_dir / REMUXED_NAME, timeout_s=timeout_s)
    return remuxed, probe_media(remuxed, timeout_s=PROBE_TIMEOUT_S)


@dataclass(frozen=True)
class ChunkTask:
    """Everything a chunk encoder needs besides the source itself: its bounds
    and the job's exact encoding parameters, so every chunk encodes the same
    ladder the same way. ``frame_rate`` is the renditions' rate (at most 60 fps,
    :func:`~transcode.domain_logic.ladder.output_frame_rate`), not the source's:
    every chunk puts its frames on the whole file's output grid. JSON-ready
    through :meth:`to_dict` (it travels in the chunk event)."""

    index: int
    total: int
    ladder: tuple[Rendition, ...]
    frame_rate: Fraction
    has_audio: bool
    bounds: ChunkBounds
    demuxer: str
    audio_origin: int = 0
    sample_rate: int = 0
    segment_s: int = DEFAULT_SEGMENT_S
    # The source's last instant: the last chunk pads a short audio track to it.
    source_end_s: float | None = None
    # The first frame's time: every chunk's frame grid is counted from it.
    video_start_s: float = 0.0
    # The source's colour, untagged properties assumed (vidpipe.domain.colour.assume_untagged),
    # so every chunk converts it to BT.709 exactly as the single pass does.
    colour: VideoColour = VideoColour()

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "total": self.total,
            "ladder": [asdict(rendition) for rendition in self.ladder],
            "frame_rate": f"{self.frame_rate.numerator}/{self.frame_rate.denominator}",
            "has_audio": self.has_audio,
            "bounds": asdict(self.bounds),
            "demuxer": self.demuxer,
            "audio_origin": self.audio_origin,
            "sample_rate": self.sample_rate,
            "segment_s": self.segment_s,
            "source_end_s": self.source_end_s,
            "video_start_s": self.video_start_s,
            "colour": self.colour.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChunkTask:
        """Raises KeyError, TypeError or ValueError for a malformed task."""
        bounds = data["bounds"]
        return cls(
            index=int(data["index"]),
            total=int(data["total"]),
            ladder=tuple(Rendition(**rendition) for rendition in data["ladder"]),
            frame_rate=Fraction(str(data["frame_rate"])),
            has_audio=bool(data["has_audio"]),
            bounds=ChunkBounds(
                start_s=_optional(float, bounds["start_s"]),
                end_s=_optional(float, bounds["end_s"]),
                audio_start=_optional(int, bounds["audio_start"]),
                audio_end=_optional(int, bounds["audio_end"]),
            ),
            demuxer=str(data["demuxer"]),
            audio_origin=int(data["audio_origin"]),
            sample_rate=int(data["sample_rate"]),
            segment_s=int(data["segment_s"]),
            source_end_s=_optional(float, data.get("source_end_s")),
            video_start_s=float(data.get("video_start_s", 0.0)),
            colour=VideoColour.from_dict(data.get("colour")),
        )

    @classmethod
    def of(
        cls,
        plan: ChunkPlan,
        index: int,
        ladder: Sequence[Rendition],
        source: SourceInfo,
        segment_s: int = DEFAULT_SEGMENT_S,
    ) -> ChunkTask:
        """Chunk ``index`` of ``plan`` for the (possibly remuxed) ``source``."""
        return cls(
            index=index, total=plan.total, ladder=tuple(ladder), frame_rate=output_frame_rate(source.frame_rate),
            has_audio=source.has_audio, bounds=plan.chunks[index], demuxer=source.demuxer,
            audio_origin=plan.audio_origin, sample_rate=plan.sample_rate, segment_s=segment_s,
            source_end_s=source.video_start_s + source.duration_s, video_start_s=source.video_start_s,
            colour=assume_untagged(source.colour, source.display_width, source.display_height),
        )  # fmt: skip


def _optional(kind: Callable[[Any], Any], value: Any) -> Any:
    return None if value is None else kind(value)
