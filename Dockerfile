# mcp-server with every backend compiled in; defaults to in-memory backends.
#   docker build -t mcp-server .
#   docker run -p 127.0.0.1:8787:8787 -v mcp-files:/data mcp-server
# (a bind mount of a host directory must be writable by uid 10001, or add --user "$(id -u)")
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release -p mcp-server --bin mcp-server

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /data mcp \
    && mkdir -p /data && chown mcp /data
COPY --from=build /src/target/release/mcp-server /usr/local/bin/mcp-server
USER mcp
WORKDIR /data
EXPOSE 8787
# Outside loopback the server needs API keys: mount a config with [[keys]] (see README).
ENV RUST_LOG=info
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8787/health || exit 1
ENTRYPOINT ["mcp-server"]
CMD ["--listen", "0.0.0.0:8787", "--root", "/data"]
