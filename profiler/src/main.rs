//! `profiler` command: parses options, opens the source(s), runs the batch, JSON or TUI view.

use std::io::Write;
use std::process::ExitCode;

mod cli;

use clap::Parser;
use cli::{Cli, Command, RecordArgs, ReplayArgs, ServeArgs, ViewArgs};
use profiler::history;
use profiler::model::ModelOptions;
use profiler::record;
use profiler::runner::{self, Consumer, Flow};
use profiler::session::{Session, Snapshot};
use profiler::source::{self, Scope, SourceError, SourceKind};
use profiler::startup::{self, SignalRuntime};
use profiler::users::{resolve_users, UserNames};
use profiler::view::batch::{self, BatchOptions};
use profiler::view::{self, json, ViewOptions};

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

/// Did this fail only because whoever read our output went away (`| head`)? Then there is
/// nothing to say and nobody to say it to.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain()
        .filter_map(|c| c.downcast_ref::<std::io::Error>())
        .any(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
}

/// A message printed to a closed pipe (`profiler serve 2>&1 | head -1`) ends the program
/// quietly, with success, as SIGPIPE ends a C tool: `println!`/`eprintln!` panic there
/// instead. Where a write's error is handled (batch, JSON, --list-sources), this is not reached.
fn exit_quietly_on_closed_pipe() {
    let default = std::panic::take_hook();
    let epipe = std::io::Error::from_raw_os_error(libc::EPIPE).to_string();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to std") && message.ends_with(epipe.as_str()) {
            std::process::exit(0);
        }
        default(info);
    }));
}

/// The options, or the exit code after a one-line error (`--help` and `--version` print in
/// full, as usual).
fn parse_args() -> Result<Cli, ExitCode> {
    match Cli::try_parse() {
        Ok(cli) => Ok(cli),
        Err(e) if !e.use_stderr() => {
            // --help, --version: clap prints them and ignores a closed stdout.
            let _ = e.print();
            Err(ExitCode::SUCCESS)
        }
        Err(e) => Err(startup::usage_error(&cli::one_line_error(&e))),
    }
}

