"""make_thumbnails_by_seeks on a real clip with real FFmpeg, against the one-pass
path it stands in for on long uploads: the same storyboard, the same tiles, a
poster with detail. (Over a presigned URL it runs in the chunked stack test.)"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageStat

from tests.vtt_checks import assert_storyboard_consistent, parse_vtt
from thumbnails.domain_logic.poster import detail_score
from thumbnails.domain_logic.seek_grab import make_thumbnails_by_seeks
from thumbnails.domain_logic.thumbnail_set import make_thumbnails
from vidpipe.adapters.ffmpeg.probe import probe_media
from vidpipe.adapters.ffmpeg.process import ffmpeg_environment, find_tool
from vidpipe.domain.errors import FfmpegError

pytestmark = pytest.mark.ffmpeg

TIMEOUT_S = 60.0


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """25 s: three seconds of black, then a moving test pattern; a keyframe every second."""
    path = tmp_path_factory.mktemp("seek") / "clip.mp4"
    subprocess.run(
        [find_tool("ffmpeg"), "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", "color=black:s=320x180:r=30:d=3",
         "-f", "lavfi", "-i", "testsrc2=s=320x180:r=30:d=22",
         "-filter_complex", "[0:v][1:v]concat=n=2:v=1:a=0[v]", "-map", "[v]",
         "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
         "-g", "30", "-keyint_min", "30", "-sc_threshold", "0", str(path)],
        env=ffmpeg_environment(), check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return path


def test_GIVEN_keyframes_every_second_WHEN_thumbnailed_by_seeks_THEN_the_one_pass_storyboard_and_tiles(
    clip: Path, tmp_path: Path
) -> None:
    source = probe_media(clip)
    one_pass = make_thumbnails(clip, tmp_path / "one", timeout_s=TIMEOUT_S, source=source)
    seeks = make_thumbnails_by_seeks(str(clip), tmp_path / "seeks", source=source, timeout_s=TIMEOUT_S, parallel=3)

    # THEN the same plan and, byte for byte, the same VTT: the time base is the one-pass path's
    assert seeks.to_outputs() == one_pass.to_outputs()
    vtt = (tmp_path / "seeks" / seeks.storyboard).read_text(encoding="utf-8")
    assert vtt == (tmp_path / "one" / one_pass.storyboard).read_text(encoding="utf-8")
    with Image.open(tmp_path / "seeks" / seeks.sprite) as sprite:
        assert_storyboard_consistent(parse_vtt(vtt), sprite_width=sprite.width, sprite_height=sprite.height,
                                     duration_s=source.duration_s, tolerance_s=0.0015)  # fmt: skip
        # AND each tile shows the keyframe the one pass chose (JPEG noise aside)
        with Image.open(tmp_path / "one" / one_pass.sprite) as expected:
            difference = ImageStat.Stat(ImageChops.difference(sprite.convert("L"), expected.convert("L")))
            assert difference.mean[0] < 2.0
        # AND the black opening is on the first tiles, the pattern after it
        first = sprite.crop((0, 0, seeks.tile_width, seeks.tile_height)).convert("L")
        assert ImageStat.Stat(first).mean[0] < 20
    # AND the poster is chosen by detail: not black
    with Image.open(tmp_path / "seeks" / seeks.poster) as poster:
        assert poster.size == (320, 180)
        assert detail_score(poster) > 4.0


def test_GIVEN_no_time_left_WHEN_thumbnailed_by_seeks_THEN_a_retryable_ffmpeg_error(clip: Path, tmp_path: Path) -> None:
    source = probe_media(clip)
    with pytest.raises(FfmpegError):
        make_thumbnails_by_seeks(str(clip), tmp_path, source=source, timeout_s=0.0)
