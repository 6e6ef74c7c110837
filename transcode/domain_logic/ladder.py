"""The bitrate ladder: which renditions a source gets, and how each spends bits.

Rungs are chosen by the *short* side of the displayed picture (rotation
honoured), so a portrait phone clip gets portrait renditions with the same
names and bitrates as its landscape twin. Bitrates follow the spirit of
Apple's HLS authoring specification for 16:9 video and are scaled by picture
area for other shapes (a 2.35:1 "720p" has 30 % more pixels than a 16:9 one).

How a rung spends its bits is the ladder's ``rate_control``:

* ``per-title`` (the default): capped CRF at a quality level chosen for this
  title by :mod:`transcode.domain_logic.title_analysis` (short probe encodes of
  sampled scenes, scored with VMAF). Easy content (a slide, flat animation)
  stops at the quality target with a fraction of the fixed rates; hard content
  gets up to the rung's cap.
* ``capped-crf``: capped CRF at one constant level for every title (``crf``),
  the simple alternative, kept for comparison (``make quality``).
* ``fixed``: today's average bitrates whatever the content (a template setting).

With CRF, a rung's rate is capped (``-maxrate``) at the fixed ladder's average
for that rung, with two seconds of it as the buffer, and never above what the source
itself carries (:attr:`SourceInfo.video_bitrate_kbps`, when the file says): no
content costs more than the fixed ladder, playback stays as smooth, and no rung
spends more bits than came in.


Frame rate (:func:`output_frame_rate`): a source at or below 60 fps keeps its
rate; above, every rung gets the largest source_rate / k (k whole) at or
below 60 (120 -> 60, 119.88 -> 59.94, 100 -> 50, 240 -> 60, 90 -> 45,
72 -> 36; 0.1 % over 60 is let through for a variable-rate source's average),
so the output keeps every k-th frame and motion stays even. Every
rung, the lowest included, gets the same rate: Apple's authoring guidance
allows halving the rate of small rungs, but they are a tenth of the ladder's
pixels, and one rate keeps a single ``fps`` filter before the split, the
keyframes of all rungs on the same frames and one FRAME-RATE in the master
playlist.

What can go wrong: :func:`plan_ladder` raises CorruptMedia for a picture
narrower than 2 pixels (nothing can encode it as 4:2:0), and
:class:`LadderConfig` raises ValueError for an inconsistent configuration.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import StrEnum
from fractions import Fraction
from itertools import pairwise

from vidpipe.domain.errors import CorruptMedia
from vidpipe.domain.source_info import SourceInfo

# The reference shape the rung bitrates are written for.
REFERENCE_ASPECT = 16 / 9
# The highest frame rate a rendition gets: what HLS players and H.264 levels up
# to 4.2 at 1080p are made for; more doubles the encode for motion few screens show.
MAX_OUTPUT_FRAME_RATE = Fraction(60)
# A source's rate is an average read from its timestamps: a variable-rate
# "120 fps" phone clip may average 120.03. Within this share above a multiple of
# 60 it is divided as that multiple (to 60.015, not to 40).
FRAME_RATE_TOLERANCE = Fraction(1, 1000)


class RateControl(StrEnum):
    """How the rungs spend bits (see the module docstring)."""

    PER_TITLE = "per-title"
    CAPPED_CRF = "capped-crf"
    FIXED = "fixed"


# x264's CRF scale: lower is better quality. 23 is x264's own default and the
# constant the capped-CRF comparison uses; per-title choices stay within the
# bounds (below 18 is visually lossless for nearly everything, above 32 shows
# blocking on any content).
DEFAULT_CRF = 23.0
MIN_CRF = 18.0
MAX_CRF = 32.0
# Per title, each rung below the top gets a quality level this much lower
# (a higher CRF, up to MAX_CRF): a small picture has already lost detail to
# its size, so bits spent on its compression buy little that a viewer (or
# VMAF of it scaled back up) can see. -0.5 was the best trade of the steps
# `make quality` compared (docs/PERFORMANCE.md).
LOWER_RUNG_CRF_STEP = -0.5
# ...but never coarser than this: on easy content the title's level is high
# (CRF 31 for a slide), and at 480p and below that starves the rung of the few
# bits it needs (VMAF 12 points under the fixed ladder's at 240p) while saving
# almost nothing. Measured by `make quality` (docs/PERFORMANCE.md).
LOWER_RUNG_MAX_CRF = 23.5


@dataclass(frozen=True)
class Rung:
    """One step of the ladder: a short side in pixels and the average video bitrate
    meant for a 16:9 picture of that size."""

    short_side: int
    video_bitrate_kbps: int


DEFAULT_RUNGS: tuple[Rung, ...] = (
    Rung(1080, 5000),
    Rung(720, 2800),
    Rung(480, 1400),
    Rung(360, 800),
    Rung(240, 400),
)


@dataclass(frozen=True)
class LadderConfig:
    """How to build a ladder. Rungs are listed highest first.

    ``peak_ratio`` sets the VBV peak (``-maxrate``) from the average: Apple asks
    for a VOD peak within 200 % of the average; 125 % keeps segments even so
    players switch less. ``buffer_s`` sets the VBV buffer as seconds of peak
    rate: two seconds lets x264 spend bits on hard scenes without breaking the
    peak over a 4 s segment by much. Bitrates of non-16:9 pictures are scaled by
    their area relative to the 16:9 picture of the rung, within
    ``min_area_factor``..``max_area_factor`` so that a very thin or very wide
    picture gets neither a starved nor an absurd bitrate.

    ``analysis_cost_share`` is the most of the ladder's encode CPU a per-title
    analysis may cost; a title whose analysis would cost more (a short or small
    one: the analysis has a fixed cost) gets the ladder's default ``crf``."""

    rungs: tuple[Rung, ...] = DEFAULT_RUNGS
    rate_control: RateControl = RateControl.PER_TITLE
    crf: float = DEFAULT_CRF
    audio_bitrate_kbps: int = 128
    peak_ratio: float = 1.25
    buffer_s: float = 2.0
    min_area_factor: float = 0.25
    max_area_factor: float = 2.0
    analysis_cost_share: float = 0.10

    def __post_init__(self) -> None:
        if not self.rungs:
            raise ValueError("a ladder needs at least one rung")
        for higher, lower in pairwise(self.rungs):
            if lower.short_side >= higher.short_side or lower.video_bitrate_kbps >= higher.video_bitrate_kbps:
                raise ValueError("rungs must be listed highest first, sizes and bitrates decreasing")
        for rung in self.rungs:
            if rung.short_side <= 0 or rung.short_side % 2 or rung.video_bitrate_kbps <= 0:
                raise ValueError(f"a rung needs an even positive size and a positive bitrate: {rung}")
        if self.audio_bitrate_kbps <= 0 or self.peak_ratio < 1 or self.buffer_s <= 0:
            raise ValueError("audio bitrate and buffer must be positive, peak_ratio at least 1")
        if not 0 < self.min_area_factor <= 1 <= self.max_area_factor:
            raise ValueError("area factors must bracket 1")
        if not MIN_CRF <= self.crf <= MAX_CRF:
            raise ValueError(f"crf must be within {MIN_CRF:g}..{MAX_CRF:g}, not {self.crf}")
        if self.analysis_cost_share < 0:
            raise ValueError(f"analysis_cost_share must not be negative, not {self.analysis_cost_share}")


