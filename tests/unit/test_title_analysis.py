"""The per-title analysis's plan and decision, without running FFmpeg."""

from __future__ import annotations

import json
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import pytest

from tests.filter_graph_text import graph_of
from transcode.domain_logic import transcoding
from transcode.domain_logic.ladder import DEFAULT_LADDER, MAX_CRF, MIN_CRF, Rendition, plan_ladder
from transcode.domain_logic.title_analysis import (
    FIXED_CPU_S,
    MAX_SAMPLE_S,
    ProbePoint,
    SampleWindow,
    analysis_size,
    build_probe_encode_args,
    build_probe_score_args,
    crf_for_target,
    expected_cpu_s,
    plan_samples,
    read_vmaf,
    worth_analysing,
)
from vidpipe.domain.errors import FfmpegError
from vidpipe.domain.source_info import CODEC_WHITELIST, SourceInfo

SCRATCH = Path("/scratch/job/analysis")


def test_GIVEN_a_ten_minute_video_WHEN_samples_planned_THEN_6_percent_in_2_s_windows_spread_evenly() -> None:
    windows = plan_samples(600.0)

    # 6 % would be 36 s: held to 20 s, in ten windows of 2 s.
    assert len(windows) == 10
    assert sum(window.length_s for window in windows) == pytest.approx(MAX_SAMPLE_S, abs=0.01)
    starts = [window.start_s for window in windows]
    assert starts == sorted(starts)
    assert windows[0].start_s > 0 and windows[-1].start_s + windows[-1].length_s < 600.0


def test_GIVEN_a_short_video_WHEN_samples_planned_THEN_half_a_second_from_its_middle() -> None:
    assert plan_samples(8.0) == [SampleWindow(3.75, 0.5)]


def test_GIVEN_a_video_shorter_than_the_minimum_sample_WHEN_planned_THEN_it_is_sampled_whole() -> None:
    assert plan_samples(0.4, start_s=1.4) == [SampleWindow(1.4, 0.4)]


def test_GIVEN_a_1080p_top_rung_WHEN_analysis_size_chosen_THEN_540p_with_the_same_aspect() -> None:
    assert analysis_size(Rendition("1080p", 1920, 1080, 5000, 6250, 12500, 128)) == (960, 540)
    assert analysis_size(Rendition("360p", 640, 360, 800, 1000, 2000, 128)) == (640, 360)
    assert analysis_size(Rendition("1080p", 1080, 1920, 5000, 6250, 12500, 128)) == (540, 960)


def test_GIVEN_probes_either_side_of_the_target_WHEN_crf_chosen_THEN_the_line_between_them_decides() -> None:
    probes = [ProbePoint(22.0, 96.0, 3000), ProbePoint(28.0, 90.0, 1200)]

    assert crf_for_target(probes, target=94.5) == 23.5


def test_GIVEN_hard_content_below_target_at_both_probes_WHEN_crf_chosen_THEN_extrapolated_down_to_the_bound() -> None:
    assert crf_for_target([ProbePoint(22.0, 93.0, 9000), ProbePoint(28.0, 87.0, 4000)], target=94.5) == 20.5
    assert crf_for_target([ProbePoint(22.0, 80.0, 9000), ProbePoint(28.0, 70.0, 4000)], target=94.5) == MIN_CRF


def test_GIVEN_easy_content_that_barely_changes_WHEN_crf_chosen_THEN_the_highest_crf_allowed() -> None:
    assert crf_for_target([ProbePoint(22.0, 99.1, 90), ProbePoint(28.0, 99.0, 70)], target=94.5) == MAX_CRF
    # A flat line below the target: nothing in reach helps, so the best quality we allow.
    assert crf_for_target([ProbePoint(22.0, 60.0, 90), ProbePoint(28.0, 60.0, 70)], target=94.5) == MIN_CRF


def test_GIVEN_windows_WHEN_probe_encode_args_built_THEN_one_decode_a_lossless_reference_and_one_encode_per_crf() -> (
    None
):
    windows = [SampleWindow(10.0, 2.0), SampleWindow(30.0, 2.0)]

    args = build_probe_encode_args(
        Path("/scratch/job/source"), "mov", windows, Fraction(30000, 1001), (960, 540), SCRATCH, 4
    )

    # Each window is its own input, read from the keyframe at or before its start.
    assert args[:12] == [
        "-noaccurate_seek", "-ss", "10.000",
        "-protocol_whitelist", "file", "-f", "mov", "-format_whitelist", "mov",
        "-codec_whitelist", CODEC_WHITELIST, "-i",
    ]  # fmt: skip
    graph = args[args.index("-filter_complex") + 1]
    # Each window trimmed to its length and put on the grid before the join (after
    # it, fps would repeat frames across the joined timestamps).
    assert graph == (
        "[0:v:0]trim=duration=2.000[s0];[s0]fps=fps=30000/1001[s1];[s1]setpts=PTS-STARTPTS[s2];"
        "[1:v:0]trim=duration=2.000[s3];[s3]fps=fps=30000/1001[s4];[s4]setpts=PTS-STARTPTS[s5];"
        "[s2][s5]concat=a=0:n=2:v=1[s6];"
        "[s6]scale=960:540[s7];[s7]setsar=1[s8];[s8]format=yuv420p[s9];[s9]setpts=PTS-STARTPTS[s10];"
        "[s10]split=3[s11][s12][s13]"
    )
    # the split's first copy is the reference
    assert args[args.index("[s11]") + 1 : args.index("[s11]") + 7] == [
        "-c:v", "libx264", "-preset", "ultrafast", "-qp", "0",
    ]  # fmt: skip
    assert [args[i + 1] for i, arg in enumerate(args) if arg == "-crf"] == ["22", "28"]
    # The ladder's preset and GOP (4 s at 29.97 fps, rounded up).
    assert args.count("veryfast") == 2 and args.count("120") == 2
    assert args[-1] == "/scratch/job/analysis/probe_b.mp4"


