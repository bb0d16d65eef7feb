//! Project tasks: `cargo xtask setup | run | test | bench | vmtest | lint | dist | install`.
//! Each installs what it needs first.

mod bench;
mod dist;
mod exec;
mod install;
mod lint;
mod run;
mod setup;
mod test;
mod vmtest;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "xtask",
    about = "Build, run and test profiler, installing the eBPF toolchain when missing"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install what building the eBPF probes needs (nightly rust-src, LLVM, bpf-linker)
    Setup,
    /// Build everything (release) and run profiler as root with ARGS
    Run {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Run the whole test suite, unit and integration (needs root)
    Test {
        /// Extra arguments for `cargo test` (e.g. a test name filter)
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Build a static binary (musl, probes embedded) that runs in any container
    Dist,
    /// Run the benchmarks (needs root)
    Bench {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Boot Debian's 5.10 and 6.1 kernels in QEMU and check the profiler binary inside
    Vmtest(vmtest::Args),
    /// rustfmt and clippy (warnings as errors) on every crate, the eBPF probes included
    Lint,
    /// Install the binary (release), man page, shell completions and systemd unit under a prefix
    Install(install::Args),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Setup => setup::toolchain(),
        Command::Run { args } => run::run(&args),
        Command::Test { args } => test::test(&args),
        Command::Bench { args } => bench::bench(&args),
        Command::Vmtest(args) => vmtest::vmtest(&args),
        Command::Lint => lint::lint(),
        Command::Dist => dist::dist().map(drop),
        Command::Install(args) => install::install(&args),
    }
}
