"""infra/template.yaml: it lints, it translates to plain CloudFormation, and what it
declares keeps the promises of ARCHITECTURE.md (SQS with DLQs, partial batch
failures, least privilege, S3 → EventBridge). Also the function packaging."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import cfnlint.api
import pytest

from vidpipe.domain.storage_keys import CAPTIONS_PREFIX, UPLOAD_KEY_PREFIX
from vidpipe.runtime.scratch import OUTPUT_HEADROOM_BYTES
from vidpipe_cli.packaging import FUNCTION_SLICES, build_function
from vidpipe_cli.template import TEMPLATE_PATH, load_template, translate_sam, with_artifact_locations

API_HANDLER = "upload_api.handlers.api.lambda_handler"
SWEEP_HANDLER = "job_lifecycle.handlers.sweep.lambda_handler"
AUTHORIZER_HANDLER = "upload_api.handlers.authorizer.lambda_handler"
# Invoked directly (HTTP API, authorizer, schedule): they read no queue.
# The on-demand images function is invoked synchronously by the API function.
ON_DEMAND_IMAGES_HANDLER = "thumbnails.handlers.on_demand.lambda_handler"
DIRECT_HANDLERS = (API_HANDLER, AUTHORIZER_HANDLER, SWEEP_HANDLER, ON_DEMAND_IMAGES_HANDLER)
# Reached without an API token: the web page and its assets, the OpenAPI
# document, and a job's playlists and storyboard (which check the output grant
# in their URL).
PUBLIC_ROUTES = {
    "GET /",
    "GET /openapi.json",
    "GET /static/{proxy+}",
    "GET /jobs/{job_id}/hls/{proxy+}",
    "GET /jobs/{job_id}/thumbnails/{proxy+}",
    "GET /jobs/{job_id}/thumbnail.jpg",
    "GET /jobs/{job_id}/thumbnail.webp",
    "GET /jobs/{job_id}/animated.webp",
}
# Which role reads which purpose's key set (vidpipe.domain.access), and nothing more:
# the authorizer checks tokens; the API signs grants and shows a new webhook its
# secret, and checks a Bearer token on the on-demand image routes (which skip the
# authorizer so that an <img> can use the output grant); the webhook function
# signs deliveries.
KEY_SETS = {"api-tokens": "ApiTokenKeys", "output-grants": "OutputGrantKeys", "webhook-signing": "WebhookSigningKeys"}
KEY_READERS = {
    "AuthorizerFunctionRole": {"api-tokens"},
    "UploadApiFunctionRole": {"api-tokens", "output-grants", "webhook-signing"},
    "WebhookFunctionRole": {"webhook-signing"},
}
# The only managed policies SAM may attach: logs, reading the function's SQS queue,
# and sending X-Ray traces (Tracing: Active).
SAM_MANAGED_POLICIES = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole",
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
}
SETTINGS_VARIABLES = {"JOBS_TABLE", "UPLOADS_BUCKET", "OUTPUTS_BUCKET", "EVENT_BUS_NAME"}


def resources_of(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == resource_type}


def getatt_target(value: Any) -> str:
    """``{"Fn::GetAtt": ["Queue", "Arn"]}`` → ``"Queue"``."""
    assert isinstance(value, dict) and "Fn::GetAtt" in value, value
    name, attribute = value["Fn::GetAtt"]
    assert attribute == "Arn"
    return str(name)


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# ------------------------------------------------------------------ lint and translation


def test_GIVEN_the_template_WHEN_cfn_lint_runs_THEN_no_error_or_warning() -> None:
    matches = cfnlint.api.lint_file(TEMPLATE_PATH)

    assert [f"{m.rule.id} {m.message} ({m.linenumber})" for m in matches] == []


def test_GIVEN_the_lint_api_WHEN_a_template_is_broken_THEN_it_reports_it() -> None:
    # Guards the test above: an empty list must mean "clean", not "did not run".
    matches = cfnlint.api.lint("Resources:\n  B:\n    Type: AWS::S3::Bucket\n    Properties:\n      Nope: 1\n")

    assert matches


def test_GIVEN_the_template_WHEN_translated_THEN_plain_cloudformation_is_left(translated: dict[str, Any]) -> None:
    types = {resource["Type"] for resource in translated["Resources"].values()}

    assert not [t for t in types if t.startswith("AWS::Serverless::")]
    assert "Transform" not in translated
    assert len(resources_of(translated, "AWS::Lambda::Function")) == 11
    assert len(resources_of(translated, "AWS::Lambda::LayerVersion")) == 2
    assert cfnlint.api.lint(json.dumps(translated)) == []


def test_GIVEN_artefact_locations_WHEN_applied_THEN_every_function_and_layer_points_at_its_zip(
    translated: dict[str, Any],
) -> None:
    for name, function in resources_of(translated, "AWS::Lambda::Function").items():
        code = function["Properties"]["Code"]
        assert code["S3Bucket"] == "vidpipe-artefacts", name
        assert code["S3Key"].split("-0123abcd")[0] in FUNCTION_SLICES, name
    for name, layer in resources_of(translated, "AWS::Lambda::LayerVersion").items():
        assert layer["Properties"]["Content"]["S3Key"] in {"dependencies-0123abcd.zip", "ffmpeg-0123abcd.zip"}, name


def test_GIVEN_a_code_folder_the_build_does_not_make_WHEN_located_THEN_key_error(template: dict[str, Any]) -> None:
    with pytest.raises(KeyError, match="did not produce"):
        with_artifact_locations(template, {"upload_api": ("b", "k")})


# ------------------------------------------------------------------ queues and event sources


def test_GIVEN_the_functions_WHEN_translated_THEN_each_not_invoked_directly_reads_sqs_reporting_batch_item_failures(
    translated: dict[str, Any],
) -> None:
    functions = resources_of(translated, "AWS::Lambda::Function")
    mappings = resources_of(translated, "AWS::Lambda::EventSourceMapping").values()
    by_function: dict[str, list[dict[str, Any]]] = {name: [] for name in functions}
    for mapping in mappings:
        by_function[mapping["Properties"]["FunctionName"]["Ref"]].append(mapping["Properties"])
    queues = resources_of(translated, "AWS::SQS::Queue")

    for name, function in functions.items():
        if function["Properties"]["Handler"] in DIRECT_HANDLERS:
            assert by_function[name] == [], (
                f"{name} is invoked directly (HTTP API, authorizer, schedule, the API): no queue"
            )
            continue
        assert by_function[name], f"{name} has no event source mapping"
        for mapping in by_function[name]:
            assert getatt_target(mapping["EventSourceArn"]) in queues, name
            assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"], name


def test_GIVEN_the_api_function_WHEN_translated_THEN_the_http_api_integration_targets_it(
    translated: dict[str, Any],
) -> None:
    [integration] = resources_of(translated, "AWS::ApiGatewayV2::Integration").values()

    target = getatt_target(integration["Properties"]["IntegrationUri"])
    assert translated["Resources"][target]["Properties"]["Handler"] == API_HANDLER
    assert integration["Properties"]["PayloadFormatVersion"] == "2.0"


def test_GIVEN_the_default_route_WHEN_translated_THEN_the_lambda_authorizer_guards_it(
    translated: dict[str, Any],
) -> None:
    routes = {
        r["Properties"]["RouteKey"]: r["Properties"]
        for r in resources_of(translated, "AWS::ApiGatewayV2::Route").values()
    }
    authorizer = translated["Resources"]["HttpApiAuthorizer"]

    default = routes["$default"]
    # The Lambda authorizer unless the stack is given an OIDC issuer (see the next test).
    assert default["AuthorizationType"] == {"Fn::If": ["UseOidcIssuer", "JWT", "CUSTOM"]}
    assert default["AuthorizerId"] == {
        "Fn::If": ["UseOidcIssuer", {"Ref": "HttpApiJwtAuthorizer"}, {"Ref": "HttpApiAuthorizer"}]
    }
    properties = authorizer["Properties"]
    assert properties["AuthorizerType"] == "REQUEST"
    # The authorizer answers {"isAuthorized": ..., "context": {"user": ...}}: the
    # simple response of payload 2.0, which the API reads at
    # requestContext.authorizer.lambda.user.
    assert properties["AuthorizerPayloadFormatVersion"] == "2.0"
    assert properties["EnableSimpleResponses"] is True
    assert properties["IdentitySource"] == ["$request.header.Authorization"]
    uri = properties["AuthorizerUri"]["Fn::Sub"]
    assert "${AuthorizerFunction.Arn}" in uri
    assert translated["Resources"]["AuthorizerFunction"]["Properties"]["Handler"] == AUTHORIZER_HANDLER
    permissions = [
        p["Properties"]
        for p in resources_of(translated, "AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"] == {"Ref": "AuthorizerFunction"}
    ]
    assert [p["Principal"] for p in permissions] == ["apigateway.amazonaws.com"]


def test_GIVEN_an_oidc_issuer_WHEN_translated_THEN_a_jwt_authorizer_checks_its_tokens_and_none_exists_without_one(
    template: dict[str, Any],
    translated: dict[str, Any],
) -> None:
    # The AWS option for deployments whose users sign in with Cognito or another
    # OIDC provider: API Gateway checks signature, audience and expiry itself.
    jwt = translated["Resources"]["HttpApiJwtAuthorizer"]

    assert jwt["Condition"] == "UseOidcIssuer"
    assert translated["Conditions"]["UseOidcIssuer"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "OidcIssuer"}, ""]}]}
    assert template["Parameters"]["OidcIssuer"]["Default"] == ""
    assert jwt["Properties"]["AuthorizerType"] == "JWT"
    assert jwt["Properties"]["IdentitySource"] == ["$request.header.Authorization"]
    assert jwt["Properties"]["JwtConfiguration"] == {
        "Issuer": {"Ref": "OidcIssuer"},
        "Audience": [{"Ref": "OidcAudience"}],
    }


def test_GIVEN_the_routes_WHEN_translated_THEN_only_the_page_the_api_document_and_granted_outputs_skip_the_authorizer(
    translated: dict[str, Any],
) -> None:
    routes = resources_of(translated, "AWS::ApiGatewayV2::Route").values()
    [integration_name] = resources_of(translated, "AWS::ApiGatewayV2::Integration")

    public = {r["Properties"]["RouteKey"] for r in routes if r["Properties"].get("AuthorizationType", "NONE") == "NONE"}
    assert public == PUBLIC_ROUTES
    for route in routes:
        properties = route["Properties"]
        assert properties["Target"] == {"Fn::Sub": f"integrations/${{{integration_name}}}"}, properties["RouteKey"]
        if properties["RouteKey"] in PUBLIC_ROUTES:
            assert "AuthorizerId" not in properties, properties["RouteKey"]
        else:
            assert properties["AuthorizationType"] == {"Fn::If": ["UseOidcIssuer", "JWT", "CUSTOM"]}, properties[
                "RouteKey"
            ]


def test_GIVEN_every_queue_a_function_reads_WHEN_inspected_THEN_it_redrives_to_a_dead_letter_queue(
    translated: dict[str, Any],
) -> None:
    queues = resources_of(translated, "AWS::SQS::Queue")
    read = {
        getatt_target(mapping["Properties"]["EventSourceArn"])
        for mapping in resources_of(translated, "AWS::Lambda::EventSourceMapping").values()
    }
    assert read == {
        "TranscodeQueue",
        "ThumbnailsQueue",
        "StatusQueue",
        "ChunkQueue",
        "WebhookQueue",
        "ImportQueue",
        "CaptionsQueue",
    }

    for name in read:
        redrive = queues[name]["Properties"].get("RedrivePolicy")
        assert redrive, f"{name} has no RedrivePolicy"
        dead_letter = getatt_target(redrive["deadLetterTargetArn"])
        assert dead_letter in queues and dead_letter != name
        assert dead_letter not in read, f"nothing should consume {dead_letter}"
        assert "RedrivePolicy" not in queues[dead_letter]["Properties"]
        assert 1 <= int(redrive["maxReceiveCount"]) <= 10


def test_GIVEN_each_stage_queue_WHEN_compared_with_its_function_THEN_visibility_is_six_times_the_timeout(
    translated: dict[str, Any],
) -> None:
    queues = resources_of(translated, "AWS::SQS::Queue")
    functions = resources_of(translated, "AWS::Lambda::Function")

    for mapping in resources_of(translated, "AWS::Lambda::EventSourceMapping").values():
        queue = queues[getatt_target(mapping["Properties"]["EventSourceArn"])]
        function = functions[mapping["Properties"]["FunctionName"]["Ref"]]
        assert int(queue["Properties"]["VisibilityTimeout"]) >= 6 * int(function["Properties"]["Timeout"])


def test_GIVEN_the_stage_queues_WHEN_compared_with_the_settings_THEN_the_last_attempt_is_the_one_sqs_gives(
    translated: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The stage runner fails the job on attempt max_receive_count: it must be
    # the queue's maxReceiveCount, or the job is failed too early or never.
    from vidpipe.runtime.settings import Settings

    for name in SETTINGS_VARIABLES:
        monkeypatch.setenv(name, "x")
    queues = resources_of(translated, "AWS::SQS::Queue")
    functions = resources_of(translated, "AWS::Lambda::Function")
    for mapping in resources_of(translated, "AWS::Lambda::EventSourceMapping").values():
        queue_name = getatt_target(mapping["Properties"]["EventSourceArn"])
        if queue_name == "StatusQueue":
            continue
        variables = functions[mapping["Properties"]["FunctionName"]["Ref"]]["Properties"]["Environment"]["Variables"]
        if "MAX_RECEIVE_COUNT" in variables:
            monkeypatch.setenv("MAX_RECEIVE_COUNT", str(variables["MAX_RECEIVE_COUNT"]))
        else:
            monkeypatch.delenv("MAX_RECEIVE_COUNT", raising=False)
        expected = int(queues[queue_name]["Properties"]["RedrivePolicy"]["maxReceiveCount"])
        assert Settings.from_environment().max_receive_count == expected, queue_name


def test_GIVEN_the_transcode_function_WHEN_compared_with_the_chunk_function_THEN_it_plans_with_its_real_limits(
    translated: dict[str, Any],
) -> None:
    # The planner refuses an upload whose chunk the chunk function could not
    # encode in time: it must judge by that function's actual timeout and memory.
    functions = resources_of(translated, "AWS::Lambda::Function")
    planner = functions["TranscodeFunction"]["Properties"]["Environment"]["Variables"]
    chunk_function = functions["ChunkEncodeFunction"]["Properties"]

    assert int(planner["CHUNK_ENCODE_TIMEOUT_SECONDS"]) == int(chunk_function["Timeout"])
    assert int(planner["CHUNK_ENCODE_MEMORY_MB"]) == int(chunk_function["MemorySize"])


# ------------------------------------------------------------------ IAM


def test_GIVEN_every_function_role_WHEN_inspected_THEN_no_inline_statement_uses_a_wildcard_action_or_resource(
    translated: dict[str, Any],
) -> None:
    roles = resources_of(translated, "AWS::IAM::Role")
    assert len(roles) == 12  # eleven functions and the role MediaConvert assumes

    for name, role in roles.items():
        policies = role["Properties"].get("Policies", [])
        assert policies, f"{name} has no inline policy"
        for policy in policies:
            for statement in policy["PolicyDocument"]["Statement"]:
                assert statement["Effect"] == "Allow", name
                assert "NotAction" not in statement and "NotResource" not in statement, name
                for action in as_list(statement["Action"]):
                    assert "*" not in action, f"{name} allows {action}"
                for resource in as_list(statement["Resource"]):
                    assert resource != "*", f"{name} allows {statement['Action']} on every resource"
                    assert not (isinstance(resource, str) and resource.endswith(":*")), name


def test_GIVEN_every_function_role_WHEN_inspected_THEN_only_the_sam_basic_managed_policies_are_attached(
    translated: dict[str, Any],
) -> None:
    for name, role in resources_of(translated, "AWS::IAM::Role").items():
        assert set(role["Properties"].get("ManagedPolicyArns", [])) <= SAM_MANAGED_POLICIES, name


def test_GIVEN_the_api_role_WHEN_inspected_THEN_it_may_put_only_under_the_upload_and_caption_prefixes_it_signs(
    translated: dict[str, Any],
) -> None:
    [policy] = translated["Resources"]["UploadApiFunctionRole"]["Properties"]["Policies"]
    puts = [s for s in policy["PolicyDocument"]["Statement"] if "s3:PutObject" in as_list(s["Action"])]

    assert [s["Resource"] for s in puts] == [
        {"Fn::Sub": "${UploadsBucket.Arn}/" + UPLOAD_KEY_PREFIX + "*"},
        {"Fn::Sub": "${UploadsBucket.Arn}/" + CAPTIONS_PREFIX + "*"},
    ]


SECRET_ARN_PREFIX = "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:"


def _key_set_named_by(resource: Any, template: dict[str, Any]) -> str | None:
    """The purpose whose key set ``resource`` names: its ARN pattern (Secrets
    Manager appends ``-`` and six random characters to a secret's name)."""
    for purpose, logical_id in KEY_SETS.items():
        name = template["Resources"][logical_id]["Properties"]["Name"]["Fn::Sub"]
        if isinstance(resource, dict) and resource.get("Fn::Sub") in {
            f"{SECRET_ARN_PREFIX}{name}-*",
            f"{SECRET_ARN_PREFIX}{name}-??????",
        }:
            return purpose
    return None


def test_GIVEN_the_roles_WHEN_inspected_THEN_each_reads_only_the_key_sets_of_its_purposes(
    translated: dict[str, Any],
) -> None:
    readable: dict[str, set[str | None]] = {}
    for name, role in resources_of(translated, "AWS::IAM::Role").items():
        for policy in role["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                if any(action.startswith("secretsmanager:") for action in as_list(statement["Action"])):
                    assert as_list(statement["Action"]) == ["secretsmanager:GetSecretValue"], name
                    readable.setdefault(name, set()).update(
                        _key_set_named_by(resource, translated) for resource in as_list(statement["Resource"])
                    )

    # The API function also reads the outputs CDN's signing key (stored by `vidpipe cdn-key`), and only there.
    cdn_key = {
        "Fn::Sub": "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:"
        "${AWS::StackName}/cdn-signing-key-*"
    }
    cdn_readers = {
        name
        for name, role in resources_of(translated, "AWS::IAM::Role").items()
        for policy in role["Properties"].get("Policies", [])
        for statement in policy["PolicyDocument"]["Statement"]
        if cdn_key in as_list(statement["Resource"])
    }
    assert cdn_readers == {"UploadApiFunctionRole"}
    readable["UploadApiFunctionRole"].discard(None)

    assert readable == KEY_READERS


def test_GIVEN_the_key_sets_WHEN_translated_THEN_each_is_generated_as_a_current_kid_and_its_key(
    translated: dict[str, Any],
) -> None:
    secrets = resources_of(translated, "AWS::SecretsManager::Secret")

    assert set(secrets) == set(KEY_SETS.values())  # the old shared api-secret is gone
    for purpose, logical_id in KEY_SETS.items():
        properties = secrets[logical_id]["Properties"]
        assert properties["Name"] == {"Fn::Sub": "${AWS::StackName}/keys/" + purpose}
        generated = properties["GenerateSecretString"]
        assert "SecretString" not in properties
        # {"current": "k1", "k1": <48 random characters>}: what SigningKeys.from_secret_string reads.
        assert json.loads(generated["SecretStringTemplate"]) == {"current": generated["GenerateStringKey"]}
        assert generated["PasswordLength"] >= 32


def test_GIVEN_the_key_readers_WHEN_translated_THEN_their_prefix_names_the_key_sets(translated: dict[str, Any]) -> None:
    for role in KEY_READERS:
        function = translated["Resources"][role.removesuffix("Role")]["Properties"]
        assert function["Environment"]["Variables"]["SIGNING_KEYS_PREFIX"] == {"Fn::Sub": "${AWS::StackName}/keys/"}


def test_GIVEN_the_authorizer_WHEN_translated_THEN_its_cached_answers_live_at_most_the_parameters_seconds(
    template: dict[str, Any],
    translated: dict[str, Any],
) -> None:
    # A revoked token gets in for as long as API Gateway reuses the authorizer's
    # answer for its Authorization header: that is the revocation's bound.
    authorizer = translated["Resources"]["HttpApiAuthorizer"]
    parameter = template["Parameters"]["AuthorizerCacheSeconds"]

    assert authorizer["Properties"]["AuthorizerResultTtlInSeconds"] == {"Ref": "AuthorizerCacheSeconds"}
    assert parameter["Default"] <= 60
    assert parameter["MinValue"] == 0


def test_GIVEN_the_revocation_list_WHEN_translated_THEN_its_items_expire_and_only_the_token_checkers_read_it(
    translated: dict[str, Any],
) -> None:
    table = translated["Resources"]["RevokedTokensTable"]["Properties"]
    readers = {
        name
        for name, role in resources_of(translated, "AWS::IAM::Role").items()
        for policy in role["Properties"].get("Policies", [])
        for statement in policy["PolicyDocument"]["Statement"]
        if {"Fn::GetAtt": ["RevokedTokensTable", "Arn"]} in as_list(statement["Resource"])
    }

    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    # The API function checks a Bearer token itself on the on-demand image routes (no authorizer there).
    assert readers == {"AuthorizerFunctionRole", "UploadApiFunctionRole"}
    authorizer = translated["Resources"]["AuthorizerFunction"]["Properties"]
    assert authorizer["Environment"]["Variables"]["REVOKED_TOKENS_TABLE"] == {"Ref": "RevokedTokensTable"}


# ------------------------------------------------------------------ buckets and environment


def test_GIVEN_the_uploads_bucket_WHEN_inspected_THEN_it_sends_its_events_to_eventbridge(
    translated: dict[str, Any],
) -> None:
    bucket = translated["Resources"]["UploadsBucket"]["Properties"]

    assert bucket["NotificationConfiguration"]["EventBridgeConfiguration"] == {"EventBridgeEnabled": True}
    rule = translated["Resources"]["SourceUploadedRule"]["Properties"]
    assert rule["EventPattern"]["detail"]["bucket"]["name"] == [{"Ref": "UploadsBucket"}]
    assert rule["EventPattern"]["detail"]["object"]["key"] == [{"prefix": UPLOAD_KEY_PREFIX}]


def test_GIVEN_the_uploads_bucket_WHEN_inspected_THEN_cors_lets_a_browser_post_put_and_read_the_etag(
    translated: dict[str, Any],
) -> None:
    [rule] = translated["Resources"]["UploadsBucket"]["Properties"]["CorsConfiguration"]["CorsRules"]

    assert "ETag" in rule["ExposedHeaders"]
    assert {"POST", "PUT"} <= set(rule["AllowedMethods"])


def test_GIVEN_both_buckets_WHEN_inspected_THEN_public_access_is_blocked(translated: dict[str, Any]) -> None:
    for name in ("UploadsBucket", "OutputsBucket"):
        block = translated["Resources"][name]["Properties"]["PublicAccessBlockConfiguration"]
        assert all(
            block[key] is True
            for key in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")
        ), name


def test_GIVEN_every_function_WHEN_translated_THEN_it_gets_every_setting_it_needs(translated: dict[str, Any]) -> None:
    for name, function in resources_of(translated, "AWS::Lambda::Function").items():
        variables = function["Properties"]["Environment"]["Variables"]
        assert set(variables) >= SETTINGS_VARIABLES, name
        assert variables["POWERTOOLS_SERVICE_NAME"], name


# ------------------------------------------------------------------ packaging


def test_GIVEN_a_slice_WHEN_built_THEN_its_folder_holds_the_slice_and_vidpipe_without_the_cli(tmp_path: Path) -> None:
    folder = build_function("upload_api", tmp_path)

    assert folder == tmp_path / "functions" / "upload_api"
    assert sorted(path.name for path in folder.iterdir()) == ["upload_api", "vidpipe"]
    assert (folder / "upload_api" / "handlers" / "api.py").is_file()
    assert (folder / "upload_api" / "web" / "index.html").is_file()
    assert (folder / "vidpipe" / "runtime" / "stage_runner.py").is_file()
    assert not list(folder.rglob("vidpipe_cli")) and not (folder / "vidpipe" / "cli").exists()
    assert not list(folder.rglob("__pycache__")) and not list(folder.rglob("*.pyc"))


def test_GIVEN_an_old_build_WHEN_built_again_THEN_stale_files_are_gone(tmp_path: Path) -> None:
    stale = tmp_path / "functions" / "transcode" / "vidpipe" / "removed_module.py"
    stale.parent.mkdir(parents=True)
    stale.write_text("x = 1\n")

    build_function("transcode", tmp_path)

    assert not stale.exists()
    assert (tmp_path / "functions" / "transcode" / "transcode" / "handlers" / "transcode.py").is_file()


def test_GIVEN_every_function_of_the_template_WHEN_built_THEN_its_handler_imports_from_the_build_folder_alone(
    template: dict[str, Any], tmp_path: Path
) -> None:
    functions = resources_of(template, "AWS::Serverless::Function")
    for name, function in functions.items():
        slice_name = Path(function["Properties"]["CodeUri"]).name
        folder = build_function(slice_name, tmp_path)
        module, _, attribute = function["Properties"]["Handler"].rpartition(".")
        # Run from the build folder: its packages shadow the project's editable install.
        check = (
            f"import importlib, pathlib; m = importlib.import_module({module!r}); "
            f"assert callable(getattr(m, {attribute!r})); "
            f"assert pathlib.Path(m.__file__).is_relative_to(pathlib.Path.cwd()), m.__file__"
        )
        completed = subprocess.run(
            [sys.executable, "-c", check], cwd=folder, capture_output=True, text=True, timeout=120, check=False
        )
        assert completed.returncode == 0, f"{name}: {completed.stderr[-2000:]}"


def test_GIVEN_the_expiry_sweep_WHEN_translated_THEN_a_schedule_rule_invokes_it(translated: dict[str, Any]) -> None:
    functions = resources_of(translated, "AWS::Lambda::Function")
    [sweep] = [name for name, f in functions.items() if f["Properties"]["Handler"] == SWEEP_HANDLER]
    schedules = [
        rule["Properties"]
        for rule in resources_of(translated, "AWS::Events::Rule").values()
        if "ScheduleExpression" in rule["Properties"]
    ]
    assert len(schedules) == 1
    assert schedules[0]["ScheduleExpression"] == {"Ref": "SweepSchedule"}
    assert getatt_target(schedules[0]["Targets"][0]["Arn"]) == sweep


def test_GIVEN_the_uploads_bucket_WHEN_read_THEN_a_lifecycle_rule_aborts_incomplete_multipart_uploads(
    template: dict[str, Any],
) -> None:
    rules = template["Resources"]["UploadsBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    aborts = [rule for rule in rules if "AbortIncompleteMultipartUpload" in rule and rule["Status"] == "Enabled"]
    assert aborts and aborts[0]["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] >= 1


def test_GIVEN_the_outputs_cdn_WHEN_inspected_THEN_only_the_distribution_reads_the_private_bucket(
    template: dict[str, Any],
) -> None:
    # The bucket refuses public access of every kind...
    outputs = template["Resources"]["OutputsBucket"]["Properties"]
    assert all(outputs["PublicAccessBlockConfiguration"].values())
    # ...the distribution reaches it through an origin access control that signs every request...
    [access_control] = resources_of(template, "AWS::CloudFront::OriginAccessControl").values()
    oac_config = access_control["Properties"]["OriginAccessControlConfig"]
    assert (oac_config["OriginAccessControlOriginType"], oac_config["SigningBehavior"]) == ("s3", "always")
    [distribution] = resources_of(template, "AWS::CloudFront::Distribution").values()
    [origin] = distribution["Properties"]["DistributionConfig"]["Origins"]
    assert origin["DomainName"] == {"Fn::GetAtt": ["OutputsBucket", "RegionalDomainName"]}
    assert origin["OriginAccessControlId"] == {"Fn::GetAtt": ["OutputsOriginAccessControl", "Id"]}
    assert origin["S3OriginConfig"]["OriginAccessIdentity"] == ""
    behaviour = distribution["Properties"]["DistributionConfig"]["DefaultCacheBehavior"]
    assert behaviour["ViewerProtocolPolicy"] == "redirect-to-https"
    assert set(behaviour["AllowedMethods"]) == {"GET", "HEAD", "OPTIONS"}
    # ...and the bucket policy lets that one distribution read the outputs, nothing more.
    # (Its other statement, the TLS-only deny, is tests/infra/test_template_security.py's.)
    policy = resources_of(template, "AWS::S3::BucketPolicy")["OutputsBucketPolicy"]
    [statement] = [
        s["Fn::If"][1]
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if s["Fn::If"][0] == "DeliverThroughCloudFront"
    ]
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert statement["Action"] == "s3:GetObject"
    source_arn = json.dumps(statement["Condition"]["StringEquals"]["AWS:SourceArn"])
    assert "distribution/${OutputsDistribution}" in source_arn


def test_GIVEN_the_outputs_cdn_WHEN_inspected_THEN_every_behaviour_serves_only_urls_signed_with_the_stacks_key(
    template: dict[str, Any],
) -> None:
    # GIVEN the distribution's behaviours (the default one, and any other)
    config = template["Resources"]["OutputsDistribution"]["Properties"]["DistributionConfig"]
    behaviours = [config["DefaultCacheBehavior"], *config.get("CacheBehaviors", [])]
    # THEN each trusts the stack's key group when delivering through CloudFront
    for behaviour in behaviours:
        assert behaviour["TrustedKeyGroups"] == {
            "Fn::If": ["DeliverThroughCloudFront", [{"Ref": "OutputsKeyGroup"}], {"Ref": "AWS::NoValue"}]
        }
        assert "TrustedSigners" not in behaviour  # the legacy root-account key pairs
    # AND the key group holds the one public key, which is the public half `vidpipe cdn-key` stored
    key_group = template["Resources"]["OutputsKeyGroup"]
    public_key = template["Resources"]["OutputsSigningPublicKey"]
    assert (key_group["Type"], public_key["Type"]) == ("AWS::CloudFront::KeyGroup", "AWS::CloudFront::PublicKey")
    assert key_group["Condition"] == public_key["Condition"] == "DeliverThroughCloudFront"
    assert key_group["Properties"]["KeyGroupConfig"]["Items"] == [{"Ref": "OutputsSigningPublicKey"}]
    from vidpipe_cli.cdn_key import signing_key_secret_name

    secret = signing_key_secret_name("${AWS::StackName}")
    assert public_key["Properties"]["PublicKeyConfig"]["EncodedKey"] == {
        "Fn::Sub": "{{resolve:secretsmanager:" + secret + ":SecretString:public_key}}"
    }
    # AND the API function signs with that key: its id, its secret, and leave to read it
    api = template["Resources"]["UploadApiFunction"]["Properties"]
    variables = api["Environment"]["Variables"]
    assert variables["OUTPUTS_CDN_KEY_PAIR_ID"] == {
        "Fn::If": ["DeliverThroughCloudFront", {"Ref": "OutputsSigningPublicKey"}, ""]
    }
    assert variables["OUTPUTS_CDN_SIGNING_KEY_SECRET_ID"] == {
        "Fn::If": ["DeliverThroughCloudFront", {"Fn::Sub": secret}, ""]
    }
    readable = [
        json.dumps(statement["Resource"])
        for policy in api["Policies"]
        for statement in policy["Statement"]
        if "secretsmanager:GetSecretValue" in json.dumps(statement["Action"])
    ]
    assert any(f":secret:{secret}-*" in resources for resources in readable)


def test_GIVEN_the_api_function_WHEN_inspected_THEN_it_gets_the_cdn_url_only_when_delivering_through_cloudfront(
    template: dict[str, Any],
) -> None:
    variables = template["Resources"]["UploadApiFunction"]["Properties"]["Environment"]["Variables"]
    condition, when_cdn, otherwise = variables["OUTPUTS_CDN_URL"]["Fn::If"]
    assert condition == "DeliverThroughCloudFront"
    assert "OutputsDistribution.DomainName" in json.dumps(when_cdn)
    assert otherwise == ""
    assert template["Conditions"]["DeliverThroughCloudFront"] == {
        "Fn::Equals": [{"Ref": "OutputsDelivery"}, "cloudfront"]
    }


def test_GIVEN_the_webhook_rules_WHEN_inspected_THEN_registration_and_delivery_share_them_and_aws_allows_nothing_inside(
    template: dict[str, Any],
) -> None:
    # Delivery checks every URL again (DNS rebinding), so it must apply the same rules as registration.
    for name in ("UploadApiFunction", "WebhookFunction"):
        variables = template["Resources"][name]["Properties"]["Environment"]["Variables"]
        assert variables["WEBHOOK_ALLOW_HTTP"] == {"Ref": "WebhookAllowHttp"}, name
        assert variables["WEBHOOK_ALLOWED_HOSTS"] == {"Ref": "WebhookAllowedHosts"}, name
    # On AWS (the defaults): https only, and no loopback or private receiver allowed.
    assert template["Parameters"]["WebhookAllowHttp"]["Default"] == "false"
    assert template["Parameters"]["WebhookAllowedHosts"]["Default"] == ""


def test_GIVEN_every_function_WHEN_translated_THEN_x_ray_tracing_is_active_without_responses_in_traces(
    translated: dict[str, Any],
) -> None:
    for name, function in resources_of(translated, "AWS::Lambda::Function").items():
        assert function["Properties"]["TracingConfig"] == {"Mode": "Active"}, name
        variables = function["Properties"]["Environment"]["Variables"]
        assert variables["POWERTOOLS_TRACER_CAPTURE_RESPONSE"] == "false", name


def test_GIVEN_the_translated_template_WHEN_sent_to_the_local_stack_THEN_it_fits_the_template_url_limit() -> None:
    # The local stack deploys through TemplateURL (an object in the artifacts
    # bucket, as `sam deploy` does): CloudFormation reads at most 1,000,000
    # bytes there (51,200 inline, which the template has outgrown).
    import json

    from vidpipe_cli.template import load_template, with_artifact_locations

    names = ("upload_api", "job_lifecycle", "transcode", "thumbnails", "source_import", "dependencies", "ffmpeg")
    locations = {name: ("vidpipe-deploy-artifacts", f"{name}/{'0' * 64}.zip") for name in names}
    translated = translate_sam(with_artifact_locations(load_template(), locations), "us-east-1")

    assert len(json.dumps(translated, separators=(",", ":")).encode()) <= 1_000_000


def test_GIVEN_every_function_WHEN_its_environment_is_read_THEN_each_value_is_text_or_a_reference() -> None:
    # Lambda's environment holds strings: CloudFormation turns a bare YAML number
    # into one, but the local stack hands it to the worker as an int, which then
    # breaks every subprocess (FFmpeg) the function starts.
    template = load_template()
    variables = dict(template["Globals"]["Function"]["Environment"]["Variables"])
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            variables |= resource["Properties"].get("Environment", {}).get("Variables", {})

    bare = {name: value for name, value in variables.items() if not isinstance(value, str | dict)}

    assert bare == {}


# ------------------------------------------------------------------ one accepted upload, and one that fits


def test_GIVEN_the_uploads_bucket_WHEN_read_THEN_it_keeps_versions_and_expires_the_replaced_ones(
    template: dict[str, Any],
) -> None:
    bucket = template["Resources"]["UploadsBucket"]["Properties"]
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    expiring = [
        rule
        for rule in bucket["LifecycleConfiguration"]["Rules"]
        if "NoncurrentVersionExpiration" in rule and rule["Status"] == "Enabled"
    ]
    assert expiring and expiring[0]["Prefix"] == UPLOAD_KEY_PREFIX


def test_GIVEN_the_stages_that_read_the_upload_WHEN_inspected_THEN_they_read_versions_and_only_read_the_job(
    translated: dict[str, Any],
) -> None:
    for role in ("TranscodeFunctionRole", "ThumbnailsFunctionRole", "ChunkEncodeFunctionRole"):
        statements = [
            s for p in translated["Resources"][role]["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"]
        ]
        actions = {action for s in statements for action in as_list(s["Action"])}
        on_jobs = {
            action
            for s in statements
            if {"Fn::GetAtt": ["JobsTable", "Arn"]} in as_list(s["Resource"]) and "Condition" not in s
            for action in as_list(s["Action"])
        }
        # Besides: the owner's usage counters, and those only (vidpipe/adapters/usage_store.py).
        on_usage = [
            s for s in statements if {"Fn::GetAtt": ["JobsTable", "Arn"]} in as_list(s["Resource"]) and "Condition" in s
        ]
        for statement in on_usage:
            assert statement["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["usage#*"]}}, role
        assert "s3:GetObjectVersion" in actions, role
        # They read the job's decision (the chunk function: whether it was deleted);
        # the status function is its one writer.
        assert on_jobs == {"dynamodb:GetItem"}, role


def test_GIVEN_the_largest_upload_allowed_WHEN_compared_with_the_stages_scratch_space_THEN_it_fits_with_the_outputs(
    template: dict[str, Any],
) -> None:
    # The transcode and thumbnails stages download the upload into /tmp: what
    # POST /uploads accepts must fit there, beside the outputs.
    largest = template["Parameters"]["MaxUploadBytes"]["MaxValue"]
    assert template["Parameters"]["MaxUploadBytes"]["Default"] <= largest
    for name in ("TranscodeFunction", "ThumbnailsFunction"):
        scratch_mib = template["Resources"][name]["Properties"]["EphemeralStorage"]["Size"]
        assert largest + OUTPUT_HEADROOM_BYTES <= scratch_mib * 1024 * 1024, name
