"""Which FFmpeg binary runs, and the environment it runs in (vidpipe.adapters.ffmpeg.process).

Fake tools (shell scripts named by FFMPEG_PATH/FFPROBE_PATH or put where
find_tool looks) record what they were given: no FFmpeg needed."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest

from vidpipe.adapters.ffmpeg.inputs import input_args
from vidpipe.adapters.ffmpeg.probe import probe_media
from vidpipe.adapters.ffmpeg.process import find_tool, run_ffmpeg
from vidpipe_cli.packaging import FUNCTION_SLICES, PROJECT_ROOT

PROBE_OF_A_TS_FILE = {
    "format": {"format_name": "mpegts", "duration": "2.0"},
    "streams": [{"codec_type": "video", "codec_name": "h264", "width": 320, "height": 180, "avg_frame_rate": "25/1"}],
}


def recording_tool(folder: Path, name: str, *, prints: str = "") -> Path:
    """A fake ``name`` that writes its environment to ``<name>.env`` beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    tool = folder / name
    tool.write_text(f"#!/bin/sh\nenv > '{tool}.env'\ncat <<'EOF'\n{prints}\nEOF\n")
    tool.chmod(0o755)
    return tool


def environment_seen_by(tool: Path) -> dict[str, str]:
    lines = Path(f"{tool}.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


def the_functions_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """What Lambda puts in a function's environment, and a setting of ours."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "ASIAFAKE",
        "AWS_SECRET_ACCESS_KEY": "fake-secret",
        "AWS_SESSION_TOKEN": "fake-token",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.1/x",
        "VIDPIPE_MARKER": "ours",
        "http_proxy": "http://127.0.0.1:9",
    }.items():
        monkeypatch.setenv(name, value)


def test_GIVEN_ffmpeg_WHEN_run_THEN_it_gets_a_clean_environment_with_gconv_path_where_no_module_can_be(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ffmpeg = recording_tool(tmp_path, "ffmpeg")
    monkeypatch.setenv("FFMPEG_PATH", str(ffmpeg))
    the_functions_credentials(monkeypatch)
    monkeypatch.delenv("GCONV_PATH", raising=False)

    run_ffmpeg([*input_args(tmp_path / "source", "mpegts"), "-f", "null", "-"], timeout_s=30)

    seen = environment_seen_by(ffmpeg)
    assert seen["GCONV_PATH"] == os.devnull
    assert seen["PATH"] == os.environ["PATH"]
    assert not [name for name in seen if name.startswith("AWS_")]
    assert "VIDPIPE_MARKER" not in seen and "http_proxy" not in seen


def test_GIVEN_an_mpeg_ts_upload_WHEN_probed_THEN_ffprobe_gets_gconv_path_where_no_module_can_be(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ffprobe = recording_tool(tmp_path, "ffprobe", prints=json.dumps(PROBE_OF_A_TS_FILE))
    monkeypatch.setenv("FFPROBE_PATH", str(ffprobe))
    monkeypatch.setenv("GCONV_PATH", "/usr/lib/x86_64-linux-gnu/gconv")
    upload = tmp_path / "source"
    upload.write_bytes(b"\x47" + bytes(187))

    the_functions_credentials(monkeypatch)

    source = probe_media(upload)

    assert source.demuxer == "mpegts"
    assert environment_seen_by(ffprobe)["GCONV_PATH"] == os.devnull
    assert not [name for name in environment_seen_by(ffprobe) if name.startswith("AWS_")]


@pytest.fixture
def places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """An ffmpeg in each place find_tool looks (but /opt/bin): the setting,
    beside the interpreter, and on PATH."""
    folders = {
        "setting": tmp_path / "configured",
        "interpreter": tmp_path / "venv" / "bin",
        "path": tmp_path / "usr" / "bin",
    }
    tools = {place: recording_tool(folder, "ffmpeg") for place, folder in folders.items()}
    monkeypatch.setenv("FFMPEG_PATH", str(tools["setting"]))
    monkeypatch.setattr(sys, "executable", str(folders["interpreter"] / "python"))
    monkeypatch.setenv("PATH", str(folders["path"]))
    return tools


def test_GIVEN_ffmpeg_everywhere_WHEN_looked_for_THEN_the_setting_wins(places: dict[str, Path]) -> None:
    assert find_tool("ffmpeg") == str(places["setting"])


def test_GIVEN_no_setting_WHEN_looked_for_THEN_the_one_beside_the_interpreter_before_path(
    places: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FFMPEG_PATH")

    assert find_tool("ffmpeg") == str(places["interpreter"])


def test_GIVEN_only_path_has_it_WHEN_looked_for_THEN_found_on_path(
    places: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FFMPEG_PATH")
    places["interpreter"].unlink()

    assert find_tool("ffmpeg") == str(places["path"])


# A command list that starts FFmpeg by its bare name, or a check for one on PATH:
# either runs (or waits for) whatever FFmpeg the machine has, not the pinned one.
_BARE_FFMPEG = re.compile(r"""\[\s*["']ff(mpeg|probe)["']\s*,\s*["']-|which\(\s*["']ff(mpeg|probe)["']""")
_OWN_FOLDERS = ("vidpipe", "vidpipe_cli", *FUNCTION_SLICES, "tests", "scripts")


def test_GIVEN_the_project_WHEN_its_python_starts_ffmpeg_THEN_always_the_pinned_build_through_find_tool() -> None:
    offenders = [
        f"{path.relative_to(PROJECT_ROOT)}:{number}"
        for folder in _OWN_FOLDERS
        for path in sorted((PROJECT_ROOT / folder).rglob("*.py"))
        if path != Path(__file__).resolve()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if _BARE_FFMPEG.search(line)
    ]
    assert offenders == []
