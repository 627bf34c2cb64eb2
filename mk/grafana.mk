# Dashboards and Prometheus rules (grafana/): generation, staleness check, previews, and the
# Prometheus tools the tests need. Included by the main Makefile (`-include mk/*.mk`).

PREVIEW_DIR     ?= grafana/previews
# Seconds of load before the previews are drawn (the plots show the last few minutes).
PREVIEW_SECONDS ?= 150
# Minutes of history plotted when PROMETHEUS_URL points at a Prometheus of your own.
PREVIEW_MINUTES ?= 5

.PHONY: prometheus-tools dashboards dashboards-check dashboards-preview

# `make test` needs promtool (rule checks) and prometheus (the live dashboard test).
test: prometheus-tools

prometheus-tools: ## Install prometheus + promtool (Debian's `prometheus` package) when missing
	@if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends prometheus; \
	fi
	@promtool --version 2>&1 | head -n 1

dashboards: setup ## Generate the Grafana dashboards and Prometheus rules into the chart and k8s/
	$(PY) -m grafana generate

dashboards-check: setup ## Fail when the committed dashboards/rules differ from grafana/ code
	$(PY) -m grafana check

dashboards-preview: setup prometheus-tools ## Render each dashboard to $(PREVIEW_DIR)/*.png from a live Prometheus (PROMETHEUS_URL=... or a local stack under load)
	@mkdir -p $(PREVIEW_DIR)
	@if [ -n "$(PROMETHEUS_URL)" ]; then \
	  $(PY) -m grafana preview --url "$(PROMETHEUS_URL)" --out $(PREVIEW_DIR) --minutes $(PREVIEW_MINUTES); \
	else \
	  TAXI_PREVIEW_DIR=$(abspath $(PREVIEW_DIR)) TAXI_LOAD_SECONDS=$(PREVIEW_SECONDS) \
	  TAXI_PREVIEW_SECONDS=$(PREVIEW_SECONDS) \
	  .venv/bin/pytest tests/grafana/test_live_prometheus.py -q -k previews; \
	fi
	@ls -l $(PREVIEW_DIR)/*.png
