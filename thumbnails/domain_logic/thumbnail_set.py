"""Make the poster, thumbnails, sprite sheet and storyboard of one video.

FFmpeg samples the frames (see :mod:`thumbnails.domain_logic.frame_grab`),
Pillow picks the poster and lays out the sprite, and the storyboard plan
(:mod:`thumbnails.domain_logic.storyboard`) fixes the grid that both the sprite
and the VTT follow.

What can go wrong, from :func:`make_thumbnails`:

* a :class:`~vidpipe.domain.errors.MediaError` (final) when probing refuses the file
  (see :func:`vidpipe.adapters.ffmpeg.probe.probe_media`: not a video, no video stream,
  unsupported size or frame rate, a playlist or script), FFmpeg runs out of its
  memory limit on it, or no picture can be decoded;
* :class:`~vidpipe.domain.errors.FfmpegError` (retryable) when FFmpeg is missing,
  crashes, runs out of time or writes a partial frame;
* :class:`OSError` when ``output_dir`` cannot be written (full or read-only disk).
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from thumbnails.domain_logic.frame_grab import (
    CANDIDATES_NAME,
    TILES_NAME,
    SkipFrames,
    build_frame_grab_args,
    count_unfilled_slots,
    planar_rgb_image,
    split_frames,
)
from thumbnails.domain_logic.poster import choose_poster
from thumbnails.domain_logic.storyboard import (
    StoryboardPlan,
    fit_within,
    pick_thumbnail_slots,
    plan_storyboard,
    render_vtt,
)
from vidpipe.adapters.ffmpeg.probe import probe_media
from vidpipe.adapters.ffmpeg.process import run_ffmpeg
from vidpipe.domain.colour import VideoColour, assume_untagged
from vidpipe.domain.errors import CorruptMedia, FfmpegError
from vidpipe.domain.source_info import SourceInfo

POSTER_NAME = "poster.jpg"
SPRITE_NAME = "sprite.jpg"
STORYBOARD_NAME = "storyboard.vtt"
THUMBNAIL_NAME = "thumb_{:03d}.jpg"

THUMBNAIL_COUNT = 5
THUMBNAIL_BOX_PX = 320
# Big enough for a player's poster at typical embed sizes, small enough that a
# 4K source does not give a multi-megabyte JPEG the page must load first.
POSTER_BOX_PX = 1280
POSTER_QUALITY = 85
# Tiles are seen small and briefly while scrubbing; the sprite is the largest
# file a player fetches for them, so it gets the lower quality.
SPRITE_QUALITY = 75
# When more than this share of tiles would repeat their neighbour, keyframes
# are too sparse for the interval; a repeated tile here and there is fine.
MAX_UNFILLED_SHARE = 0.25
# Widening the interval to the keyframe spacing must leave a storyboard worth
# having; a clip too short for that is cheap to decode in full anyway.
MIN_TILES_FROM_KEYFRAMES = 10
# The sprite's unused cells (last row) are black, like the letterbox players draw.
SPRITE_BACKGROUND = (0, 0, 0)


@dataclass(frozen=True)
class ThumbnailResult:
    """What :func:`make_thumbnails` wrote; file names are relative to its output_dir."""

    poster: str
    thumbnails: tuple[str, ...]
    sprite: str
    storyboard: str
    tile_width: int
    tile_height: int
    columns: int
    rows: int
    tile_count: int
    interval_s: float
    # False when keyframes were too sparse and every reference frame was
    # decoded: worth a metric, as it costs most of a full decode.
    keyframes_only: bool

    def to_outputs(self) -> dict[str, object]:
        """JSON-ready description of the outputs (names relative to output_dir)."""
        return {
            "poster": self.poster,
            "thumbnails": list(self.thumbnails),
            "sprite": self.sprite,
            "storyboard": self.storyboard,
            "tile_width": self.tile_width,
            "tile_height": self.tile_height,
            "columns": self.columns,
            "rows": self.rows,
            "tile_count": self.tile_count,
            "interval_s": self.interval_s,
            "keyframes_only": self.keyframes_only,
        }


@dataclass(frozen=True)
class _SampledFrames:
    """Raw frames (see :func:`~thumbnails.domain_logic.frame_grab.split_frames`);
    pictures are made only from the pass that is kept."""

    tile_frames: list[memoryview]
    tile_size: tuple[int, int]
    candidate_frames: list[memoryview]
    candidate_size: tuple[int, int]
    unfilled_slots: int
    keyframes_only: bool


def make_thumbnails(
    input_path: Path,
    output_dir: Path,
    *,
    timeout_s: float,
    source: SourceInfo | None = None,
) -> ThumbnailResult:
    """Write poster.jpg, thumb_001.jpg..., sprite.jpg and storyboard.vtt for
    the video at ``input_path`` into ``output_dir`` (created if missing; files
    of an earlier attempt are overwritten, so a redelivered message is harmless).

    ``timeout_s`` bounds the whole call, probing included; pass ``source`` when
    the video was already probed. See the module docstring for the errors."""
    deadline = time.monotonic() + timeout_s
    if source is None:
        source = probe_media(input_path, timeout_s=_remaining(deadline))
    poster_size = fit_within(source.display_width, source.display_height, POSTER_BOX_PX, POSTER_BOX_PX)

    output_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="vidpipe-thumbnails-") as scratch:
        plan, frames = _sample_cheaply(input_path, Path(scratch), source, poster_size, deadline)
    if not frames.tile_frames:
        raise CorruptMedia("no picture could be decoded from the video")
    tiles = [planar_rgb_image(frame, frames.tile_size) for frame in frames.tile_frames]
    # Candidates past the end of the picture (a container whose audio
    # outlasts the video) are missing; the last tile still shows what there is.
    candidates = [planar_rgb_image(frame, frames.candidate_size) for frame in frames.candidate_frames] or [tiles[-1]]
    return write_thumbnail_set(plan, tiles, candidates, output_dir, keyframes_only=frames.keyframes_only)


def write_thumbnail_set(
    plan: StoryboardPlan,
    tiles: list[Image.Image],
    candidates: list[Image.Image],
    output_dir: Path,
    *,
    keyframes_only: bool,
) -> ThumbnailResult:
    """Write the poster (the candidate with the most detail), the thumbnails
    (every candidate, shrunk), the sprite of ``tiles`` and the storyboard VTT,
    all following ``plan``. Shared by both backends: the FFmpeg path samples
    the frames itself, the MediaConvert path takes the job's frame captures."""
    output_dir.mkdir(parents=True, exist_ok=True)
    thumbnails = [_shrink(candidate, THUMBNAIL_BOX_PX) for candidate in candidates]
    # Score the thumbnails, not the full frames: choose_poster looks at a small
    # copy anyway, so the full frames would only cost more.
    poster_index = choose_poster(thumbnails)
    candidates[poster_index].save(output_dir / POSTER_NAME, "JPEG", quality=POSTER_QUALITY)
    thumbnail_names = []
    for number, thumbnail in enumerate(thumbnails, start=1):
        name = THUMBNAIL_NAME.format(number)
        thumbnail.save(output_dir / name, "JPEG", quality=POSTER_QUALITY)
        thumbnail_names.append(name)
    assemble_sprite(plan, tiles).save(output_dir / SPRITE_NAME, "JPEG", quality=SPRITE_QUALITY)
    (output_dir / STORYBOARD_NAME).write_text(render_vtt(plan, SPRITE_NAME), encoding="utf-8")

    return ThumbnailResult(
        poster=POSTER_NAME,
        thumbnails=tuple(thumbnail_names),
        sprite=SPRITE_NAME,
        storyboard=STORYBOARD_NAME,
        tile_width=plan.tile_width,
        tile_height=plan.tile_height,
        columns=plan.columns,
        rows=plan.rows,
        tile_count=plan.tile_count,
        interval_s=plan.interval_ms / 1000,
        keyframes_only=keyframes_only,
    )


