"""infra/template.yaml keeps the promises of the per-user limits (issue 13,
finding 2): per-owner limits as parameters reaching the functions that apply
them, throttling on the HTTP API, a bound on chunk-encode concurrency, and the
chunk orders sent as one message group per job."""

from __future__ import annotations

from typing import Any

from vidpipe_cli.local_deploy import with_local_concurrency


def statements(translated: dict[str, Any], role: str) -> list[dict[str, Any]]:
    policies = translated["Resources"][role]["Properties"]["Policies"]
    return [statement for policy in policies for statement in policy["PolicyDocument"]["Statement"]]


def allowed(translated: dict[str, Any], role: str, action: str, resource: Any) -> bool:
    for statement in statements(translated, role):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        if action in actions and resource in resources:
            return True
    return False


def test_GIVEN_the_owner_limits_WHEN_read_THEN_they_are_parameters_with_sensible_defaults(
    template: dict[str, Any],
) -> None:
    parameters = template["Parameters"]

    assert parameters["MaxActiveJobsPerOwner"]["Default"] == 10
    assert parameters["MaxUploadBytesPerOwnerPerDay"]["Default"] == 100 * 1024**3
    assert parameters["MaxVideoMinutesPerOwnerPerDay"]["Default"] == 300
    for name in ("MaxActiveJobsPerOwner", "MaxUploadBytesPerOwnerPerDay", "MaxVideoMinutesPerOwnerPerDay"):
        assert parameters[name]["MinValue"] == 1, f"{name} = 0 would refuse every request"


def test_GIVEN_the_functions_that_apply_the_limits_WHEN_translated_THEN_they_get_them_as_settings(
    translated: dict[str, Any],
) -> None:
    def variables(function: str) -> dict[str, Any]:
        return translated["Resources"][function]["Properties"]["Environment"]["Variables"]

    api = variables("UploadApiFunction")
    assert api["MAX_ACTIVE_JOBS_PER_OWNER"] == {"Ref": "MaxActiveJobsPerOwner"}
    assert api["MAX_UPLOAD_BYTES_PER_OWNER_PER_DAY"] == {"Ref": "MaxUploadBytesPerOwnerPerDay"}
    # The API refuses a new upload while the day's minutes are used up.
    assert api["MAX_VIDEO_MINUTES_PER_OWNER_PER_DAY"] == {"Ref": "MaxVideoMinutesPerOwnerPerDay"}
    assert variables("TranscodeFunction")["MAX_VIDEO_MINUTES_PER_OWNER_PER_DAY"] == {
        "Ref": "MaxVideoMinutesPerOwnerPerDay"
    }


def test_GIVEN_the_http_api_stage_WHEN_translated_THEN_every_route_is_throttled_by_parameters(
    translated: dict[str, Any],
) -> None:
    settings = translated["Resources"]["HttpApiStage"]["Properties"]["DefaultRouteSettings"]

    assert settings["ThrottlingBurstLimit"] == {"Ref": "ApiThrottlingBurstLimit"}
    assert settings["ThrottlingRateLimit"] == {"Ref": "ApiThrottlingRateLimit"}
    assert translated["Parameters"]["ApiThrottlingBurstLimit"]["Default"] > 0
    assert translated["Parameters"]["ApiThrottlingRateLimit"]["Default"] > 0


def test_GIVEN_the_chunk_encode_function_WHEN_translated_THEN_its_queue_mapping_bounds_its_concurrency(
    translated: dict[str, Any],
) -> None:
    [mapping] = [
        r["Properties"]
        for r in translated["Resources"].values()
        if r["Type"] == "AWS::Lambda::EventSourceMapping"
        and r["Properties"]["FunctionName"] == {"Ref": "ChunkEncodeFunction"}
    ]

    # A whole number SQS event sources accept (2..1000), written as one: ministack
    # 1.5.33 keeps a parameter's value as text, and its poller then fails.
    maximum = mapping["ScalingConfig"]["MaximumConcurrency"]
    assert isinstance(maximum, int) and 2 <= maximum <= 1000
    # A bound per mapping, not concurrency reserved out of the account's pool.
    assert "ReservedConcurrentExecutions" not in translated["Resources"]["ChunkEncodeFunction"]["Properties"]


def test_GIVEN_the_local_stack_WHEN_it_deploys_on_few_cores_THEN_the_chunk_mapping_takes_turns_and_nothing_else_changes(
    translated: dict[str, Any],
) -> None:
    local = with_local_concurrency(translated, cores=2)

    changed = {name for name, resource in translated["Resources"].items() if resource != local["Resources"][name]}
    [chunk_mapping] = changed
    assert local["Resources"][chunk_mapping]["Properties"]["FunctionName"] == {"Ref": "ChunkEncodeFunction"}
    assert local["Resources"][chunk_mapping]["Properties"]["ScalingConfig"]["MaximumConcurrency"] == 2
    # the template deployed to AWS keeps its bound
    assert translated["Resources"][chunk_mapping]["Properties"]["ScalingConfig"]["MaximumConcurrency"] == 20
    assert with_local_concurrency(translated, cores=64) == translated


def test_GIVEN_the_planner_WHEN_translated_THEN_it_sends_chunk_orders_to_the_chunk_queue_itself(
    translated: dict[str, Any],
) -> None:
    variables = translated["Resources"]["TranscodeFunction"]["Properties"]["Environment"]["Variables"]

    assert variables["CHUNK_QUEUE_URL"] == {"Ref": "ChunkQueue"}
    assert allowed(translated, "TranscodeFunctionRole", "sqs:SendMessage", {"Fn::GetAtt": ["ChunkQueue", "Arn"]})


def test_GIVEN_the_functions_that_count_usage_WHEN_translated_THEN_they_may_update_the_jobs_table(
    translated: dict[str, Any],
) -> None:
    jobs_table = {"Fn::GetAtt": ["JobsTable", "Arn"]}

    for role in ("UploadApiFunctionRole", "StatusFunctionRole", "SweepFunctionRole", "TranscodeFunctionRole"):
        assert allowed(translated, role, "dynamodb:UpdateItem", jobs_table), role
    assert allowed(translated, "TranscodeFunctionRole", "dynamodb:GetItem", jobs_table)


def test_GIVEN_the_jobs_table_WHEN_read_THEN_expired_daily_usage_items_are_deleted_by_ttl(
    template: dict[str, Any],
) -> None:
    properties = template["Resources"]["JobsTable"]["Properties"]

    assert properties["TimeToLiveSpecification"] == {"AttributeName": "usage_expires_at", "Enabled": True}
    assert [key["AttributeName"] for key in properties["KeySchema"]] == ["job_id"]  # key schema unchanged
