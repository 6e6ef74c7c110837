"""`vidpipe` — run the local stack and use the pipeline from a terminal.

    vidpipe up [--json]                  start ministack and deploy the template
    vidpipe down                         stop it (its data is kept)
    vidpipe submit FILE... [--wait] [--json] [--parallel N]
    vidpipe status JOB_ID [--json]
    vidpipe list [--limit N] [--json]    your jobs, newest first
    vidpipe delete JOB_ID... [--json]    delete jobs: upload, outputs and record
    vidpipe cancel JOB_ID [--json]       cancel a job whose upload has not arrived
    vidpipe --version
    vidpipe redrive [--queue NAME] [--dry-run]  dead-lettered messages back to their queues
    vidpipe trace JOB_ID [--json]        what happened to a job, and where the time went
    vidpipe logs JOB_ID                  the job's log lines from every function, in time order
    vidpipe cdn-key --stack-name NAME    on AWS, once before the first deploy: the outputs CDN's signing key
    vidpipe token USER [--ttl 30d] [--stack NAME]   mint an API token (local stack, or on AWS)
    vidpipe token --revoke=TOKEN_ID [--stack NAME]  refuse one token from now on

The API URL comes from the running local stack, or from ``--api-url`` /
``VIDPIPE_API_URL`` (e.g. a stack deployed on AWS)."""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

from vidpipe_cli.api_client import ApiError, UploadJournal, VidpipeClient
from vidpipe_cli.cdn_key import CdnKeyError, create_cdn_signing_key
from vidpipe_cli.job_commands import cancel_upload, delete_jobs, list_jobs
from vidpipe_cli.job_logs import fetch_job_lines, format_line
from vidpipe_cli.local_stack import current_endpoints, start, stop
from vidpipe_cli.local_stack_settings import LOCAL_USER, Endpoints, LocalStackError, LocalStackSettings, aws_client
from vidpipe_cli.packaging import PackagingError
from vidpipe_cli.progress import Progress, job_summary
from vidpipe_cli.redrive import QUEUES, dead_letter_counts, redrive
from vidpipe_cli.tokens import TokenCommandError, mint_token, parse_ttl, revoke_token, stack_outputs
from vidpipe_cli.trace import format_trace


