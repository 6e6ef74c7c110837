"""Deciding what an upload is before anything decodes it: the playlist and
script scan of :func:`refuse_references`, then ffprobe restricted to the file
and the safe demuxers (:func:`probe_media`, or :func:`probe_media_url` by a
presigned URL). The rules it applies: vidpipe.domain.source_info.

What can go wrong: the final MediaErrors of :func:`probe_media` (see its
docstring), FfmpegError when ffprobe cannot run.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from vidpipe.adapters.ffmpeg.inputs import url_protocols
from vidpipe.adapters.ffmpeg.limits import PeakMemorySampler, ProcessLimits, process_limits
from vidpipe.adapters.ffmpeg.process import CRASH_SIGNALS, ffmpeg_environment, find_tool, readable_stderr
from vidpipe.domain.errors import CorruptMedia, FfmpegError, ForbiddenReference, NotAVideo
from vidpipe.domain.source_info import (
    CODEC_WHITELIST,
    PROBE_FORMAT_WHITELIST,
    SourceInfo,
    parse_probe,
    raise_if_codec_refused,
    refuse_format,
)

_PROBED_FORMAT = re.compile(r"Format (\S+) probed with size=\d+ and score=\d+")


@dataclass(frozen=True)
class _Signature:
    marker: bytes
    what: str


# Text formats whose FFmpeg demuxer opens the files or URLs the text names. Each
# is recognised as FFmpeg's own probe recognises it, or more broadly.
_PLAYLIST_SIGNATURES = (
    _Signature(b"#EXTM3U", "an HLS playlist"),
    _Signature(b"ffconcat version", "an FFmpeg concat script"),
)
_HEAD_BYTES = 4096
_SCAN_CHUNK_BYTES = 8 * 1024 * 1024


def refuse_references(path: Path) -> None:
    """Raise ForbiddenReference when the file is a playlist or script (HLS,
    ffconcat, DASH, SDP, IMF) rather than media, or an AVI that carries an HLS
    playlist or concat script in a chunk: FFmpeg's AVI demuxer hands GAB2
    subtitle chunks to whatever demuxer their content looks like, which is how
    an "AVI" made old FFmpeg builds read local files into the video. FFmpeg 5.1
    takes only SRT and ASS there, and our format whitelist blocks the rest
    anyway; refusing the file outright gives the uploader a clear reason.

    Only AVI files are read to the end (the only accepted container with a
    nested demuxer); others are judged by their first bytes. A file that
    cannot be read is left to ffprobe to report."""
    try:
        with path.open("rb") as handle:
            head = handle.read(_HEAD_BYTES)
    except OSError:
        return
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    for signature in _PLAYLIST_SIGNATURES:
        if text.startswith(signature.marker):
            raise ForbiddenReference(
                f"the file is {signature.what}, text that makes FFmpeg open the files or URLs it lists, "
                "not a video; upload the video itself"
            )
    lowered = text.lower()
    if lowered.startswith(b"v=0") and (b"\nm=" in lowered or b"\nc=in ip" in lowered):
        raise ForbiddenReference("the file is an SDP session description, which makes FFmpeg receive network streams")
    if lowered.startswith(b"<") and (b"<mpd" in lowered or b"<compositionplaylist" in lowered):
        raise ForbiddenReference("the file is a DASH or IMF manifest that makes FFmpeg open the files it lists")
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        found = _find_embedded_playlist(path)
        if found is not None:
            offset, signature = found
            raise ForbiddenReference(
                f"the AVI file carries {signature.what} at byte {offset} (the known FFmpeg local-file/SSRF "
                "pattern: a playlist hidden in a subtitle chunk); refused"
            )


def _find_embedded_playlist(path: Path) -> tuple[int, _Signature] | None:
    """Offset and kind of the first playlist/script signature anywhere in the file."""
    overlap = max(len(signature.marker) for signature in _PLAYLIST_SIGNATURES) - 1
    offset, carry = 0, b""
    with path.open("rb") as handle:
        while chunk := handle.read(_SCAN_CHUNK_BYTES):
            block = carry + chunk
            for signature in _PLAYLIST_SIGNATURES:
                index = block.find(signature.marker)
                if index >= 0:
                    return offset - len(carry) + index, signature
            offset += len(chunk)
            carry = block[-overlap:]
    return None


def probe_media(path: Path, *, timeout_s: float = 60.0) -> SourceInfo:
    """Decide what the local file is and describe it, before anything decodes it.

    :func:`refuse_references` first, then ffprobe restricted to the one file
    and to :data:`SAFE_DEMUXERS`. Raises the errors of
    :func:`refuse_references`, :func:`refuse_format` and :func:`parse_probe`;
    CorruptMedia for a recognisable but unreadable container (or ffprobe out of
    time), NotAVideo for unknown bytes, MemoryLimitExceeded, and FfmpegError
    when ffprobe cannot run."""
    refuse_references(path)
    limits = process_limits(timeout_s)
    completed = _run_ffprobe(
        ["-v", "error", "-print_format", "json", "-show_format", "-show_streams"], path, limits, timeout_s=timeout_s
    )
    stderr = readable_stderr(completed.stderr.decode("utf-8", "replace"), [path])
    if completed.returncode != 0:
        _raise_for_probe_failure(path, completed, stderr, limits, timeout_s)
    return _source_from_probe(completed, stderr)


def _source_from_probe(completed: _Finished, stderr: str) -> SourceInfo:
    """The SourceInfo of a probe that exited 0 (see :func:`parse_probe`)."""
    raise_if_codec_refused(stderr)
    if "not on whitelist" in stderr:
        # The container itself was allowed, so a demuxer or protocol *inside* it was refused.
        raise ForbiddenReference(f"the file tries to make FFmpeg open something besides itself: {stderr}")
    try:
        probe = json.loads(completed.stdout or b"{}")
    except json.JSONDecodeError as exc:
        raise FfmpegError("ffprobe printed something that is not JSON") from exc
    return parse_probe(probe)


def probe_media_url(url: str, *, timeout_s: float = 60.0) -> SourceInfo:
    """:func:`probe_media` of an upload read over HTTP(S) by its presigned URL:
    ffprobe fetches only the byte ranges it needs (an MP4's index), so a long
    upload can be planned without downloading it.

    Only what ffprobe decides: the scan of :func:`refuse_references` needs the
    whole file, so callers use this answer only to read the upload with the
    ``mov`` demuxer, which never opens anything besides its own file. Raises
    what probe_media raises, CorruptMedia also when the URL cannot be read."""
    limits = process_limits(timeout_s)
    completed = _run_ffprobe(
        ["-v", "error", "-print_format", "json", "-show_format", "-show_streams"], url, limits, timeout_s=timeout_s
    )
    stderr = readable_stderr(completed.stderr.decode("utf-8", "replace"), [url])
    if completed.returncode != 0:
        limits.raise_if_exceeded(completed.returncode, stderr, completed.peak_memory_bytes, tool="ffprobe")
        raise CorruptMedia(f"the upload cannot be probed over HTTP: {stderr}")
    return _source_from_probe(completed, stderr)


@dataclass(frozen=True)
class _Finished:
    returncode: int
    stdout: bytes
    stderr: bytes
    peak_memory_bytes: int


def _run_ffprobe(options: list[str], path: Path | str, limits: ProcessLimits, *, timeout_s: float) -> _Finished:
    """ffprobe on a local file, or on a presigned URL (``str``) with only its own protocol."""
    if isinstance(path, str):
        protocols, target = url_protocols(path), path
    else:
        protocols, target = "file", f"file:{path}"
    args = [
        find_tool("ffprobe"),
        *options,
        "-protocol_whitelist", protocols,
        "-format_whitelist", PROBE_FORMAT_WHITELIST,
        "-codec_whitelist", CODEC_WHITELIST,
        target,
    ]  # fmt: skip
    try:
        process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=ffmpeg_environment(),
            preexec_fn=limits.apply,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise FfmpegError(f"ffprobe could not start: {exc}") from exc
    with PeakMemorySampler(process.pid) as sampler:
        try:
            stdout, stderr = process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired as exc:
            process.kill()
            process.communicate()
            raise CorruptMedia(f"ffprobe did not finish within {timeout_s:.0f} s") from exc
    return _Finished(process.returncode, stdout, stderr, sampler.peak_bytes)


def _raise_for_probe_failure(
    path: Path, finished: _Finished, stderr: str, limits: ProcessLimits, timeout_s: float
) -> None:
    returncode = finished.returncode
    limits.raise_if_exceeded(returncode, stderr, finished.peak_memory_bytes, tool="ffprobe")
    if "Format not on whitelist" in stderr:
        # FFmpeg recognised the file as something we refuse; ask which (FFmpeg
        # names it only in debug output) so the error says what the file is.
        refuse_format(_detected_format(path, limits, timeout_s) or "unknown")
    raise_if_codec_refused(stderr)
    if "not on whitelist" in stderr:
        raise ForbiddenReference(f"the file tries to make FFmpeg open something besides itself: {stderr}")
    if -returncode in CRASH_SIGNALS:
        raise CorruptMedia(f"ffprobe crashed ({signal.Signals(-returncode).name}) reading the file")
    container = sniff_container(path)
    if container is not None:
        raise CorruptMedia(f"the file starts like {container} but cannot be read ({stderr})")
    raise NotAVideo(f"the file is in no media format FFmpeg recognises ({stderr})")


def _detected_format(path: Path, limits: ProcessLimits, timeout_s: float) -> str | None:
    """The demuxer FFmpeg's probe chose for a file the whitelist then refused.
    The refusal happens before the demuxer reads anything, so this is safe."""
    completed = _run_ffprobe(["-v", "debug"], path, limits, timeout_s=timeout_s)
    match = _PROBED_FORMAT.search(completed.stderr.decode("utf-8", "replace"))
    return match.group(1) if match else None


def sniff_container(path: Path) -> str | None:
    """The video container a file's first bytes announce, or None.

    Tells a damaged video (CORRUPT_MEDIA: the right kind of file, unreadable)
    from something that never was one (NOT_A_VIDEO), when ffprobe refuses both."""
    try:
        with path.open("rb") as handle:
            head = handle.read(16)
    except OSError:
        return None
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide"):
        return "an MP4/QuickTime file"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "a Matroska/WebM file"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "an AVI file"
    if head[:3] == b"FLV":
        return "an FLV file"
    if head[:4] == b"\x00\x00\x01\xba":
        return "an MPEG program stream"
    return None
