"""Thumbnails of a long upload without reading it whole: one fast seek per tile.

The one-pass grab (:mod:`thumbnails.domain_logic.frame_grab`) demuxes the
whole file: on Lambda that means downloading it (3.6 GB for an hour of 1080p)
and walking every packet on one core. A long upload's storyboard needs far
fewer pictures than it has keyframes (at most 100 tiles, one every 10 s or
more past 16 minutes), so here each tile is one short FFmpeg run that seeks
straight to the keyframe it shows and reads only that part of the upload by
ranged GETs of its presigned URL, several runs at once.

Tile k shows the last keyframe at or before the middle of its cue (what the
one-pass grab's ``fps`` filter picks with ``round=near``); the cues themselves
come from the same :class:`~thumbnails.domain_logic.storyboard.StoryboardPlan`,
so the VTT's time base is exactly the one-pass path's. The poster candidates
are the same slots at poster size, and the poster is still chosen by detail
(:func:`thumbnails.domain_logic.poster.choose_poster`).

What can go wrong, from :func:`make_thumbnails_by_seeks`: as
:func:`thumbnails.domain_logic.thumbnail_set.make_thumbnails` (MediaError when
no picture decodes, FfmpegError when a run fails or time runs out, OSError for
the output folder).
"""

from __future__ import annotations

import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from thumbnails.domain_logic.frame_grab import planar_rgb_image, scaled_rgb, split_frames
from thumbnails.domain_logic.storyboard import StoryboardPlan, fit_within, pick_thumbnail_slots, plan_storyboard
from thumbnails.domain_logic.thumbnail_set import (
    POSTER_BOX_PX,
    THUMBNAIL_COUNT,
    ThumbnailResult,
    write_thumbnail_set,
)
from vidpipe.adapters.ffmpeg.inputs import source_input_args
from vidpipe.adapters.ffmpeg.process import run_ffmpeg
from vidpipe.domain.colour import VideoColour, assume_untagged
from vidpipe.domain.errors import CorruptMedia, FfmpegError
from vidpipe.domain.filter_graph import FilterGraph
from vidpipe.domain.source_info import SourceInfo

# FFmpeg runs at once. Each mostly waits for S3 (the index, then one keyframe's
# bytes) and decodes a single frame, so more runs than cores pay off; eight
# keyframe decoders of a 4K source still fit the 1024 MB function (measured:
# docs/PERFORMANCE.md, "Thumbnails by seeks").
PARALLEL_SEEKS = 8

# Demuxers FFmpeg seeks in by the file's index (MP4, MOV), reading nothing before the
# keyframe it wants; any other container is downloaded and read in one pass.
SEEKABLE_DEMUXERS = frozenset({"mov"})

TILE_FILE = "tile_{:03d}.rgb"
CANDIDATE_FILE = "candidate_{:03d}.rgb"


def seekable_by_index(demuxer: str) -> bool:
    """True when FFmpeg can seek in an upload of this demuxer over its URL by ranged GETs."""
    return demuxer in SEEKABLE_DEMUXERS


def uses_seeks(duration_s: float, *, chunk_threshold_s: float) -> bool:
    """Whether a seekable upload's thumbnails are made by seeks: when it is long
    enough to be transcoded in chunks. Its transcode then finishes in about a
    chunk's time, and downloading and walking the whole file would hold READY
    back; a shorter upload is quicker downloaded and read in one pass."""
    return duration_s > chunk_threshold_s


def seek_target_s(plan: StoryboardPlan, index: int) -> float:
    """Where tile ``index`` seeks to: the middle of its cue, in seconds. The seek
    lands on the last keyframe at or before it."""
    cue = plan.cues[index]
    return (cue.start_ms + cue.end_ms) / 2000


