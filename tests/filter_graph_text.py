"""Reading the filter graphs that ffmpeg-python wrote (vidpipe.domain.filter_graph) in
tests: every filter is its own chain there, linked by generated labels, so a
test that cares about which filters run, in what order, reads them without the
labels."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

from vidpipe.adapters.ffmpeg.inputs import input_args
from vidpipe.domain.filter_graph import FilterGraph, Stream

# One or more link labels ([0:v:0], [s12]) at the start or the end of a filter.
_LABELS = re.compile(r"^(\[[^\]]+\])+|(\[[^\]]+\])+$")


def graph_of(args: Sequence[str]) -> str:
    """The ``-filter_complex`` value of an FFmpeg argument list."""
    return args[list(args).index("-filter_complex") + 1]


def filters_in(graph: str) -> list[str]:
    """The filters of ``graph`` in the order written, their link labels taken off."""
    return [_LABELS.sub("", part) for part in graph.split(";")]


def filters_applied(build: Callable[[Stream], Stream]) -> list[str]:
    """The filters ``build`` puts on the video of one input, in order, as FFmpeg gets them."""
    graph = FilterGraph()
    video = graph.add_input(input_args(Path("/in/source"), "mov"))["v:0"]
    return filters_in(graph_of(graph.compile([build(video)]).filter_args))
