"""Poster, thumbnails, sprite sheet and storyboard from MediaConvert's frame captures.

With the MediaConvert backend the thumbnails function does not decode the
upload: the MediaConvert job already wrote one JPEG every ``interval_ms``
(capture i shows the picture at i x interval_ms; see
:mod:`transcode.domain_logic.mediaconvert_job`). This module lays those
pictures out on the same storyboard plan and writes the same files as the
FFmpeg path (:func:`thumbnails.domain_logic.thumbnail_set.write_thumbnail_set`),
so the job contract does not depend on the backend.

What can go wrong: CorruptMedia (final) when there is no capture;
MediaConvertError (retryable) when a capture is not a readable picture;
OSError when ``output_dir`` cannot be written.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from thumbnails.domain_logic.storyboard import fit_within, pick_thumbnail_slots, plan_storyboard
from thumbnails.domain_logic.thumbnail_set import (
    POSTER_BOX_PX,
    THUMBNAIL_COUNT,
    ThumbnailResult,
    write_thumbnail_set,
)
from vidpipe.domain.errors import CorruptMedia, MediaConvertError


def thumbnails_from_captures(
    capture_paths: Sequence[Path], output_dir: Path, *, interval_ms: int, duration_s: float
) -> ThumbnailResult:
    """Write poster.jpg, thumb_001.jpg..., sprite.jpg and storyboard.vtt into
    ``output_dir`` from ``capture_paths`` (in time order, one every ``interval_ms``)
    of a video lasting ``duration_s``.

    Each storyboard tile shows the latest capture taken at or before the tile's
    start (the storyboard interval is never shorter than the capture interval
    for the same duration, so no capture is shown twice in a row unless
    MediaConvert stopped early); thumbnails are the captures under evenly spread
    tiles, and the poster the one of them with the most detail."""
    if not capture_paths:
        raise CorruptMedia("MediaConvert captured no picture from the video")
    if interval_ms <= 0:
        raise ValueError(f"the capture interval must be positive, not {interval_ms} ms")
    captures = [_load_rgb(path) for path in capture_paths]
    width, height = captures[0].size
    plan = plan_storyboard(max(duration_s, 0.001), width, height)

    def capture_at(tile: int) -> Image.Image:
        return captures[min(plan.cues[tile].start_ms // interval_ms, len(captures) - 1)]

    tile_size = (plan.tile_width, plan.tile_height)
    tiles = [capture_at(tile).resize(tile_size, Image.Resampling.LANCZOS) for tile in range(plan.tile_count)]
    candidates = [
        _fit(capture_at(tile), POSTER_BOX_PX) for tile in pick_thumbnail_slots(plan.tile_count, THUMBNAIL_COUNT)
    ]
    # keyframes_only: nothing was decoded here at all, so no full decode to report.
    return write_thumbnail_set(plan, tiles, candidates, output_dir, keyframes_only=True)


def _fit(image: Image.Image, box_px: int) -> Image.Image:
    size = fit_within(image.width, image.height, box_px, box_px)
    return image if size == image.size else image.resize(size, Image.Resampling.LANCZOS)


def _load_rgb(path: Path) -> Image.Image:
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (OSError, ValueError) as exc:
        raise MediaConvertError(f"the frame capture {path.name} is not a readable picture: {exc}") from exc