def main(argv: list[str] | None = None) -> int:
    # Behave as a Unix tool when piped into `head`: stop quietly.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    # PackagingError: `vidpipe up` could not build the functions or layers (the
    # pinned FFmpeg not downloadable and not cached, say): a reason, not a traceback.
    except (LocalStackError, PackagingError, ApiError, CdnKeyError, TimeoutError, TokenCommandError) as exc:
        if getattr(args, "json", False):
            # Whoever asked for JSON parses stdout: the error is a JSON document there too.
            print(json.dumps({"error": _error_fields(exc)}))
        else:
            print(f"vidpipe: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _error_fields(exc: Exception) -> dict[str, Any]:
    if isinstance(exc, ApiError):
        return {"code": exc.code, "message": exc.message, "http_status": exc.status}
    code = "TIMEOUT" if isinstance(exc, TimeoutError) else type(exc).__name__
    return {"code": code, "message": str(exc)}


def _version() -> str:
    try:
        return importlib.metadata.version("vidpipe")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


def _api_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("--api-url", default=os.environ.get("VIDPIPE_API_URL"))
    command.add_argument("--api-token", default=os.environ.get("VIDPIPE_API_TOKEN"))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vidpipe", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"vidpipe {_version()}")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    up = commands.add_parser("up", help="start the local stack (deploying the template if needed)")
    up.add_argument("--json", action="store_true", help="print the endpoints as JSON")
    up.set_defaults(run=command_up)

    down = commands.add_parser("down", help="stop the local stack, keeping its data")
    down.set_defaults(run=command_down)

    submit = commands.add_parser(
        "submit", help="upload files through the HTTP API as a browser does (an https:// URL is imported instead)"
    )
    submit.add_argument("files", nargs="+", metavar="FILE_OR_URL")
    submit.add_argument("--wait", action="store_true", help="follow each job until it is READY or FAILED")
    submit.add_argument("--timeout", type=float, default=900, help="seconds to wait for each job")
    submit.add_argument("--json", action="store_true", help="print the jobs as JSON")
    submit.add_argument("--concurrency", type=int, default=4, help="parts uploaded at once (large files)")
    submit.add_argument("--parallel", type=int, default=3, help="files uploaded and followed at once")
    _api_arguments(submit)
    submit.set_defaults(run=command_submit)

    redrive_command = commands.add_parser("redrive", help="send dead-lettered messages back to their queues")
    redrive_command.add_argument("--queue", choices=[*QUEUES, "all"], default="all")
    redrive_command.add_argument("--dry-run", action="store_true", help="only count what waits")
    redrive_command.set_defaults(run=command_redrive)

    status = commands.add_parser("status", help="show one job")
    status.add_argument("job_id")
    status.add_argument("--json", action="store_true")
    _api_arguments(status)
    status.set_defaults(run=command_status)

    list_command = commands.add_parser("list", help="your jobs, newest first")
    list_command.add_argument("--limit", type=int, default=20, help="how many jobs (newest first)")
    list_command.add_argument("--json", action="store_true")
    _api_arguments(list_command)
    list_command.set_defaults(run=lambda args: list_jobs(_client(args), limit=max(1, args.limit), as_json=args.json))

    delete = commands.add_parser("delete", help="delete jobs: their upload, outputs and record")
    delete.add_argument("job_ids", nargs="+", metavar="JOB_ID")
    delete.add_argument("--json", action="store_true")
    _api_arguments(delete)
    delete.set_defaults(run=lambda args: delete_jobs(_client(args), args.job_ids, as_json=args.json))

    cancel = commands.add_parser("cancel", help="cancel a job whose upload has not arrived yet")
    cancel.add_argument("job_id")
    cancel.add_argument("--json", action="store_true")
    _api_arguments(cancel)
    cancel.set_defaults(run=lambda args: cancel_upload(_client(args), args.job_id, as_json=args.json))

    trace = commands.add_parser("trace", help="a job's timeline, and where its time went")
    trace.add_argument("job_id")
    trace.add_argument("--json", action="store_true", help="print the timeline as the API returns it")
    _api_arguments(trace)
    trace.set_defaults(run=command_trace)

    logs = commands.add_parser("logs", help="a job's log lines from every function of the local stack")
    logs.add_argument("job_id")
    logs.set_defaults(run=command_logs)

    token = commands.add_parser("token", help="mint (or revoke) an API token of the local stack or an AWS stack")
    token.add_argument("user", nargs="?", help="whose token to mint")
    token.add_argument("--ttl", default="30d", help="how long it stays valid: seconds, or 90m, 12h, 30d (at most 366d)")
    token.add_argument("--revoke", metavar="TOKEN_ID", help="revoke this token (its id, or the token itself)")
    token.add_argument(
        "--stack",
        default=os.environ.get("VIDPIPE_STACK"),
        help="a stack deployed on AWS (read with your AWS credentials) instead of the local one",
    )
    token.add_argument("--region", default=os.environ.get("AWS_REGION"), help="the AWS stack's region")
    token.set_defaults(run=command_token)

    cdn_key = commands.add_parser(
        "cdn-key", help="store the key pair CloudFront checks output URLs with (AWS, once, before the first deploy)"
    )
    cdn_key.add_argument("--stack-name", required=True, help="the stack you will deploy (sam deploy --stack-name)")
    cdn_key.add_argument("--region", default=None, help="its region (default: your AWS configuration's)")
    cdn_key.set_defaults(run=command_cdn_key)
    return parser


def command_cdn_key(args: argparse.Namespace) -> int:
    import boto3

    name = create_cdn_signing_key(boto3.client("secretsmanager", region_name=args.region), args.stack_name)
    print(f"stored the outputs CDN's signing key in secret {name}; now deploy the stack {args.stack_name}")
    return 0


def command_up(args: argparse.Namespace) -> int:
    started = time.monotonic()
    log = (lambda message: print(message, file=sys.stderr)) if args.json else print
    endpoints = start(LocalStackSettings.from_environment(), log=log)
    if args.json:
        print(json.dumps({key: value for key, value in asdict(endpoints).items() if key != "outputs"}))
    else:
        print(f"vidpipe is up ({time.monotonic() - started:.1f} s)")
        print(f"  web page:     {endpoints.web_url}")
        print(f"  API:          {endpoints.api_url}")
        print(f"  API token:    {endpoints.api_token}  (user {LOCAL_USER}; send as Authorization: Bearer ...)")
        print(f"  AWS endpoint: {endpoints.aws_endpoint_url}  (access key test, secret test)")
    return 0


def command_down(args: argparse.Namespace) -> int:
    stopped = stop(LocalStackSettings.from_environment())
    print("vidpipe stopped; its data is kept" if stopped else "vidpipe was not running")
    return 0


def _running_endpoints(settings: LocalStackSettings, *, hint: str = "") -> Endpoints:
    """The running local stack's endpoints; LocalStackError when it is not running."""
    endpoints = current_endpoints(settings)
    if endpoints is None:
        raise LocalStackError(f"the local stack is not running: start it with `vidpipe up`{hint}")
    return endpoints


def _client(args: argparse.Namespace) -> VidpipeClient:
    settings = LocalStackSettings.from_environment()
    # Interrupted multipart uploads are remembered here, so `submit` resumes them.
    journal = UploadJournal(settings.data_dir / "uploads-in-progress")
    concurrency = getattr(args, "concurrency", 4)
    if args.api_url:
        return VidpipeClient(args.api_url, journal=journal, concurrency=concurrency, token=args.api_token or "")
    endpoints = _running_endpoints(settings, hint=" (or give --api-url)")
    return VidpipeClient(
        endpoints.api_url, journal=journal, concurrency=concurrency, token=args.api_token or endpoints.api_token
    )


def command_token(args: argparse.Namespace) -> int:
    if bool(args.user) == bool(args.revoke):
        raise TokenCommandError("give a USER to mint a token for, or --revoke TOKEN_ID")
    ttl_s = parse_ttl(args.ttl)
    if args.stack:
        import boto3  # the caller's own credentials and region, as the AWS CLI would use them

        session = boto3.Session(region_name=args.region)
        outputs = stack_outputs(session.client("cloudformation"), args.stack)
        secrets, dynamodb = session.client("secretsmanager"), session.client("dynamodb")
    else:
        endpoints = _running_endpoints(LocalStackSettings.from_environment(), hint=" (or give --stack)")
        outputs = endpoints.outputs
        secrets = aws_client("secretsmanager", endpoints.aws_endpoint_url)
        dynamodb = aws_client("dynamodb", endpoints.aws_endpoint_url)
    if args.revoke:
        token_id, until = revoke_token(dynamodb, outputs, args.revoke)
        print(
            f"revoked token {token_id} (refused within the authorizer's cache time; "
            f"kept on the list until {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(until))})"
        )
        return 0
    issued = mint_token(secrets, outputs, args.user, ttl_s=ttl_s)
    # stdout carries the token alone (scripts capture it); the rest goes to stderr.
    print(
        f"token {issued.claims.token_id} of {issued.claims.user}, valid until "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(issued.claims.expires_at))}; "
        # "=": a url-safe id may start with "-", which argparse would read as an option.
        f"revoke it with: vidpipe token --revoke={issued.claims.token_id}",
        file=sys.stderr,
    )
    print(issued.token)
    return 0


