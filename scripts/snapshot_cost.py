"""What the local stack's runtime snapshots cost (issue 17): N small jobs through
the HTTP API on a stack of its own, with the CPU time and disk writes of the
snapshots (counted by vidpipe_cli/ministack_snapshots.py in its marker file)
set against those of the whole ministack process and the run's wall time.
Prints figures and ratios; asserts nothing.

    .venv/bin/python scripts/snapshot_cost.py [--jobs 100] [--concurrency 10]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

from scripts.load_test import run_load  # noqa: E402
from scripts.throwaway_stack import ThrowawayStack, throwaway_stack  # noqa: E402

IDLE_SWEEP_S = 6  # a little longer than the launcher's idle sweep (5 s)


def process_figures(pid: int) -> dict[str, float]:
    """CPU seconds (user + system) and bytes written to disk by one process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    io = dict(line.split(": ") for line in Path(f"/proc/{pid}/io").read_text().splitlines())
    # stat fields after the command name: utime and stime are the 12th and 13th.
    return {"cpu_s": (int(fields[11]) + int(fields[12])) / ticks, "write_bytes": float(io["write_bytes"])}


def snapshot_figures(state_dir: Path) -> dict[str, float]:
    marker = json.loads((state_dir / "snapshot.json").read_text())
    return {key: float(marker.get(key, 0)) for key in ("snapshots", "bytes_written", "cpu_s")}


@contextmanager
def measured_snapshot_cost(stack: ThrowawayStack) -> Iterator[dict[str, Any]]:
    """Measures the snapshots around the block; the yielded dict holds the figures afterwards."""
    state_dir = stack.data_dir / "state"
    pid = int((stack.data_dir / "ministack.pid").read_text())
    time.sleep(IDLE_SWEEP_S)  # the marker holds what start-up cost
    process_before, snapshots_before = process_figures(pid), snapshot_figures(state_dir)
    started = time.perf_counter()
    figures: dict[str, Any] = {}
    yield figures
    time.sleep(IDLE_SWEEP_S)  # the last changes, and the idle sweep after them
    wall_s = time.perf_counter() - started
    process_after, snapshots_after = process_figures(pid), snapshot_figures(state_dir)
    ministack_cpu = process_after["cpu_s"] - process_before["cpu_s"]
    ministack_writes = process_after["write_bytes"] - process_before["write_bytes"]
    snapshot_cpu = snapshots_after["cpu_s"] - snapshots_before["cpu_s"]
    snapshot_writes = snapshots_after["bytes_written"] - snapshots_before["bytes_written"]
    snapshots = snapshots_after["snapshots"] - snapshots_before["snapshots"]
    figures.update(
        {
            "wall_s": round(wall_s, 1),
            "snapshots_written": int(snapshots),
            "snapshots_per_s": round(snapshots / wall_s, 2),
            "snapshot_cpu_s": round(snapshot_cpu, 2),
            "snapshot_cpu_share_of_one_core": round(snapshot_cpu / wall_s, 4),
            "ministack_cpu_s": round(ministack_cpu, 1),
            "snapshot_cpu_share_of_ministack": round(snapshot_cpu / max(ministack_cpu, 0.01), 4),
            "snapshot_mb_written": round(snapshot_writes / 1e6, 1),
            "snapshot_mb_per_s": round(snapshot_writes / 1e6 / wall_s, 2),
            "ministack_mb_written": round(ministack_writes / 1e6, 1),
            "snapshot_share_of_ministack_writes": round(snapshot_writes / max(ministack_writes, 1), 4),
            "state_files_kb_at_end": {
                name: round((state_dir / f"{name}.json").stat().st_size / 1e3, 1) for name in ("sqs", "dynamodb")
            },
        }
    )


def warm_up(stack: ThrowawayStack, timeout_s: float = 600) -> None:
    """Wait until the API answers: its first calls start the functions' workers,
    which on a busy machine outlast the load's per-call timeout."""
    headers = {"Authorization": f"Bearer {stack.endpoints['api_token']}"}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{stack.endpoints['api_url']}/jobs", headers=headers, timeout=300).ok:
                return
        except requests.RequestException:
            time.sleep(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=10)
    args = parser.parse_args()
    parameters = f"MaxActiveJobsPerOwner={max(10, args.jobs)}"
    with throwaway_stack("vidpipe-snapshots-", parameters=parameters) as stack:
        warm_up(stack)
        with measured_snapshot_cost(stack) as cost:
            load = run_load(stack.endpoints["api_url"], stack.endpoints["api_token"], args.jobs, args.concurrency)
    print(json.dumps({"jobs": args.jobs, "statuses": load["statuses"], **cost}, indent=2))


if __name__ == "__main__":
    main()