def build_seek_args(
    source: Path | str,
    demuxer: str,
    *,
    at_s: float,
    tile_path: Path,
    tile_size: tuple[int, int],
    candidate_path: Path | None,
    candidate_size: tuple[int, int],
    colour: VideoColour,
) -> list[str]:
    """FFmpeg arguments writing the keyframe at or before ``at_s`` as one raw
    tile (and, for a poster candidate, once more at ``candidate_size``).

    ``-ss`` before the input seeks by the container's index, so only the bytes
    from that keyframe on are read; ``-noaccurate_seek`` keeps the keyframe
    itself instead of decoding on to ``at_s``; ``-skip_frame nokey`` makes sure
    nothing else is decoded. Raises ValueError for a negative time or a demuxer
    or URL scheme FFmpeg may not use."""
    if at_s < 0:
        raise ValueError(f"a seek target cannot be negative: {at_s}")
    graph = FilterGraph()
    decoder = ["-ss", f"{at_s:.3f}", "-noaccurate_seek", "-skip_frame", "nokey", "-threads", "1"]
    video = graph.add_input([*decoder, *source_input_args(source, demuxer)])["V:0"]
    if candidate_path is None:
        compiled = graph.compile([scaled_rgb(video, *tile_size, colour)])
        paths = [tile_path]
    else:
        both = video.split()
        tile = scaled_rgb(both[0], *tile_size, colour)
        compiled = graph.compile([tile, scaled_rgb(both[1], *candidate_size, colour)])
        paths = [tile_path, candidate_path]
    args = list(compiled.args)
    for label, path in zip(compiled.outputs, paths, strict=True):
        args += ["-map", label, "-frames:v", "1", "-f", "rawvideo", str(path)]
    return args


def fill_missing(frames: list[bytes | None]) -> list[bytes]:
    """Every tile a picture: a tile whose seek gave nothing (past the last
    keyframe, a damaged stretch) repeats the tile before it, or the first one
    that has a picture. Empty when no tile has one."""
    pictures = [frame for frame in frames if frame]
    if not pictures:
        return []
    filled, last = [], pictures[0]
    for frame in frames:
        last = frame or last
        filled.append(last)
    return filled


def make_thumbnails_by_seeks(
    source_url: str,
    output_dir: Path,
    *,
    source: SourceInfo,
    timeout_s: float,
    parallel: int = PARALLEL_SEEKS,
) -> ThumbnailResult:
    """The same files as :func:`~thumbnails.domain_logic.thumbnail_set.make_thumbnails`
    (poster, thumbnails, sprite, storyboard) for the upload at ``source_url``
    (presigned; a local path works too), already probed as ``source``, reading
    only the keyframes the tiles show. ``timeout_s`` bounds the whole call."""
    deadline = time.monotonic() + timeout_s
    display_size = (source.display_width, source.display_height)
    colour = assume_untagged(source.colour, *display_size)
    plan = plan_storyboard(source.duration_s, *display_size)
    tile_size = (plan.tile_width, plan.tile_height)
    poster_size = fit_within(*display_size, POSTER_BOX_PX, POSTER_BOX_PX)
    slots = pick_thumbnail_slots(plan.tile_count, THUMBNAIL_COUNT)
    seekable: Path | str = source_url if "://" in source_url else Path(source_url)

    with tempfile.TemporaryDirectory(prefix="vidpipe-seeks-") as scratch:
        work = Path(scratch)

        def grab(index: int) -> None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise FfmpegError("thumbnails ran out of time before FFmpeg could finish")
            args = build_seek_args(
                seekable,
                source.demuxer,
                at_s=seek_target_s(plan, index),
                tile_path=work / TILE_FILE.format(index),
                tile_size=tile_size,
                candidate_path=work / CANDIDATE_FILE.format(index) if index in slots else None,
                candidate_size=poster_size,
                colour=colour,
            )
            run_ffmpeg(args, timeout_s=remaining)

        with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
            # list(): the first failure is raised here, once every run has ended.
            list(pool.map(grab, range(plan.tile_count)))
        tiles = fill_missing([_one_frame(work / TILE_FILE.format(i), tile_size) for i in range(plan.tile_count)])
        candidates = [_one_frame(work / CANDIDATE_FILE.format(slot), poster_size) for slot in slots]
    if not tiles:
        raise CorruptMedia("no picture could be decoded from the video")
    tile_images = [planar_rgb_image(frame, tile_size) for frame in tiles]
    candidate_images = [planar_rgb_image(frame, poster_size) for frame in candidates if frame] or [tile_images[-1]]
    return write_thumbnail_set(plan, tile_images, candidate_images, output_dir, keyframes_only=True)


def _one_frame(path: Path, size: tuple[int, int]) -> bytes | None:
    """The frame FFmpeg wrote to ``path``, or None when it wrote none."""
    if not path.exists():
        return None
    frames = split_frames(path.read_bytes(), size)
    return bytes(frames[0]) if frames else None
