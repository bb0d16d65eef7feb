//! Command line: iotop's options, plus source selection, JSON output and `serve`. Every
//! option is declared here once, in the binary: the library takes plain values and knows no
//! clap.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

mod display;
pub use display::{up_to_write, DisplayArgs};

use profiler::source::SourceChoice;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "profiler",
    version,
    about = "Per-task I/O: bytes and syscalls read and written, from taskstats, eBPF or /proc",
    long_about = "Per-task I/O, top-style: bytes and syscalls each thread or process reads and writes.\n\
                  Sources: taskstats (netlink), ebpf (tracepoints), procfs (/proc/PID/task/TID/io); \
                  `auto` tries them in that order and says why any was skipped."
)]
pub struct Cli {
    #[command(flatten)]
    pub sampling: Sampling,
    /// List the sources, whether each works here, why not, and what it needs
    #[arg(long)]
    pub list_sources: bool,
    #[command(flatten)]
    pub view: ViewArgs,
    /// Print the man page (man) or a shell's completions (bash, zsh, fish, elvish) and exit
    #[arg(long, value_enum, value_name = "WHAT", hide = true)]
    pub generate: Option<Generate>,
    /// More log output on stderr (-v info, -vv debug); RUST_LOG works too
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// How refreshes are shown: the same options live and in `replay`.
#[derive(Args, Debug, Clone)]
pub struct ViewArgs {
    /// Batch mode: print refreshes as text lines instead of the full-screen view
    #[arg(short, long)]
    pub batch: bool,
    /// Stop after this many refreshes
    #[arg(short = 'n', long = "iter", value_parser = parse_iter)]
    pub iterations: Option<u64>,
    /// Rows per thread (default), process (as -P) or container
    #[arg(long, value_enum, value_name = "BY")]
    pub group: Option<Group>,
    /// Only tasks in containers whose label starts with ID (repeatable; `host` for the host's)
    #[arg(long = "container", value_name = "ID")]
    pub containers: Vec<String>,
    /// Prefix each line with the time (implies batch mode)
    #[arg(short, long)]
    pub time: bool,
    /// Less header (implies batch mode): -q column names only in the first refresh, -qq never,
    /// -qqq no totals either
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub quiet: u8,
    /// One JSON object per refresh on stdout (implies batch)
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub display: DisplayArgs,
}

/// What to sample, how often, and whose tasks: the same options for the views and `serve`.
#[derive(Args, Debug, Clone)]
pub struct Sampling {
    /// Source: auto, taskstats, ebpf, procfs, or two or three joined by commas to compare them
    #[arg(long, default_value = "auto", value_parser = SourceChoice::parse)]
    pub source: SourceChoice,
    /// Seconds between refreshes (fractions allowed)
    #[arg(short, long, default_value = "1", value_parser = parse_delay, allow_hyphen_values = true)]
    pub delay: Duration,
    /// Only these processes (repeatable)
    #[arg(short, long = "pid", value_name = "PID")]
    pub pids: Vec<u32>,
    /// Only tasks of these users, by name or uid (repeatable)
    #[arg(short, long = "user", value_name = "USER")]
    pub users: Vec<String>,
}

#[derive(Subcommand, Debug, Clone)]
pub enum Command {
    /// Export per-process I/O counters to Prometheus: /metrics (OpenMetrics or text), /healthz
    // The shared options, with what they mean for an exporter.
    #[command(
        mut_arg("source", |a| a.help("Source: auto, taskstats, ebpf or procfs")),
        mut_arg("delay", |a| a
            .default_value("5")
            .help("Seconds between samples (fractions allowed); scrapes read the last sample")),
    )]
    Serve(ServeArgs),
    /// Record samples to a file, one per interval, until SIGINT/SIGTERM/SIGHUP (or -n)
    #[command(
        mut_arg("source", |a| a.help("Source: auto, taskstats, ebpf or procfs (one)")),
        mut_arg("delay", |a| a.default_value("10").help("Seconds between records (fractions allowed)")),
    )]
    Record(RecordArgs),
    /// Replay a recording in any view: full-screen (t/T step, j jumps to a time), -b text, --json
    Replay(ReplayArgs),
}

