# Every command a person or CI runs. `make help` lists them; workflows call these targets.
# The first target that needs Python creates .venv and installs the locked dependency set.

SHELL := /bin/bash
# A value given on the command line (make gate BASELINE=...) is taken as literal text, and
# so is one from the environment that the Makefile reads with $(...): make never expands a
# `$(shell ...)` inside it. Recipes hand every such value to the shell from the environment,
# quoted ("$$VAR"), so the shell never parses one either. `override` would stop make from
# exporting a command-line value (make test PYTEST_ADDOPTS=-x), so it is exported again.
literal = $(eval override $1 := $$(value $1))$(eval export $1)
$(foreach v,$(.VARIABLES),$(if $(findstring command line,$(origin $v)),$(call literal,$v)))
$(foreach v,PYTHON TORCH_INDEX CI REQUIRE_SERVER DEPLOYMENT IMAGE_REPOSITORY,\
  $(if $(findstring environment,$(origin $v)),$(call literal,$v)))
# Python 3.11 (the version requirements.lock was resolved for): python3.11, else python3.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3 2>/dev/null)
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed
# Where torch comes from. Default: PyTorch's CPU wheels (what CI and laptops need; PyPI's
# Linux wheel is the multi-GB CUDA build). On a CUDA machine:
#   rm -rf .venv && make install TORCH_INDEX=https://download.pytorch.org/whl/cu128
# (installed without hash checks: see $(STAMP) below). `make lock` resolves against the
# same index.
CPU_TORCH_INDEX := https://download.pytorch.org/whl/cpu
TORCH_INDEX ?= $(CPU_TORCH_INDEX)
export PYTHON TORCH_INDEX
# dvc runs stage commands through the shell: put the venv first so `python` is ours.
export PATH := $(BIN):$(PATH)
export DVC_NO_ANALYTICS := 1

.DEFAULT_GOAL := help
.PHONY: help install repro dag gate report init test test-fast lint format params sample-data ui \
  test-e2e pull push summary pr-meta comment notice profile image container-smoke \
  push-image bento serve smoke bench-train bench-prep exp-table bench-eval bench-serve bench-attacks noise lock hooks clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-15s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# Every file pip installs must match a hash in requirements.lock (--require-hashes), so a
# swapped or compromised package on an index cannot get in. `lock_entry NAME`: that
# package's lines of the lock. First pip and setuptools (the lock's: what has no wheel is
# built with them, --no-build-isolation, never with unchecked downloads); then torch alone,
# the one package TORCH_INDEX may serve (--no-deps: the lock brings its dependencies); then
# the rest. The lock holds the CPU build's hashes; a CUDA index (TORCH_INDEX=.../cu128, the
# GPU runner's) is the one exception: torch and its CUDA libraries come from that index,
# named explicitly, without hash checks (the CPU lock cannot hold their hashes).
lock_entry = <(sed -n '/^$(1)==/,/[^\\]$$/p' requirements.lock)
$(STAMP): requirements.lock pyproject.toml
	@"$$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null || { \
	  echo "error: need Python 3.11 (found '$$PYTHON'); install it or run make PYTHON=/path/to/python3.11" >&2; exit 1; }
	"$$PYTHON" -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes \
	  -r $(call lock_entry,pip) -r $(call lock_entry,setuptools)
	if [ -z "$$TORCH_INDEX" ] || [ "$$TORCH_INDEX" = "$(CPU_TORCH_INDEX)" ]; then \
	  $(BIN)/python -m pip install --quiet --retries 0 --require-hashes --no-deps \
	    $${TORCH_INDEX:+--extra-index-url "$$TORCH_INDEX"} -r $(call lock_entry,torch); \
	else echo "TORCH_INDEX=$$TORCH_INDEX: torch and its CUDA libraries from that index, not hash-checked"; \
	  $(BIN)/python -m pip install --quiet --retries 0 --extra-index-url "$$TORCH_INDEX" \
	    "$$(sed -n 's/^\(torch==[0-9.]*\).*/\1/p' requirements.lock)"; fi
	$(BIN)/python -m pip install --quiet --require-hashes --no-build-isolation -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip check
	@touch $@