def command_submit(args: argparse.Namespace) -> int:
    client = _client(args)
    missing = [item for item in args.files if not _is_url(item) and not Path(item).is_file()]
    if missing:
        raise ApiError(0, "FILE_NOT_FOUND", f"no such file: {', '.join(missing)}")
    # With --json, stdout carries only the JSON document; messages go to stderr.
    # The rewritten status line only for one file: several would overwrite each other.
    progress = Progress(
        enabled=sys.stderr.isatty() and len(args.files) == 1, messages=sys.stderr if args.json else sys.stdout
    )
    # Several files at once, each in its own thread (and requests session);
    # the answers come back in the order the files were given.
    with ThreadPoolExecutor(max_workers=max(1, min(args.parallel, len(args.files)))) as pool:
        jobs = list(pool.map(lambda item: _submit_one(client, item, args, progress), args.files))
    if args.json:
        print(json.dumps(jobs, indent=2))
    elif not args.wait:
        for item, job in zip(args.files, jobs, strict=True):
            print(f"{_display_name(item)}: {job['job_id']} {job['status']}")
    failed = [job for job in jobs if job["status"] in ("FAILED", "EXPIRED")]
    return 1 if args.wait and failed else 0


def _is_url(item: str) -> bool:
    # Only https: the service refuses anything else with the reason, so an
    # http:// argument is sent too and the user reads the API's answer.
    return item.startswith(("https://", "http://"))