DEFAULT_LADDER = LadderConfig()


@dataclass(frozen=True)
class Rendition:
    """One output of the ladder. ``width``/``height`` are the displayed size (even);
    bitrates are in kbit/s; ``audio_bitrate_kbps`` is 0 for a video-only rendition.

    ``crf`` is None for an average-bitrate rung (``video_bitrate_kbps`` is then
    the target). With a ``crf`` the encoder aims at that quality level, capped
    at ``max_bitrate_kbps``; ``video_bitrate_kbps`` is then only the most it may
    average (what the fixed ladder would spend), and the real rate is measured
    on the segments written."""

    name: str
    width: int
    height: int
    video_bitrate_kbps: int
    max_bitrate_kbps: int
    buffer_kbps: int
    audio_bitrate_kbps: int
    crf: float | None = None

    @property
    def bandwidth_bps(self) -> int:
        """Peak bit rate (video peak + audio), what HLS's BANDWIDTH attribute declares."""
        return (self.max_bitrate_kbps + self.audio_bitrate_kbps) * 1000

    @property
    def average_bandwidth_bps(self) -> int:
        """Nominal average bit rate (video + audio), for AVERAGE-BANDWIDTH and display."""
        return (self.video_bitrate_kbps + self.audio_bitrate_kbps) * 1000


