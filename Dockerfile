# Container image of profiler: builds the eBPF probes and the binary, then ships the binary
# alone (it embeds the probes) on a small Debian base.
#
#   docker build -t profiler .
#   docker run --rm -it --privileged --pid=host profiler            # the host's tasks
#   docker run --rm -it --privileged --pid=host profiler -b -o -n 5 # text output
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# `cargo xtask setup` installs what the probes need (nightly rust-src, LLVM dev packages matching
# the nightly's LLVM, bpf-linker) and says what to do where it cannot: the base image's apt
# sources must offer llvm-N-dev for that N (add LLVM's own apt repository where they do not).
RUN cargo xtask setup && cargo build --release --package profiler --bin profiler

FROM debian:bookworm-slim
COPY --from=build /src/target/release/profiler /usr/local/bin/profiler
ENTRYPOINT ["/usr/local/bin/profiler"]
