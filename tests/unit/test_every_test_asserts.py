"""Every test says what it expects: a test that only calls the code passes for anything that does
not raise, which proves less than its name claims.

A test counts as asserting when its body has an ``assert`` statement, a ``pytest.raises`` (or
``pytest.warns``), Playwright's ``expect(...)``, or a call to a helper named ``assert_...`` (the
house convention for checks shared by several tests, e.g. ``assert_readable``)."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS_ROOT = Path(__file__).resolve().parents[1]
ASSERTING_CALLS = {"raises", "warns", "expect"}


def called_name(call: ast.Call) -> str:
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    if isinstance(call.func, ast.Name):
        return call.func.id
    return ""


def asserts_something(test: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    for node in ast.walk(test):
        if isinstance(node, ast.Assert):
            return True
        if isinstance(node, ast.Call):
            name = called_name(node)
            if name in ASSERTING_CALLS or name.startswith("assert_"):
                return True
    return False


def find_silent_tests(source: str) -> list[str]:
    """Names of the test functions (module level or in a class) in ``source`` that assert nothing."""
    return [
        node.name
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test")
        and not asserts_something(node)
    ]


def test_GIVEN_the_test_suite_WHEN_scanned_THEN_every_test_asserts_something() -> None:
    silent = [
        f"{path.relative_to(TESTS_ROOT.parent)}::{name}"
        for path in sorted(TESTS_ROOT.rglob("test_*.py"))
        for name in find_silent_tests(path.read_text(encoding="utf-8"))
    ]

    assert silent == [], "these tests pass by not raising; make them assert what they mean:\n" + "\n".join(silent)


def test_GIVEN_tests_with_and_without_assertions_WHEN_scanned_THEN_only_the_silent_one_is_named() -> None:
    source = """
def test_silent():
    do_something()

def test_asserts():
    assert do_something() == 1

def test_refusal():
    with pytest.raises(ValueError):
        do_something()

def test_helper():
    assert_looks_right(do_something())

class TestGrouped:
    def test_silent_in_a_class(self):
        do_something()

def helper_not_a_test():
    do_something()
"""

    assert find_silent_tests(source) == ["test_silent", "test_silent_in_a_class"]
