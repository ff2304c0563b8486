# syntax=docker/dockerfile:1
# The kairosdb-rs server image: one static-ish binary on Debian slim, run as a non-root user,
# data in the /data volume. docs/deploy.md walks through using it; crates/server/tests/deploy.rs
# checks the facts below (stages, USER, VOLUME, EXPOSE, HEALTHCHECK), since no Docker engine
# or hadolint runs where the tests run.
#
#   docker build -t kairosdb-rs .
#   docker run -p 8080:8080 -p 4242:4242 -v kairosdb-data:/data kairosdb-rs
#
# Every setting is a KAIROSDB_* variable (README, config/example.toml), e.g.
#   -e KAIROSDB_DATASTORE=cassandra -e KAIROSDB_CASSANDRA_CONTACT_POINTS=cassandra:9042
#   -e KAIROSDB_SERVER_TYPE=INGEST

ARG RUST_VERSION=1.88
ARG DEBIAN_RELEASE=bookworm

# --- build: the release binary, with the default features (jemalloc, cassandra) ----------
FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS build
# tikv-jemalloc-sys builds jemalloc with make (the slim image has gcc, not make).
RUN apt-get update \
    && apt-get install -y --no-install-recommends make \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates ./crates
COPY config ./config
# The registry and target caches survive between builds (BuildKit); the binary is copied out
# of the cached target dir because a cache mount is not part of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p kairosdb-server \
    && install -D -m 0755 target/release/kairosdb /out/kairosdb

# --- runtime: glibc and the binary, nothing else ------------------------------------------
FROM debian:${DEBIAN_RELEASE}-slim AS runtime
# A fixed uid/gid, so Kubernetes' runAsUser/fsGroup (deploy/helm) and volume owners match.
RUN groupadd --system --gid 10001 kairosdb \
    && useradd --system --uid 10001 --gid 10001 --home-dir /data --shell /usr/sbin/nologin kairosdb \
    && install -d -o 10001 -g 10001 -m 0750 /data
COPY --from=build /out/kairosdb /usr/local/bin/kairosdb
COPY config/example.toml /etc/kairosdb/example.toml

# The embedded engine's files (or, in Cassandra mode, the local delivery queue).
ENV KAIROSDB_DATA_DIR=/data \
    KAIROSDB_BIND_ADDRESS=0.0.0.0:8080 \
    KAIROSDB_TELNET_BIND_ADDRESS=0.0.0.0:4242 \
    RUST_LOG=info
VOLUME ["/data"]
WORKDIR /data
# HTTP (REST API, /metrics, /health/*) and telnet.
EXPOSE 8080 4242
USER 10001:10001

# Ready = storage answers (/health/ready): the embedded engine is open and not poisoned, or
# Cassandra is reachable. No curl in the image: bash's /dev/tcp sends the request.
# Keep the port in step with KAIROSDB_BIND_ADDRESS when changing it.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /health/ready HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]

# SIGTERM: stop accepting, finish in-flight requests, sync the WAL, exit 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/kairosdb"]
