"""The one Logger and Metrics of every function (powertools).

Each handler appends ``job_id`` to the logger's keys as soon as it knows it, so
the job id is the correlation id of every log line."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger, Metrics

logger = Logger()
metrics = Metrics()


@dataclass(frozen=True)
class Invocation:
    """Which function ran and in which Lambda invocation: every timeline entry
    names both, so an entry leads straight to its log lines."""

    function: str
    request_id: str

    @classmethod
    def of(cls, context: Any) -> Invocation:
        # The service name (transcode, status...) rather than the deployed
        # function name, which CloudFormation suffixes with a random id.
        function = os.environ.get("POWERTOOLS_SERVICE_NAME") or str(getattr(context, "function_name", ""))
        return cls(function=function, request_id=str(getattr(context, "aws_request_id", "")))
