# Almanac: build the release binary, then run it on a slim base.
FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libpq-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked && cp target/release/almanac /usr/local/bin/almanac

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libpq5 ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* && useradd --system --home /var/lib/almanac almanac \
    && mkdir -p /var/lib/almanac && chown almanac /var/lib/almanac
COPY --from=build /usr/local/bin/almanac /usr/local/bin/almanac
USER almanac
WORKDIR /var/lib/almanac
EXPOSE 8977
ENV ALMANAC_BIND=0.0.0.0:8977
HEALTHCHECK --interval=10s --timeout=3s CMD curl -fsS http://127.0.0.1:8977/healthcheck || exit 1
ENTRYPOINT ["almanac"]
CMD ["serve"]
