# One Dockerfile, three images, each FROM scratch with one static binary: no shell, no libc, TLS
# roots compiled in, DNS resolved in Rust (hickory), run as nobody (65534).
#
# Two sources for the binaries, chosen by build target (compose: BINARIES=compiled|host):
#   compiled-<service>  compiled here, in an official Rust image (the default, for users)
#   host-<service>      copied from the host's `scripts/build-static.sh` output
#                       (target/x86_64-unknown-linux-gnu/release/), for machines without a
#                       container registry (no base image can be pulled)
# The legacy builder (no BuildKit, docker-compose v1) builds every stage that precedes its target,
# so the stages that need no pulled image come first: building a host-* target never touches the
# Rust image. For the same reason the host stages must not fail when the host binaries are absent
# (a `compiled-*` build on a clean clone runs them too): their COPYs name the binaries by wildcard
# next to something that always exists, so a missing binary copies nothing instead of failing.
# A host-* image built without the binaries has no entrypoint file and fails at start with
# "exec /<service>: no such file or directory": run scripts/build-static.sh first.
# The six final stages repeat themselves: a final stage can only copy from stages above it.
# Each has an empty /certs owned by the service user: a named volume mounted there starts with
# that owner, so the one-shot `certs` service (docker compose) can write the development CA into
# it while running as that user.

# Any Debian-based official Rust image (glibc with its static libc.a, Rust >= 1.88).
ARG RUST_IMAGE=rust:1

# ---------------------------------------------------------------- binaries from the host
FROM scratch AS host-binaries
# /empty: an always-present (empty) source for the final stages' COPY; Cargo.toml: the same here.
WORKDIR /empty
COPY Cargo.toml \
     target/x86_64-unknown-linux-gnu/release/webapp* \
     target/x86_64-unknown-linux-gnu/release/authorization-server* \
     target/x86_64-unknown-linux-gnu/release/resource-server* /bin/

FROM scratch AS host-webapp
COPY --from=host-binaries /empty/ /bin/webapp* /
COPY --from=host-binaries --chown=65534:65534 /empty/ /certs/
USER 65534:65534
ENV WEBAPP_LISTEN_ADDR=0.0.0.0:8080 LOG_FORMAT=json
EXPOSE 8080 8443
HEALTHCHECK --interval=2s --timeout=2s --start-period=5s --retries=3 CMD ["/webapp", "healthcheck"]
ENTRYPOINT ["/webapp"]

FROM scratch AS host-authorization-server
COPY --from=host-binaries /empty/ /bin/authorization-server* /
COPY --from=host-binaries --chown=65534:65534 /empty/ /certs/
USER 65534:65534
ENV AUTHORIZATION_SERVER_LISTEN_ADDR=0.0.0.0:8081 LOG_FORMAT=json
EXPOSE 8081
HEALTHCHECK --interval=2s --timeout=2s --start-period=5s --retries=3 CMD ["/authorization-server", "healthcheck"]
ENTRYPOINT ["/authorization-server"]

FROM scratch AS host-resource-server
COPY --from=host-binaries /empty/ /bin/resource-server* /
COPY --from=host-binaries --chown=65534:65534 /empty/ /certs/
USER 65534:65534
ENV RESOURCE_SERVER_LISTEN_ADDR=0.0.0.0:8082 LOG_FORMAT=json
EXPOSE 8082
HEALTHCHECK --interval=2s --timeout=2s --start-period=5s --retries=3 CMD ["/resource-server", "healthcheck"]
ENTRYPOINT ["/resource-server"]

# ---------------------------------------------------------------- binaries compiled in the build
FROM ${RUST_IMAGE} AS compile
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY crates crates
COPY tests tests
RUN target="$(uname -m)-unknown-linux-gnu" \
 && RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --release --locked --target "$target" \
      -p webapp -p authorization-server -p resource-server \
 && mkdir /out \
 && cp "target/$target/release/webapp" "target/$target/release/authorization-server" \
       "target/$target/release/resource-server" /out/

FROM scratch AS compiled-webapp
COPY --from=compile /out/webapp /webapp
COPY --from=host-binaries --chown=65534:65534 /empty/ /certs/
USER 65534:65534
ENV WEBAPP_LISTEN_ADDR=0.0.0.0:8080 LOG_FORMAT=json
EXPOSE 8080 8443
HEALTHCHECK --interval=2s --timeout=2s --start-period=5s --retries=3 CMD ["/webapp", "healthcheck"]
ENTRYPOINT ["/webapp"]

FROM scratch AS compiled-authorization-server
COPY --from=compile /out/authorization-server /authorization-server
COPY --from=host-binaries --chown=65534:65534 /empty/ /certs/
USER 65534:65534
ENV AUTHORIZATION_SERVER_LISTEN_ADDR=0.0.0.0:8081 LOG_FORMAT=json
EXPOSE 8081
HEALTHCHECK --interval=2s --timeout=2s --start-period=5s --retries=3 CMD ["/authorization-server", "healthcheck"]
ENTRYPOINT ["/authorization-server"]

FROM scratch AS compiled-resource-server
COPY --from=compile /out/resource-server /resource-server
COPY --from=host-binaries --chown=65534:65534 /empty/ /certs/
USER 65534:65534
ENV RESOURCE_SERVER_LISTEN_ADDR=0.0.0.0:8082 LOG_FORMAT=json
EXPOSE 8082
HEALTHCHECK --interval=2s --timeout=2s --start-period=5s --retries=3 CMD ["/resource-server", "healthcheck"]
ENTRYPOINT ["/resource-server"]
