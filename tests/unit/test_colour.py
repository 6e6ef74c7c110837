"""Colour: the probe's colour facts, the policy for untagged sources, and the
exact filters and tags that make every output SDR BT.709 limited range (no
FFmpeg needed; tests/integration/test_colour_ffmpeg.py runs them)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from tests.filter_graph_text import filters_applied, filters_in, graph_of
from thumbnails.domain_logic.frame_grab import SkipFrames, build_frame_grab_args
from transcode.domain_logic.chunk_encoding import build_chunk_args
from transcode.domain_logic.chunk_planning import ChunkTask, plan_chunks
from transcode.domain_logic.hls import build_hls_args
from transcode.domain_logic.ladder import plan_ladder
from transcode.domain_logic.mediaconvert_job import build_create_job_request
from vidpipe.adapters.ffmpeg.inputs import input_args
from vidpipe.domain.colour import (
    SDR_BT709,
    VideoColour,
    assume_untagged,
    ladder_prefilter,
    rgb_scale_options,
    sdr_scale_options,
    tone_map,
)
from vidpipe.domain.filter_graph import FilterGraph
from vidpipe.domain.source_info import SourceInfo, parse_probe

# What ffprobe reports for an iPhone's default recording (HEVC 10-bit, HLG) and an HDR10 file.
IPHONE_HLG = VideoColour(
    transfer="arib-std-b67", primaries="bt2020", matrix="bt2020nc", range="tv", pixel_format="yuv420p10le"
)
HDR10_PQ = VideoColour(
    transfer="smpte2084", primaries="bt2020", matrix="bt2020nc", range="tv", pixel_format="yuv420p10le"
)
# ffmpeg-python writes a filter's keyword options in alphabetical order.
HLG_TO_SDR = [
    "zscale=min=bt2020nc:npl=100:pin=bt2020:rin=tv:t=linear:tin=arib-std-b67",
    "format=gbrpf32le",
    "zscale=p=bt709",
    "tonemap=desat=0:tonemap=hable",
    "zscale=m=bt709:r=tv:t=bt709",
    "format=yuv420p",
]
BT601_TO_BT709 = {"in_color_matrix": "bt601", "out_color_matrix": "bt709", "in_range": "tv", "out_range": "tv"}
BT709_TAGS = ["-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709", "-color_range", "tv"]


def source_info(width: int, height: int, colour: VideoColour, *, rotation: int = 0) -> SourceInfo:
    return SourceInfo(
        duration_s=100.0,
        width=width,
        height=height,
        rotation=rotation,
        frame_rate=Fraction(30),
        video_codec="hevc",
        audio_codec="aac",
        audio_channels=2,
        format_name="mov,mp4,m4a,3gp,3g2,mj2",
        audio_sample_rate=48000,
        colour=colour,
    )


def rung(width: int, height: int, scale_options: str = "") -> list[str]:
    return [f"scale={width}:{height}{scale_options}", "setsar=1", "format=yuv420p"]


# ------------------------------------------------------------------ the probe


def test_GIVEN_an_iphone_hlg_stream_WHEN_probed_THEN_its_colour_facts_and_10_bits() -> None:
    probe = {
        "format": {"format_name": "mov,mp4,m4a,3gp,3g2,mj2", "duration": "3.0"},
        "streams": [
            {"codec_type": "video", "codec_name": "hevc", "width": 1920, "height": 1080, "avg_frame_rate": "30/1",
             "pix_fmt": "yuv420p10le", "color_range": "tv", "color_space": "bt2020nc",
             "color_transfer": "arib-std-b67", "color_primaries": "bt2020"},
        ],
    }  # fmt: skip

    info = parse_probe(probe)

    assert info.colour == IPHONE_HLG
    assert info.colour.is_hdr and info.colour.bit_depth == 10


def test_GIVEN_a_stream_without_colour_tags_WHEN_probed_THEN_nothing_stated() -> None:
    probe = {
        "format": {"format_name": "matroska,webm", "duration": "3.0"},
        "streams": [{"codec_type": "video", "codec_name": "vp9", "width": 640, "height": 360, "avg_frame_rate": "25/1",
                     "pix_fmt": "yuv420p", "color_space": "unknown", "color_transfer": "unknown"}],
    }  # fmt: skip

    colour = parse_probe(probe).colour

    assert colour == VideoColour(pixel_format="yuv420p")
    assert not colour.is_hdr and colour.bit_depth == 8


def test_GIVEN_a_source_built_without_colour_THEN_it_states_nothing() -> None:
    # Constructors written before the colour fields keep working.
    assert source_info(640, 360, VideoColour()).colour == VideoColour()


# ------------------------------------------------------------------ untagged sources


@pytest.mark.parametrize(
    ("width", "height", "matrix"),
    [
        (640, 360, "smpte170m"),
        (720, 576, "smpte170m"),  # PAL SD
        (360, 640, "smpte170m"),  # an SD phone clip held upright
        (1280, 720, "bt709"),
        (720, 1280, "bt709"),  # an HD phone clip held upright
        (1024, 768, "bt709"),  # taller than PAL
    ],
)
def test_GIVEN_an_untagged_source_WHEN_assumed_THEN_bt601_for_sd_and_bt709_for_hd(
    width: int, height: int, matrix: str
) -> None:
    assert assume_untagged(VideoColour(pixel_format="yuv420p"), width, height) == VideoColour(
        matrix=matrix, range="tv", pixel_format="yuv420p"
    )


def test_GIVEN_an_untagged_jpeg_pixel_format_WHEN_assumed_THEN_full_range() -> None:
    assert assume_untagged(VideoColour(pixel_format="yuvj420p"), 640, 480).range == "pc"


def test_GIVEN_tagged_sources_WHEN_assumed_THEN_their_own_tags_stand() -> None:
    assert assume_untagged(IPHONE_HLG, 640, 360) == IPHONE_HLG
    assert assume_untagged(VideoColour(transfer="smpte2084"), 640, 360).matrix == "bt2020nc"


# ------------------------------------------------------------------ filters


def test_GIVEN_hlg_WHEN_tone_map_built_THEN_the_recipe_with_the_sources_own_properties() -> None:
    assert filters_applied(lambda video: tone_map(video, IPHONE_HLG)) == HLG_TO_SDR


def test_GIVEN_pq_for_stills_WHEN_tone_map_built_THEN_it_ends_in_planar_rgb() -> None:
    assert filters_applied(lambda video: tone_map(video, HDR10_PQ, pixel_format="gbrp")) == [
        "zscale=min=bt2020nc:npl=100:pin=bt2020:rin=tv:t=linear:tin=smpte2084",
        "format=gbrpf32le",
        "zscale=p=bt709",
        "tonemap=desat=0:tonemap=hable",
        "zscale=t=bt709",
        "format=gbrp",
    ]


def test_GIVEN_hdr_with_odd_tags_WHEN_tone_map_built_THEN_bt2020_assumed_and_full_range_read() -> None:
    colour = VideoColour(transfer="smpte2084", primaries="unknown-ish", matrix="gbr", range="pc")

    linear = filters_applied(lambda video: tone_map(video, colour))[0]
    assert linear == "zscale=min=bt2020nc:npl=100:pin=bt2020:rin=pc:t=linear:tin=smpte2084"


def test_GIVEN_sdr_WHEN_tone_map_asked_THEN_value_error() -> None:
    with pytest.raises(ValueError, match="not HDR"):
        filters_applied(lambda video: tone_map(video, SDR_BT709))


@pytest.mark.parametrize(
    ("colour", "options"),
    [
        (SDR_BT709, {}),
        (VideoColour(matrix="bt709", range="tv"), {}),
        (VideoColour(matrix="smpte170m", range="tv"), BT601_TO_BT709),
        (VideoColour(matrix="bt470bg", range="tv"), BT601_TO_BT709),
        (VideoColour(matrix="bt709", range="pc"), {**BT601_TO_BT709, "in_color_matrix": "bt709", "in_range": "pc"}),
        (VideoColour(matrix="smpte170m", range="pc", pixel_format="yuvj420p"), {**BT601_TO_BT709, "in_range": "pc"}),
        (VideoColour(matrix="gbr", pixel_format="gbrp"), {"out_color_matrix": "bt709", "out_range": "tv"}),
        (IPHONE_HLG, {}),  # the tone-map already ends in BT.709 limited
    ],
)  # fmt: skip
def test_GIVEN_a_source_WHEN_scale_options_built_THEN_converted_to_bt709_limited_only_when_needed(
    colour: VideoColour, options: dict[str, str]
) -> None:
    assert sdr_scale_options(colour) == options


def test_GIVEN_sources_WHEN_rgb_options_built_THEN_their_own_matrix_and_range() -> None:
    assert rgb_scale_options(VideoColour(matrix="smpte170m", range="pc")) == {
        "in_color_matrix": "bt601",
        "in_range": "pc",
    }
    assert rgb_scale_options(SDR_BT709) == {"in_color_matrix": "bt709", "in_range": "tv"}
    assert rgb_scale_options(VideoColour(pixel_format="gbrp")) == {}


def test_GIVEN_hdr_WHEN_ladder_prefilter_built_THEN_resized_to_the_top_rung_then_tone_mapped_once() -> None:
    resized_then_mapped = filters_applied(lambda video: ladder_prefilter(video, IPHONE_HLG, (1920, 1080)))
    assert resized_then_mapped == ["scale=1920:1080", *HLG_TO_SDR]
    video = FilterGraph().add_input(input_args(Path("/in/source"), "mov"))["v:0"]
    assert ladder_prefilter(video, SDR_BT709, (1920, 1080)) is video  # SDR: nothing before the split


# ------------------------------------------------------------------ where the filters go


def test_GIVEN_a_4k_hlg_phone_clip_WHEN_ladder_args_built_THEN_tone_mapped_once_at_1080p_and_tagged_bt709() -> None:
    info = source_info(3840, 2160, IPHONE_HLG)

    args = build_hls_args(Path("/in/source"), info, plan_ladder(info), Path("/out"))

    assert filters_in(graph_of(args)) == [
        "fps=fps=30/1", "scale=1920:1080", *HLG_TO_SDR, "split=5",
        *rung(1920, 1080), *rung(1280, 720), *rung(854, 480), *rung(640, 360), *rung(426, 240),
    ]  # fmt: skip
    position = args.index("-color_primaries")
    assert args[position : position + len(BT709_TAGS)] == BT709_TAGS


def test_GIVEN_an_untagged_sd_source_WHEN_ladder_args_built_THEN_each_rung_converts_bt601_to_bt709() -> None:
    info = source_info(640, 360, VideoColour(pixel_format="yuv420p"))

    graph = graph_of(build_hls_args(Path("/in/source"), info, plan_ladder(info), Path("/out")))

    to_bt709 = ":in_color_matrix=bt601:in_range=tv:out_color_matrix=bt709:out_range=tv"
    assert filters_in(graph) == ["fps=fps=30/1", "split=2", *rung(640, 360, to_bt709), *rung(426, 240, to_bt709)]


def test_GIVEN_a_full_range_hd_source_WHEN_ladder_args_built_THEN_squeezed_to_limited_range() -> None:
    info = source_info(1280, 720, VideoColour(matrix="bt709", range="pc", pixel_format="yuvj420p"))

    graph = graph_of(build_hls_args(Path("/in/source"), info, plan_ladder(info), Path("/out")))

    assert "scale=1280:720:in_color_matrix=bt709:in_range=pc:out_color_matrix=bt709:out_range=tv" in filters_in(graph)


def test_GIVEN_a_pq_source_WHEN_chunked_THEN_every_chunk_tone_maps_like_the_single_pass() -> None:
    info = source_info(1920, 1080, HDR10_PQ)
    ladder = plan_ladder(info)
    plan = plan_chunks(info, chunk_s=32)

    task = ChunkTask.from_dict(ChunkTask.of(plan, 1, ladder, info).to_dict())
    chunk_graph = graph_of(build_chunk_args(task, Path("/in/source"), None, Path("/out")))
    single_graph = graph_of(build_hls_args(Path("/in/source"), info, ladder, Path("/out")))

    assert task.colour == HDR10_PQ
    to_sdr = ["scale=1920:1080", *filters_applied(lambda video: tone_map(video, HDR10_PQ)), "split=5"]
    chunk_filters, single_filters = filters_in(chunk_graph), filters_in(single_graph)
    # the chunk's fps and trim, then the very filters of the single pass
    assert [name.partition("=")[0] for name in chunk_filters[:2]] == ["fps", "trim"]
    assert chunk_filters[2:] == single_filters[1:]
    assert single_filters[1 : 1 + len(to_sdr)] == to_sdr


def test_GIVEN_a_chunk_task_from_before_colour_WHEN_read_THEN_plain_bt709() -> None:
    info = source_info(1920, 1080, VideoColour())
    data = ChunkTask.of(plan_chunks(info, chunk_s=32), 0, plan_ladder(info), info).to_dict()
    del data["colour"]

    task = ChunkTask.from_dict(data)

    assert task.colour == VideoColour()
    assert "in_color_matrix" not in graph_of(build_chunk_args(task, Path("/in/source"), None, Path("/out")))


def test_GIVEN_an_hlg_clip_WHEN_frame_grab_built_THEN_tiles_and_candidates_tone_mapped_after_shrinking() -> None:
    args = build_frame_grab_args(
        Path("/in/source"),
        Path("/work"),
        interval_ms=1000,
        tile_count=3,
        tile_size=(160, 90),
        candidate_slots=(1,),
        candidate_size=(1280, 720),
        skip=SkipFrames.NON_KEY,
        demuxer="mov",
        colour=IPHONE_HLG,
    )

    to_rgb = filters_applied(lambda video: tone_map(video, IPHONE_HLG, pixel_format="gbrp"))
    assert filters_in(graph_of(args)) == [
        "fps=eof_action=pass:fps=1:round=near:start_time=0", "split=2",
        "scale=160:90:flags=area", *to_rgb,
        "select=expr=eq(n\\,1)", "scale=1280:720:flags=area", *to_rgb,
    ]  # fmt: skip


# ------------------------------------------------------------------ MediaConvert


def mediaconvert_outputs(info: SourceInfo) -> tuple[list[dict], dict, dict]:
    request = build_create_job_request(
        job_id="job-1", stack_name="vidpipe", role_arn="arn:aws:iam::123456789012:role/mc",
        source_url="s3://uploads/uploads/job-1/source", outputs_url="s3://outputs/jobs/job-1/",
        source=info, ladder=plan_ladder(info),
    )  # fmt: skip
    hls_group, capture_group, mp4_group = request["Settings"]["OutputGroups"]
    # The MP4 download is one more encoded output: the same colour rules.
    return hls_group["Outputs"] + mp4_group["Outputs"], capture_group["Outputs"][0], request["Settings"]["Inputs"][0]


def test_GIVEN_an_hlg_source_WHEN_mediaconvert_job_built_THEN_every_output_tone_mapped_to_709_limited() -> None:
    renditions, capture, _ = mediaconvert_outputs(source_info(1920, 1080, IPHONE_HLG))

    for output in renditions:
        description = output["VideoDescription"]
        assert description["ColorMetadata"] == "INSERT"
        assert description["VideoPreprocessors"] == {
            "ColorCorrector": {
                "ColorSpaceConversion": "FORCE_709",
                "SampleRangeConversion": "LIMITED_RANGE_SQUEEZE",
                "HdrToSdrToneMapper": "PRESERVE_DETAILS",
            }
        }
    assert capture["VideoDescription"]["VideoPreprocessors"]["ColorCorrector"] == {
        "ColorSpaceConversion": "FORCE_709",
        "HdrToSdrToneMapper": "PRESERVE_DETAILS",
    }


def test_GIVEN_an_hdr10_source_WHEN_mediaconvert_job_built_THEN_the_vibrant_tone_mapper() -> None:
    renditions, _, _ = mediaconvert_outputs(source_info(1920, 1080, HDR10_PQ))

    corrector = renditions[0]["VideoDescription"]["VideoPreprocessors"]["ColorCorrector"]
    assert corrector["HdrToSdrToneMapper"] == "VIBRANT"


@pytest.mark.parametrize(("width", "height", "fallback"), [(640, 360, "REC_601"), (1920, 1080, "REC_709")])
def test_GIVEN_an_untagged_sdr_source_WHEN_mediaconvert_job_built_THEN_read_as_players_read_it_and_forced_to_709(
    width: int, height: int, fallback: str
) -> None:
    renditions, _, input_settings = mediaconvert_outputs(source_info(width, height, VideoColour()))

    assert input_settings["VideoSelector"] == {"Rotate": "AUTO", "ColorSpace": fallback, "ColorSpaceUsage": "FALLBACK"}
    assert renditions[0]["VideoDescription"]["VideoPreprocessors"] == {
        "ColorCorrector": {"ColorSpaceConversion": "FORCE_709", "SampleRangeConversion": "LIMITED_RANGE_SQUEEZE"}
    }
