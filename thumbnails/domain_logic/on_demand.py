"""Thumbnails and animated previews of any moment, cut from a rendition's HLS
segments rather than from the upload.

Why the segments: they are already small (a few seconds each), start on a
keyframe (``independent_segments``), are square-pixel, upright and SDR BT.709
(the transcode did that work once), and the upload may be gigabytes or gone
(source retention). So a thumbnail costs one segment's download and the decode
from its first keyframe to the moment, frame-accurate. The seek is the choice
of segment; within it FFmpeg decodes from the start and drops the frames before
the moment (``-ss`` as an output option): a demuxer seek (``-ss`` before the
input) lands past the moment in a short MPEG-TS file and yields no frame at all
(seen with FFmpeg 6.0 on 2 s segments), and a segment is at most a few seconds
to decode. An animated preview downloads the few segments its span covers,
byte-joined (MPEG-TS joins as is; fMP4 after its init segment).

We take the smallest rendition at least as large as the image asked for (less
to download and decode), or the largest when none is.

Everything but :func:`make_on_demand_image`, which runs FFmpeg on files its
caller's ``fetch`` downloads, is pure.

What can go wrong: ValidationFailed for a playlist without segments;
FfmpegError / CorruptMedia from FFmpeg; FfmpegError when FFmpeg wrote no frame.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps

from vidpipe.adapters.ffmpeg.inputs import input_args
from vidpipe.adapters.ffmpeg.process import run_ffmpeg
from vidpipe.domain.colour import SDR_BT709, rgb_scale_options
from vidpipe.domain.errors import FfmpegError, ValidationFailed
from vidpipe.domain.filter_graph import FilterGraph
from vidpipe.domain.image_requests import (
    ANIMATED_FPS,
    MAX_SIDE,
    AnimatedRequest,
    Fit,
    ImageRequest,
    ThumbnailRequest,
)

JOINED_NAME = "joined"
FRAME_NAME = "frame.png"
ANIMATION_FRAMES = "frame_%04d.png"
JPEG_QUALITY = 85
WEBP_QUALITY = 80
# Short of a segment's listed end: EXTINF rounds, and a seek past the last frame yields nothing.
LAST_FRAME_MARGIN_S = 0.1

Fetch = Callable[[str, Path], None]


@dataclass(frozen=True)
class SegmentRef:
    """One segment of a media playlist: its URI (relative to the playlist) and where it sits in time."""

    uri: str
    start_s: float
    duration_s: float

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s


@dataclass(frozen=True)
class MediaPlaylist:
    segments: tuple[SegmentRef, ...]
    init_uri: str | None = None


def parse_media_playlist(text: str) -> MediaPlaylist:
    """The segments of an HLS media playlist, with their start times (the sum
    of the EXTINF before them), and its ``EXT-X-MAP`` init segment if any.
    ValidationFailed when it lists no segment."""
    segments: list[SegmentRef] = []
    init_uri: str | None = None
    pending_duration: float | None = None
    elapsed = 0.0
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#EXTINF:"):
            pending_duration = float(line.removeprefix("#EXTINF:").split(",")[0])
        elif line.startswith("#EXT-X-MAP:"):
            init_uri = _attribute(line, "URI")
        elif line and not line.startswith("#") and pending_duration is not None:
            segments.append(SegmentRef(uri=line, start_s=elapsed, duration_s=pending_duration))
            elapsed += pending_duration
            pending_duration = None
    if not segments:
        raise ValidationFailed("the rendition's playlist lists no segment")
    return MediaPlaylist(segments=tuple(segments), init_uri=init_uri)


def segments_covering(playlist: MediaPlaylist, start_s: float, end_s: float) -> list[SegmentRef]:
    """The segments that hold ``start_s`` up to ``end_s`` (at least one: a
    moment past the last segment's listed end falls in the last segment)."""
    covering = [s for s in playlist.segments if s.end_s > start_s and s.start_s < max(end_s, start_s + 1e-3)]
    return covering or [playlist.segments[-1]]


def choose_rendition(renditions: Sequence[dict[str, Any]], width: int | None, height: int | None) -> dict[str, Any]:
    """The smallest rendition at least ``width`` x ``height`` (either may be
    None: no need on that side), or the largest. ValidationFailed without any."""
    if not renditions:
        raise ValidationFailed("the job has no renditions")
    by_size = sorted(renditions, key=lambda r: int(r["width"]) * int(r["height"]))
    if not (width or height):
        return by_size[-1]
    for rendition in by_size:
        if int(rendition["width"]) >= (width or 0) and int(rendition["height"]) >= (height or 0):
            return rendition
    return by_size[-1]


def demuxer_for(uri: str) -> str:
    """The demuxer of a segment, by its name: MPEG-TS, or fragmented MP4."""
    return "mpegts" if uri.split("?")[0].endswith(".ts") else "mov"


def frame_args(path: Path, demuxer: str, offset_s: float, output: Path) -> list[str]:
    """FFmpeg arguments writing the frame ``offset_s`` into ``path`` as an RGB PNG."""
    graph = FilterGraph()
    video = graph.add_input(input_args(path, demuxer))["V:0"]
    rgb = video.filter("scale", "iw", "ih", **rgb_scale_options(SDR_BT709)).filter("format", "rgb24")
    compiled = graph.compile([rgb])
    return [
        *compiled.args,
        "-map", compiled.outputs[0], "-ss", f"{offset_s:.3f}", "-frames:v", "1",
        "-c:v", "png", "-f", "image2", str(output),
    ]  # fmt: skip


def animation_args(
    path: Path, demuxer: str, offset_s: float, duration_s: float, width: int, pattern: Path
) -> list[str]:
    """FFmpeg arguments writing ``duration_s`` from ``offset_s`` at
    :data:`ANIMATED_FPS` frames a second, ``width`` wide, as numbered PNGs."""
    graph = FilterGraph()
    video = graph.add_input(input_args(path, demuxer))["V:0"]
    frames = (
        video.filter("fps", ANIMATED_FPS)
        .filter("scale", width, -2, flags="area", **rgb_scale_options(SDR_BT709))
        .filter("format", "rgb24")
    )
    compiled = graph.compile([frames])
    return [
        *compiled.args,
        "-map", compiled.outputs[0], "-ss", f"{offset_s:.3f}", "-t", f"{duration_s:.3f}",
        "-c:v", "png", "-f", "image2", str(pattern),
    ]  # fmt: skip


def fit_image(image: Image.Image, request: ThumbnailRequest) -> Image.Image:
    """``image`` at the size and fit asked for (see vidpipe.domain.image_requests)."""
    width, height = request.width, request.height
    if width and height:
        if request.fit is Fit.CROP:
            return ImageOps.fit(image, (width, height), method=Image.Resampling.LANCZOS)
        if request.fit is Fit.PAD:
            return ImageOps.pad(image, (width, height), method=Image.Resampling.LANCZOS, color=(0, 0, 0))
        if request.fit is Fit.STRETCH:
            return image.resize((width, height), Image.Resampling.LANCZOS)
        scale = min(width / image.width, height / image.height)
    elif width:
        scale = width / image.width
    elif height:
        scale = height / image.height
    else:
        scale = min(1.0, MAX_SIDE / max(image.size))
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image if size == image.size else image.resize(size, Image.Resampling.LANCZOS)


def encode_thumbnail(image: Image.Image, image_format: str) -> bytes:
    buffer = io.BytesIO()
    if image_format == "jpg":
        image.convert("RGB").save(buffer, "JPEG", quality=JPEG_QUALITY, optimize=True)
    else:
        image.save(buffer, "WEBP", quality=WEBP_QUALITY, method=4)
    return buffer.getvalue()


def encode_animation(frames: Sequence[Image.Image]) -> bytes:
    """An animated WebP that loops, one frame every 1/:data:`ANIMATED_FPS` s."""
    buffer = io.BytesIO()
    frames[0].save(
        buffer,
        "WEBP",
        save_all=True,
        append_images=list(frames[1:]),
        duration=1000 // ANIMATED_FPS,
        loop=0,
        quality=WEBP_QUALITY - 10,
        method=4,
    )
    return buffer.getvalue()


def make_on_demand_image(
    request: ImageRequest, playlist: MediaPlaylist, fetch: Fetch, work_dir: Path, *, timeout_s: float
) -> bytes:
    """The image's bytes (JPEG or WebP), from the segments of ``playlist``
    that ``fetch(uri, path)`` downloads into ``work_dir``."""
    if isinstance(request, ThumbnailRequest):
        start_s, end_s = request.time_s, request.time_s
    else:
        start_s, end_s = request.start_s, request.end_s
    segments = segments_covering(playlist, start_s, end_s)
    joined = _join_segments(playlist.init_uri, segments, fetch, work_dir)
    demuxer = demuxer_for(segments[0].uri)
    # Within the joined file, which starts where its first segment does; never
    # past the last frame of the last segment.
    offset_s = max(0.0, min(start_s, segments[-1].end_s - LAST_FRAME_MARGIN_S) - segments[0].start_s)
    if isinstance(request, ThumbnailRequest):
        frame_path = work_dir / FRAME_NAME
        run_ffmpeg(frame_args(joined, demuxer, offset_s, frame_path), timeout_s=timeout_s)
        if not frame_path.exists():
            raise FfmpegError(f"FFmpeg found no frame at {request.time_s:g} s")
        with Image.open(frame_path) as frame:
            return encode_thumbnail(fit_image(frame.convert("RGB"), request), request.image_format)
    return _animation(request, joined, demuxer, offset_s, work_dir, timeout_s)


def _animation(
    request: AnimatedRequest, joined: Path, demuxer: str, offset_s: float, work_dir: Path, timeout_s: float
) -> bytes:
    frames_dir = work_dir / "frames"
    frames_dir.mkdir()
    args = animation_args(joined, demuxer, offset_s, request.duration_s, request.width, frames_dir / ANIMATION_FRAMES)
    run_ffmpeg(args, timeout_s=timeout_s)
    paths = sorted(frames_dir.glob("frame_*.png"))
    if not paths:
        raise FfmpegError(f"FFmpeg found no frame from {request.start_s:g} s to {request.end_s:g} s")
    frames = []
    for path in paths:
        with Image.open(path) as frame:
            frames.append(frame.convert("RGB"))
    return encode_animation(frames)


def _join_segments(init_uri: str | None, segments: Sequence[SegmentRef], fetch: Fetch, work_dir: Path) -> Path:
    """The segments (after the init segment, when there is one) in one file."""
    uris = ([init_uri] if init_uri else []) + [segment.uri for segment in segments]
    joined = work_dir / f"{JOINED_NAME}{Path(segments[0].uri.split('?')[0]).suffix}"
    with joined.open("wb") as out:
        for index, uri in enumerate(uris):
            part = work_dir / f"part_{index:03d}"
            fetch(uri, part)
            out.write(part.read_bytes())
            part.unlink()
    return joined


def _attribute(line: str, name: str) -> str | None:
    """A quoted attribute of an HLS tag line (``URI="init.mp4"``)."""
    marker = f'{name}="'
    start = line.find(marker)
    if start < 0:
        return None
    start += len(marker)
    end = line.find('"', start)
    return line[start:end] if end > start else None
