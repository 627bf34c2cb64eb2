# Redis for the development stack (k8s/ and the chart's redis.dev) on machines that reach no
# image registry: Debian's redis-server on the project's base image. Users keep the public
# redis image (the default in values.yaml and k8s/redis.yaml).
# No "# syntax" line: BuildKit would pull a frontend image, and no registry is reachable here.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
ARG VERSION=0.0.0
ARG REVISION=unknown
ARG SOURCE=https://github.com/taxi-serve/taxi-serve
LABEL org.opencontainers.image.title="taxi-serve-dev-redis" \
      org.opencontainers.image.description="Debian's redis-server for the taxi-serve dev stack" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.version="${VERSION}"
RUN apt-get update -qq && \
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      redis-server redis-tools && \
    rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb
# The working directory is where a save would go; the chart mounts an emptyDir there.
WORKDIR /data
USER 10001:10001
EXPOSE 6379
# Arguments follow (the chart passes --save "" --appendonly no --protected-mode no).
ENTRYPOINT ["redis-server"]
