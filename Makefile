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
$(foreach v,PYTHON TORCH_INDEX CI REQUIRE_SERVER DEPLOYMENT IMAGE_REPOSITORY LOGS HOURS MLFLOW REPO BASE RUN_URL,\
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
  test-e2e pull push profile bento serve smoke bench-train bench-prep exp-table bench-eval \
  bench-serve bench-attacks noise lock hooks clean

##@ Set-up
# make help: the targets with a "## " description, under the "##@ " heading above them, the
# headings in the order of HELP_ORDER (then any other, as met).
HELP_ORDER := Set-up Pipeline Review Serve Watch Develop
help: ## List the targets, grouped
	@awk -v order="$(HELP_ORDER)" 'BEGIN {FS = ":.*## "; n = split(order, names, " ")} \
	  /^##@ / {group = substr($$0, 5); next} \
	  /^[a-zA-Z0-9][a-zA-Z0-9_-]*:.*## / { \
	    if (!(group in known)) {known[group] = 1; if (index(" " order " ", " " group " ") == 0) names[++n] = group} \
	    lines[group] = lines[group] sprintf("  %-18s %s\n", $$1, $$2)} \
	  END {for (i = 1; i <= n; i++) if (names[i] in lines) printf "%s%s:\n%s", (i > 1 ? "\n" : ""), names[i], lines[names[i]]}' $(MAKEFILE_LIST)

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

# Every target that runs DVC checks first what DVC reads and could choke on (llmops.project.preflight).
.PHONY: preflight
##@ Pipeline
preflight: $(STAMP) ## Check params.yaml + task.yaml, the prompt template and data file names DVC can hash (DVC targets run it)
	python -m llmops.project.preflight

repro: $(STAMP) preflight ## Run the pipeline on params.yaml (dvc repro); does nothing when up to date
	dvc repro

dag: $(STAMP) preflight ## Show the pipeline's stages (dvc dag)
	dvc dag

# The baseline the gates and the report compare against (a git ref). Recipes read it (and
# init's arguments) from the environment as "$$VAR", so no value is ever parsed as shell;
# `--baseline=` keeps a value starting with - a value, which the gate then refuses.
BASELINE ?= main
export BASELINE

##@ Review
gate: $(STAMP) ## Check the quality gates (params.yaml gate) against BASELINE=main; fails if any fails
	python -m llmops.evaluate.gate --params params.yaml --metrics metrics/eval.json \
	  --examples metrics/eval_examples.csv --noise benchmarks/results/noise.json \
	  --baseline="$$BASELINE"

report: $(STAMP) ## Write report.md: this change vs BASELINE=main (what CI posts on the pull request)
	python -m llmops.report.pullrequest --params params.yaml --baseline="$$BASELINE" --out report.md \
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

##@ Set-up
init: $(STAMP) ## Turn this clone into your project: make init DATA=train.csv [TEST=test.csv] [INPUT=text LABELS=label]
	python -m llmops.project.adopt --data="$$DATA" --test="$$TEST" --input="$$INPUT" \
	  --labels="$$LABELS" --texts="$$TEXTS" --label-case="$$LABEL_CASE"

# The system tools the tests use that pip cannot install (Prometheus: promtool and a real
# server), installed once by tools/system_deps.sh (Debian's package, or it says what to do).
SYSTEM_STAMP := $(VENV)/.system-deps
$(SYSTEM_STAMP): tools/system_deps.sh | $(STAMP)
	bash tools/system_deps.sh
	@touch $@

##@ Set-up
system-deps: $(SYSTEM_STAMP) ## Install the system tools the tests use (prometheus, promtool; make test does this)

##@ Develop
test: $(STAMP) $(SYSTEM_STAMP) ## Run all tests, end-to-end included (what CI runs)
	python -m pytest

test-fast: $(STAMP) $(SYSTEM_STAMP) ## Run the unit tests only (no end-to-end)
	python -m pytest -m "not e2e"

test-e2e: $(STAMP) $(SYSTEM_STAMP) ## Run the end-to-end tests only (real dvc, MLflow, bentoml serve, Prometheus)
	python -m pytest -m e2e

lint: $(STAMP) ## Lint: ruff, formatting, YAML, large files, workflows (actionlint, zizmor) (pre-commit hooks)
	pre-commit run --all-files --show-diff-on-failure

format: $(STAMP) ## Fix formatting and autofixable lint
	ruff format $(wildcard src tests examples benchmarks)
	ruff check --fix $(wildcard src tests examples benchmarks)

##@ Pipeline
params: $(STAMP) ## Validate params.yaml and task.yaml; list the task's metrics and check the gates' names
	python -m llmops.config.params params.yaml
	python -m llmops.evaluate.metrics params.yaml
	python -m llmops.config.prompts --check --params params.yaml

##@ Set-up
sample-data: $(STAMP) ## Regenerate the worked example's raw data in data/raw/ (deterministic)
	@test -d examples/ticket_triage || { echo "the worked example was removed (make init)" >&2; exit 1; }
	python -m examples.ticket_triage.generate --out data/raw

##@ Serve
bento: $(STAMP) ## Package the evaluated model (model store, with lineage) and build the Bento (needs make repro)
	python -m llmops.ship.bento --params params.yaml --base models/base --adapter models/adapter \
	  --eval metrics/eval.json --lock dvc.lock --bentofile bentofile.yaml

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
	python -m llmops.ship.smoke "$$URL" --params params.yaml --data data/prepared/test.jsonl \
	  --expect-version="$$EXPECT_VERSION"

# --- Blue/green deployment on loopback (llmops.ship.deploy, llmops.ship.proxy) -----------------------
.PHONY: deploy deploy-status deploy-stop

# Clients use 127.0.0.1:DEPLOY_PORT, a proxy to the active server. make deploy serves BENTO on
# a free port beside it, smoke-tests it (API key from LLMOPS_API_KEY) and switches only if it
# passes; the old server is drained and stopped. State and server logs: .deploy/.
DEPLOY_PORT ?= 3000
DEPLOY_STATE := .deploy/local.json
export DEPLOY_STATE
export DEPLOY_PORT

deploy: $(STAMP) ## Blue/green on loopback: serve BENTO beside the running one, smoke-test it, switch 127.0.0.1:DEPLOY_PORT over only if it passes
	LLMOPS_LOG_DIR="$${LLMOPS_LOG_DIR:-$(CURDIR)/logs}" python -m llmops.ship.deploy local \
	  --bento "$$BENTO" --port "$$DEPLOY_PORT" --state "$$DEPLOY_STATE" --params params.yaml \
	  --data data/prepared/test.jsonl

deploy-status: $(STAMP) ## Show what 127.0.0.1:DEPLOY_PORT serves: the proxy, the active and the previous server
	python -m llmops.ship.deploy status --state "$$DEPLOY_STATE"

deploy-stop: $(STAMP) ## Stop the deploy proxy and the servers it started
	python -m llmops.ship.deploy stop --state "$$DEPLOY_STATE"

# --- Watch the served model and learn from it (llmops.watch) ---------------------------------
# LOGS: where the service's logs are, a folder or an fsspec URI (s3://bucket/prefix); by
# default LLMOPS_LOG_URI, else params.yaml serve.log_uri, else logs/. HOURS: the window,
# ending now (default: the monitor or harvest section's window_hours).
.PHONY: monitor harvest simulate system-deps
##@ Watch
monitor: $(STAMP) ## Compare a window of the service's logs with the training data (reports/monitor/); exit 1 naming a crossed threshold
	python -m llmops.watch.monitor --params params.yaml --train data/prepared/train.jsonl \
	  --out reports/monitor $(if $(LOGS),--logs="$$LOGS") $(if $(HOURS),--hours="$$HOURS") \
	  $(if $(MLFLOW),--mlflow)

harvest: $(STAMP) ## Turn corrected answers into a new batch in data/raw/ (doubtful requests: data/labelling/)
	python -m llmops.watch.harvest --params params.yaml --raw data/raw --labelling data/labelling \
	  --provenance data/harvest $(if $(LOGS),--logs="$$LOGS") $(if $(HOURS),--hours="$$HOURS")

simulate: $(STAMP) ## Rehearse the loop on loopback: serve, normal then shifted traffic, feedback, monitor, harvest (needs make bento)
	python -m llmops.watch.simulate --params params.yaml --data data/prepared/val.jsonl \
	  --train data/prepared/train.jsonl --bento "$$BENTO" --out reports/simulate

# --- The DVC remote (pull, push) -----------------------------------------------------------

# The DVC remote CI pulls from and pushes to: the name of a remote in .dvc/config (empty:
# none, the pipeline is reproduced).
DVC_REMOTE ?=
export DVC_REMOTE

##@ Pipeline
pull: $(STAMP) preflight ## Pull the pipeline's outputs from DVC_REMOTE when set (else dvc repro rebuilds them)
	@if [ -n "$$DVC_REMOTE" ]; then dvc pull --remote "$$DVC_REMOTE" || \
	  echo "dvc pull from $$DVC_REMOTE incomplete: dvc repro reproduces what is missing"; \
	else echo "no DVC_REMOTE: nothing to pull, dvc repro reproduces the outputs"; fi

push: $(STAMP) preflight ## Push the pipeline's outputs to DVC_REMOTE (fails when it is not set)
	@test -n "$$DVC_REMOTE" || { echo "DVC_REMOTE is not set" >&2; exit 1; }
	dvc push --remote "$$DVC_REMOTE"

# make profile PROFILE=profiles/gpu.yaml: overlay a params profile onto params.yaml.
PROFILE ?=
export PROFILE

profile: $(STAMP) ## Overlay a params profile onto params.yaml (PROFILE=profiles/gpu.yaml), keeping comments
	python -m llmops.project.profile "$$PROFILE" --params params.yaml

ui: $(STAMP) ## Open the MLflow UI on the local runs (mlflow.db) at http://127.0.0.1:5000
	mlflow ui --backend-store-uri "$${MLFLOW_TRACKING_URI:-sqlite:///mlflow.db}" --host 127.0.0.1 --port 5000

##@ Develop
bench-train: $(STAMP) ## Benchmark training throughput vs the transformers Trainer (needs models/base)
	python -m benchmarks.bench_train --params params.yaml --data data/prepared --base models/base \
	  --out benchmarks/results/train.json

bench-prep: $(STAMP) ## Benchmark the prep stage with PII redaction vs without (data/raw)
	python -m benchmarks.bench_prep --params params.yaml --raw data/raw \
	  --out benchmarks/results/prep.json

##@ Review
exp-table: $(STAMP) preflight ## Tabulate the DVC experiments (dvc exp run --queue ...): params changed, test metrics, minutes
	dvc exp show --json --no-pager | python -m benchmarks.experiments

##@ Develop
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

##@ Review
noise: $(STAMP) ## Measure the metrics' spread under noise-only changes: seeds, thread count (needs make repro; POOL=file adds its runs)
	python -m benchmarks.noise --params params.yaml --data data/prepared --base models/base \
	  --seeds $$SEEDS --out benchmarks/results/noise.json $(if $(POOL),--pool $(POOL))

# lock resolves into a scratch venv, then tools/lock_hashes.py pins what it holds (pip and
# setuptools too, +cpu dropped) with the sha256 of every file PyPI has for each version, and
# of each file pip took from elsewhere (its --report: torch's CPU wheel, from /opt/wheels or
# TORCH_INDEX, which serve the same file). Hashes the old lock has for an unchanged version
# are kept, so a lock made where torch comes from PyPI still installs the CPU wheel.
# Versions the lock pins stay as they are (pip's constraints): a new dependency brings only
# what it needs. UPGRADE="name ..." lets those packages move (a changed range in
# pyproject.toml needs it); UPGRADE=1 re-resolves every package to its newest allowed version.
##@ Develop
lock: ## Add pyproject.toml's new dependencies to requirements.lock, with hashes (UPGRADE=names|1)
	rm -rf .venv-lock && "$$PYTHON" -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet --upgrade "pip>=24"
	sed -n 's/^\([A-Za-z0-9_.-]*==[^ ]*\) .*/\1/p' requirements.lock \
	  | grep -v -i -e '^pip==' -e '^setuptools==' $$(for name in $$UPGRADE; do \
	    printf -- "-e ^%s== " "$$name"; done) > .venv-lock/constraints.txt
	.venv-lock/bin/python -m pip install --quiet --retries 0 --report .venv-lock/report.json \
	  $${TORCH_INDEX:+--extra-index-url "$$TORCH_INDEX"} \
	  $(if $(filter 1,$(UPGRADE)),,-c .venv-lock/constraints.txt) ".[dev]"
	.venv-lock/bin/python -m pip freeze --all --exclude llmops-template \
	  | .venv-lock/bin/python tools/lock_hashes.py --report .venv-lock/report.json \
	    --keep requirements.lock > .venv-lock/requirements.lock
	mv .venv-lock/requirements.lock requirements.lock
	rm -rf .venv-lock

##@ Set-up
hooks: $(STAMP) ## Install the git pre-commit hooks
	pre-commit install

##@ Pipeline
clean: ## Remove DVC-cached stage outputs and tool caches (dvc repro or dvc pull restores them)
	rm -rf data/prepared data/quarantine data/eval models/base models/adapter models/checkpoints \
	  .pytest_cache .ruff_cache

include ci.mk
