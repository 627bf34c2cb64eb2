# Drift monitor: its own locked Python environment in drift_monitor/.venv (alibi-detect needs
# numpy<2, serving needs numpy>=2; alibi-detect is BSL 1.1 and stays out of every other env).
# Included by the main Makefile (`-include mk/*.mk`).

DRIFT_PY := drift_monitor/.venv/bin/python

.PHONY: drift-setup test-drift drift-bench drift-monitor

drift-setup: drift_monitor/.venv/.synced ## Install the drift monitor's locked environment into drift_monitor/.venv

drift_monitor/.venv/.synced: drift_monitor/pyproject.toml drift_monitor/uv.lock | $(filter /%,$(UV))
	$(UV) sync --frozen --project drift_monitor
	@touch $@

test-drift: drift-setup ## Run the drift monitor's tests (real Redis, alibi-detect, HTTP) in its env
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(DRIFT_PY) -m pytest -c drift_monitor/pyproject.toml \
	  --rootdir drift_monitor drift_monitor/tests $(PYTEST_ARGS)

drift-bench: drift-setup ## Time drift evaluation of a 1,000-row window (median/p95; DRIFT_BENCH_ARGS=...)
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(DRIFT_PY) -m drift_monitor.bench $(DRIFT_BENCH_ARGS)

drift-monitor: drift-setup ## Run the drift monitor (/metrics, /healthz on TAXI_DRIFT_PORT, default 9102)
	$(DRIFT_PY) -m drift_monitor run
