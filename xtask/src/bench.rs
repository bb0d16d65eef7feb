//! `cargo xtask bench`: the benchmarks (refresh cost per source, eBPF overhead per syscall, the
//! model and views at 100,000 tasks, the size and cost of recording history).

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
