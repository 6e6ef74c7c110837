"""FFmpeg and ffprobe behind one small adapter.

Everything that starts an FFmpeg process goes through :func:`run_ffmpeg` or
:func:`probe_media`, so the safety rules live in one place:

* an argument list, never a shell string;
* FFmpeg opens the one uploaded file and nothing else. ``-protocol_whitelist
  file`` alone is not enough: it stops URLs, but an HLS playlist or a concat
  script is *itself* a local file that makes FFmpeg's demuxer open other local
  files (any with a media extension, say another job's upload in ``/tmp``:
  FFmpeg's own checks, in 5.1 and 6.0 alike, stop ``/etc/passwd``, not those).
  So the format is decided before anything is decoded: :func:`refuse_references`
  turns away playlists and scripts by their first bytes (and AVI files that
  carry one in a GAB2 subtitle chunk, the known local-file/SSRF pattern), ffprobe may only
  pick a demuxer from :data:`SAFE_DEMUXERS` (plain containers that never open
  another file), and every later FFmpeg run names that demuxer with ``-f`` and
  allows only it with ``-format_whitelist``, which FFmpeg also hands to any
  nested demuxer (an AVI's GAB2 subtitles), so none can be reached;
* a time limit (our timer kills FFmpeg; ``RLIMIT_CPU`` stops it too should we
  die first) and a memory limit (``RLIMIT_AS``, ``FFMPEG_MEMORY_LIMIT_MB``) on
  every process, set in the child before FFmpeg starts;
* only the decoders of :data:`ACCEPTED_CODECS` (``-codec_whitelist`` on the
  probe and on every input), so hostile bytes reach no rarely used decoder;
* the environment of :func:`ffmpeg_environment`: a few variables it needs and
  nothing of the function's (no AWS credentials), with the GCONV_PATH the static
  build of the Lambda layer needs not to crash on MPEG-TS input;
* stderr kept, and its tail put into the error message.

What can go wrong: :class:`~vidpipe.errors.MediaError` subclasses when the input
cannot become a video (final: NotAVideo, NoVideoStream, CorruptMedia,
UnsupportedDimensions, UnsupportedFrameRate, ForbiddenReference,
MemoryLimitExceeded, UnsupportedCodec), :class:`~vidpipe.errors.FfmpegError` when the binary is
missing, fails on our side or runs out of time (retryable), ValueError when a
caller builds an FFmpeg input without the restrictions (a programming error).
"""

from __future__ import annotations

import json
import math
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import IO

from vidpipe.colour import VideoColour, colour_from_stream
from vidpipe.errors import (
    CorruptMedia,
    FfmpegError,
    ForbiddenReference,
    MemoryLimitExceeded,
    NotAVideo,
    NoVideoStream,
    UnsupportedCodec,
    UnsupportedDimensions,
    UnsupportedFrameRate,
)

# Where the FFmpeg layer puts its binaries on AWS. The local stack, where
# layers are not mounted there, names the same build by FFMPEG_PATH/FFPROBE_PATH.
LAYER_BIN_DIR = Path("/opt/bin")
# The layer's FFmpeg is a static build whose glibc is inside the binary. When the
# MPEG-TS demuxer converts a service name from its DVB charset (iconv, ISO 6937
# by default; most TS files carry one), that glibc looks the converter up in the
# host's gconv module cache and loads the host's module, a shared object built
# for another glibc, and crashes with SIGSEGV: every MPEG-TS upload failed. With
# GCONV_PATH set, glibc skips that cache; pointing it at /dev/null, which is no
# folder and so holds no module, leaves no host module to load (checked on
# Debian 12 with strace). The conversion then fails softly and FFmpeg keeps the
# name's bytes as they are; glibc's built-in UTF-8 and Latin-1 still work.
# Lambda's Amazon Linux has gconv modules too, so this holds on AWS as well.
NO_GCONV_MODULES = os.devnull
# The only variables of ours FFmpeg and ffprobe see. Never AWS_* (the function's
# credentials: a decoder bug turned into code execution would hold them) nor
# anything else of the function's settings; no LD_PRELOAD, no proxy settings
# (FFmpeg's http protocol would follow http_proxy). PATH and LD_LIBRARY_PATH let a
# dynamically linked build start, the locale and time zone keep its messages and
# timestamps as the host's, TMPDIR is where it may write, and the CA settings
# are where an https build looks for certificates.
FFMPEG_ENVIRONMENT_VARIABLES = (
    "PATH",
    "LD_LIBRARY_PATH",
    "LANG",
    "LC_ALL",
    "TZ",
    "TMPDIR",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
)
STDERR_TAIL_CHARS = 2000

