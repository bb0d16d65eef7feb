//! `cargo xtask test`: every test, unit and integration, against the real kernel.

use anyhow::bail;

use crate::exec::{cargo, exec, is_root, step, workspace_root};
use crate::setup;

pub fn test(args: &[String]) -> anyhow::Result<()> {
    setup::toolchain()?;
    if !is_root() {
        bail!(
            "the tests load eBPF programs and query taskstats against the real kernel, which needs root: \
             run `sudo -E cargo xtask test`"
        );
    }
    setup::test_tools()?;
    // The eBPF crate only builds for its own target (profiler's build.rs does that).
    exec(cargo().args([
        "build",
        "--workspace",
        "--exclude",
        "profiler-ebpf",
        "--bins",
    ]))?;
    step("running the test suite");
    exec(
        cargo()
            .args([
                "test",
                "--workspace",
                "--exclude",
                "profiler-ebpf",
                "--no-fail-fast",
            ])
            .args(args)
            .env(
                "PROFILER_BIN",
                workspace_root().join("target/debug/profiler"),
            ),
    )
}
