"""The functions and the dependencies layer carry their modules' bytecode, so a
cold start imports without compiling (issue 18: compiling tripled the CPU of
the API's cold start)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from vidpipe_cli.packaging import BYTECODE_STAMP, PackagingError, build_function, compile_bytecode, zip_folder


def test_GIVEN_a_built_function_WHEN_zipped_and_unpacked_elsewhere_THEN_it_imports_from_bytecode_without_compiling(
    tmp_path: Path,
) -> None:
    folder = build_function("upload_api", tmp_path / "build")
    compile_bytecode(folder, sys.executable)
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(zip_folder(folder, tmp_path / "function.zip")) as archive:
        archive.extractall(unpacked)
    # Unzipping gives the sources new dates: a date-checked pyc would be compiled again.
    later = time.time() + 3600
    for source in unpacked.rglob("*.py"):
        os.utime(source, (later, later))
    # Where nothing can be written, as on Lambda: a pyc would have to come with the zip.
    code = "import upload_api.domain_logic.job_view as m; print(m.__cached__)"
    environment = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(unpacked)}
    environment.pop("PYTHONPYCACHEPREFIX", None)

    shown = subprocess.run(
        [sys.executable, "-c", code],
        cwd=unpacked,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )

    cached = Path(shown.stdout.strip())
    assert cached.is_file() and cached.is_relative_to(unpacked)
    # PEP 552 flags: hash-based (bit 0), source not checked (bit 1 clear): used whatever the dates.
    assert int.from_bytes(cached.read_bytes()[4:8], "little") == 0b01


def test_GIVEN_a_stamped_folder_WHEN_compiled_again_for_the_same_python_THEN_skipped(tmp_path: Path) -> None:
    (tmp_path / "module.py").write_text("VALUE = 1\n")
    stamp = tmp_path / BYTECODE_STAMP
    compile_bytecode(tmp_path, sys.executable, stamp=stamp)
    for pyc in tmp_path.rglob("*.pyc"):
        pyc.unlink()

    compile_bytecode(tmp_path, sys.executable, stamp=stamp)

    assert stamp.read_text() == sys.executable
    assert not list(tmp_path.rglob("*.pyc"))


def test_GIVEN_a_module_that_does_not_compile_WHEN_compiled_THEN_packaging_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("def (:\n")

    with pytest.raises(PackagingError, match="broken.py"):
        compile_bytecode(tmp_path, sys.executable)
