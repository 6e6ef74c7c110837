"""Unit tests of the thumbnails domain: storyboard plan, VTT, poster choice,
FFmpeg argument lists and sprite layout. No FFmpeg runs here."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from tests.filter_graph_text import filters_applied, filters_in, graph_of
from tests.vtt_checks import assert_storyboard_consistent, parse_vtt
from thumbnails.domain_logic.frame_grab import (
    SkipFrames,
    build_frame_grab_args,
    count_unfilled_slots,
    one_frame_per_interval,
    planar_rgb_image,
    split_frames,
)
from thumbnails.domain_logic.poster import choose_poster
from thumbnails.domain_logic.storyboard import (
    Cue,
    choose_interval_ms,
    fit_within,
    format_vtt_timestamp,
    pick_thumbnail_slots,
    plan_storyboard,
    render_vtt,
)
from thumbnails.domain_logic.thumbnail_set import ThumbnailResult, assemble_sprite
from vidpipe.domain.errors import FfmpegError
from vidpipe.domain.source_info import CODEC_WHITELIST

# --- plan_storyboard ---------------------------------------------------------


def test_given_a_6s_720p_clip_when_planned_then_six_one_second_tiles_in_one_row() -> None:
    plan = plan_storyboard(6.0, 1280, 720)

    assert (plan.interval_ms, plan.tile_width, plan.tile_height) == (1000, 160, 90)
    assert (plan.columns, plan.rows, plan.tile_count) == (6, 1, 6)
    assert (plan.sprite_width, plan.sprite_height) == (960, 90)
    assert plan.cues[0] == Cue(start_ms=0, end_ms=1000, x=0, y=0, w=160, h=90)
    assert plan.cues[-1] == Cue(start_ms=5000, end_ms=6000, x=800, y=0, w=160, h=90)


def test_given_a_duration_that_is_not_a_whole_interval_when_planned_then_the_last_cue_is_clipped() -> None:
    plan = plan_storyboard(6.4, 1280, 720)

    assert plan.tile_count == 7
    assert (plan.cues[-1].start_ms, plan.cues[-1].end_ms) == (6000, 6400)


def test_given_a_hair_over_a_whole_interval_when_planned_then_no_zero_length_cue() -> None:
    plan = plan_storyboard(6.0004, 1280, 720)

    assert plan.tile_count == 6
    assert plan.cues[-1].end_ms == 6000


def test_given_a_single_frame_clip_when_planned_then_one_tile_covers_it() -> None:
    plan = plan_storyboard(0.04, 320, 240)

    assert (plan.tile_count, plan.columns, plan.rows) == (1, 1, 1)
    assert plan.cues == (Cue(start_ms=0, end_ms=40, x=0, y=0, w=160, h=120),)


def test_given_a_long_clip_when_planned_then_at_most_100_tiles_in_ten_columns() -> None:
    plan = plan_storyboard(250.0, 1920, 1080)

    assert plan.interval_ms == 3000
    assert (plan.tile_count, plan.columns, plan.rows) == (84, 10, 9)
    assert plan.cues[83] == Cue(start_ms=249_000, end_ms=250_000, x=480, y=720, w=160, h=90)


def test_given_a_three_hour_film_when_planned_then_the_interval_is_whole_minutes() -> None:
    plan = plan_storyboard(3 * 3600.0, 1920, 1080)

    assert plan.interval_ms == 120_000
    assert plan.tile_count == 90


@pytest.mark.parametrize(
    ("display", "tile"),
    [
        ((1080, 1920), (90, 160)),  # portrait phone video, rotation already applied
        ((2560, 1080), (160, 68)),  # 21:9
        ((160, 90), (160, 90)),  # exactly a tile
        ((64, 36), (64, 36)),  # smaller than a tile: never upscaled
        ((8192, 2), (160, 1)),  # extreme strip: never zero pixels
    ],
)
def test_given_a_display_size_when_planned_then_the_tile_keeps_its_aspect_inside_160px(
    display: tuple[int, int], tile: tuple[int, int]
) -> None:
    plan = plan_storyboard(10.0, *display)

    assert (plan.tile_width, plan.tile_height) == tile


@pytest.mark.parametrize("duration", [0.0, -1.0, math.nan, math.inf])
def test_given_an_unusable_duration_when_planned_then_value_error(duration: float) -> None:
    with pytest.raises(ValueError):
        plan_storyboard(duration, 1280, 720)


@given(
    duration_s=st.floats(min_value=0.0005, max_value=40_000.0, allow_nan=False),
    width=st.integers(min_value=1, max_value=8192),
    height=st.integers(min_value=1, max_value=8192),
    min_interval_ms=st.integers(min_value=0, max_value=600_000),
)
def test_given_any_video_when_planned_then_tiles_tile_the_timeline_and_the_sprite(
    duration_s: float, width: int, height: int, min_interval_ms: int
) -> None:
    plan = plan_storyboard(duration_s, width, height, min_interval_ms=min_interval_ms)

    assert plan.interval_ms >= min_interval_ms
    assert 1 <= plan.tile_count <= 100
    assert plan.cues[0].start_ms == 0
    assert plan.cues[-1].end_ms == plan.duration_ms == max(1, round(duration_s * 1000))
    for before, after in zip(plan.cues, plan.cues[1:], strict=False):
        assert before.end_ms == after.start_ms  # no gap, no overlap
    assert all(cue.end_ms > cue.start_ms for cue in plan.cues)
    assert 1 <= plan.tile_width <= 160 and 1 <= plan.tile_height <= 160
    assert plan.columns <= 10 and plan.rows == math.ceil(plan.tile_count / plan.columns)
    for index, cue in enumerate(plan.cues):
        assert (cue.w, cue.h) == (plan.tile_width, plan.tile_height)
        assert (cue.x, cue.y) == plan.tile_origin(index)
        assert cue.x + cue.w <= plan.sprite_width and cue.y + cue.h <= plan.sprite_height
    assert len({(cue.x, cue.y) for cue in plan.cues}) == plan.tile_count


@pytest.mark.parametrize(
    ("duration_ms", "interval_ms"),
    [(1, 1000), (100_000, 1000), (100_001, 2000), (6_000_000, 60_000), (6_000_001, 120_000)],
)
def test_given_a_duration_when_choosing_the_interval_then_the_smallest_readable_one_fits_100_tiles(
    duration_ms: int, interval_ms: int
) -> None:
    assert choose_interval_ms(duration_ms) == interval_ms


@pytest.mark.parametrize(
    ("duration_ms", "min_interval_ms", "interval_ms"),
    [(90_000, 2000, 2000), (90_000, 2001, 3000), (30_000, 7_000, 10_000), (60_000, 61_000, 120_000)],
)
def test_given_a_minimum_when_choosing_the_interval_then_the_smallest_readable_one_above_it(
    duration_ms: int, min_interval_ms: int, interval_ms: int
) -> None:
    assert choose_interval_ms(duration_ms, 100, min_interval_ms) == interval_ms


def test_given_keyframes_two_seconds_apart_when_planned_with_that_minimum_then_two_second_tiles() -> None:
    plan = plan_storyboard(90.0, 1280, 720, min_interval_ms=2000)

    assert (plan.interval_ms, plan.tile_count, plan.columns, plan.rows) == (2000, 45, 10, 5)
    assert plan.cues[-1] == Cue(start_ms=88_000, end_ms=90_000, x=640, y=360, w=160, h=90)


@pytest.mark.parametrize(
    ("size", "box", "expected"),
    [
        ((1280, 720), (160, 160), (160, 90)),
        ((1920, 1080), (1280, 1280), (1280, 720)),
        ((720, 1280), (320, 320), (180, 320)),
        ((100, 50), (320, 320), (100, 50)),
    ],
)
def test_given_a_picture_when_fitting_a_box_then_aspect_kept_and_never_upscaled(
    size: tuple[int, int], box: tuple[int, int], expected: tuple[int, int]
) -> None:
    assert fit_within(*size, *box) == expected


# --- thumbnail slots -----------------------------------------------------------


@pytest.mark.parametrize(
    ("tile_count", "slots"),
    [(1, (0,)), (3, (0, 1, 2)), (6, (0, 1, 3, 4, 5)), (100, (10, 30, 50, 70, 90))],
)
def test_given_tiles_when_picking_five_thumbnails_then_they_are_spread_evenly(
    tile_count: int, slots: tuple[int, ...]
) -> None:
    assert pick_thumbnail_slots(tile_count, 5) == slots


@given(tile_count=st.integers(1, 500), count=st.integers(1, 20))
def test_given_any_counts_when_picking_slots_then_distinct_increasing_and_in_range(tile_count: int, count: int) -> None:
    slots = pick_thumbnail_slots(tile_count, count)

    assert len(slots) == min(tile_count, count)
    assert list(slots) == sorted(set(slots))
    assert all(0 <= slot < tile_count for slot in slots)


# --- WebVTT ------------------------------------------------------------------------


def test_given_milliseconds_when_formatted_then_hours_minutes_seconds_millis() -> None:
    assert format_vtt_timestamp(0) == "00:00:00.000"
    assert format_vtt_timestamp(3_723_004) == "01:02:03.004"


def test_given_a_plan_when_rendered_then_exact_webvtt_with_relative_sprite_fragments() -> None:
    plan = plan_storyboard(2.5, 1280, 720)

    text = render_vtt(plan, "sprite.jpg")

    assert text == (
        "WEBVTT\n\n"
        "00:00:00.000 --> 00:00:01.000\nsprite.jpg#xywh=0,0,160,90\n\n"
        "00:00:01.000 --> 00:00:02.000\nsprite.jpg#xywh=160,0,160,90\n\n"
        "00:00:02.000 --> 00:00:02.500\nsprite.jpg#xywh=320,0,160,90\n"
    )


def test_given_a_multi_row_plan_when_rendered_and_parsed_back_then_it_matches_the_sprite() -> None:
    plan = plan_storyboard(250.0, 1080, 1920)

    cues = parse_vtt(render_vtt(plan, "sprite.jpg"))

    assert len(cues) == plan.tile_count
    assert [cue.xywh for cue in cues] == [(c.x, c.y, c.w, c.h) for c in plan.cues]
    assert_storyboard_consistent(
        cues, sprite_width=plan.sprite_width, sprite_height=plan.sprite_height, duration_s=250.0
    )


@pytest.mark.parametrize("name", ["", "a#b.jpg", "sprite\n.jpg", "x-->y.jpg"])
def test_given_a_sprite_name_that_breaks_a_cue_when_rendering_then_value_error(name: str) -> None:
    with pytest.raises(ValueError):
        render_vtt(plan_storyboard(1.0, 16, 9), name)


def test_given_vtt_with_ids_notes_and_short_timestamps_when_parsed_then_cues_are_read() -> None:
    text = (
        "\ufeffWEBVTT - storyboard\r\n\r\nNOTE written by hand\r\n\r\n"
        "tile-1\r\n00:01.000 --> 00:02.500 align:start\r\nsprite.jpg#xywh=0,0,8,4\r\n"
    )

    (cue,) = parse_vtt(text)

    assert (cue.start_s, cue.end_s, cue.image, cue.xywh) == (1.0, 2.5, "sprite.jpg", (0, 0, 8, 4))


def test_given_a_storyboard_with_a_gap_when_checked_then_assertion_error() -> None:
    cues = parse_vtt(
        "WEBVTT\n\n00:00:00.000 --> 00:00:01.000\ns.jpg#xywh=0,0,10,10\n\n"
        "00:00:01.500 --> 00:00:02.000\ns.jpg#xywh=10,0,10,10\n"
    )

    with pytest.raises(AssertionError, match="gap"):
        assert_storyboard_consistent(cues, sprite_width=20, sprite_height=10, duration_s=2.0)


# --- poster choice -----------------------------------------------------------------


def _flat(value: int) -> Image.Image:
    return Image.new("RGB", (64, 36), (value, value, value))


def _detailed() -> Image.Image:
    image = Image.new("RGB", (64, 36))
    image.putdata([((x * 4) % 256, (y * 7) % 256, (x * y) % 256) for y in range(36) for x in range(64)])
    return image


def _two_tone_card() -> Image.Image:
    image = Image.new("RGB", (64, 36), (0, 0, 0))
    ImageDraw.Draw(image).rectangle((32, 0, 63, 35), fill=(255, 255, 255))
    return image


def test_given_a_black_opening_frame_when_choosing_the_poster_then_a_detailed_frame_wins() -> None:
    assert choose_poster([_flat(0), _flat(128), _detailed(), _flat(255)]) == 2


def test_given_a_two_tone_card_and_a_detailed_frame_when_choosing_then_detail_beats_contrast() -> None:
    assert choose_poster([_two_tone_card(), _detailed()]) == 1


def test_given_equally_flat_frames_when_choosing_the_poster_then_the_earliest_wins() -> None:
    assert choose_poster([_flat(0), _flat(0), _flat(0)]) == 0


def test_given_no_candidates_when_choosing_the_poster_then_value_error() -> None:
    with pytest.raises(ValueError):
        choose_poster([])


# --- FFmpeg arguments ---------------------------------------------------------------


@pytest.mark.parametrize(("interval_ms", "rate"), [(1000, "1"), (2000, "1/2"), (15_000, "1/15"), (120_000, "1/120")])
def test_given_an_interval_when_building_the_fps_filter_then_one_frame_per_interval(
    interval_ms: int, rate: str
) -> None:
    sampled = filters_applied(lambda video: one_frame_per_interval(video, interval_ms))
    assert sampled == [f"fps=eof_action=pass:fps={rate}:round=near:start_time=0"]


def test_given_a_plan_when_building_the_keyframe_grab_then_exact_argument_list() -> None:
    args = build_frame_grab_args(
        Path("/in/source"),
        Path("/work"),
        interval_ms=2000,
        tile_count=60,
        tile_size=(160, 90),
        candidate_slots=(6, 18, 30),
        candidate_size=(1280, 720),
        skip=SkipFrames.NON_KEY,
        demuxer="mov",
    )

    assert args == [
        "-skip_frame", "nokey", "-threads", "1",
        "-protocol_whitelist", "file", "-f", "mov", "-format_whitelist", "mov", "-codec_whitelist", CODEC_WHITELIST,
        "-i", "file:/in/source",
        "-filter_complex",
        "[0:V:0]fps=eof_action=pass:fps=1/2:round=near:start_time=0[s0];[s0]split=2[s1][s2];"
        # The matrix and range named: swscale would read an untagged frame as BT.601.
        "[s1]scale=160:90:flags=area:in_color_matrix=bt709:in_range=tv[s3];[s3]format=gbrp[s4];"
        # ffmpeg-python escapes the commas inside eq() so they do not split the chain.
        "[s2]select=expr=eq(n\\,6)+eq(n\\,18)+eq(n\\,30)[s5];"
        "[s5]scale=1280:720:flags=area:in_color_matrix=bt709:in_range=tv[s6];[s6]format=gbrp[s7]",
        "-map", "[s4]", "-frames:v", "60", "-fps_mode", "passthrough", "-f", "rawvideo", "/work/tiles.rgb",
        "-map", "[s7]", "-frames:v", "3", "-fps_mode", "passthrough", "-f", "rawvideo", "/work/candidates.rgb",
    ]  # fmt: skip


def test_given_sparse_keyframes_when_building_the_fallback_grab_then_reference_frames_are_decoded() -> None:
    args = build_frame_grab_args(
        Path("clip.mp4"),
        Path("w"),
        interval_ms=1000,
        tile_count=1,
        tile_size=(90, 160),
        candidate_slots=(0,),
        candidate_size=(720, 1280),
        skip=SkipFrames.NON_REFERENCE,
        demuxer="matroska",
    )

    assert args[:12] == [
        "-skip_frame", "noref",
        "-protocol_whitelist", "file", "-f", "matroska", "-format_whitelist", "matroska",
        "-codec_whitelist", CODEC_WHITELIST, "-i", "file:clip.mp4",
    ]  # fmt: skip
    assert filters_in(graph_of(args))[2:6] == [
        "scale=90:160:flags=area:in_color_matrix=bt709:in_range=tv",
        "format=gbrp",
        "select=expr=eq(n\\,0)",
        "scale=720:1280:flags=area:in_color_matrix=bt709:in_range=tv",
    ]


@pytest.mark.parametrize(("tile_count", "slots"), [(0, (0,)), (3, ()), (3, (3,)), (3, (-1,))])
def test_given_slots_outside_the_tiles_when_building_the_grab_then_value_error(
    tile_count: int, slots: tuple[int, ...]
) -> None:
    with pytest.raises(ValueError):
        build_frame_grab_args(
            Path("a"),
            Path("b"),
            interval_ms=1000,
            tile_count=tile_count,
            tile_size=(16, 9),
            candidate_slots=slots,
            candidate_size=(16, 9),
            skip=SkipFrames.NON_KEY,
            demuxer="mov",
        )


@pytest.mark.parametrize(
    ("tiles", "expected_count", "unfilled"),
    [
        ([b"a", b"b", b"c"], 3, 0),
        ([b"a", b"a", b"b"], 3, 1),  # a keyframe-less interval repeats the tile before
        ([b"a", b"b"], 5, 3),  # the pass stopped at the last keyframe
        ([], 2, 2),
    ],
)
def test_given_sampled_tiles_when_counting_unfilled_slots_then_repeats_and_missing_count(
    tiles: list[bytes], expected_count: int, unfilled: int
) -> None:
    assert count_unfilled_slots(tiles, expected_count) == unfilled


def test_given_raw_output_when_split_then_one_frame_per_width_x_height_x_3_bytes_in_order() -> None:
    data = bytes([1]) * 12 + bytes([2]) * 12 + bytes([3]) * 12  # three 2x2 frames of three planes

    frames = split_frames(data, (2, 2))

    assert frames == [bytes([1]) * 12, bytes([2]) * 12, bytes([3]) * 12]
    assert split_frames(b"", (2, 2)) == []


def test_given_raw_output_cut_mid_frame_when_split_then_a_retryable_ffmpeg_error() -> None:
    with pytest.raises(FfmpegError, match="not a whole number"):
        split_frames(bytes(12 + 5), (2, 2))


def test_given_a_planar_gbr_frame_when_made_a_picture_then_each_pixel_has_its_red_green_and_blue() -> None:
    # 2x1 pixels: the green plane, then blue, then red (FFmpeg's gbrp).
    frame = bytes([10, 20]) + bytes([30, 40]) + bytes([50, 60])

    image = planar_rgb_image(frame, (2, 1))

    assert (image.mode, image.size) == ("RGB", (2, 1))
    assert [image.getpixel((0, 0)), image.getpixel((1, 0))] == [(50, 10, 30), (60, 20, 40)]


# --- sprite and result -------------------------------------------------------------


def test_given_tiles_when_assembling_the_sprite_then_each_sits_in_its_cue_rectangle() -> None:
    plan = plan_storyboard(12.5, 32, 18)  # 13 one-second tiles: 10 + 3 in a second row
    colours = [(index * 19, 255 - index * 19, 40) for index in range(12)]
    tiles = [Image.new("RGB", (32, 18), colour) for colour in colours]
    tiles[5] = Image.new("RGB", (64, 36), colours[5])  # wrong size: resized into its cell

    sprite = assemble_sprite(plan, tiles)  # one tile short: the last cue repeats tile 11

    assert sprite.size == (plan.sprite_width, plan.sprite_height) == (320, 36)
    for index, cue in enumerate(plan.cues):
        centre = (cue.x + cue.w // 2, cue.y + cue.h // 2)
        assert sprite.getpixel(centre) == colours[min(index, 11)]
    assert sprite.getpixel((319, 35)) == (0, 0, 0)  # unused cell


def test_given_a_result_when_serialised_then_json_ready_relative_names() -> None:
    result = ThumbnailResult(
        poster="poster.jpg",
        thumbnails=("thumb_001.jpg", "thumb_002.jpg"),
        sprite="sprite.jpg",
        storyboard="storyboard.vtt",
        tile_width=160,
        tile_height=90,
        columns=2,
        rows=1,
        tile_count=2,
        interval_s=1.0,
        keyframes_only=True,
    )

    outputs = json.loads(json.dumps(result.to_outputs()))

    assert outputs["thumbnails"] == ["thumb_001.jpg", "thumb_002.jpg"]
    assert outputs["poster"] == "poster.jpg" and outputs["storyboard"] == "storyboard.vtt"
    assert (outputs["tile_width"], outputs["tile_height"], outputs["interval_s"]) == (160, 90, 1.0)
