"""Hostile and broken uploads, made on demand, and a runner that sends them all
through a live vidpipe API.

Nothing here is committed as media. Each case's ``make(folder)`` writes one
file in well under a second: plain Python for the non-videos, the playlists
and the byte-level forgeries, FFmpeg's test sources (``lavfi``) for the few
real clips they start from. The same FFmpeg build gives the same bytes.

Each case names what must become of it:

* ``"api_4xx"``: ``POST /uploads`` refuses it with ``expected_http_status``;
* an error code (``NOT_A_VIDEO``, ``FORBIDDEN_REFERENCE``...): the upload is
  accepted and the job ends FAILED with that code and a readable message;
* ``"READY"``: odd but legitimate, the job must succeed.

The reference cases (playlists, scripts, an AVI carrying a playlist) point at
:class:`Targets`: ``/etc/passwd`` and a closed local port by default; the unit
tests point them at a canary pipe and a listening socket to prove that FFmpeg
never opens either.

Run ``python -m tests.hostile.corpus FOLDER`` to write every case there, or
``python -m tests.hostile.corpus --api-url URL`` to run the corpus against a
stack and print the table.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from PIL import Image

from vidpipe.adapters.ffmpeg.process import ffmpeg_environment, find_tool

API_4XX = "api_4xx"
READY = "READY"
# The stack's default MAX_DURATION_SECONDS (vidpipe.runtime.settings); the long cases exceed it.
STACK_MAX_DURATION_S = 1800.0
FFMPEG_TIMEOUT_S = 60


@dataclass(frozen=True)
class Targets:
    """What the reference cases point at: a local file FFmpeg must never open and
    an http URL it must never fetch. Port 9 (discard) on localhost is closed on a
    normal machine, so even a vulnerable FFmpeg would get nothing there."""

    local_file: str = "/etc/passwd"
    http_url: str = "http://127.0.0.1:9/x.ts"


DEFAULT_TARGETS = Targets()
Maker = Callable[[Path, Targets], bytes]


@dataclass(frozen=True)
class HostileCase:
    """One upload and its expected fate. ``thumbnails_completes`` marks the
    cases where only the transcode stage can tell (the duration limit, the
    missing tail): the thumbnails stage succeeds on them, the job still FAILs."""

    name: str
    filename: str
    content_type: str
    build: Maker = field(repr=False)
    expected: str
    description: str
    expected_http_status: int | None = None
    thumbnails_completes: bool = False

    def make(self, directory: Path, targets: Targets = DEFAULT_TARGETS) -> Path:
        """Write the case into ``directory`` as a file named after the case (no
        extension: the stages see uploads as ``source``, so FFmpeg cannot go by
        one either) and return its path."""
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / self.name
        path.write_bytes(self.build(directory, targets))
        return path


# --------------------------------------------------------------------------- making media


def _ffmpeg(*args: str) -> None:
    """Run FFmpeg for the generator (lavfi test sources): test code, not the
    restricted production path."""
    subprocess.run(
        [find_tool("ffmpeg"), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args],
        env=ffmpeg_environment(), check=True, capture_output=True, timeout=FFMPEG_TIMEOUT_S,
    )  # fmt: skip


def _clip(
    directory: Path,
    name: str,
    *,
    size: str = "64x36",
    rate: int = 10,
    seconds: float = 1.0,
    audio: bool = True,
    container_args: tuple[str, ...] = (),
    suffix: str = ".mp4",
    picture: str = "testsrc2",
) -> bytes:
    """A small H.264 (+ AAC) clip from FFmpeg's test sources."""
    out = directory / f".{name}{suffix}"
    sources = ["-f", "lavfi", "-i", f"{picture}=size={size}:rate={rate}:duration={seconds}"]
    if audio:
        sources += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"]
    _ffmpeg(
        *sources,
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
        *(["-c:a", "aac", "-shortest"] if audio else []),
        *container_args,
        str(out),
    )  # fmt: skip
    data = out.read_bytes()
    out.unlink()
    return data


