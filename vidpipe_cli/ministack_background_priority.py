"""On the local stack, the functions that work in the background run at a lower
CPU priority than the functions that answer people.

Why (issue 18): on AWS every execution environment has CPU of its own. Here all
of them share the machine's cores with ministack, and while a batch of uploads
is processed, the stages' own Python (cold starts, boto3 calls, reading and
writing events) takes the cores the API needs: in the 100-job load the
POST /uploads of the first second waited up to 1.3 s. Their FFmpeg already runs
below them (``FFMPEG_NICENESS``, an increment on the function's own niceness).

What changes: right after ministack starts a worker of any function but those
behind the HTTP API (``ANSWERING_PEOPLE``, logical ids of infra/template.yaml;
tests/infra checks the list against the template), the worker's niceness is
set to ``BACKGROUND_NICENESS``. FFmpeg started by such a worker keeps its place
below it: thumbnails at 5 + 10, encoders at 19. Nothing else changes, and on
AWS nothing of this exists.

Loaded by vidpipe_cli/ministack_launcher.py on ministack's own interpreter,
given ministack's ``core.lambda_runtime`` module by :func:`install`; it wraps
``Worker._spawn`` and reads ``Worker.func_name`` and ``Worker._proc``, names of
ministack 1.5.33 (the second private).
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

# The functions behind the HTTP API: the API itself, its authorizer, and the
# images served by URL. ministack names a function of the stack
# "<stack>-<logical id>-<suffix>".
ANSWERING_PEOPLE = ("UploadApiFunction", "AuthorizerFunction", "OnDemandImagesFunction")
BACKGROUND_NICENESS = 5


def answers_people(function_name: str) -> bool:
    return any(f"-{logical_id}-" in function_name for logical_id in ANSWERING_PEOPLE)


def install(lambda_runtime: Any) -> None:
    spawn = lambda_runtime.Worker._spawn

    def spawn_then_lower_background(self: Any) -> Any:
        result = spawn(self)
        process = getattr(self, "_proc", None)
        if process is not None and not answers_people(self.func_name):
            # The worker may have exited already (a broken handler): nothing to lower.
            # Never above where it started (a stack started with `nice` stays as nice).
            with contextlib.suppress(ProcessLookupError, PermissionError):
                current = os.getpriority(os.PRIO_PROCESS, process.pid)
                os.setpriority(os.PRIO_PROCESS, process.pid, max(current, BACKGROUND_NICENESS))
        return result

    lambda_runtime.Worker._spawn = spawn_then_lower_background
