"""The encode's cost, known from the probe, against what a stage can do (no FFmpeg needed)."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import pytest

from transcode.domain_logic.chunk_planning import plan_chunks
from transcode.domain_logic.encode_cost import (
    EncodeCost,
    StageBudget,
    check_encode_cost,
    describe_source,
    encode_cost,
    lambda_budget,
    lambda_vcpus,
)
from transcode.domain_logic.fanout import fan_out, longest_chunk_s
from transcode.domain_logic.ladder import plan_ladder
from vidpipe.domain.errors import EncodeTooCostly, MediaError
from vidpipe.domain.events import ChunkRequested
from vidpipe.domain.source_info import SourceInfo

HD_60 = SourceInfo(
    duration_s=120.0, width=1920, height=1080, rotation=0, frame_rate=Fraction(60), video_codec="h264",
    audio_codec="aac", audio_channels=2, format_name="mov,mp4,m4a,3gp,3g2,mj2", audio_sample_rate=48000,
)  # fmt: skip
# Pixels of the default 1080p ladder's rungs: 1920x1080 + 1280x720 + 854x480 + 640x360 + 426x240.
LADDER_1080P_PIXELS = 2_073_600 + 921_600 + 409_920 + 230_400 + 102_240
# The stages as infra/template.yaml sizes them, with the time their handlers give FFmpeg.
TRANSCODE_FUNCTION = lambda_budget(3008, 900 - 90)
CHUNK_FUNCTION = lambda_budget(10240, 300 - 60)


def test_GIVEN_lambda_memory_WHEN_vcpus_counted_THEN_one_per_1769_mb_up_to_six() -> None:
    assert lambda_vcpus(1769) == 1
    assert lambda_vcpus(3008) == pytest.approx(1.7004, abs=1e-4)
    assert lambda_vcpus(10240) == pytest.approx(5.7886, abs=1e-4)
    assert lambda_vcpus(20000) == 6
    with pytest.raises(ValueError):
        lambda_vcpus(0)


def test_GIVEN_1080p60_for_2_minutes_with_early_playback_WHEN_costed_THEN_exact_pixels_and_about_629_cpu_s() -> None:
    cost = encode_cost(HD_60, plan_ladder(HD_60), duration_s=120.0, decodes=2)

    assert cost == EncodeCost(
        decoded_pixels=2 * 7200 * 2_073_600,
        scaled_pixels=7200 * 5 * 2_073_600,
        encoded_pixels=7200 * LADDER_1080P_PIXELS,
    )
    assert cost.cpu_s == pytest.approx(29.85984e9 / 390e6 + 74.6496e9 / 1.18e9 + 26.911872e9 / 55e6)
    assert cost.cpu_s == pytest.approx(629.13, abs=0.01)


def test_GIVEN_a_120_fps_source_WHEN_costed_THEN_all_source_frames_decoded_only_the_60_fps_output_encoded() -> None:
    clip = replace(HD_60, width=320, height=180, frame_rate=Fraction(120), duration_s=2.0)

    cost = encode_cost(clip, plan_ladder(clip), duration_s=2.0)

    assert cost == EncodeCost(decoded_pixels=240 * 57_600, scaled_pixels=120 * 57_600, encoded_pixels=120 * 57_600)


def test_GIVEN_a_chunk_WHEN_costed_THEN_its_decode_includes_the_seek_margin() -> None:
    hd_30 = replace(HD_60, frame_rate=Fraction(30000, 1001))

    cost = encode_cost(hd_30, plan_ladder(hd_30), duration_s=32.0, decoded_s=33.0)

    # 33 s and 32 s at 29.97: 989.01 and 959.04 frames, counted up
    assert cost.decoded_pixels == 990 * 2_073_600
    assert cost.encoded_pixels == 960 * LADDER_1080P_PIXELS


def test_GIVEN_normal_uploads_WHEN_checked_THEN_they_pass_with_margin() -> None:
    # the single path's longest job: 2 minutes of 1080p60, decoded twice (early playback)
    single = encode_cost(HD_60, plan_ladder(HD_60), duration_s=120.0, decodes=2)
    # an hour of 1080p30 in 32 s chunks: the longest chunk
    hour = replace(HD_60, frame_rate=Fraction(30), duration_s=3600.0)
    longest = longest_chunk_s(plan_chunks(hour, chunk_s=32), hour)
    chunk = encode_cost(hour, plan_ladder(hour), duration_s=longest, decoded_s=longest + 1)

    check_encode_cost(single, TRANSCODE_FUNCTION, what="2 min of 1080p60")
    check_encode_cost(chunk, CHUNK_FUNCTION, what="a chunk of 1080p30")

    assert longest == pytest.approx(32.0)
    assert single.cpu_s < 0.5 * TRANSCODE_FUNCTION.cpu_s  # 629 of 1377 CPU-seconds
    assert chunk.cpu_s < 0.1 * CHUNK_FUNCTION.cpu_s  # 79 of 1389


def test_GIVEN_8k_at_240_fps_for_2_minutes_WHEN_checked_on_the_transcode_function_THEN_too_costly() -> None:
    pathological = replace(HD_60, width=7680, height=4320, frame_rate=Fraction(240))
    cost = encode_cost(pathological, plan_ladder(pathological), duration_s=120.0, decodes=2)

    with pytest.raises(EncodeTooCostly) as raised:
        check_encode_cost(cost, TRANSCODE_FUNCTION, what=describe_source(pathological, 120.0))

    error = raised.value
    assert isinstance(error, MediaError)  # final: the job fails, no retry
    assert error.code == "ENCODE_TOO_COSTLY"
    assert error.message == (
        "encoding 7680x4320 at 240 fps for 120 s would take about 6,402 CPU-seconds "
        "(1,911 Gpixel to decode, 27 Gpixel to encode), "
        "more than the 1,377 this stage has (810 s on 1.7 vCPUs)"
    )


def test_GIVEN_a_cost_just_at_the_budget_WHEN_checked_THEN_allowed_and_just_above_refused() -> None:
    cost = EncodeCost(decoded_pixels=0, scaled_pixels=0, encoded_pixels=55_000_000 * 100)

    check_encode_cost(cost, StageBudget(time_s=50, vcpus=2), what="x")
    with pytest.raises(EncodeTooCostly):
        check_encode_cost(cost, StageBudget(time_s=49.9, vcpus=2), what="x")


class FakeWorkStore:
    def __init__(self) -> None:
        self.keys: list[str] = []

    def upload_file(self, path: Path, key: str, *, content_type: str | None = None) -> None:
        self.keys.append(key)

    def read_text(self, key: str) -> str:
        raise AssertionError("the planner reads nothing")


def plan(source: SourceInfo, tmp_path: Path, chunk_budget: StageBudget) -> tuple[int, FakeWorkStore, list[object]]:
    store, published = FakeWorkStore(), list[object]()
    total = fan_out("job-1", source, tmp_path, source_key="uploads/job-1/source", local_source=None, chunk_s=32,
                    timeout_s=60, work_store=store, publish=published.append, chunk_budget=chunk_budget)  # fmt: skip
    return total, store, published


def test_GIVEN_an_hour_of_1080p30_WHEN_planned_for_the_chunk_function_THEN_fanned_out(tmp_path: Path) -> None:
    hour = replace(HD_60, frame_rate=Fraction(30), duration_s=3600.0)

    total, store, published = plan(hour, tmp_path, CHUNK_FUNCTION)

    assert total == 113
    assert store.keys == ["chunks/job-1/plan.json"]
    assert sum(isinstance(event, ChunkRequested) for event in published) == 113


def test_GIVEN_8k_at_240_fps_WHEN_planned_for_a_3008_mb_chunk_function_THEN_refused_before_anything_is_stored(
    tmp_path: Path,
) -> None:
    pathological = replace(HD_60, width=7680, height=4320, frame_rate=Fraction(240), duration_s=600.0)

    with pytest.raises(EncodeTooCostly, match=r"^encoding one 32 s chunk of 7680x4320 at 240 fps for 600 s would"):
        plan(pathological, tmp_path, lambda_budget(3008, 240))

    assert not (tmp_path / "plan.json").exists()


def test_GIVEN_8k_at_240_fps_WHEN_planned_for_the_default_chunk_function_THEN_its_chunk_fits_in_three_quarters(
    tmp_path: Path,
) -> None:
    # Recorded, not wished: six vCPUs for 240 s decode 33 s of 8K at 240 fps and
    # encode the 1080p ladder at 60 fps, by the measured throughputs.
    pathological = replace(HD_60, width=7680, height=4320, frame_rate=Fraction(240), duration_s=600.0)
    cost = encode_cost(pathological, plan_ladder(pathological), duration_s=32.0, decoded_s=33.0)

    total, _, _ = plan(pathological, tmp_path, CHUNK_FUNCTION)

    assert total == 19
    assert cost.cpu_s == pytest.approx(1074, abs=1)
    assert 0.75 < cost.cpu_s / CHUNK_FUNCTION.cpu_s < 0.8
