"""Per-title analysis: the quality level (x264 CRF) this title needs.

A fixed ladder spends the same bits on a slide as on a grainy football match.
Instead we look at the title first, cheaply, and pick the CRF at which its top
rung reaches :data:`TARGET_VMAF`:

1. :func:`plan_samples` picks a few short windows spread over the video
   (about :data:`SAMPLE_SHARE` of it, within :data:`MIN_SAMPLE_S` ..
   :data:`MAX_SAMPLE_S`), so a title that changes half-way is seen twice.
2. One FFmpeg run decodes only those windows (each from the keyframe at or
   before its start, so nothing is decoded to be thrown away), puts each on
   the ladder's frame grid, joins them, scales them to
   the analysis size (the top rung, at most :data:`ANALYSIS_MAX_SHORT_SIDE`)
   and encodes them three times: losslessly (the reference, cheap to decode
   again) and at the two :data:`PROBE_CRFS`, with the ladder's own x264 preset
   and GOP (:func:`build_probe_encode_args`). The source is decoded once.
3. A second run scores both probe encodes against the reference with libvmaf
   (:func:`build_probe_score_args`).
4. :func:`crf_for_target` draws the line through the two (CRF, VMAF) points
   and reads off the CRF of the target, within the ladder's CRF bounds.

VMAF falls almost linearly with CRF over the range we use (measured on the
quality corpus: about 0.7 to 1.3 points per CRF step on camera footage and
animation), and flattens near 100 on easy content, where the line then says
"use the highest CRF we allow", which is what easy content deserves.

The same decision serves every chunk of a long video (the planner runs it once
and every chunk order carries the CRF), so chunks never differ in quality.

What can go wrong: :func:`analyse_title` raises the MediaError of the FFmpeg
adapter when the source cannot be decoded (the encode would fail the same
way), and FfmpegError when FFmpeg fails on our side or runs out of time; the
caller may then fall back to the ladder's default CRF.
"""

from __future__ import annotations

import json
import math
import resource
import time
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from transcode.domain_logic.encode_cost import encode_cost
from transcode.domain_logic.hls import X264_PRESET, gop_frames
from transcode.domain_logic.ladder import MAX_CRF, MIN_CRF, Rendition, output_frame_rate, scaled_size
from vidpipe.adapters.ffmpeg.inputs import input_args, source_input_args
from vidpipe.adapters.ffmpeg.process import run_ffmpeg
from vidpipe.domain.colour import SDR_BT709, VideoColour, assume_untagged, ladder_prefilter, sdr_scale_options
from vidpipe.domain.errors import FfmpegError
from vidpipe.domain.filter_graph import FilterGraph, Stream, concat_video, filter_of_streams
from vidpipe.domain.source_info import SourceInfo

# The quality the top rung aims at: VMAF 93-95 is the usual target for a top
# rung (above 95 is mostly bits nobody sees; about 6 points is one
# just-noticeable step). Measured on the analysis size (the top rung's own size,
# up to 540p); on the quality corpus the full-size top rung came out within
# about a point of it, so 94.5 keeps the rung above 93.
TARGET_VMAF = 94.5
# Two probe encodes bracket the CRFs that usually hit the target.
PROBE_CRFS = (22.0, 28.0)
# Share of the video sampled, and its bounds: at least half a second (a
# shorter title is sampled whole), at most 20 s (enough for a feature film's
# variety). A sampled second costs about as much CPU as a second of the whole
# ladder (decode, three small encodes, two scores), so the share is what keeps
# the analysis under a tenth of the encode.
SAMPLE_SHARE = 0.06
MIN_SAMPLE_S = 0.5
MAX_SAMPLE_S = 20.0
WINDOW_S = 2.0
# Analysis above 540p costs more than it tells: the CRF's effect on quality
# barely depends on the picture size (checked on the quality corpus).
ANALYSIS_MAX_SHORT_SIDE = 540
# Every second frame is scored: VMAF's pooled mean hardly moves, the cost halves.
VMAF_SUBSAMPLE = 2
# What an analysis costs whatever its sample's length: starting its two FFmpeg
# runs, three x264 encoders and the VMAF model (about 0.65 CPU-s measured on a
# one-frame sample of a 1080p source, the layer's FFmpeg).
FIXED_CPU_S = 0.65
PROBE_NAMES = ("probe_a.mp4", "probe_b.mp4")
REFERENCE_NAME = "reference.mp4"
SCORE_NAMES = ("vmaf_a.json", "vmaf_b.json")


