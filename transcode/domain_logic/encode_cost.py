"""What an encode will cost, known from the probe before FFmpeg starts, and
whether the stage that runs it can finish it in time.

An upload too costly for its stage (8K at 240 fps, say) would otherwise run
into the Lambda timeout, be retried, and time out twice more before the job
fails with a vague FFmpeg timeout. Counting pixels tells us up front.

The cost, in CPU-seconds, has three terms, each a pixel count divided by a
throughput measured on the layer's static FFmpeg 6.0 with the ladder's own
arguments (``scripts/encode_throughput.py``; see the constants):

* decode: every source frame's pixels, once per decode of the source (early
  playback decodes it twice);
* scale: the source picture once per rung per *output* frame (each rung's
  scaler reads the whole source picture, after the ``fps`` filter);
* encode: the sum over rungs of width x height x output frames (x264
  ``veryfast`` and the HLS muxer).

What the stage can do is its vCPUs times its time limit: a Lambda function
gets one vCPU per 1,769 MB of memory, at most 6. The check refuses only an
encode that could not finish even with every vCPU busy the whole time, so an
estimate off by a few tens of per cent never turns away an upload that would
have made it (where typical and extreme uploads sit against the line:
docs/PERFORMANCE.md, "Measurements behind the slices").

What can go wrong: :func:`check_encode_cost` raises EncodeTooCostly (final);
:func:`lambda_vcpus` raises ValueError for memory that is not positive.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from transcode.domain_logic.ladder import Rendition, output_frame_rate
from vidpipe.domain.errors import EncodeTooCostly
from vidpipe.domain.source_info import SourceInfo

# Throughputs in pixels per CPU-second of FFmpeg (user + system), rounded from a
# run of scripts/encode_throughput.py (the run: docs/PERFORMANCE.md).
DECODE_PIXELS_PER_CPU_S = 390_000_000
SCALE_PIXELS_PER_CPU_S = 1_180_000_000
ENCODE_PIXELS_PER_CPU_S = 55_000_000
# Lambda gives a function one vCPU per 1,769 MB of memory, up to 6 (at 10,240 MB).
LAMBDA_MB_PER_VCPU = 1769
LAMBDA_MAX_VCPUS = 6


@dataclass(frozen=True)
class EncodeCost:
    """Pixels an encode will decode, scale (source pixels, counted once per rung)
    and encode (output pixels), and what that costs in CPU-seconds."""

    decoded_pixels: int
    scaled_pixels: int
    encoded_pixels: int

    @property
    def cpu_s(self) -> float:
        return (
            self.decoded_pixels / DECODE_PIXELS_PER_CPU_S
            + self.scaled_pixels / SCALE_PIXELS_PER_CPU_S
            + self.encoded_pixels / ENCODE_PIXELS_PER_CPU_S
        )


@dataclass(frozen=True)
class StageBudget:
    """What a stage can spend on one encode: ``time_s`` seconds on ``vcpus`` vCPUs."""

    time_s: float
    vcpus: float

    @property
    def cpu_s(self) -> float:
        return self.time_s * self.vcpus


def lambda_vcpus(memory_mb: int) -> float:
    """The vCPUs a Lambda function of ``memory_mb`` gets (fractional below 1,769 MB)."""
    if memory_mb <= 0:
        raise ValueError(f"a function's memory must be positive, not {memory_mb} MB")
    return min(memory_mb / LAMBDA_MB_PER_VCPU, LAMBDA_MAX_VCPUS)


def lambda_budget(memory_mb: int, time_s: float) -> StageBudget:
    """The budget of a Lambda function of ``memory_mb`` that may encode for ``time_s``."""
    return StageBudget(time_s=time_s, vcpus=lambda_vcpus(memory_mb))


def encode_cost(
    source: SourceInfo,
    ladder: Sequence[Rendition],
    *,
    duration_s: float,
    decoded_s: float | None = None,
    decodes: int = 1,
) -> EncodeCost:
    """The cost of encoding ``duration_s`` seconds of ``source`` into ``ladder`` at
    the output frame rate (:func:`~transcode.domain_logic.ladder.output_frame_rate`),
    decoding ``decoded_s`` seconds of it (default ``duration_s``; a chunk decodes
    from a keyframe before its start) ``decodes`` times. Frames are counted up."""
    source_pixels = source.width * source.height
    source_frames = math.ceil(Fraction(decoded_s if decoded_s is not None else duration_s) * source.frame_rate)
    output_frames = math.ceil(Fraction(duration_s) * output_frame_rate(source.frame_rate))
    return EncodeCost(
        decoded_pixels=decodes * source_frames * source_pixels,
        scaled_pixels=output_frames * len(ladder) * source_pixels,
        encoded_pixels=output_frames * sum(rendition.width * rendition.height for rendition in ladder),
    )


def check_encode_cost(cost: EncodeCost, budget: StageBudget, *, what: str) -> None:
    """Raise EncodeTooCostly when ``cost`` is more than ``budget`` can do; ``what``
    names the work for the message (e.g. "1920x1080 at 60 fps for 120 s")."""
    if cost.cpu_s <= budget.cpu_s:
        return
    raise EncodeTooCostly(
        f"encoding {what} would take about {cost.cpu_s:,.0f} CPU-seconds "
        f"({cost.decoded_pixels / 1e9:,.0f} Gpixel to decode, {cost.encoded_pixels / 1e9:,.0f} Gpixel to encode), "
        f"more than the {budget.cpu_s:,.0f} this stage has ({budget.time_s:,.0f} s on {budget.vcpus:.1f} vCPUs)"
    )


def describe_source(source: SourceInfo, duration_s: float) -> str:
    """``"7680x4320 at 240 fps for 120 s"``: the source as the user knows it."""
    rate = f"{float(source.frame_rate):.3f}".rstrip("0").rstrip(".")
    return f"{source.display_width}x{source.display_height} at {rate} fps for {duration_s:,.0f} s"
