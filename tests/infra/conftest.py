"""The template as declared and as SAM translates it, shared by the infra tests."""

from __future__ import annotations

from typing import Any

import pytest

from vidpipe_cli.template import load_template, translate_sam, with_artifact_locations

ARTEFACTS = ("upload_api", "job_lifecycle", "transcode", "thumbnails", "source_import", "dependencies", "ffmpeg")


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="module")
def translated(template: dict[str, Any]) -> dict[str, Any]:
    locations = {name: ("vidpipe-artefacts", f"{name}-0123abcd.zip") for name in ARTEFACTS}
    return translate_sam(with_artifact_locations(template, locations), "eu-west-1")
