"""Colour: what the source's pictures are, and the FFmpeg filters that make them
SDR BT.709, 8-bit, limited range.

The policy, one for every output (renditions, posters, thumbnails, sprites):

* Every rendition is **BT.709 limited range, 8-bit 4:2:0, tagged so**
  (primaries, transfer, matrix, range). One colour space for every rung and
  every source means a player never has to guess, and a player that ignores
  the tags and guesses from the size (BT.601 for SD) is wrong only on SD rungs,
  which is where it would already guess wrong on a BT.709 source. Apple's HLS
  authoring guidance asks for BT.709 SDR too.
* **HLG and PQ** (``color_transfer`` ``arib-std-b67`` or ``smpte2084``:
  phones record HLG, HDR10 is PQ) are tone-mapped with zscale + tonemap
  (:func:`tone_map`, the recipe in ARCHITECTURE.md). Merely dropping to
  8 bits leaves BT.2020/HLG code values that a BT.709 screen shows washed out.
* **SDR** sources are converted by the ``scale`` filter the ladder runs anyway
  (:func:`sdr_scale_options`): BT.601 (or other) matrix to BT.709 and full
  range to limited, in the same pass as the resize, so it costs nothing extra.
  Primaries are not converted for SDR: BT.601's and BT.709's differ too little
  to see, and players do not convert them either.
* **Untagged** sources are read as players read them (:func:`assume_untagged`):
  BT.601 when SD, BT.709 when HD, limited range unless the pixel format is a
  JPEG one (``yuvj420p``), which is full range by definition.

Everything here is pure: facts in, filters out (ffmpeg-python streams and
``scale`` options, see :mod:`vidpipe.domain.filter_graph`), tested exactly. The
probe (:func:`vidpipe.domain.source_info.parse_probe`) fills :class:`VideoColour` from
ffprobe; the transcode and thumbnails slices build their filters with it.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vidpipe.domain.filter_graph import Stream

HLG = "arib-std-b67"
PQ = "smpte2084"
HDR_TRANSFERS = frozenset({HLG, PQ})
BT709 = "bt709"
BT601 = "smpte170m"
BT2020_MATRIX = "bt2020nc"
# What ffprobe prints for a property the file does not state.
_UNSTATED = frozenset({"", "unknown", "unspecified", "reserved"})
# The last SD size: mpv and VLC read an untagged picture as BT.709 from 1280
# wide or taller than 576 lines (PAL), as BT.601 below.
HD_MIN_WIDTH = 1280
SD_MAX_HEIGHT = 576
# The swscale name (scale's in_color_matrix) of each matrix ffprobe reports.
_SCALE_MATRIX = {
    "bt709": "bt709",
    "smpte170m": "bt601",
    "bt470bg": "bt601",
    "bt2020nc": "bt2020",
    "bt2020c": "bt2020",
    "fcc": "fcc",
    "smpte240m": "smpte240m",
}
_RGB_PIXEL_FORMATS = re.compile(r"^(gbr|rgb|bgr|argb|abgr|0rgb|0bgr|x2rgb|x2bgr|pal8)")
_BIT_DEPTH = re.compile(r"p(9|10|12|14|16)(le|be)?$")
# Nominal peak of the linear light the tone-map works in: SDR white (100 nits)
# is 1.0, so HDR highlights above it are what hable compresses.
TONE_MAP_NOMINAL_PEAK_NITS = 100
# The encoder options that tag every rendition (H.264 VUI): BT.709, limited range.
BT709_TAG_ARGS: tuple[str, ...] = (
    "-color_primaries", BT709,
    "-color_trc", BT709,
    "-colorspace", BT709,
    "-color_range", "tv",
)  # fmt: skip


@dataclass(frozen=True)
class VideoColour:
    """The colour facts ffprobe reports for a video stream, None where the file
    states nothing: transfer (``color_transfer``), primaries, matrix
    (``color_space``), range (``tv`` or ``pc``) and pixel format."""

    transfer: str | None = None
    primaries: str | None = None
    matrix: str | None = None
    range: str | None = None
    pixel_format: str | None = None

    @property
    def is_hdr(self) -> bool:
        """HLG or PQ: the picture needs a tone-map to look right in SDR. The
        transfer decides; BT.2020 primaries come with it (and are assumed when
        untagged)."""
        return self.transfer in HDR_TRANSFERS

    @property
    def is_full_range(self) -> bool:
        return self.range == "pc" or (self.pixel_format or "").startswith("yuvj")

    @property
    def is_rgb(self) -> bool:
        return self.matrix == "gbr" or bool(_RGB_PIXEL_FORMATS.match(self.pixel_format or ""))

    @property
    def bit_depth(self) -> int:
        """Bits per sample read from the pixel format (``yuv420p10le`` → 10), 8 otherwise."""
        match = _BIT_DEPTH.search(self.pixel_format or "")
        return int(match.group(1)) if match else 8

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> VideoColour:
        """The inverse of :meth:`to_dict`; unknown keys are ignored, missing ones unstated."""
        data = data or {}
        return cls(**{name: _stated(data.get(name)) for name in ("transfer", "primaries", "matrix", "range",
                                                                  "pixel_format")})  # fmt: skip


SDR_BT709 = VideoColour(transfer=BT709, primaries=BT709, matrix=BT709, range="tv", pixel_format="yuv420p")


def _stated(value: object) -> str | None:
    text = "" if value is None else str(value)
    return None if text in _UNSTATED else text


def colour_from_stream(stream: dict[str, Any]) -> VideoColour:
    """The :class:`VideoColour` of one stream of ffprobe's ``-show_streams`` JSON."""
    return VideoColour(
        transfer=_stated(stream.get("color_transfer")),
        primaries=_stated(stream.get("color_primaries")),
        matrix=_stated(stream.get("color_space")),
        range=_stated(stream.get("color_range")),
        pixel_format=_stated(stream.get("pix_fmt")),
    )


