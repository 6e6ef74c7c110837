"""What ``vidpipe up`` repairs and reports when the local stack stopped.

After any stop, messages that were being processed are released at once
(:func:`release_messages_in_flight`). After an unclean stop (``kill -9``, an
out-of-memory kill, a machine that lost power: ministack's PID file is still
there but its process is gone), the state is that of the last runtime snapshot
(vidpipe_cli.ministack_snapshots, well under 2 s old), S3 objects are all there,
and :func:`describe_recovery` tells the user what was found: when that snapshot
was taken, which messages come back, and the jobs by status (the unfinished
ones resume from their messages, or the sweep ends them).
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Written by vidpipe_cli.ministack_snapshots after each snapshot.
SNAPSHOT_MARKER = "snapshot.json"


@dataclass(frozen=True)
class UncleanStop:
    """A local stack whose ministack process ended without saving."""

    pid: int
    last_snapshot_at: float | None  # epoch seconds; None: no snapshot was ever taken
    released: dict[str, int] = field(default_factory=dict)  # queue name -> messages released
    workers_ended: int = 0  # Lambda workers the dead process left running


def end_leftover_workers(process_group: int, tmp_root: Path) -> int:
    """End the Lambda workers a killed ministack left behind (they outlive it,
    and one in the middle of a stage would go on racing its redelivered
    message). Only processes of the dead one's process group that run from this
    stack's own temporary folder are ended; returns how many. Linux (/proc)
    only; elsewhere nothing is ended."""
    ended = 0
    marker = str(tmp_root).encode()
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            pid = int(entry.name)
            if os.getpgid(pid) != process_group or marker not in (entry / "cmdline").read_bytes():
                continue
            os.kill(pid, signal.SIGKILL)
            ended += 1
        except (OSError, ValueError):
            continue  # gone meanwhile, or not ours to read
    return ended


def last_snapshot_at(state_dir: Path) -> float | None:
    try:
        return float(json.loads((state_dir / SNAPSHOT_MARKER).read_text())["at"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def release_messages_in_flight(state_dir: Path) -> dict[str, int]:
    """ministack gap, worked around here: it saves a message that was being
    processed when it stopped as still in flight, so after a restart the message
    would wait out its queue's visibility timeout (90 minutes for transcode)
    although its consumer died with the old process. Before starting, we make
    such messages visible again, as if that timeout had passed; consumers are
    idempotent, so running them again is safe. Returns how many were released,
    by queue name.

    This edits ministack's own state file (format 2 of the pinned version) and
    does nothing for a format it does not know."""
    state_file = state_dir / "sqs.json"
    try:
        state = json.loads(state_file.read_text())
    except (OSError, ValueError):
        return {}
    if state.get("__ministack_format__") != 2:
        return {}
    released: Counter[str] = Counter()
    now = time.time()
    for queue in state.get("payload", {}).get("queues", {}).get("data", {}).values():
        for message in queue.get("messages", []) if isinstance(queue, dict) else []:
            if message.get("receipt_handle") is not None:
                message["receipt_handle"] = None
                message["visible_at"] = min(float(message.get("visible_at") or now), now)
                released[str(queue.get("name") or "?")] += 1
    if released:
        temporary = state_file.with_suffix(".json.vidpipe-tmp")
        temporary.write_text(json.dumps(state))
        temporary.replace(state_file)  # ministack reads a whole file or the old one
    return dict(released)


def jobs_by_status(dynamodb: Any, jobs_table: str) -> dict[str, int]:
    """How many jobs the recovered table holds in each status."""
    counts: Counter[str] = Counter()
    for page in dynamodb.get_paginator("scan").paginate(
        TableName=jobs_table, ProjectionExpression="#s", ExpressionAttributeNames={"#s": "status"}
    ):
        counts.update(item["status"]["S"] for item in page.get("Items", []) if "S" in item.get("status", {}))
    return dict(counts)


def describe_recovery(stop: UncleanStop, jobs: dict[str, int], unfinished: set[str]) -> list[str]:
    """The lines ``vidpipe up`` prints after an unclean stop."""
    if stop.last_snapshot_at is None:
        when = "no snapshot was taken: the state is that of the last clean stop"
    else:
        taken = time.strftime("%H:%M:%S", time.localtime(stop.last_snapshot_at))
        when = f"the state is that of the last snapshot, taken at {taken}"
    lines = [
        f"recovered from an unclean stop: ministack (pid {stop.pid}) ended without saving; {when} "
        "(S3 objects are all there; log lines since the last clean stop are lost)"
    ]
    if stop.workers_ended:
        lines.append(f"  ended {stop.workers_ended} Lambda worker(s) the stopped process left running")
    if stop.released:
        by_queue = ", ".join(f"{name} {count}" for name, count in sorted(stop.released.items()))
        lines.append(f"  messages that were being processed come back: {by_queue}")
    if jobs:
        summary = ", ".join(f"{count} {status}" for status, count in sorted(jobs.items()))
        waiting = sum(count for status, count in jobs.items() if status in unfinished)
        lines.append(f"  jobs found: {summary}; {waiting} unfinished resume from their messages")
    else:
        lines.append("  no jobs found")
    return lines