# Demuxers we let FFmpeg use, by the first name ffprobe reports (``mov`` is the
# demuxer of mp4, m4a, 3gp, 3g2 and mj2; ``matroska`` also reads webm). Each is a
# plain container that reads only its own file: the mov demuxer's external data
# references stay off (``enable_drefs`` defaults to 0), and the AVI demuxer's
# GAB2 subtitles open a nested demuxer only through the same whitelist. Before
# adding one here, check that it can never open another file or URL.
SAFE_DEMUXERS = frozenset({"mov", "matroska", "avi", "mpegts", "flv", "mpeg", "ogg", "asf"})
# Demuxers a safe one may open *inside* its own file, on data it holds: the AVI
# demuxer reads GAB2 subtitle chunks with the SRT or ASS text demuxer (and, since
# FFmpeg 3.3.2, only with those). Whitelisting them keeps such AVI files readable.
NESTED_DEMUXERS: dict[str, tuple[str, ...]] = {"avi": ("srt", "ass")}
# Demuxers of files we wrote ourselves and read back, never of an upload (the
# probe refuses audio-only files before anything else reads them): the chunk
# encoder's raw AAC frames (transcode.domain_logic.chunking).
OWN_FILE_DEMUXERS = frozenset({"aac"})
_PROBE_FORMAT_WHITELIST = ",".join(sorted(SAFE_DEMUXERS.union(*NESTED_DEMUXERS.values())))
# Demuxers whose input names other files or URLs to open: never allowed.
REFERENCE_DEMUXERS = frozenset(
    {
        "hls",
        "applehttp",
        "concat",
        "dash",
        "sdp",
        "rtsp",
        "rtp",
        "imf",
        "lavfi",
        "ffmetadata",
        "tee",
        "avisynth",
        "vapoursynth",
    }
)
AUDIO_DEMUXERS = frozenset(
    {
        "mp3",
        "wav",
        "w64",
        "flac",
        "aac",
        "ac3",
        "eac3",
        "aiff",
        "amr",
        "amrnb",
        "amrwb",
        "ape",
        "dts",
        "dtshd",
        "caf",
        "wv",
        "tta",
        "mpc",
        "mpc8",
        "au",
        "voc",
        "truehd",
        "mlp",
        "loas",
        "spdif",
        "sox",
        "xwma",
    }
)
IMAGE_DEMUXERS = frozenset({"image2", "gif", "apng", "webp", "ico", "bmp_pipe"})

# The codecs we decode, by the name ffprobe reports, each with the names of the
# FFmpeg decoders that read it (FFmpeg 6.0; the first is the one it prefers).
# What cameras, phones, screen recorders and editors write into the containers
# of SAFE_DEMUXERS. Every FFmpeg input and the probe allow only these decoders
# (-codec_whitelist), so a file that names some rarely used, little fuzzed
# decoder is refused (UNSUPPORTED_CODEC) before that decoder reads a byte.
ACCEPTED_VIDEO_CODECS: dict[str, tuple[str, ...]] = {
    "h264": ("h264",),
    "hevc": ("hevc",),
    "av1": ("libdav1d", "libaom-av1", "av1"),
    "vp8": ("vp8", "libvpx"),
    "vp9": ("vp9", "libvpx-vp9"),
    "mpeg4": ("mpeg4",),
    "h263": ("h263",),
    "mpeg1video": ("mpeg1video",),
    "mpeg2video": ("mpeg2video",),
    "prores": ("prores",),
    "dnxhd": ("dnxhd",),
    "mjpeg": ("mjpeg",),
    "theora": ("theora",),
    "vc1": ("vc1",),
    "wmv3": ("wmv3",),
    "wmv2": ("wmv2",),
    "msmpeg4v3": ("msmpeg4",),
    "flv1": ("flv",),
    # Uncompressed pictures (screen recorders, AVI from old tools): a copy, hardly a decoder.
    "rawvideo": ("rawvideo",),
}
ACCEPTED_AUDIO_CODECS: dict[str, tuple[str, ...]] = {
    "aac": ("aac", "aac_fixed"),
    "mp3": ("mp3float", "mp3"),
    "mp2": ("mp2float", "mp2"),
    "ac3": ("ac3", "ac3_fixed"),
    "eac3": ("eac3",),
    "opus": ("opus", "libopus"),
    "vorbis": ("vorbis", "libvorbis"),
    "flac": ("flac",),
    "alac": ("alac",),
    "wmav2": ("wmav2",),
    "amr_nb": ("amrnb",),
    "amr_wb": ("amrwb",),
    **{
        pcm: (pcm,)
        for pcm in (
            "pcm_s16le",
            "pcm_s16be",
            "pcm_s24le",
            "pcm_s24be",
            "pcm_s32le",
            "pcm_f32le",
            "pcm_u8",
            "pcm_alaw",
            "pcm_mulaw",
        )
    },
}
# Streams riding along that the probe opens too: text tracks (the subtitle
# renditions), closed captions and cover art.
ACCEPTED_OTHER_CODECS: dict[str, tuple[str, ...]] = {
    "subrip": ("srt", "subrip"),
    "ass": ("ass", "ssa"),
    "mov_text": ("mov_text",),
    "webvtt": ("webvtt",),
    "dvb_subtitle": ("dvbsub",),
    "eia_608": ("cc_dec",),
    "png": ("png",),
}
ACCEPTED_CODECS = {**ACCEPTED_VIDEO_CODECS, **ACCEPTED_AUDIO_CODECS, **ACCEPTED_OTHER_CODECS}
CODEC_WHITELIST = ",".join(sorted({decoder for decoders in ACCEPTED_CODECS.values() for decoder in decoders}))
_REFUSED_CODEC = re.compile(r"Codec \(([^)]+)\) not on whitelist")

# The picture sizes we encode: at least 2x2 (4:2:0 needs even sizes), at most 8192
# a side and 8K UHD's pixel count, which bounds what one decoded frame can cost.
MIN_SIDE_PX = 2
MAX_SIDE_PX = 8192
MAX_PIXELS = 7680 * 4320
MAX_FRAME_RATE = 240

