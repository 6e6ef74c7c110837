"""H.264 levels: the lowest level (ITU-T H.264 Table A-1) that holds a rendition.

The level is pinned in every rung's x264 options and declared in the master
playlist's CODECS (both written in transcode.domain_logic.hls), so the stream
and the playlist say the same level.

What can go wrong: :func:`h264_level_idc` raises ValueError for a rendition no
level holds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from transcode.domain_logic.ladder import Rendition

# Reference frames the decoder must hold for x264's veryfast preset (hls.X264_PRESET):
# 1 reference plus B-pyramid makes x264 signal 4 in the SPS, and the level must have room for them.
X264_DPB_FRAMES = 4


@dataclass(frozen=True)
class _H264Level:
    """A row of H.264 Table A-1. Bitrate and CPB are the Baseline/Main limits; the
    High profile allows 1.25 times them."""

    idc: int
    max_mb_per_s: int
    max_frame_mbs: int
    max_dpb_mbs: int
    max_kbps: int
    max_cpb_kbits: int


# The table starts at 3.0 on purpose: every device that plays High profile plays 3.0,
# and declaring a higher level than a stream strictly needs is always valid.
_H264_LEVELS: tuple[_H264Level, ...] = (
    _H264Level(30, 40_500, 1_620, 8_100, 10_000, 10_000),
    _H264Level(31, 108_000, 3_600, 18_000, 14_000, 14_000),
    _H264Level(32, 216_000, 5_120, 20_480, 20_000, 20_000),
    _H264Level(40, 245_760, 8_192, 32_768, 20_000, 25_000),
    _H264Level(41, 245_760, 8_192, 32_768, 50_000, 62_500),
    _H264Level(42, 522_240, 8_704, 34_816, 50_000, 62_500),
    _H264Level(50, 589_824, 22_080, 110_400, 135_000, 135_000),
    _H264Level(51, 983_040, 36_864, 184_320, 240_000, 240_000),
    _H264Level(52, 2_073_600, 36_864, 184_320, 240_000, 240_000),
    _H264Level(60, 4_177_920, 139_264, 696_320, 240_000, 240_000),
    _H264Level(61, 8_355_840, 139_264, 696_320, 480_000, 480_000),
    _H264Level(62, 16_711_680, 139_264, 696_320, 800_000, 800_000),
)
_HIGH_PROFILE_BITRATE_FACTOR = 1.25


def h264_level_idc(rendition: Rendition, frame_rate: Fraction) -> int:
    """The lowest H.264 level (as level_idc, e.g. 31 for 3.1) that holds the
    rendition's picture size, macroblock rate, reference frames and VBV peak and
    buffer at High profile. Raises ValueError beyond level 6.2 (which the 8192
    pixel limit of the probe keeps us from)."""
    width_mbs, height_mbs = math.ceil(rendition.width / 16), math.ceil(rendition.height / 16)
    frame_mbs = width_mbs * height_mbs
    # Whole frames per second, rounded up: x264 checks the level against the output
    # frame rate, which for a 29.97 or slightly variable source can be a bit above
    # the average ffprobe reports.
    mb_per_s = frame_mbs * math.ceil(frame_rate)
    for level in _H264_LEVELS:
        side_limit = math.sqrt(8 * level.max_frame_mbs)  # Annex A: neither side above sqrt(8*MaxFS)
        if (
            frame_mbs <= level.max_frame_mbs
            and width_mbs <= side_limit
            and height_mbs <= side_limit
            and mb_per_s <= level.max_mb_per_s
            and frame_mbs * X264_DPB_FRAMES <= level.max_dpb_mbs
            and rendition.max_bitrate_kbps <= level.max_kbps * _HIGH_PROFILE_BITRATE_FACTOR
            and rendition.buffer_kbps <= level.max_cpb_kbits * _HIGH_PROFILE_BITRATE_FACTOR
        ):
            return level.idc
    raise ValueError(f"no H.264 level holds {rendition} at {float(frame_rate):.3f} fps")


def h264_level_name(level_idc: int) -> str:
    """``31`` → ``"3.1"``, the form x264's ``-level`` takes."""
    return f"{level_idc // 10}.{level_idc % 10}"
