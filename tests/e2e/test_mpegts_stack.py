"""End to end on the local stack: an MPEG-TS upload becomes READY, and the
deployed functions did it with the FFmpeg layer's static build.

MPEG-TS is the input on which that build crashed (SIGSEGV in its static glibc's
gconv lookup, see vidpipe.adapters.ffmpeg.process.NO_GCONV_MODULES) while Debian's FFmpeg did not;
and the renditions carry the x264 build that encoded them, which tells the
layer's FFmpeg from any other on this machine."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import requests

from tests import media_checks
from vidpipe.adapters.ffmpeg.process import ffmpeg_environment, find_tool

pytestmark = [pytest.mark.stack, pytest.mark.ffmpeg]

SAMPLE = Path(__file__).resolve().parents[2] / "sample_media" / "landscape_16x9_stereo.mp4"
# x264 writes its version into the stream (an SEI message): "x264 - core 164 r3106 eaa68fa".
X264_VERSION = re.compile(rb"x264 - core \d+ r\d+ [0-9a-f]+")


def x264_version(data: bytes) -> str:
    found = X264_VERSION.search(data)
    assert found, "no x264 version in the stream"
    return found.group().decode()


@pytest.fixture(scope="module")
def layer_x264(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The x264 version of the layer's FFmpeg (the session's, see tests/conftest.py)."""
    path = tmp_path_factory.mktemp("x264") / "probe.ts"
    subprocess.run(
        [find_tool("ffmpeg"), "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=64x64:r=1:d=1",
         "-c:v", "libx264", "-f", "mpegts", str(path)],
        env=ffmpeg_environment(), check=True, timeout=60,
    )  # fmt: skip
    return x264_version(path.read_bytes())


def test_GIVEN_an_mpeg_ts_upload_WHEN_submitted_THEN_ready_with_renditions_the_layer_s_ffmpeg_encoded(
    local_stack, tmp_path: Path, layer_x264: str
) -> None:
    # GIVEN a sample's streams in MPEG-TS (an SDT with a service name included)
    upload = tmp_path / "broadcast.ts"
    subprocess.run(
        [find_tool("ffmpeg"), "-v", "error", "-i", str(SAMPLE), "-c", "copy", "-f", "mpegts", str(upload)],
        env=ffmpeg_environment(), check=True, timeout=60,
    )  # fmt: skip

    # WHEN it is submitted through the API and awaited
    result = local_stack.vidpipe("submit", str(upload), "--wait", "--json", "--timeout", "300")

    # THEN it is READY, read as MPEG-TS, every stage complete
    (job,) = json.loads(result.stdout)
    assert job["status"] == "READY", f"{job['status']} {job.get('error')}"
    assert {stage["status"] for stage in job["stages"].values()} == {"COMPLETED"}
    assert job["source"]["duration_s"] == pytest.approx(media_checks.duration_s(SAMPLE), abs=0.1)
    # AND each rendition plays (probed over HTTP) for the source's duration
    renditions = job["outputs"]["renditions"]
    assert renditions
    for rendition in renditions:
        probe = media_checks.probe(rendition["url"])
        assert [video["codec_name"] for video in probe.video] == ["h264"]
        assert [audio["codec_name"] for audio in probe.audio] == ["aac"]
        assert probe.duration_s == pytest.approx(job["source"]["duration_s"], abs=0.1)
    # AND its first segment was encoded by the layer's x264, not the system FFmpeg's
    playlist = media_checks.read_text(renditions[0]["url"])
    first_segment = next(line for line in playlist.splitlines() if line and not line.startswith("#"))
    segment = requests.get(str(media_checks.resolve(renditions[0]["url"], first_segment)), timeout=30)
    assert segment.status_code == 200
    assert x264_version(segment.content) == layer_x264