# The memory limit (address space, RLIMIT_AS) of every FFmpeg and ffprobe process,
# unless FFMPEG_MEMORY_LIMIT_MB sets it (0 turns it off). Address space, not
# resident memory: thread stacks and malloc arenas reserve far more than they
# use, and they grow with the threads FFmpeg starts, one set per core. Measured
# on a 1080p ladder (5 x264 encoders, FFmpeg 5.1): peak address space 0.8 GB with
# 1 thread, 1.5 GB on 2 cores, 2.7 GB with 6 threads, 4.5 GB with 12 (resident:
# 0.4, 0.5, 0.8, 1.2 GB); a 4K source needs slightly less (the ladder tops at
# 1080p). Base plus a share per core keeps a margin of about 1.7 on each. The
# thumbnail passes peak at 0.55 GB on 2 cores, within a 1024 MB function.
# Re-measured with the layer's static FFmpeg 6.0 (the one we run everywhere now),
# same 2 s 1080p clip for both builds: the ladder's peaks are within 3 % of 5.1's
# (0.67 GB on 1 core, 1.40 GB on 2); the thumbnail passes on that clip, whose
# sparse keyframes make them decode twice, peak at 0.80-0.86 GB on 2 cores
# (5.1: 0.75), still under a 1024 MB function's limit but with less to spare.
MEMORY_LIMIT_BASE_MB = 1536
MEMORY_LIMIT_PER_CPU_MB = 512
MEMORY_LIMIT_SETTING = "FFMPEG_MEMORY_LIMIT_MB"
# A failed run whose sampled peak address space came this close to the limit ran
# into it (measured: failures peak at 0.95-1.0 of the limit, successes stayed below 0.89).
MEMORY_LIMIT_HIT_RATIO = 0.93
PEAK_SAMPLE_INTERVAL_S = 0.01
PEAK_SAMPLE_START_INTERVAL_S = 0.001
PEAK_SAMPLE_START_S = 2.0
# RLIMIT_CPU is only the backstop for an FFmpeg that outlives us (our timer kills
# it first): every core busy for the whole timeout, plus a margin. ffprobe dies of
# SIGXCPU; ffmpeg catches it and exits with 255. Either way an FfmpegError.
CPU_LIMIT_MARGIN_S = 30

# What FFmpeg and the libraries it loads print when an allocation fails.
_OUT_OF_MEMORY_MARKERS = (
    "Cannot allocate memory",
    "malloc of size",
    "failed to allocate",
    "out of memory",
    "std::bad_alloc",
    "failed to map segment",
    "get_buffer() failed",
    "Resource temporarily unavailable",
)
# Signals of a process that crashed on its own (a decoder bug hit by the input);
# SIGKILL is not among them: that is our timer, the OS or Lambda.
_CRASH_SIGNALS = frozenset({signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGILL, signal.SIGABRT})
_PROBED_FORMAT = re.compile(r"Format (\S+) probed with size=\d+ and score=\d+")
# FFmpeg's log prefix, "[mov,mp4,m4a,3gp,3g2,mj2 @ 0x5581e7d2f280] ": noise to a user.
_LOG_CONTEXT = re.compile(r"\[[^\]\n]* @ 0x[0-9a-f]+\] ")


def find_tool(name: str) -> str:
    """Path of ``ffmpeg`` or ``ffprobe``, the first found of:

    1. the ``FFMPEG_PATH``/``FFPROBE_PATH`` setting (the local stack gives its
       functions the layer's build so, see vidpipe.cli.local_stack);
    2. the FFmpeg layer's ``bin/``, ``/opt/bin`` on AWS;
    3. beside the running interpreter: ``make dev`` installs the layer's build in
       the project's ``.venv/bin``, so the tests, the benchmarks and any tool run
       with ``.venv/bin/python`` get it without touching ``PATH``;
    4. ``PATH``.

    Raises FfmpegError when none has it."""
    configured = os.environ.get(f"{name.upper()}_PATH")
    candidates = [configured] if configured else []
    candidates.append(str(LAYER_BIN_DIR / name))
    candidates.append(os.path.join(os.path.dirname(sys.executable), name))
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(name)
    if found:
        return found
    raise FfmpegError(f"{name} not found (set {name.upper()}_PATH, or run `make dev` to install the pinned FFmpeg)")


def ffmpeg_environment() -> dict[str, str]:
    """The environment of every ffmpeg and ffprobe process we start: only the
    variables of :data:`FFMPEG_ENVIRONMENT_VARIABLES` we have, and
    ``GCONV_PATH`` pointing where no gconv module can be (see
    :data:`NO_GCONV_MODULES`). Start FFmpeg with nothing else."""
    kept = {name: os.environ[name] for name in FFMPEG_ENVIRONMENT_VARIABLES if name in os.environ}
    return {**kept, "GCONV_PATH": NO_GCONV_MODULES}


