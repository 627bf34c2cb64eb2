# Retrain-and-rollout job: its tools and tests. Included by the main Makefile.
#
# The canary tests run a real Prometheus on 127.0.0.1 (Debian's `prometheus` package). This
# target installs it only when it is missing (idempotent; apt needs root), and `make test`
# depends on it. Named apart from mk/grafana.mk's targets so the two never clash.

.PHONY: retrain-tools test-retrain retrain-run

retrain-tools: ## Install what the retrain tests need (Debian's prometheus) when missing
	@command -v prometheus >/dev/null || { \
	  command -v apt-get >/dev/null || { echo "prometheus missing and no apt-get" >&2; exit 1; }; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends prometheus; }
	@prometheus --version 2>&1 | head -n 1

test: retrain-tools

test-retrain: setup k8s-tools retrain-tools ## Retrain job tests: decide/gate, real drift, canary, blue-green, crash
	OMP_NUM_THREADS=1 $(PY) -m pytest tests/retrain -q $(PYTEST_ARGS)

retrain-run: setup ## Run the retrain job once (python -m retrain run; ARGS=--dry-run / --force)
	$(PY) -m retrain run $(ARGS)