def assemble_sprite(plan: StoryboardPlan, tiles: list[Image.Image]) -> Image.Image:
    """The sprite sheet: tile k at ``plan.tile_origin(k)``. Missing tiles at the
    end (the video stream ends before the container does) repeat the last one,
    so every cue shows a picture; an empty list gives a black sheet.

    A tile of the wrong size (a file whose aspect differs from what ffprobe
    said) is resized into its cell so the grid still matches the VTT exactly."""
    sprite = Image.new("RGB", (plan.sprite_width, plan.sprite_height), SPRITE_BACKGROUND)
    cell = (plan.tile_width, plan.tile_height)
    for index in range(plan.tile_count):
        if not tiles:
            break
        tile = tiles[min(index, len(tiles) - 1)]
        if tile.size != cell:
            tile = tile.resize(cell, Image.Resampling.LANCZOS)
        sprite.paste(tile, plan.tile_origin(index))
    return sprite


def _sample_cheaply(
    input_path: Path, scratch: Path, source: SourceInfo, poster_size: tuple[int, int], deadline: float
) -> tuple[StoryboardPlan, _SampledFrames]:
    """Sample the tiles and candidates with the least decoding that fills the
    storyboard, and return the plan they were sampled for:

    1. keyframes only, at the planned interval (enough for most uploads: phones
       and streaming encoders put a keyframe every 1-2 s);
    2. when keyframes are further apart than the tiles, keyframes only again
       at an interval widened to their spacing (a 90 s clip with 2 s GOPs gets
       45 two-second tiles instead of a full decode for 90 one-second tiles);
    3. when that would leave too few tiles (a short clip with one keyframe), or
       keyframes are irregular, every reference frame at the planned interval."""
    display_size = (source.display_width, source.display_height)
    colour = assume_untagged(source.colour, *display_size)

    def sample(plan: StoryboardPlan, skip: SkipFrames) -> _SampledFrames:
        work_dir = scratch / f"{skip.value}-{plan.interval_ms}"
        return _sample_frames(input_path, source.demuxer, work_dir, plan, poster_size, deadline, skip, colour)

    plan = plan_storyboard(source.duration_s, *display_size)
    frames = sample(plan, SkipFrames.NON_KEY)
    if not _too_sparse(frames, plan):
        return plan, frames
    filled = plan.tile_count - frames.unfilled_slots
    if filled > 0:
        spacing_ms = math.ceil(plan.duration_ms / filled)
        wider = plan_storyboard(source.duration_s, *display_size, min_interval_ms=spacing_ms)
        if wider.interval_ms > plan.interval_ms and wider.tile_count >= MIN_TILES_FROM_KEYFRAMES:
            wider_frames = sample(wider, SkipFrames.NON_KEY)
            if not _too_sparse(wider_frames, wider):
                return wider, wider_frames
    return plan, sample(plan, SkipFrames.NON_REFERENCE)