@dataclass(frozen=True)
class SourceInfo:
    """What we need to know about an uploaded video, read by ffprobe."""

    duration_s: float
    width: int  # as stored, before rotation
    height: int
    rotation: int  # degrees clockwise the player must turn the picture: 0, 90, 180, 270
    frame_rate: Fraction
    video_codec: str
    audio_codec: str | None
    audio_channels: int
    format_name: str
    # Where the streams start on the file's own clock (seconds), and the audio's
    # sample rate: the chunk planner cuts both streams on these timelines.
    video_start_s: float = 0.0
    audio_start_s: float = 0.0
    audio_sample_rate: int = 0
    # What the video stream carries, kbit/s, when the file says (the stream's own
    # figure, else the container's less the audio's); None when it cannot be told.
    video_bitrate_kbps: int | None = None
    # Transfer, primaries, matrix, range and pixel format as the file states
    # them (vidpipe.colour decides what they mean: HDR, BT.601, full range...).
    colour: VideoColour = VideoColour()

    @property
    def has_audio(self) -> bool:
        return self.audio_codec is not None

    @property
    def display_width(self) -> int:
        return self.height if self.rotation in (90, 270) else self.width

    @property
    def display_height(self) -> int:
        return self.width if self.rotation in (90, 270) else self.height

    @property
    def demuxer(self) -> str:
        """The demuxer that read the file, as ``-f`` names it (``mov`` for
        ffprobe's ``mov,mp4,m4a,3gp,3g2,mj2``)."""
        return self.format_name.split(",")[0]


# ---------------------------------------------------------------- what the file is


def refuse_format(demuxer: str) -> None:
    """Raise the MediaError for a demuxer we do not let FFmpeg use (nothing for a
    safe one): ForbiddenReference for playlists and scripts, NoVideoStream for
    audio files, NotAVideo for images, text and everything else."""
    if demuxer in SAFE_DEMUXERS:
        return
    if demuxer in REFERENCE_DEMUXERS:
        raise ForbiddenReference(
            f"the file is read as '{demuxer}', a playlist or script that makes FFmpeg open other files or URLs; "
            "upload the video itself"
        )
    if demuxer in AUDIO_DEMUXERS:
        raise NoVideoStream(f"the file is an audio file ({demuxer}) with no video stream")
    if demuxer in IMAGE_DEMUXERS or demuxer.endswith("_pipe"):
        raise NotAVideo(f"the file is a still image ({demuxer}), not a video")
    if demuxer == "tty":
        raise NotAVideo("the file is text, not a video")
    raise NotAVideo(f"the file is read as '{demuxer}', which is not a video container we accept")


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


def parse_probe(probe: dict) -> SourceInfo:
    """Turn ffprobe's JSON (``-show_format -show_streams``) into a SourceInfo.

    Raises (checked in this order) the error of :func:`refuse_format` for a
    container we do not accept, NoVideoStream when there is no real video
    stream (audio only; cover art does not count), CorruptMedia when the
    picture has no size, UnsupportedDimensions outside 2..8192 a side or
    above 8K UHD's pixel count, UnsupportedFrameRate when the frame rate is
    missing, infinite or above 240, and CorruptMedia when the duration cannot
    be read."""
    streams = probe.get("streams") or []
    fmt = probe.get("format") or {}
    format_name = str(fmt.get("format_name", ""))
    refuse_format(format_name.split(",")[0])
    video = next(
        (s for s in streams if s.get("codec_type") == "video" and not (s.get("disposition") or {}).get("attached_pic")),
        None,
    )
    if video is None:
        if any(s.get("codec_type") == "audio" for s in streams):
            raise NoVideoStream("the file has audio but no video stream")
        raise NoVideoStream("the file has no video stream")
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    _check_codec(video, ACCEPTED_VIDEO_CODECS, "video")
    if audio is not None:
        _check_codec(audio, ACCEPTED_AUDIO_CODECS, "audio")
    width, height = int(video.get("width") or 0), int(video.get("height") or 0)
    if width <= 0 or height <= 0:
        raise CorruptMedia("the video stream has no picture size")
    _check_dimensions(width, height)
    frame_rate = _frame_rate(video)
    duration = _first_number(fmt.get("duration"), video.get("duration"))
    if duration is None or duration <= 0:
        raise CorruptMedia("the duration of the video cannot be read")
    return SourceInfo(
        duration_s=duration,
        width=width,
        height=height,
        rotation=_rotation(video),
        frame_rate=frame_rate,
        video_codec=str(video.get("codec_name", "unknown")),
        audio_codec=str(audio.get("codec_name", "unknown")) if audio else None,
        audio_channels=int(audio.get("channels") or 0) if audio else 0,
        format_name=format_name,
        video_start_s=_first_number(video.get("start_time")) or 0.0,
        audio_start_s=(_first_number(audio.get("start_time")) or 0.0) if audio else 0.0,
        audio_sample_rate=int(_first_number(audio.get("sample_rate")) or 0) if audio else 0,
        video_bitrate_kbps=_video_bitrate_kbps(video, audio, fmt),
        colour=colour_from_stream(video),
    )


def _check_codec(stream: dict, accepted: dict[str, tuple[str, ...]], kind: str) -> None:
    """UnsupportedCodec unless the stream's codec is one we decode."""
    codec = str(stream.get("codec_name") or "unknown")
    if codec not in accepted:
        raise UnsupportedCodec(
            f"the {kind} stream is {codec}, a codec we do not decode; we accept {', '.join(sorted(accepted))}"
        )


def _raise_if_codec_refused(stderr: str) -> None:
    """UnsupportedCodec when FFmpeg refused to open a decoder outside the allow-list."""
    match = _REFUSED_CODEC.search(stderr)
    if match:
        raise UnsupportedCodec(
            f"the file has a stream FFmpeg would read with its {match.group(1)} decoder, which we do not allow"
        )


