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
    exec(cargo().args(["build", "--workspace", "--bins"]))?;
    step("running the test suite");
    exec(
        cargo()
            .args(["test", "--workspace", "--no-fail-fast"])
            .args(args)
            .env("PROFILER_BIN", workspace_root().join("target/debug/profiler")),
    )
}