install: $(STAMP) ## Create .venv with the locked dependencies (other targets do this first)

# Every target that runs DVC checks first what DVC reads and could choke on (llmops.preflight).
.PHONY: preflight
preflight: $(STAMP) ## Check params.yaml, its prompt template and data file names DVC can hash (DVC targets run it)
	python -m llmops.preflight

repro: $(STAMP) preflight ## Run the pipeline on params.yaml (dvc repro); does nothing when up to date
	dvc repro

dag: $(STAMP) preflight ## Show the pipeline's stages (dvc dag)
	dvc dag

# The baseline the gates and the report compare against (a git ref). Recipes read it (and
# init's arguments) from the environment as "$$VAR", so no value is ever parsed as shell;
# `--baseline=` keeps a value starting with - a value, which the gate then refuses.
BASELINE ?= main
export BASELINE

gate: $(STAMP) ## Check the quality gates (params.yaml gate) against BASELINE=main; fails if any fails
	python -m llmops.gate --params params.yaml --metrics metrics/eval.json \
	  --examples metrics/eval_examples.csv --noise benchmarks/results/noise.json \
	  --baseline="$$BASELINE"

report: $(STAMP) ## Write report.md: this change vs BASELINE=main (what CI posts on the pull request)
	python -m llmops.report --params params.yaml --baseline="$$BASELINE" --out report.md \
	  --eval metrics/eval.json --examples metrics/eval_examples.csv \
	  --train metrics/train.json --prep metrics/prep.json \
	  --base metrics/base.json --predictions data/eval/predictions.jsonl \
	  --train-curve reports/train/train_loss.csv --adapter models/adapter/training.json \
	  --prompts prompts --noise benchmarks/results/noise.json

# make init DATA=path/to/train.csv [TEST=path/to/test.csv] [INPUT=text] [LABELS=label] [TEXTS=]
#   [LABEL_CASE=fold] (label values that differ only in letter case are one label)
# `--data="$$DATA"` keeps a value starting with - (a file named -lead.csv) a value.
DATA ?=
TEST ?=
INPUT ?=
LABELS ?=
TEXTS ?=
LABEL_CASE ?= exact
export DATA TEST INPUT LABELS TEXTS LABEL_CASE

init: $(STAMP) ## Turn this clone into your project: make init DATA=train.csv [TEST=test.csv] [INPUT=text LABELS=label]
	python -m llmops.init --data="$$DATA" --test="$$TEST" --input="$$INPUT" \
	  --labels="$$LABELS" --texts="$$TEXTS" --label-case="$$LABEL_CASE"

test: $(STAMP) ## Run all tests, end-to-end included (what CI runs)
	python -m pytest

test-fast: $(STAMP) ## Run the unit tests only (no end-to-end)
	python -m pytest -m "not e2e"

test-e2e: $(STAMP) ## Run the end-to-end tests only (real dvc, MLflow, bentoml serve)
	python -m pytest -m e2e

lint: $(STAMP) ## Lint: ruff, formatting, YAML, large files, workflows (actionlint, zizmor) (pre-commit hooks)
	pre-commit run --all-files --show-diff-on-failure

format: $(STAMP) ## Fix formatting and autofixable lint
	ruff format $(wildcard src tests examples benchmarks)
	ruff check --fix $(wildcard src tests examples benchmarks)

params: $(STAMP) ## Validate params.yaml; list the task's metrics and check the gates' names
	python -m llmops.params params.yaml
	python -m llmops.metrics params.yaml
	python -m llmops.prompts --check --params params.yaml

sample-data: $(STAMP) ## Regenerate the worked example's raw data in data/raw/ (deterministic)
	@test -d examples/ticket_triage || { echo "the worked example was removed (make init)" >&2; exit 1; }
	python -m examples.ticket_triage.generate --out data/raw

bento: $(STAMP) ## Package the evaluated model (model store, with lineage) and build the Bento (needs make repro)
	python -m llmops.bento --params params.yaml --base models/base --adapter models/adapter \
	  --eval metrics/eval.json --lock dvc.lock --bentofile bentofile.yaml

# --- Release: ship what was reviewed (llmops.reviewed, llmops.registry, llmops.release) ----
.PHONY: reviewed register record record-deployment promote rollback-model release-plan \
  push-bento deploy-cloud rollback-cloud smoke-deployed