def _video_bitrate_kbps(video: dict, audio: dict | None, fmt: dict) -> int | None:
    """The video stream's bit rate in kbit/s: its own ``bit_rate`` (MP4 and MOV
    say), else the container's minus the audio's (Matroska, MPEG-TS say only
    the total); None when neither is known or the figure is not positive."""
    stream_bps = _first_number(video.get("bit_rate"))
    if stream_bps is None:
        total_bps = _first_number(fmt.get("bit_rate"))
        audio_bps = (_first_number(audio.get("bit_rate")) or 0.0) if audio else 0.0
        stream_bps = None if total_bps is None else total_bps - audio_bps
    if stream_bps is None or stream_bps <= 0:
        return None
    return max(1, round(stream_bps / 1000))


def _check_dimensions(width: int, height: int) -> None:
    if min(width, height) < MIN_SIDE_PX:
        raise UnsupportedDimensions(f"the picture {width}x{height} is too small to encode (at least 2x2)")
    if max(width, height) > MAX_SIDE_PX or width * height > MAX_PIXELS:
        raise UnsupportedDimensions(
            f"the picture size {width}x{height} is beyond what we accept "
            f"({MAX_SIDE_PX} pixels a side, {MAX_PIXELS // 1_000_000} megapixels)"
        )


def _first_number(*values: object) -> float | None:
    for value in values:
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
        if math.isfinite(number):
            return number
    return None


def _frame_rate(video: dict) -> Fraction:
    """The average frame rate, else the stream's base rate, whichever is first
    within (0, 240]. A base rate of ``N/0`` means timestamps that do not
    advance: no frame rate at all, whatever the average says."""
    rates: list[Fraction] = []
    for key in ("avg_frame_rate", "r_frame_rate"):
        numerator, _, denominator = str(video.get(key, "0/0")).partition("/")
        try:
            top, bottom = int(numerator), int(denominator or 1)
        except ValueError:
            continue
        if key == "r_frame_rate" and bottom == 0 and top != 0:
            raise UnsupportedFrameRate(
                f"the video's timestamps do not advance (frame rate {top}/0): it has no usable frame rate"
            )
        if bottom != 0:
            rates.append(Fraction(top, bottom))
    for rate in rates:
        if 0 < rate <= MAX_FRAME_RATE:
            return rate
    absurd = [rate for rate in rates if rate > MAX_FRAME_RATE]
    if absurd:
        raise UnsupportedFrameRate(
            f"the video declares {float(absurd[0]):.0f} frames per second; we accept up to {MAX_FRAME_RATE}"
        )
    raise UnsupportedFrameRate("the video has no usable frame rate (zero or missing)")


def _rotation(video: dict) -> int:
    """Clockwise display rotation. ffprobe reports it as a display-matrix side
    data ``rotation`` (counter-clockwise, e.g. -90 for a phone held upright) or,
    on older files, as a ``rotate`` tag (clockwise)."""
    for side_data in video.get("side_data_list") or []:
        if "rotation" in side_data:
            return int(-float(side_data["rotation"])) % 360
    tag = (video.get("tags") or {}).get("rotate")
    if tag is not None:
        return int(float(tag)) % 360
    return 0


def probe_media(path: Path, *, timeout_s: float = 60.0) -> SourceInfo:
    """Decide what the local file is and describe it, before anything decodes it.

    :func:`refuse_references` first, then ffprobe restricted to the one file
    and to :data:`SAFE_DEMUXERS`. Raises the errors of
    :func:`refuse_references`, :func:`refuse_format` and :func:`parse_probe`;
    CorruptMedia for a recognisable but unreadable container (or ffprobe out of
    time), NotAVideo for unknown bytes, MemoryLimitExceeded, and FfmpegError
    when ffprobe cannot run."""
    refuse_references(path)
    limits = _process_limits(timeout_s)
    completed = _run_ffprobe(
        ["-v", "error", "-print_format", "json", "-show_format", "-show_streams"], path, limits, timeout_s=timeout_s
    )
    stderr = _readable(completed.stderr.decode("utf-8", "replace"), [path])
    if completed.returncode != 0:
        _raise_for_probe_failure(path, completed, stderr, limits, timeout_s)
    return _source_from_probe(completed, stderr)


def _source_from_probe(completed: _Finished, stderr: str) -> SourceInfo:
    """The SourceInfo of a probe that exited 0 (see :func:`parse_probe`)."""
    _raise_if_codec_refused(stderr)
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
    limits = _process_limits(timeout_s)
    completed = _run_ffprobe(
        ["-v", "error", "-print_format", "json", "-show_format", "-show_streams"], url, limits, timeout_s=timeout_s
    )
    stderr = _readable(completed.stderr.decode("utf-8", "replace"), [url])
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


