# The targets the workflows in .github/workflows call (docs/ci.md): the pull-request
# report's plumbing and the release of a merge to main. Included by the Makefile; `make
# help` lists them under their own heading. Values reach recipes from the environment as
# "$$VAR" only (the Makefile's first lines say why).

# --- Release: ship what was reviewed (llmops.ship.reviewed, llmops.ship.registry, llmops.ship.release) ----
.PHONY: reviewed register record record-deployment promote rollback-model release-plan \
  push-bento deploy-cloud rollback-cloud smoke-deployed summary pr-meta comment notice image \
  container-smoke push-image

##@ CI and release (ci.mk)
reviewed: $(STAMP) preflight ## Pull the outputs dvc.lock records from DVC_REMOTE or refuse; never retrains (a rehearsal when nothing is configured to release to)
	python -m llmops.ship.reviewed --remote="$$DVC_REMOTE"

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
	python -m llmops.ship.registry register --params params.yaml --adapter models/adapter \
	  --eval metrics/eval.json --bento-model "$$BENTO_MODEL" $(SERVER_FLAG)

record: $(STAMP) ## Tag the challenger with what serves it: RECORD_BENTO, RECORD_IMAGE, RECORD_IMAGE_DIGEST
	python -m llmops.ship.registry record --params params.yaml $(SERVER_FLAG) \
	  bento="$$RECORD_BENTO" image="$$RECORD_IMAGE" image_digest="$$RECORD_IMAGE_DIGEST"

record-deployment: $(STAMP) ## Tag the challenger with its deployment and the Bento it replaced (DEPLOY_RECORD)
	python -m llmops.ship.registry record --params params.yaml --state "$$DEPLOY_RECORD" $(SERVER_FLAG)

promote: $(STAMP) ## Move the champion alias to PROMOTE_VERSION (default: the challenger), a release's last step
	python -m llmops.ship.registry promote --params params.yaml --alias "$$ALIAS" \
	  --version="$$PROMOTE_VERSION" $(SERVER_FLAG)

rollback-model: $(STAMP) ## Move the champion alias back to the previous version
	python -m llmops.ship.registry rollback --params params.yaml --alias "$$ALIAS" $(SERVER_FLAG)

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
	python -m llmops.ship.release plan

push-bento: $(STAMP) ## Push BENTO to BentoCloud, where the deploy jobs take it (BENTOML_CLOUD_API_KEY)
	BENTO_CLOUD_API_KEY="$${BENTO_CLOUD_API_KEY:-$$BENTOML_CLOUD_API_KEY}" \
	BENTO_CLOUD_API_ENDPOINT="$${BENTO_CLOUD_API_ENDPOINT:-$$BENTOML_CLOUD_API_ENDPOINT}" \
	  bentoml push "$$BENTO"

deploy-cloud: $(STAMP) ## Deploy BENTO to the BentoCloud deployment DEPLOYMENT with the API-key secret, wait for the rollout; put the previous Bento back if it fails
	python -m llmops.ship.release deploy --bento "$$BENTO" --name "$$DEPLOYMENT" --target bentocloud \
	  --secret="$${BENTOCLOUD_SECRET:-llmops-api-key}" --state "$$DEPLOY_RECORD" --params params.yaml \
	  --interval "$${DEPLOY_POLL_S:-10}"

rollback-cloud: $(STAMP) ## Put the Bento deploy-cloud replaced back on the BentoCloud deployment and wait for it
	python -m llmops.ship.release rollback --name "$$DEPLOYMENT" --state "$$DEPLOY_RECORD" \
	  --interval "$${DEPLOY_POLL_S:-10}"

# The deployed endpoint and the model version it must serve (make bento's model version).
DEPLOY_URL ?=
EXPECT_VERSION ?=
export DEPLOY_URL EXPECT_VERSION