def _top_level_boxes(data: bytes) -> list[tuple[bytes, int, int]]:
    """(type, offset, size) of an MP4's top-level boxes."""
    boxes, offset = [], 0
    while offset + 8 <= len(data):
        size = int.from_bytes(data[offset : offset + 4], "big")
        kind = data[offset + 4 : offset + 8]
        if size == 1:
            size = int.from_bytes(data[offset + 8 : offset + 16], "big")
        if size < 8:
            break
        boxes.append((kind, offset, size))
        offset += size
    return boxes


def _image(kind: str) -> bytes:
    picture = Image.new("RGB", (320, 180))
    for x in range(320):
        for y in range(0, 180, 6):
            picture.putpixel((x, y), (x % 256, y, 128))
    buffer = io.BytesIO()
    picture.save(buffer, kind)
    return buffer.getvalue()


# --------------------------------------------------------------------------- the cases' contents


def _zero_bytes(directory: Path, targets: Targets) -> bytes:
    return b""


def _random_bytes(directory: Path, targets: Targets) -> bytes:
    return random.Random(4).randbytes(200_000)


def _html(directory: Path, targets: Targets) -> bytes:
    return b"<!doctype html><html><head><title>holiday</title></head><body><video src=x></video></body></html>\n" * 50


def _text(directory: Path, targets: Targets) -> bytes:
    return b"Notes for the edit:\n- cut the first 3 s\n- louder music\n" * 40


def _png(directory: Path, targets: Targets) -> bytes:
    return _image("PNG")


def _jpeg(directory: Path, targets: Targets) -> bytes:
    return _image("JPEG")


def _mp4_without_index(directory: Path, targets: Targets) -> bytes:
    """A real MP4 (index written last, as a camera does) with its moov box removed:
    the container is recognisable, the media cannot be located."""
    data = _clip(directory, "no-index", seconds=2)
    return b"".join(data[offset : offset + size] for kind, offset, size in _top_level_boxes(data) if kind != b"moov")