reviewed: $(STAMP) preflight ## Pull the outputs dvc.lock records from DVC_REMOTE or refuse; never retrains (a rehearsal when nothing is configured to release to)
	python -m llmops.reviewed --remote="$$DVC_REMOTE"

# ALIAS: the serving alias promote moves and rollback-model moves back (register names the
# challenger). BENTO_MODEL: the BentoML model tag, recorded on the version when given.
# REQUIRE_SERVER (default: $CI, set by GitHub Actions) makes the registry targets skip
# unless MLFLOW_TRACKING_URI is an http(s) server; locally they use the sqlite registry in
# mlflow.db. RECORD_BENTO, RECORD_IMAGE, RECORD_IMAGE_DIGEST: what serves the challenger.
# PROMOTE_VERSION: the registered version promote moves the alias to (the one the release
# built; empty: the challenger).
ALIAS ?= champion
BENTO_MODEL ?=
PROMOTE_VERSION ?=
REQUIRE_SERVER ?= $(CI)
SERVER_FLAG = $(if $(filter 1 true yes,$(REQUIRE_SERVER)),--require-server)
export ALIAS BENTO_MODEL PROMOTE_VERSION

register: $(STAMP) ## Register the trained adapter in MLflow's model registry as the challenger (no serving alias moves)
	python -m llmops.registry register --params params.yaml --adapter models/adapter \
	  --eval metrics/eval.json --bento-model "$$BENTO_MODEL" $(SERVER_FLAG)

record: $(STAMP) ## Tag the challenger with what serves it: RECORD_BENTO, RECORD_IMAGE, RECORD_IMAGE_DIGEST
	python -m llmops.registry record --params params.yaml $(SERVER_FLAG) \
	  bento="$$RECORD_BENTO" image="$$RECORD_IMAGE" image_digest="$$RECORD_IMAGE_DIGEST"

record-deployment: $(STAMP) ## Tag the challenger with its deployment and the Bento it replaced (DEPLOY_RECORD)
	python -m llmops.registry record --params params.yaml --state "$$DEPLOY_RECORD" $(SERVER_FLAG)

promote: $(STAMP) ## Move the champion alias to PROMOTE_VERSION (default: the challenger), a release's last step
	python -m llmops.registry promote --params params.yaml --alias "$$ALIAS" \
	  --version="$$PROMOTE_VERSION" $(SERVER_FLAG)

rollback-model: $(STAMP) ## Move the champion alias back to the previous version
	python -m llmops.registry rollback --params params.yaml --alias "$$ALIAS" $(SERVER_FLAG)

# The BentoCloud deployment deploy-cloud updates (an empty value, e.g. an unset CI variable,
# means the default); the Bento it replaces is recorded in DEPLOY_RECORD. BENTOCLOUD_SECRET:
# the BentoCloud secret deploy-cloud attaches (default llmops-api-key), which must set
# LLMOPS_API_KEY (create it once: bentoml secret create llmops-api-key
# LLMOPS_API_KEY=@path/to/keyfile). DEPLOY_POLL_S: seconds between looks at a rollout.
DEPLOYMENT ?= llmops
override DEPLOYMENT := $(or $(DEPLOYMENT),llmops)
BENTOCLOUD_SECRET ?=
DEPLOY_RECORD := .release/previous.json
export DEPLOYMENT BENTOCLOUD_SECRET DEPLOY_RECORD

release-plan: $(STAMP) ## Say which release features the environment configures (also to GITHUB_OUTPUT)
	python -m llmops.release plan

push-bento: $(STAMP) ## Push BENTO to BentoCloud, where the deploy jobs take it (BENTOML_CLOUD_API_KEY)
	BENTO_CLOUD_API_KEY="$${BENTO_CLOUD_API_KEY:-$$BENTOML_CLOUD_API_KEY}" \
	BENTO_CLOUD_API_ENDPOINT="$${BENTO_CLOUD_API_ENDPOINT:-$$BENTOML_CLOUD_API_ENDPOINT}" \
	  bentoml push "$$BENTO"