def _run_ffprobe(options: list[str], path: Path | str, limits: _ProcessLimits, *, timeout_s: float) -> _Finished:
    """ffprobe on a local file, or on a presigned URL (``str``) with only its own protocol."""
    if isinstance(path, str):
        protocols, target = url_protocols(path), path
    else:
        protocols, target = "file", f"file:{path}"
    args = [
        find_tool("ffprobe"),
        *options,
        "-protocol_whitelist", protocols,
        "-format_whitelist", _PROBE_FORMAT_WHITELIST,
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
    with _PeakMemorySampler(process.pid) as sampler:
        try:
            stdout, stderr = process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired as exc:
            process.kill()
            process.communicate()
            raise CorruptMedia(f"ffprobe did not finish within {timeout_s:.0f} s") from exc
    return _Finished(process.returncode, stdout, stderr, sampler.peak_bytes)


def _raise_for_probe_failure(
    path: Path, finished: _Finished, stderr: str, limits: _ProcessLimits, timeout_s: float
) -> None:
    returncode = finished.returncode
    limits.raise_if_exceeded(returncode, stderr, finished.peak_memory_bytes, tool="ffprobe")
    if "Format not on whitelist" in stderr:
        # FFmpeg recognised the file as something we refuse; ask which (FFmpeg
        # names it only in debug output) so the error says what the file is.
        refuse_format(_detected_format(path, limits, timeout_s) or "unknown")
    _raise_if_codec_refused(stderr)
    if "not on whitelist" in stderr:
        raise ForbiddenReference(f"the file tries to make FFmpeg open something besides itself: {stderr}")
    if -returncode in _CRASH_SIGNALS:
        raise CorruptMedia(f"ffprobe crashed ({signal.Signals(-returncode).name}) reading the file")
    container = sniff_container(path)
    if container is not None:
        raise CorruptMedia(f"the file starts like {container} but cannot be read ({stderr})")
    raise NotAVideo(f"the file is in no media format FFmpeg recognises ({stderr})")


def _detected_format(path: Path, limits: _ProcessLimits, timeout_s: float) -> str | None:
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


# ---------------------------------------------------------------- running FFmpeg


def input_args(path: Path, demuxer: str) -> list[str]:
    """The options and ``-i`` for reading the upload at ``path`` with the demuxer
    the probe found (:attr:`SourceInfo.demuxer`): only the file protocol, only
    that demuxer (and the text demuxers it may nest), for this input and
    anything nested in it, and only the decoders of :data:`ACCEPTED_CODECS`.
    Put decoder options (``-skip_frame``...) before them.

    Raises ValueError for a demuxer outside :data:`SAFE_DEMUXERS`."""
    return [
        "-protocol_whitelist", "file",
        "-f", demuxer,
        "-format_whitelist", _format_whitelist(demuxer),
        "-codec_whitelist", CODEC_WHITELIST,
        "-i", f"file:{path}",
    ]  # fmt: skip


# The protocols FFmpeg may use for a presigned URL of an upload, by its scheme:
# https on AWS, plain http only where the local stack serves S3.
URL_PROTOCOLS = {"https": "https,tls,tcp", "http": "http,tcp"}


def url_protocols(url: str) -> str:
    """The ``-protocol_whitelist`` for reading ``url`` (:data:`URL_PROTOCOLS`).
    ValueError for any other scheme."""
    scheme = url.partition("://")[0]
    if scheme not in URL_PROTOCOLS:
        raise ValueError(f"FFmpeg may read an upload only over {sorted(URL_PROTOCOLS)}, not {scheme!r}")
    return URL_PROTOCOLS[scheme]


def url_input_args(url: str, demuxer: str) -> list[str]:
    """:func:`input_args` for an upload FFmpeg reads over HTTP(S), by a presigned
    URL (a chunk encoder reads only its own part of the source, by ranged
    requests): the URL's own protocol and nothing else, the same demuxer rules.

    Raises ValueError for another scheme or a demuxer outside :data:`SAFE_DEMUXERS`."""
    return [
        # S3 may drop a long-lived connection; FFmpeg then asks again from where it was.
        "-reconnect", "1", "-reconnect_on_network_error", "1",
        "-protocol_whitelist", url_protocols(url),
        "-f", demuxer,
        "-format_whitelist", _format_whitelist(demuxer),
        "-codec_whitelist", CODEC_WHITELIST,
        "-i", url,
    ]  # fmt: skip


def source_input_args(source: Path | str, demuxer: str) -> list[str]:
    """:func:`input_args` for a local path, :func:`url_input_args` for a URL."""
    return url_input_args(source, demuxer) if isinstance(source, str) else input_args(source, demuxer)


def _format_whitelist(demuxer: str) -> str:
    """The demuxer and the ones it may nest (:data:`NESTED_DEMUXERS`). ValueError
    for a demuxer outside :data:`SAFE_DEMUXERS` and :data:`OWN_FILE_DEMUXERS`."""
    if demuxer not in SAFE_DEMUXERS | OWN_FILE_DEMUXERS:
        raise ValueError(f"demuxer {demuxer!r} is not one FFmpeg may use on an upload")
    return ",".join((demuxer, *NESTED_DEMUXERS.get(demuxer, ())))


def _check_inputs(args: Sequence[str]) -> list[str]:
    """The paths of the inputs (``file:`` taken off); ValueError unless every
    ``-i`` was built by :func:`input_args`."""
    start, paths = 0, []
    for index, arg in enumerate(args):
        if arg != "-i":
            continue
        options = list(args[start:index])
        source = args[index + 1] if index + 1 < len(args) else ""
        demuxer = _option_value(options, "-f") or ""
        scheme = "file" if source.startswith("file:") else source.partition("://")[0]
        protocols = "file" if scheme == "file" else URL_PROTOCOLS.get(scheme)
        if not (
            protocols
            and _option_value(options, "-protocol_whitelist") == protocols
            and demuxer in SAFE_DEMUXERS | OWN_FILE_DEMUXERS
            and _option_value(options, "-format_whitelist") == _format_whitelist(demuxer)
            and _option_value(options, "-codec_whitelist") == CODEC_WHITELIST
        ):
            raise ValueError(f"FFmpeg input {source!r} is not restricted: build it with vidpipe.media.input_args")
        paths.append(source.removeprefix("file:"))
        start = index + 2
    return paths


def _option_value(options: list[str], name: str) -> str | None:
    positions = [index for index, option in enumerate(options[:-1]) if option == name]
    return options[positions[-1] + 1] if positions else None


@dataclass(frozen=True)
class _ProcessLimits:
    """Resource limits for one FFmpeg/ffprobe child, applied between fork and exec."""

    memory_bytes: int | None
    cpu_seconds: int

    def apply(self) -> None:
        # Runs in the child before exec: only setrlimit, which takes no lock, so it
        # is safe even though the parent has other threads.
        if self.memory_bytes is not None:
            resource.setrlimit(resource.RLIMIT_AS, (self.memory_bytes, self.memory_bytes))
        resource.setrlimit(resource.RLIMIT_CPU, (self.cpu_seconds, self.cpu_seconds + 5))

    def describe(self, peak_memory_bytes: int) -> str:
        """`` (memory limit N MiB, peak seen M MiB)`` for an error message, so an
        operator can tell a limit set too low from a real FFmpeg failure."""
        if self.memory_bytes is None:
            return ""
        return (
            f" (memory limit {self.memory_bytes // 2**20} MiB, {MEMORY_LIMIT_SETTING}; "
            f"peak seen {peak_memory_bytes // 2**20} MiB)"
        )

    def raise_if_exceeded(self, returncode: int, stderr: str, peak_memory_bytes: int, *, tool: str) -> None:
        """MemoryLimitExceeded or FfmpegError when a failed process hit one of our limits.

        Hitting the memory limit shows in two ways, and neither alone is enough:
        FFmpeg reports a failed allocation in its own words only sometimes ("get_buffer()
        failed", "Resource temporarily unavailable" from a thread that got no stack, or
        just "Error while opening encoder"), and the sampled peak address space can
        miss one huge failed request that stopped well short of the limit. So: an
        allocation message, or a peak within MEMORY_LIMIT_HIT_RATIO of the limit."""
        near_limit = self.memory_bytes is not None and peak_memory_bytes >= MEMORY_LIMIT_HIT_RATIO * self.memory_bytes
        said_so = self.memory_bytes is not None and any(marker in stderr for marker in _OUT_OF_MEMORY_MARKERS)
        if near_limit or said_so:
            raise MemoryLimitExceeded(
                f"{tool} needed more than the {(self.memory_bytes or 0) // 2**20} MiB of memory it may use "
                f"({MEMORY_LIMIT_SETTING}) to read this file: {stderr}"
            )
        if -returncode == signal.SIGXCPU:
            raise FfmpegError(f"{tool} used up its CPU time limit of {self.cpu_seconds} s")


def memory_limit_mb() -> int | None:
    """FFMPEG_MEMORY_LIMIT_MB, or the default: base plus a share per core, and in
    Lambda never more than the function's memory (address space bounds resident
    memory, so FFmpeg alone cannot get the function killed for running out of
    it). None when set to 0 (no limit). Raises FfmpegError for a value that is
    not a whole number."""
    raw = os.environ.get(MEMORY_LIMIT_SETTING, "").strip()
    if not raw:
        default = MEMORY_LIMIT_BASE_MB + MEMORY_LIMIT_PER_CPU_MB * _cpu_count()
        function_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "").strip()
        return min(default, int(function_mb)) if function_mb.isdigit() else default
    try:
        value = int(raw)
    except ValueError as exc:
        raise FfmpegError(f"setting {MEMORY_LIMIT_SETTING}={raw!r} is not a whole number of MiB") from exc
    return value if value > 0 else None


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _process_limits(timeout_s: float) -> _ProcessLimits:
    limit_mb = memory_limit_mb()
    memory_bytes = None
    if limit_mb is not None:
        # Never above the hard limit we run under: setrlimit in the child would fail.
        hard = resource.getrlimit(resource.RLIMIT_AS)[1]
        memory_bytes = limit_mb * 2**20 if hard == resource.RLIM_INFINITY else min(limit_mb * 2**20, hard)
    cpu_seconds = math.ceil(timeout_s * _cpu_count()) + CPU_LIMIT_MARGIN_S
    cpu_hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
    if cpu_hard != resource.RLIM_INFINITY:
        cpu_seconds = min(cpu_seconds, cpu_hard - 5)
    return _ProcessLimits(memory_bytes=memory_bytes, cpu_seconds=cpu_seconds)