def _display_name(item: str) -> str:
    return item if _is_url(item) else Path(item).name


def _submit_one(client: VidpipeClient, item: str, args: argparse.Namespace, progress: Progress) -> dict[str, Any]:
    """Upload one file (or have the service import one URL) and, with --wait,
    follow its job; the job as last seen."""
    name = _display_name(item)
    if _is_url(item):
        job_id = client.import_source(item)
        progress.done(f"{name}: import asked, job {job_id}")
    else:
        path = Path(item)
        job_id = client.submit(path, on_progress=lambda sent, total: progress.upload(name, sent, total))
        progress.done(f"{name}: uploaded, job {job_id}")
    if not args.wait:
        return client.get_job(job_id)
    job = client.wait(job_id, timeout_s=args.timeout, on_update=lambda j: progress.job(name, j))
    progress.done(f"{name}: {job_summary(job)}")
    return job


def command_status(args: argparse.Namespace) -> int:
    job = _client(args).get_job(args.job_id)
    if args.json:
        print(json.dumps(job, indent=2))
        return 0
    print(f"{job['job_id']}  {job['status']}  {job['source'].get('filename', '')}")
    for stage, state in job["stages"].items():
        print(f"  {stage:<11} {state['status']:<10} {state['progress'] * 100:5.1f} %")
    if job.get("error"):
        print(f"  error: {job['error']['code']}: {job['error']['message']}")
    for key, value in (job.get("outputs") or {}).items():
        if isinstance(value, str):
            print(f"  {key}: {value}")
    return 0


def command_trace(args: argparse.Namespace) -> int:
    answer = _client(args).get_events(args.job_id)
    print(json.dumps(answer, indent=2) if args.json else format_trace(answer))
    return 0


def command_logs(args: argparse.Namespace) -> int:
    settings = LocalStackSettings.from_environment()
    endpoints = _running_endpoints(settings)
    logs = aws_client("logs", endpoints.aws_endpoint_url)
    lines = fetch_job_lines(logs, args.job_id, group_prefix=f"/aws/lambda/{endpoints.stack_name}-")
    if not lines:
        print(f"no log lines mention job {args.job_id}", file=sys.stderr)
        return 1
    for line in lines:
        print(format_line(line))
    return 0


def command_redrive(args: argparse.Namespace) -> int:
    settings = LocalStackSettings.from_environment()
    endpoints = _running_endpoints(settings)
    sqs = aws_client("sqs", endpoints.aws_endpoint_url)
    print("waiting in dead-letter queues:", dead_letter_counts(sqs, endpoints.outputs))
    if not args.dry_run:
        queues = list(QUEUES) if args.queue == "all" else [args.queue]
        for result in redrive(sqs, endpoints.outputs, queues):
            print(f"{result.queue}: {result.moved} message(s) sent back")
    return 0


if __name__ == "__main__":
    sys.exit(main())
