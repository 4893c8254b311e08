# sluice container image (draft: the tested build, HEALTHCHECK and admin
# endpoint come with the deployment work; see docs/status.md).
#
# Build stage on Debian 13, where llhttp >= 9.2.1 is a plain package.
FROM debian:trixie-slim AS build
RUN apt-get update --error-on=any \
 && apt-get install -y --no-install-recommends \
      g++ cmake pkg-config libssl-dev libyaml-cpp-dev libllhttp-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY cmake cmake
COPY src src
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSLUICE_BUILD_TESTS=OFF \
 && cmake --build build -j"$(nproc)" \
 && strip build/src/sluice

# Runtime stage: only the shared libraries sluice links against.
FROM debian:trixie-slim
RUN apt-get update --error-on=any \
 && apt-get install -y --no-install-recommends libssl3t64 libyaml-cpp0.8 libllhttp9.2 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --no-create-home --shell /usr/sbin/nologin sluice
COPY --from=build /src/build/src/sluice /usr/local/bin/sluice
COPY conf/sluice.yaml /etc/sluice/sluice.yaml
USER sluice
EXPOSE 8080
# SIGTERM drains in-flight requests before exiting (bounded by shutdown_timeout).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/sluice"]
CMD ["-c", "/etc/sluice/sluice.yaml"]