def test_GIVEN_probe_files_WHEN_score_args_built_THEN_each_probe_scored_against_the_reference() -> None:
    args = build_probe_score_args(SCRATCH, threads=2)

    # ffmpeg-python numbers the inputs in the order the graph reaches them, and
    # libvmaf reads the probe (the distorted picture) before the reference.
    assert [args[i + 1] for i, arg in enumerate(args) if arg == "-i"] == [
        "file:/scratch/job/analysis/probe_a.mp4",
        "file:/scratch/job/analysis/reference.mp4",
        "file:/scratch/job/analysis/probe_b.mp4",
    ]
    assert graph_of(args) == (
        "[0:v:0]setpts=PTS-STARTPTS[s0];[1:v:0]setpts=PTS-STARTPTS[s1];[s1]split=2[s2][s3];"
        "[s0][s2]libvmaf=log_fmt=json:log_path=/scratch/job/analysis/vmaf_a.json:n_subsample=2:n_threads=2[s4];"
        "[2:v:0]setpts=PTS-STARTPTS[s5];"
        "[s5][s3]libvmaf=log_fmt=json:log_path=/scratch/job/analysis/vmaf_b.json:n_subsample=2:n_threads=2[s6]"
    )
    assert args[-10:] == ["-map", "[s4]", "-f", "null", "-", "-map", "[s6]", "-f", "null", "-"]


def test_GIVEN_libvmaf_logs_WHEN_read_THEN_pooled_mean_or_a_clear_error(tmp_path: Path) -> None:
    log = tmp_path / "vmaf.json"
    log.write_text(json.dumps({"pooled_metrics": {"vmaf": {"min": 80.0, "mean": 93.25}}}))

    assert read_vmaf(log) == 93.25
    with pytest.raises(FfmpegError, match="no usable score"):
        read_vmaf(tmp_path / "missing.json")


def camera_source(width: int, height: int, duration_s: float) -> SourceInfo:
    return SourceInfo(
        duration_s=duration_s, width=width, height=height, rotation=0, frame_rate=Fraction(30), video_codec="h264",
        audio_codec="aac", audio_channels=2, format_name="mov,mp4,m4a,3gp,3g2,mj2", audio_sample_rate=48000,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("width", "height", "duration_s", "expected"),
    [
        (1920, 1080, 600.0, True),  # a long title: the sample is 20 s of 600
        (1920, 1080, 8.0, True),  # a short 1080p title still pays for its analysis
        (1280, 720, 8.0, False),  # an 8 s 720p clip: the fixed cost alone is over a tenth
        (640, 360, 60.0, False),  # a minute at 360p costs a few CPU-seconds in all
        (426, 240, 30.0, False),  # half a minute at 240p
        (426, 240, 3600.0, True),  # but an hour of it pays for the analysis
    ],
)
def test_GIVEN_a_title_WHEN_asked_whether_worth_analysing_THEN_only_where_the_analysis_stays_within_a_tenth(
    width: int, height: int, duration_s: float, expected: bool
) -> None:
    source = camera_source(width, height, duration_s)
    ladder = plan_ladder(source)

    analysis_cpu_s, ladder_cpu_s = expected_cpu_s(source, ladder)

    assert worth_analysing(source, ladder, DEFAULT_LADDER.analysis_cost_share) is expected
    assert (analysis_cpu_s <= 0.10 * ladder_cpu_s) is expected
    assert analysis_cpu_s > FIXED_CPU_S


def test_GIVEN_a_short_small_title_WHEN_its_ladder_planned_THEN_no_analysis_runs_and_the_default_crf_is_used(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def analysis_must_not_run(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the analysis ran for a title it cannot pay for")

    monkeypatch.setattr(transcoding, "analyse_title", analysis_must_not_run)
    source = camera_source(640, 360, 4.0)

    ladder, analysis = transcoding.plan_title_ladder(Path("clip.mp4"), source, DEFAULT_LADDER, tmp_path, timeout_s=60)

    assert analysis is None
    assert ladder[0].crf == DEFAULT_LADDER.crf


def test_GIVEN_a_negative_analysis_cost_share_WHEN_a_ladder_configured_THEN_refused() -> None:
    with pytest.raises(ValueError, match="analysis_cost_share"):
        replace(DEFAULT_LADDER, analysis_cost_share=-0.1)