@dataclass(frozen=True)
class SampleWindow:
    start_s: float
    length_s: float


@dataclass(frozen=True)
class ProbePoint:
    """One probe encode: its CRF, its VMAF against the sampled source, and its
    video bit rate (kbit/s) on the samples."""

    crf: float
    vmaf: float
    kbps: int


@dataclass(frozen=True)
class TitleAnalysis:
    """The CRF chosen for the title, with what it was chosen from and what the
    analysis cost (CPU seconds of its FFmpeg processes, sampled seconds)."""

    crf: float
    probes: tuple[ProbePoint, ...]
    sampled_s: float
    cpu_s: float

    def summary(self) -> dict[str, object]:
        """JSON-ready, for the job's outputs and the logs."""
        return {
            "crf": self.crf,
            "target_vmaf": TARGET_VMAF,
            "sampled_s": round(self.sampled_s, 2),
            "probes": [{"crf": p.crf, "vmaf": round(p.vmaf, 2), "kbps": p.kbps} for p in self.probes],
        }


def plan_samples(duration_s: float, start_s: float = 0.0) -> list[SampleWindow]:
    """The windows to sample, in time order: about ``SAMPLE_SHARE`` of the
    video in windows of about ``WINDOW_S``, each in the middle of an equal
    share of the video. A video shorter than ``MIN_SAMPLE_S`` is one window."""
    if duration_s <= MIN_SAMPLE_S:
        return [SampleWindow(start_s, duration_s)]
    total_s = min(max(SAMPLE_SHARE * duration_s, MIN_SAMPLE_S), MAX_SAMPLE_S)
    count = max(1, round(total_s / WINDOW_S))
    length_s = total_s / count
    share_s = duration_s / count
    return [
        SampleWindow(round(start_s + share_s * (index + 0.5) - length_s / 2, 3), round(length_s, 3))
        for index in range(count)
    ]


def expected_cpu_s(source: SourceInfo, ladder: Sequence[Rendition]) -> tuple[float, float]:
    """What the analysis and the ladder's encode of ``source`` are expected to
    cost, in CPU-seconds, from the pixel counts of
    :func:`~transcode.domain_logic.encode_cost.encode_cost`. A sampled second
    costs about what a second of the whole ladder does (it is decoded, encoded
    three times and scored twice), on top of :data:`FIXED_CPU_S`."""
    ladder_cpu_s = encode_cost(source, ladder, duration_s=source.duration_s).cpu_s
    sampled_s = sum(window.length_s for window in plan_samples(source.duration_s))
    share = min(1.0, sampled_s / source.duration_s) if source.duration_s > 0 else 1.0
    return FIXED_CPU_S + share * ladder_cpu_s, ladder_cpu_s


def worth_analysing(source: SourceInfo, ladder: Sequence[Rendition], max_cost_share: float) -> bool:
    """Whether the analysis of ``source`` would cost at most ``max_cost_share`` of
    its ladder's encode. The fixed part makes it too dear for a title whose whole
    ladder costs a few CPU-seconds (an 8 s 720p clip, a minute at 360p); such a
    title gets the default CRF, and the few bits the analysis might save there
    are not worth a tenth of the encode."""
    analysis_cpu_s, ladder_cpu_s = expected_cpu_s(source, ladder)
    return analysis_cpu_s <= max_cost_share * ladder_cpu_s


def analysis_size(top: Rendition) -> tuple[int, int]:
    """The probe encodes' picture size: the top rung's, scaled down to a short
    side of :data:`ANALYSIS_MAX_SHORT_SIDE` when it is larger."""
    short_side = min(top.width, top.height)
    if short_side <= ANALYSIS_MAX_SHORT_SIDE:
        return top.width, top.height
    return scaled_size(top.width, top.height, ANALYSIS_MAX_SHORT_SIDE)


