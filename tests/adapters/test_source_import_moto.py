"""The import function's handler, end to end in one process: the recorded SQS
record in, a source served by a real HTTP server on 127.0.0.1 (allow-listed),
S3 (multipart, in parts of 8 MiB) and DynamoDB from moto. The fetched file
lands at the job's upload key; a source that fails ends the job FAILED."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from moto import mock_aws

from source_import.domain_logic.importing import PART_BYTES
from source_import.handlers import source_import
from tests.moto_resources import REGION, create_jobs_table, use_fake_credentials
from vidpipe.adapters import aws_clients
from vidpipe.adapters.job_store import DynamoJobStore
from vidpipe.domain.jobs import Job, JobStatus
from vidpipe.runtime import settings

EVENT = Path(__file__).parents[1] / "events" / "sqs_record_import_requested.json"
JOB_ID = "5d1c7e9a3b2f4c6e8a0b1d3f5e7a9c2b"
TABLE = "vidpipe-test-jobs"
BUCKET = "vidpipe-test-uploads"
# Larger than one part, so the multipart path joins several.
CLIP = b"\x00\x00\x00\x20ftypisom" + bytes(range(256)) * (PART_BYTES // 256 + 4096)


class Source(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        if self.path == "/clip.mp4":
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Content-Length", str(len(CLIP)))
            self.end_headers()
            self.wfile.write(CLIP)
        else:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@dataclass
class Stack:
    port: int
    s3: Any
    jobs: DynamoJobStore


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Source)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = int(server.server_address[1])
    use_fake_credentials(monkeypatch)
    for name, value in {
        "JOBS_TABLE": TABLE,
        "UPLOADS_BUCKET": BUCKET,
        "OUTPUTS_BUCKET": "vidpipe-test-outputs",
        "EVENT_BUS_NAME": "vidpipe-test-events",
        "WEBHOOK_ALLOWED_HOSTS": f"127.0.0.1:{port}",
        "MAX_RECEIVE_COUNT": "3",
        "POWERTOOLS_SERVICE_NAME": "source-import",
    }.items():
        monkeypatch.setenv(name, value)
    settings.get_settings.cache_clear()
    aws_clients.s3_client.cache_clear()
    aws_clients.dynamodb_client.cache_clear()
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        create_jobs_table(dynamodb, TABLE)
        yield Stack(port=port, s3=s3, jobs=DynamoJobStore(dynamodb, TABLE))
    settings.get_settings.cache_clear()
    aws_clients.s3_client.cache_clear()
    aws_clients.dynamodb_client.cache_clear()
    server.shutdown()
    server.server_close()


def import_job(stack: Stack, path: str) -> None:
    job = Job.new(JOB_ID, filename="clip.mp4", content_type="application/octet-stream", size=0, now="t0")
    job.owner = "alice"
    job.upload = {"method": "IMPORT", "source_url": f"http://127.0.0.1:{stack.port}{path}"}
    stack.jobs.create(job)
    record = json.loads(EVENT.read_text())["Records"][0]
    source_import.handle_record(SQSRecord(record))


def test_GIVEN_a_job_to_import_WHEN_its_message_is_handled_THEN_the_source_lands_at_its_upload_key(
    stack: Stack,
) -> None:
    import_job(stack, "/clip.mp4")

    stored = stack.s3.get_object(Bucket=BUCKET, Key=f"uploads/{JOB_ID}/source")
    assert stored["Body"].read() == CLIP
    assert stored["ContentType"] == "video/mp4"
    assert stack.jobs.get(JOB_ID).status is JobStatus.AWAITING_UPLOAD  # S3's event moves it on
    assert stack.s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []


def test_GIVEN_a_source_that_is_gone_WHEN_its_message_is_handled_THEN_the_job_fails_and_nothing_is_stored(
    stack: Stack,
) -> None:
    import_job(stack, "/gone.mp4")

    job = stack.jobs.get(JOB_ID)
    assert job.status is JobStatus.FAILED
    assert job.error is not None and job.error["code"] == "SOURCE_UNREACHABLE" and "404" in job.error["message"]
    assert stack.s3.list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0
