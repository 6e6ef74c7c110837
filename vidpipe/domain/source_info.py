"""What an uploaded video is, as ffprobe describes it, and which of its
containers and codecs we accept: :class:`SourceInfo`, :func:`parse_probe` and
the allow-lists every FFmpeg run is restricted to (the FFmpeg adapter,
:mod:`vidpipe.adapters.ffmpeg`, applies them; this module only decides).

What can go wrong: :func:`parse_probe` and :func:`refuse_format` raise the
final :class:`~vidpipe.domain.errors.MediaError` subclasses (NotAVideo,
NoVideoStream, CorruptMedia, UnsupportedDimensions, UnsupportedFrameRate,
ForbiddenReference, UnsupportedCodec) for a file that cannot become a video.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction

from vidpipe.domain.colour import VideoColour, colour_from_stream
from vidpipe.domain.errors import (
    CorruptMedia,
    ForbiddenReference,
    NotAVideo,
    NoVideoStream,
    UnsupportedCodec,
    UnsupportedDimensions,
    UnsupportedFrameRate,
)
from vidpipe.domain.subtitles import SubtitleTrack, subtitle_tracks

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
# encoder's raw AAC frames (transcode.domain_logic.chunk_encoding).
OWN_FILE_DEMUXERS = frozenset({"aac"})
PROBE_FORMAT_WHITELIST = ",".join(sorted(SAFE_DEMUXERS.union(*NESTED_DEMUXERS.values())))
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
    # Blu-ray and DVD bitmap subtitles: probed to report them skipped (vidpipe.domain.subtitles).
    "hdmv_pgs_subtitle": ("pgssub",),
    "dvd_subtitle": ("dvdsub",),
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
    # them (vidpipe.domain.colour decides what they mean: HDR, BT.601, full range...).
    colour: VideoColour = VideoColour()
    # Its subtitle streams, text and bitmap, in file order.
    subtitles: tuple[SubtitleTrack, ...] = ()

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
        subtitles=subtitle_tracks(streams),
    )


def _check_codec(stream: dict, accepted: dict[str, tuple[str, ...]], kind: str) -> None:
    """UnsupportedCodec unless the stream's codec is one we decode."""
    codec = str(stream.get("codec_name") or "unknown")
    if codec not in accepted:
        raise UnsupportedCodec(
            f"the {kind} stream is {codec}, a codec we do not decode; we accept {', '.join(sorted(accepted))}"
        )


def raise_if_codec_refused(stderr: str) -> None:
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
