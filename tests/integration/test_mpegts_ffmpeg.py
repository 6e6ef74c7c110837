"""MPEG-TS uploads on the Lambda layer's static FFmpeg (the session runs that
build: see tests/conftest.py).

The static build's glibc crashes (SIGSEGV) on the DVB service name of an
MPEG-TS file when it may load the host's gconv modules; vidpipe.adapters.ffmpeg.process starts
every FFmpeg process with GCONV_PATH where no module can be. Without that,
these tests fail: the probe ends CORRUPT_MEDIA ("ffprobe crashed (SIGSEGV)")."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests import media_checks
from transcode.domain_logic.hls import MEDIA_PLAYLIST_NAME
from transcode.domain_logic.transcoding import transcode_to_hls
from vidpipe.adapters.ffmpeg.probe import probe_media
from vidpipe.adapters.ffmpeg.process import ffmpeg_environment, find_tool

pytestmark = pytest.mark.ffmpeg

SAMPLE = Path(__file__).resolve().parents[2] / "sample_media" / "landscape_16x9_stereo.mp4"
# Where Debian (this machine) keeps the gconv modules the static glibc must not load.
HOST_GCONV_MODULES = Path("/usr/lib/x86_64-linux-gnu/gconv/gconv-modules.cache")


@pytest.fixture(scope="module")
def ts_upload(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample's streams in MPEG-TS, as a broadcast recorder or camera writes
    them: with an SDT whose service name is in the DVB default charset."""
    path = tmp_path_factory.mktemp("ts") / "source"
    subprocess.run(
        [find_tool("ffmpeg"), "-v", "error", "-i", str(SAMPLE), "-c", "copy", "-f", "mpegts", str(path)],
        env=ffmpeg_environment(), check=True, timeout=60,
    )  # fmt: skip
    return path


@pytest.mark.skipif(not HOST_GCONV_MODULES.exists(), reason="no host gconv modules here to crash on")
def test_GIVEN_the_host_s_gconv_modules_WHEN_the_layer_s_ffprobe_reads_ts_without_our_environment_THEN_it_crashes(
    ts_upload: Path,
) -> None:
    # The failure the fix is for, kept visible: should a later build not crash,
    # this says the workaround may go.
    environment = {key: value for key, value in os.environ.items() if key != "GCONV_PATH"}

    crashed = subprocess.run(
        [find_tool("ffprobe"), "-v", "error", str(ts_upload)], env=environment, capture_output=True, timeout=30
    )

    assert crashed.returncode == -signal.SIGSEGV


def test_GIVEN_an_mpeg_ts_upload_WHEN_probed_THEN_read_as_mpegts_with_its_streams(ts_upload: Path) -> None:
    source = probe_media(ts_upload)

    assert source.demuxer == "mpegts"
    assert (source.video_codec, source.audio_codec) == ("h264", "aac")
    assert source.duration_s == pytest.approx(media_checks.duration_s(SAMPLE), abs=0.1)


def test_GIVEN_an_mpeg_ts_upload_WHEN_transcoded_THEN_every_rendition_plays_for_the_source_s_duration(
    ts_upload: Path, tmp_path: Path
) -> None:
    result = transcode_to_hls(ts_upload, tmp_path / "hls", timeout_s=120)

    assert result.renditions
    for rendition in result.renditions:
        probe = media_checks.probe(tmp_path / "hls" / rendition.name / MEDIA_PLAYLIST_NAME)
        assert [video["codec_name"] for video in probe.video] == ["h264"]
        assert [audio["codec_name"] for audio in probe.audio] == ["aac"]
        assert probe.duration_s == pytest.approx(result.source.duration_s, abs=0.1)
