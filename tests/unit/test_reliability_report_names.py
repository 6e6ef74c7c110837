"""docs/RELIABILITY.md names the tests that prove each claim: every file it
names must exist, or the report would point a reader at nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.reliability_report import PROVEN_BY_TESTS
from scripts.security_review import FINDINGS

ROOT = Path(__file__).resolve().parents[2]


def named_files() -> list[str]:
    names = [test for _, _, test in PROVEN_BY_TESTS] + [finding.proven_by for finding in FINDINGS]
    return sorted({part.strip() for name in names for part in name.split(",") if part.strip()})


@pytest.mark.parametrize("path", named_files())
def test_GIVEN_the_reliability_report_WHEN_it_names_a_test_file_THEN_the_file_exists(path: str) -> None:
    assert (ROOT / path).is_file(), path


def test_GIVEN_the_security_review_WHEN_listed_THEN_every_finding_once_in_order() -> None:
    assert [finding.number for finding in FINDINGS] == list(range(1, 10))
