"""The per-title analysis's plan and decision, without running FFmpeg."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest

from transcode.domain_logic.ladder import MAX_CRF, MIN_CRF, Rendition
from transcode.domain_logic.title_analysis import (
    MAX_SAMPLE_S,
    ProbePoint,
    SampleWindow,
    analysis_size,
    build_probe_encode_args,
    build_probe_score_args,
    crf_for_target,
    plan_samples,
    read_vmaf,
)
from vidpipe.domain.errors import FfmpegError
from vidpipe.domain.source_info import CODEC_WHITELIST

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
        "[0:v:0]trim=duration=2.000,fps=fps=30000/1001,setpts=PTS-STARTPTS[window0];"
        "[1:v:0]trim=duration=2.000,fps=fps=30000/1001,setpts=PTS-STARTPTS[window1];"
        "[window0][window1]concat=n=2:v=1:a=0,scale=960:540,setsar=1,format=yuv420p,setpts=PTS-STARTPTS[sampled];"
        "[sampled]split=3[reference][probe0][probe1]"
    )
    assert args[args.index("[reference]") + 1 : args.index("[reference]") + 7] == [
        "-c:v", "libx264", "-preset", "ultrafast", "-qp", "0",
    ]  # fmt: skip
    assert [args[i + 1] for i, arg in enumerate(args) if arg == "-crf"] == ["22", "28"]
    # The ladder's preset and GOP (4 s at 29.97 fps, rounded up).
    assert args.count("veryfast") == 2 and args.count("120") == 2
    assert args[-1] == "/scratch/job/analysis/probe_b.mp4"


def test_GIVEN_probe_files_WHEN_score_args_built_THEN_each_probe_scored_against_the_reference() -> None:
    args = build_probe_score_args(SCRATCH, threads=2)

    assert [args[i + 1] for i, arg in enumerate(args) if arg == "-i"] == [
        "file:/scratch/job/analysis/reference.mp4",
        "file:/scratch/job/analysis/probe_a.mp4",
        "file:/scratch/job/analysis/probe_b.mp4",
    ]
    graph = args[args.index("-filter_complex") + 1]
    assert "[probe0][reference0]libvmaf=n_threads=2:n_subsample=2:log_fmt=json:" in graph
    assert "log_path=/scratch/job/analysis/vmaf_b.json[scored1]" in graph
    assert args[-10:] == ["-map", "[scored0]", "-f", "null", "-", "-map", "[scored1]", "-f", "null", "-"]


def test_GIVEN_libvmaf_logs_WHEN_read_THEN_pooled_mean_or_a_clear_error(tmp_path: Path) -> None:
    log = tmp_path / "vmaf.json"
    log.write_text(json.dumps({"pooled_metrics": {"vmaf": {"min": 80.0, "mean": 93.25}}}))

    assert read_vmaf(log) == 93.25
    with pytest.raises(FfmpegError, match="no usable score"):
        read_vmaf(tmp_path / "missing.json")
