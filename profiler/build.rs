//! Builds the eBPF probes (`profiler-ebpf`) for bpfel-unknown-none and puts the object in
//! OUT_DIR, where `source::ebpf` embeds it. Needs the nightly toolchain's rust-src and
//! bpf-linker: `cargo xtask setup` installs both.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const EBPF_TARGET: &str = "bpfel-unknown-none";
const OBJECT: &str = "profiler-probes";

fn main() {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir
        .parent()
        .expect("profiler/ lives in the workspace root");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    for dir in [
        "profiler-ebpf/src",
        "profiler-ebpf/Cargo.toml",
        "profiler-common/src",
        "profiler-common/Cargo.toml",
    ] {
        println!("cargo:rerun-if-changed={}", workspace.join(dir).display());
    }
    println!("cargo:rerun-if-env-changed=PROFILER_EBPF_TOOLCHAIN");

    let toolchain = env::var("PROFILER_EBPF_TOOLCHAIN").unwrap_or_else(|_| "nightly".into());
    let target_dir = workspace.join("target/ebpf");
    let arch = env::var("CARGO_CFG_TARGET_ARCH").expect("cargo sets CARGO_CFG_TARGET_ARCH");
    let rustflags = [
        format!("--cfg=bpf_target_arch=\"{arch}\""),
        "-Cdebuginfo=2".into(),
        "-Clink-arg=--btf".into(),
    ]
    .join("\x1f");

    let mut cmd = Command::new("rustup");
    cmd.args([
        "run",
        &toolchain,
        "cargo",
        "build",
        "--release",
        "--package",
        "profiler-ebpf",
    ])
    .args([
        "--target",
        EBPF_TARGET,
        "-Z",
        "build-std=core",
        "--target-dir",
    ])
    .arg(&target_dir)
    .current_dir(workspace)
    .env("CARGO_ENCODED_RUSTFLAGS", rustflags);
    // The outer build's compiler settings must not leak into the eBPF build (clippy sets a wrapper).
    for var in [
        "RUSTC",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTUP_TOOLCHAIN",
        "RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd.status().unwrap_or_else(|e| {
        panic!("cannot run `rustup run {toolchain} cargo` to build the eBPF probes ({e}); run `cargo xtask setup`")
    });
    if !status.success() {
        panic!(
            "building the eBPF probes failed ({status}); if the toolchain is incomplete (rust-src of \
             {toolchain}, bpf-linker), `cargo xtask setup` installs it"
        );
    }
    let built = target_dir.join(EBPF_TARGET).join("release").join(OBJECT);
    copy_if_changed(&built, &out_dir.join(format!("{OBJECT}.o")));
}

/// Copies only when the bytes differ, so a rebuilt object always replaces the embedded one
/// and an unchanged one keeps its timestamp.
fn copy_if_changed(from: &Path, to: &Path) {
    let new = std::fs::read(from).unwrap_or_else(|e| panic!("reading {}: {e}", from.display()));
    if std::fs::read(to).ok().as_deref() != Some(&new[..]) {
        std::fs::write(to, &new).unwrap_or_else(|e| panic!("writing {}: {e}", to.display()));
    }
}
