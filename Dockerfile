# sluice container image.
#
#   podman build --format docker -t sluice .      (or: docker build -t sluice .)
#   podman run --rm -p 8080:8080 -v ./myconf:/etc/sluice:ro sluice
#
# See docs/deployment.md. tools/docker-smoke.sh builds this image with podman
# and tests it (request, SIGHUP reload, SIGTERM drain and exit 0, HEALTHCHECK).
# Build with `--format docker` under podman/buildah: the OCI image format has
# no HEALTHCHECK and buildah drops it with a warning.

# ---------------------------------------------------------------------------
# Build stage on Debian 13, where llhttp >= 9.2.1 is a plain package.
FROM debian:trixie-slim AS build
# --error-on=any: without it a failed download leaves old or no lists and the
# install below can still "succeed"; a broken network must fail the build.
RUN apt-get update --error-on=any \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      g++ cmake make pkg-config libssl-dev libyaml-cpp-dev libllhttp-dev libc-ares-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY cmake cmake
COPY src src
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSLUICE_BUILD_TESTS=OFF \
 && cmake --build build -j"$(nproc)" \
 && strip build/src/sluice \
 && build/src/sluice --version

# ---------------------------------------------------------------------------
# Runtime stage: only the shared libraries sluice links against
# (libssl3t64 is for TLS, libc-ares2 for DNS; the rest is what `ldd sluice` lists today).
FROM debian:trixie-slim
RUN apt-get update --error-on=any \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libssl3t64 libyaml-cpp0.8 libllhttp9.2 libc-ares2 \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
 && groupadd --system --gid 10001 sluice \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin sluice
COPY --from=build /src/build/src/sluice /usr/local/bin/sluice
# The default configuration; mount your own directory over /etc/sluice
# (a directory, not the single file, so that edits are seen on reload).
COPY deploy/docker/sluice.yaml /etc/sluice/sluice.yaml
# Fail the build, not the first start, when a library is missing or the
# shipped configuration is invalid.
RUN ! ldd /usr/local/bin/sluice | grep 'not found' \
 && /usr/local/bin/sluice -t -c /etc/sluice/sluice.yaml
# A numeric user, so that Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
# 8080: traffic. 9901: the admin listener (/healthz, /ready) of the default
# configuration, for orchestrator probes; publish it only to the orchestrator.
EXPOSE 8080 9901
# SIGTERM: fail readiness, keep serving for drain_delay, drain in-flight
# requests (bounded by shutdown_timeout), exit 0. Give the container at least
# drain_delay + shutdown_timeout to stop (docker/podman stop -t SECONDS).
STOPSIGNAL SIGTERM
# `sluice health` GETs /healthz on the config's admin address (2 s timeout):
# no curl needed in the image.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["/usr/local/bin/sluice", "health", "-c", "/etc/sluice/sluice.yaml"]
# The master runs in the foreground as PID 1 and receives the signals
# directly: error log on stderr, access log on stdout.
ENTRYPOINT ["/usr/local/bin/sluice"]
CMD ["-c", "/etc/sluice/sluice.yaml"]
