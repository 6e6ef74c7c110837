"""A local stack of the scripts' own: a free port and a temporary data folder,
so a benchmark or report never touches a stack the user has running."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class ThrowawayStack:
    endpoints: dict[str, Any]  # what `vidpipe up --json` prints
    outputs: dict[str, str]  # the CloudFormation stack's outputs
    data_dir: Path
    environment: dict[str, str]

    def vidpipe(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "vidpipe_cli.main", *args],
            cwd=PROJECT_ROOT,
            env=self.environment,
            capture_output=True,
            text=True,
            check=True,
        )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def throwaway_stack(prefix: str = "vidpipe-script-", parameters: str = "") -> Iterator[ThrowawayStack]:
    """`vidpipe up` on a fresh port and folder (``parameters``: template overrides,
    ``Key=Value,...``); `vidpipe down` afterwards, whatever happens."""
    with tempfile.TemporaryDirectory(prefix=prefix) as data_dir:
        environment = {**os.environ, "VIDPIPE_DATA_DIR": data_dir, "VIDPIPE_PORT": str(free_port())}
        if parameters:
            environment["VIDPIPE_PARAMETERS"] = parameters
        up = subprocess.run(
            [sys.executable, "-m", "vidpipe_cli.main", "up", "--json"],
            cwd=PROJECT_ROOT,
            env=environment,
            capture_output=True,
            text=True,
            check=True,
        )
        outputs = json.loads((Path(data_dir) / "stack.json").read_text())["endpoints"]["outputs"]
        stack = ThrowawayStack(json.loads(up.stdout), outputs, Path(data_dir), environment)
        try:
            yield stack
        finally:
            subprocess.run(
                [sys.executable, "-m", "vidpipe_cli.main", "down"],
                cwd=PROJECT_ROOT,
                env=environment,
                capture_output=True,
                check=False,
            )
