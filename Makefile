# taxi-serve: `make` alone lists the targets (from the ## comments).
SHELL := /bin/bash
.DEFAULT_GOAL := help
PY := .venv/bin/python
UV ?= uv
export PATH := $(CURDIR)/.tools/bin:$(PATH)

.PHONY: help setup train materialize serve compile test bench bento lint proto

help: ## Show this help
	@grep -hE '^[a-zA-Z0-9_-]+:.*?## ' $(MAKEFILE_LIST) | sort | \
	  awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-20s\033[0m %s\n", $$1, $$2}'

setup: .venv/.synced ## Install the locked Python environment (uv) into .venv

.venv/.synced: pyproject.toml uv.lock
	@command -v $(UV) >/dev/null || python3 -m pip install --quiet uv
	$(UV) sync --frozen
	@touch $@

train: setup ## Run the offline pipeline on the bundled sample (DATA=... for other files)
	$(PY) -m training pipeline $(if $(DATA),$(foreach d,$(DATA),--data $(d)),) $(TRAIN_ARGS)

materialize: setup ## Apply the Feast repo and materialize features into $$REDIS_URL
	$(PY) -m training materialize

test: setup drift-setup k8s-tools lint ## Lint, then run the whole test suite, main and drift monitor envs
	.venv/bin/pytest $(PYTEST_ARGS)
	$(MAKE) test-drift

serve: setup ## Serve predictions on the bundled sample (trains and compiles first if needed)
	@$(PY) -m training champion >/dev/null 2>&1 && test -f feature_repo/data/route_stats.parquet \
	  || $(PY) -m training pipeline
	@$(PY) -m training compile || echo "compiling failed: serving with LightGBM (slower)"
	$(PY) -m service

compile: setup ## Compile the champion's trees for serving (TAG=... for another version)
	$(PY) -m training compile $(TAG)

bench: setup ## Benchmark HTTP and gRPC against a naive reference (prints the table)
	@$(PY) -m training champion >/dev/null 2>&1 && test -f feature_repo/data/route_stats.parquet \
	  || $(PY) -m training pipeline
	$(PY) -m training compile
	$(PY) -m benchmarks.bench $(BENCH_ARGS)

bento: setup ## Build the Bento (service + champion model + locked requirements)
	@mkdir -p artifacts
	$(UV) export --frozen --no-dev --no-hashes --no-emit-project -q -o artifacts/bento-requirements.txt
	.venv/bin/bentoml build -f bentofile.yaml

proto: setup ## Regenerate the gRPC Python code from proto/taxi/v1/taxi.proto
	.venv/bin/python -m service.protogen

lint: setup ## Lint the code with ruff
	.venv/bin/ruff check .

-include mk/*.mk
