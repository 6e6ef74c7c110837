"""Lambda layers unzipped once per local stack, not once per cold worker.

Why (issue 18): the pinned ministack (1.5.33) starts every Lambda worker by
unzipping the function's code and each of its layers into a fresh folder, on
threads of its own process. Our dependencies layer is 40 MB zipped, 4,600
files; the FFmpeg layer 58 MB. The load's first ten uploads start ten API
workers and ten authorizer workers at once: twenty unzips of the dependencies
layer holding ministack's interpreter lock, so for about a minute ministack
answered nothing, and POST /uploads took up to 61 s (p50 0.8 s).

What changes, and nothing else: inside ministack's Lambda runtime module, a zip
of at least ``CACHED_FROM_BYTES`` is unzipped once, keyed by its content's
digest, into ``<tmp>/vidpipe-layer-cache/``; each worker's layer folder is a
symbolic link to that copy. The worker sees the same files at the same paths.
Layers are read-only on AWS (``/opt``) and a layer version never changes, so
sharing them is what AWS does too; Python's bytecode cache written there is
shared as well, so only the first worker compiles a module. The functions' own
code zips (under a megabyte) are unzipped per worker as before.

Loaded by vidpipe_cli/ministack_launcher.py on ministack's own interpreter,
given ministack's ``core.lambda_runtime`` module by :func:`install`; it replaces
that module's ``zipfile`` name (a copy of the standard module whose ``ZipFile``
caches), private to ministack 1.5.33.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading
import types
import zipfile
from pathlib import Path
from typing import Any

CACHED_FROM_BYTES = 4 << 20
_extraction_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def cache_root() -> Path:
    # The local stack gives ministack a fresh temporary folder per run, so the
    # cache goes when the run's workers do.
    return Path(tempfile.gettempdir()) / "vidpipe-layer-cache"


def file_digest(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def extracted_once(archive: zipfile.ZipFile, digest: str) -> Path:
    """The folder holding ``archive``'s files, unzipped by the first caller."""
    target = cache_root() / digest
    with _locks_guard:
        lock = _extraction_locks.setdefault(digest, threading.Lock())
    with lock:
        if not target.is_dir():
            partial = Path(tempfile.mkdtemp(prefix=f"{digest[:12]}-", dir=cache_root()))
            zipfile.ZipFile.extractall(archive, partial)
            partial.rename(target)
    return target


class CachingZipFile(zipfile.ZipFile):
    """``zipfile.ZipFile`` whose ``extractall`` of a large zip on disk links to
    one shared extraction instead of writing the files again."""

    def extractall(self, path: Any = None, members: Any = None, pwd: Any = None) -> None:
        filename = self.filename
        if (
            path is None
            or members is not None
            or filename is None
            or not os.path.isfile(filename)
            or os.path.getsize(filename) < CACHED_FROM_BYTES
        ):
            super().extractall(path, members, pwd)
            return
        cache_root().mkdir(parents=True, exist_ok=True)
        shared = extracted_once(self, file_digest(filename))
        destination = Path(path)
        if destination.is_dir() and not any(destination.iterdir()):
            destination.rmdir()  # ministack made it empty for this layer: link in its place
        if destination.exists():
            super().extractall(path, members, pwd)  # not ours to replace
            return
        destination.symlink_to(shared, target_is_directory=True)


def zipfile_with_layer_cache() -> types.ModuleType:
    module = types.ModuleType("zipfile", "the zipfile module, with layer zips unzipped once")
    module.__dict__.update({name: value for name, value in vars(zipfile).items() if not name.startswith("__")})
    module.ZipFile = CachingZipFile  # type: ignore[attr-defined]
    return module


def install(lambda_runtime: Any) -> None:
    lambda_runtime.zipfile = zipfile_with_layer_cache()


def forget_cache() -> None:
    """Remove the shared extractions (tests)."""
    shutil.rmtree(cache_root(), ignore_errors=True)