def _mp4_cut_mid_data(directory: Path, targets: Targets) -> bytes:
    """The first 40 % of a moov-first (faststart) MP4: the header announces 6 s,
    the data stops after about two; only the length of the output tells."""
    data = _clip(directory, "cut", size="160x90", seconds=6, container_args=("-movflags", "+faststart"))
    return data[: len(data) * 40 // 100]


def _audio_only(directory: Path, targets: Targets) -> bytes:
    out = directory / ".audio.m4a"
    _ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=2", "-c:a", "aac", str(out))
    data = out.read_bytes()
    out.unlink()
    return data


def _mp3(directory: Path, targets: Targets) -> bytes:
    out = directory / ".audio.mp3"
    _ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=2", "-c:a", "libmp3lame", str(out))
    data = out.read_bytes()
    out.unlink()
    return data


def _single_frame(directory: Path, targets: Targets) -> bytes:
    return _clip(directory, "one-frame", size="320x180", rate=25, seconds=0.04, audio=False)


def _huge_dimensions(directory: Path, targets: Targets) -> bytes:
    """A genuine H.264 stream 16384 pixels wide (x264's maximum), two frames of one
    colour: 2 KB on disk, 16384x16 as far as any decoder is concerned."""
    out = directory / ".wide.mp4"
    _ffmpeg("-f", "lavfi", "-i", "color=c=blue:size=16384x16:rate=1:duration=2",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(out))  # fmt: skip
    data = out.read_bytes()
    out.unlink()
    return data


def _zero_frame_rate(directory: Path, targets: Targets) -> bytes:
    """An MP4 whose sample table gives every frame a duration of 0 (stts deltas
    patched): all frames at one instant, ffprobe's r_frame_rate is 1/0."""
    data = bytearray(_clip(directory, "zero-rate", seconds=2, audio=False, container_args=("-bf", "0")))
    stts = data.find(b"stts")
    entries = int.from_bytes(data[stts + 8 : stts + 12], "big")
    for entry in range(entries):
        struct.pack_into(">I", data, stts + 16 + 8 * entry, 0)
    return bytes(data)


def _absurd_frame_rate(directory: Path, targets: Targets) -> bytes:
    """The frames of a 25 fps clip restamped one tick apart at a 1/100000 time
    base (stream copy, no re-encode): 100,000 frames per second."""
    base = directory / ".base.mp4"
    base.write_bytes(_clip(directory, "base", seconds=2, audio=False, container_args=("-bf", "0")))
    out = directory / ".fast.mp4"
    _ffmpeg("-i", str(base), "-c", "copy", "-bsf:v", "setts=ts=N:duration=1:time_base=1/100000",
            "-video_track_timescale", "100000", str(out))  # fmt: skip
    data = out.read_bytes()
    base.unlink()
    out.unlink()
    return data


def _too_long(directory: Path, targets: Targets) -> bytes:
    """31 minutes of a still 16x16 picture at one frame per second: a few dozen
    KB, and longer than the stack's 30-minute limit, which the header says at once."""
    return _clip(directory, "long", size="16x16", rate=1, seconds=31 * 60, audio=False, picture="color")


def _forged_duration(directory: Path, targets: Targets) -> bytes:
    """A 2 s Matroska file whose Segment Info Duration element (ID 0x4489, an
    8-byte float in milliseconds) is patched to claim ten hours."""
    data = bytearray(_clip(directory, "forged", seconds=2, suffix=".mkv"))
    element = data.find(b"\x44\x89\x88")
    if element < 0:
        raise RuntimeError("FFmpeg wrote no 8-byte Duration element")
    struct.pack_into(">d", data, element + 3, 10 * 3600 * 1000.0)
    return bytes(data)


def _hls_playlist(url: str) -> bytes:
    return (
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n#EXT-X-MEDIA-SEQUENCE:0\n"
        f"#EXTINF:10.0,\n{url}\n#EXT-X-ENDLIST\n"
    ).encode()


def _hls_local_file(directory: Path, targets: Targets) -> bytes:
    return _hls_playlist(f"file://{targets.local_file}")


def _hls_http(directory: Path, targets: Targets) -> bytes:
    return _hls_playlist(targets.http_url)


def _ffconcat(directory: Path, targets: Targets) -> bytes:
    return f"ffconcat version 1.0\nfile 'file:{targets.local_file}'\nduration 10\n".encode()


def _sdp(directory: Path, targets: Targets) -> bytes:
    return (
        b"v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=capture\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        b"m=video 5004 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
    )


def _dash(directory: Path, targets: Targets) -> bytes:
    return (
        '<?xml version="1.0"?>\n<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" '
        'profiles="urn:mpeg:dash:profile:isoff-on-demand:2011" mediaPresentationDuration="PT10S">'
        f'<Period><AdaptationSet><Representation id="1" bandwidth="1000"><BaseURL>file://{targets.local_file}'
        "</BaseURL></Representation></AdaptationSet></Period></MPD>\n"
    ).encode()


def _avi_gab2_playlist(directory: Path, targets: Targets) -> bytes:
    """The known FFmpeg local-file/SSRF pattern, harmless version: a valid AVI
    whose subtitle stream's one GAB2 block holds an HLS playlist pointing at the
    target file. FFmpeg's AVI demuxer hands a GAB2 payload to whatever demuxer
    it looks like; builds before 3.3.2 (mid-2017) would open the playlist's
    target and mux its bytes into the output. FFmpeg 5.1 accepts only SRT and
    ASS there; our pipeline must refuse the file whichever build it runs."""
    return _avi_with_gab2(_hls_playlist(f"file://{targets.local_file}"))


def _avi_gab2_subtitles(directory: Path, targets: Targets) -> bytes:
    """The same AVI with what GAB2 is for, SRT subtitles: legitimate, must pass."""
    return _avi_with_gab2(b"1\n00:00:00,000 --> 00:00:01,000\nHello\n\n")


def _avi_with_gab2(subtitle_payload: bytes) -> bytes:
    """An AVI (16x16 raw BGR video, ten frames at 10 fps) with a second, subtitle
    ('txts') stream whose one chunk is a GAB2 block carrying ``subtitle_payload``."""
    width, height, frames = 16, 16, 10
    frame = bytes([0, 0, 255]) * width * height  # bottom-up BGR: a red picture
    title = "English".encode("utf-16-le") + b"\0\0"
    gab2 = (
        b"GAB2\0" + struct.pack("<H", 2) + struct.pack("<I", len(title)) + title
        + struct.pack("<H", 4) + struct.pack("<I", len(subtitle_payload)) + subtitle_payload
    )  # fmt: skip
    avih = struct.pack("<14I", 100_000, 0, 0, 0x10, frames, 0, 2, len(frame), width, height, 0, 0, 0, 0)
    strh_video = struct.pack(
        "<4s4sIHHIIIIIIIIhhhh", b"vids", b"\0\0\0\0", 0, 0, 0, 0, 1, 10, 0, frames, len(frame), 0xFFFFFFFF, 0,
        0, 0, width, height,
    )  # fmt: skip
    strf_video = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, len(frame), 0, 0, 0, 0)
    strh_text = struct.pack(
        "<4s4sIHHIIIIIIIIhhhh", b"txts", b"\0\0\0\0", 0, 0, 0, 0, 1, 10, 0, 1, 0, 0xFFFFFFFF, 0, 0, 0, 0, 0
    )
    header = _riff_list(
        b"hdrl",
        _riff_chunk(b"avih", avih),
        _riff_list(b"strl", _riff_chunk(b"strh", strh_video), _riff_chunk(b"strf", strf_video)),
        _riff_list(b"strl", _riff_chunk(b"strh", strh_text), _riff_chunk(b"strf", b"\0" * 4)),
    )
    movie = _riff_list(b"movi", _riff_chunk(b"01tx", gab2), *(_riff_chunk(b"00db", frame) for _ in range(frames)))
    body = b"AVI " + header + movie
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _riff_chunk(fourcc: bytes, data: bytes) -> bytes:
    return fourcc + struct.pack("<I", len(data)) + data + (b"\0" if len(data) % 2 else b"")


