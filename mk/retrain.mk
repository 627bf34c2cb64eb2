# Retrain-and-rollout job: its tests and a one-off run. Included by the main Makefile.
# The canary as it runs in a cluster (the CronJob's pod, the in-cluster Prometheus) is in
# tests/node/test_retrain_pod.py (`make test-node`).

.PHONY: test-retrain retrain-run

test-retrain: setup k8s-tools ## Retrain job tests: decide/gate, real drift, blue-green, crash recovery
	OMP_NUM_THREADS=1 $(PY) -m pytest tests/retrain -q $(PYTEST_ARGS)

retrain-run: setup ## Run the retrain job once (python -m retrain run; ARGS=--dry-run / --force)
	$(PY) -m retrain run $(ARGS)