def assume_untagged(colour: VideoColour, width: int, height: int) -> VideoColour:
    """``colour`` with what players assume where the file is silent: the matrix
    is BT.601 for an SD picture and BT.709 for HD (judged on the displayed
    ``width`` x ``height``, long side and short side, so a portrait phone clip
    counts as what it is), the range limited unless the pixel format is a JPEG
    one. An HDR stream without a matrix is BT.2020's non-constant one."""
    long_side, short_side = max(width, height), min(width, height)
    hd = long_side >= HD_MIN_WIDTH or short_side > SD_MAX_HEIGHT
    matrix = colour.matrix or (BT2020_MATRIX if colour.is_hdr else BT709 if hd else BT601)
    colour_range = colour.range or ("pc" if colour.is_full_range else "tv")
    return replace(colour, matrix=matrix, range=colour_range)


def tone_map(video: Stream, colour: VideoColour, *, pixel_format: str = "yuv420p") -> Stream:
    """``video`` (an ffmpeg-python stream, see :mod:`vidpipe.domain.filter_graph`)
    tone-mapped from HLG or PQ to SDR BT.709, ending in ``pixel_format``:
    ``yuv420p`` (limited range) for video, ``gbrp`` for stills. ValueError for
    an SDR source (nothing to tone-map).

    The source's transfer, primaries, matrix and range are given to zscale
    rather than read from the frames: a file whose container and bitstream
    disagree is then handled as the probe saw it. ``desat=0`` keeps the
    colours (the default desaturates highlights, most of a bright phone
    picture); hable keeps contrast in the mid-tones where the faces are."""
    if not colour.is_hdr:
        raise ValueError(f"transfer {colour.transfer!r} is not HDR: nothing to tone-map")
    primaries = colour.primaries if colour.primaries in ("bt2020", BT709) else "bt2020"
    matrix = colour.matrix if colour.matrix in (BT2020_MATRIX, "bt2020c", BT709) else BT2020_MATRIX
    linear = video.filter(
        "zscale",
        tin=colour.transfer,
        pin=primaries,
        min=matrix,
        rin="pc" if colour.is_full_range else "tv",
        t="linear",
        npl=TONE_MAP_NOMINAL_PEAK_NITS,
    )
    # tonemap works on linear float RGB; zscale converts the primaries there too.
    sdr = linear.filter("format", "gbrpf32le").filter("zscale", p=BT709).filter("tonemap", tonemap="hable", desat=0)
    if pixel_format.startswith("gbr"):
        sdr = sdr.filter("zscale", t=BT709)
    else:
        sdr = sdr.filter("zscale", t=BT709, m=BT709, r="tv")
    return sdr.filter("format", pixel_format)


def sdr_scale_options(colour: VideoColour) -> dict[str, str]:
    """Options for a ``scale`` filter (``in_color_matrix=...``, as keyword
    arguments) that turn an SDR source's YUV into BT.709 limited range while it
    resizes; none when there is nothing to convert (already BT.709 limited, or
    HDR, whose tone-map ends in BT.709 limited). ``colour`` should have been
    through :func:`assume_untagged`; an unstated matrix counts as BT.709.

    RGB sources get only the output side: swscale would otherwise make their
    YUV with its BT.601 default, which the BT.709 tag would then misdescribe."""
    if colour.is_hdr:
        return {}
    if colour.is_rgb:
        return {"out_color_matrix": BT709, "out_range": "tv"}
    matrix = _SCALE_MATRIX.get(colour.matrix or BT709, BT709)
    if matrix == BT709 and not colour.is_full_range:
        return {}
    return {
        "in_color_matrix": matrix,
        "out_color_matrix": BT709,
        "in_range": "pc" if colour.is_full_range else "tv",
        "out_range": "tv",
    }


def rgb_scale_options(colour: VideoColour) -> dict[str, str]:
    """Options for a ``scale`` filter that makes RGB stills (thumbnails) from
    an SDR source: its own matrix and range, not swscale's BT.601 default.
    None for RGB sources, which need no matrix. Resolve untagged sources with
    :func:`assume_untagged` first."""
    if colour.is_rgb:
        return {}
    matrix = _SCALE_MATRIX.get(colour.matrix or BT709, BT709)
    return {"in_color_matrix": matrix, "in_range": "pc" if colour.is_full_range else "tv"}


def ladder_prefilter(video: Stream, colour: VideoColour, size: tuple[int, int]) -> Stream:
    """What the ladder's graph runs once on ``video``, before it splits the
    picture into rungs: for HDR, a resize to ``size`` (the top rung) and the
    tone-map; nothing for SDR (``video`` comes back as it was), whose
    conversion rides each rung's own ``scale`` (:func:`sdr_scale_options`).

    Once, at the top rung's size, because the tone-map is float32 work on every
    pixel: once before the split costs a fraction of once per rung, and resizing
    first keeps a 4K phone clip's tone-map at 1080p cost (figures:
    docs/PERFORMANCE.md, "Measurements behind the shared package")."""
    if not colour.is_hdr:
        return video
    width, height = size
    return tone_map(video.filter("scale", width, height), colour)
