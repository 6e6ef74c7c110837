"""What `vidpipe submit` shows while it works: one status line on the terminal,
rewritten in place, and a job's one-line summary when it ends."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


def job_summary(job: dict[str, Any]) -> str:
    if job["status"] == "READY":
        names = ", ".join(r["name"] for r in job["outputs"].get("renditions", []))
        return f"READY ({names}) {job['outputs'].get('hls_url', '')}"
    if job.get("error"):
        return f"{job['status']} {job['error']['code']}: {job['error']['message']}"
    return str(job["status"])


class Progress:
    """One status line on the terminal, rewritten in place."""

    def __init__(self, enabled: bool, messages: TextIO) -> None:
        self.enabled = enabled
        self.messages = messages
        self._started: dict[str, float] = {}

    def upload(self, name: str, sent: int, total: int) -> None:
        started = self._started.setdefault(name, time.monotonic())
        rate = sent / max(time.monotonic() - started, 1e-6) / 1e6
        self._line(
            f"{name}: uploading {_bar(sent / max(total, 1))} {sent / 1e6:.1f}/{total / 1e6:.1f} MB {rate:.1f} MB/s"
        )

    def job(self, name: str, job: dict[str, Any]) -> None:
        stages = "  ".join(f"{stage} {_bar(state['progress'], 10)}" for stage, state in job["stages"].items())
        self._line(f"{name}: {job['status']:<10} {stages}")

    def done(self, message: str) -> None:
        if self.enabled:
            sys.stderr.write("\r\033[K")
        print(message, file=self.messages, flush=True)

    def _line(self, text: str) -> None:
        if self.enabled:
            sys.stderr.write("\r\033[K" + text[:150])
            sys.stderr.flush()


def _bar(fraction: float, width: int = 20) -> str:
    filled = int(max(0.0, min(1.0, fraction)) * width)
    return "[" + "#" * filled + "." * (width - filled) + f"] {fraction * 100:3.0f}%"