class _PeakMemorySampler:
    """Reads a child's VmPeak (its address-space high-water mark, which the kernel
    keeps) every PEAK_SAMPLE_INTERVAL_S while it runs. Being a high-water mark, a
    late sample still sees an early peak; only growth in the last few
    milliseconds before exit can be missed. Zero where /proc is missing."""

    def __init__(self, pid: int) -> None:
        self._status = Path(f"/proc/{pid}/status")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name=f"vmpeak:{pid}", daemon=True)
        self.peak_bytes = 0

    def _sample(self) -> None:
        started = time.monotonic()
        while True:
            try:
                for line in self._status.read_text().splitlines():
                    if line.startswith("VmPeak:"):
                        self.peak_bytes = max(self.peak_bytes, int(line.split()[1]) * 1024)
                        break
            except (OSError, ValueError, IndexError):
                pass  # not started yet, or gone: the last good sample stands
            # Fast while FFmpeg starts (demuxer, decoder, encoders and their threads all
            # allocate in its first moments, and a process that fails there exits at once).
            starting = time.monotonic() - started < PEAK_SAMPLE_START_S
            if self._stop.wait(PEAK_SAMPLE_START_INTERVAL_S if starting else PEAK_SAMPLE_INTERVAL_S):
                return

    def __enter__(self) -> _PeakMemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()


