# Container image of profiler: builds the eBPF probes and a static binary (musl, the probes
# embedded), then ships that binary alone in an image with nothing else.
#
#   docker build -t profiler .
#   docker run --rm -it --privileged --pid=host \
#       -v /sys/fs/cgroup:/sys/fs/cgroup:ro profiler          # the host's tasks
#   docker run --rm --privileged --pid=host profiler -b -o -n 5   # text output
#
# The toolchains are pinned: the stable Rust of the build image, and the nightly that builds
# the probes (its LLVM, 22, must match the llvm-22-dev bpf-linker is built against).
FROM rust:1.95-bookworm AS build
ENV PROFILER_EBPF_TOOLCHAIN=nightly-2026-05-20
WORKDIR /src
COPY . .
# `cargo xtask setup` installs what the probes need (the nightly's rust-src, LLVM dev packages
# matching the nightly's LLVM, bpf-linker) and says what to do where it cannot: the base image's
# apt sources must offer llvm-N-dev for that N (add LLVM's own apt repository where they do not).
# `cargo xtask dist` adds the musl target and builds the static binary.
RUN cargo xtask setup && cargo xtask dist

FROM scratch
COPY --from=build /src/target/x86_64-unknown-linux-musl/release/profiler /profiler
ENTRYPOINT ["/profiler"]
