"""The bitrate ladder: which renditions a source gets (no FFmpeg needed)."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from transcode.domain_logic.ladder import (
    DEFAULT_LADDER,
    LOWER_RUNG_MAX_CRF,
    LadderConfig,
    RateControl,
    Rendition,
    Rung,
    ladder_from_text,
    output_frame_rate,
    plan_ladder,
    scaled_size,
)
from vidpipe.domain.errors import CorruptMedia
from vidpipe.domain.source_info import SourceInfo


def source(width: int, height: int, *, rotation: int = 0, audio: bool = True) -> SourceInfo:
    return SourceInfo(
        duration_s=6.0,
        width=width,
        height=height,
        rotation=rotation,
        frame_rate=Fraction(30),
        video_codec="h264",
        audio_codec="aac" if audio else None,
        audio_channels=2 if audio else 0,
        format_name="mov,mp4,m4a,3gp,3g2,mj2",
    )


# The fixed ladder (average bitrates): what these tests pin down about sizes and rates.
FIXED = replace(DEFAULT_LADDER, rate_control=RateControl.FIXED)

# Every size ffprobe lets through (parse_probe refuses more than 8192), every rotation.
sizes = st.integers(min_value=2, max_value=8192)
rotations = st.sampled_from([0, 90, 180, 270])


def test_GIVEN_1080p_landscape_WHEN_planned_THEN_all_five_rungs_with_default_bitrates() -> None:
    ladder = plan_ladder(source(1920, 1080), FIXED)

    assert ladder == [
        Rendition("1080p", 1920, 1080, 5000, 6250, 12500, 128),
        Rendition("720p", 1280, 720, 2800, 3500, 7000, 128),
        Rendition("480p", 854, 480, 1400, 1750, 3500, 128),
        Rendition("360p", 640, 360, 800, 1000, 2000, 128),
        Rendition("240p", 426, 240, 400, 500, 1000, 128),
    ]


def test_GIVEN_720p_source_WHEN_planned_THEN_no_1080p_rung() -> None:
    names = [r.name for r in plan_ladder(source(1280, 720), FIXED)]

    assert names == ["720p", "480p", "360p", "240p"]


def test_GIVEN_phone_clip_stored_landscape_with_rotation_WHEN_planned_THEN_portrait_renditions() -> None:
    ladder = plan_ladder(source(1280, 720, rotation=90), FIXED)

    assert [(r.name, r.width, r.height) for r in ladder] == [
        ("720p", 720, 1280),
        ("480p", 480, 854),
        ("360p", 360, 640),
        ("240p", 240, 426),
    ]


def test_GIVEN_source_below_lowest_rung_WHEN_planned_THEN_one_rendition_at_its_own_size() -> None:
    ladder = plan_ladder(source(160, 90), FIXED)

    # 160x90 has 14 % of the pixels of 426x240: the bitrate floor (a quarter) applies.
    assert ladder == [Rendition("90p", 160, 90, 100, 125, 250, 128)]


def test_GIVEN_odd_sized_tiny_source_WHEN_planned_THEN_rounded_down_to_even() -> None:
    ladder = plan_ladder(source(161, 91), FIXED)

    assert [(r.name, r.width, r.height) for r in ladder] == [("90p", 160, 90)]


def test_GIVEN_odd_sized_cinemascope_WHEN_planned_THEN_even_sizes_and_area_scaled_bitrates() -> None:
    ladder = plan_ladder(source(847, 361), FIXED)

    assert [(r.name, r.width, r.height, r.video_bitrate_kbps) for r in ladder] == [
        ("360p", 844, 360, 1060),
        ("240p", 564, 240, 530),
    ]


def test_GIVEN_source_without_audio_WHEN_planned_THEN_no_audio_bitrate_in_any_rung() -> None:
    ladder = plan_ladder(source(640, 360, audio=False), FIXED)

    assert [r.audio_bitrate_kbps for r in ladder] == [0, 0]
    assert ladder[0].bandwidth_bps == 1_000_000


def test_GIVEN_rendition_WHEN_bandwidth_asked_THEN_peak_for_bandwidth_and_nominal_for_average() -> None:
    rendition = Rendition("720p", 1280, 720, 2800, 3500, 7000, 128)

    assert rendition.bandwidth_bps == 3_628_000
    assert rendition.average_bandwidth_bps == 2_928_000


def test_GIVEN_one_pixel_wide_source_WHEN_planned_THEN_corrupt_media() -> None:
    with pytest.raises(CorruptMedia):
        plan_ladder(source(1, 720), FIXED)


def test_GIVEN_custom_rungs_WHEN_planned_THEN_they_are_used() -> None:
    config = LadderConfig(
        rungs=(Rung(540, 2000), Rung(270, 500)), audio_bitrate_kbps=96, peak_ratio=1.5, rate_control=RateControl.FIXED
    )

    ladder = plan_ladder(source(1920, 1080), config)

    assert ladder == [
        Rendition("540p", 960, 540, 2000, 3000, 6000, 96),
        Rendition("270p", 480, 270, 500, 750, 1500, 96),
    ]


@pytest.mark.parametrize(
    "rungs",
    [(), (Rung(360, 800), Rung(720, 2800)), (Rung(720, 800), Rung(360, 2800)), (Rung(361, 800),)],
    ids=["empty", "increasing-size", "increasing-bitrate", "odd-size"],
)
def test_GIVEN_inconsistent_rungs_WHEN_config_built_THEN_value_error(rungs: tuple[Rung, ...]) -> None:
    with pytest.raises(ValueError):
        LadderConfig(rungs=rungs)


@given(width=sizes, height=sizes, rotation=rotations)
def test_GIVEN_any_source_WHEN_planned_THEN_never_upscaled(width: int, height: int, rotation: int) -> None:
    info = source(width, height, rotation=rotation)

    for rendition in plan_ladder(info, FIXED):
        assert min(rendition.width, rendition.height) <= min(info.display_width, info.display_height)
        # The long side may round up to the next even number, by one pixel at most.
        assert max(rendition.width, rendition.height) <= max(info.display_width, info.display_height) + 1


@given(width=sizes, height=sizes, rotation=rotations)
def test_GIVEN_any_source_WHEN_planned_THEN_even_sizes(width: int, height: int, rotation: int) -> None:
    for rendition in plan_ladder(source(width, height, rotation=rotation), FIXED):
        assert rendition.width % 2 == 0 and rendition.height % 2 == 0
        assert rendition.width >= 2 and rendition.height >= 2


@given(width=sizes, height=sizes, rotation=rotations)
def test_GIVEN_any_source_WHEN_planned_THEN_aspect_kept_within_a_pixel(width: int, height: int, rotation: int) -> None:
    info = source(width, height, rotation=rotation)
    src_w, src_h = info.display_width, info.display_height

    for rendition in plan_ladder(info, FIXED):
        # The long side is within one pixel of the exact one for the chosen short side
        # (in integers: |w - h * W/H| <= 1  <=>  |w * H - h * W| <= H)...
        if rendition.width >= rendition.height:
            assert abs(rendition.width * src_h - rendition.height * src_w) <= src_h
        else:
            assert abs(rendition.height * src_w - rendition.width * src_h) <= src_w
        # ...and the orientation never flips.
        assert (rendition.width >= rendition.height) == (info.display_width >= info.display_height) or (
            rendition.width == rendition.height
        )


@given(width=sizes, height=sizes, rotation=rotations)
def test_GIVEN_any_source_WHEN_planned_THEN_sizes_and_bitrates_strictly_decrease(
    width: int, height: int, rotation: int
) -> None:
    ladder = plan_ladder(source(width, height, rotation=rotation), FIXED)

    assert ladder, "every source gets at least one rendition"
    for higher, lower in zip(ladder, ladder[1:], strict=False):
        assert lower.width < higher.width and lower.height < higher.height
        assert lower.video_bitrate_kbps < higher.video_bitrate_kbps
        assert lower.bandwidth_bps < higher.bandwidth_bps
    assert len({r.name for r in ladder}) == len(ladder)


@given(short=st.integers(min_value=2, max_value=239), long=st.integers(min_value=2, max_value=8192))
def test_GIVEN_source_below_lowest_rung_WHEN_planned_THEN_exactly_one_rendition(short: int, long: int) -> None:
    ladder = plan_ladder(source(max(short, long), short))

    assert len(ladder) == 1
    assert ladder[0].height == short - short % 2


@given(width=sizes, height=sizes)
def test_GIVEN_any_source_WHEN_planned_THEN_rungs_are_exactly_those_that_fit(width: int, height: int) -> None:
    expected = [r.short_side for r in DEFAULT_LADDER.rungs if r.short_side <= min(width, height)]

    names = [r.name for r in plan_ladder(source(width, height), FIXED)]

    if expected:
        assert names == [f"{side}p" for side in expected]


def test_GIVEN_square_source_WHEN_scaled_THEN_square() -> None:
    assert scaled_size(1080, 1080, 720) == (720, 720)


def test_GIVEN_per_title_ladder_WHEN_planned_with_a_title_crf_THEN_top_gets_it_and_lower_rungs_coarser() -> None:
    ladder = plan_ladder(source(1920, 1080), DEFAULT_LADDER, title_crf=21.0)

    assert [r.crf for r in ladder] == [21.0, 21.5, 22.0, 22.5, 23.0]
    # The caps are the fixed ladder's averages, with two seconds of them as the buffer.
    assert [(r.max_bitrate_kbps, r.buffer_kbps) for r in ladder] == [
        (r.video_bitrate_kbps, 2 * r.video_bitrate_kbps) for r in plan_ladder(source(1920, 1080), FIXED)
    ]


@pytest.mark.parametrize("title_crf", [LOWER_RUNG_MAX_CRF, 27.0, 31.5])
def test_GIVEN_easy_content_WHEN_planned_THEN_the_top_keeps_its_level_and_no_lower_rung_is_coarser_than_the_ceiling(
    title_crf: float,
) -> None:
    ladder = plan_ladder(source(1920, 1080), DEFAULT_LADDER, title_crf=title_crf)

    assert ladder[0].crf == title_crf
    assert [r.crf for r in ladder[1:]] == [LOWER_RUNG_MAX_CRF] * 4


def test_GIVEN_a_title_crf_just_under_the_ceiling_WHEN_planned_THEN_lower_rungs_step_up_to_it_and_stop() -> None:
    title_crf = LOWER_RUNG_MAX_CRF - 0.9

    ladder = plan_ladder(source(1920, 1080), DEFAULT_LADDER, title_crf=title_crf)

    assert [r.crf for r in ladder] == pytest.approx(
        [title_crf, title_crf + 0.5, LOWER_RUNG_MAX_CRF, LOWER_RUNG_MAX_CRF, LOWER_RUNG_MAX_CRF]
    )


def test_GIVEN_per_title_ladder_WHEN_planned_before_the_analysis_THEN_the_default_crf_held_within_bounds() -> None:
    assert plan_ladder(source(1280, 720), DEFAULT_LADDER)[0].crf == 23.0
    assert plan_ladder(source(1280, 720), DEFAULT_LADDER, title_crf=40.0)[0].crf == 32.0
    assert plan_ladder(source(1280, 720), DEFAULT_LADDER, title_crf=5.0)[0].crf == 18.0


def test_GIVEN_capped_crf_ladder_WHEN_planned_THEN_one_constant_crf_on_every_rung() -> None:
    config = replace(DEFAULT_LADDER, rate_control=RateControl.CAPPED_CRF, crf=21.0)

    assert {r.crf for r in plan_ladder(source(1920, 1080), config, title_crf=30.0)} == {21.0}


def test_GIVEN_source_carrying_less_than_a_rung_WHEN_planned_with_crf_THEN_no_rung_may_exceed_the_source() -> None:
    # A 640x272 clip at 408 kbit/s (a film trailer): the lowest rung would cap at 500.
    thin = replace(source(640, 272), video_bitrate_kbps=408)

    [rendition] = plan_ladder(thin, DEFAULT_LADDER)
    fixed = plan_ladder(thin, FIXED)

    assert (rendition.max_bitrate_kbps, rendition.video_bitrate_kbps) == (408, 408)
    assert fixed[0].max_bitrate_kbps > 408  # the fixed ladder stays what it was


def test_GIVEN_rate_control_text_WHEN_read_THEN_known_values_only() -> None:
    assert ladder_from_text("", "fixed").rate_control is RateControl.FIXED
    assert ladder_from_text("720:2800", "capped-crf").rate_control is RateControl.CAPPED_CRF
    assert ladder_from_text("", "").rate_control is RateControl.PER_TITLE
    with pytest.raises(ValueError, match="per-title, capped-crf, fixed"):
        ladder_from_text("", "vbr")


@pytest.mark.parametrize(
    ("source_rate", "expected"),
    [
        (Fraction(120), Fraction(60)),
        (Fraction(120000, 1001), Fraction(60000, 1001)),  # 119.88 -> 59.94
        (Fraction(240), Fraction(60)),
        (Fraction(240000, 1001), Fraction(60000, 1001)),
        (Fraction(100), Fraction(50)),
        (Fraction(90), Fraction(45)),
        (Fraction(72), Fraction(36)),  # 72/1 is above 60: half, not 60
        (Fraction(144), Fraction(48)),
        (Fraction(61), Fraction(61, 2)),
        (Fraction(12003, 100), Fraction(12003, 200)),  # a variable-rate "120" averaging 120.03: halved, not thirded
        (Fraction(12013, 100), Fraction(12013, 300)),  # 0.11 % over 120 is past the tolerance
    ],
)
def test_GIVEN_a_source_above_60_fps_WHEN_output_rate_decided_THEN_the_largest_whole_fraction_at_or_below_60(
    source_rate: Fraction, expected: Fraction
) -> None:
    rate = output_frame_rate(source_rate)

    assert rate == expected
    assert (source_rate / rate).denominator == 1  # an exact divisor: every k-th frame is kept


@pytest.mark.parametrize(
    "source_rate", [Fraction(60), Fraction(60000, 1001), Fraction(50), Fraction(30000, 1001), Fraction(24), Fraction(1)]
)
def test_GIVEN_a_source_at_or_below_60_fps_WHEN_output_rate_decided_THEN_it_keeps_its_rate(
    source_rate: Fraction,
) -> None:
    assert output_frame_rate(source_rate) == source_rate


@given(st.fractions(min_value=Fraction(1, 100), max_value=240, max_denominator=1001))
def test_GIVEN_any_rate_ffprobe_lets_through_WHEN_output_rate_decided_THEN_at_most_60_and_dividing_the_source(
    source_rate: Fraction,
) -> None:
    rate = output_frame_rate(source_rate)

    assert rate <= Fraction(60) * Fraction(1001, 1000)
    assert (source_rate / rate).denominator == 1
    # the largest such rate: one divisor fewer would be over the limit
    divisor = source_rate / rate
    assert divisor == 1 or source_rate / (divisor - 1) > Fraction(60) * Fraction(1001, 1000)


def test_GIVEN_no_rate_WHEN_output_rate_decided_THEN_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        output_frame_rate(Fraction(0))
