"""Plan a scrubbing storyboard: how often to take a tile, how big, where it sits
in the sprite, and the WebVTT file that tells a player which tile to show.

Everything here is pure arithmetic on integers (milliseconds and pixels) so the
sprite grid and the VTT cannot disagree: both are read from one plan.

What can go wrong: :class:`ValueError` for a duration or picture size that is
not a positive finite number (a probed :class:`~vidpipe.domain.source_info.SourceInfo`
never has one, so this is a programming error, not a media error).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Intervals a person can read in a cue list; the smallest one that keeps the
# tile count under the limit wins. Below one second a storyboard stops helping
# (a player seeks to the frame itself), and keyframes are rarely that dense.
READABLE_INTERVALS_MS = (1_000, 2_000, 3_000, 5_000, 10_000, 15_000, 20_000, 30_000, 60_000)
MINUTE_MS = 60_000

MAX_TILES = 100
MAX_COLUMNS = 10
# Tiles fit a 160 x 160 box: 160 px wide for landscape (what scrub previews
# usually show), 160 px tall for portrait so an upright phone video does not
# make the sprite ten times taller than it is wide.
TILE_BOX_PX = 160


@dataclass(frozen=True)
class Cue:
    """One storyboard cue: show the sprite rectangle (x, y, w, h) while the
    playback position is in [start_ms, end_ms)."""

    start_ms: int
    end_ms: int
    x: int
    y: int
    w: int
    h: int


@dataclass(frozen=True)
class StoryboardPlan:
    """Tile k covers [k * interval_ms, (k + 1) * interval_ms) clipped to the
    duration and sits at column k % columns, row k // columns of the sprite."""

    duration_ms: int
    interval_ms: int
    tile_width: int
    tile_height: int
    columns: int
    rows: int
    cues: tuple[Cue, ...]

    @property
    def tile_count(self) -> int:
        return len(self.cues)

    @property
    def sprite_width(self) -> int:
        return self.columns * self.tile_width

    @property
    def sprite_height(self) -> int:
        return self.rows * self.tile_height

    def tile_origin(self, index: int) -> tuple[int, int]:
        """Top-left corner of tile ``index`` in the sprite."""
        return (index % self.columns) * self.tile_width, (index // self.columns) * self.tile_height


def fit_within(width: int, height: int, max_width: int, max_height: int) -> tuple[int, int]:
    """Largest size with the aspect of width x height that fits the box,
    never larger than the picture itself and never below 1 x 1.

    Raises ValueError for a non-positive size or box."""
    if min(width, height, max_width, max_height) <= 0:
        raise ValueError(f"sizes must be positive: {width}x{height} in {max_width}x{max_height}")
    if width <= max_width and height <= max_height:
        return width, height
    # Pin the limiting side exactly to the box edge and derive the other one, so
    # a 1280x720 picture gives 160x90, not 159x90 from floating-point noise.
    if width * max_height >= height * max_width:
        return max_width, max(1, round(height * max_width / width))
    return max(1, round(width * max_height / height)), max_height


def choose_interval_ms(duration_ms: int, max_tiles: int = MAX_TILES, min_interval_ms: int = 0) -> int:
    """Smallest readable interval of at least ``min_interval_ms`` giving at most
    ``max_tiles`` tiles; when even one minute gives too many, the smallest whole
    number of minutes that fits.

    Raises ValueError for a non-positive duration or tile limit."""
    if duration_ms <= 0 or max_tiles <= 0:
        raise ValueError(f"duration and tile limit must be positive: {duration_ms} ms, {max_tiles}")
    for interval_ms in READABLE_INTERVALS_MS:
        if interval_ms >= min_interval_ms and math.ceil(duration_ms / interval_ms) <= max_tiles:
            return interval_ms
    minutes = max(math.ceil(duration_ms / (max_tiles * MINUTE_MS)), math.ceil(min_interval_ms / MINUTE_MS))
    return minutes * MINUTE_MS


def plan_storyboard(
    duration_s: float,
    display_width: int,
    display_height: int,
    *,
    max_tiles: int = MAX_TILES,
    max_columns: int = MAX_COLUMNS,
    tile_box_px: int = TILE_BOX_PX,
    min_interval_ms: int = 0,
) -> StoryboardPlan:
    """Plan tiles that cover [0, duration) without gaps or overlaps, one every
    readable interval (at least ``min_interval_ms``), at most ``max_tiles``.

    Any positive duration gives at least one tile (a single-frame clip is one
    tile covering its whole length). The grid has no more columns than tiles,
    so a short clip gives a one-row sprite without empty space on the right.

    Raises ValueError for a duration that is not positive and finite, or a
    non-positive picture size or limit."""
    if not (math.isfinite(duration_s) and duration_s > 0):
        raise ValueError(f"duration must be a positive finite number of seconds, not {duration_s!r}")
    if max_columns <= 0:
        raise ValueError(f"max_columns must be positive, not {max_columns}")
    # Work in whole milliseconds (VTT's resolution) so a cue can never round to
    # zero length: a 6.0004 s clip is 6000 ms and gets 6 one-second tiles, not a
    # seventh cue from 00:00:06.000 to 00:00:06.000.
    duration_ms = max(1, round(duration_s * 1000))
    interval_ms = choose_interval_ms(duration_ms, max_tiles, min_interval_ms)
    tile_count = max(1, math.ceil(duration_ms / interval_ms))
    tile_width, tile_height = fit_within(display_width, display_height, tile_box_px, tile_box_px)
    columns = min(max_columns, tile_count)
    rows = math.ceil(tile_count / columns)
    cues = tuple(
        Cue(
            start_ms=index * interval_ms,
            end_ms=min((index + 1) * interval_ms, duration_ms),
            x=(index % columns) * tile_width,
            y=(index // columns) * tile_height,
            w=tile_width,
            h=tile_height,
        )
        for index in range(tile_count)
    )
    return StoryboardPlan(
        duration_ms=duration_ms,
        interval_ms=interval_ms,
        tile_width=tile_width,
        tile_height=tile_height,
        columns=columns,
        rows=rows,
        cues=cues,
    )


def pick_thumbnail_slots(tile_count: int, count: int) -> tuple[int, ...]:
    """Indices of ``count`` tiles spread evenly over the video: the tile under
    the middle of each of ``count`` equal parts. Fewer when there are fewer
    tiles; always at least one.

    Raises ValueError for a non-positive tile count or count."""
    if tile_count <= 0 or count <= 0:
        raise ValueError(f"tile_count and count must be positive: {tile_count}, {count}")
    if count >= tile_count:
        return tuple(range(tile_count))
    # Integer arithmetic: floor((i + 1/2) * tile_count / count), strictly
    # increasing because tile_count > count.
    return tuple(((2 * i + 1) * tile_count) // (2 * count) for i in range(count))


def format_vtt_timestamp(ms: int) -> str:
    """``HH:MM:SS.mmm``; hours always present so long videos parse the same way.

    Raises ValueError for a negative time."""
    if ms < 0:
        raise ValueError(f"a VTT timestamp cannot be negative: {ms}")
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}"


def render_vtt(plan: StoryboardPlan, sprite_name: str) -> str:
    """The WebVTT storyboard: one cue per tile pointing at its rectangle in the
    sprite with a media-fragment ``#xywh=``. ``sprite_name`` is written as given:
    pass a name relative to the VTT's own location so the pair can move together
    (S3 key prefix, CDN path) without rewriting the file.

    Raises ValueError for a sprite name that would break the cue text."""
    if not sprite_name or any(char in sprite_name for char in "\r\n#") or "-->" in sprite_name:
        raise ValueError(f"unusable sprite name for a VTT cue: {sprite_name!r}")
    blocks = ["WEBVTT"]
    for cue in plan.cues:
        blocks.append(
            f"{format_vtt_timestamp(cue.start_ms)} --> {format_vtt_timestamp(cue.end_ms)}\n"
            f"{sprite_name}#xywh={cue.x},{cue.y},{cue.w},{cue.h}"
        )
    return "\n\n".join(blocks) + "\n"
