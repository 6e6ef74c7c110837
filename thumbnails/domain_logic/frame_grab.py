"""The FFmpeg command that samples a video for the storyboard and the poster.

One FFmpeg process, one pass over the file, two outputs:

* ``tiles.rgb``: one frame per storyboard interval, already scaled to the tile
  size;
* ``candidates.rgb``: the few of those frames we offer as poster and
  thumbnails, scaled to the poster size.

Both hold raw frames back to back (:func:`split_frames` cuts them apart,
:func:`planar_rgb_image` makes each a picture): one file per output rather
than one image file per frame, so nothing is created per frame and nothing
needs decoding.

The frames are planar RGB (``gbrp``): no dearer than a packed format, and
every pixel gets its own chroma where packed formats shortcut it (the
measurements behind both choices: docs/PERFORMANCE.md).

Why one pass with ``-skip_frame nokey`` and the ``fps`` filter, rather than one
fast seek (``-ss`` before ``-i``) per frame: a seek costs a process start or an
extra demuxer and decoder (up to 100 tiles), and each accurate seek decodes from
the previous keyframe anyway. With ``-skip_frame nokey`` the decoder skips every
frame but the keyframes, so the pass costs one decode per keyframe (about
1/30 to 1/250 of the frames) plus demuxing, which is cheap. The price is that a
tile shows a keyframe near its cue rather than an exact frame; when keyframes
are sparser than the tiles, tiles repeat, which :func:`count_unfilled_slots`
measures so the caller can run the pass again decoding every reference frame
(``-skip_frame noref``: all a later frame could depend on, so nothing decodes
wrong, yet about a third less work than every frame on x264's default B-frames).

We do not add ``-discard nokey`` (drop non-key packets in the demuxer): it was
faster still, but with B-frames the kept packets got timestamps that put frames
on the wrong tiles (the case seen: docs/PERFORMANCE.md). Under
``-filter_complex`` FFmpeg ignores it anyway: a filter graph's input is read
with nothing discarded.

Everything here is pure: build the list, test the exact list.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from fractions import Fraction
from pathlib import Path

from PIL import Image

from vidpipe.adapters.ffmpeg.inputs import input_args
from vidpipe.domain.colour import SDR_BT709, VideoColour, rgb_scale_options, tone_map
from vidpipe.domain.errors import FfmpegError
from vidpipe.domain.filter_graph import FilterGraph, Stream

TILES_NAME = "tiles.rgb"
CANDIDATES_NAME = "candidates.rgb"
PIXEL_FORMAT = "gbrp"  # planar: a green, a blue, then a red plane per frame
PLANES = 3


class SkipFrames(StrEnum):
    """Which frames the decoder leaves out (values of FFmpeg's ``-skip_frame``)."""

    NON_KEY = "nokey"  # decode keyframes only: the cheap first try
    NON_REFERENCE = "noref"  # decode every frame another one depends on: the fallback


def one_frame_per_interval(video: Stream, interval_ms: int) -> Stream:
    """``video`` (an ffmpeg-python stream, see :mod:`vidpipe.domain.filter_graph`)
    through the ``fps`` filter that yields tile k for the cue starting at
    k * interval.

    ``start_time=0`` anchors tile 0 at the start of the video even when the first
    frame is stamped a little later (B-frame delay). ``round=near`` makes tile k
    the last frame before the middle of its cue: decoding keyframes only, that
    is the keyframe at the cue's start even when it is stamped a hair after it
    (29.97 fps with a one-second GOP puts keyframes at 1.001 s, 2.002 s...,
    which ``round=up`` pushed one tile late). ``eof_action=pass`` rounds the end
    up, so a last, partial cue still gets its tile.

    Raises ValueError for a non-positive interval."""
    if interval_ms <= 0:
        raise ValueError(f"interval must be positive, not {interval_ms} ms")
    rate = Fraction(1000, interval_ms)
    return video.filter("fps", fps=str(rate), start_time=0, round="near", eof_action="pass")


def build_frame_grab_args(
    input_path: Path,
    work_dir: Path,
    *,
    interval_ms: int,
    tile_count: int,
    tile_size: tuple[int, int],
    candidate_slots: Sequence[int],
    candidate_size: tuple[int, int],
    skip: SkipFrames,
    demuxer: str,
    colour: VideoColour = SDR_BT709,
) -> list[str]:
    """FFmpeg arguments (after the binary and global options that
    :func:`vidpipe.adapters.ffmpeg.process.run_ffmpeg` adds) writing ``tile_count`` tiles and one
    candidate per slot in ``candidate_slots`` into ``work_dir``.

    FFmpeg rotates the picture by the file's display matrix before our filters
    run, so sizes are display sizes. ``demuxer`` is the one the probe found
    (:attr:`vidpipe.domain.source_info.SourceInfo.demuxer`); FFmpeg may use no other.
    ``colour`` is the source's, untagged properties assumed
    (:func:`vidpipe.domain.colour.assume_untagged`): HDR is tone-mapped to SDR BT.709.

    Raises ValueError when there is no tile or no candidate slot, a slot is
    outside the tiles, or the demuxer is not one FFmpeg may use on uploads."""
    if tile_count <= 0:
        raise ValueError(f"tile_count must be positive, not {tile_count}")
    if not candidate_slots or any(not 0 <= slot < tile_count for slot in candidate_slots):
        raise ValueError(f"candidate slots {list(candidate_slots)} not within 0..{tile_count - 1}")
    tile_width, tile_height = tile_size
    candidate_width, candidate_height = candidate_size
    # Decoder options, so they go before the input they apply to. Keyframes
    # decode one by one: frame threads have nothing to overlap and only add
    # start-up and hand-over cost (measured: docs/PERFORMANCE.md). The
    # reference-frame pass is real decoding: let FFmpeg use every core.
    threads = ["-threads", "1"] if skip is SkipFrames.NON_KEY else []
    graph = FilterGraph()
    # 0:V (capital) skips cover art and other attached pictures.
    video = graph.add_input(["-skip_frame", skip.value, *threads, *input_args(input_path, demuxer)])["V:0"]
    slots = one_frame_per_interval(video, interval_ms).split()
    tiles = scaled_rgb(slots[0], tile_width, tile_height, colour)
    # After fps, the select filter's frame number n is the tile index.
    offered = slots[1].filter("select", expr="+".join(f"eq(n,{slot})" for slot in candidate_slots))
    candidates = scaled_rgb(offered, candidate_width, candidate_height, colour)
    compiled = graph.compile([tiles, candidates])
    tiles_label, candidates_label = compiled.outputs
    return [
        *compiled.args,
        # Raw frames: nothing to compress or decode. passthrough: the muxer
        # would otherwise duplicate frames to fill the gaps select leaves
        # between candidates.
        "-map", tiles_label, "-frames:v", str(tile_count), "-fps_mode", "passthrough",
        "-f", "rawvideo", str(work_dir / TILES_NAME),
        "-map", candidates_label, "-frames:v", str(len(candidate_slots)), "-fps_mode", "passthrough",
        "-f", "rawvideo", str(work_dir / CANDIDATES_NAME),
    ]  # fmt: skip


def scaled_rgb(frames: Stream, width: int, height: int, colour: VideoColour) -> Stream:
    """``frames`` shrunk to ``width`` x ``height`` and made planar RGB in SDR
    BT.709 colours.

    Area averaging: a 1080p frame shrunk to 160 px with the default bicubic
    filter shimmers with aliasing. An HDR frame is tone-mapped after the
    resize, not before the split: the float32 tone-map then runs on tile-sized
    pictures and on the few candidates only. An SDR frame's matrix and range
    are named (not left to swscale, which reads an untagged frame as BT.601)."""
    if colour.is_hdr:
        return tone_map(frames.filter("scale", width, height, flags="area"), colour, pixel_format=PIXEL_FORMAT)
    return frames.filter("scale", width, height, flags="area", **rgb_scale_options(colour)).filter(
        "format", PIXEL_FORMAT
    )


def count_unfilled_slots(tile_contents: Sequence[bytes | memoryview], tile_count: int) -> int:
    """How many of ``tile_count`` tiles got no frame of their own: tiles that
    repeat the one before byte for byte (``fps`` duplicates the last frame when
    no new one arrived) plus tiles missing at the end (the pass stops at the
    last keyframe). Nearly static video can repeat a tile too; that only costs
    a slower second pass."""
    repeated = sum(1 for before, after in zip(tile_contents, tile_contents[1:], strict=False) if before == after)
    missing = max(0, tile_count - len(tile_contents))
    return repeated + missing


def split_frames(data: bytes, size: tuple[int, int]) -> list[memoryview]:
    """The raw frames of ``size`` (width, height) that FFmpeg wrote back to
    back into one output, in order: views of ``data``, as copying the poster
    candidates' 14 MB cost more than the rest of reading them.

    Raises FfmpegError (retryable: FFmpeg reported success, so this is not the
    file's fault) when the data does not end on a frame boundary."""
    width, height = size
    frame_bytes = width * height * PLANES
    if frame_bytes <= 0:
        raise ValueError(f"frame size must be positive, not {width}x{height}")
    if len(data) % frame_bytes:
        raise FfmpegError(
            f"FFmpeg wrote {len(data)} bytes of {width}x{height} frames, which is not a whole number of them"
        )
    view = memoryview(data)
    return [view[start : start + frame_bytes] for start in range(0, len(data), frame_bytes)]


def planar_rgb_image(frame: bytes | memoryview, size: tuple[int, int]) -> Image.Image:
    """The RGB picture of ``size`` in one raw frame from :func:`split_frames`."""
    plane = size[0] * size[1]
    green, blue, red = (Image.frombytes("L", size, frame[index * plane : (index + 1) * plane]) for index in range(3))
    return Image.merge("RGB", (red, green, blue))