deploy-cloud: $(STAMP) ## Deploy BENTO to the BentoCloud deployment DEPLOYMENT with the API-key secret, wait for the rollout; put the previous Bento back if it fails
	python -m llmops.release deploy --bento "$$BENTO" --name "$$DEPLOYMENT" --target bentocloud \
	  --secret="$${BENTOCLOUD_SECRET:-llmops-api-key}" --state "$$DEPLOY_RECORD" --params params.yaml \
	  --interval "$${DEPLOY_POLL_S:-10}"

rollback-cloud: $(STAMP) ## Put the Bento deploy-cloud replaced back on the BentoCloud deployment and wait for it
	python -m llmops.release rollback --name "$$DEPLOYMENT" --state "$$DEPLOY_RECORD" \
	  --interval "$${DEPLOY_POLL_S:-10}"

# The deployed endpoint and the model version it must serve (make bento's model version).
DEPLOY_URL ?=
EXPECT_VERSION ?=
export DEPLOY_URL EXPECT_VERSION

smoke-deployed: $(STAMP) ## Smoke-test DEPLOY_URL, which must serve EXPECT_VERSION (the deploy jobs)
	@test -n "$$DEPLOY_URL" || { echo "DEPLOY_URL is not set: the deployed endpoint to smoke-test" >&2; exit 1; }
	python -m llmops.smoke "$$DEPLOY_URL" --params params.yaml --data data/prepared/test.jsonl \
	  --expect-version="$$EXPECT_VERSION"

# The Bento make serve runs (bentofile.yaml `name`) and where it listens; the API key is
# read from the variable params.yaml serve.api_key_env names (LLMOPS_API_KEY).
BENTO ?= llmops-service:latest
PORT ?= 3000
export BENTO PORT

serve: $(STAMP) ## Serve the latest Bento on http://127.0.0.1:3000 (PORT=...; requests logged to logs/)
	LLMOPS_LOG_DIR="$${LLMOPS_LOG_DIR:-$(CURDIR)/logs}" bentoml serve "$$BENTO" --host 127.0.0.1 --port "$$PORT"

# make smoke URL=...: what a deployment runs against a new service; the API key comes from
# the environment (LLMOPS_API_KEY, params.yaml serve.api_key_env), never the command line.
URL ?= http://127.0.0.1:3000
export URL

smoke: $(STAMP) ## Smoke-test a running service: make smoke URL=http://127.0.0.1:3000 [EXPECT_VERSION=...] (API key from LLMOPS_API_KEY)
	python -m llmops.smoke "$$URL" --params params.yaml --data data/prepared/test.jsonl \
	  --expect-version="$$EXPECT_VERSION"

# --- Blue/green deployment on loopback (llmops.deploy, llmops.proxy) -----------------------
.PHONY: deploy deploy-status deploy-stop

# Clients use 127.0.0.1:DEPLOY_PORT, a proxy to the active server. make deploy serves BENTO on
# a free port beside it, smoke-tests it (API key from LLMOPS_API_KEY) and switches only if it
# passes; the old server is drained and stopped. State and server logs: .deploy/.
DEPLOY_PORT ?= 3000
DEPLOY_STATE := .deploy/local.json
export DEPLOY_STATE
export DEPLOY_PORT

deploy: $(STAMP) ## Blue/green on loopback: serve BENTO beside the running one, smoke-test it, switch 127.0.0.1:DEPLOY_PORT over only if it passes
	LLMOPS_LOG_DIR="$${LLMOPS_LOG_DIR:-$(CURDIR)/logs}" python -m llmops.deploy local \
	  --bento "$$BENTO" --port "$$DEPLOY_PORT" --state "$$DEPLOY_STATE" --params params.yaml \
	  --data data/prepared/test.jsonl

deploy-status: $(STAMP) ## Show what 127.0.0.1:DEPLOY_PORT serves: the proxy, the active and the previous server
	python -m llmops.deploy status --state "$$DEPLOY_STATE"

deploy-stop: $(STAMP) ## Stop the deploy proxy and the servers it started
	python -m llmops.deploy stop --state "$$DEPLOY_STATE"

# --- CI: what the workflows in .github/workflows call (docs/ci.md) -------------------------

