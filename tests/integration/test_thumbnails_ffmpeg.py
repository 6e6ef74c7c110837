"""make_thumbnails on real clips with real FFmpeg.

The clips are made here with FFmpeg's test sources, each shaped for one case
(keyframe spacing, rotation, length), so a test does not depend on how the
shared sample clips happen to be encoded; the shared samples get a smoke test
of their own."""

from __future__ import annotations

import math
import subprocess
from fractions import Fraction
from pathlib import Path

import pytest
from PIL import Image, ImageStat

from tests.vtt_checks import assert_storyboard_consistent, parse_vtt
from thumbnails import ThumbnailResult, make_thumbnails
from vidpipe.adapters.ffmpeg.probe import probe_media
from vidpipe.adapters.ffmpeg.process import ffmpeg_environment, find_tool
from vidpipe.domain.errors import CorruptMedia, FfmpegError, NotAVideo
from vidpipe.domain.source_info import SourceInfo

pytestmark = pytest.mark.ffmpeg

SAMPLE_MEDIA = Path(__file__).resolve().parents[2] / "sample_media"
TIMEOUT_S = 60.0


def _ffmpeg(*args: str) -> None:
    subprocess.run(
        [find_tool("ffmpeg"), "-hide_banner", "-loglevel", "error", "-y", *args],
        env=ffmpeg_environment(),
        check=True,
        capture_output=True,
        timeout=120,
    )


def _h264(*, gop: int) -> list[str]:
    # -sc_threshold 0: no extra keyframes at scene cuts, so the keyframe spacing
    # is exactly what the test asks for.
    return ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
            "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0"]  # fmt: skip


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("clips")
    made = {name: folder / f"{name}.mp4" for name in
            ("fade_in", "long_gop", "two_second_gop", "rotated", "single_frame", "half_second")}  # fmt: skip
    # One second of black, then a test pattern fading in, with sound; a keyframe
    # every second, so the cheap keyframe pass is enough.
    _ffmpeg(
        "-f", "lavfi", "-i", "color=black:s=640x360:r=30:d=1",
        "-f", "lavfi", "-i", "testsrc2=s=640x360:r=30:d=5",
        "-f", "lavfi", "-i", "sine=frequency=440:duration=6",
        "-filter_complex", "[1:v]fade=in:d=0.5[pattern];[0:v][pattern]concat=n=2:v=1:a=0[v]",
        "-map", "[v]", "-map", "2:a", *_h264(gop=30), "-c:a", "aac", str(made["fade_in"]),
    )  # fmt: skip
    # A single keyframe for 4 seconds: keyframes alone cannot fill the tiles.
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=s=320x180:r=25:d=4", *_h264(gop=1000), str(made["long_gop"]))
    # 40 s with a keyframe every 2 s, as streaming encoders write: too sparse for
    # 1 s tiles, dense enough for 2 s ones.
    _ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=s=160x90:r=25:d=40", *_h264(gop=50), str(made["two_second_gop"])
    )  # fmt: skip
    # Stored landscape with a display matrix turning it upright, as phones write it.
    upright = folder / "upright.mp4"
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=s=320x180:r=30:d=3", *_h264(gop=30), str(upright))
    _ffmpeg("-i", str(upright), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(made["rotated"]))
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=s=320x240:r=25", "-frames:v", "1", *_h264(gop=1),
            str(made["single_frame"]))  # fmt: skip
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=0.5", *_h264(gop=25), str(made["half_second"]))
    return made


def _make(clip: Path, output_dir: Path) -> tuple[ThumbnailResult, SourceInfo]:
    source = probe_media(clip)
    return make_thumbnails(clip, output_dir, timeout_s=TIMEOUT_S, source=source), source


