# kmirror as a container image: `docker build -t kmirror .`, then run it with the flags of
# `kmirror mirror` (see README: "Running on several hosts").
FROM rust:1-bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      cmake pkg-config libssl-dev libclang-dev clang librocksdb-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --no-default-features --bin kmirror

FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      librocksdb7.8 libssl3 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home /var/lib/kmirror --create-home kmirror
COPY --from=build /src/target/release/kmirror /usr/local/bin/kmirror
USER kmirror
VOLUME /var/lib/kmirror
EXPOSE 9464
ENTRYPOINT ["kmirror"]
CMD ["--help"]