ProgressCallback = Callable[[float], None]


def run_ffmpeg(
    args: Sequence[str],
    *,
    timeout_s: float,
    on_progress: ProgressCallback | None = None,
) -> None:
    """Run ``ffmpeg`` with ``args`` (everything after the binary's name), whose
    every input must come from :func:`input_args`.

    Global options are added in front, and the process runs under the time and
    memory limits. When ``on_progress`` is given, FFmpeg's ``-progress`` output
    is read and the callback receives the output time in seconds as it advances.

    Raises ValueError for an unrestricted input; ForbiddenReference when FFmpeg
    refused to open something the file pointed at (even if it went on without
    it); MemoryLimitExceeded; CorruptMedia when FFmpeg reports invalid data or
    crashes on the input; FfmpegError for any other failure or the timeout
    (stderr tail included)."""
    inputs = _check_inputs(args)
    limits = _process_limits(timeout_s)
    command = [
        find_tool("ffmpeg"),
        "-hide_banner",
        "-nostdin",
        "-y",
        "-loglevel", "error",
        *(["-progress", "pipe:1", "-nostats"] if on_progress else []),
        *args,
    ]  # fmt: skip
    # stderr goes to a temporary file, not a pipe: while we read progress from stdout
    # nobody drains a stderr pipe, and a damaged input can log more than a pipe holds
    # (64 KiB); FFmpeg would then block on its next write, and we with it.
    with tempfile.TemporaryFile() as stderr_file:
        try:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if on_progress else subprocess.DEVNULL,
                stderr=stderr_file,
                env=ffmpeg_environment(),
                preexec_fn=limits.apply,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise FfmpegError(f"ffmpeg could not start: {exc}") from exc
        # A timer, not a check between progress lines: an FFmpeg that hangs prints
        # nothing, and reading its stdout would wait forever.
        timed_out = threading.Event()

        def stop_at_deadline() -> None:
            timed_out.set()
            process.kill()

        timer = threading.Timer(timeout_s, stop_at_deadline)
        timer.start()
        with _PeakMemorySampler(process.pid) as sampler:
            try:
                if on_progress and process.stdout is not None:
                    _follow_progress(process.stdout, on_progress)
                process.wait()
            finally:
                timer.cancel()
                if process.poll() is None:  # the progress callback raised: do not leave FFmpeg running
                    process.kill()
                    process.wait()
                if process.stdout is not None:
                    process.stdout.close()
        stderr = _readable(_tail(stderr_file), inputs)
    if timed_out.is_set() and process.returncode != 0:
        raise FfmpegError(f"ffmpeg did not finish within {timeout_s:.0f} s: {stderr}")
    _raise_if_codec_refused(stderr)
    if "not on whitelist" in stderr:
        raise ForbiddenReference(f"the file tries to make FFmpeg open something besides itself: {stderr}")
    if process.returncode != 0:
        limits.raise_if_exceeded(process.returncode, stderr, sampler.peak_bytes, tool="ffmpeg")
        if -process.returncode in _CRASH_SIGNALS:
            # Deterministic for these bytes: retrying would only run the crash again.
            raise CorruptMedia(f"FFmpeg crashed ({signal.Signals(-process.returncode).name}) decoding the file")
        if "Invalid data found" in stderr or "corrupt" in stderr.lower():
            raise CorruptMedia(f"FFmpeg could not decode the file: {stderr}")
        raise FfmpegError(f"ffmpeg exited with {process.returncode}{limits.describe(sampler.peak_bytes)}: {stderr}")


def _readable(stderr: str, inputs: Sequence[Path | str]) -> str:
    """FFmpeg's stderr fit for an error message a user reads: the tail, without
    log prefixes, and our scratch paths (or presigned URLs: they carry a
    signature) replaced by what they are."""
    text = _LOG_CONTEXT.sub("", stderr)
    for path in inputs:
        text = text.replace(f"file:{path}", "the upload").replace(str(path), "the upload")
        if isinstance(path, str) and "://" in path:
            text = text.replace(path.partition("?")[0], "the upload")
    lines = [line.strip() for line in text[-STDERR_TAIL_CHARS:].splitlines()]
    return "; ".join(line for line in lines if line)


def _tail(stderr_file: IO[bytes]) -> str:
    """The last STDERR_TAIL_CHARS characters FFmpeg wrote to ``stderr_file``."""
    size = stderr_file.seek(0, os.SEEK_END)
    stderr_file.seek(max(0, size - 4 * STDERR_TAIL_CHARS))
    return stderr_file.read().decode("utf-8", "replace")[-STDERR_TAIL_CHARS:].strip()


def _follow_progress(stdout: IO[bytes], on_progress: ProgressCallback) -> None:
    for raw in stdout:
        key, _, value = raw.decode("ascii", "replace").strip().partition("=")
        if key == "out_time_us" and value.isdigit():
            on_progress(int(value) / 1_000_000)