# The DVC remote CI pulls from and pushes to: the name of a remote in .dvc/config (empty:
# none, the pipeline is reproduced).
DVC_REMOTE ?=
export DVC_REMOTE

pull: $(STAMP) preflight ## Pull the pipeline's outputs from DVC_REMOTE when set (else dvc repro rebuilds them)
	@if [ -n "$$DVC_REMOTE" ]; then dvc pull --remote "$$DVC_REMOTE" || \
	  echo "dvc pull from $$DVC_REMOTE incomplete: dvc repro reproduces what is missing"; \
	else echo "no DVC_REMOTE: nothing to pull, dvc repro reproduces the outputs"; fi

push: $(STAMP) preflight ## Push the pipeline's outputs to DVC_REMOTE (fails when it is not set)
	@test -n "$$DVC_REMOTE" || { echo "DVC_REMOTE is not set" >&2; exit 1; }
	dvc push --remote "$$DVC_REMOTE"

summary: ## Append report.md to the GitHub Actions job summary
	@test -n "$$GITHUB_STEP_SUMMARY" || { echo "GITHUB_STEP_SUMMARY is not set" >&2; exit 1; }
	cat report.md >> "$$GITHUB_STEP_SUMMARY"

# The pull request a report belongs to (CI sets PR to the pull request's number).
PR ?=
export PR

pr-meta: ## Write pr.json (the pull request number, PR=...) for the commenting workflow
	@printf '{"number": %d}\n' "$$PR" > pr.json && cat pr.json

# Runs on the default branch's code without the venv: standard library only.
comment: ## Post report-artifact/report.md on its pull request (GitHub API), checked and defused (CI)
	PYTHONPATH=src python3 -m llmops.comment --artifact report-artifact \
	  --head-sha "$$HEAD_SHA" --repo "$$GITHUB_REPOSITORY"

MESSAGE ?=
export MESSAGE

notice: ## Print MESSAGE as a GitHub Actions notice
	@printf '::notice::%s\n' "$$MESSAGE"

# make profile PROFILE=profiles/gpu.yaml: overlay a params profile onto params.yaml.
PROFILE ?=
export PROFILE

profile: $(STAMP) ## Overlay a params profile onto params.yaml (PROFILE=profiles/gpu.yaml), keeping comments
	python -m llmops.profile "$$PROFILE" --params params.yaml

# The image: IMAGE_REPOSITORY (e.g. ghcr.io/org/app) tagged with the commit.
IMAGE_REPOSITORY ?= llmops-service
override IMAGE_REPOSITORY := $(or $(IMAGE_REPOSITORY),llmops-service)
export IMAGE_REPOSITORY

image: $(STAMP) ## Build the container image of BENTO, tagged IMAGE_REPOSITORY:<commit> (needs docker)
	image="$$(python -m llmops.release image-tag --repository "$$IMAGE_REPOSITORY" \
	  --sha "$$(git rev-parse HEAD)")" && bentoml containerize "$$BENTO" -t "$$image"

container-smoke: $(STAMP) ## Run the image on 127.0.0.1:PORT and smoke-test it (needs docker)
	image="$$(python -m llmops.release image-tag --repository "$$IMAGE_REPOSITORY" \
	  --sha "$$(git rev-parse HEAD)")" && \
	cid="$$(docker run -d --rm -p "127.0.0.1:$$PORT:3000" -e LLMOPS_API_KEY "$$image")" && \
	trap 'docker stop "$$cid" >/dev/null' EXIT && \
	python -m llmops.smoke "http://127.0.0.1:$$PORT" --params params.yaml \
	  --data data/prepared/test.jsonl

push-image: $(STAMP) ## Push IMAGE_REPOSITORY:<commit> (registry login from REGISTRY_TOKEN); its digest to GITHUB_OUTPUT
	image="$$(python -m llmops.release image-tag --repository "$$IMAGE_REPOSITORY" \
	  --sha "$$(git rev-parse HEAD)")" && \
	printf '%s' "$$REGISTRY_TOKEN" | docker login "$${image%%/*}" -u "$${GITHUB_ACTOR:-ci}" --password-stdin && \
	docker push "$$image" && \
	digest="$$(docker inspect --format '{{index .RepoDigests 0}}' "$$image")" && \
	printf 'image=%s\nimage_digest=%s\n' "$$image" "$${digest#*@}" >> "$${GITHUB_OUTPUT:-/dev/null}" && \
	echo "pushed $$digest"

