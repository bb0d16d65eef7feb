//! `cargo xtask lint`: rustfmt, clippy on the host crates, and clippy on the eBPF probes for
//! their own target (with the nightly toolchain that builds them), all with warnings as errors.

use std::process::Command;

use crate::exec::{cargo, exec, step, workspace_root};
use crate::setup;

pub fn lint() -> anyhow::Result<()> {
    setup::toolchain()?;
    step("rustfmt --check");
    exec(cargo().args(["fmt", "--all", "--", "--check"]))?;
    step("clippy, host crates");
    exec(cargo().args(["clippy", "--all-targets", "--", "-D", "warnings"]))?;

    setup::ensure_component("clippy", "lints the eBPF probes")?;
    step("clippy, eBPF probes (bpfel-unknown-none)");
    let arch = std::env::consts::ARCH;
    let mut cmd = Command::new("rustup");
    cmd.args([
        "run",
        &setup::ebpf_toolchain(),
        "cargo",
        "clippy",
        "--package",
        "profiler-ebpf",
    ])
    .args(["--target", "bpfel-unknown-none", "-Z", "build-std=core"])
    .arg("--target-dir")
    .arg(workspace_root().join("target/ebpf-clippy"))
    .args(["--", "-D", "warnings"])
    .current_dir(workspace_root())
    .env(
        "CARGO_ENCODED_RUSTFLAGS",
        format!("--cfg=bpf_target_arch=\"{arch}\""),
    )
    .env_remove("RUSTUP_TOOLCHAIN")
    .env_remove("RUSTC")
    .env_remove("RUSTFLAGS");
    exec(&mut cmd)
}
