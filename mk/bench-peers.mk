# The peers `make bench` runs beside taxi-serve, and its HTTP load generator. Included by the
# main Makefile. Each peer has its own locked environment (benchmarks/peers/<name>/uv.lock),
# kept out of the project's uv.lock, installed into .bench/<name>; wrk comes from Debian.

BENCH_PEERS := kserve mlserver fastapi

.PHONY: bench-peers bench-profile wrk-tool

# CI installs it before `make test` too, so the wrk-script test runs there instead of skipping.
wrk-tool: ## Install wrk (Debian's package) when missing
	@command -v wrk >/dev/null || { command -v apt-get >/dev/null && \
	  { apt-get install -y -qq wrk >/dev/null 2>&1 || \
	    { apt-get update -qq && apt-get install -y -qq wrk; }; }; } || \
	  { echo "wrk-tool: install wrk (Debian/Ubuntu package wrk)" >&2; exit 2; }

bench-peers: wrk-tool | $(filter /%,$(UV)) ## Install the bench peers' environments and py-spy (.bench/), and wrk (apt), when missing
	@for p in $(BENCH_PEERS); do \
	  UV_PROJECT_ENVIRONMENT=$(CURDIR)/.bench/$$p $(UV) sync --frozen -q \
	    --project benchmarks/peers/$$p || exit 1; done
	@UV_PROJECT_ENVIRONMENT=$(CURDIR)/.bench/profile $(UV) sync --frozen -q \
	  --project benchmarks/profile_env

bench-profile: setup bench-peers ## Where one prediction's time goes: stage timings, served p50, py-spy shares
	@$(PY) -m training champion >/dev/null 2>&1 && test -f feature_repo/data/route_stats.parquet \
	  || $(PY) -m training pipeline
	$(PY) -m training compile
	$(PY) -m benchmarks.profile_one $(PROFILE_ARGS)