smoke-deployed: $(STAMP) ## Smoke-test DEPLOY_URL, which must serve EXPECT_VERSION (the deploy jobs)
	@test -n "$$DEPLOY_URL" || { echo "DEPLOY_URL is not set: the deployed endpoint to smoke-test" >&2; exit 1; }
	python -m llmops.ship.smoke "$$DEPLOY_URL" --params params.yaml --data data/prepared/test.jsonl \
	  --expect-version="$$EXPECT_VERSION"

# --- The pull-request report's plumbing -----------------------------------------------------

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
	PYTHONPATH=src python3 -m llmops.report.comment --artifact report-artifact \
	  --head-sha "$$HEAD_SHA" --repo "$$GITHUB_REPOSITORY"

MESSAGE ?=
export MESSAGE

notice: ## Print MESSAGE as a GitHub Actions notice
	@printf '::notice::%s\n' "$$MESSAGE"

# --- The container image ------------------------------------------------------------------

# The image: IMAGE_REPOSITORY (e.g. ghcr.io/org/app) tagged with the commit.
IMAGE_REPOSITORY ?= llmops-service
override IMAGE_REPOSITORY := $(or $(IMAGE_REPOSITORY),llmops-service)
export IMAGE_REPOSITORY

image: $(STAMP) ## Build the container image of BENTO, tagged IMAGE_REPOSITORY:<commit> (needs docker)
	image="$$(python -m llmops.ship.release image-tag --repository "$$IMAGE_REPOSITORY" \
	  --sha "$$(git rev-parse HEAD)")" && bentoml containerize "$$BENTO" -t "$$image"

container-smoke: $(STAMP) ## Run the image on 127.0.0.1:PORT and smoke-test it (needs docker)
	image="$$(python -m llmops.ship.release image-tag --repository "$$IMAGE_REPOSITORY" \
	  --sha "$$(git rev-parse HEAD)")" && \
	cid="$$(docker run -d --rm -p "127.0.0.1:$$PORT:3000" -e LLMOPS_API_KEY "$$image")" && \
	trap 'docker stop "$$cid" >/dev/null' EXIT && \
	python -m llmops.ship.smoke "http://127.0.0.1:$$PORT" --params params.yaml \
	  --data data/prepared/test.jsonl

push-image: $(STAMP) ## Push IMAGE_REPOSITORY:<commit> (registry login from REGISTRY_TOKEN); its digest to GITHUB_OUTPUT
	image="$$(python -m llmops.ship.release image-tag --repository "$$IMAGE_REPOSITORY" \
	  --sha "$$(git rev-parse HEAD)")" && \
	printf '%s' "$$REGISTRY_TOKEN" | docker login "$${image%%/*}" -u "$${GITHUB_ACTOR:-ci}" --password-stdin && \
	docker push "$$image" && \
	digest="$$(docker inspect --format '{{index .RepoDigests 0}}' "$$image")" && \
	printf 'image=%s\nimage_digest=%s\n' "$$image" "$${digest#*@}" >> "$${GITHUB_OUTPUT:-/dev/null}" && \
	echo "pushed $$digest"

# --- Watch: the monitor workflow (llmops.watch.retrain) -------------------------------------
# REPO: owner/name; RUN_URL: the workflow run (named in the issue); BASE: the branch a
# retraining pull request targets. The token: RETRAIN_TOKEN, else GITHUB_TOKEN.
.PHONY: monitor-issue retrain-pr
monitor-issue: $(STAMP) ## Open or update the monitoring issue from reports/monitor/figures.json (monitor workflow)
	python -m llmops.watch.retrain issue --figures reports/monitor/figures.json --repo="$$REPO" \
	  --run-url="$$RUN_URL"

retrain-pr: $(STAMP) ## Open a retraining pull request for the newest harvest when it reached harvest.min_corrections (monitor workflow)
	python -m llmops.watch.retrain pull-request --harvest data/harvest --repo="$$REPO" \
	  --base="$$BASE" --dvc-remote="$$DVC_REMOTE"
