"""The local stack lowers the CPU priority of every function but those that
answer people (vidpipe_cli/ministack_background_priority.py). Its list is of the
template's logical ids: it must name exactly the functions a person waits for."""

from __future__ import annotations

from typing import Any

from vidpipe_cli.local_warm_up import EVERY_UPLOAD_RUNS
from vidpipe_cli.ministack_background_priority import ANSWERING_PEOPLE, answers_people


def functions_people_wait_for(template: dict[str, Any]) -> set[str]:
    """What API Gateway invokes, and the functions the API function calls while a person waits."""
    resources = template["Resources"]
    invoked_by_api_gateway = {
        resource["Properties"]["FunctionName"]["Ref"]
        for resource in resources.values()
        if resource["Type"] == "AWS::Lambda::Permission"
        and resource["Properties"]["Principal"] == "apigateway.amazonaws.com"
    }
    called_by_the_api = set()
    for api_function in invoked_by_api_gateway:
        variables = resources[api_function]["Properties"].get("Environment", {}).get("Variables", {})
        called_by_the_api |= {
            value["Ref"]
            for value in variables.values()
            if isinstance(value, dict)
            and resources.get(value.get("Ref", ""), {}).get("Type") == "AWS::Serverless::Function"
        }
    return invoked_by_api_gateway | called_by_the_api


def test_GIVEN_the_template_WHEN_read_THEN_the_local_stack_keeps_exactly_the_api_side_functions_at_full_priority(
    template: dict[str, Any],
) -> None:
    assert set(ANSWERING_PEOPLE) == functions_people_wait_for(template)


def test_GIVEN_ministack_function_names_WHEN_classified_THEN_only_the_api_side_answers_people() -> None:
    assert answers_people("vidpipe-UploadApiFunction-3F2A9C")
    assert answers_people("vidpipe-load-ab12-AuthorizerFunction-77E1")
    assert not answers_people("vidpipe-TranscodeFunction-3F2A9C")
    # A logical id that merely contains an answering one is not it.
    assert not answers_people("vidpipe-UploadApiFunctionDeadLetters-1")


def test_GIVEN_the_template_WHEN_read_THEN_the_functions_warmed_ahead_are_sqs_driven_functions_of_it(
    template: dict[str, Any],
) -> None:
    resources = template["Resources"]
    for logical_id in EVERY_UPLOAD_RUNS:
        events = resources[logical_id]["Properties"].get("Events", {})
        assert resources[logical_id]["Type"] == "AWS::Serverless::Function"
        assert [event["Type"] for event in events.values()] == ["SQS"], logical_id
