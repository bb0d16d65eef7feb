//! `profiler` command: parses options, opens the source(s), runs the batch, JSON or TUI view.

use std::io::Write;
use std::process::ExitCode;

mod cli;

use clap::{CommandFactory, Parser};
use cli::{Cli, Command, DisplayArgs, Generate, RecordArgs, ReplayArgs, ServeArgs, ViewArgs};
use profiler::config;
use profiler::counter::{Counter, PerCounter};
use profiler::history;
use profiler::model::ModelOptions;
use profiler::record;
use profiler::runner::{self, Consumer, Flow};
use profiler::serve;
use profiler::session::{Session, Snapshot};
use profiler::settings::Settings;
use profiler::source::{self, Scope, SourceError, SourceKind};
use profiler::startup::{self, SignalRuntime};
use profiler::users::resolve_users;
use profiler::view::batch::{self, BatchOptions};
use profiler::view::lookup::Lookup;
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
    // As iotop-c: `-W` writes the options before it; those after it are ignored.
    let args = cli::up_to_write(std::env::args_os().collect());
    match Cli::try_parse_from(args) {
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

/// The config file's settings with the command line's over them, or the exit code after a
/// one-line error naming the file and line.
fn settings(display: &DisplayArgs) -> Result<Settings, ExitCode> {
    let loaded = config::default_path().map_or(Ok(Settings::default()), |p| config::load(&p));
    let mut settings = match loaded {
        Ok(settings) => settings,
        // Someone else's HOME (sudo -u, setpriv) is no reason to stop: say it, go on.
        Err(e @ config::ConfigError::Read { .. }) => {
            eprintln!("profiler: config file {e}; using the defaults");
            Settings::default()
        }
        Err(e) => return Err(startup::usage_error(&format!("config file {e}"))),
    };
    display.apply(&mut settings);
    Ok(settings)
}

/// `-W`: the settings to the config file, then exit.
fn write_settings(settings: &Settings) -> ExitCode {
    let saved = config::default_path()
        .ok_or(config::ConfigError::NoPath)
        .and_then(|path| config::save(&path, settings).map(|()| path));
    match saved {
        Ok(path) => {
            eprintln!("profiler: settings written to {}", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("profiler: writing the config file: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `--generate`: the man page or a shell's completions, from the options declared in `cli`.
fn generate(what: Generate) -> ExitCode {
    let mut cmd = Cli::command();
    let mut out = std::io::stdout().lock();
    let written = match what {
        Generate::Man => clap_mangen::Man::new(cmd)
            .section("8")
            .render(&mut out)
            .and_then(|()| out.write_all(man_keys().as_bytes()))
            .and_then(|()| out.write_all(MAN_FILES.as_bytes())),
        shell => {
            let shell = match shell {
                Generate::Bash => clap_complete::Shell::Bash,
                Generate::Zsh => clap_complete::Shell::Zsh,
                Generate::Fish => clap_complete::Shell::Fish,
                Generate::Elvish | Generate::Man => clap_complete::Shell::Elvish,
            };
            clap_complete::generate(shell, &mut cmd, "profiler", &mut out);
            Ok(())
        }
    };
    match written.and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("profiler: writing to stdout: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The man page's KEYS section: the full-screen view's keys, from the list its help window shows.
fn man_keys() -> String {
    // roff: a hyphen is `\-`, a backslash `\e`; a line must not start with a dot.
    let roff = |s: &str| s.replace('\\', "\\e").replace('-', "\\-");
    let mut section = String::from(".SH KEYS\nIn the full-screen view (without \\fB\\-b\\fR):\n");
    for (key, does) in profiler::view::tui::KEYS {
        section.push_str(&format!(".TP\n\\fB{}\\fR\n\\&{}\n", roff(key), roff(does)));
    }
    section
}

/// The man page's sections that clap does not know: the config file and the environment.
const MAN_FILES: &str = r#".SH FILES
.TP
\fB$XDG_CONFIG_HOME/profiler/config\fR (or \fB~/.config/profiler/config\fR)
Settings read at start, in TOML; options on the command line override them. Written by
\fB\-W\fR (the options before it). Keys: only, processes, kilobytes (true or false);
amounts (current, accumulated, average\-since\-start); full\-command; exited (background,
dead\-x); hide\-exited; graph (sort, io, r, w, rw, sw); reverse\-graph; help (none, win,
inline); si; threshold (1 to 10); charset (unicode, ascii); color (auto, always, never);
theme (basic, extended); and a [columns] table of column = true or false (pid, prio, user,
read, write, swapin, io, graph, command, container, syscalls, chars).
.SH ENVIRONMENT
.TP
\fBNO_COLOR\fR
When set and not empty, no colours, unless \fB\-\-color\fR (or color = "always").
.TP
\fBRUST_LOG\fR
Log filter, as \fB\-v\fR.
"#;

fn main() -> ExitCode {
    exit_quietly_on_closed_pipe();
    let mut cli = match parse_args() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    if let Some(what) = cli.generate {
        return generate(what);
    }
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
            pids: cli.sampling.pids.iter().copied().collect(),
            ..Scope::default()
        });
    }
    let mut args = cli.view;
    let settings = match settings(&args.display) {
        Ok(s) => s,
        Err(code) => return code,
    };
    if args.display.write {
        return write_settings(&settings);
    }
    let (scope, uids) = match startup::scope_and_users(&cli.sampling.pids, &cli.sampling.users) {
        Ok(checked) => checked,
        Err(code) => return code,
    };
    text_on_dumb_terminal(&mut args);
    let (mut session, signals) = match startup::open(&cli.sampling.source, &scope) {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    let view = view_options(&mut session, &args, &settings, uids);
    let result = if args.batch_mode() {
        let lines = Lines::new(&args, &settings, view, false);
        run_batch(lines, session, cli.sampling.delay, signals)
    } else {
        view::tui::run(session, view, settings, cli.sampling.delay, signals)
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

/// The session's grouping and the view's options, from the command line and the settings.
fn view_options(
    session: &mut Session,
    args: &ViewArgs,
    settings: &Settings,
    uids: Vec<u32>,
) -> ViewOptions {
    session.model_options = ModelOptions {
        processes: args.by_process(settings.processes),
    };
    // -a and -A both sum since the start; -A then shows them as rates over that time.
    session.accumulated = settings.amounts.since_start();
    session.group_containers = args.by_container();
    ViewOptions {
        uids,
        containers: args.containers.clone(),
        by_container: args.by_container(),
        ..ViewOptions::from_settings(settings)
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
    let settings = match settings(&args.view.display) {
        Ok(s) => s,
        Err(code) => return code,
    };
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
    if args.openmetrics {
        return backfill(&args, session, uids, begin.is_some() || end.is_some());
    }
    let mut view_args = args.view;
    text_on_dumb_terminal(&mut view_args);
    let view = view_options(&mut session, &view_args, &settings, uids);
    if !view_args.batch_mode() {
        let signals = match startup::SignalRuntime::new() {
            Ok(signals) => signals,
            Err(e) => {
                eprintln!("profiler: {}", startup::chain(&e));
                return ExitCode::FAILURE;
            }
        };
        let timeline = match history::Timeline::open(&files, begin, end, &args.pids, tz) {
            Ok(timeline) => {
                // Said before the screen is taken, and left in the scrollback after it.
                for e in &timeline.damage {
                    eprintln!("profiler: {e}");
                }
                timeline
            }
            Err(e) => {
                eprintln!("profiler: {e}");
                return ExitCode::FAILURE;
            }
        };
        if timeline.refreshes() == 0 {
            eprintln!(
                "profiler: {}: fewer than two samples to show",
                args.file.display()
            );
            return ExitCode::FAILURE;
        }
        return exit_code(view::tui::replay(
            session, timeline, view, settings, signals,
        ));
    }
    let mut lines = Lines::new(&view_args, &settings, view, true);
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

/// `replay --openmetrics`: every recorded refresh's series, as `serve` exports them, with their
/// recorded times, on stdout.
fn backfill(args: &ReplayArgs, mut session: Session, uids: Vec<u32>, ranged: bool) -> ExitCode {
    session.model_options = ModelOptions {
        processes: !args.per_thread,
    };
    let unavailable: Vec<Counter> = session
        .unavailable()
        .into_iter()
        .flat_map(|(_, u)| u.counters.to_vec())
        .collect();
    let measurable = PerCounter::from_fn(|c| !unavailable.contains(&c));
    let mut backfill = serve::Backfill::new(
        args.top.unwrap_or(cli::SERVE_TOP),
        args.per_thread,
        uids,
        args.view.containers.clone(),
        measurable,
    );
    backfill.iterations = args.view.iterations;
    let replayed = runner::run_unpaced(&mut session, &mut backfill, |e| eprintln!("profiler: {e}"));
    match replayed {
        Ok(_) if backfill.refreshes > 0 => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            match backfill.write(&mut out).and_then(|()| out.flush()) {
                Ok(()) => ExitCode::SUCCESS,
                // A closed pipe (`| head`) is how a reader says it has enough.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("profiler: writing stdout: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Ok(_) => {
            let range = if ranged {
                " between --begin and --end"
            } else {
                ""
            };
            eprintln!(
                "profiler: {}: fewer than two samples{range}",
                args.file.display()
            );
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
    lookup: Lookup,
}

impl Lines {
    /// `recorded`: the rows are a replay's, about which nothing is looked up now.
    fn new(args: &ViewArgs, settings: &Settings, view: ViewOptions, recorded: bool) -> Self {
        Lines {
            json: args.json,
            iterations: args.iterations,
            done: 0,
            view,
            opts: BatchOptions {
                time_prefix: args.time,
                quiet: args.quiet,
                processes: args.by_process(settings.processes),
            },
            lookup: if recorded {
                Lookup::recorded()
            } else {
                Lookup::default()
            },
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
            let line = json::render(&snapshot, &self.view, &session.fallbacks, &mut self.lookup);
            writeln!(out, "{line}")?;
        } else {
            let first = self.done == 0;
            for line in batch::render(&snapshot, &self.view, &self.opts, &mut self.lookup, first) {
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
    mut lines: Lines,
    mut session: Session,
    delay: std::time::Duration,
    signals: SignalRuntime,
) -> anyhow::Result<()> {
    let SignalRuntime {
        runtime,
        mut sigint,
        mut sigterm,
    } = signals;
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
