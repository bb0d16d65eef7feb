//! `profiler` command: parses options, opens the source(s), runs the batch, JSON or TUI view.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use profiler::cli::{Cli, SourceChoice};
use profiler::model::ModelOptions;
use profiler::session::{OpenError, Session};
use profiler::source::{self, Scope, SourceKind};
use profiler::view::batch::{self, BatchOptions};
use profiler::view::{self, json, UserNames, ViewOptions};
use tokio::signal::unix::{signal, SignalKind};

/// Exit code of bad input and of a forced source that cannot work, as clap uses for usage errors.
const EXIT_USAGE: u8 = 2;

fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level))
        .format_timestamp(None)
        .format_target(false)
        .init();
}

fn usage_error(msg: &str) -> ExitCode {
    eprintln!("profiler: {msg}");
    ExitCode::from(EXIT_USAGE)
}

fn list_sources(scope: &Scope) -> ExitCode {
    for kind in SourceKind::ALL {
        let status = match source::open_probed(kind, scope) {
            Ok((_, probe)) if probe.denied_tasks > 0 => format!(
                "partly available: {}",
                source::procfs::ProcfsError::Partial {
                    denied: probe.denied_tasks
                }
            ),
            Ok(_) => "available".to_string(),
            Err(e) => format!("unavailable: {e}"),
        };
        println!(
            "{:<10} {status}\n{:<10} needs: {}",
            kind.name(),
            "",
            kind.needs()
        );
    }
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    if let Some(profiler::serve::Command::Serve(args)) = &cli.command {
        return profiler::serve::main(args);
    }

    let scope = Scope {
        pids: cli.pids.clone(),
        ..Scope::default()
    };
    if cli.list_sources {
        return list_sources(&scope);
    }
    if let Some(pid) = cli
        .pids
        .iter()
        .find(|pid| !scope.proc_root.join(pid.to_string()).exists())
    {
        return usage_error(&format!("no process with pid {pid}"));
    }
    let uids = match view::resolve_users(&cli.users) {
        Ok(uids) => uids,
        Err(e) => return usage_error(&e),
    };

    let batch = match cli.batch_mode().then(BatchRuntime::new).transpose() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("profiler: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let mut session = match Session::open(&cli.source, &scope) {
        Ok(s) => s,
        Err(e) => return open_failed(&cli.source, &e),
    };
    session.model_options = ModelOptions {
        processes: cli.by_process(),
    };
    session.accumulated = cli.accumulated;
    session.group_containers = cli.by_container();
    let view = ViewOptions {
        only: cli.only,
        uids,
        kilobytes: cli.kilobytes,
        accumulated: cli.accumulated,
        containers: cli.containers.clone(),
        by_container: cli.by_container(),
    };

    let result = if let Some(batch) = batch {
        run_batch(&cli, session, &view, batch)
    } else {
        view::tui::run(session, view, cli.delay)
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("profiler: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Inode of the initial user namespace (PROC_USER_INIT_INO), as /proc/self/ns/user names it.
const INIT_USER_NS: &str = "user:[4026531837]";

/// Root of a user namespace is root only over that namespace: "run as root" would not help.
fn in_user_namespace() -> bool {
    std::fs::read_link("/proc/self/ns/user")
        .is_ok_and(|ns| ns.as_os_str() != std::ffi::OsStr::new(INIT_USER_NS))
}

fn open_failed(choice: &SourceChoice, e: &OpenError) -> ExitCode {
    eprintln!("profiler: {e}");
    if matches!(choice, SourceChoice::Auto) {
        if in_user_namespace() {
            eprintln!(
                "profiler: this runs in a user namespace, whose root has no privileges over the \
                 host: run it as root in the initial user namespace, or watch only this \
                 namespace's processes with -p PID"
            );
        } else {
            eprintln!(
                "profiler: run as root, or see `profiler --list-sources` for what each source needs"
            );
        }
        ExitCode::FAILURE
    } else {
        ExitCode::from(EXIT_USAGE)
    }
}

/// Prints once what the session cannot measure, and which source answered.
fn announce(session: &Session) {
    eprintln!("{}", session.source_line());
    for (kind, u) in session.unavailable() {
        eprintln!(
            "{kind}: {} unavailable: {}",
            u.counters.join(", "),
            u.reason
        );
    }
}

/// The batch loop's runtime and its SIGINT/SIGTERM streams, made before any source is opened
/// so that a signal during start-up already ends the run cleanly instead of killing it.
struct BatchRuntime {
    runtime: tokio::runtime::Runtime,
    sigint: tokio::signal::unix::Signal,
    sigterm: tokio::signal::unix::Signal,
}

impl BatchRuntime {
    fn new() -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let _entered = runtime.enter();
        let sigint = signal(SignalKind::interrupt())?;
        let sigterm = signal(SignalKind::terminate())?;
        drop(_entered);
        Ok(BatchRuntime {
            runtime,
            sigint,
            sigterm,
        })
    }
}

fn run_batch(
    cli: &Cli,
    mut session: Session,
    view: &ViewOptions,
    batch: BatchRuntime,
) -> anyhow::Result<()> {
    let BatchRuntime {
        runtime,
        mut sigint,
        mut sigterm,
    } = batch;
    runtime.block_on(async {
        announce(&session);
        session.start()?;
        let opts = BatchOptions {
            time_prefix: cli.time,
            quiet: cli.quiet,
            processes: cli.by_process(),
        };
        let mut users = UserNames::default();
        let mut ticks =
            tokio::time::interval_at(tokio::time::Instant::now() + cli.delay, cli.delay);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut done = 0u64;
        let stdout = std::io::stdout();
        while cli.iterations.is_none_or(|n| done < n) {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = sigint.recv() => break,
                _ = sigterm.recv() => break,
            }
            let snapshot = session.refresh()?;
            let mut out = stdout.lock();
            if cli.json {
                let line = json::render(&snapshot, view, &session.fallbacks, &mut users);
                writeln!(out, "{line}")?;
            } else {
                for line in batch::render(&snapshot, view, &opts, &mut users, done == 0) {
                    writeln!(out, "{line}")?;
                }
            }
            out.flush()?;
            done += 1;
        }
        // Dropping the session detaches the eBPF programs and closes the netlink sockets.
        drop(session);
        Ok(())
    })
}