ui: $(STAMP) ## Open the MLflow UI on the local runs (mlflow.db) at http://127.0.0.1:5000
	mlflow ui --backend-store-uri "$${MLFLOW_TRACKING_URI:-sqlite:///mlflow.db}" --host 127.0.0.1 --port 5000

bench-train: $(STAMP) ## Benchmark training throughput vs the transformers Trainer (needs models/base)
	python -m benchmarks.bench_train --params params.yaml --data data/prepared --base models/base \
	  --out benchmarks/results/train.json

bench-prep: $(STAMP) ## Benchmark the prep stage with PII redaction vs without (data/raw)
	python -m benchmarks.bench_prep --params params.yaml --raw data/raw \
	  --out benchmarks/results/prep.json

exp-table: $(STAMP) preflight ## Tabulate the DVC experiments (dvc exp run --queue ...): params changed, test metrics, minutes
	dvc exp show --json --no-pager | python -m benchmarks.experiments

bench-eval: $(STAMP) ## Benchmark test-set generation vs one-at-a-time generate (needs make repro)
	python -m benchmarks.bench_eval --params params.yaml --data data/prepared --base models/base \
	  --adapter models/adapter --out benchmarks/results/eval.json

# The training seeds make noise tries besides the current one (make noise SEEDS="1 2 3").
SEEDS ?= 1 2
export SEEDS
# An earlier noise.json (same params, another machine) whose runs make noise adds to its
# spread: make noise POOL=benchmarks/results/noise.json
POOL ?=

bench-serve: $(STAMP) ## Benchmark the served Bento: batched (token by token) vs batch size 1; fails on a missed target (needs make bento)
	python -m benchmarks.bench_serve --params params.yaml --data data/prepared/test.jsonl \
	  --bento "$$BENTO" --out benchmarks/results/serve.json

bench-attacks: $(STAMP) ## Measure what hostile clients cost the served Bento: poisoned, keyless, chunked, slow (needs make bento)
	python -m benchmarks.serve_attacks --params params.yaml --data data/prepared/test.jsonl \
	  --bento "$$BENTO" --out benchmarks/results/serve_attacks.json

noise: $(STAMP) ## Measure the metrics' spread under noise-only changes: seeds, thread count (needs make repro; POOL=file adds its runs)
	python -m benchmarks.noise --params params.yaml --data data/prepared --base models/base \
	  --seeds $$SEEDS --out benchmarks/results/noise.json $(if $(POOL),--pool $(POOL))

# lock resolves into a scratch venv, then tools/lock_hashes.py pins what it holds (pip and
# setuptools too, +cpu dropped) with the sha256 of every file PyPI has for each version, and
# of each file pip took from elsewhere (its --report: torch's CPU wheel, from /opt/wheels or
# TORCH_INDEX, which serve the same file). Hashes the old lock has for an unchanged version
# are kept, so a lock made where torch comes from PyPI still installs the CPU wheel.
lock: ## Re-resolve the dependency set from pyproject.toml into requirements.lock, with hashes
	rm -rf .venv-lock && "$$PYTHON" -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet --upgrade "pip>=24"
	.venv-lock/bin/python -m pip install --quiet --retries 0 --report .venv-lock/report.json \
	  $${TORCH_INDEX:+--extra-index-url "$$TORCH_INDEX"} ".[dev]"
	.venv-lock/bin/python -m pip freeze --all --exclude llmops-template \
	  | .venv-lock/bin/python tools/lock_hashes.py --report .venv-lock/report.json \
	    --keep requirements.lock > .venv-lock/requirements.lock
	mv .venv-lock/requirements.lock requirements.lock
	rm -rf .venv-lock

hooks: $(STAMP) ## Install the git pre-commit hooks
	pre-commit install

clean: ## Remove DVC-cached stage outputs and tool caches (dvc repro or dvc pull restores them)
	rm -rf data/prepared data/quarantine data/eval models/base models/adapter models/checkpoints \
	  .pytest_cache .ruff_cache
