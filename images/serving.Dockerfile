# The serving image: a Bento (service code + model + locked requirements) with its compiled
# trees, run by `python -m service` (BentoML HTTP + grpc.aio in one process).
# No "# syntax" line: BuildKit would pull a frontend image, and no registry is reachable here.
# Context: staged by cluster/images.py (bento/ and store/, see cluster/bento_stage.py).
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}
ARG UV_VERSION=0.13.9
# HOME and TMPDIR on /tmp: the root filesystem is read-only in pods (/tmp is a volume).
ENV BENTOML_DO_NOT_TRACK=true PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:${PATH} HOME=/tmp BENTOML_HOME=/opt/taxi/bentoml \
    TAXI_HTTP_PORT=3000 TAXI_GRPC_PORT=50051 TAXI_HOST=0.0.0.0
# tini forwards SIGTERM and reaps zombies; LightGBM needs OpenMP (libgomp1). Installed from
# Debian only when the base lacks them.
RUN pkgs=""; command -v tini >/dev/null || pkgs="tini"; \
    ldconfig -p | grep -q libgomp.so.1 || pkgs="$pkgs libgomp1"; \
    if [ -n "$pkgs" ]; then apt-get update -qq && \
      apt-get install -y -qq --no-install-recommends $pkgs && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin; fi
# The Bento's requirements: the lock less what serving never imports (cluster/bento_stage.py:
# Feast, DuckDB, Dask, lleaves/LLVM, mypy). The grep is a guard for Bentos built otherwise.
# The lock export pins every package: --no-deps installs exactly that set. Packages' own test
# suites are dropped (tens of MB, never imported).
# The CA bundle is a BuildKit secret: mounted for this step only, never in a layer.
RUN --mount=type=secret,id=ca \
    --mount=type=bind,source=bento/env/python/requirements.txt,target=/tmp/bento-requirements.txt \
    set -eu; if [ -s /run/secrets/ca ]; then \
      export PIP_CERT=/run/secrets/ca SSL_CERT_FILE=/run/secrets/ca; fi; \
    grep -viE "^mypy==" /tmp/bento-requirements.txt \
      > /tmp/requirements.txt; \
    python3 -m venv /opt/uv && /opt/uv/bin/pip install -q --no-cache-dir "uv==${UV_VERSION}" && \
    python3 -m venv --without-pip /opt/venv && \
    /opt/uv/bin/uv pip install -q --no-cache --no-deps --python /opt/venv/bin/python \
      -r /tmp/requirements.txt && \
    rm -rf /opt/uv /tmp/requirements.txt && \
    find /opt/venv/lib/python3.11/site-packages -mindepth 2 -depth -type d -name tests \
      -exec rm -rf {} +
COPY bento/src /opt/taxi/app
COPY store /opt/taxi/bentoml
WORKDIR /opt/taxi/app
# Version and revision last: a build argument invalidates the cache of every RUN after it,
# so a new commit must not reinstall the dependencies.
ARG VERSION=0.0.0
ARG REVISION=unknown
ARG SOURCE=https://github.com/taxi-serve/taxi-serve
LABEL org.opencontainers.image.title="taxi-serve" \
      org.opencontainers.image.description="NYC taxi trip duration and fare: HTTP and gRPC" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
USER 10001:10001
EXPOSE 3000 50051
ENTRYPOINT ["tini", "--"]
# Features are loaded into Redis by the materialize job, not by each serving pod.
CMD ["python", "-m", "service", "--no-materialize"]
