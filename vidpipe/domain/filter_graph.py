"""FFmpeg filter graphs written with ffmpeg-python, compiled into arguments our
FFmpeg runner (:func:`vidpipe.adapters.ffmpeg.process.run_ffmpeg`) takes.

A graph reads better as Python than as one long string: ffmpeg-python names the
links between filters, gives a ``split`` as many outputs as are used and escapes
every filter option (a ``:`` or ``'`` in a path would otherwise end the option or
the filter). We use it for the graph and nothing else. The inputs stay ours (only
:func:`vidpipe.adapters.ffmpeg.inputs.input_args` may open an upload: protocol, format and codec
whitelists), output options stay plain arguments (ffmpeg-python 0.2.0 writes
them in alphabetical order and takes per-stream ones such as ``-b:v:1`` only as
dictionary keys; our lists keep each option in order beside its reason), and the
graph runs under our runner (clean environment, limits), never ffmpeg-python's ``.run()``.
Callers import ffmpeg-python only through this module: a filter of one stream is
that stream's ``.filter(name, *args, **options)``, ``.split()`` makes copies, and
:func:`concat_video` and :func:`filter_of_streams` join streams.

How ffmpeg-python 0.2.0 (unmaintained since 2019) writes a graph, which callers
and their tests see:

* every filter is its own chain, linked by generated labels ``[s0]``, ``[s1]``...:
  ``[0:v:0]fps=fps=30[s0];[s0]split=2[s1][s2]`` is FFmpeg's
  ``[0:v:0]fps=fps=30,split=2[a][b]`` spelled out;
* positional arguments come first, then keyword options in alphabetical order
  (FFmpeg reads options by name, so only the spelling changes);
* positional arguments are escaped twice, keyword options once: anything with a
  ``:``, ``=``, ``'`` or ``\\`` must be a keyword option;
* one stream may feed one filter only (a second use raises ValueError): use
  ``split``;
* inputs are numbered in the order the graph first reaches them, which need not
  be the order they were added: :meth:`FilterGraph.compile` writes the inputs'
  arguments in the graph's order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import ffmpeg

# An ffmpeg-python stream (ffmpeg.nodes.FilterableStream): the library has no type hints.
Stream = Any

_INPUT_PREFIX = "input"
_OUTPUT_PREFIX = "output"


@dataclass(frozen=True)
class CompiledGraph:
    """A graph as FFmpeg arguments.

    ``input_args``: every input's arguments, in the order the graph numbers
    them (an input the graph does not read, added after these, has the number
    ``input_count``). ``filter_args``: ``-filter_complex`` and the graph.
    ``outputs``: what to ``-map`` for each output stream, in the order they were
    given to :meth:`FilterGraph.compile`."""

    input_args: list[str]
    filter_args: list[str]
    outputs: list[str]
    input_count: int

    @property
    def args(self) -> list[str]:
        """The inputs, then the graph: all a command needs before its ``-map`` options."""
        return [*self.input_args, *self.filter_args]


def concat_video(parts: Sequence[Stream]) -> Stream:
    """The video ``parts`` one after another (FFmpeg's ``concat``, no audio)."""
    return ffmpeg.concat(*parts, v=1, a=0)


def filter_of_streams(streams: Sequence[Stream], name: str, **options: object) -> Stream:
    """Filter ``name`` reading ``streams`` in order (for ``libvmaf``: the
    distorted picture, then the reference). A filter of one stream is that
    stream's own ``.filter(name, ...)``."""
    return ffmpeg.filter(list(streams), name, **options)


class FilterGraph:
    """One FFmpeg command's filter graph: add the inputs, build the streams with
    ffmpeg-python, compile once."""

    def __init__(self) -> None:
        self._inputs: list[list[str]] = []

    def add_input(self, args: Sequence[str]) -> Stream:
        """The input that ``args`` open (built by :func:`vidpipe.adapters.ffmpeg.inputs.input_args`
        or its URL sibling, input options in front) as a source of the graph;
        pick a stream with ffmpeg-python's selector, e.g. ``["v:0"]``."""
        self._inputs.append(list(args))
        return ffmpeg.input(f"{_INPUT_PREFIX}{len(self._inputs) - 1}")

    def compile(self, outputs: Sequence[Stream]) -> CompiledGraph:
        """The arguments that read every input and run the graph whose results are
        ``outputs``. Raises ValueError when an input is not read by the graph (an
        input FFmpeg only maps belongs after :attr:`CompiledGraph.input_args`), or when
        ffmpeg-python does (one stream feeding two filters, for one)."""
        placeholders = [stream.output(f"{_OUTPUT_PREFIX}{index}") for index, stream in enumerate(outputs)]
        # ffmpeg-python writes a whole command: placeholder inputs, the graph and
        # "-map <label> <placeholder output>" per output. We keep the graph and the
        # labels and put our own inputs where its placeholders were.
        command = iter(ffmpeg.merge_outputs(*placeholders).get_args())
        input_order: list[int] = []
        labels: dict[int, str] = {}
        graph = ""
        for option in command:
            if option == "-i":
                input_order.append(int(next(command).removeprefix(_INPUT_PREFIX)))
            elif option == "-filter_complex":
                graph = next(command)
            elif option == "-map":
                label = next(command)
                labels[int(next(command).removeprefix(_OUTPUT_PREFIX))] = label
            else:
                raise ValueError(f"ffmpeg-python wrote {option!r}, which a filter graph should not need")
        unread = sorted(set(range(len(self._inputs))) - set(input_order))
        if unread:
            raise ValueError(f"the graph does not read input(s) {unread}: add them after the graph's arguments")
        if not graph:
            raise ValueError("the graph has no filter")
        return CompiledGraph(
            input_args=[arg for index in input_order for arg in self._inputs[index]],
            filter_args=["-filter_complex", graph],
            outputs=[labels[index] for index in range(len(outputs))],
            input_count=len(input_order),
        )