#[derive(Args, Debug, Clone)]
pub struct RecordArgs {
    /// The recording; an existing one is moved to FILE.1 (see --keep)
    #[arg(
        short,
        long = "output",
        value_name = "FILE",
        default_value = "profiler.rec"
    )]
    pub output: PathBuf,
    #[command(flatten)]
    pub sampling: Sampling,
    /// Only tasks in containers whose label starts with ID (repeatable; `host` for the host's)
    #[arg(long = "container", value_name = "ID")]
    pub containers: Vec<String>,
    /// Stop after this many records
    #[arg(short = 'n', long = "iter", value_parser = parse_iter)]
    pub iterations: Option<u64>,
    /// Bound the recording and its older files together to SIZE (500M, 2G): FILE rotates to
    /// FILE.1 … FILE.K, the oldest dropped
    #[arg(long, value_name = "SIZE", value_parser = profiler::history::parse_size)]
    pub max_size: Option<u64>,
    /// Older files kept (FILE.1 … FILE.K), by rotation and when FILE exists at start
    #[arg(long, value_name = "K", default_value = "3")]
    pub keep: u32,
    /// With --keep 0, replace an existing FILE instead of refusing
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Debug, Clone)]
pub struct ReplayArgs {
    /// The recording (its rotated files FILE.K … FILE.1 are played first)
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// From this time: HH:MM[:SS] (on the recording's first day), -1h (before now), or
    /// 2026-12-02T03:00 (local) / RFC 3339
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub begin: Option<String>,
    /// Until this time (inclusive), as --begin
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub end: Option<String>,
    #[command(flatten)]
    pub view: ViewArgs,
    /// Only these processes (repeatable)
    #[arg(short, long = "pid", value_name = "PID")]
    pub pids: Vec<u32>,
    /// Only tasks of these users, by name or uid (repeatable)
    #[arg(short, long = "user", value_name = "USER")]
    pub users: Vec<String>,
    /// OpenMetrics text on stdout, a timestamp on every sample: the series `profiler serve`
    /// would have exported at each recorded refresh, for Prometheus' backfill (`promtool tsdb
    /// create-blocks-from openmetrics FILE DIR`)
    #[arg(long, conflicts_with_all = ["json", "group"])]
    pub openmetrics: bool,
    /// With --openmetrics: export the N tasks with the most I/O in each interval, as `serve
    /// --top` (and by default as many)
    #[arg(long, value_name = "N", requires = "openmetrics")]
    pub top: Option<usize>,
    /// With --openmetrics: one series per thread, as `serve --per-thread`
    #[arg(long, requires = "openmetrics")]
    pub per_thread: bool,
}

/// How many tasks get a series of their own when `--top` is not given.
pub const SERVE_TOP: usize = 20;

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address and port to listen on; loopback unless you name another address (0.0.0.0:9645
    /// for every interface)
    #[arg(long, default_value = "127.0.0.1:9645", value_name = "ADDR:PORT")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub sampling: Sampling,
    /// One series per thread (label tid) instead of per process
    #[arg(long)]
    pub per_thread: bool,
    /// Export the N tasks with the most I/O in the last interval; the rest are summed in one
    /// series with pid="other"
    #[arg(long, default_value_t = SERVE_TOP, value_name = "N")]
    pub top: usize,
    /// Answer /metrics only to requests with `Authorization: Bearer TOKEN`, TOKEN being this
    /// file's content (Prometheus: `authorization: {credentials_file: FILE}`)
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
}

/// What `--generate` prints, for packagers and `cargo xtask install`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Generate {
    Man,
    Bash,
    Zsh,
    Fish,
    Elvish,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Group {
    Thread,
    Process,
    Container,
}

/// The range `-d` accepts: below 10 ms a refresh of many tasks takes longer than the delay;
/// above a day the interval timers would overflow long before it mattered.
pub const DELAY_RANGE_S: (f64, f64) = (0.01, 86_400.0);

/// Why a `-d` value is refused.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum DelayError {
    #[error("`{text}` is not a number of seconds")]
    NotANumber {
        text: String,
        #[source]
        source: std::num::ParseFloatError,
    },
    #[error("the delay must be more than 0 seconds, not {0}")]
    NotPositive(String),
    #[error(
        "the delay must be between {min} and {max} seconds (one day), not {text}",
        min = DELAY_RANGE_S.0,
        max = DELAY_RANGE_S.1
    )]
    OutOfRange { text: String },
}