def plan_ladder(
    source: SourceInfo, config: LadderConfig = DEFAULT_LADDER, *, title_crf: float | None = None
) -> list[Rendition]:
    """Renditions for ``source``, highest first.

    Never upscales: a rung is used only if its short side fits the source's. A
    source smaller than the lowest rung gets exactly one rendition at its own
    size (rounded down to even), with the lowest rung's bitrate scaled to its
    area. Rate control follows ``config.rate_control``: ``title_crf`` is the
    per-title quality level (from the title analysis); without it a per-title
    ladder uses ``config.crf``, as the capped-CRF ladder does (the plan before
    the analysis, or a backend that does its own rate control). Raises
    CorruptMedia when the picture is thinner than 2 pixels."""
    width, height = source.display_width, source.display_height
    short_side = min(width, height)
    if short_side < 2:
        raise CorruptMedia(f"the picture {width}x{height} is too small to encode (at least 2x2)")
    audio_kbps = config.audio_bitrate_kbps if source.has_audio else 0
    crf = None
    if config.rate_control is RateControl.PER_TITLE:
        crf = config.crf if title_crf is None else min(max(title_crf, MIN_CRF), MAX_CRF)
    elif config.rate_control is RateControl.CAPPED_CRF:
        crf = config.crf
    # Never more bits than came in: re-encoding cannot add detail the source
    # lacks. Only with CRF: the fixed ladder stays what it always was.
    source_cap = source.video_bitrate_kbps if crf is not None else None
    fitting = [rung for rung in config.rungs if rung.short_side <= short_side]
    if not fitting:
        lowest = config.rungs[-1]
        # Round down, not to nearest: rounding up would be a (one-pixel) upscale.
        own_short_side = short_side - short_side % 2
        return [_rendition(width, height, own_short_side, lowest, audio_kbps, config, crf, source_cap)]
    return [
        _rendition(width, height, rung.short_side, rung, audio_kbps, config,
                   None if crf is None else _rung_crf(crf, index, config.rate_control), source_cap)
        for index, rung in enumerate(fitting)
    ]  # fmt: skip


def _rung_crf(title_crf: float, index: int, rate_control: RateControl) -> float:
    """The quality level of the ``index``-th rung (0 = top) of a CRF ladder."""
    if rate_control is not RateControl.PER_TITLE or index == 0:
        return title_crf
    lower = min(title_crf - LOWER_RUNG_CRF_STEP * index, LOWER_RUNG_MAX_CRF)
    return min(MAX_CRF, max(MIN_CRF, lower))


