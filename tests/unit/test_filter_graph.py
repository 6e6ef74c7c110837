"""vidpipe.domain.filter_graph: graphs written with ffmpeg-python come out as our
inputs, one -filter_complex and the labels to map (no FFmpeg needed;
tests/integration/test_filter_graph_ffmpeg.py runs one)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vidpipe.adapters.ffmpeg.inputs import input_args
from vidpipe.domain.filter_graph import FilterGraph, concat_video, filter_of_streams

SOURCE = input_args(Path("/in/source"), "mov")
OTHER = input_args(Path("/in/other"), "matroska")


def test_GIVEN_a_split_into_two_chains_WHEN_compiled_THEN_our_input_one_graph_and_a_label_per_output() -> None:
    graph = FilterGraph()
    copies = graph.add_input(SOURCE)["v:0"].filter("fps", fps="30/1").split()
    small, large = copies[0].filter("scale", 320, 180), copies[1].filter("scale", 1280, 720)

    compiled = graph.compile([small, large])

    assert compiled.input_args == SOURCE
    assert compiled.filter_args == [
        "-filter_complex",
        "[0:v:0]fps=fps=30/1[s0];[s0]split=2[s1][s2];[s1]scale=320:180[s3];[s2]scale=1280:720[s4]",
    ]
    assert compiled.outputs == ["[s3]", "[s4]"]
    assert compiled.args == [*SOURCE, *compiled.filter_args]
    assert compiled.input_count == 1


def test_GIVEN_keyword_options_WHEN_compiled_THEN_alphabetical_and_escaped_for_option_and_graph() -> None:
    graph = FilterGraph()
    logged = graph.add_input(SOURCE)["v:0"].filter("metadata", mode="print", file="/tmp/a:b'c,d.txt")

    compiled = graph.compile([logged])

    # option level: \: and \' ; graph level: every backslash and quote again, and the comma
    assert compiled.filter_args[1] == "[0:v:0]metadata=file=/tmp/a\\\\:b\\\\\\'c\\,d.txt:mode=print[s0]"


def test_GIVEN_a_filter_reading_the_second_input_first_WHEN_compiled_THEN_inputs_in_the_graphs_order() -> None:
    graph = FilterGraph()
    reference = graph.add_input(SOURCE)["v:0"]
    distorted = graph.add_input(OTHER)["v:0"]

    compiled = graph.compile([filter_of_streams([distorted, reference], "libvmaf")])

    assert compiled.input_args == [*OTHER, *SOURCE]
    assert compiled.filter_args[1] == "[0:v:0][1:v:0]libvmaf[s0]"


def test_GIVEN_two_parts_WHEN_concatenated_THEN_video_only_concat_of_both() -> None:
    graph = FilterGraph()
    parts = [graph.add_input(SOURCE)["v:0"], graph.add_input(OTHER)["v:0"]]

    compiled = graph.compile([concat_video(parts)])

    assert compiled.filter_args[1] == "[0:v:0][1:v:0]concat=a=0:n=2:v=1[s0]"
    assert compiled.input_count == 2


def test_GIVEN_an_input_the_graph_does_not_read_WHEN_compiled_THEN_value_error() -> None:
    graph = FilterGraph()
    video = graph.add_input(SOURCE)["v:0"].filter("null")
    graph.add_input(OTHER)

    with pytest.raises(ValueError, match=r"does not read input\(s\) \[1\]"):
        graph.compile([video])


def test_GIVEN_one_stream_feeding_two_filters_WHEN_compiled_THEN_value_error_asking_for_split() -> None:
    graph = FilterGraph()
    video = graph.add_input(SOURCE)["v:0"].filter("fps", fps=30)

    with pytest.raises(ValueError, match="split"):
        graph.compile([video.filter("scale", 320, 180), video.filter("scale", 640, 360)])
