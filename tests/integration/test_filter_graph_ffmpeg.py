"""Real FFmpeg reads a graph that ffmpeg-python wrote (vidpipe.domain.filter_graph),
through our runner, and unescapes its options to what we gave."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from vidpipe.adapters.ffmpeg.inputs import input_args
from vidpipe.adapters.ffmpeg.process import ffmpeg_environment, find_tool, run_ffmpeg
from vidpipe.domain.filter_graph import FilterGraph

pytestmark = pytest.mark.ffmpeg


def test_GIVEN_an_option_with_every_special_character_WHEN_run_THEN_ffmpeg_gets_it_verbatim(tmp_path: Path) -> None:
    source = tmp_path / "source.mp4"
    subprocess.run(
        [find_tool("ffmpeg"), "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", "testsrc2=size=64x64:rate=10:duration=0.3",
         "-c:v", "libx264", "-preset", "ultrafast", str(source)],
        check=True, env=ffmpeg_environment(),
    )  # fmt: skip
    folder = tmp_path / "a:b'c"
    folder.mkdir()
    log = folder / "stats,1;[x].txt"
    graph = FilterGraph()
    video = graph.add_input(input_args(source, "mov"))["v:0"]
    compiled = graph.compile([video.filter("signalstats").filter("metadata", mode="print", file=str(log))])

    run_ffmpeg([*compiled.args, "-map", compiled.outputs[0], "-f", "null", "-"], timeout_s=60)

    assert "lavfi.signalstats.YAVG" in log.read_text(encoding="utf-8")