def _rendition(
    width: int,
    height: int,
    short_side: int,
    rung: Rung,
    audio_kbps: int,
    config: LadderConfig,
    crf: float | None,
    source_cap_kbps: int | None,
) -> Rendition:
    out_width, out_height = scaled_size(width, height, short_side)
    # Compare with the 16:9 picture of the *rung* (not of our short side), so a
    # picture below the lowest rung gets a bitrate in proportion to its pixels.
    reference_area = rung.short_side * rung.short_side * REFERENCE_ASPECT
    area_factor = min(max(out_width * out_height / reference_area, config.min_area_factor), config.max_area_factor)
    # Nearest 10 kbit/s: keeps 16:9 ladders on their round numbers (854x480 is 0.1 %
    # bigger than 480 x 480 x 16/9) and is far below what anyone could see.
    video_kbps = max(10, 10 * round(rung.video_bitrate_kbps * area_factor / 10))
    max_kbps = round(video_kbps * config.peak_ratio)
    if crf is not None:
        # Capped CRF: the fixed ladder's average is the ceiling, so no content costs
        # more than the fixed ladder would over any stretch of a buffer's length
        # (two seconds of the ceiling: a full buffer at the start is all a short
        # video can overspend).
        max_kbps = video_kbps
    if source_cap_kbps:
        max_kbps = max(10, min(max_kbps, source_cap_kbps))
        video_kbps = min(video_kbps, max_kbps)
    return Rendition(
        name=f"{short_side}p",
        width=out_width,
        height=out_height,
        video_bitrate_kbps=video_kbps,
        max_bitrate_kbps=max_kbps,
        buffer_kbps=round(max_kbps * config.buffer_s),
        audio_bitrate_kbps=audio_kbps,
        crf=crf,
    )


def scaled_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """The (width, height) with the given even short side and the long side that
    keeps the aspect ratio, rounded to the nearest even number (4:2:0 chroma needs
    even sizes), so the aspect is off by at most one pixel on the long side."""
    if width >= height:
        return _nearest_even(width * short_side, height), short_side
    return short_side, _nearest_even(height * short_side, width)


def _nearest_even(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded to the nearest even integer (halves up), at
    least 2. Integer arithmetic, so the same size comes out on every machine."""
    return max(2, 2 * ((numerator + denominator) // (2 * denominator)))


def ladder_from_text(text: str, rate_control: str = "") -> LadderConfig:
    """The ladder a deployment configures (template parameters ``LadderRungs``
    and ``LadderRateControl``): ``"1080:5000,720:2800,480:1400"`` is three
    rungs, short side in pixels and video kbit/s, highest first; the rate
    control is ``per-title``, ``capped-crf`` or ``fixed``. Empty text is the
    default for either.

    Raises ValueError naming what is wrong (a deploy mistake, found at the
    first upload)."""
    control = RateControl.PER_TITLE
    if rate_control.strip():
        try:
            control = RateControl(rate_control.strip())
        except ValueError:
            choices = ", ".join(member.value for member in RateControl)
            raise ValueError(f"the ladder's rate control is one of {choices}, not {rate_control!r}") from None
    if not text.strip():
        return replace(DEFAULT_LADDER, rate_control=control)
    rungs = []
    for item in text.split(","):
        size, colon, kbps = item.strip().partition(":")
        if not colon or not size.strip().isdigit() or not kbps.strip().isdigit():
            raise ValueError(f"a rung is written short_side:kbps (e.g. 720:2800), not {item.strip()!r}")
        rungs.append(Rung(int(size), int(kbps)))
    return LadderConfig(rungs=tuple(rungs), rate_control=control)


def output_frame_rate(source_rate: Fraction, max_rate: Fraction = MAX_OUTPUT_FRAME_RATE) -> Fraction:
    """The renditions' frame rate for a source at ``source_rate``: the source's own
    at or below ``max_rate``, else ``source_rate / k`` for the smallest whole ``k``
    that brings it to ``max_rate`` or below (within FRAME_RATE_TOLERANCE), an
    exact divisor, so the renditions keep every k-th frame: 120 -> 60,
    120000/1001 -> 60000/1001, 100 -> 50, 90 -> 45, 72 -> 36.

    Raises ValueError for a rate that is not positive."""
    if source_rate <= 0 or max_rate <= 0:
        raise ValueError(f"frame rates must be positive, not {source_rate} and {max_rate}")
    divisor = math.ceil(source_rate / (max_rate * (1 + FRAME_RATE_TOLERANCE)))
    return source_rate / divisor
