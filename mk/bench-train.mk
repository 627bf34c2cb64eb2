# Training throughput and memory (docs/training-scale.md). Included by the main Makefile.
#
# Not part of `make test`: it needs real TLC months (default: the shared eight months next to
# this checkout) and minutes of CPU. The scale run tiles them TILE times (replicated real rows,
# marked with a `replica` column) and runs under an address-space cap (prlimit --as, i.e.
# ulimit -v): an RSS cap needs a memory cgroup, and here cgroup v2 has no memory controller,
# the v1 memory hierarchy belongs to the machine's process manager and there is no systemd
# for `systemd-run -p MemoryMax`. The address space is stricter than RSS (it counts reserved,
# untouched memory), so MALLOC_ARENA_MAX=2 keeps glibc from reserving 64 MiB per thread.

TRAIN_DATA ?= $(CURDIR)/../shared/data/tlc
TILE ?= 10
TRAIN_CAP ?= 4G
BENCH_TRAIN_DIR ?= artifacts/bench-train

.PHONY: bench-train

bench-train: setup ## Training rows/s per stage and peak memory: shared months, then TILE x them under TRAIN_CAP
	@test -d "$(TRAIN_DATA)" || { echo "bench-train: no trip data at $(TRAIN_DATA); set" \
	  "TRAIN_DATA=<folder of TLC *tripdata*.parquet> (python -m training download" \
	  "fetches months). Nothing measured." >&2; exit 2; }
	@mkdir -p $(BENCH_TRAIN_DIR)
	$(PY) -m benchmarks.train_bench --data "$(TRAIN_DATA)" --json $(BENCH_TRAIN_DIR)/months.json
	MALLOC_ARENA_MAX=2 prlimit --as=$$(numfmt --from=iec $(TRAIN_CAP)) -- $(PY) -m benchmarks.train_bench \
	  --data "$(TRAIN_DATA)" --tile $(TILE) --json $(BENCH_TRAIN_DIR)/tiled.json
