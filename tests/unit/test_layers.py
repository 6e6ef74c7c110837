"""The shared package's layers hold: domain code (vidpipe/domain and every
slice's domain_logic) imports no adapter or runtime module and loads no AWS SDK,
powertools or requests, so it can be read, tested and reused without them."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DOMAIN = PROJECT_ROOT / "vidpipe" / "domain"
SLICES = ("upload_api", "transcode", "thumbnails")
OUTER_LAYERS = ("vidpipe.adapters", "vidpipe.runtime", "vidpipe_cli")
HEAVY_PACKAGES = ("boto3", "botocore", "aws_lambda_powertools", "requests")


def module_name(path: Path) -> str:
    parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> list[str]:
    """Every module ``path`` imports, at the top or inside a function."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
            found.extend(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def outer_layer_imports(path: Path) -> list[str]:
    return sorted(
        {name for name in imported_modules(path) if any(name == o or name.startswith(o + ".") for o in OUTER_LAYERS)}
    )


DOMAIN_FILES = sorted(DOMAIN.rglob("*.py"))
DOMAIN_LOGIC_FILES = sorted(path for name in SLICES for path in (PROJECT_ROOT / name / "domain_logic").rglob("*.py"))


def heavy_packages_loaded(modules: list[str]) -> dict[str, list[str]]:
    """For each module, imported alone in a fresh interpreter: which of
    HEAVY_PACKAGES it loaded (one subprocess for all, one import at a time)."""
    script = (
        "import importlib, json, sys\n"
        "heavy, modules = json.loads(sys.argv[1])\n"
        "baseline = set(sys.modules)\n"
        "loaded = {}\n"
        "for name in modules:\n"
        "    before = set(sys.modules)\n"
        "    for extra in before - baseline:\n"
        "        del sys.modules[extra]\n"
        "    importlib.import_module(name)\n"
        "    loaded[name] = sorted(h for h in heavy if h in sys.modules)\n"
        "print(json.dumps(loaded))\n"
    )
    answer = subprocess.run(
        [sys.executable, "-c", script, json.dumps([HEAVY_PACKAGES, modules])],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(answer.stdout))


def test_GIVEN_the_domain_package_WHEN_its_imports_are_read_THEN_none_reaches_adapters_or_runtime() -> None:
    assert DOMAIN_FILES, "vidpipe/domain has no modules?"

    offenders = {module_name(path): outer_layer_imports(path) for path in DOMAIN_FILES}

    assert {name: found for name, found in offenders.items() if found} == {}


@pytest.mark.parametrize("layer", ["domain", "domain_logic"])
def test_GIVEN_domain_code_WHEN_imported_alone_THEN_no_aws_sdk_powertools_or_requests_is_loaded(layer: str) -> None:
    files = DOMAIN_FILES if layer == "domain" else DOMAIN_LOGIC_FILES
    modules = [module_name(path) for path in files]

    loaded = heavy_packages_loaded(modules)

    assert {name: heavy for name, heavy in loaded.items() if heavy} == {}


def test_GIVEN_a_domain_module_that_imports_an_adapter_WHEN_checked_THEN_both_checks_fail(tmp_path: Path) -> None:
    # GIVEN a module written like a domain module, but borrowing the job store
    bad = tmp_path / "bad_domain.py"
    bad.write_text("from vidpipe.adapters.job_store import DynamoJobStore\n", encoding="utf-8")

    # WHEN both checks look at it
    outer = outer_layer_imports(bad)
    probe = "import sys; sys.path[:0] = sys.argv[1:3]; import bad_domain; print('boto3' in sys.modules)"
    answer = subprocess.run(
        [sys.executable, "-c", probe, str(PROJECT_ROOT), str(tmp_path)], capture_output=True, text=True, check=True
    )

    # THEN each reports it
    assert outer == ["vidpipe.adapters.job_store", "vidpipe.adapters.job_store.DynamoJobStore"]
    assert answer.stdout.strip() == "True"
