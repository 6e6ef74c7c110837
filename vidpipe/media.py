"""FFmpeg and ffprobe behind one small adapter.

Everything that starts an FFmpeg process goes through :func:`run_ffmpeg` or
:func:`probe_media`, so the safety rules live in one place:

* an argument list, never a shell string;
* a timeout, kept below the Lambda timeout so we can still report the failure;
* input protocols restricted to local files (``-protocol_whitelist file``), so a
  hostile playlist inside an upload cannot make FFmpeg fetch URLs;
* stderr kept, and its tail put into the error message.

What can go wrong: :class:`~vidpipe.errors.NotAVideo` or
:class:`~vidpipe.errors.CorruptMedia` when the input is not usable media (final),
:class:`~vidpipe.errors.FfmpegError` when the binary is missing, crashes or
times out (retryable).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import IO

from vidpipe.errors import CorruptMedia, FfmpegError, NotAVideo

# Where the FFmpeg layer puts its binaries on AWS. On the local stack layers are
# unpacked elsewhere and not put on PATH (a ministack gap), so we fall back to PATH.
LAYER_BIN_DIR = Path("/opt/bin")
STDERR_TAIL_CHARS = 2000


def find_tool(name: str) -> str:
    """Path of ``ffmpeg`` or ``ffprobe``: the ``FFMPEG_PATH``/``FFPROBE_PATH``
    setting, then the layer's ``/opt/bin``, then ``PATH``.

    Raises FfmpegError when none has it."""
    configured = os.environ.get(f"{name.upper()}_PATH")
    candidates = [configured] if configured else []
    candidates.append(str(LAYER_BIN_DIR / name))
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(name)
    if found:
        return found
    raise FfmpegError(f"{name} not found (set {name.upper()}_PATH or install FFmpeg)")


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

    @property
    def has_audio(self) -> bool:
        return self.audio_codec is not None

    @property
    def display_width(self) -> int:
        return self.height if self.rotation in (90, 270) else self.width

    @property
    def display_height(self) -> int:
        return self.width if self.rotation in (90, 270) else self.height


def parse_probe(probe: dict) -> SourceInfo:
    """Turn ffprobe's JSON (``-show_format -show_streams``) into a SourceInfo.

    Raises NotAVideo when there is no real video stream (audio only, a still
    image, a text file ffprobe half-recognised) and CorruptMedia when the
    numbers needed to plan an encode are missing or absurd."""
    streams = probe.get("streams") or []
    fmt = probe.get("format") or {}
    video = next(
        (
            s
            for s in streams
            if s.get("codec_type") == "video"
            and not (s.get("disposition") or {}).get("attached_pic")
        ),
        None,
    )
    if video is None:
        raise NotAVideo("the file has no video stream")
    format_name = str(fmt.get("format_name", ""))
    if format_name in {"image2", "png_pipe", "jpeg_pipe", "webp_pipe", "gif_pipe", "tty"}:
        raise NotAVideo(f"the file is a still image or text ({format_name}), not a video")
    width, height = int(video.get("width") or 0), int(video.get("height") or 0)
    if width <= 0 or height <= 0:
        raise CorruptMedia("the video stream has no picture size")
    if width > 8192 or height > 8192:
        raise CorruptMedia(f"the picture size {width}x{height} is beyond what we accept (8192)")
    duration = _first_number(fmt.get("duration"), video.get("duration"))
    if duration is None or duration <= 0:
        raise CorruptMedia("the duration of the video cannot be read")
    frame_rate = _frame_rate(video)
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
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
    )


def _first_number(*values: object) -> float | None:
    for value in values:
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
        if number == number and number not in (float("inf"), float("-inf")):
            return number
    return None


def _frame_rate(video: dict) -> Fraction:
    for key in ("avg_frame_rate", "r_frame_rate"):
        try:
            rate = Fraction(str(video.get(key, "0/0")))
        except (ValueError, ZeroDivisionError):
            continue
        if 0 < rate <= 240:
            return rate
    raise CorruptMedia("the video has no usable frame rate")


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
    """Run ffprobe on a local file and parse it. See :func:`parse_probe` for errors."""
    args = [
        find_tool("ffprobe"),
        "-v", "error",
        "-protocol_whitelist", "file",
        "-print_format", "json",
        "-show_format",
        "-show_streams",
        f"file:{path}",
    ]  # fmt: skip
    try:
        completed = subprocess.run(args, capture_output=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise CorruptMedia(f"ffprobe did not finish within {timeout_s:.0f} s") from exc
    except OSError as exc:
        raise FfmpegError(f"ffprobe could not start: {exc}") from exc
    stderr = completed.stderr.decode("utf-8", "replace")[-STDERR_TAIL_CHARS:]
    if completed.returncode != 0:
        container = sniff_container(path)
        if container is not None:
            raise CorruptMedia(f"the file starts like {container} but cannot be read: {stderr.strip()}")
        raise NotAVideo(f"ffprobe does not recognise the file as media: {stderr.strip()}")
    try:
        probe = json.loads(completed.stdout or b"{}")
    except json.JSONDecodeError as exc:
        raise FfmpegError("ffprobe printed something that is not JSON") from exc
    return parse_probe(probe)


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


ProgressCallback = Callable[[float], None]


def run_ffmpeg(
    args: Sequence[str],
    *,
    timeout_s: float,
    on_progress: ProgressCallback | None = None,
) -> None:
    """Run ``ffmpeg`` with ``args`` (everything after the binary's name).

    Global safety options are added in front. When ``on_progress`` is given,
    FFmpeg's ``-progress`` output is read and the callback receives the output
    time in seconds as it advances.

    Raises CorruptMedia when FFmpeg reports invalid data in the input, and
    FfmpegError for any other failure or the timeout (stderr tail included)."""
    command = [
        find_tool("ffmpeg"),
        "-hide_banner",
        "-nostdin",
        "-y",
        "-loglevel", "error",
        "-protocol_whitelist", "file,pipe",
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
            )
        except OSError as exc:
            raise FfmpegError(f"ffmpeg could not start: {exc}") from exc
        # A timer, not a check between progress lines: an FFmpeg that hangs prints
        # nothing, and reading its stdout would wait forever.
        timed_out = threading.Event()

        def stop_at_deadline() -> None:
            timed_out.set()
            process.kill()

        timer = threading.Timer(timeout_s, stop_at_deadline)
        timer.start()
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
        stderr = _tail(stderr_file)
    if timed_out.is_set() and process.returncode != 0:
        raise FfmpegError(f"ffmpeg did not finish within {timeout_s:.0f} s: {stderr}")
    if process.returncode != 0:
        if "Invalid data found" in stderr or "corrupt" in stderr.lower():
            raise CorruptMedia(f"FFmpeg could not decode the file: {stderr}")
        raise FfmpegError(f"ffmpeg exited with {process.returncode}: {stderr}")


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
