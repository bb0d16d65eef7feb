//! iotop-c's display options, spelled as iotop-c spells them, each with its `--no-…` (or
//! `--show-…`) opposite. Given on the command line they override the config file, and a later
//! one overrides an earlier one. [`DisplayArgs::apply`] turns them into [`Settings`].

use clap::{Arg, ArgAction, ArgMatches, Args, FromArgMatches};

use profiler::settings::{Amounts, Charset, ColorChoice, Column, ExitedMark, GraphSource};
use profiler::settings::{HelpType, Settings, Threshold};

#[derive(Args, Debug, Clone, Default)]
pub struct DisplayArgs {
    /// Only tasks doing I/O
    #[arg(short, long, overrides_with = "no_only")]
    pub only: bool,
    /// All tasks, doing I/O or not
    #[arg(long, overrides_with = "only")]
    pub no_only: bool,
    /// One row per process instead of per thread
    #[arg(short = 'P', long, overrides_with = "threads")]
    pub processes: bool,
    /// One row per thread
    #[arg(long, alias = "no-processes", overrides_with = "processes")]
    pub threads: bool,
    /// Show I/O accumulated since the profiler started instead of per refresh
    #[arg(short, long, overrides_with_all = ["no_accumulated", "accum_bw"])]
    pub accumulated: bool,
    /// Show rates over the last refresh (undoes -a)
    #[arg(long, overrides_with = "accumulated")]
    pub no_accumulated: bool,
    /// Show average rates since the profiler started
    #[arg(short = 'A', long, overrides_with_all = ["no_accum_bw", "accumulated"])]
    pub accum_bw: bool,
    /// Show rates over the last refresh (undoes -A)
    #[arg(long, overrides_with = "accum_bw")]
    pub no_accum_bw: bool,
    /// Amounts in kilobytes
    #[arg(short, long, overrides_with = "no_kilobytes")]
    pub kilobytes: bool,
    /// Amounts in a unit that suits each
    #[arg(long, overrides_with = "kilobytes")]
    pub no_kilobytes: bool,
    /// Full command line instead of the command name (kernel threads as [name])
    #[arg(short = 'c', long, overrides_with = "no_fullcmdline")]
    pub fullcmdline: bool,
    /// Command names only
    #[arg(long, overrides_with = "fullcmdline")]
    pub no_fullcmdline: bool,
    #[command(flatten)]
    pub columns: ColumnArgs,
    /// What the history column plots: io, r, w, rw, sw (iotop-c's), or sort (the sort column)
    #[arg(short = 'g', long, value_name = "TYPE")]
    pub grtype: Option<GraphSource>,
    /// History with the most recent value on the right
    #[arg(short = 'R', long, overrides_with = "no_reverse_graph")]
    pub reverse_graph: bool,
    /// History with the most recent value on the left
    #[arg(long, overrides_with = "reverse_graph")]
    pub no_reverse_graph: bool,
    /// How the full-screen view shows its keys: none, win or inline
    #[arg(short = 'H', long, value_name = "TYPE", value_parser = parse_help_type,
          overrides_with = "no_help")]
    pub help_type: Option<HelpType>,
    /// No key hints (iotop's option; as -H none)
    #[arg(long, overrides_with = "help_type")]
    pub no_help: bool,
    /// Mark exited tasks with x in their history instead of a grey background
    #[arg(short = 'x', long, overrides_with = "no_dead_x")]
    pub dead_x: bool,
    /// Mark exited tasks with a grey background
    #[arg(long, overrides_with = "dead_x")]
    pub no_dead_x: bool,
    /// Leave out tasks that exited
    #[arg(short = 'e', long, overrides_with = "show_exited")]
    pub hide_exited: bool,
    /// Show tasks that exited, marked
    #[arg(long, overrides_with = "hide_exited")]
    pub show_exited: bool,
    /// No colours
    #[arg(short = 'l', long, overrides_with = "color")]
    pub no_color: bool,
    /// Colours, even with NO_COLOR set
    #[arg(long, overrides_with = "no_color")]
    pub color: bool,
    /// SI units: powers of 1000 (k, M) instead of 1024
    #[arg(long, overrides_with = "no_si")]
    pub si: bool,
    /// Units in powers of 1024
    #[arg(long, overrides_with = "si")]
    pub no_si: bool,
    /// Move to the next unit at N times its size (1..10; iotop-c's default is 2, ours 1)
    #[arg(long, value_name = "1..10")]
    pub threshold: Option<Threshold>,
    /// ASCII characters only
    #[arg(long, overrides_with = "unicode")]
    pub ascii: bool,
    /// Unicode block characters for the history
    #[arg(long, overrides_with = "ascii")]
    pub unicode: bool,
    /// Write the options before this one to the config file, and exit
    #[arg(short = 'W', long)]
    pub write: bool,
}

