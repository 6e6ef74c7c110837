"""The job's MP4 download: one progressive MP4 (H.264 + AAC, fast start) made
from a rung the ladder already encoded, without decoding anything again.

The chosen rung (:func:`download_rung`: the highest whose short side is at
most 720) was written as MPEG-TS segments cut from one continuous stream (one
FFmpeg run, or chunks encoded on the whole file's timeline), so its segments
joined byte for byte are one valid MPEG-TS file with continuous timestamps.
FFmpeg then only copies the packets into MP4 (:func:`build_mp4_remux_args`):

- ``-c copy``: no decode, no encode; seconds even for a long video;
- ``-bsf:a aac_adtstoasc``: MPEG-TS carries AAC with ADTS headers, MP4 wants
  the decoder configuration (ASC) in its sample description instead;
- ``-movflags +faststart``: the ``moov`` box is moved before ``mdat`` once the
  file is written, so a browser can start playing (or seeking) before it has
  the whole file.

Both transcode paths call :func:`remux_segments_to_mp4`: the single-process
path with the segments on local disk, the chunked path after downloading the
rung's segments from S3 (the stitch, in transcode.domain_logic.fanout).

What can go wrong: FfmpegError when FFmpeg fails or runs out of time, CorruptMedia
when it cannot read the joined segments, OSError when a segment is missing or
the folder cannot be written, ValueError for an empty ladder or segment list.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

from transcode.domain_logic.ladder import Rendition
from vidpipe.adapters.ffmpeg.inputs import input_args
from vidpipe.adapters.ffmpeg.process import run_ffmpeg

# The download is the best picture a phone or laptop needs, at a size that
# downloads quickly: the highest rung up to 720p.
MAX_DOWNLOAD_SHORT_SIDE = 720


def download_rung(ladder: Sequence[Rendition]) -> Rendition:
    """The rung the MP4 is made from: the highest whose short side is at most
    :data:`MAX_DOWNLOAD_SHORT_SIDE`, or the lowest rung when every rung is
    larger (a ladder configured without small rungs). ``ladder`` may be in any
    order. Raises ValueError for an empty ladder."""
    if not ladder:
        raise ValueError("the ladder has no rendition to make an MP4 from")
    by_size = sorted(ladder, key=lambda rung: min(rung.width, rung.height), reverse=True)
    small_enough = [rung for rung in by_size if min(rung.width, rung.height) <= MAX_DOWNLOAD_SHORT_SIDE]
    return small_enough[0] if small_enough else by_size[-1]


def media_playlist_segments(playlist: Path) -> list[Path]:
    """The segment files a local media playlist lists, in order (paths relative
    to the playlist's folder, as our playlists write them)."""
    lines = playlist.read_text(encoding="utf-8").splitlines()
    return [playlist.parent / line.strip() for line in lines if line.strip() and not line.startswith("#")]


def join_segments(segments: Sequence[Path], joined: Path) -> None:
    """Write the segments one after the other into ``joined``: MPEG-TS is a
    stream of 188-byte packets, so the bytes of consecutive segments are one
    valid stream. Raises ValueError for no segment, OSError for a missing one."""
    if not segments:
        raise ValueError("no segment to make an MP4 from")
    joined.parent.mkdir(parents=True, exist_ok=True)
    with joined.open("wb") as out:
        for segment in segments:
            with segment.open("rb") as part:
                shutil.copyfileobj(part, out)


def build_mp4_remux_args(joined_ts: Path, mp4_path: Path, *, has_audio: bool) -> list[str]:
    """FFmpeg arguments (after the binary and run_ffmpeg's global options) that
    copy the video and, if any, the audio of ``joined_ts`` into a fast-start
    MP4 at ``mp4_path``: no stream is decoded. Both paths should be absolute."""
    args = [*input_args(joined_ts, "mpegts"), "-map", "0:v:0"]
    if has_audio:
        args += ["-map", "0:a:0", "-bsf:a", "aac_adtstoasc"]
    return [
        *args,
        "-c", "copy",
        # The segments' timestamps start where the HLS muxer put them (about
        # 1.4 s in); the MP4 starts at zero, the audio and video kept in step.
        "-avoid_negative_ts", "make_zero",
        "-movflags", "+faststart",
        "-f", "mp4",
        str(mp4_path),
    ]  # fmt: skip


def remux_segments_to_mp4(
    segments: Sequence[Path], mp4_path: Path, *, has_audio: bool, scratch: Path, timeout_s: float
) -> None:
    """Join ``segments`` (one rung's MPEG-TS segments, in order) in ``scratch``
    and remux them into a fast-start MP4 at ``mp4_path``. The joined file is
    deleted afterwards; ``scratch`` must not be a folder that is uploaded.

    Raises what :func:`join_segments` and run_ffmpeg raise."""
    joined = scratch.absolute() / "joined.ts"
    try:
        join_segments(segments, joined)
        remux_joined_to_mp4(joined, mp4_path, has_audio=has_audio, timeout_s=timeout_s)
    finally:
        joined.unlink(missing_ok=True)


def remux_stored_segments_to_mp4(
    keys: Sequence[str],
    download: Callable[[str, Path], None],
    mp4_path: Path,
    *,
    has_audio: bool,
    scratch: Path,
    timeout_s: float,
) -> None:
    """:func:`remux_segments_to_mp4` for segments in a bucket: each is
    downloaded (``download(key, path)``) and appended to the joined file in
    turn, so the scratch space holds the joined rung, one segment and the MP4,
    never every segment twice. Raises what ``download`` and run_ffmpeg raise."""
    if not keys:
        raise ValueError("no segment to make an MP4 from")
    scratch = scratch.absolute()
    joined, part = scratch / "joined.ts", scratch / "segment.ts"
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        with joined.open("wb") as out:
            for key in keys:
                download(key, part)
                with part.open("rb") as segment:
                    shutil.copyfileobj(segment, out)
                part.unlink()
        remux_joined_to_mp4(joined, mp4_path, has_audio=has_audio, timeout_s=timeout_s)
    finally:
        joined.unlink(missing_ok=True)
        part.unlink(missing_ok=True)


def remux_joined_to_mp4(joined: Path, mp4_path: Path, *, has_audio: bool, timeout_s: float) -> None:
    mp4_path.parent.mkdir(parents=True, exist_ok=True)
    run_ffmpeg(build_mp4_remux_args(joined.absolute(), mp4_path.absolute(), has_audio=has_audio), timeout_s=timeout_s)


def write_mp4_download(
    hls_dir: Path, ladder: Sequence[Rendition], mp4_path: Path, *, has_audio: bool, scratch: Path, timeout_s: float
) -> Rendition:
    """The MP4 download of a ladder written as HLS into ``hls_dir`` (by
    transcode_to_hls: ``{rendition}/index.m3u8`` and its segments): made from
    :func:`download_rung`'s segments, written to ``mp4_path``. Returns the rung used."""
    rung = download_rung(ladder)
    segments = media_playlist_segments(hls_dir / rung.name / "index.m3u8")
    remux_segments_to_mp4(segments, mp4_path, has_audio=has_audio, scratch=scratch, timeout_s=timeout_s)
    return rung
