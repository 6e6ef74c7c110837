"""The one Logger and Metrics of every function (powertools).

Each handler appends ``job_id`` to the logger's keys as soon as it knows it, so
the job id is the correlation id of every log line."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics

logger = Logger()
metrics = Metrics()