fn parse_help_type(s: &str) -> Result<HelpType, String> {
    match s {
        "none" => Ok(HelpType::None),
        "win" => Ok(HelpType::Win),
        "inline" => Ok(HelpType::Inline),
        _ => Err(format!("unknown help type `{s}` (none, win or inline)")),
    }
}

/// Sets `*to` to `on` or `off` when one of the pair was given.
fn pick<T>(to: &mut T, yes: bool, no: bool, on: T, off: T) {
    if yes {
        *to = on;
    } else if no {
        *to = off;
    }
}

impl DisplayArgs {
    /// The settings from the config file, with what the command line says over them.
    pub fn apply(&self, s: &mut Settings) {
        pick(&mut s.only, self.only, self.no_only, true, false);
        pick(&mut s.processes, self.processes, self.threads, true, false);
        pick(
            &mut s.kilobytes,
            self.kilobytes,
            self.no_kilobytes,
            true,
            false,
        );
        pick(
            &mut s.full_command,
            self.fullcmdline,
            self.no_fullcmdline,
            true,
            false,
        );
        // -a and -A turn each other off; --no-X turns only X off.
        if self.accumulated {
            s.amounts = Amounts::Accumulated;
        } else if self.accum_bw {
            s.amounts = Amounts::AverageSinceStart;
        }
        if (self.no_accumulated && s.amounts == Amounts::Accumulated)
            || (self.no_accum_bw && s.amounts == Amounts::AverageSinceStart)
        {
            s.amounts = Amounts::Current;
        }
        for &(column, shown) in &self.columns.choices {
            s.columns.insert(column, shown);
        }
        if let Some(g) = self.grtype {
            s.graph = g;
        }
        pick(
            &mut s.reverse_graph,
            self.reverse_graph,
            self.no_reverse_graph,
            true,
            false,
        );
        if let Some(h) = self.help_type {
            s.help = h;
        } else if self.no_help {
            s.help = HelpType::None;
        }
        pick(
            &mut s.exited,
            self.dead_x,
            self.no_dead_x,
            ExitedMark::DeadX,
            ExitedMark::Background,
        );
        pick(
            &mut s.hide_exited,
            self.hide_exited,
            self.show_exited,
            true,
            false,
        );
        pick(
            &mut s.color,
            self.color,
            self.no_color,
            ColorChoice::Always,
            ColorChoice::Never,
        );
        pick(&mut s.si, self.si, self.no_si, true, false);
        if let Some(t) = self.threshold {
            s.threshold = t;
        }
        pick(
            &mut s.charset,
            self.ascii,
            self.unicode,
            Charset::Ascii,
            Charset::Unicode,
        );
    }
}

/// `--hide-NAME`/`--show-NAME` for every column, `-1` … `-9` for iotop-c's nine: built from
/// [`Column::ALL`] rather than written out 24 times.
#[derive(Debug, Clone, Default)]
pub struct ColumnArgs {
    /// The columns named, shown (true) or hidden; of a pair, the last given.
    pub choices: Vec<(Column, bool)>,
}

/// Each column's two options, written out because clap takes `&'static str` names (a test
/// checks them against [`Column::name`]); they are also the arguments' ids.
const COLUMN_FLAGS: [(Column, &str, &str); 12] = [
    (Column::Pid, "hide-pid", "show-pid"),
    (Column::Prio, "hide-prio", "show-prio"),
    (Column::User, "hide-user", "show-user"),
    (Column::Read, "hide-read", "show-read"),
    (Column::Write, "hide-write", "show-write"),
    (Column::Swapin, "hide-swapin", "show-swapin"),
    (Column::Io, "hide-io", "show-io"),
    (Column::Graph, "hide-graph", "show-graph"),
    (Column::Command, "hide-command", "show-command"),
    (Column::Container, "hide-container", "show-container"),
    (Column::Syscalls, "hide-syscalls", "show-syscalls"),
    (Column::Chars, "hide-chars", "show-chars"),
];

