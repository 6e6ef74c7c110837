"""Chunked transcoding of long videos: plan, encode each chunk, stitch.

One Lambda has 15 minutes and a few vCPUs; a long source is cut into chunks
that many functions encode at once. The pieces are plain functions so the same
code runs one chunk per Lambda (transcode.handlers) or every chunk in one
process (:func:`transcode_chunked`, for tests and the benchmark):

1. :func:`plan_chunks` cuts the source's timeline every ``chunk_s`` seconds:
   the video a quarter frame before each cut frame (between two frames of the
   constant-rate grid, and off the half-frame ties that rounding to the grid's
   time base could tip either way), the audio on its own grid of AAC frames (1024
   samples from the audio's first sample), at the first frame at or after the
   video's cut. Nothing is split or copied: the plan is a list of numbers.
2. :func:`encode_chunk` reads only its part of the source (a presigned URL in
   Lambda, so FFmpeg fetches byte ranges) and encodes every rung with the
   ladder's exact x264 options:

   * video: FFmpeg seeks to the keyframe before the chunk, decodes from there
     and ``trim`` keeps exactly the frames of the chunk. Keyframes in the source
     do not matter for correctness, only for how much is decoded and dropped:
     the boundaries are re-encoded whatever the source's GOP;
   * audio: the chunk's AAC frames are encoded with two frames of the audio
     before the chunk and two after (pre-roll and post-roll), and only the
     chunk's own frames are kept (:func:`keep_adts_frames`). Each kept frame
     was encoded from the same samples around it as a single encode of the
     whole track would use, so the joins neither drift (the grid is counted in
     samples) nor click (no encoder priming inside the track); the test
     tests/integration/test_chunk_audio_joins_ffmpeg.py measures it.

   Both keep the source's timestamps (``-copyts``) shifted by
   :data:`TIMELINE_OFFSET_S`, so chunks line up with each other to the tick.
3. :func:`stitch_playlists` writes each rendition's media playlist (the chunks'
   segments in order; no media is touched) and the master playlist.

Sources in a container other than MP4/MOV are first remuxed (stream copy) into
Matroska with an index (:func:`remux_for_seeking`): MPEG-TS, AVI or a browser's
WebM without cues cannot be seeked quickly, and every chunk would read the file
from its start.

What can go wrong: the MediaErrors of :func:`vidpipe.adapters.ffmpeg.probe.probe_media`,
FfmpegError when FFmpeg fails or runs out of time, or a chunk comes out
shorter than planned; ValueError for a chunk length that is not a positive
multiple of the segment length.
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
from transcode.domain_logic.ladder import DEFAULT_LADDER, LadderConfig, Rendition, output_frame_rate
from transcode.domain_logic.transcoding import (
    PROBE_TIMEOUT_S,
    TranscodeResult,
    check_complete,
    plan_title_ladder,
    probe_source,
)
from vidpipe.adapters.ffmpeg.inputs import input_args, source_input_args
from vidpipe.adapters.ffmpeg.probe import probe_media
from vidpipe.adapters.ffmpeg.process import run_ffmpeg
from vidpipe.domain.colour import VideoColour, assume_untagged
from vidpipe.domain.errors import FfmpegError
from vidpipe.domain.filter_graph import FilterGraph
from vidpipe.domain.source_info import SourceInfo

# Default chunk length: 32 s of 1080p ladder encodes in about 15 s on a
# 6-vCPU function (see docs/PERFORMANCE.md), and 113 chunks cover an hour.
DEFAULT_CHUNK_S = 32
# Every timestamp of the chunks' segments is the source's plus this: the source's
# first frames may have negative decode times (B-frames) and the audio starts one
# AAC frame early (the encoder's priming), which the MPEG-TS muxer cannot write.
TIMELINE_OFFSET_S = 10.0
# A video cut falls this share of a frame before the first frame of the next chunk.
CUT_EARLY_FRAMES = 0.25
# A last chunk shorter than this share of chunk_s is merged into the one before.
MIN_TAIL_RATIO = 0.25
# FFmpeg seeks this much before a chunk's first frame: the container's start
# offset and the seek's own rounding must not land it after the frame.
SEEK_MARGIN_S = 1.0
AAC_FRAME_SAMPLES = 1024
# AAC frames encoded before and after a chunk's own and then dropped: one frame's
# transform overlaps its neighbours', and the encoder's first frame is priming.
AUDIO_PREROLL_FRAMES = 2
AUDIO_POSTROLL_FRAMES = 2
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


@dataclass(frozen=True)
class AudioWindow:
    """What the chunk's audio encode reads (samples ``first..last`` of the source's
    audio; ``last`` None: to its end) and which of its AAC frames the chunk keeps:
    ``count`` frames (None: all) from frame number ``keep_from``, the first kept
    one starting at sample ``kept_start``."""

    first: int
    last: int | None
    keep_from: int
    count: int | None
    kept_start: int


def audio_window(task: ChunkTask) -> AudioWindow:
    """The AAC encoder's first frame is priming: it starts one frame before its
    first sample. A chunk in the middle encodes from AUDIO_PREROLL_FRAMES before
    its own first sample and keeps frames from number 1 + AUDIO_PREROLL_FRAMES;
    the first chunk keeps the priming frame, as a single encode of the whole
    track does."""
    bounds, frame = task.bounds, AAC_FRAME_SAMPLES
    start = task.audio_origin if bounds.audio_start is None else bounds.audio_start
    preroll = 0 if bounds.audio_start is None else AUDIO_PREROLL_FRAMES
    keep_from = 1 + preroll if bounds.audio_start is not None else 0
    if bounds.audio_end is None:
        count, last = None, None
    else:
        count = (bounds.audio_end - start) // frame + (1 if keep_from == 0 else 0)
        last = bounds.audio_end + AUDIO_POSTROLL_FRAMES * frame
    kept_start = start - frame if keep_from == 0 else start
    return AudioWindow(
        first=start - preroll * frame, last=last, keep_from=keep_from, count=count, kept_start=kept_start
    )


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


def adts_frames(data: bytes) -> list[bytes]:
    """Split raw AAC (ADTS) into its frames. FfmpegError if it is not ADTS as
    FFmpeg writes it (one raw data block per frame)."""
    frames, position = [], 0
    while position < len(data):
        header = data[position : position + 7]
        if len(header) < 7 or header[0] != 0xFF or header[1] & 0xF6 != 0xF0 or header[6] & 0x03:
            raise FfmpegError(f"the chunk's audio is not ADTS as expected at byte {position}")
        length = ((header[3] & 0x03) << 11) | (header[4] << 3) | (header[5] >> 5)
        if length < 7 or position + length > len(data):
            raise FfmpegError(f"the chunk's audio has a truncated ADTS frame at byte {position}")
        frames.append(data[position : position + length])
        position += length
    return frames


def keep_adts_frames(encoded: Path, kept: Path, window: AudioWindow) -> int:
    """Write to ``kept`` the frames of ``encoded`` that ``window`` keeps; return
    how many. FfmpegError when the encode made fewer than the window needs."""
    frames = adts_frames(encoded.read_bytes())
    end = None if window.count is None else window.keep_from + window.count
    wanted = frames[window.keep_from : end]
    if not wanted or (window.count is not None and len(wanted) < window.count):
        raise FfmpegError(f"the chunk's audio encode made {len(frames)} AAC frames; {window.count} were needed")
    kept.write_bytes(b"".join(wanted))
    return len(wanted)


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
        pad_to = _audio_pad_samples(task, window)
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


def _audio_pad_samples(task: ChunkTask, window: AudioWindow) -> int | None:
    """How many samples the audio window must hold (silence-padded) so the chunk
    has audio to its end even where the source's audio stopped early."""
    if window.last is not None:
        return window.last - window.first
    if task.source_end_s is None:
        return None
    return max(0, round(task.source_end_s * task.sample_rate) - window.first)


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
    write_master_playlist(
        ladder, has_audio, output_dir / MASTER_PLAYLIST_NAME, frame_rate=frame_rate, measured=measured
    )
    return measured


@dataclass(frozen=True)
class ChunkedTimings:
    """Wall-clock seconds of each step of :func:`transcode_chunked` (for the
    benchmark): ``plan_s`` is the planner's (and a remux's, if any)."""

    plan_s: float
    chunks_s: tuple[float, ...]
    stitch_s: float


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


def check_chunk_length(chunk_s: float, segment_s: int) -> None:
    """ValueError unless ``chunk_s`` is a positive whole multiple of ``segment_s``."""
    if chunk_s <= 0 or chunk_s % segment_s:
        raise ValueError(f"the chunk length ({chunk_s} s) must be a positive multiple of the segment ({segment_s} s)")


def _left(deadline: float) -> float:
    return max(1.0, deadline - time.monotonic())