pub(crate) fn parse_delay(s: &str) -> Result<Duration, DelayError> {
    let secs: f64 = s.parse().map_err(|source| DelayError::NotANumber {
        text: s.to_string(),
        source,
    })?;
    let (min, max) = DELAY_RANGE_S;
    if !(secs.is_finite() && secs > 0.0) {
        return Err(DelayError::NotPositive(s.to_string()));
    }
    if !(min..=max).contains(&secs) {
        return Err(DelayError::OutOfRange {
            text: s.to_string(),
        });
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Why an `-n` value is refused.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum IterError {
    #[error("the number of iterations must be at least 1")]
    Zero,
    #[error("`{text}` is not a positive whole number")]
    NotANumber {
        text: String,
        #[source]
        source: std::num::ParseIntError,
    },
}

fn parse_iter(s: &str) -> Result<u64, IterError> {
    match s.parse::<u64>() {
        Ok(0) => Err(IterError::Zero),
        Ok(n) => Ok(n),
        Err(source) => Err(IterError::NotANumber {
            text: s.to_string(),
            source,
        }),
    }
}

/// clap's error as one line: its first, without the `error: ` prefix, the usage and the tips;
/// a first line that ends in a colon takes the indented lines that list what it announces
/// (the missing arguments).
pub fn one_line_error(e: &clap::Error) -> String {
    let rendered = e.render().to_string();
    let mut lines = rendered.lines();
    let first = lines.next().unwrap_or_default();
    let mut message = first
        .strip_prefix("error: ")
        .unwrap_or(first)
        .trim()
        .to_string();
    if message.ends_with(':') {
        let listed: Vec<&str> = lines
            .take_while(|l| l.starts_with("  "))
            .map(str::trim)
            .collect();
        message = format!("{} {}", message, listed.join(", "));
    }
    format!("{message} (see --help)")
}

impl ViewArgs {
    /// Rows per process: `-P` (given, or kept in the config file) or `--group process`.
    pub fn by_process(&self, processes: bool) -> bool {
        processes || self.group == Some(Group::Process)
    }

    pub fn by_container(&self) -> bool {
        self.group == Some(Group::Container)
    }

    /// As in iotop, -t and -q only make sense for text lines, so they imply batch mode.
    pub fn batch_mode(&self) -> bool {
        self.batch || self.json || self.time || self.quiet > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argument_errors_are_one_line() {
        for args in [
            &["profiler", "--no-such-flag"][..],
            &["profiler", "-d", "1e-10"],
            &["profiler", "-d"],
            &["profiler", "serve", "--listen", "nowhere"],
            &["profiler", "--group", "galaxy"],
        ] {
            let e = Cli::try_parse_from(args).expect_err("refused");
            let line = one_line_error(&e);
            assert!(
                !line.contains('\n') && !line.starts_with("error"),
                "{args:?}: {line}"
            );
            assert!(line.len() > 20, "{args:?}: says why: {line}");
        }
    }

    #[test]
    fn a_missing_argument_is_named() {
        for (args, missing) in [
            (&["profiler", "replay"][..], "<FILE>"),
            (
                &["profiler", "replay", "x.rec", "--per-thread"],
                "--openmetrics",
            ),
        ] {
            let e = Cli::try_parse_from(args).expect_err("refused");
            let line = one_line_error(&e);
            assert!(line.contains(missing), "{args:?}: {line}");
            assert!(!line.contains('\n'), "{args:?}: {line}");
        }
    }

    #[test]
    fn shared_options_keep_each_mode_s_default_delay() {
        let cli = Cli::try_parse_from(["profiler", "-p", "1"]).expect("parses");
        assert_eq!(cli.sampling.delay, Duration::from_secs(1));
        assert_eq!(cli.sampling.pids, [1]);
        let Some(Command::Record(record)) = Cli::try_parse_from(["profiler", "record"])
            .expect("parses")
            .command
        else {
            panic!("record parsed")
        };
        assert_eq!(record.sampling.delay, Duration::from_secs(10));
        let cli = Cli::try_parse_from(["profiler", "serve", "-u", "root"]).expect("parses");
        let Some(Command::Serve(serve)) = cli.command else {
            panic!("serve parsed as {:?}", cli.command)
        };
        assert_eq!(serve.sampling.delay, Duration::from_secs(5));
        assert_eq!(serve.sampling.users, ["root"]);
        assert_eq!(serve.sampling.source, SourceChoice::Auto);
    }

    /// Words the fuzz below builds argument vectors from: every option, and values good,
    /// bad and absurd.
    const WORDS: &[&str] = &[
        "-b",
        "-n",
        "-d",
        "-p",
        "-u",
        "-P",
        "-a",
        "-o",
        "-k",
        "-t",
        "-q",
        "-qqq",
        "-v",
        "--json",
        "--source",
        "--group",
        "--container",
        "--list-sources",
        "--iter",
        "--delay",
        "-A",
        "-c",
        "-x",
        "-e",
        "-l",
        "-R",
        "-W",
        "-oW",
        "-2",
        "-9",
        "--show-prio",
        "--hide-chars",
        "--no-only",
        "--threads",
        "-g",
        "rw",
        "-H",
        "inline",
        "--threshold",
        "10",
        "11",
        "--si",
        "--color",
        "--ascii",
        "serve",
        "--listen",
        "--top",
        "--per-thread",
        "record",
        "replay",
        "--begin",
        "--end",
        "--max-size",
        "--keep",
        "03:00",
        "-1h",
        "500M",
        "--",
        "-",
        "0",
        "1",
        "-1",
        "1e-10",
        "1e19",
        "9.3e18",
        "nan",
        "inf",
        "-inf",
        "0.5",
        "86400",
        "86401",
        "4294967296",
        "18446744073709551616",
        "ebpf",
        "taskstats,ebpf",
        "auto",
        "procfs,procfs",
        "",
        ",",
        "container",
        "process",
        "thread",
        "127.0.0.1:0",
        "[::]:0",
        "0.0.0.0:9645",
        "root",
        "no-such",
        "\u{1F600}",
        "%s%n",
        "../../etc/passwd",
        "-dd",
        "-n0",
        "--delay=1e-10",
    ];

    /// Bounded fuzz of the command line: a thousand random vectors. Parsing never panics; what
    /// parses is in range (so no timer can overflow), and what does not is one line.
    #[test]
    fn random_argument_vectors() {
        let mut rng = profiler::fuzz::Rng::from_env("command line");
        for _ in 0..1_000 {
            let mut args = vec!["profiler".to_string()];
            for _ in 0..rng.below(8) {
                let word = if rng.below(10) == 0 {
                    let len = rng.below(12);
                    String::from_utf8_lossy(&rng.bytes(len)).into_owned()
                } else {
                    rng.pick(WORDS).to_string()
                };
                args.push(word);
            }
            // As main parses them: only what comes before -W.
            let args = up_to_write(args.into_iter().map(Into::into).collect());
            match Cli::try_parse_from(&args) {
                Ok(cli) => {
                    let mut settings = profiler::settings::Settings::default();
                    cli.view.display.apply(&mut settings);
                    assert!((1..=10).contains(&settings.threshold.get()), "{args:?}");
                    let (min, max) = DELAY_RANGE_S;
                    assert!(
                        (min..=max).contains(&cli.sampling.delay.as_secs_f64()),
                        "{args:?}: {:?}",
                        cli.sampling.delay
                    );
                    assert_ne!(cli.view.iterations, Some(0), "{args:?}");
                    if let Some(Command::Serve(s)) = &cli.command {
                        let delay = s.sampling.delay.as_secs_f64();
                        assert!((min..=max).contains(&delay), "{args:?}");
                    }
                }
                Err(e) if !e.use_stderr() => {}
                Err(e) => {
                    let line = one_line_error(&e);
                    assert!(!line.contains('\n'), "{args:?}: {line}");
                }
            }
        }
    }

    #[test]
    fn delay_and_iterations_must_be_positive() {
        assert_eq!(parse_delay("0.5"), Ok(Duration::from_millis(500)));
        assert!(parse_delay("0").is_err());
        assert!(parse_delay("-1").is_err());
        assert!(parse_delay("nan").is_err());
        for out_of_range in ["1e-10", "0.001", "1e19", "9.3e18", "86401", "inf"] {
            assert!(
                parse_delay(out_of_range).is_err(),
                "{out_of_range} is refused"
            );
        }
        assert_eq!(parse_delay("86400"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_delay("0.01"), Ok(Duration::from_millis(10)));
        // What clap prints after `invalid value ... for '--delay <DELAY>': `.
        assert_eq!(
            parse_delay("86401").unwrap_err().to_string(),
            "the delay must be between 0.01 and 86400 seconds (one day), not 86401"
        );
        assert_eq!(
            parse_delay("x").unwrap_err().to_string(),
            "`x` is not a number of seconds"
        );
        assert!(parse_iter("0").is_err());
        assert_eq!(parse_iter("3"), Ok(3));
    }
}