impl FromArgMatches for ColumnArgs {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        let mut out = ColumnArgs::default();
        out.update_from_arg_matches(m)?;
        Ok(out)
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        for (c, hide, show) in COLUMN_FLAGS {
            for (shown, id) in [(false, hide), (true, show)] {
                if m.get_flag(id) {
                    self.choices.retain(|&(col, _)| col != c);
                    self.choices.push((c, shown));
                }
            }
        }
        Ok(())
    }
}

impl Args for ColumnArgs {
    fn augment_args(mut cmd: clap::Command) -> clap::Command {
        for (c, hide_id, show_id) in COLUMN_FLAGS {
            let name = c.name();
            let what = match c {
                Column::Pid => "the PID/TID column".to_string(),
                Column::Read => "DISK READ".to_string(),
                Column::Write => "DISK WRITE".to_string(),
                Column::Io => "the IO> column".to_string(),
                Column::Graph => "the history (GRAPH) column".to_string(),
                Column::Syscalls => "the SYSCR/SYSCW columns".to_string(),
                Column::Chars => "the READ/WRITE (rchar/wchar) columns".to_string(),
                _ => format!("the {} column", name.to_uppercase()),
            };
            let mut hide = Arg::new(hide_id)
                .long(hide_id)
                .action(ArgAction::SetTrue)
                .overrides_with(show_id)
                .help(format!("Hide {what}"));
            if let Some(n) = c.iotop_number() {
                hide = hide.short(char::from(b'0' + n));
            }
            let show = Arg::new(show_id)
                .long(show_id)
                .action(ArgAction::SetTrue)
                .overrides_with(hide_id)
                .help(format!("Show {what}"));
            cmd = cmd.arg(hide).arg(show);
        }
        cmd
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

/// The arguments up to and including the first `-W`/`--write`: iotop-c writes the options
/// before it and ignores those after.
pub fn up_to_write(mut args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    if let Some(at) = write_position(&args) {
        args.truncate(at + 1);
    }
    args
}

fn write_position(args: &[std::ffi::OsString]) -> Option<usize> {
    let mut value_next = false;
    for (i, arg) in args.iter().enumerate().skip(1) {
        if std::mem::take(&mut value_next) {
            continue;
        }
        let s = arg.to_string_lossy();
        if s == "--" {
            return None;
        }
        if s == "--write" {
            return Some(i);
        }
        if let Some(long) = s.strip_prefix("--") {
            value_next = LONG_TAKES_VALUE.contains(&long);
        } else if let Some(shorts) = s.strip_prefix('-') {
            // A cluster of flags (`-oW`); a letter that takes a value ends it.
            for ch in shorts.chars() {
                if ch == 'W' {
                    return Some(i);
                }
                if TAKES_VALUE.contains(ch) {
                    value_next = shorts.ends_with(ch);
                    break;
                }
            }
        }
    }
    None
}

/// Short options that take a value, and long ones (without `=VALUE`), so that a value that
/// happens to be `-W` is not taken for the option.
const TAKES_VALUE: &str = "ndpugH";
const LONG_TAKES_VALUE: &[&str] = &[
    "iter",
    "delay",
    "pid",
    "user",
    "grtype",
    "help-type",
    "threshold",
    "source",
    "group",
    "container",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::Parser;

    fn settings(args: &[&str]) -> Settings {
        let cli = Cli::try_parse_from(std::iter::once("profiler").chain(args.iter().copied()))
            .unwrap_or_else(|e| panic!("{args:?}: {e}"));
        let mut s = Settings::default();
        cli.view.display.apply(&mut s);
        s
    }

    #[test]
    fn the_last_of_a_pair_wins() {
        assert!(settings(&["--no-only", "-o"]).only);
        assert!(!settings(&["-o", "--no-only"]).only);
        assert_eq!(settings(&["-a", "-A"]).amounts, Amounts::AverageSinceStart);
        assert_eq!(settings(&["-A", "-a"]).amounts, Amounts::Accumulated);
        assert_eq!(settings(&["-A", "--no-accum-bw"]).amounts, Amounts::Current);
        assert_eq!(
            settings(&["-a", "--no-accum-bw"]).amounts,
            Amounts::Accumulated
        );
        assert!(!settings(&["-P", "--threads"]).processes);
        assert!(!settings(&["-P", "--no-processes"]).processes);
        assert_eq!(settings(&["--color", "-l"]).color, ColorChoice::Never);
        assert_eq!(settings(&["-l", "--color"]).color, ColorChoice::Always);
        assert_eq!(settings(&["--ascii"]).charset, Charset::Ascii);
        assert_eq!(
            settings(&["--ascii", "--unicode"]).charset,
            Charset::Unicode
        );
        assert_eq!(settings(&["-x"]).exited, ExitedMark::DeadX);
        assert!(settings(&["-e"]).hide_exited);
        assert!(!settings(&["-e", "--show-exited"]).hide_exited);
        assert!(settings(&["-c"]).full_command);
        assert!(settings(&["--si"]).si && !settings(&["--si", "--no-si"]).si);
        assert!(settings(&["-R"]).reverse_graph);
    }

    #[test]
    fn columns_by_number_and_by_name() {
        let s = settings(&["-2", "-9", "--show-prio", "--hide-syscalls", "-8"]);
        let got: Vec<(Column, bool)> = s.columns.into_iter().collect();
        assert_eq!(
            got,
            [
                (Column::Prio, true),
                (Column::Graph, false),
                (Column::Command, false),
                (Column::Syscalls, false)
            ]
        );
        for n in 1..=9u8 {
            let flag = format!("-{n}");
            let c = Column::from_iotop_number(n).expect("numbered");
            assert_eq!(settings(&[&flag]).columns.get(&c), Some(&false), "{flag}");
        }
    }

    #[test]
    fn every_column_has_its_pair_of_options() {
        let listed: Vec<Column> = COLUMN_FLAGS.iter().map(|f| f.0).collect();
        assert_eq!(listed, Column::ALL);
        for (c, hide, show) in COLUMN_FLAGS {
            assert_eq!(hide, format!("hide-{}", c.name()));
            assert_eq!(show, format!("show-{}", c.name()));
        }
    }

    #[test]
    fn values_are_checked() {
        assert_eq!(settings(&["-g", "rw"]).graph, GraphSource::ReadWrite);
        assert_eq!(settings(&["--grtype=sw"]).graph, GraphSource::Swapin);
        assert_eq!(settings(&["-H", "inline"]).help, HelpType::Inline);
        assert_eq!(settings(&["--no-help"]).help, HelpType::None);
        assert_eq!(settings(&["--no-help", "-H", "win"]).help, HelpType::Win);
        assert_eq!(settings(&["--threshold", "10"]).threshold.get(), 10);
        for bad in [
            &["-g", "x"][..],
            &["--threshold", "0"],
            &["--threshold", "11"],
            &["-H", "full"],
        ] {
            let args = std::iter::once("profiler").chain(bad.iter().copied());
            assert!(Cli::try_parse_from(args).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn write_keeps_only_the_options_before_it() {
        let cut = |args: &[&str]| -> Vec<String> {
            up_to_write(args.iter().map(Into::into).collect())
                .into_iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect()
        };
        assert_eq!(cut(&["p", "-o", "-W", "-k"]), ["p", "-o", "-W"]);
        assert_eq!(cut(&["p", "-oW", "-k"]), ["p", "-oW"]);
        assert_eq!(cut(&["p", "--write", "-k"]), ["p", "--write"]);
        assert_eq!(cut(&["p", "-u", "-W", "-k"]), ["p", "-u", "-W", "-k"]);
        assert_eq!(
            cut(&["p", "--user", "-W", "-W"]),
            ["p", "--user", "-W", "-W"]
        );
        assert_eq!(cut(&["p", "-uW", "-W", "-k"]), ["p", "-uW", "-W"]);
        assert_eq!(cut(&["p", "--", "-W"]), ["p", "--", "-W"]);
    }
}