def _riff_list(kind: bytes, *parts: bytes) -> bytes:
    body = kind + b"".join(parts)
    return b"LIST" + struct.pack("<I", len(body)) + body


def _small_video(directory: Path, targets: Targets) -> bytes:
    return _clip(directory, "small", size="160x90", seconds=1)


# --------------------------------------------------------------------------- the corpus

VIDEO_MP4 = "video/mp4"

CASES: tuple[HostileCase, ...] = (
    # Refused by the API before anything is uploaded.
    HostileCase(
        "zero_bytes", "empty.mp4", VIDEO_MP4, _zero_bytes, API_4XX, "an empty file (size 0)", expected_http_status=400
    ),
    HostileCase(
        "name_path_traversal",
        "../../etc/passwd.mp4",
        VIDEO_MP4,
        _small_video,
        API_4XX,
        "a filename that is a relative path",
        expected_http_status=400,
    ),
    HostileCase(
        "name_control_characters",
        "clip\r\nX-Injected: 1\x1b[2J.mp4",
        VIDEO_MP4,
        _small_video,
        API_4XX,
        "a filename with CR, LF and an escape sequence",
        expected_http_status=400,
    ),
    HostileCase(
        "name_bidi_override",
        "holiday\u202egnp.mp4",
        VIDEO_MP4,
        _small_video,
        API_4XX,
        "a filename whose right-to-left override makes it display as '...mp4.png'",
        expected_http_status=400,
    ),
    HostileCase(
        "name_300_unicode_chars",
        "é" * 296 + ".mp4",
        VIDEO_MP4,
        _small_video,
        API_4XX,
        "a filename of 300 characters",
        expected_http_status=400,
    ),
    HostileCase(
        "type_text_plain",
        "notes.txt",
        "text/plain",
        _text,
        API_4XX,
        "a content type that admits it is text",
        expected_http_status=415,
    ),
    # Odd but legitimate.
    HostileCase(
        "name_200_cjk_chars",
        "夏休みの思い出" * 28 + ".mp4",
        VIDEO_MP4,
        _small_video,
        READY,
        "a 200-character Japanese filename (592 bytes of UTF-8)",
    ),
    HostileCase(
        "single_frame", "one_frame.mp4", VIDEO_MP4, _single_frame, READY, "a video of exactly one frame (0.04 s)"
    ),
    HostileCase(
        "avi_gab2_subtitles",
        "divx.avi",
        "video/x-msvideo",
        _avi_gab2_subtitles,
        READY,
        "an AVI with SRT subtitles in a GAB2 chunk, what the pattern below abuses",
    ),
    # Not media, or not video.
    HostileCase(
        "random_bytes", "holiday.mp4", VIDEO_MP4, _random_bytes, "NOT_A_VIDEO", "200 KB of random bytes named .mp4"
    ),
    HostileCase("html_page", "clip.mp4", VIDEO_MP4, _html, "NOT_A_VIDEO", "an HTML page sent as video/mp4"),
    HostileCase("plain_text", "notes.mp4", VIDEO_MP4, _text, "NOT_A_VIDEO", "plain text sent as video/mp4"),
    HostileCase(
        "png_as_mp4",
        "photo.mp4",
        VIDEO_MP4,
        _png,
        "NOT_A_VIDEO",
        "a PNG picture sent as video/mp4 (the content type lies)",
    ),
    HostileCase("jpeg_as_mp4", "snapshot.mp4", VIDEO_MP4, _jpeg, "NOT_A_VIDEO", "a JPEG picture named .mp4"),
    HostileCase(
        "audio_only_m4a", "song.mp4", VIDEO_MP4, _audio_only, "NO_VIDEO_STREAM", "an AAC-only MP4 (m4a) named .mp4"
    ),
    HostileCase("mp3_as_video", "track.mp4", VIDEO_MP4, _mp3, "NO_VIDEO_STREAM", "an MP3 file named .mp4"),
    # Broken.
    HostileCase(
        "mp4_without_index",
        "camera.mp4",
        VIDEO_MP4,
        _mp4_without_index,
        "CORRUPT_MEDIA",
        "an MP4 cut before its index (moov box gone)",
    ),
    HostileCase(
        "mp4_cut_mid_data",
        "upload_interrupted.mp4",
        VIDEO_MP4,
        _mp4_cut_mid_data,
        "CORRUPT_MEDIA",
        "the first 40 % of a moov-first MP4: header intact, data missing",
        thumbnails_completes=True,
    ),
    # Outside what we encode.
    HostileCase(
        "huge_dimensions",
        "panorama.mp4",
        VIDEO_MP4,
        _huge_dimensions,
        "UNSUPPORTED_DIMENSIONS",
        "a genuine 16384x16 H.264 stream",
    ),
    HostileCase(
        "zero_frame_rate",
        "frozen.mp4",
        VIDEO_MP4,
        _zero_frame_rate,
        "UNSUPPORTED_FRAME_RATE",
        "an MP4 whose frames all have duration 0 (r_frame_rate 1/0)",
    ),
    HostileCase(
        "absurd_frame_rate",
        "fast.mp4",
        VIDEO_MP4,
        _absurd_frame_rate,
        "UNSUPPORTED_FRAME_RATE",
        "frames restamped to 100,000 per second (stream copy)",
    ),
    HostileCase(
        "too_long",
        "lecture.mp4",
        VIDEO_MP4,
        _too_long,
        "MEDIA_TOO_LONG",
        "31 minutes at 16x16, 1 fps (tens of KB), over the 30-minute limit",
        thumbnails_completes=True,
    ),
    HostileCase(
        "forged_duration",
        "movie.mkv",
        "video/x-matroska",
        _forged_duration,
        "MEDIA_TOO_LONG",
        "a 2 s Matroska file whose header claims 10 hours",
        thumbnails_completes=True,
    ),
    # Files that would make FFmpeg open other files or URLs.
    HostileCase(
        "hls_local_file",
        "playlist.mp4",
        VIDEO_MP4,
        _hls_local_file,
        "FORBIDDEN_REFERENCE",
        "an HLS playlist whose segment is a local file",
    ),
    HostileCase(
        "hls_http",
        "stream.mp4",
        VIDEO_MP4,
        _hls_http,
        "FORBIDDEN_REFERENCE",
        "an HLS playlist whose segment is an http URL on localhost (SSRF)",
    ),
    HostileCase(
        "ffconcat_local_file",
        "joined.mp4",
        VIDEO_MP4,
        _ffconcat,
        "FORBIDDEN_REFERENCE",
        "an FFmpeg concat script naming a local file",
    ),
    HostileCase(
        "sdp_rtp",
        "camera_feed.mp4",
        VIDEO_MP4,
        _sdp,
        "FORBIDDEN_REFERENCE",
        "an SDP description that would make FFmpeg listen for RTP",
    ),
    HostileCase(
        "dash_local_file",
        "manifest.mp4",
        VIDEO_MP4,
        _dash,
        "FORBIDDEN_REFERENCE",
        "a DASH manifest whose BaseURL is a local file",
    ),
    HostileCase(
        "avi_gab2_playlist",
        "film.avi",
        "video/x-msvideo",
        _avi_gab2_playlist,
        "FORBIDDEN_REFERENCE",
        "an AVI whose GAB2 subtitle chunk holds an HLS playlist naming a local file",
    ),
)


