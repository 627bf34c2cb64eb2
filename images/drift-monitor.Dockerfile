# The drift monitor image: alibi-detect (BSL 1.1) lives in this image only, from its own lock.
# No "# syntax" line: BuildKit would pull a frontend image, and no registry is reachable here.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}
ARG UV_VERSION=0.13.9
ENV BENTOML_DO_NOT_TRACK=true PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:${PATH} HOME=/tmp MPLCONFIGDIR=/tmp/matplotlib OMP_NUM_THREADS=1
RUN command -v tini >/dev/null || { apt-get update -qq && \
      apt-get install -y -qq --no-install-recommends tini && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin; }
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
COPY drift_monitor /opt/taxi/app/drift_monitor
WORKDIR /opt/taxi/app
# Version and revision last: a build argument invalidates the cache of every RUN after it,
# so a new commit must not reinstall the dependencies.
ARG VERSION=0.0.0
ARG REVISION=unknown
ARG SOURCE=https://github.com/taxi-serve/taxi-serve
LABEL org.opencontainers.image.title="taxi-serve-drift-monitor" \
      org.opencontainers.image.description="taxi-serve drift monitor (Alibi Detect)" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.version="${VERSION}"
USER 10001:10001
EXPOSE 9102
ENTRYPOINT ["tini", "--"]
CMD ["python", "-m", "drift_monitor", "run"]
