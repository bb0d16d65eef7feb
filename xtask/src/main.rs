//! Project tasks: `cargo xtask setup | run | test | bench | dist`. Each installs what it needs first.

mod bench;
mod dist;
mod exec;
mod run;
mod setup;
mod test;

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
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Setup => setup::toolchain(),
        Command::Run { args } => run::run(&args),
        Command::Test { args } => test::test(&args),
        Command::Bench { args } => bench::bench(&args),
        Command::Dist => dist::dist().map(drop),
    }
}
