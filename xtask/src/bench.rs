//! `cargo xtask bench`: the benchmarks (refresh cost per source, eBPF overhead per syscall).

use anyhow::bail;

use crate::exec::{cargo, exec, is_root};
use crate::setup;

pub fn bench(args: &[String]) -> anyhow::Result<()> {
    setup::toolchain()?;
    if !is_root() {
        bail!("the benchmarks attach eBPF programs and query taskstats, which needs root: run `sudo -E cargo xtask bench`");
    }
    exec(cargo().args(["bench", "--package", "profiler"]).args(args))
}