def _assert_complete_outputs(result: ThumbnailResult, output_dir: Path, source: SourceInfo) -> None:
    """Every file exists, the sprite is the grid the VTT describes, the images
    keep the display orientation."""
    outputs = result.to_outputs()
    names = [outputs["poster"], outputs["sprite"], outputs["storyboard"], *outputs["thumbnails"]]
    for name in names:
        assert isinstance(name, str) and (output_dir / name).is_file(), name
    assert 1 <= len(result.thumbnails) <= 5

    with Image.open(output_dir / result.sprite) as sprite:
        assert sprite.format == "JPEG"
        assert sprite.size == (result.columns * result.tile_width, result.rows * result.tile_height)
        sprite_size = sprite.size
    cues = parse_vtt((output_dir / result.storyboard).read_text(encoding="utf-8"))
    assert len(cues) == result.tile_count
    assert {cue.image for cue in cues} == {"sprite.jpg"}
    for index, cue in enumerate(cues):
        assert cue.xywh == (
            (index % result.columns) * result.tile_width,
            (index // result.columns) * result.tile_height,
            result.tile_width,
            result.tile_height,
        )
    assert_storyboard_consistent(
        cues, sprite_width=sprite_size[0], sprite_height=sprite_size[1], duration_s=source.duration_s,
        tolerance_s=0.0015,
    )  # fmt: skip

    portrait = source.display_height > source.display_width
    for name in [result.poster, *result.thumbnails]:
        with Image.open(output_dir / name) as image:
            assert image.format == "JPEG"
            assert (image.height > image.width) == portrait, name
    assert (result.tile_height > result.tile_width) == portrait


def test_given_a_clip_fading_in_from_black_when_thumbnailed_then_the_poster_shows_the_picture(
    clips: dict[str, Path], tmp_path: Path
) -> None:
    result, source = _make(clips["fade_in"], tmp_path)

    _assert_complete_outputs(result, tmp_path, source)
    assert result.keyframes_only  # a keyframe every second: no full decode needed
    assert (result.tile_count, result.columns, result.rows, result.interval_s) == (6, 6, 1, 1.0)
    assert result.thumbnails == tuple(f"thumb_00{number}.jpg" for number in range(1, 6))
    with Image.open(tmp_path / result.poster) as poster:
        assert poster.size == (640, 360)
        stats = ImageStat.Stat(poster.convert("L"))
        assert stats.mean[0] > 40 and stats.stddev[0] > 30  # not the black opening, not flat
    with Image.open(tmp_path / result.sprite) as sprite:
        first_tile = sprite.crop((0, 0, result.tile_width, result.tile_height)).convert("L")
        # 2 s: past the fade, which starts from black at 1 s
        third_tile = sprite.crop((320, 0, 320 + result.tile_width, result.tile_height)).convert("L")
        assert ImageStat.Stat(first_tile).mean[0] < 20  # the storyboard does show the black start
        assert ImageStat.Stat(third_tile).stddev[0] > 30
    with Image.open(tmp_path / result.thumbnails[0]) as thumbnail:
        assert thumbnail.size == (320, 180)


def test_given_a_single_keyframe_when_thumbnailed_then_every_tile_still_shows_its_own_time(
    clips: dict[str, Path], tmp_path: Path
) -> None:
    result, source = _make(clips["long_gop"], tmp_path)

    _assert_complete_outputs(result, tmp_path, source)
    assert not result.keyframes_only  # fell back to decoding the reference frames
    with Image.open(tmp_path / result.sprite) as sprite:
        tiles = [
            sprite.crop((x, 0, x + result.tile_width, result.tile_height)).tobytes()
            for x in range(0, sprite.width, result.tile_width)
        ]
    assert len(set(tiles)) == result.tile_count == 4  # testsrc2 moves: no tile repeats


def test_given_keyframes_two_seconds_apart_when_thumbnailed_then_two_second_tiles_from_keyframes(
    clips: dict[str, Path], tmp_path: Path
) -> None:
    result, source = _make(clips["two_second_gop"], tmp_path)

    _assert_complete_outputs(result, tmp_path, source)
    assert result.keyframes_only  # widened to the keyframe spacing instead of decoding everything
    assert (result.interval_s, result.tile_count, result.columns, result.rows) == (2.0, 20, 10, 2)
    with Image.open(tmp_path / result.sprite) as sprite:
        tiles = {
            sprite.crop((x, y, x + result.tile_width, y + result.tile_height)).tobytes()
            for y in range(0, sprite.height, result.tile_height)
            for x in range(0, sprite.width, result.tile_width)
        }
    assert len(tiles) == 20


def test_given_a_rotated_clip_when_thumbnailed_then_tiles_poster_and_thumbnails_are_portrait(
    clips: dict[str, Path], tmp_path: Path
) -> None:
    result, source = _make(clips["rotated"], tmp_path)

    assert (source.width, source.height, source.display_width, source.display_height) == (320, 180, 180, 320)
    _assert_complete_outputs(result, tmp_path, source)
    assert (result.tile_width, result.tile_height) == (90, 160)
    with Image.open(tmp_path / result.poster) as poster:
        assert poster.size == (180, 320)


@pytest.mark.parametrize("clip_name", ["single_frame", "half_second"])
def test_given_a_clip_shorter_than_a_second_when_thumbnailed_then_one_tile_and_a_poster(
    clips: dict[str, Path], tmp_path: Path, clip_name: str
) -> None:
    result, source = _make(clips[clip_name], tmp_path)

    _assert_complete_outputs(result, tmp_path, source)
    assert (result.tile_count, result.columns, result.rows) == (1, 1, 1)
    assert result.thumbnails == ("thumb_001.jpg",)
    with Image.open(tmp_path / result.poster) as poster:
        assert poster.size == (320, 240)
        assert ImageStat.Stat(poster.convert("L")).stddev[0] > 30


def test_given_a_clip_of_one_colour_when_thumbnailed_then_every_output_shows_that_colour(tmp_path: Path) -> None:
    # FFmpeg hands the frames over as colour planes: a swapped plane would turn red into green or blue.
    clip = tmp_path / "orange.mp4"
    _ffmpeg("-f", "lavfi", "-i", "color=c=0xE06010:s=320x180:r=25:d=2", *_h264(gop=25), str(clip))

    result, _ = _make(clip, tmp_path / "out")

    for name in [result.poster, result.sprite, *result.thumbnails]:
        with Image.open(tmp_path / "out" / name) as image:
            red, green, blue = ImageStat.Stat(image.convert("RGB")).mean
        assert max(abs(red - 0xE0), abs(green - 0x60), abs(blue - 0x10)) < 12, (name, red, green, blue)


def test_given_no_source_info_when_thumbnailed_then_it_probes_the_file_itself(
    clips: dict[str, Path], tmp_path: Path
) -> None:
    result = make_thumbnails(clips["half_second"], tmp_path / "made", timeout_s=TIMEOUT_S)

    assert (tmp_path / "made" / result.poster).is_file()


def test_given_the_same_clip_twice_when_thumbnailed_then_the_same_bytes(clips: dict[str, Path], tmp_path: Path) -> None:
    first, _ = _make(clips["fade_in"], tmp_path / "first")
    second, _ = _make(clips["fade_in"], tmp_path / "second")

    assert first == second
    for name in [first.poster, first.sprite, first.storyboard, *first.thumbnails]:
        assert (tmp_path / "first" / name).read_bytes() == (tmp_path / "second" / name).read_bytes()


def test_given_a_text_file_when_thumbnailed_then_not_a_video(tmp_path: Path) -> None:
    text_file = tmp_path / "notes.mp4"
    text_file.write_text("this is not a video\n")

    with pytest.raises(NotAVideo):
        make_thumbnails(text_file, tmp_path / "out", timeout_s=TIMEOUT_S)


def test_given_garbage_that_was_probed_as_video_when_thumbnailed_then_corrupt_media(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(bytes(range(256)) * 64)
    claimed = SourceInfo(
        duration_s=2.0, width=320, height=180, rotation=0, frame_rate=Fraction(30), video_codec="h264",
        audio_codec=None, audio_channels=0, format_name="mov,mp4,m4a,3gp,3g2,mj2",
    )  # fmt: skip

    with pytest.raises(CorruptMedia):
        make_thumbnails(garbage, tmp_path / "out", timeout_s=TIMEOUT_S, source=claimed)


def test_given_no_time_left_when_thumbnailed_then_a_retryable_ffmpeg_error(
    clips: dict[str, Path], tmp_path: Path
) -> None:
    source = probe_media(clips["fade_in"])

    with pytest.raises(FfmpegError):
        make_thumbnails(clips["fade_in"], tmp_path, timeout_s=0.001, source=source)


@pytest.mark.parametrize(
    "sample",
    sorted(SAMPLE_MEDIA.glob("*.mp4")) or [pytest.param(None, marks=pytest.mark.skip("no sample media"))],
    ids=lambda path: path.name if isinstance(path, Path) else "none",
)
def test_given_a_shared_sample_when_thumbnailed_then_complete_consistent_outputs(sample: Path, tmp_path: Path) -> None:
    result, source = _make(sample, tmp_path)

    _assert_complete_outputs(result, tmp_path, source)
    assert result.tile_count == math.ceil(round(source.duration_s * 1000) / (result.interval_s * 1000))
    if sample.name.startswith(("landscape", "portrait")):  # these two open on black
        with Image.open(tmp_path / result.poster) as poster:
            assert ImageStat.Stat(poster.convert("L")).stddev[0] > 30
