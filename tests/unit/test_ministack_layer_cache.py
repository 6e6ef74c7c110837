"""Layer zips unzipped once and shared by the local stack's Lambda workers
(vidpipe_cli/ministack_layer_cache.py), without ministack."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from vidpipe_cli import ministack_layer_cache
from vidpipe_cli.ministack_layer_cache import zipfile_with_layer_cache


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(ministack_layer_cache, "cache_root", lambda: tmp_path / "cache")
    monkeypatch.setattr(ministack_layer_cache, "CACHED_FROM_BYTES", 1000)
    yield


def make_zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return path


LAYER = {"python/package/__init__.py": b"VALUE = 1\n", "python/package/data.bin": os.urandom(5000)}


def test_two_workers_share_one_extraction_of_a_layer(tmp_path: Path) -> None:
    zipfile_module = zipfile_with_layer_cache()
    # GIVEN the same layer zip written into two workers' folders, as ministack does
    folders = []
    for worker in ("worker-1", "worker-2"):
        (tmp_path / worker / "layer_0").mkdir(parents=True)
        layer_zip = make_zip(tmp_path / worker / "layer_0.zip", LAYER)
        # WHEN ministack unzips it through its zipfile module
        with zipfile_module.ZipFile(layer_zip) as archive:
            archive.extractall(tmp_path / worker / "layer_0")
        folders.append(tmp_path / worker / "layer_0")
    # THEN both see every file, through links to one shared copy
    for folder in folders:
        assert folder.is_symlink()
        assert (folder / "python/package/__init__.py").read_bytes() == LAYER["python/package/__init__.py"]
        assert (folder / "python/package/data.bin").read_bytes() == LAYER["python/package/data.bin"]
    assert folders[0].resolve() == folders[1].resolve()
    assert len(list((tmp_path / "cache").iterdir())) == 1


def test_a_different_layer_gets_its_own_copy(tmp_path: Path) -> None:
    zipfile_module = zipfile_with_layer_cache()
    for number, content in enumerate([LAYER, {**LAYER, "python/extra.py": b"X = 2\n"}]):
        folder = tmp_path / f"layer_{number}"
        folder.mkdir()
        with zipfile_module.ZipFile(make_zip(tmp_path / f"layer_{number}.zip", content)) as archive:
            archive.extractall(folder)
    assert not (tmp_path / "layer_0" / "python/extra.py").exists()
    assert (tmp_path / "layer_1" / "python/extra.py").read_bytes() == b"X = 2\n"
    assert (tmp_path / "layer_0").resolve() != (tmp_path / "layer_1").resolve()


def test_a_small_zip_is_unzipped_in_place(tmp_path: Path) -> None:
    zipfile_module = zipfile_with_layer_cache()
    (tmp_path / "code").mkdir()
    with zipfile_module.ZipFile(make_zip(tmp_path / "code.zip", {"handler.py": b"def handler(e, c): pass\n"})) as z:
        z.extractall(tmp_path / "code")
    assert not (tmp_path / "code").is_symlink()
    assert (tmp_path / "code" / "handler.py").exists()
    assert not (tmp_path / "cache").exists()


def test_a_worker_folder_removed_leaves_the_shared_copy(tmp_path: Path) -> None:
    import shutil

    zipfile_module = zipfile_with_layer_cache()
    (tmp_path / "worker" / "layer_0").mkdir(parents=True)
    with zipfile_module.ZipFile(make_zip(tmp_path / "worker" / "layer_0.zip", LAYER)) as archive:
        archive.extractall(tmp_path / "worker" / "layer_0")
    # ministack removes a retired worker's folder with rmtree
    shutil.rmtree(tmp_path / "worker")
    (shared,) = (tmp_path / "cache").iterdir()
    assert (shared / "python/package/data.bin").read_bytes() == LAYER["python/package/data.bin"]
