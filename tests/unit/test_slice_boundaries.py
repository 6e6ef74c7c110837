"""The function slices stand alone: each is packaged with the shared ``vidpipe``
package only (build/functions/<slice>), so an import of another slice would
work in a test and fail in Lambda."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from vidpipe_cli.packaging import FUNCTION_SLICES, PROJECT_ROOT


def imported_packages(path: Path) -> set[str]:
    """The top-level packages a module imports (``from a.b import c`` → ``a``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_GIVEN_the_packaging_WHEN_read_THEN_every_top_level_slice_folder_is_packaged() -> None:
    slices_on_disk = {
        folder.name
        for folder in PROJECT_ROOT.iterdir()
        if (folder / "handlers").is_dir() and (folder / "domain_logic").is_dir()
    }

    assert slices_on_disk == set(FUNCTION_SLICES)


@pytest.mark.parametrize("slice_name", FUNCTION_SLICES)
def test_GIVEN_a_slice_WHEN_its_imports_are_read_THEN_it_imports_no_other_slice(slice_name: str) -> None:
    other_slices = set(FUNCTION_SLICES) - {slice_name}

    crossings = {
        str(path.relative_to(PROJECT_ROOT)): sorted(imported_packages(path) & other_slices)
        for path in sorted((PROJECT_ROOT / slice_name).rglob("*.py"))
    }

    assert {module: slices for module, slices in crossings.items() if slices} == {}


# The house rule of issue 14: a newcomer reads any product module in one sitting.
LONGEST_MODULE_LINES = 400
PRODUCT_PACKAGES = ("vidpipe", "vidpipe_cli", *FUNCTION_SLICES)


def test_GIVEN_the_product_code_WHEN_its_modules_are_measured_THEN_none_reaches_400_lines() -> None:
    too_long = {
        str(path.relative_to(PROJECT_ROOT)): length
        for package in PRODUCT_PACKAGES
        for path in (PROJECT_ROOT / package).rglob("*.py")
        if (length := len(path.read_text(encoding="utf-8").splitlines())) >= LONGEST_MODULE_LINES
    }

    assert too_long == {}
