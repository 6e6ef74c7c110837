"""Package the functions and layers the way Lambda runs them.

``build/functions/<slice>/`` holds the slice's package plus the shared
``vidpipe`` package (without this ``cli`` sub-package); ``build/layers/``
holds the dependencies layer (``python/``, pip-installed for the interpreter
that will run the functions) and the FFmpeg layer (``bin/``). The template's
``CodeUri``/``ContentUri`` point at these folders, for ``sam deploy`` and the
local stack alike.

What can go wrong: ``PackagingError`` when pip fails or FFmpeg is not found.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
FUNCTION_SLICES = ("upload_api", "transcode", "thumbnails")
SHARED_PACKAGE = "vidpipe"
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "cli")
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
    layers = {
        "dependencies": build_dependencies_layer(python, build_dir),
        "ffmpeg": build_ffmpeg_layer(build_dir),
    }
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


def build_ffmpeg_layer(build_dir: Path) -> Path:
    """Copy this machine's ffmpeg and ffprobe into ``bin/``.

    On the local stack the functions run on this machine, so its binaries fit.
    A layer for AWS needs a static Linux build instead (see docs when the
    deploy issue lands)."""
    target = build_dir / "layers" / "ffmpeg" / "bin"
    target.mkdir(parents=True, exist_ok=True)
    for tool in ("ffmpeg", "ffprobe"):
        found = shutil.which(tool)
        if not found:
            raise PackagingError(f"{tool} is not installed (apt-get install -y ffmpeg)")
        destination = target / tool
        if not destination.exists() or destination.stat().st_size != Path(found).stat().st_size:
            shutil.copy2(Path(found).resolve(), destination)
    return target.parent


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
