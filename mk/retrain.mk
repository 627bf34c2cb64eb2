# Retrain-and-rollout job: its tools and tests. Included by the main Makefile.
#
# The canary tests run a real Prometheus on 127.0.0.1: the one mk/grafana.mk puts in
# .tools/bin (prometheus-tools). `make test` depends on it.

.PHONY: retrain-tools test-retrain retrain-run

retrain-tools: prometheus-tools ## Install what the retrain tests need (prometheus into .tools/bin)

test: retrain-tools

test-retrain: setup k8s-tools retrain-tools ## Retrain job tests: decide/gate, real drift, canary, blue-green, crash
	OMP_NUM_THREADS=1 $(PY) -m pytest tests/retrain -q $(PYTEST_ARGS)

retrain-run: setup ## Run the retrain job once (python -m retrain run; ARGS=--dry-run / --force)
	$(PY) -m retrain run $(ARGS)