fn list_sources(scope: &Scope) -> ExitCode {
    let mut out = std::io::stdout().lock();
    for kind in SourceKind::ALL {
        let status = match source::open_probed(kind, scope) {
            Ok((_, probe)) if probe.denied_tasks > 0 => format!(
                "partly available: {}",
                source::procfs::ProcfsError::Partial {
                    denied: probe.denied_tasks
                }
            ),
            Ok((source, _)) => match (source.method(), source.misses_exits()) {
                (Some(method), Some(why)) => format!("available: {method}, but {why}"),
                (Some(method), None) => format!("available: {method}"),
                (None, Some(why)) => format!("available, but {why}"),
                (None, None) => "available".to_string(),
            },
            Err(e) => format!("unavailable: {e}"),
        };
        let written = writeln!(
            out,
            "{:<10} {status}\n{:<10} needs: {}",
            kind.name(),
            "",
            kind.needs()
        )
        .and_then(|()| out.flush());
        match written {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("profiler: writing to stdout: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}

/// `profiler serve`'s options, as the exporter takes them.
fn serve(args: ServeArgs) -> ExitCode {
    let ServeArgs {
        listen,
        sampling,
        per_thread,
        top,
        token_file,
    } = args;
    profiler::serve::main(&profiler::serve::Options {
        listen,
        source: sampling.source,
        delay: sampling.delay,
        pids: sampling.pids,
        users: sampling.users,
        per_thread,
        top,
        token_file,
    })
}

fn main() -> ExitCode {
    exit_quietly_on_closed_pipe();
    let mut cli = match parse_args() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    init_logging(cli.verbose);
    // Before any thread starts, so that every thread reads whole cgroup paths; where it cannot,
    // the container labels say why when they are first needed.
    if let Err(why) =
        profiler::container::join_initial_cgroup_namespace(std::path::Path::new("/proc"))
    {
        log::debug!("container labels: staying in this cgroup namespace: {why}");
    }
    match cli.command.take() {
        Some(Command::Serve(args)) => return serve(args),
        Some(Command::Record(args)) => return record(args),
        Some(Command::Replay(args)) => return replay(args),
        None => {}
    }

    if cli.list_sources {
        return list_sources(&Scope {
            pids: cli.sampling.pids.clone(),
            ..Scope::default()
        });
    }
    let (scope, uids) = match startup::scope_and_users(&cli.sampling.pids, &cli.sampling.users) {
        Ok(checked) => checked,
        Err(code) => return code,
    };
    let mut args = cli.view;
    text_on_dumb_terminal(&mut args);
    let (mut session, signals) = match startup::open(&cli.sampling.source, &scope) {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    let view = view_options(&mut session, &args, uids);
    let result = if args.batch_mode() {
        run_batch(&args, session, view, cli.sampling.delay, signals)
    } else {
        view::tui::run(session, view, cli.sampling.delay, signals)
    };
    exit_code(result)
}

fn exit_code(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("profiler: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// A dumb terminal cannot place the cursor: the full-screen view would be garbage.
fn text_on_dumb_terminal(args: &mut ViewArgs) {
    if !args.batch_mode() && std::env::var_os("TERM").is_some_and(|t| t == "dumb") {
        eprintln!("profiler: TERM=dumb cannot show the full-screen view; printing text (-b)");
        args.batch = true;
    }
}

/// The session's grouping and the view's options, from the command line.
fn view_options(session: &mut Session, args: &ViewArgs, uids: Vec<u32>) -> ViewOptions {
    session.model_options = ModelOptions {
        processes: args.by_process(),
    };
    session.accumulated = args.accumulated;
    session.group_containers = args.by_container();
    ViewOptions {
        only: args.only,
        uids,
        kilobytes: args.kilobytes,
        accumulated: args.accumulated,
        containers: args.containers.clone(),
        by_container: args.by_container(),
    }
}

/// `profiler record`'s options, as the recording loop takes them.
fn record(args: RecordArgs) -> ExitCode {
    let (scope, uids) = match startup::scope_and_users(&args.sampling.pids, &args.sampling.users) {
        Ok(checked) => checked,
        Err(code) => return code,
    };
    history::record(&history::RecordOptions {
        path: args.output,
        source: args.sampling.source,
        delay: args.sampling.delay,
        scope,
        uids,
        containers: args.containers,
        iterations: args.iterations,
        max_bytes: args.max_size,
        keep: args.keep,
        force: args.force,
    })
}

/// `profiler replay`: the recording as a source, through the same session and views as live;
/// text and JSON as fast as they print. Exit code 1 when nothing could be shown.
fn replay(args: ReplayArgs) -> ExitCode {
    let uids = match resolve_users(&args.users) {
        Ok(uids) => uids,
        Err(e) => return startup::usage_error(&e.to_string()),
    };
    let files = record::series(&args.file);
    let header = match record::RecordingReader::open(&files[0]) {
        Ok(reader) => reader.header().clone(),
        Err(e) => {
            eprintln!("profiler: {e}");
            return ExitCode::FAILURE;
        }
    };
    let tz = jiff::tz::TimeZone::system();
    let day = history::day_of(header.created_wall_ns, &tz);
    let now = jiff::Timestamp::now();
    let mut range = [None, None];
    for (at, text) in range.iter_mut().zip([&args.begin, &args.end]) {
        if let Some(text) = text {
            match history::parse_time(text, now, day, &tz) {
                Ok(t) => *at = Some(t),
                Err(e) => return startup::usage_error(&e.to_string()),
            }
        }
    }
    let [begin, end] = range;
    if let (Some(b), Some(e)) = (begin, end) {
        if b > e {
            return startup::usage_error("--begin is after --end");
        }
    }
    let source = match record::ReplaySource::open(&files, begin, end) {
        Ok(source) => source.with_pids(&args.pids),
        Err(e) => {
            eprintln!("profiler: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut session = Session::replay(Box::new(source), std::path::Path::new("/proc"));
    startup::announce(&session);
    eprintln!(
        "replay: {} ({} recorded on {}, kernel {})",
        args.file.display(),
        header.source,
        header.host_name,
        header.kernel_release
    );
    let mut view_args = args.view;
    text_on_dumb_terminal(&mut view_args);
    let view = view_options(&mut session, &view_args, uids);
    if !view_args.batch_mode() {
        let signals = match startup::SignalRuntime::new() {
            Ok(signals) => signals,
            Err(e) => {
                eprintln!("profiler: {}", startup::chain(&e));
                return ExitCode::FAILURE;
            }
        };
        let timeline = match history::Timeline::open(&files, begin, end, &args.pids, tz) {
            Ok(timeline) if timeline.refreshes() > 0 => timeline,
            Ok(_) => {
                eprintln!(
                    "profiler: {}: fewer than two samples to show",
                    args.file.display()
                );
                return ExitCode::FAILURE;
            }
            Err(e) => {
                eprintln!("profiler: {e}");
                return ExitCode::FAILURE;
            }
        };
        return exit_code(view::tui::replay(session, timeline, view, signals));
    }
    let mut lines = Lines::new(&view_args, view);
    let replayed = runner::run_unpaced(&mut session, &mut lines, |e| eprintln!("profiler: {e}"));
    match replayed {
        Ok(done) if done.refreshes > 0 => ExitCode::SUCCESS,
        Ok(done) => {
            let what = match done.samples {
                0 if done.damaged > 0 => "nothing readable",
                0 => "no samples",
                _ => "a single sample (a refresh needs two)",
            };
            let range = if begin.is_some() || end.is_some() {
                " between --begin and --end"
            } else {
                ""
            };
            eprintln!("profiler: {}: {what}{range}", args.file.display());
            ExitCode::FAILURE
        }
        Err(e) => exit_code(Err(e)),
    }
}

/// Text or JSON lines on stdout, one refresh after another, as the tick loop hands them over.
struct Lines {
    json: bool,
    iterations: Option<u64>,
    done: u64,
    view: ViewOptions,
    opts: BatchOptions,
    users: UserNames,
}

impl Lines {
    fn new(args: &ViewArgs, view: ViewOptions) -> Self {
        Lines {
            json: args.json,
            iterations: args.iterations,
            done: 0,
            view,
            opts: BatchOptions {
                time_prefix: args.time,
                quiet: args.quiet,
                processes: args.by_process(),
            },
            users: UserNames::default(),
        }
    }
}

impl Consumer for Lines {
    type Command = std::convert::Infallible;

    fn refreshed(
        &mut self,
        session: &mut Session,
        refresh: Result<Snapshot, SourceError>,
        _: std::time::Duration,
    ) -> anyhow::Result<Flow> {
        let snapshot = refresh?;
        if self.done == 0 {
            startup::warn_unmatched_containers(&snapshot, &self.view.containers);
        }
        let mut out = std::io::stdout().lock();
        if self.json {
            let line = json::render(&snapshot, &self.view, &session.fallbacks, &mut self.users);
            writeln!(out, "{line}")?;
        } else {
            let first = self.done == 0;
            for line in batch::render(&snapshot, &self.view, &self.opts, &mut self.users, first) {
                writeln!(out, "{line}")?;
            }
        }
        out.flush()?;
        self.done += 1;
        Ok(if self.iterations.is_some_and(|n| self.done >= n) {
            Flow::Stop
        } else {
            Flow::Continue
        })
    }
}

fn run_batch(
    args: &ViewArgs,
    mut session: Session,
    view: ViewOptions,
    delay: std::time::Duration,
    signals: SignalRuntime,
) -> anyhow::Result<()> {
    let SignalRuntime {
        runtime,
        mut sigint,
        mut sigterm,
    } = signals;
    let mut lines = Lines::new(args, view);
    runtime.block_on(async {
        startup::announce(&session);
        session.start()?;
        runner::run(
            &mut session,
            delay,
            &mut lines,
            SignalRuntime::stopped(&mut sigint, &mut sigterm),
        )
        .await
    })?;
    // Dropping the session detaches the eBPF programs and closes the netlink sockets.
    drop(session);
    Ok(())
}
