# The job image: pipeline, materialize, compile and retrain (python -m training / retrain),
# with helm (rollouts), binutils (ld links the compiled trees) and the bundled sample data.
# No "# syntax" line: BuildKit would pull a frontend image, and no registry is reachable here.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}
ARG UV_VERSION=0.13.9
ENV BENTOML_DO_NOT_TRACK=true PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:${PATH} HOME=/tmp BENTOML_HOME=/models/bentoml
# tini (PID 1), binutils (`ld` links the compiled trees), libgomp1 (LightGBM's OpenMP), from
# Debian when the base lacks them.
RUN pkgs=""; command -v tini >/dev/null || pkgs="tini"; command -v ld >/dev/null || \
      pkgs="$pkgs binutils"; ldconfig -p | grep -q libgomp.so.1 || pkgs="$pkgs libgomp1"; \
    if [ -n "$pkgs" ]; then apt-get update -qq && \
      apt-get install -y -qq --no-install-recommends $pkgs && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin; fi
RUN --mount=type=secret,id=ca \
    --mount=type=bind,source=requirements.txt,target=/tmp/requirements.txt \
    set -eu; if [ -s /run/secrets/ca ]; then \
      export PIP_CERT=/run/secrets/ca SSL_CERT_FILE=/run/secrets/ca; fi; \
    python3 -m venv /opt/uv && /opt/uv/bin/pip install -q --no-cache-dir "uv==${UV_VERSION}" && \
    python3 -m venv --without-pip /opt/venv && \
    /opt/uv/bin/uv pip install -q --no-cache --no-deps --python /opt/venv/bin/python \
      -r /tmp/requirements.txt && \
    rm -rf /opt/uv && \
    find /opt/venv/lib/python3.11/site-packages -mindepth 2 -depth -type d -name tests \
      -exec rm -rf {} +
COPY helm-bin /usr/local/bin/helm
COPY --chown=0:0 . /opt/taxi/app
WORKDIR /opt/taxi/app
# Version and revision last: a build argument invalidates the cache of every RUN after it,
# so a new commit must not reinstall the dependencies.
ARG VERSION=0.0.0
ARG REVISION=unknown
ARG SOURCE=https://github.com/taxi-serve/taxi-serve
LABEL org.opencontainers.image.title="taxi-serve-job" \
      org.opencontainers.image.description="taxi-serve pipeline, materialize and retrain jobs" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.version="${VERSION}"
USER 10001:10001
ENTRYPOINT ["tini", "--"]
CMD ["python", "-m", "retrain", "--help"]
