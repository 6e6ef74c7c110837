"""Chunked transcoding of long videos: plan, split, encode each chunk, stitch.

One Lambda has 15 minutes and a few vCPUs; a long source is cut into chunks
that many functions encode at once. The pieces are plain functions so the same
code runs one chunk per Lambda (transcode.handlers) or every chunk in one
process (:func:`transcode_chunked`, for tests and the benchmark):

1. :func:`plan_chunks` picks where chunks start from the source's keyframes:
   the first keyframe at or after every ``chunk_s`` seconds. When keyframes are
   too far apart for that, the split re-encodes the video (fast x264) with a
   keyframe on every chunk start instead of copying it.
2. :func:`split_source` cuts the VIDEO by stream copy (every frame lands in
   exactly one chunk: frame-exact by construction) and encodes the AUDIO once,
   from the whole file, cut at the same instants by stream copy: encoding audio
   per chunk would click and drift at the joins (AAC priming at every start).
   Both keep the source's timestamps (``-copyts``, shifted by
   :data:`TIMELINE_OFFSET_S`) so chunks line up with each other and with the
   audio to the tick.
3. :func:`encode_chunk` encodes every rung of one chunk with the ladder's exact
   x264 options (:func:`transcode.domain_logic.hls.video_encoder_args`),
   keyframes aligned across rungs, and writes that chunk's HLS segments.
4. :func:`stitch_playlists` writes each rendition's media playlist (the chunks'
   segments in order; no media is touched) and the master playlist.

What can go wrong: the MediaErrors of :func:`vidpipe.media.probe_media`,
CorruptMedia when the split yields fewer chunks than planned (a damaged
file), FfmpegError when FFmpeg fails or runs out of time, ValueError for a
chunk length that is not a positive multiple of the segment length.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from transcode.domain_logic.hls import (
    DEFAULT_SEGMENT_S,
    MASTER_PLAYLIST_NAME,
    MEDIA_PLAYLIST_NAME,
    PlaylistMeasurement,
    ladder_filter_graph,
    measure_segments,
    video_encoder_args,
    write_master_playlist,
)
from transcode.domain_logic.ladder import DEFAULT_LADDER, LadderConfig, Rendition, plan_ladder
from transcode.domain_logic.transcoding import PROBE_TIMEOUT_S, TranscodeResult, check_complete, probe_source
from vidpipe.errors import CorruptMedia, FfmpegError
from vidpipe.media import SourceInfo, input_args, probe_keyframes, run_ffmpeg

# Default chunk length: 30 s of 1080p ladder encodes in well under a minute on a
# 6-vCPU function (see docs/PERFORMANCE.md), and 120 chunks cover an hour.
DEFAULT_CHUNK_S = 32
# Every timestamp of the intermediate chunks is the source's plus this: the source's
# first frames often have negative decode times (B-frames) and its audio a negative
# priming packet, which muxers would otherwise shift by different amounts per file.
TIMELINE_OFFSET_S = 10.0
# A chunk start may fall this far (as a share of chunk_s) after its target before we
# call the keyframes too far apart and re-encode the split instead.
MAX_START_DELAY_RATIO = 0.5
# A last chunk shorter than this share of chunk_s is merged into the one before.
MIN_TAIL_RATIO = 0.25
# The split's re-encode (sparse keyframes only): fast, and nearly lossless, since
# the ladder encodes it a second time.
SPLIT_REENCODE_CRF = 12
SPLIT_REENCODE_PRESET = "ultrafast"
CHUNK_CONTAINER = "mpegts"  # 90 kHz timestamps: no rounding of frame times, unlike Matroska's 1 ms
CHUNK_VIDEO_PATTERN = "video_%04d.ts"
CHUNK_AUDIO_PATTERN = "audio_%04d.ts"
# Half a millisecond before a keyframe, so float rounding cannot push a cut one GOP late.
_CUT_EARLY_S = 0.0005
_NEVER_S = 10**9


@dataclass(frozen=True)
class ChunkPlan:
    """Where the chunks start (source timestamps, ascending, the first at the first
    keyframe) and whether the split must re-encode the video to put keyframes there."""

    starts_s: tuple[float, ...]
    reencode: bool

    @property
    def total(self) -> int:
        return len(self.starts_s)


def plan_chunks(keyframes_s: Sequence[float], duration_s: float, *, chunk_s: float) -> ChunkPlan:
    """Chunk starts at the first keyframe at or after every ``chunk_s`` seconds.

    When some target has no keyframe within ``MAX_START_DELAY_RATIO * chunk_s``
    after it (a screen recording with one keyframe a minute, say), the plan asks
    for a re-encoding split with starts exactly on the targets. A last chunk
    shorter than ``MIN_TAIL_RATIO * chunk_s`` is not made. Raises ValueError for a
    non-positive ``chunk_s``."""
    if chunk_s <= 0:
        raise ValueError(f"chunk length must be positive, not {chunk_s}")
    origin = keyframes_s[0] if keyframes_s else 0.0
    end = origin + duration_s
    targets = [origin]
    while targets[-1] + chunk_s < end - MIN_TAIL_RATIO * chunk_s:
        targets.append(targets[-1] + chunk_s)
    # Anchor the targets on the grid, not on the keyframe chosen before: chunks
    # then stay chunk_s long on average and their count is known in advance.
    targets = [origin + index * chunk_s for index in range(len(targets))]
    starts = [origin]
    for target in targets[1:]:
        chosen = next((kf for kf in keyframes_s if kf >= target - _CUT_EARLY_S), None)
        if chosen is None or chosen - target > MAX_START_DELAY_RATIO * chunk_s or chosen <= starts[-1]:
            return ChunkPlan(starts_s=tuple(targets), reencode=True)
        if chosen >= end - MIN_TAIL_RATIO * chunk_s:
            break
        starts.append(chosen)
    return ChunkPlan(starts_s=tuple(starts), reencode=False)


@dataclass(frozen=True)
class ChunkInput:
    """One chunk as the split wrote it: its video, and its slice of the audio
    (None for a source without audio)."""

    index: int
    video_path: Path
    audio_path: Path | None


def build_split_args(
    input_path: Path, source: SourceInfo, plan: ChunkPlan, output_dir: Path, *, audio_bitrate_kbps: int, chunk_s: float
) -> list[str]:
    """The FFmpeg arguments of :func:`split_source` (one process, one read of the source)."""
    cuts = ",".join(f"{start + TIMELINE_OFFSET_S - _CUT_EARLY_S:.6f}" for start in plan.starts_s[1:])
    segment = ["-f", "segment", "-segment_format", CHUNK_CONTAINER, "-output_ts_offset", str(TIMELINE_OFFSET_S)]
    # Without cut times the segment muxer cuts every 2 s (its default segment_time).
    segment += ["-segment_times", cuts] if cuts else ["-segment_time", str(_NEVER_S)]
    # -copyts: keep the source's own timestamps, so video and audio chunks of the
    # same instant carry the same times and the encoded chunks join without a gap.
    args = ["-copyts", *input_args(input_path, source.demuxer), "-map", "0:v:0"]
    if plan.reencode:
        # Keyframes exactly on the chunk grid (counted from the first frame), so the
        # segment muxer can cut there; nothing else in this encode matters much.
        origin = plan.starts_s[0]
        args += [
            "-c:v", "libx264", "-preset", SPLIT_REENCODE_PRESET, "-crf", str(SPLIT_REENCODE_CRF),
            "-force_key_frames", f"expr:gte(t,{origin - _CUT_EARLY_S:.6f}+n_forced*{chunk_s})",
        ]  # fmt: skip
    else:
        args += ["-c:v", "copy"]
    args += [*segment, str(output_dir / CHUNK_VIDEO_PATTERN)]
    if source.has_audio:
        # The ladder's audio, encoded once: -ac 2 downmixes 5.1 and upmixes mono as
        # the single-process path does.
        args += ["-map", "0:a:0", "-c:a", "aac", "-ac", "2", "-b:a", f"{audio_bitrate_kbps}k"]
        args += [*segment, str(output_dir / CHUNK_AUDIO_PATTERN)]
    return args


def split_source(
    input_path: Path,
    source: SourceInfo,
    plan: ChunkPlan,
    output_dir: Path,
    *,
    audio_bitrate_kbps: int,
    chunk_s: float,
    timeout_s: float,
) -> list[ChunkInput]:
    """Cut ``input_path`` into ``plan.total`` chunks in ``output_dir`` (created).

    Raises CorruptMedia when fewer video chunks come out than planned (the file
    ends early), FfmpegError when FFmpeg fails."""
    output_dir = output_dir.absolute()
    output_dir.mkdir(parents=True, exist_ok=True)
    args = build_split_args(
        input_path, source, plan, output_dir, audio_bitrate_kbps=audio_bitrate_kbps, chunk_s=chunk_s
    )
    run_ffmpeg(args, timeout_s=timeout_s)
    chunks = []
    for index in range(plan.total):
        video = output_dir / (CHUNK_VIDEO_PATTERN % index)
        audio = output_dir / (CHUNK_AUDIO_PATTERN % index)
        if not video.exists():
            raise CorruptMedia(f"the video ends before chunk {index + 1} of {plan.total} (a truncated upload?)")
        chunks.append(ChunkInput(index, video, audio if audio.exists() else None))
    if (output_dir / (CHUNK_VIDEO_PATTERN % plan.total)).exists():
        raise FfmpegError(f"the split made more than the {plan.total} chunks planned")
    return chunks


@dataclass(frozen=True)
class ChunkTask:
    """Everything a chunk encoder needs besides the chunk's files: the job's exact
    encoding parameters, so every chunk encodes the same ladder the same way.
    JSON-ready through :meth:`to_dict` (it travels in the chunk event)."""

    index: int
    total: int
    ladder: tuple[Rendition, ...]
    frame_rate: Fraction
    has_audio: bool
    segment_s: int = DEFAULT_SEGMENT_S

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "total": self.total,
            "ladder": [asdict(rendition) for rendition in self.ladder],
            "frame_rate": f"{self.frame_rate.numerator}/{self.frame_rate.denominator}",
            "has_audio": self.has_audio,
            "segment_s": self.segment_s,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChunkTask:
        """Raises KeyError, TypeError or ValueError for a malformed task."""
        return cls(
            index=int(data["index"]),
            total=int(data["total"]),
            ladder=tuple(Rendition(**rendition) for rendition in data["ladder"]),
            frame_rate=Fraction(str(data["frame_rate"])),
            has_audio=bool(data["has_audio"]),
            segment_s=int(data["segment_s"]),
        )


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


def build_chunk_args(
    task: ChunkTask, video_path: Path, audio_path: Path | None, output_dir: Path
) -> list[str]:
    """The FFmpeg arguments of :func:`encode_chunk`."""
    ladder = task.ladder
    args = ["-copyts", *input_args(video_path, CHUNK_CONTAINER)]
    if audio_path is not None:
        args += input_args(audio_path, CHUNK_CONTAINER)
    args += ["-filter_complex", ladder_filter_graph(ladder)]
    for index in range(len(ladder)):
        args += ["-map", f"[video{index}]"]
        if audio_path is not None:
            args += ["-map", "1:a:0"]
    # Keyframes every segment_s from the chunk's first frame: the chunk keeps the
    # source's timestamps (-copyts), so "t" does not start at 0 here.
    args += video_encoder_args(ladder, task.frame_rate, task.segment_s, chunk_relative=True)
    if audio_path is not None:
        # Already the ladder's AAC (encoded once by the split): copied into every rung.
        args += ["-c:a", "copy"]
    with_audio = audio_path is not None
    stream_map = " ".join(
        f"v:{index},a:{index},name:{rendition.name}" if with_audio else f"v:{index},name:{rendition.name}"
        for index, rendition in enumerate(ladder)
    )
    args += [
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


def encode_chunk(
    task: ChunkTask,
    video_path: Path,
    audio_path: Path | None,
    output_dir: Path,
    *,
    timeout_s: float,
) -> ChunkOutput:
    """Encode every rung of one chunk into ``output_dir/{rendition}/c{index}_NNN.ts``.

    ``audio_path`` None means a video-only ladder, or a source whose audio ended
    before this chunk (then ``task.has_audio`` is true but the chunk carries none).
    Raises FfmpegError (or a MediaError for a chunk FFmpeg cannot decode)."""
    if audio_path is None and task.has_audio:
        raise CorruptMedia(f"chunk {task.index + 1} of {task.total} has no audio: the audio ends before the video")
    output_dir = output_dir.absolute()
    output_dir.mkdir(parents=True, exist_ok=True)
    run_ffmpeg(build_chunk_args(task, video_path, audio_path, output_dir), timeout_s=timeout_s)
    segments = {
        rendition.name: read_chunk_playlist(output_dir / rendition.name / chunk_playlist_name(task.index))
        for rendition in task.ladder
    }
    return ChunkOutput(index=task.index, segments=segments)


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


def render_media_playlist(segments: Sequence[Segment]) -> str:
    """A VOD media playlist of ``segments`` in order, as FFmpeg's HLS muxer writes
    one (version 6: EXT-X-INDEPENDENT-SEGMENTS)."""
    target = max(1, math.ceil(max(segment.duration_s for segment in segments)))
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:6",
        f"#EXT-X-TARGETDURATION:{target}",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        "#EXT-X-INDEPENDENT-SEGMENTS",
    ]
    for segment in segments:
        lines += [f"#EXTINF:{segment.duration_s:.6f},", segment.uri]
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def stitch_playlists(
    outputs: Sequence[ChunkOutput],
    ladder: Sequence[Rendition],
    *,
    has_audio: bool,
    frame_rate: Fraction,
    output_dir: Path,
) -> dict[str, PlaylistMeasurement]:
    """Write ``{rendition}/index.m3u8`` (every chunk's segments, in chunk order)
    and ``master.m3u8`` into ``output_dir``; return what each rendition measures.

    Only text is written: the segments stay where the chunk encoders put them.
    Raises ValueError when a chunk is missing or repeated, or lacks a rendition."""
    ordered = sorted(outputs, key=lambda output: output.index)
    if [output.index for output in ordered] != list(range(len(ordered))) or not ordered:
        raise ValueError(f"chunks to stitch are not 0..n-1: {[output.index for output in ordered]}")
    measured = {}
    for rendition in ladder:
        try:
            segments = [segment for output in ordered for segment in output.segments[rendition.name]]
        except KeyError as exc:
            raise ValueError(f"a chunk has no {rendition.name} rendition") from exc
        folder = output_dir / rendition.name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / MEDIA_PLAYLIST_NAME).write_text(render_media_playlist(segments), encoding="utf-8")
        target = max(1, math.ceil(max(segment.duration_s for segment in segments)))
        measured[rendition.name] = measure_segments(
            [(segment.duration_s, segment.size_bytes * 8) for segment in segments], target
        )
    write_master_playlist(ladder, has_audio, output_dir / MASTER_PLAYLIST_NAME, frame_rate=frame_rate,
                          measured=measured)
    return measured


@dataclass(frozen=True)
class ChunkedTimings:
    """Wall-clock seconds of each step of :func:`transcode_chunked` (for the benchmark)."""

    split_s: float
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
    straddle chunks). ``work_dir`` holds the split chunks (default: a folder next
    to ``output_dir``). Raises what the steps raise, and MediaTooLong as
    transcode_to_hls does."""
    check_chunk_length(chunk_s, segment_s)
    deadline = time.monotonic() + timeout_s
    source = probe_source(input_path, timeout_s=timeout_s, max_duration_s=max_duration_s)
    ladder = plan_ladder(source, ladder_config)
    output_dir = output_dir.absolute()
    work_dir = (work_dir or output_dir.parent / f"{output_dir.name}-chunks").absolute()

    started = time.monotonic()
    plan = plan_chunks(probe_keyframes(input_path, source, timeout_s=PROBE_TIMEOUT_S), source.duration_s,
                       chunk_s=chunk_s)
    inputs = split_source(
        input_path, source, plan, work_dir,
        audio_bitrate_kbps=ladder[0].audio_bitrate_kbps, chunk_s=chunk_s, timeout_s=_left(deadline),
    )  # fmt: skip
    split_s = time.monotonic() - started
    outputs, chunk_times = [], []
    for chunk in inputs:
        started = time.monotonic()
        task = ChunkTask(chunk.index, plan.total, tuple(ladder), source.frame_rate, source.has_audio, segment_s)
        outputs.append(encode_chunk(task, chunk.video_path, chunk.audio_path, output_dir, timeout_s=_left(deadline)))
        chunk_times.append(time.monotonic() - started)
    started = time.monotonic()
    measured = stitch_playlists(outputs, ladder, has_audio=source.has_audio, frame_rate=source.frame_rate,
                                output_dir=output_dir)
    check_complete(source.duration_s, measured)
    if on_timings is not None:
        on_timings(ChunkedTimings(split_s, tuple(chunk_times), time.monotonic() - started))
    return TranscodeResult(source=source, renditions=ladder, master_playlist=output_dir / MASTER_PLAYLIST_NAME)


def check_chunk_length(chunk_s: float, segment_s: int) -> None:
    """ValueError unless ``chunk_s`` is a positive whole multiple of ``segment_s``."""
    if chunk_s <= 0 or chunk_s % segment_s:
        raise ValueError(f"the chunk length ({chunk_s} s) must be a positive multiple of the segment ({segment_s} s)")


def _left(deadline: float) -> float:
    return max(1.0, deadline - time.monotonic())

