"""Every third-party import of the product code is declared where it will be installed from.

Two places, kept apart: the Lambda functions' code imports only what requirements/lambda.txt puts
in the dependencies layer (pyproject's `dependencies` are the same pins), and the developer command
line (the package behind the `vidpipe` script, never packaged into a Lambda) imports only those
plus pyproject's `cli` extra. A package that arrives by accident (pydantic through a development
tool) works on this machine and fails on AWS."""

from __future__ import annotations

import ast
import fnmatch
import re
import sys
import tomllib
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
LAMBDA_REQUIREMENTS = PROJECT_ROOT / "requirements" / "lambda.txt"
MINISTACK_REQUIREMENTS = PROJECT_ROOT / "requirements" / "ministack.txt"
# Run on ministack's own interpreter (.venv-ministack), not by the command line's.
MINISTACK_SIDE = [
    PROJECT_ROOT / "vidpipe_cli" / name
    for name in (
        "ministack_launcher.py",
        "ministack_snapshots.py",
        "ministack_streaming_reads.py",
        "ministack_quick_invocations.py",
        "ministack_layer_cache.py",
        "ministack_worker_reuse.py",
        "ministack_background_priority.py",
        "ministack_prewarm.py",
    )
]

# Import names whose distribution is called something else. botocore is installed (and pinned) by
# boto3, which is what we declare.
DISTRIBUTION_OF_IMPORT = {
    "PIL": "pillow",
    "yaml": "PyYAML",
    "ffmpeg": "ffmpeg-python",
    "samtranslator": "aws-sam-translator",
    "botocore": "boto3",
}


def normalised(distribution: str) -> str:
    """A distribution's name as pip compares them (PEP 503): case and -_. do not matter."""
    return re.sub(r"[-_.]+", "-", distribution).lower()


def requirement_names(requirements: list[str]) -> set[str]:
    return {normalised(re.split(r"[=<>!~\[; ]", line.strip(), maxsplit=1)[0]) for line in requirements}


def lambda_layer_requirements() -> list[str]:
    return requirement_lines(LAMBDA_REQUIREMENTS)


def requirement_lines(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def our_packages() -> list[Path]:
    """The top-level packages pyproject ships (its setuptools `include` patterns)."""
    patterns = PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    return sorted(
        folder
        for folder in PROJECT_ROOT.iterdir()
        if (folder / "__init__.py").is_file() and any(fnmatch.fnmatch(folder.name, pattern) for pattern in patterns)
    )


def command_line_folder() -> Path:
    """The package behind the `vidpipe` script (wherever it lives): main's module's folder."""
    module = PYPROJECT["project"]["scripts"]["vidpipe"].split(":")[0]
    return PROJECT_ROOT.joinpath(*module.split(".")[:-1])


def third_party_imports(files: list[Path]) -> dict[str, set[str]]:
    """Distribution name -> the files that import it, for every absolute import that is neither
    the standard library nor one of our packages (imports inside functions included; those under
    ``if TYPE_CHECKING:`` never run, so type-only packages such as boto3-stubs are left out)."""
    ours = {folder.name for folder in our_packages()}
    found: dict[str, set[str]] = {}
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        type_only = {
            id(inner)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and ast.unparse(node.test) in {"TYPE_CHECKING", "typing.TYPE_CHECKING"}
            for inner in ast.walk(node)
        }
        for node in ast.walk(tree):
            if id(node) in type_only:
                continue
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top in sys.stdlib_module_names or top in ours or top == "__future__":
                    continue
                distribution = normalised(DISTRIBUTION_OF_IMPORT.get(top, top))
                found.setdefault(distribution, set()).add(str(path.relative_to(PROJECT_ROOT)))
    return found


def python_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.py"))


def test_GIVEN_the_lambda_code_WHEN_its_imports_are_read_THEN_each_is_in_the_lambda_layer() -> None:
    cli = command_line_folder()
    lambda_code = [path for package in our_packages() for path in python_files(package) if not path.is_relative_to(cli)]
    layer = requirement_names(lambda_layer_requirements())

    undeclared = {name: files for name, files in third_party_imports(lambda_code).items() if name not in layer}

    assert lambda_code, "found no Lambda code to check"
    assert undeclared == {}, f"imported by Lambda code but not in {LAMBDA_REQUIREMENTS.name}: {undeclared}"


def test_GIVEN_the_command_line_WHEN_its_imports_are_read_THEN_each_is_declared_for_it() -> None:
    declared = requirement_names(PYPROJECT["project"]["dependencies"]) | requirement_names(
        PYPROJECT["project"]["optional-dependencies"]["cli"]
    )

    undeclared = {
        name: files
        for name, files in third_party_imports(
            [path for path in python_files(command_line_folder()) if path not in MINISTACK_SIDE]
        ).items()
        if name not in declared
    }

    assert undeclared == {}, (
        f"imported by the command line but in neither `dependencies` nor the `cli` extra: {undeclared}"
    )


def test_GIVEN_the_ministack_launcher_WHEN_its_imports_are_read_THEN_only_what_its_environment_has() -> None:
    # ministack's environment has ministack and the standard library, nothing of ours.
    declared = requirement_names(requirement_lines(MINISTACK_REQUIREMENTS))
    ours = {folder.name for folder in our_packages()}
    our_imports = {
        name.split(".")[0]
        for path in MINISTACK_SIDE
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for name in ([alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module or ""])
    } & ours

    undeclared = {name: files for name, files in third_party_imports(MINISTACK_SIDE).items() if name not in declared}

    assert undeclared == {}, f"imported by the launcher but not in {MINISTACK_REQUIREMENTS.name}: {undeclared}"
    assert our_imports == set(), f"the launcher imports our packages (absent there): {our_imports}"


def test_GIVEN_pyproject_WHEN_read_THEN_its_dependencies_are_exactly_the_lambda_layers_pins() -> None:
    declared = {normalised(line) for line in PYPROJECT["project"]["dependencies"]}

    assert declared == {normalised(line) for line in lambda_layer_requirements()}


def test_GIVEN_the_cli_extra_WHEN_compared_with_the_lambda_layer_THEN_they_share_nothing() -> None:
    cli_only = requirement_names(PYPROJECT["project"]["optional-dependencies"]["cli"])

    assert cli_only, "the cli extra is empty"
    assert cli_only.isdisjoint(requirement_names(lambda_layer_requirements()))