def case(name: str) -> HostileCase:
    """The case called ``name``. Raises KeyError."""
    for candidate in CASES:
        if candidate.name == name:
            return candidate
    raise KeyError(name)


# --------------------------------------------------------------------------- running against a stack

FINAL_STATUSES = frozenset({"READY", "FAILED", "EXPIRED"})


def run_corpus(
    api_url: str,
    *,
    api_token: str | None = None,
    cases: tuple[HostileCase, ...] = CASES,
    targets: Targets = DEFAULT_TARGETS,
    timeout_s: float = 240.0,
    poll_s: float = 1.0,
) -> list[dict[str, Any]]:
    """Send every case through the HTTP API as a browser would (``POST /uploads``,
    then the presigned POST to S3), all first, then wait for every job. The
    reference cases point at ``targets``.

    Returns one row per case: ``case``, ``expected``, ``outcome`` (``api_4xx``,
    ``READY``, ``FAILED``, ``EXPIRED``, ``UPLOAD_REFUSED`` when S3 refused the
    bytes, or ``STUCK`` when the job had not ended within ``timeout_s``),
    ``http_status``, ``code``, ``message``, ``seconds`` (from the first API call
    to the end), ``job_id`` and ``status_history``. Network errors propagate."""
    session = requests.Session()
    if api_token:
        session.headers["Authorization"] = f"Bearer {api_token}"
    base = api_url.rstrip("/")
    rows: dict[str, dict[str, Any]] = {}
    started: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="vidpipe-hostile-") as folder:
        for hostile in cases:
            path = hostile.make(Path(folder), targets)
            content = path.read_bytes()
            row: dict[str, Any] = {
                "case": hostile.name,
                "expected": hostile.expected,
                "job_id": None,
                "http_status": None,
                "code": None,
                "message": None,
                "status_history": [],
            }
            rows[hostile.name] = row
            started[hostile.name] = time.monotonic()
            response = session.post(
                f"{base}/uploads",
                json={"filename": hostile.filename, "content_type": hostile.content_type, "size": len(content)},
                timeout=30,
            )
            row["http_status"] = response.status_code
            if response.status_code != 201:
                error = _error_of(response)
                row.update(
                    outcome=API_4XX if 400 <= response.status_code < 500 else f"HTTP_{response.status_code}",
                    code=error.get("code"),
                    message=error.get("message"),
                    seconds=round(time.monotonic() - started[hostile.name], 2),
                )
                continue
            created = response.json()
            row["job_id"] = created["job_id"]
            upload = created["upload"]
            # Like a browser's FormData: the policy fields, then the file, last.
            sent = requests.post(
                upload["url"],
                data=upload["fields"],
                files={"file": ("upload", content, hostile.content_type)},
                timeout=60,
            )
            if sent.status_code not in (200, 201, 204):
                row.update(
                    outcome="UPLOAD_REFUSED",
                    code=f"S3_{sent.status_code}",
                    message=sent.text[:300],
                    seconds=round(time.monotonic() - started[hostile.name], 2),
                )
        _wait_for_jobs(session, base, rows, started, timeout_s=timeout_s, poll_s=poll_s)
    return [rows[hostile.name] for hostile in cases]


