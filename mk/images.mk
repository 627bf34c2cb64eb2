# Container images (images/*.Dockerfile) built on a private dockerd (cluster/docker.py).
# Included by the main Makefile (`-include mk/*.mk`). Needs root (dockerd, debootstrap).
#
#   make base-image   Debian bookworm base from Debian's packages (debootstrap + docker import)
#   make images       serving, drift-monitor and job images, tagged <version>-<git sha>
#
# Built images persist in .cluster/docker (the daemon's data root); a second `make images`
# reuses every cached layer. `make docker-down` stops the daemon if one was left running.

IMAGE_NAMES ?= serving drift-monitor job
# The base the images start from (a build argument); public builds use python:3.11-slim.
BASE_IMAGE  ?= taxi-serve/base:bookworm

.PHONY: docker-tools docker-up docker-down base-image images image-refs image-tag test-images \
  test-node

docker-tools: ## Install Debian's docker.io (dockerd, runc, BuildKit client) and debootstrap when missing
	@if [ ! -x /usr/sbin/dockerd ] || [ ! -x /usr/bin/docker ] || ! command -v debootstrap >/dev/null \
	    || ! command -v iptables >/dev/null; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
	    --no-install-recommends docker.io debootstrap iptables; \
	fi
	@/usr/sbin/dockerd --version

docker-up: setup docker-tools ## Start the private dockerd (socket .cluster/docker/docker.sock)
	$(PY) -m cluster.docker up

docker-down: setup ## Stop the private dockerd and restore the host (bridge, FORWARD rule)
	$(PY) -m cluster.docker down

base-image: setup docker-tools ## Build the Debian bookworm base image with debootstrap (skipped when present)
	$(PY) -m cluster.images base

# The job image carries helm (from mk/k8s.mk); the serving image is staged from a Bento.
images: setup docker-tools base-image k8s-tools ## Build the serving, drift-monitor and job images
	UV=$(UV) $(PY) -m cluster.images build --base $(BASE_IMAGE) $(IMAGE_NAMES)

image-refs: setup ## Print the image references `make images` produces at this commit
	@for n in $(IMAGE_NAMES); do $(PY) -m cluster.images ref $$n; done

image-tag: setup ## Print the tag `make images` gives every image at this commit
	@$(PY) -m cluster.images tag

# The third suite of `make test`, with test-node (root, dockerd; ~6 min of builds from scratch).
test-images: images ## Image tests: docker run of each image, parity, read-only, SIGTERM, layers
	TAXI_IMAGE_TESTS=1 $(PY) -m pytest tests/images -q $(PYTEST_ARGS)

# After the image tests in `make test` (root, dockerd and the images): a real one-node
# cluster, the images above and the dev stack's Redis and Prometheus (Debian's packages)
# loaded into the node's dockerd, then helm install, traffic, rollouts and the retrain pod.
test-node: images node-tools ## Real-node tests: install, probes, helm test, HTTP/gRPC, rollouts and disruption under load, monitoring, the retrain pod
	$(PY) -m cluster.images build --base $(BASE_IMAGE) redis prometheus
	TAXI_NODE_TESTS=1 $(PY) -m pytest tests/node -q $(PYTEST_ARGS)