def _sampled_windows(
    graph: FilterGraph,
    source: Path | str,
    demuxer: str,
    windows: Sequence[SampleWindow],
    frame_rate: Fraction,
    size: tuple[int, int],
    colour: VideoColour,
) -> Stream:
    """Each window, read as an input of its own, on the ladder's frame grid,
    then all of them one after another at ``size``, made SDR BT.709 as the
    rungs are (an HDR source's probes are judged on the tone-mapped picture its
    rungs will show). The grid goes on each window before the concatenation:
    after it, ``fps`` would read the joined timestamps and repeat frames, and
    repeated frames score and cost unlike the real video."""
    rate = f"{frame_rate.numerator}/{frame_rate.denominator}"
    parts = []
    for window in windows:
        # Start at the keyframe at or before the window (-noaccurate_seek): any
        # stretch of the title samples it as well, and decoding from the keyframe
        # up to an exact start can cost more than the window itself (measured:
        # docs/PERFORMANCE.md). The trim ends the window, and the input with it.
        seek = ["-noaccurate_seek", "-ss", f"{window.start_s:.3f}"]
        video = graph.add_input([*seek, *source_input_args(source, demuxer)])["v:0"]
        parts.append(
            video.filter("trim", duration=f"{window.length_s:.3f}")
            .filter("fps", fps=rate)
            .filter("setpts", "PTS-STARTPTS")
        )
    joined = ladder_prefilter(concat_video(parts), colour, size)
    return (
        joined.filter("scale", size[0], size[1], **sdr_scale_options(colour))
        .filter("setsar", 1)
        .filter("format", "yuv420p")
        .filter("setpts", "PTS-STARTPTS")
    )


def build_probe_encode_args(
    source: Path | str,
    demuxer: str,
    windows: Sequence[SampleWindow],
    frame_rate: Fraction,
    size: tuple[int, int],
    scratch: Path,
    segment_s: int,
    colour: VideoColour = SDR_BT709,
) -> list[str]:
    """One FFmpeg run encoding the sampled windows losslessly into
    ``scratch / REFERENCE_NAME`` and at each of :data:`PROBE_CRFS` into
    :data:`PROBE_NAMES`, with the ladder's x264 preset, profile and GOP,
    uncapped: we want the quality each CRF gives."""
    graph = FilterGraph()
    sampled = _sampled_windows(graph, source, demuxer, windows, frame_rate, size, colour).split()
    compiled = graph.compile([sampled[index] for index in range(len(PROBE_CRFS) + 1)])
    reference, *probes = compiled.outputs
    args = [
        *compiled.args,
        # Lossless (-qp 0) and the fastest preset: decoding this again is far
        # cheaper than decoding the upload again.
        "-map", reference, "-c:v", "libx264", "-preset", "ultrafast", "-qp", "0",
        "-an", "-f", "mp4", str(scratch / REFERENCE_NAME),
    ]  # fmt: skip
    for probe, crf, name in zip(probes, PROBE_CRFS, PROBE_NAMES, strict=True):
        args += [
            "-map", probe,
            "-c:v", "libx264", "-preset", X264_PRESET, "-profile:v", "high",
            "-sc_threshold", "0", "-g", str(gop_frames(frame_rate, segment_s)),
            "-crf", f"{crf:g}",
            "-an", "-f", "mp4", str(scratch / name),
        ]  # fmt: skip
    return args


def build_probe_score_args(scratch: Path, threads: int) -> list[str]:
    """One FFmpeg run scoring each probe encode in ``scratch`` against the
    lossless reference with libvmaf, logs as JSON in ``scratch``
    (:data:`SCORE_NAMES`)."""
    graph = FilterGraph()
    reference = graph.add_input(input_args(scratch / REFERENCE_NAME, "mov"))["v:0"].filter("setpts", "PTS-STARTPTS")
    reference_copies = reference.split()
    scores = []
    for index, (probe_name, log_name) in enumerate(zip(PROBE_NAMES, SCORE_NAMES, strict=True)):
        probe = graph.add_input(input_args(scratch / probe_name, "mov"))["v:0"].filter("setpts", "PTS-STARTPTS")
        # libvmaf reads the distorted picture first, the reference second.
        scores.append(
            filter_of_streams(
                [probe, reference_copies[index]],
                "libvmaf",
                n_threads=threads,
                n_subsample=VMAF_SUBSAMPLE,
                log_fmt="json",
                log_path=str(scratch / log_name),
            )
        )
    compiled = graph.compile(scores)
    args = list(compiled.args)
    for score in compiled.outputs:
        args += ["-map", score, "-f", "null", "-"]
    return args


