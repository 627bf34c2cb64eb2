# Dashboards and Prometheus rules (grafana/): generation, staleness check, previews, and the
# Prometheus tools the tests need. Included by the main Makefile (`-include mk/*.mk`).

PREVIEW_DIR     ?= grafana/previews
# Seconds of load before the previews are drawn (the plots show the last few minutes).
PREVIEW_SECONDS ?= 150
# Minutes of history plotted when PROMETHEUS_URL points at a Prometheus of your own.
PREVIEW_MINUTES ?= 5

.PHONY: prometheus-tools dashboards dashboards-check dashboards-preview

PROM_HOME       := $(CURDIR)/.tools/prometheus
PROM_BIN        := $(CURDIR)/.tools/bin

# `make test` needs promtool (rule checks) and prometheus (the live dashboard test).
test: prometheus-tools

prometheus-tools: $(PROM_BIN)/prometheus $(PROM_BIN)/promtool ## Install prometheus + promtool into .tools/bin (Debian's package, unpacked: no system service)
	@$(PROM_BIN)/promtool --version 2>&1 | head -n 1

# The binaries already on PATH when there are; otherwise Debian's `prometheus` package is
# downloaded and unpacked into .tools/prometheus, never installed: no systemd service, no
# user, nothing outside the checkout. Only a missing package list needs root (apt-get update).
$(PROM_BIN)/prometheus $(PROM_BIN)/promtool &:
	@mkdir -p $(PROM_BIN)
	@if command -v prometheus >/dev/null && command -v promtool >/dev/null; then \
	  ln -sf "$$(command -v prometheus)" $(PROM_BIN)/prometheus; \
	  ln -sf "$$(command -v promtool)" $(PROM_BIN)/promtool; \
	else \
	  echo "unpacking Debian's prometheus package into .tools/prometheus (no service is installed)"; \
	  rm -rf $(PROM_HOME) && mkdir -p $(PROM_HOME)/deb && cd $(PROM_HOME)/deb && \
	  { apt-get download -q=2 prometheus 2>/dev/null || { \
	      SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); $$SUDO apt-get update -qq && \
	      apt-get download -q=2 prometheus; }; } && \
	  dpkg-deb -x prometheus_*.deb $(PROM_HOME) && rm -rf $(PROM_HOME)/deb && \
	  ln -sf $(PROM_HOME)/usr/bin/prometheus $(PROM_BIN)/prometheus && \
	  ln -sf $(PROM_HOME)/usr/bin/promtool $(PROM_BIN)/promtool; \
	fi
	@test -x $(PROM_BIN)/prometheus && test -x $(PROM_BIN)/promtool

dashboards: setup ## Generate the Grafana dashboards and Prometheus rules into the chart and k8s/
	$(PY) -m grafana generate

dashboards-check: setup ## Fail when the committed dashboards/rules differ from grafana/ code
	$(PY) -m grafana check

dashboards-preview: setup prometheus-tools ## Render each dashboard to grafana/previews/*.png (PREVIEW_DIR=...) from a live Prometheus (PROMETHEUS_URL=... or a local stack under load)
	@mkdir -p $(PREVIEW_DIR)
	@if [ -n "$(PROMETHEUS_URL)" ]; then \
	  $(PY) -m grafana preview --url "$(PROMETHEUS_URL)" --out $(PREVIEW_DIR) --minutes $(PREVIEW_MINUTES); \
	else \
	  TAXI_PREVIEW_DIR=$(abspath $(PREVIEW_DIR)) TAXI_LOAD_SECONDS=$(PREVIEW_SECONDS) \
	  TAXI_PREVIEW_SECONDS=$(PREVIEW_SECONDS) \
	  .venv/bin/pytest tests/grafana/test_live_prometheus.py -q -k previews; \
	fi
	@ls -l $(PREVIEW_DIR)/*.png
