//! `cargo xtask test`: every test, unit and integration, against the real kernel, then the VM
//! checks on other kernels (`cargo xtask vmtest`).

use anyhow::bail;

use crate::exec::{cargo, exec, is_root, step, workspace_root};
use crate::{dist, setup, vmtest};

pub fn test(args: &[String]) -> anyhow::Result<()> {
    setup::toolchain()?;
    if !is_root() {
        bail!(
            "the tests load eBPF programs and query taskstats against the real kernel, which needs root: \
             run `sudo -E cargo xtask test`"
        );
    }
    setup::test_tools()?;
    let engines = setup::container_engines();
    if let Err(why) = &engines {
        step(&format!("the real-container tests will be skipped: {why}"));
    }
    // The real-container tests put the static binary in an image with no libc.
    let static_bin = dist::dist()?;
    // The eBPF crate only builds for its own target (profiler's build.rs does that).
    exec(cargo().args([
        "build",
        "--workspace",
        "--exclude",
        "profiler-ebpf",
        "--bins",
    ]))?;
    step("running the test suite");
    let mut cmd = cargo();
    cmd.args([
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
    )
    .env("PROFILER_STATIC_BIN", &static_bin)
    // The binary reads its config file at start: not the settings of whoever runs the tests
    // (an empty directory: every setting at its default).
    .env(
        "XDG_CONFIG_HOME",
        workspace_root().join("target/test-config-home"),
    );
    if let Err(why) = engines {
        cmd.env("PROFILER_ENGINES_SKIP", why);
    }
    let suite = exec(&mut cmd);
    // A filter asks for some tests, not for the kernel matrix.
    if !args.is_empty() {
        return suite;
    }
    // The VMs run even when a test failed: both verdicts are worth having.
    step("running the VM checks (cargo xtask vmtest)");
    // The static binary built above, the one the image ships, runs in the guests as it is:
    // no second release build.
    let vms = vmtest::vmtest(&vmtest::Args::for_binary(static_bin));
    match (suite, vms) {
        (Ok(()), Ok(())) => Ok(()),
        (Err(e), Ok(())) => Err(e),
        (Ok(()), Err(e)) => Err(e),
        (Err(e), Err(v)) => {
            bail!("the test suite failed ({e:#}), and the VM checks failed ({v:#})")
        }
    }
}