def _too_sparse(frames: _SampledFrames, plan: StoryboardPlan) -> bool:
    return frames.unfilled_slots > MAX_UNFILLED_SHARE * plan.tile_count


def _sample_frames(
    input_path: Path,
    demuxer: str,
    work_dir: Path,
    plan: StoryboardPlan,
    poster_size: tuple[int, int],
    deadline: float,
    skip: SkipFrames,
    colour: VideoColour,
) -> _SampledFrames:
    """One FFmpeg pass sampling the plan's tiles and candidates (through raw
    frame files in ``work_dir``)."""
    work_dir.mkdir()
    tile_size = (plan.tile_width, plan.tile_height)
    args = build_frame_grab_args(
        input_path,
        work_dir,
        interval_ms=plan.interval_ms,
        tile_count=plan.tile_count,
        tile_size=tile_size,
        candidate_slots=pick_thumbnail_slots(plan.tile_count, THUMBNAIL_COUNT),
        candidate_size=poster_size,
        skip=skip,
        demuxer=demuxer,
        colour=colour,
    )
    run_ffmpeg(args, timeout_s=_remaining(deadline))
    tile_frames = _read_frames(work_dir / TILES_NAME, tile_size)
    return _SampledFrames(
        tile_frames=tile_frames,
        tile_size=tile_size,
        candidate_frames=_read_frames(work_dir / CANDIDATES_NAME, poster_size),
        candidate_size=poster_size,
        unfilled_slots=count_unfilled_slots(tile_frames, plan.tile_count),
        keyframes_only=skip is SkipFrames.NON_KEY,
    )


def _read_frames(path: Path, size: tuple[int, int]) -> list[memoryview]:
    # An output that got no frame is empty (FFmpeg opens it before decoding);
    # should FFmpeg not have got that far, it is missing: no frame either way.
    return split_frames(path.read_bytes(), size) if path.exists() else []


def _shrink(image: Image.Image, box_px: int) -> Image.Image:
    size = fit_within(image.width, image.height, box_px, box_px)
    # reducing_gap: box-average down to about twice the size first, then
    # Lanczos; as sharp to the eye and several times quicker from 1280 px.
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0)


def _remaining(deadline: float) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise FfmpegError("thumbnails ran out of time before FFmpeg could finish")
    return remaining
