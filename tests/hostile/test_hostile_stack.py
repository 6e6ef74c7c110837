"""The hostile corpus through the real HTTP API of a local stack: every case is
uploaded as a browser would upload it (all first, then all awaited) and ends as
its 4xx with a reason, a FAILED job with its own code and a readable message,
or READY; no job is left hanging. The playlists point at a canary pipe and a
listening socket on this machine, where ministack runs the stage functions:
neither may be touched."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.hostile.corpus import API_4XX, CASES, READY, HostileCase, Targets, format_table, outcome_matches, run_corpus
from tests.hostile.traps import CanaryPipe, TrapListener

pytestmark = [pytest.mark.stack, pytest.mark.ffmpeg]

# Every job must end within this long of its upload; a job still running then is stuck.
JOB_BOUND_S = 150.0


@dataclass(frozen=True)
class CorpusRun:
    rows: dict[str, dict[str, Any]]
    canary_opened: int
    connections: list[tuple[str, int]]


@pytest.fixture(scope="module")
def corpus_run(local_stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CorpusRun]:
    folder = tmp_path_factory.mktemp("hostile-traps")
    with CanaryPipe(folder / "canary.ts") as canary, TrapListener() as listener:
        rows = run_corpus(
            local_stack.api_url,
            api_token=local_stack.api_token,
            targets=Targets(local_file=str(canary.path), http_url=listener.url),
            timeout_s=JOB_BOUND_S,
        )
        print("\n" + format_table(rows))
        yield CorpusRun({row["case"]: row for row in rows}, canary.opened, list(listener.connections))


@pytest.mark.parametrize("hostile", CASES, ids=lambda c: c.name)
def test_GIVEN_a_hostile_upload_WHEN_sent_through_the_api_THEN_it_ends_as_expected(
    corpus_run: CorpusRun, hostile: HostileCase
) -> None:
    row = corpus_run.rows[hostile.name]

    assert outcome_matches(hostile, row), row
    if hostile.expected == API_4XX:
        assert row["code"], row
        assert_readable(row["message"])
        assert row["job_id"] is None
    elif hostile.expected != READY:
        assert_readable(row["message"])


def test_GIVEN_the_whole_corpus_WHEN_awaited_THEN_no_job_is_stuck(corpus_run: CorpusRun) -> None:
    stuck = {name: row["status_history"] for name, row in corpus_run.rows.items() if row["outcome"] == "STUCK"}
    assert stuck == {}
    assert max(row["seconds"] for row in corpus_run.rows.values()) < JOB_BOUND_S


def test_GIVEN_playlists_pointing_at_traps_WHEN_processed_by_the_stack_THEN_no_trap_was_touched(
    corpus_run: CorpusRun,
) -> None:
    assert corpus_run.canary_opened == 0
    assert corpus_run.connections == []


def assert_readable(message: str | None) -> None:
    assert message and len(message) >= 15, message
    assert all(unicodedata.category(char) != "Cc" for char in message), repr(message)
    assert "/tmp/" not in message and "ministack" not in message, message
