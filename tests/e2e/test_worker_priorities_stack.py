"""On the local stack, the functions every upload runs have workers before the
first upload (vidpipe_cli/ministack_prewarm.py), and every background
function's workers run at a lower CPU priority than the API's
(vidpipe_cli/ministack_background_priority.py): read from the real worker
processes of the suite's stack."""

from __future__ import annotations

import os
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import requests

from vidpipe_cli.ministack_background_priority import BACKGROUND_NICENESS, answers_people

pytestmark = [pytest.mark.stack]

# ministack runs each worker in "<TMPDIR>/ministack-lambda-<function name>-<random>/...".
WORKER_FOLDER = re.compile(r"/ministack-lambda-(?P<function>[^/]+)-[^/-]+(/|$)")


def workers_by_function(data_dir: Path) -> dict[str, list[int]]:
    """The niceness of every Lambda worker of this stack, by function name."""
    found: dict[str, list[int]] = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            folder = os.readlink(entry / "cwd")
            program = os.path.basename((entry / "cmdline").read_bytes().split(b"\0")[0])
            niceness = os.getpriority(os.PRIO_PROCESS, int(entry.name))
        except OSError:  # ended meanwhile, or not ours to read
            continue
        match = WORKER_FOLDER.search(folder)
        # The worker is ministack's Python; FFmpeg it started runs in its folder too, nicer still.
        if (
            folder.startswith(str(data_dir))
            and match
            and b"python" in Path(program.decode(errors="replace")).name.encode()
        ):
            found[match["function"]].append(niceness)
    return found


def test_GIVEN_the_local_stack_WHEN_its_workers_are_read_THEN_background_ones_run_below_the_api(
    local_stack: Any,
) -> None:
    data_dir = Path(local_stack.environment["VIDPIPE_DATA_DIR"]).resolve()
    ministack_niceness = os.getpriority(os.PRIO_PROCESS, int((data_dir / "ministack.pid").read_text()))
    # GIVEN an API worker and two status workers (started ahead, as `vidpipe up` does)
    local_stack.http.get(f"{local_stack.api_url}/jobs", params={"limit": "1"}, timeout=60).raise_for_status()
    prewarmed = requests.post(
        f"{local_stack.aws_endpoint_url}/_vidpipe/prewarm",
        json={"functions": ["StatusFunction"], "workers": 2},
        timeout=120,
    )
    assert prewarmed.status_code == 200
    assert prewarmed.json()["started"] in (0, 1, 2)  # 0: `vidpipe up` started them already

    workers = workers_by_function(data_dir)

    status_workers = [niceness for name, found in workers.items() if "-StatusFunction-" in name for niceness in found]
    assert len(status_workers) >= 2
    api_workers = [niceness for name, found in workers.items() if "-UploadApiFunction-" in name for niceness in found]
    assert api_workers and set(api_workers) == {ministack_niceness}
    for name, found in workers.items():
        expected = ministack_niceness if answers_people(name) else max(ministack_niceness, BACKGROUND_NICENESS)
        assert set(found) == {expected}, name


def test_GIVEN_a_malformed_prewarm_request_WHEN_sent_THEN_400_with_the_expected_shape(local_stack: Any) -> None:
    answer = requests.post(f"{local_stack.aws_endpoint_url}/_vidpipe/prewarm", json={"workers": 2}, timeout=30)

    assert answer.status_code == 400
    assert "functions" in answer.json()["error"]
