"""FFmpeg defence in depth, with the pinned FFmpeg: the processes we start see
none of the function's environment (its AWS credentials above all), and they
may open only the decoders of the codecs we accept."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from vidpipe.adapters.ffmpeg.inputs import input_args
from vidpipe.adapters.ffmpeg.probe import probe_media
from vidpipe.adapters.ffmpeg.process import find_tool, run_ffmpeg
from vidpipe.domain.errors import UnsupportedCodec
from vidpipe.domain.source_info import CODEC_WHITELIST

pytestmark = pytest.mark.ffmpeg

SAMPLES = Path(__file__).resolve().parents[2] / "sample_media"


def make(path: Path, *args: str) -> Path:
    subprocess.run([find_tool("ffmpeg"), "-v", "error", "-y", *args, str(path)], check=True, timeout=60)
    return path


def test_GIVEN_the_functions_credentials_WHEN_ffmpeg_runs_THEN_its_process_environment_has_none_of_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, f"fake-{name.lower()}")
    seen: list[dict[str, str]] = []
    real_popen = subprocess.Popen

    def popen_and_read_environ(*args: Any, **kwargs: Any) -> subprocess.Popen:
        process = real_popen(*args, **kwargs)
        # -re keeps FFmpeg reading at the clip's own pace, so it is alive here.
        raw = Path(f"/proc/{process.pid}/environ").read_bytes()
        seen.append(dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item))
        return process

    monkeypatch.setattr(subprocess, "Popen", popen_and_read_environ)

    run_ffmpeg(
        ["-re", *input_args(SAMPLES / "long_20s_640x360.mp4", "mov"), "-t", "1", "-f", "null", "-"], timeout_s=60
    )

    [environment] = seen
    assert environment["GCONV_PATH"] == "/dev/null"
    assert "PATH" in environment
    assert not [name for name in environment if name.startswith("AWS_")]


def test_GIVEN_a_video_in_a_codec_outside_the_list_WHEN_probed_THEN_unsupported_codec(tmp_path: Path) -> None:
    upload = make(tmp_path / "source", "-f", "lavfi", "-i", "testsrc=s=64x64:d=1", "-c:v", "ffv1", "-f", "matroska")

    with pytest.raises(UnsupportedCodec, match="ffv1"):
        probe_media(upload)


def test_GIVEN_a_decoder_outside_the_list_WHEN_ffmpeg_reads_the_input_THEN_ffmpeg_refuses_it_with_our_code(
    tmp_path: Path,
) -> None:
    # Not the probe's verdict: FFmpeg itself refuses to open the decoder.
    upload = make(tmp_path / "source", "-f", "lavfi", "-i", "testsrc=s=64x64:d=1", "-c:v", "ffv1", "-f", "matroska")

    with pytest.raises(UnsupportedCodec, match="ffv1 decoder"):
        run_ffmpeg([*input_args(upload, "matroska"), "-f", "null", "-"], timeout_s=60)


def test_GIVEN_audio_in_a_codec_outside_the_list_WHEN_probed_THEN_unsupported_codec(tmp_path: Path) -> None:
    upload = make(
        tmp_path / "source",
        "-f",
        "lavfi",
        "-i",
        "testsrc=s=64x64:d=1",
        "-f",
        "lavfi",
        "-i",
        "sine=d=1",
        "-c:v",
        "mpeg4",
        "-c:a",
        "adpcm_ima_wav",
        "-f",
        "avi",
    )

    with pytest.raises(UnsupportedCodec, match="adpcm_ima_wav"):
        probe_media(upload)


@pytest.mark.parametrize("clip", sorted(path.name for path in SAMPLES.glob("*.mp4")))
def test_GIVEN_the_sample_clips_WHEN_probed_and_decoded_under_the_allow_list_THEN_they_pass(
    clip: str, tmp_path: Path
) -> None:
    source = probe_media(SAMPLES / clip)
    # framecrc: one line per decoded frame, so the count proves the decoder really ran
    frame_list = tmp_path / "frames.crc"

    run_ffmpeg(
        [*input_args(SAMPLES / clip, source.demuxer), "-map", "0:v:0", "-t", "1", "-f", "framecrc", str(frame_list)],
        timeout_s=60,
    )

    assert source.video_codec in CODEC_WHITELIST.split(",")
    frames = [line for line in frame_list.read_text().splitlines() if not line.startswith("#")]
    assert len(frames) >= 1, f"{clip}: no video frame decoded"


@pytest.mark.parametrize(
    ("container", "codecs"),
    [
        ("mpegts", ["-c:v", "libx264", "-c:a", "aac"]),
        (
            "matroska",
            [
                "-c:v",
                "libx265",
                "-x265-params",
                "log-level=none",
                "-pix_fmt",
                "yuv420p10le",
                "-color_trc",
                "arib-std-b67",
                "-color_primaries",
                "bt2020",
                "-colorspace",
                "bt2020nc",
                "-c:a",
                "libopus",
            ],
        ),
        ("webm", ["-c:v", "libvpx-vp9", "-c:a", "libopus"]),
        ("avi", ["-c:v", "mpeg4", "-c:a", "libmp3lame"]),
        ("mov", ["-c:v", "mjpeg", "-c:a", "pcm_s16le"]),
    ],
    ids=["mpegts-h264-aac", "hdr-hevc-10bit-opus", "webm-vp9-opus", "avi-mpeg4-mp3", "mov-mjpeg-pcm"],
)
def test_GIVEN_accepted_formats_WHEN_probed_and_decoded_under_the_allow_list_THEN_they_pass(
    tmp_path: Path, container: str, codecs: list[str]
) -> None:
    upload = make(
        tmp_path / "source",
        "-f",
        "lavfi",
        "-i",
        "testsrc=s=128x72:d=1",
        "-f",
        "lavfi",
        "-i",
        "sine=d=1",
        *codecs,
        "-t",
        "1",
        "-f",
        container,
    )

    source = probe_media(upload)
    run_ffmpeg([*input_args(upload, source.demuxer), "-f", "null", "-"], timeout_s=60)

    assert source.has_audio


# A parent that starts a 60-second FFmpeg (read at the clip's own pace) with
# run_ffmpeg, prints the FFmpeg's pid, and waits for it.
_PARENT_OF_A_SLOW_FFMPEG = """
import subprocess, sys
from vidpipe.adapters.ffmpeg import process
from vidpipe.adapters.ffmpeg.inputs import input_args
real_popen = subprocess.Popen
def popen_and_tell(*args, **kwargs):
    child = real_popen(*args, **kwargs)
    print(child.pid, flush=True)
    return child
subprocess.Popen = popen_and_tell
process.run_ffmpeg(["-re", "-stream_loop", "-1", *input_args(sys.argv[1], "mov"), "-t", "60", "-f", "null", "-"],
                   timeout_s=120)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie has ended; only its exit status is left


def test_GIVEN_a_running_ffmpeg_WHEN_the_process_that_started_it_is_killed_THEN_ffmpeg_dies_with_it() -> None:
    # On AWS Lambda ends the whole sandbox; on the local stack a killed function
    # worker would otherwise leave its FFmpeg running beside the retry.
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT_OF_A_SLOW_FFMPEG, str(SAMPLES / "long_20s_640x360.mp4")],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert parent.stdout is not None
        ffmpeg_pid = int(parent.stdout.readline())
        assert _alive(ffmpeg_pid)

        parent.kill()
        parent.wait(timeout=10)

        deadline = time.monotonic() + 10
        while _alive(ffmpeg_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(ffmpeg_pid)
    finally:
        parent.kill()
        parent.wait(timeout=10)
