# Prometheus for the development stack (cluster/devstack/) on machines that reach no image registry:
# Debian's prometheus on the project's base image. Debian builds it without Kubernetes service
# discovery, so the image also carries cluster/devstack/pod_sd.py (run as a sidecar with Debian's
# python3-kubernetes), which lists the annotated pods through the API into a file_sd file.
# Users keep the public image (k8s/prometheus/deployment.yaml).
# No "# syntax" line: BuildKit would pull a frontend image, and no registry is reachable here.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
ARG VERSION=0.0.0
ARG REVISION=unknown
ARG SOURCE=https://github.com/taxi-serve/taxi-serve
LABEL org.opencontainers.image.title="taxi-serve-dev-prometheus" \
      org.opencontainers.image.description="Debian's prometheus and a pod discovery sidecar for the taxi-serve dev stack" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.version="${VERSION}"
RUN apt-get update -qq && \
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      prometheus python3-kubernetes && \
    rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb
COPY pod_sd.py /usr/local/lib/taxi-serve/pod_sd.py
USER 65534:65534
EXPOSE 9090
# Arguments follow (k8s/prometheus/deployment.yaml passes --config.file and the storage flags).
ENTRYPOINT ["/usr/bin/prometheus"]
