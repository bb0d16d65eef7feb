//! `cargo xtask run -- ARGS`: set up, build release, run profiler as root.

use std::process::Command;

use anyhow::bail;

use crate::exec::{build_profiler, is_root, step};
use crate::setup;

pub fn run(args: &[String]) -> anyhow::Result<()> {
    setup::toolchain()?;
    let bin = build_profiler(None)?;
    let mut cmd = if is_root() {
        Command::new(&bin)
    } else if Command::new("sudo").arg("--version").output().is_ok() {
        step("profiler needs root (eBPF, taskstats): running it through sudo");
        let mut c = Command::new("sudo");
        c.arg("--").arg(&bin);
        c
    } else {
        bail!(
            "profiler needs root for the eBPF and taskstats sources and sudo is not installed: \
             run `{}` as root",
            bin.display()
        );
    };
    // The profiler's own exit code (2 for bad arguments) is the task's.
    let status = cmd.args(args).status()?;
    std::process::exit(status.code().unwrap_or(1));
}