def _wait_for_jobs(
    session: requests.Session,
    base: str,
    rows: dict[str, dict[str, Any]],
    started: dict[str, float],
    *,
    timeout_s: float,
    poll_s: float,
) -> None:
    deadline = time.monotonic() + timeout_s
    waiting = {name for name, row in rows.items() if row["job_id"] and "outcome" not in row}
    while waiting:
        for name in sorted(waiting):
            row = rows[name]
            response = session.get(f"{base}/jobs/{row['job_id']}", timeout=30)
            response.raise_for_status()
            job = response.json()
            if not row["status_history"] or row["status_history"][-1] != job["status"]:
                row["status_history"].append(job["status"])
            if job["status"] in FINAL_STATUSES:
                error = job.get("error") or {}
                row.update(
                    outcome=job["status"],
                    code=error.get("code"),
                    message=error.get("message"),
                    seconds=round(time.monotonic() - started[name], 2),
                )
                waiting.discard(name)
        if waiting and time.monotonic() > deadline:
            for name in waiting:
                rows[name].update(outcome="STUCK", seconds=round(time.monotonic() - started[name], 2))
            return
        if waiting:
            time.sleep(poll_s)


def _error_of(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {"code": None, "message": response.text[:300]}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {"code": None, "message": json.dumps(body)[:300]}


def outcome_matches(hostile: HostileCase, row: dict[str, Any]) -> bool:
    """Whether a :func:`run_corpus` row is what the case expects."""
    if hostile.expected == API_4XX:
        return row["outcome"] == API_4XX and row["http_status"] == hostile.expected_http_status
    if hostile.expected == READY:
        return row["outcome"] == READY
    return row["outcome"] == "FAILED" and row["code"] == hostile.expected


def format_table(rows: list[dict[str, Any]]) -> str:
    """A Markdown table of :func:`run_corpus` rows."""
    lines = ["| case | expected | outcome | code | seconds | message |", "|---|---|---|---|---|---|"]
    for row in rows:
        outcome = f"{row['outcome']} ({row['http_status']})" if row["outcome"] == API_4XX else row["outcome"]
        message = (row.get("message") or "").replace("|", "\\|").replace("\n", " ")[:140]
        lines.append(
            f"| {row['case']} | {row['expected']} | {outcome} | {row.get('code') or ''} | "
            f"{row.get('seconds', '')} | {message} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", nargs="?", type=Path, help="write every case into this folder")
    parser.add_argument("--api-url", help="run the corpus against this API and print the table")
    parser.add_argument("--api-token")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args(argv)
    if args.api_url:
        rows = run_corpus(args.api_url, api_token=args.api_token)
        print(json.dumps(rows, indent=2, ensure_ascii=False) if args.json else format_table(rows))
        return 0 if all(outcome_matches(case(row["case"]), row) for row in rows) else 1
    if args.folder is None:
        parser.error("give a folder or --api-url")
    for hostile in CASES:
        path = hostile.make(args.folder)
        print(f"{path}  {path.stat().st_size:>9}  {hostile.expected:<24} {hostile.description}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
