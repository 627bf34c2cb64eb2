# taxi-serve: `make` alone lists the targets (from the ## comments).
SHELL := /bin/bash
.DEFAULT_GOAL := help
PY := .venv/bin/python
# uv from PATH when there is one, else a pinned copy in a private venv (.tools/uv): the system
# Python is never touched (Debian's pip refuses system-wide installs, PEP 668).
UV_VERSION := 0.13.9
UV_LOCAL := $(CURDIR)/.tools/uv/bin/uv
UV ?= $(or $(shell command -v uv 2>/dev/null),$(UV_LOCAL))
# pytest arguments of the container suites (tests/images, tests/node) inside `make test`.
NODE_PYTEST_ARGS ?=
export PATH := $(CURDIR)/.tools/bin:$(PATH)

.PHONY: help setup train materialize serve compile test bench bento lint proto

help: ## Show this help
	@grep -hE '^[a-zA-Z0-9_-]+:.*?## ' $(MAKEFILE_LIST) | sort | \
	  awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-22s\033[0m %s\n", $$1, $$2}'

setup: .venv/.synced ## Install the locked Python environment (uv) into .venv

.venv/.synced: pyproject.toml uv.lock | $(filter /%,$(UV))
	$(UV) sync --frozen
	@touch $@

$(UV_LOCAL):
	@echo "installing uv $(UV_VERSION) into .tools/uv (a private venv; the system Python is untouched)"
	@python3 -m venv $(CURDIR)/.tools/uv || { rm -rf $(CURDIR)/.tools/uv; \
	  echo "python3 -m venv failed: install Debian's python3-venv (apt-get install python3-venv), or uv" >&2; exit 1; }
	$(CURDIR)/.tools/uv/bin/pip install --quiet --disable-pip-version-check 'uv==$(UV_VERSION)'

train: setup ## Run the offline pipeline on the bundled sample (DATA=... for other files)
	$(PY) -m training pipeline $(if $(DATA),$(foreach d,$(DATA),--data $(d)),) $(TRAIN_ARGS)

materialize: setup ## Apply the Feast repo and materialize features into the Redis at REDIS_URL
	$(PY) -m training materialize

# All three suites always run (a failure in one must not hide the others' results); the
# target fails when any failed. Ctrl-C stops them all (the trap), not just the running one.
# The third needs root: a private dockerd for the images, then a real one-node cluster.
test: setup drift-setup k8s-tools lint ## Lint, then run the three test suites (main, drift monitor, containers on a real node); fails if any fails
	@trap 'exit 130' INT TERM; rc_main=0; rc_drift=0; rc_node=0; \
	echo "== [1/3] main suite: .venv/bin/pytest (about 20 min on 2 cores) =="; \
	.venv/bin/pytest $(PYTEST_ARGS) || rc_main=$$?; \
	echo "== [2/3] drift-monitor suite: drift_monitor/.venv (about 1 min) =="; \
	$(MAKE) --no-print-directory test-drift || rc_drift=$$?; \
	echo "== [3/3] containers: build the images, test them, then the chart on a real one-node cluster (about 25 min) =="; \
	$(MAKE) --no-print-directory test-images test-node PYTEST_ARGS="$(NODE_PYTEST_ARGS)" || rc_node=$$?; \
	verdict() { [ $$1 = 0 ] && echo passed || echo "FAILED (exit $$1)"; }; \
	echo "== main suite: $$(verdict $$rc_main); drift-monitor suite: $$(verdict $$rc_drift); \
	containers and real node: $$(verdict $$rc_node) =="; \
	[ $$rc_main = 0 ] && [ $$rc_drift = 0 ] && [ $$rc_node = 0 ]

serve: setup ## Serve predictions on the bundled sample (trains and compiles first if needed)
	@$(PY) -m training champion >/dev/null 2>&1 && test -f feature_repo/data/route_stats.parquet \
	  || $(PY) -m training pipeline
	@$(PY) -m training compile || echo "compiling failed: serving with LightGBM (slower)"
	$(PY) -m service

compile: setup ## Compile the champion's trees for serving (TAG=... for another version)
	$(PY) -m training compile $(TAG)

bench: setup bench-peers ## taxi-serve vs KServe, MLServer, FastAPI and a naive reference, HTTP and gRPC (prints the tables)
	@$(PY) -m training champion >/dev/null 2>&1 && test -f feature_repo/data/route_stats.parquet \
	  || $(PY) -m training pipeline
	$(PY) -m training compile
	$(PY) -m benchmarks.bench $(BENCH_ARGS)

bento: setup ## Build the Bento (service + champion model + locked requirements)
	PATH="$(dir $(UV)):$$PATH" $(PY) -m cluster.bento_stage
	PATH="$(dir $(UV)):$$PATH" .venv/bin/bentoml build -f bentofile.yaml

proto: setup ## Regenerate the gRPC Python code from proto/taxi/v1/taxi.proto
	.venv/bin/python -m service.protogen

lint: setup ## Lint the code with ruff
	.venv/bin/ruff check .

-include mk/*.mk
