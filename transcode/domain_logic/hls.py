"""HLS output: the FFmpeg arguments for a whole ladder, and the master playlist.

The filter graph is written with ffmpeg-python (:mod:`vidpipe.domain.filter_graph`),
the rest of the list by hand.

One FFmpeg process decodes the source once, ``split``s the picture into every
rung, encodes each with libx264 (and the audio once per rung with AAC-LC
stereo) and lets the HLS muxer write ``{name}/index.m3u8`` and
``{name}/seg_00000.ts``... per rendition. FFmpeg (5.1, and the layer's 6.0)
writes a master playlist too, but its BANDWIDTH is the *average* plus 10 % and it has no
AVERAGE-BANDWIDTH or FRAME-RATE, so :func:`write_master_playlist` replaces it
with one whose numbers are measured on the segments actually written.

What can go wrong: :func:`build_hls_args` raises ValueError for an empty ladder
or an output folder whose path contains ``%`` (the HLS muxer would read it as a
pattern); :func:`measure_media_playlist` raises FfmpegError when a playlist or
segment FFmpeg should have written is missing.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from transcode.domain_logic.h264_levels import h264_level_idc, h264_level_name
from transcode.domain_logic.ladder import Rendition, output_frame_rate
from vidpipe.adapters.ffmpeg.inputs import input_args
from vidpipe.domain.colour import (
    BT709_TAG_ARGS,
    SDR_BT709,
    VideoColour,
    assume_untagged,
    ladder_prefilter,
    sdr_scale_options,
)
from vidpipe.domain.errors import FfmpegError
from vidpipe.domain.filter_graph import FilterGraph, Stream
from vidpipe.domain.source_info import SourceInfo
from vidpipe.domain.subtitles import SubtitleRendition, master_with_subtitles

DEFAULT_SEGMENT_S = 4
MASTER_PLAYLIST_NAME = "master.m3u8"
MEDIA_PLAYLIST_NAME = "index.m3u8"
SEGMENT_PATTERN = "seg_%05d.ts"
X264_PRESET = "veryfast"
AAC_LC_CODEC = "mp4a.40.2"
# avc1 + profile_idc 0x64 (High) + constraint flags 0x00, as x264 writes them for High.
AVC_HIGH_PREFIX = "avc1.6400"


def codecs_attribute(rendition: Rendition, frame_rate: Fraction, has_audio: bool) -> str:
    """The CODECS value for the master playlist, e.g. ``avc1.64001f,mp4a.40.2``,
    matching the profile and level we ask x264 for."""
    video = f"{AVC_HIGH_PREFIX}{h264_level_idc(rendition, frame_rate):02x}"
    return f"{video},{AAC_LC_CODEC}" if has_audio else video


def gop_frames(frame_rate: Fraction, segment_s: int) -> int:
    """Frames in one segment, rounded up (see :func:`build_hls_args` for why)."""
    return math.ceil(frame_rate * segment_s)


def build_hls_args(
    input_path: Path,
    source: SourceInfo,
    ladder: Sequence[Rendition],
    output_dir: Path,
    segment_s: int = DEFAULT_SEGMENT_S,
) -> list[str]:
    """Arguments for one FFmpeg run (everything after the binary and the global
    options that :func:`vidpipe.adapters.ffmpeg.process.run_ffmpeg` adds) that writes the whole
    ladder as HLS into ``output_dir``.

    ``output_dir`` should be absolute: FFmpeg reads ``name:rest`` as a protocol.
    It creates the rendition folders itself. Raises ValueError for an empty
    ladder, a ``%`` in ``output_dir`` or a source read by a demuxer FFmpeg may
    not use on uploads."""
    if not ladder:
        raise ValueError("the ladder has no rendition")
    if "%" in str(output_dir):
        raise ValueError(f"the output folder may not contain '%' (HLS muxer pattern): {output_dir}")
    rate = output_frame_rate(source.frame_rate)  # at most 60 fps: see the ladder module
    # The demuxer the probe found, and only it: see vidpipe.adapters.ffmpeg.inputs.input_args.
    colour = assume_untagged(source.colour, source.display_width, source.display_height)
    graph = FilterGraph()
    # The demuxer the probe found, and only it: see vidpipe.adapters.ffmpeg.inputs.input_args.
    video = graph.add_input(input_args(input_path, source.demuxer))["v:0"]
    compiled = graph.compile(ladder_filter_graph(video, ladder, rate, colour=colour))
    args = list(compiled.args)
    for rung in compiled.outputs:
        args += ["-map", rung]
        if source.has_audio:
            # Each rendition carries its own copy of the audio (muxed in its segments):
            # -var_stream_map counts audio outputs per type, so map it once per rung.
            args += ["-map", "0:a:0"]

    # Plain arguments from here: ffmpeg-python 0.2.0 sorts output options and takes -b:v:N only as dict keys.
    args += video_encoder_args(ladder, rate, segment_s)
    if source.has_audio:
        # -ac 2: 5.1 is downmixed and mono upmixed, so every rendition is plain stereo.
        args += ["-c:a", "aac", "-ac", "2"]
        for index, rendition in enumerate(ladder):
            args += [f"-b:a:{index}", f"{rendition.audio_bitrate_kbps}k"]

    stream_map = " ".join(
        f"v:{index},a:{index},name:{rendition.name}" if source.has_audio else f"v:{index},name:{rendition.name}"
        for index, rendition in enumerate(ladder)
    )
    args += [
        "-f", "hls",
        "-hls_time", str(segment_s),
        "-hls_playlist_type", "vod",
        "-hls_segment_type", "mpegts",
        # Every segment starts with a keyframe, and saying so lets players switch
        # rung at any segment boundary.
        "-hls_flags", "independent_segments",
        "-hls_segment_filename", str(output_dir / "%v" / SEGMENT_PATTERN),
        "-master_pl_name", MASTER_PLAYLIST_NAME,
        "-var_stream_map", stream_map,
        str(output_dir / "%v" / MEDIA_PLAYLIST_NAME),
    ]  # fmt: skip
    return args


def ladder_filter_graph(
    video: Stream,
    ladder: Sequence[Rendition],
    frame_rate: Fraction,
    *,
    grid_start_s: float | None = None,
    trim_start_s: float | None = None,
    trim_end_s: float | None = None,
    colour: VideoColour = SDR_BT709,
) -> list[Stream]:
    """The ladder's filters on ``video`` (an ffmpeg-python stream, see
    :mod:`vidpipe.domain.filter_graph`): made constant rate, optionally trimmed, and
    split into one scaled picture per rung, returned in ladder order.

    ``fps`` puts frames on the ``frame_rate`` grid (the rate the playlists
    declare), counted from the first frame or from ``grid_start_s``: a chunk
    starts its grid on the same instants as a single pass over the whole file,
    so both give the same frames even for a variable-rate source (left to the
    muxer, each chunk would lose the frames that fill the gap after its last).
    ``trim_start_s`` and ``trim_end_s`` (source timestamps) keep a chunk's frames.

    ``colour`` is the source's (after :func:`vidpipe.domain.colour.assume_untagged`;
    BT.709 limited if not given): every rung comes out SDR BT.709 limited
    range, see :mod:`vidpipe.domain.colour` for how."""
    grid = {"fps": f"{frame_rate.numerator}/{frame_rate.denominator}"}
    if grid_start_s is not None:
        grid["start_time"] = f"{grid_start_s:.6f}"
    constant_rate = video.filter("fps", **grid)
    bounds = {"start": trim_start_s, "end": trim_end_s}
    limits = {name: f"{value:.6f}" for name, value in bounds.items() if value is not None}
    kept = constant_rate.filter("trim", **limits) if limits else constant_rate
    # HDR is tone-mapped once, before the split (vidpipe.domain.colour.ladder_prefilter says why).
    rungs = ladder_prefilter(kept, colour, (ladder[0].width, ladder[0].height)).split()
    # An SDR source's matrix and range are converted by each rung's own resize, for free.
    conversion = sdr_scale_options(colour)
    # FFmpeg turns the picture upright (autorotate) before the graph, so the display
    # size is what we scale to. setsar=1: square pixels, so players show WxH as is.
    # format=yuv420p: a 4:4:4 or 10-bit source would otherwise make x264 choose a
    # profile (High 4:4:4, High 10) that players and our CODECS string do not match.
    return [
        rungs[index]
        .filter("scale", rendition.width, rendition.height, **conversion)
        .filter("setsar", 1)
        .filter("format", "yuv420p")
        for index, rendition in enumerate(ladder)
    ]


def video_encoder_args(
    ladder: Sequence[Rendition], frame_rate: Fraction, segment_s: int, *, chunk_relative: bool = False
) -> list[str]:
    """The x264 options of every rung: the one place they are written, so a chunk
    encoded on its own gets exactly the parameters of the single-process ladder.

    Keyframes fall every ``segment_s`` seconds counted from time 0, or, with
    ``chunk_relative``, from the first frame (a chunk keeps the source's
    timestamps, so its first frame is not at 0)."""
    keyframes = f"expr:gte(t,n_forced*{segment_s})"
    if chunk_relative:
        # The first frame, then the first frame at least segment_s after the last
        # forced one (a millisecond early, so timestamp rounding cannot skip one).
        keyframes = f"expr:if(isnan(prev_forced_t),1,gte(t,prev_forced_t+{segment_s}-0.001))"
    # Keyframes must fall on the same instants in every rendition, or a player that
    # switches rung mid-stream lands in the middle of a GOP. We place them by *time*
    # with -force_key_frames (the first frame at or after every segment_s seconds),
    # which also holds for variable or 29.97 frame rates where "N frames" drifts away
    # from the segment grid. -sc_threshold 0 stops x264 adding scene-cut keyframes,
    # which it would decide per rung from differently scaled pictures. -g is one
    # segment's worth of frames, rounded up, so x264's own default keyint (250
    # frames) cannot add a keyframe before the forced one at high frame rates.
    args = [
        "-c:v", "libx264",
        "-preset", X264_PRESET,
        "-profile:v", "high",
        "-sc_threshold", "0",
        "-g", str(gop_frames(frame_rate, segment_s)),
        "-force_key_frames", keyframes,
    ]  # fmt: skip
    for index, rendition in enumerate(ladder):
        # Capped CRF (the rung's quality level, never above its peak) or the fixed
        # ladder's average bitrate; the VBV peak and buffer hold either way.
        rate = (
            [f"-crf:v:{index}", f"{rendition.crf:g}"]
            if rendition.crf is not None
            else [f"-b:v:{index}", f"{rendition.video_bitrate_kbps}k"]
        )
        args += [
            *rate,
            f"-maxrate:v:{index}", f"{rendition.max_bitrate_kbps}k",
            f"-bufsize:v:{index}", f"{rendition.buffer_kbps}k",
            # Pinned so the level in the stream is the one our CODECS string declares.
            f"-level:v:{index}", h264_level_name(h264_level_idc(rendition, frame_rate)),
        ]  # fmt: skip
    # Tagged explicitly, whatever the source said (or did not): the graph made
    # every rung BT.709 limited range, and scale does not tag the frames it converts.
    args += BT709_TAG_ARGS
    return args


@dataclass(frozen=True)
class PlaylistMeasurement:
    """A rendition as written: its length and its bit rates (bit/s) the way HLS
    defines them."""

    duration_s: float
    peak_bps: int
    average_bps: int


def measure_media_playlist(playlist: Path) -> PlaylistMeasurement:
    """Total duration, peak and average bit rate of the segments a media playlist lists.

    Peak follows the HLS spec (RFC 8216, 4.3.4.2): the highest rate of any run of
    consecutive segments lasting 0.5 to 1.5 target durations; when no run
    qualifies (a clip shorter than half a segment) the average is the peak.
    Raises FfmpegError when the playlist or one of its segments is missing."""
    try:
        lines = playlist.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise FfmpegError(f"FFmpeg did not write the playlist {playlist}: {exc}") from exc
    segments: list[tuple[float, int]] = []  # (duration_s, size_bits)
    target_s: float | None = None
    duration_s: float | None = None
    for line in (raw.strip() for raw in lines):
        if line.startswith("#EXT-X-TARGETDURATION:"):
            target_s = float(line.partition(":")[2])
        elif line.startswith("#EXTINF:"):
            duration_s = float(line.partition(":")[2].split(",")[0])
        elif line and not line.startswith("#") and duration_s is not None:
            segment = playlist.parent / line
            try:
                size_bits = segment.stat().st_size * 8
            except OSError as exc:
                raise FfmpegError(f"FFmpeg did not write the segment {segment}: {exc}") from exc
            segments.append((duration_s, size_bits))
            duration_s = None
    total_s = sum(duration for duration, _ in segments)
    if not segments or total_s <= 0:
        raise FfmpegError(f"the playlist {playlist} lists no segment")
    return measure_segments(segments, target_s)


def measure_segments(segments: Sequence[tuple[float, int]], target_s: float | None = None) -> PlaylistMeasurement:
    """:func:`measure_media_playlist` for segments given as (duration_s, size_bits),
    e.g. read from chunk manifests rather than from local files. ``target_s`` is
    the playlist's target duration (the longest segment rounded up when None).
    Raises ValueError when there is no segment or no duration."""
    total_s = sum(duration for duration, _ in segments)
    if not segments or total_s <= 0:
        raise ValueError("no segment to measure")
    average_bps = sum(bits for _, bits in segments) / total_s
    target_s = target_s or math.ceil(max(duration for duration, _ in segments))
    peak_bps = 0.0
    for start in range(len(segments)):
        run_s, run_bits = 0.0, 0
        for duration, bits in segments[start:]:
            run_s += duration
            run_bits += bits
            if run_s > 1.5 * target_s:
                break
            if run_s >= 0.5 * target_s:
                peak_bps = max(peak_bps, run_bits / run_s)
    return PlaylistMeasurement(
        duration_s=total_s,
        peak_bps=math.ceil(max(peak_bps, average_bps)),
        average_bps=math.ceil(average_bps),
    )


def render_master_playlist(
    ladder: Sequence[Rendition],
    has_audio: bool,
    *,
    frame_rate: Fraction,
    measured: Mapping[str, PlaylistMeasurement] | None = None,
    subtitles: Sequence[SubtitleRendition] = (),
) -> str:
    """The master playlist text, renditions in ladder order (highest first).

    BANDWIDTH and AVERAGE-BANDWIDTH are the measured rates when ``measured`` has
    the rendition, else the nominal ones from the ladder (peak = VBV maxrate +
    audio). Media playlists are at ``{name}/index.m3u8``. ``subtitles`` are
    listed as EXT-X-MEDIA of one SUBTITLES group every variant names."""
    lines = ["#EXTM3U", "#EXT-X-VERSION:6", "#EXT-X-INDEPENDENT-SEGMENTS"]
    for rendition in ladder:
        rates = (measured or {}).get(rendition.name)
        peak = rates.peak_bps if rates else rendition.bandwidth_bps
        average = rates.average_bps if rates else rendition.average_bandwidth_bps
        attributes = [
            f"BANDWIDTH={peak}",
            f"AVERAGE-BANDWIDTH={average}",
            f"RESOLUTION={rendition.width}x{rendition.height}",
            f"FRAME-RATE={float(frame_rate):.3f}",
            f'CODECS="{codecs_attribute(rendition, frame_rate, has_audio)}"',
        ]
        lines += [f"#EXT-X-STREAM-INF:{','.join(attributes)}", f"{rendition.name}/{MEDIA_PLAYLIST_NAME}"]
    text = "\n".join(lines) + "\n"
    return master_with_subtitles(text, subtitles) if subtitles else text


def write_master_playlist(
    ladder: Sequence[Rendition],
    has_audio: bool,
    path: Path,
    *,
    frame_rate: Fraction,
    measured: Mapping[str, PlaylistMeasurement] | None = None,
    subtitles: Sequence[SubtitleRendition] = (),
) -> None:
    """Write (or replace FFmpeg's) master playlist at ``path``; see
    :func:`render_master_playlist`. The file is replaced atomically, so a reader
    never sees half of it. Raises OSError when the folder is not writable."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(
        render_master_playlist(ladder, has_audio, frame_rate=frame_rate, measured=measured, subtitles=subtitles),
        encoding="utf-8",
    )
    os.replace(temporary, path)
