"""infra/template.yaml's promises from the security review: each function puts
events only under its own sources, the buckets refuse plain http, every
dead-letter queue has an alarm, sources expire, and the sweep watches the status
function's dead-letter queue."""

from __future__ import annotations

from typing import Any

import pytest

from vidpipe_cli.template import load_template

# The sources each function's code publishes under (EventBridgePublisher(..., source=...)).
EVENT_SOURCES = {
    "SweepFunctionRole": ["vidpipe.status"],
    # A failed import's "Job Failed", published as the status function's.
    "SourceImportFunctionRole": ["vidpipe.status"],
    "StatusFunctionRole": ["vidpipe.status", "vidpipe.chunks"],
    "TranscodeFunctionRole": ["vidpipe.transcode", "vidpipe.chunks"],
    "ChunkEncodeFunctionRole": ["vidpipe.transcode"],
    "ThumbnailsFunctionRole": ["vidpipe.thumbnails"],
}
DEAD_LETTER_QUEUES = ("Transcode", "Thumbnails", "Status", "Webhook", "Chunk", "Import", "Captions")
TLS_ONLY = {"Bool": {"aws:SecureTransport": "false"}}


@pytest.fixture(scope="module")
def resources(translated: dict[str, Any]) -> dict[str, Any]:
    return translated["Resources"]


def statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        statement
        for policy in role["Properties"].get("Policies", [])
        for statement in policy["PolicyDocument"]["Statement"]
    ]


def put_events_statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in statements(role) if "events:PutEvents" in str(s.get("Action"))]


def test_GIVEN_every_role_WHEN_it_may_put_events_THEN_only_under_its_own_sources(resources: dict[str, Any]) -> None:
    roles = {name: r for name, r in resources.items() if r["Type"] == "AWS::IAM::Role" and put_events_statements(r)}

    assert set(roles) == set(EVENT_SOURCES)
    for name, role in roles.items():
        [statement] = put_events_statements(role)
        # ForAllValues: every entry of a PutEvents call, not just one of them.
        assert statement["Condition"] == {"ForAllValues:StringEquals": {"events:source": EVENT_SOURCES[name]}}, name


def deny_without_tls(statement: dict[str, Any], bucket: str) -> bool:
    return (
        statement.get("Effect") == "Deny"
        and statement.get("Principal") == "*"
        and statement["Action"] == "s3:*"
        and statement["Condition"] == TLS_ONLY
        and statement["Resource"] == [{"Fn::GetAtt": [bucket, "Arn"]}, {"Fn::Sub": f"${{{bucket}.Arn}}/*"}]
    )


def test_GIVEN_the_buckets_WHEN_their_policies_are_read_THEN_requests_without_tls_are_denied(
    resources: dict[str, Any],
) -> None:
    uploads, outputs = resources["UploadsBucketPolicy"], resources["OutputsBucketPolicy"]

    [uploads_deny] = uploads["Properties"]["PolicyDocument"]["Statement"]
    assert uploads["Condition"] == "RequireTls" and deny_without_tls(uploads_deny, "UploadsBucket")
    # Outputs: the CloudFront grant and the TLS deny, each when it applies.
    branches = {s["Fn::If"][0]: s["Fn::If"][1] for s in outputs["Properties"]["PolicyDocument"]["Statement"]}
    assert deny_without_tls(branches["RequireTls"], "OutputsBucket")
    assert branches["DeliverThroughCloudFront"]["Sid"] == "OnlyTheOutputsDistributionReads"
    assert outputs["Condition"] == "HasOutputsBucketPolicy"


def test_GIVEN_the_local_stack_WHEN_it_deploys_THEN_it_turns_the_tls_deny_off_for_its_plain_http() -> None:
    # The local stack answers on http://127.0.0.1: with the deny, every S3 call would be refused.
    from vidpipe_cli.local_deploy import local_parameters

    assert local_parameters("http://127.0.0.1:1/api", {})["BucketsRequireTls"] == "false"
    assert load_template()["Parameters"]["BucketsRequireTls"]["Default"] == "true"


@pytest.mark.parametrize("queue", DEAD_LETTER_QUEUES)
def test_GIVEN_a_dead_letter_queue_WHEN_a_message_waits_there_THEN_an_alarm_fires(
    resources: dict[str, Any], queue: str
) -> None:
    alarms = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
        and r["Properties"]["Dimensions"]
        == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [f"{queue}DeadLetterQueue", "QueueName"]}}]
    ]

    [alarm] = alarms
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)
    assert alarm["AlarmActions"] == {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}


def test_GIVEN_every_queue_with_a_dead_letter_queue_WHEN_listed_THEN_each_dead_letter_queue_is_alarmed(
    resources: dict[str, Any],
) -> None:
    targets = {
        r["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        for r in resources.values()
        if r["Type"] == "AWS::SQS::Queue" and "RedrivePolicy" in r["Properties"]
    }

    assert targets == {f"{queue}DeadLetterQueue" for queue in DEAD_LETTER_QUEUES}


def test_GIVEN_the_uploads_bucket_WHEN_its_lifecycle_is_read_THEN_sources_expire_after_the_set_days_unless_zero(
    resources: dict[str, Any],
) -> None:
    rules = resources["UploadsBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    [conditional] = [rule["Fn::If"] for rule in rules if "Fn::If" in rule]

    condition, when_forever, rule = conditional
    assert condition == "KeepSourcesForever" and when_forever == {"Ref": "AWS::NoValue"}
    assert rule["Prefix"] == "uploads/" and rule["ExpirationInDays"] == {"Ref": "SourceRetentionDays"}
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": {"Ref": "SourceRetentionDays"}}
    template = load_template()
    assert template["Conditions"]["KeepSourcesForever"] == {"Fn::Equals": [{"Ref": "SourceRetentionDays"}, 0]}
    assert template["Parameters"]["SourceRetentionDays"]["Default"] == 30


def test_GIVEN_the_uploads_bucket_WHEN_its_lifecycle_is_read_THEN_caption_uploads_and_chunk_work_do_not_stay(
    resources: dict[str, Any],
) -> None:
    rules = resources["UploadsBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    by_prefix = {rule["Prefix"]: rule for rule in rules if "Prefix" in rule and "ExpirationInDays" in rule}

    assert by_prefix["captions/"]["ExpirationInDays"] == 7
    assert by_prefix["captions/"]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 7}
    assert by_prefix["chunks/"]["ExpirationInDays"] == 2


def test_GIVEN_the_sweep_WHEN_it_looks_for_stranded_jobs_THEN_it_reads_the_status_dead_letter_queue_too(
    resources: dict[str, Any],
) -> None:
    queues = resources["SweepFunction"]["Properties"]["Environment"]["Variables"]["STAGE_DEAD_LETTER_QUEUES"]
    [receive] = [s for s in statements(resources["SweepFunctionRole"]) if s["Action"] == "sqs:ReceiveMessage"]

    assert "status=${StatusDeadLetterQueue}" in queues["Fn::Sub"]
    assert {"Fn::GetAtt": ["StatusDeadLetterQueue", "Arn"]} in receive["Resource"]