def crf_for_target(probes: Sequence[ProbePoint], target: float = TARGET_VMAF) -> float:
    """The CRF whose VMAF the line through the probes puts at ``target``,
    rounded to a tenth and held within MIN_CRF..MAX_CRF.

    A line that does not fall (VMAF as good at the higher CRF: easy content)
    means the highest CRF the probes reached already meets the target, or, when
    even the best probe misses it, the lowest CRF we allow."""
    ordered = sorted(probes, key=lambda probe: probe.crf)
    low, high = ordered[0], ordered[-1]
    slope = (high.vmaf - low.vmaf) / (high.crf - low.crf) if high.crf != low.crf else 0.0
    # A flat (or rising) line: easy content if the probes meet the target, else
    # content no CRF in reach fixes, which gets the best we allow.
    flat_choice = MAX_CRF if high.vmaf >= target else MIN_CRF
    crf = low.crf + (target - low.vmaf) / slope if slope < -1e-6 else flat_choice
    return round(min(max(crf, MIN_CRF), MAX_CRF), 1)


def read_vmaf(log_path: Path) -> float:
    """The pooled mean VMAF of a libvmaf JSON log. FfmpegError when it is missing or unreadable."""
    try:
        return float(json.loads(log_path.read_text(encoding="utf-8"))["pooled_metrics"]["vmaf"]["mean"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise FfmpegError(f"libvmaf wrote no usable score to {log_path.name}: {exc}") from exc


def analyse_title(
    source_ref: Path | str,
    source: SourceInfo,
    top: Rendition,
    scratch: Path,
    *,
    timeout_s: float,
    segment_s: int,
    threads: int = 2,
) -> TitleAnalysis:
    """Sample ``source`` (a local path or a presigned URL), probe-encode and
    score the samples, and choose the title's CRF (see the module docstring).

    Writes only under ``scratch`` (created). Raises what run_ffmpeg raises."""
    scratch = scratch.absolute()
    scratch.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout_s
    windows = plan_samples(source.duration_s, source.video_start_s)
    size = analysis_size(top)
    # The renditions' rate (at most 60 fps), so the probes are encoded like the rungs.
    frame_rate = output_frame_rate(source.frame_rate)
    cpu_before = _children_cpu_s()
    run_ffmpeg(
        build_probe_encode_args(
            source_ref,
            source.demuxer,
            windows,
            frame_rate,
            size,
            scratch,
            segment_s,
            colour=assume_untagged(source.colour, source.display_width, source.display_height),
        ),
        timeout_s=max(1.0, deadline - time.monotonic()),
    )
    run_ffmpeg(build_probe_score_args(scratch, threads), timeout_s=max(1.0, deadline - time.monotonic()))
    sampled_s = sum(window.length_s for window in windows)
    probes = tuple(
        ProbePoint(crf=crf, vmaf=read_vmaf(scratch / score), kbps=_kbps(scratch / probe, sampled_s))
        for crf, probe, score in zip(PROBE_CRFS, PROBE_NAMES, SCORE_NAMES, strict=True)
    )
    return TitleAnalysis(
        crf=crf_for_target(probes), probes=probes, sampled_s=sampled_s, cpu_s=_children_cpu_s() - cpu_before
    )


def _kbps(path: Path, seconds: float) -> int:
    """Whole-file bit rate: the MP4 header is a few hundred bytes, noise beside the samples."""
    return math.ceil(path.stat().st_size * 8 / max(seconds, 1e-3) / 1000)


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
