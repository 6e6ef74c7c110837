"""The FFmpeg adapter's safety rules without real media: what parse_probe
accepts, what refuse_references turns away, how inputs must be built, the
resource limits a child gets, and how failures are classified (with small
shell scripts standing in for ffmpeg and ffprobe)."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest

import vidpipe.adapters.ffmpeg.limits as limits_module
from vidpipe.adapters.ffmpeg import probe as probe_module
from vidpipe.adapters.ffmpeg.inputs import input_args
from vidpipe.adapters.ffmpeg.limits import memory_limit_mb
from vidpipe.adapters.ffmpeg.probe import refuse_references
from vidpipe.adapters.ffmpeg.process import run_ffmpeg
from vidpipe.domain.errors import (
    CorruptMedia,
    FfmpegError,
    ForbiddenReference,
    MemoryLimitExceeded,
    NotAVideo,
    NoVideoStream,
    UnsupportedDimensions,
    UnsupportedFrameRate,
)
from vidpipe.domain.source_info import CODEC_WHITELIST, parse_probe

MP4 = "mov,mp4,m4a,3gp,3g2,mj2"


def probe(
    *,
    format_name: str = MP4,
    width: int = 1280,
    height: int = 720,
    avg_frame_rate: str = "30/1",
    r_frame_rate: str = "30/1",
    duration: str = "6.0",
    audio: bool = True,
    video: bool = True,
) -> dict:
    streams = []
    if video:
        streams.append(
            {
                "codec_type": "video",
                "codec_name": "h264",
                "width": width,
                "height": height,
                "avg_frame_rate": avg_frame_rate,
                "r_frame_rate": r_frame_rate,
            }
        )
    if audio:
        streams.append({"codec_type": "audio", "codec_name": "aac", "channels": 2})
    return {"format": {"format_name": format_name, "duration": duration}, "streams": streams}


# ------------------------------------------------------------------ parse_probe


def test_GIVEN_a_plain_mp4_WHEN_parsed_THEN_its_demuxer_is_mov() -> None:
    info = parse_probe(probe())

    assert info.demuxer == "mov"
    assert info.frame_rate == 30


@pytest.mark.parametrize(
    ("format_name", "error", "words"),
    [
        ("hls", ForbiddenReference, "playlist or script"),
        ("concat", ForbiddenReference, "playlist or script"),
        ("mp3", NoVideoStream, "audio file"),
        ("png_pipe", NotAVideo, "still image"),
        ("image2", NotAVideo, "still image"),
        ("tty", NotAVideo, "text"),
        ("h264", NotAVideo, "not a video container we accept"),
    ],
)
def test_GIVEN_a_format_we_refuse_WHEN_parsed_THEN_its_own_error(
    format_name: str, error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words):
        parse_probe(probe(format_name=format_name))


def test_GIVEN_audio_only_WHEN_parsed_THEN_no_video_stream() -> None:
    with pytest.raises(NoVideoStream, match="audio but no video") as caught:
        parse_probe(probe(video=False))

    assert caught.value.code == "NO_VIDEO_STREAM"
    assert isinstance(caught.value, NotAVideo)  # callers catching NotAVideo still do


@pytest.mark.parametrize(("width", "height"), [(1, 720), (720, 1), (8193, 16), (16, 16384), (8192, 8192)])
def test_GIVEN_a_size_outside_our_range_WHEN_parsed_THEN_unsupported_dimensions(width: int, height: int) -> None:
    with pytest.raises(UnsupportedDimensions):
        parse_probe(probe(width=width, height=height))


@pytest.mark.parametrize(("width", "height"), [(2, 2), (7680, 4320), (4320, 7680), (8192, 2048)])
def test_GIVEN_a_size_at_our_limits_WHEN_parsed_THEN_accepted(width: int, height: int) -> None:
    assert parse_probe(probe(width=width, height=height)).width == width


@pytest.mark.parametrize(
    ("avg", "base", "words"),
    [
        ("29/6", "1/0", "do not advance"),  # every frame at one instant
        ("0/0", "0/0", "no usable frame rate"),
        ("100000/1", "100000/1", "100000 frames per second"),
        ("0/0", "1000/1", "1000 frames per second"),
    ],
)
def test_GIVEN_a_frame_rate_we_cannot_use_WHEN_parsed_THEN_unsupported_frame_rate(
    avg: str, base: str, words: str
) -> None:
    with pytest.raises(UnsupportedFrameRate, match=words):
        parse_probe(probe(avg_frame_rate=avg, r_frame_rate=base))


@pytest.mark.parametrize(
    ("avg", "base", "expected"),
    [("30000/1001", "30000/1001", Fraction(30000, 1001)), ("0/0", "25/1", Fraction(25)), ("240/1", "240/1", 240)],
)
def test_GIVEN_a_usable_frame_rate_WHEN_parsed_THEN_kept(avg: str, base: str, expected: Fraction) -> None:
    assert parse_probe(probe(avg_frame_rate=avg, r_frame_rate=base)).frame_rate == expected


def test_GIVEN_no_duration_WHEN_parsed_THEN_corrupt_media() -> None:
    with pytest.raises(CorruptMedia, match="duration"):
        parse_probe(probe(duration="N/A"))


# ------------------------------------------------------------------ refuse_references


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"#EXTM3U\n#EXTINF:1,\nfile:///etc/passwd\n", "HLS playlist"),
        (b"\xef\xbb\xbf\r\n  #EXTM3U\n#EXTINF:1,\nhttp://127.0.0.1/x.ts\n", "HLS playlist"),
        (b"ffconcat version 1.0\nfile '/etc/passwd'\n", "concat script"),
        (b"v=0\r\no=- 0 0 IN IP4 1.2.3.4\r\nc=IN IP4 1.2.3.4\r\nm=video 5004 RTP/AVP 96\r\n", "SDP"),
        (b'<?xml version="1.0"?>\n<MPD profiles="urn:mpeg:dash:profile:isoff-live:2011">', "DASH"),
        (b"<?xml version='1.0'?><CompositionPlaylist xmlns='http://www.smpte-ra.org'>", "IMF"),
    ],
)
def test_GIVEN_a_playlist_or_script_WHEN_checked_THEN_forbidden_reference(
    tmp_path: Path, content: bytes, words: str
) -> None:
    upload = tmp_path / "source"
    upload.write_bytes(content)

    with pytest.raises(ForbiddenReference, match=words):
        refuse_references(upload)


def test_GIVEN_an_avi_with_a_playlist_across_a_read_boundary_WHEN_checked_THEN_found_at_its_offset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN reads of 64 bytes, and the signature straddling the second boundary
    monkeypatch.setattr(probe_module, "_SCAN_CHUNK_BYTES", 64)
    head = b"RIFF\x00\x01\x00\x00AVI LIST" + b"\x00" * (125 - 16)
    upload = tmp_path / "source"
    upload.write_bytes(head + b"#EXTM3U\nfile:///etc/passwd\n" + b"\x00" * 300)

    with pytest.raises(ForbiddenReference, match="at byte 125"):
        refuse_references(upload)


@pytest.mark.parametrize(
    "content",
    [
        b"\x00\x00\x00\x18ftypisom" + b"\x00" * 100 + b"#EXTM3U in a comment",  # only AVI is read through
        b"RIFF\x00\x01\x00\x00AVI LIST" + b"\x00" * 4000,
        b"plain text that mentions ffconcat version 1.0 later on",
        b"",
    ],
)
def test_GIVEN_media_or_text_without_a_leading_playlist_WHEN_checked_THEN_left_to_ffprobe(
    tmp_path: Path, content: bytes
) -> None:
    upload = tmp_path / "source"
    upload.write_bytes(content)

    # None is refuse_references' "not a playlist": the file goes on, untouched, to ffprobe's judgement
    assert refuse_references(upload) is None
    assert upload.read_bytes() == content


# ------------------------------------------------------------------ inputs


def test_GIVEN_a_probed_demuxer_WHEN_input_args_built_THEN_protocol_and_format_restricted() -> None:
    assert input_args(Path("/scratch/source"), "matroska") == [
        "-protocol_whitelist", "file", "-f", "matroska", "-format_whitelist", "matroska",
        "-codec_whitelist", CODEC_WHITELIST, "-i", "file:/scratch/source",
    ]  # fmt: skip


def test_GIVEN_an_avi_WHEN_input_args_built_THEN_only_its_gab2_subtitle_demuxers_may_nest() -> None:
    assert input_args(Path("/s"), "avi")[2:6] == ["-f", "avi", "-format_whitelist", "avi,srt,ass"]


@pytest.mark.parametrize("demuxer", ["hls", "concat", "lavfi", "image2", ""])
def test_GIVEN_an_unsafe_demuxer_WHEN_input_args_built_THEN_value_error(demuxer: str) -> None:
    with pytest.raises(ValueError):
        input_args(Path("/scratch/source"), demuxer)


@pytest.mark.parametrize(
    "args",
    [
        ["-i", "file:/scratch/source", "out.mp4"],
        ["-f", "mov", "-format_whitelist", "mov", "-i", "file:/scratch/source", "out.mp4"],
        ["-protocol_whitelist", "file", "-f", "mov", "-i", "file:/scratch/source", "out.mp4"],
        ["-protocol_whitelist", "file", "-f", "hls", "-format_whitelist", "hls", "-i", "file:/s", "out.mp4"],
        ["-protocol_whitelist", "file", "-f", "mov", "-format_whitelist", "mov,hls", "-i", "file:/s", "o.mp4"],
        ["-protocol_whitelist", "file,http", "-f", "mov", "-format_whitelist", "mov", "-i", "file:/s", "o.mp4"],
        ["-protocol_whitelist", "file", "-f", "mov", "-format_whitelist", "mov", "-i", "/s", "out.mp4"],
        [*input_args(Path("/a"), "mov"), "-f", "lavfi", "-i", "testsrc", "out.mp4"],
    ],
)
def test_GIVEN_an_unrestricted_input_WHEN_ffmpeg_run_THEN_value_error_before_it_starts(
    args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FFMPEG_PATH", "/nonexistent/ffmpeg")  # would fail differently if reached

    with pytest.raises(ValueError, match="not restricted"):
        run_ffmpeg(args, timeout_s=5)


# ------------------------------------------------------------------ limits


def test_GIVEN_no_setting_WHEN_memory_limit_read_THEN_base_plus_a_share_per_core(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("FFMPEG_MEMORY_LIMIT_MB", raising=False)
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", raising=False)
    monkeypatch.setattr(limits_module, "_cpu_count", lambda: 6)

    assert memory_limit_mb() == 1536 + 6 * 512


@pytest.mark.parametrize(("function_mb", "expected"), [("1024", 1024), ("10240", 1536 + 6 * 512)])
def test_GIVEN_a_lambda_function_WHEN_memory_limit_read_THEN_never_above_its_memory(
    function_mb: str, expected: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FFMPEG_MEMORY_LIMIT_MB", raising=False)
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", function_mb)
    monkeypatch.setattr(limits_module, "_cpu_count", lambda: 6)

    assert memory_limit_mb() == expected


@pytest.mark.parametrize(("raw", "expected"), [("4096", 4096), ("0", None), (" 3000 ", 3000)])
def test_GIVEN_a_setting_WHEN_memory_limit_read_THEN_it_wins(
    raw: str, expected: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FFMPEG_MEMORY_LIMIT_MB", raw)

    assert memory_limit_mb() == expected


def test_GIVEN_a_malformed_setting_WHEN_memory_limit_read_THEN_ffmpeg_error_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FFMPEG_MEMORY_LIMIT_MB", "2GB")

    with pytest.raises(FfmpegError, match="FFMPEG_MEMORY_LIMIT_MB"):
        memory_limit_mb()


def test_GIVEN_limits_WHEN_a_child_starts_THEN_it_runs_under_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FFMPEG_MEMORY_LIMIT_MB", "3000")
    limits = limits_module.process_limits(timeout_s=10)
    show = (
        "import json, resource; print(json.dumps([resource.getrlimit(resource.RLIMIT_AS), "
        "resource.getrlimit(resource.RLIMIT_CPU)]))"
    )

    shown = subprocess.run(
        [sys.executable, "-c", show], preexec_fn=limits.apply, capture_output=True, text=True, check=True
    )

    address_space, cpu = json.loads(shown.stdout)
    assert address_space == [3000 * 2**20, 3000 * 2**20]
    assert cpu[0] == limits.cpu_seconds >= 10
    assert resource.getrlimit(resource.RLIMIT_AS)[0] != 3000 * 2**20  # the parent is untouched


def test_GIVEN_the_default_WHEN_a_child_starts_THEN_it_runs_19_nicer_than_its_function(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("FFMPEG_NICENESS", raising=False)
    limits = limits_module.process_limits(timeout_s=10)

    shown = subprocess.run(
        [sys.executable, "-c", "import os; print(os.nice(0))"],
        preexec_fn=limits.apply,
        capture_output=True,
        text=True,
        check=True,
    )

    # The kernel caps niceness at 19: a function already running nicer gets no further.
    assert int(shown.stdout) == min(19, os.nice(0) + 19)


@pytest.mark.parametrize(("setting", "expected"), [("0", 0), ("7", 7), (" 19 ", 19)])
def test_GIVEN_a_niceness_setting_WHEN_limits_made_THEN_it_is_used(
    monkeypatch: pytest.MonkeyPatch, setting: str, expected: int
) -> None:
    monkeypatch.setenv("FFMPEG_NICENESS", setting)

    assert limits_module.process_limits(timeout_s=10).niceness == expected


@pytest.mark.parametrize("setting", ["low", "-5", "20"])
def test_GIVEN_a_bad_niceness_setting_WHEN_limits_made_THEN_ffmpeg_error_naming_it(
    monkeypatch: pytest.MonkeyPatch, setting: str
) -> None:
    monkeypatch.setenv("FFMPEG_NICENESS", setting)

    with pytest.raises(FfmpegError, match="FFMPEG_NICENESS"):
        limits_module.process_limits(timeout_s=10)


# ------------------------------------------------------------------ failures, with stand-in binaries


def fake_tool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, script: str) -> None:
    tool = tmp_path / name
    tool.write_text("#!/bin/sh\n" + script + "\n")
    tool.chmod(0o755)
    monkeypatch.setenv(f"{name.upper()}_PATH", str(tool))


ARGS = [*input_args(Path("/scratch/job/source"), "mov"), "-f", "null", "-"]


@pytest.mark.parametrize(
    ("script", "error", "words"),
    [
        ("kill -SEGV $$", CorruptMedia, "crashed \\(SIGSEGV\\)"),
        ("kill -ABRT $$", CorruptMedia, "crashed \\(SIGABRT\\)"),
        ("echo 'x264 [error]: malloc of size 5529668 failed' >&2; exit 1", MemoryLimitExceeded, "MiB of memory"),
        ("echo 'Failed to inject frame: Cannot allocate memory' >&2; exit 1", MemoryLimitExceeded, "MiB of memory"),
        ("kill -XCPU $$", FfmpegError, "CPU time limit"),
        ("echo '[hls @ 0x55d0] Format not on whitelist' >&2; exit 0", ForbiddenReference, "besides itself"),
        ("echo \"Protocol 'http' not on whitelist 'file'!\" >&2; exit 1", ForbiddenReference, "besides itself"),
        (
            "echo 'file:/scratch/job/source: Invalid data found when processing input' >&2; exit 1",
            CorruptMedia,
            "could not decode the file: the upload: Invalid data",
        ),
        ("echo 'Unknown encoder libx264' >&2; exit 1", FfmpegError, "memory limit 2048 MiB"),
    ],
)
def test_GIVEN_an_ffmpeg_that_fails_so_WHEN_run_THEN_classified(
    script: str, error: type[Exception], words: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FFMPEG_MEMORY_LIMIT_MB", "2048")
    fake_tool(tmp_path, monkeypatch, "ffmpeg", script)

    with pytest.raises(error, match=words) as caught:
        run_ffmpeg(ARGS, timeout_s=10)

    assert "/scratch/job" not in str(caught.value)


def test_GIVEN_an_ffmpeg_that_hangs_WHEN_run_THEN_killed_at_the_timeout_as_ffmpeg_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_tool(tmp_path, monkeypatch, "ffmpeg", "exec sleep 30")

    with pytest.raises(FfmpegError, match="within 1 s"):
        run_ffmpeg(ARGS, timeout_s=1)


def test_GIVEN_an_ffprobe_that_runs_out_of_memory_WHEN_probing_THEN_memory_limit_exceeded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FFMPEG_MEMORY_LIMIT_MB", "2048")
    fake_tool(tmp_path, monkeypatch, "ffprobe", "echo '[h264 @ 0x1] guess_dc() is out of memory' >&2; exit 1")
    upload = tmp_path / "source"
    upload.write_bytes(b"\x00\x00\x00\x18ftypisom")

    with pytest.raises(MemoryLimitExceeded, match="ffprobe needed more than the 2048 MiB"):
        probe_module.probe_media(upload, timeout_s=10)
