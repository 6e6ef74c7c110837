"""At-least-once delivery and least privilege, proven on the local stack.

Every consumer is idempotent by construction rather than by a dedupe table:
stages write the same keys again (same bytes, same names), and the status
function applies events with a pure, monotonic rule under a conditional write
(vidpipe.domain.job_transitions.apply_event + the job's version). So duplicates and shuffles
change nothing, and "Job Ready" is published once, by the one write that made
the job READY."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from vidpipe.domain.events import Stage, StageEvent, StageEventKind

pytestmark = [pytest.mark.stack, pytest.mark.ffmpeg]

SAMPLE = Path(__file__).resolve().parents[2] / "sample_media" / "tiny_160x90.mp4"


def client(stack: Any, service: str, **credentials: str) -> Any:
    keys = credentials or {"aws_access_key_id": "test", "aws_secret_access_key": "test"}
    return boto3.client(
        service,
        endpoint_url=stack.aws_endpoint_url,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}),
        **keys,
    )


def outputs(stack: Any) -> dict[str, str]:
    cloudformation = client(stack, "cloudformation")
    stack_outputs = cloudformation.describe_stacks(StackName="vidpipe")["Stacks"][0]["Outputs"]
    return {o["OutputKey"]: o["OutputValue"] for o in stack_outputs}


def wait_until_drained(sqs: Any, urls: list[str], timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        counts = []
        for url in urls:
            attributes = sqs.get_queue_attributes(
                QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
            )["Attributes"]
            counts.append(
                int(attributes["ApproximateNumberOfMessages"])
                + int(attributes["ApproximateNumberOfMessagesNotVisible"])
            )
        if sum(counts) == 0:
            return
        time.sleep(1)
    raise AssertionError(f"queues still busy after {timeout_s} s")


def deliver_ready_run_three_times_shuffled(
    local_stack: Any, job_id: str, *, seed: int, trace: dict[str, Any] | None = None
) -> None:
    """Put every stage event of a successful run of ``job_id`` on the status
    queue three times, in an order shuffled by ``seed``, as the rules would
    deliver them; return once the queue is drained."""
    hls = {
        "prefix": f"jobs/{job_id}/hls/",
        "master_playlist": "master.m3u8",
        "renditions": [{"name": "240p", "width": 426, "height": 240, "bitrate": 528000}],
    }
    thumbs = {
        "prefix": f"jobs/{job_id}/thumbnails/",
        "poster": "poster.jpg",
        "sprite": "sprite.jpg",
        "storyboard": "storyboard.vtt",
        "thumbnails": ["thumb_001.jpg"],
    }
    stage_events = [
        StageEvent(job_id=job_id, stage=Stage.TRANSCODE, kind=StageEventKind.STARTED, trace=trace),
        StageEvent(job_id=job_id, stage=Stage.TRANSCODE, kind=StageEventKind.PROGRESS, progress=0.5, trace=trace),
        StageEvent(job_id=job_id, stage=Stage.TRANSCODE, kind=StageEventKind.COMPLETED, outputs=hls, trace=trace),
        StageEvent(job_id=job_id, stage=Stage.THUMBNAILS, kind=StageEventKind.STARTED, trace=trace),
        StageEvent(job_id=job_id, stage=Stage.THUMBNAILS, kind=StageEventKind.COMPLETED, outputs=thumbs, trace=trace),
    ]
    envelopes = [
        {
            "version": "0",
            "id": f"e{i}",
            "detail-type": e.detail_type,
            "source": f"vidpipe.{e.stage.value}",
            "account": "000000000000",
            "time": e.occurred_at[:19] + "Z",
            "region": "us-east-1",
            "resources": [],
            "detail": e.detail(),
        }
        for i, e in enumerate(stage_events)
    ]
    deliveries = envelopes * 3
    random.Random(seed).shuffle(deliveries)
    sqs, status_queue = client(local_stack, "sqs"), outputs(local_stack)["StatusQueueUrl"]
    for envelope in deliveries:
        sqs.send_message(QueueUrl=status_queue, MessageBody=json.dumps(envelope))
    wait_until_drained(sqs, [status_queue])


@pytest.fixture
def job_ready_listener(local_stack) -> Any:
    """A queue that receives every "Job Ready"/"Job Failed" event of the bus."""
    sqs, events = client(local_stack, "sqs"), client(local_stack, "events")
    found = outputs(local_stack)
    queue_url = sqs.create_queue(QueueName=f"test-finished-{random.randrange(10**9)}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    rule = f"test-finished-{random.randrange(10**9)}"
    rule_arn = events.put_rule(
        Name=rule, EventBusName=found["EventBusName"], EventPattern=json.dumps({"source": ["vidpipe.status"]})
    )["RuleArn"]
    sqs.set_queue_attributes(
        QueueUrl=queue_url,
        Attributes={
            "Policy": json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "events.amazonaws.com"},
                            "Action": "sqs:SendMessage",
                            "Resource": queue_arn,
                            "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
                        }
                    ],
                }
            )
        },
    )
    events.put_targets(Rule=rule, EventBusName=found["EventBusName"], Targets=[{"Id": "q", "Arn": queue_arn}])

    def finished_events(job_id: str) -> list[dict]:
        seen = []
        while batch := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []
        ):
            seen += [json.loads(m["Body"]) for m in batch]
            # Taken for good: left in place, a message would be seen again once
            # its visibility timeout (30 s) ran out, as a second "Job Ready".
            for message in batch:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        return [e for e in seen if e["detail"]["job_id"] == job_id]

    return finished_events


def test_duplicate_upload_events_give_one_set_of_outputs_and_one_terminal_status(
    local_stack, job_ready_listener
) -> None:
    # GIVEN a job that went READY once
    result = local_stack.vidpipe("submit", str(SAMPLE), "--wait", "--json", timeout=600)
    [job] = json.loads(result.stdout)
    assert job["status"] == "READY", job
    found = outputs(local_stack)
    s3, sqs = client(local_stack, "s3"), client(local_stack, "sqs")
    prefix = f"jobs/{job['job_id']}/"

    def output_keys() -> list[str]:
        return sorted(
            o["Key"] for o in s3.list_objects_v2(Bucket=found["OutputsBucketName"], Prefix=prefix).get("Contents", [])
        )

    keys_before = output_keys()
    assert len(job_ready_listener(job["job_id"])) == 1
    # WHEN S3's "Object Created" event is delivered twice more to every consumer
    upload = {
        "version": "0",
        "id": "duplicate",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "000000000000",
        "time": job["created_at"][:19] + "Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "version": "0",
            "bucket": {"name": found["UploadsBucketName"]},
            "object": {"key": f"uploads/{job['job_id']}/source", "size": SAMPLE.stat().st_size},
            "reason": "PutObject",
        },
    }
    queues = [found["TranscodeQueueUrl"], found["ThumbnailsQueueUrl"], found["StatusQueueUrl"]]
    for _ in range(2):
        for url in queues:
            sqs.send_message(QueueUrl=url, MessageBody=json.dumps(upload))
    wait_until_drained(sqs, queues)
    # THEN the outputs are the same files, the job is READY as before, and no second "Job Ready" went out
    assert output_keys() == keys_before
    after = local_stack.http.get(f"{local_stack.api_url}/jobs/{job['job_id']}", timeout=30).json()
    assert after["status"] == "READY"

    def without_urls(renditions: list[dict]) -> list[dict]:
        return [{k: v for k, v in r.items() if k != "url"} for r in renditions]  # URLs carry a fresh grant

    assert without_urls(after["outputs"]["renditions"]) == without_urls(job["outputs"]["renditions"])
    assert job_ready_listener(job["job_id"]) == []


def test_shuffled_and_repeated_stage_events_end_in_one_ready(local_stack, job_ready_listener) -> None:
    # GIVEN a job whose upload was created but whose events we deliver ourselves
    created = local_stack.http.post(
        f"{local_stack.api_url}/uploads",
        timeout=30,
        json={"filename": "x.mp4", "content_type": "video/mp4", "size": 1000},
    ).json()
    job_id = created["job_id"]
    # WHEN each of a successful run's stage events is delivered three times, in shuffled order
    deliver_ready_run_three_times_shuffled(local_stack, job_id, seed=7)
    # THEN the job is READY with both stages' outputs, and "Job Ready" was published exactly once
    job = local_stack.http.get(f"{local_stack.api_url}/jobs/{job_id}", timeout=30).json()
    assert job["status"] == "READY"
    assert {s["status"] for s in job["stages"].values()} == {"COMPLETED"}
    assert [r["name"] for r in job["outputs"]["renditions"]] == ["240p"]
    finished = job_ready_listener(job_id)
    assert [e["detail-type"] for e in finished] == ["Job Ready"]


def test_a_function_role_is_denied_what_it_must_not_do(local_stack) -> None:
    """IAM is enforced (AUTH=true): the transcode role may write outputs, and
    nothing else: not the jobs table, not the uploads."""
    found = outputs(local_stack)
    cloudformation, iam, sts = (client(local_stack, s) for s in ("cloudformation", "iam", "sts"))
    role_name = cloudformation.describe_stack_resource(StackName="vidpipe", LogicalResourceId="TranscodeFunctionRole")[
        "StackResourceDetail"
    ]["PhysicalResourceId"]
    session = sts.assume_role(
        RoleArn=iam.get_role(RoleName=role_name)["Role"]["Arn"], RoleSessionName="least-privilege-test"
    )["Credentials"]
    as_role = {
        "aws_access_key_id": session["AccessKeyId"],
        "aws_secret_access_key": session["SecretAccessKey"],
        "aws_session_token": session["SessionToken"],
    }
    s3, dynamodb = client(local_stack, "s3", **as_role), client(local_stack, "dynamodb", **as_role)

    s3.put_object(Bucket=found["OutputsBucketName"], Key="jobs/iam-test/hls/probe.txt", Body=b"allowed")
    with pytest.raises(ClientError) as denied_table:
        dynamodb.put_item(TableName=found["JobsTableName"], Item={"job_id": {"S": "forged"}})
    assert denied_table.value.response["Error"]["Code"] == "AccessDeniedException"
    with pytest.raises(ClientError) as denied_upload:
        s3.put_object(Bucket=found["UploadsBucketName"], Key="uploads/forged/source", Body=b"x")
    assert denied_upload.value.response["Error"]["Code"] == "AccessDenied"
    with pytest.raises(ClientError) as denied_other_prefix:
        s3.put_object(Bucket=found["OutputsBucketName"], Key="elsewhere/file.txt", Body=b"x")
    assert denied_other_prefix.value.response["Error"]["Code"] == "AccessDenied"
