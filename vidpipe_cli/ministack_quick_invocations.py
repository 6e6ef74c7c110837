"""Warm Lambda invocations on the local stack that do not wait for log lines
that never come.

Why (issue 18): after each invocation the pinned ministack (1.5.33) collects the
function's log lines, which a thread reads from the worker's stderr, before it
answers: it waits up to 50 ms for a first line, then until 5 ms pass without
one. A handler that logs nothing when all goes well (the API's GET routes, the
authorizer) therefore answered 50 ms late. Measured idle on the local stack:
GET /jobs/{id} took 63 ms, of which the API function's own work (one DynamoDB
read and the URL signing, py-spy) is about 10 ms.

The worker writes its log lines to stderr, line-buffered, before it writes its
answer to stdout, so when the answer is read the lines are already in the pipe
and the reader thread queues them within a fraction of a millisecond: waiting
5 ms for a first line and 2 ms of quiet loses nothing in practice. A line that
still comes later is not dropped: ministack hands it out with the function's
next invocation's log (`vidpipe logs` shows it a little later).

Loaded by vidpipe_cli/ministack_launcher.py on ministack's own interpreter,
given ministack's ``core.lambda_runtime`` module by :func:`install`; it changes
the defaults of ``Worker._drain_stderr_bounded``, a name private to ministack
1.5.33. Explicit arguments (ministack's provided-runtime workers pass their
own) are kept.
"""

from __future__ import annotations

from typing import Any

FIRST_LINE_WAIT_S = 0.005
QUIET_AFTER_LAST_LINE_S = 0.002


def install(lambda_runtime: Any) -> None:
    drain = lambda_runtime.Worker._drain_stderr_bounded

    def drain_briefly(
        self: Any,
        first_line_wait: float = FIRST_LINE_WAIT_S,
        idle_confirm: float = QUIET_AFTER_LAST_LINE_S,
        hard_cap: float = 0.250,
    ) -> str:
        return drain(self, first_line_wait=first_line_wait, idle_confirm=idle_confirm, hard_cap=hard_cap)

    lambda_runtime.Worker._drain_stderr_bounded = drain_briefly
