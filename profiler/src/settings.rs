//! What iotop-c's options and keys control, as one value: the command line and the config file
//! fill it, the views read it, and the full-screen view's keys change it. It knows no clap and
//! no terminal; parsing a column name or a graph type is here, so that every layer spells them
//! the same way.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::counter::Counter;

/// Every setting a user can keep in the config file, with iotop-c's defaults where they do
/// not change what profiler printed before (see [`Threshold`] and [`GraphSource`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Settings {
    /// `-o`: only tasks doing I/O.
    pub only: bool,
    /// `-P`: one row per process instead of per thread.
    pub processes: bool,
    /// `-k`: every amount in kilobytes.
    pub kilobytes: bool,
    /// `-a` / `-A` / neither: what the amounts are.
    pub amounts: Amounts,
    /// `-c`: the full command line (`/proc/PID/cmdline`) instead of the 15-character name.
    pub full_command: bool,
    /// `-1` … `-9`, `--hide-…` and `--show-…`: columns shown (true) or hidden (false) by
    /// choice. A column not named here is as the view has it by default (batch mode leaves out
    /// PRIO, the full-screen view the chars columns).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub columns: BTreeMap<Column, bool>,
    /// `-x`: how a task that exited is marked.
    pub exited: ExitedMark,
    /// `-e`: tasks that exited are not shown at all.
    pub hide_exited: bool,
    /// `-g`: what the history column plots.
    pub graph: GraphSource,
    /// `-R`: the most recent value on the right.
    pub reverse_graph: bool,
    /// `-H`: how the full-screen view shows its keys.
    pub help: HelpType,
    /// `--si`: powers of 1000 (kB, MB) instead of 1024.
    pub si: bool,
    /// `--threshold`: when an amount moves to the next unit.
    pub threshold: Threshold,
    /// `--ascii` / `--unicode`: characters for the history column and borders.
    pub charset: Charset,
    /// `-l` / `--color`: whether values are coloured.
    pub color: ColorChoice,
    /// Which colours, when coloured.
    pub theme: Theme,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            only: false,
            processes: false,
            kilobytes: false,
            amounts: Amounts::Current,
            full_command: false,
            columns: BTreeMap::new(),
            exited: ExitedMark::Background,
            hide_exited: false,
            graph: GraphSource::SortColumn,
            reverse_graph: false,
            help: HelpType::Win,
            si: false,
            threshold: Threshold::default(),
            charset: Charset::Unicode,
            color: ColorChoice::Auto,
            theme: Theme::Basic,
        }
    }
}

impl Settings {
    /// Whether a column is shown, in a view that shows it by default or not.
    pub fn shows(&self, column: Column, by_default: bool) -> bool {
        self.columns.get(&column).copied().unwrap_or(by_default)
    }

    /// iotop-c's `0` key: every column shown.
    pub fn show_all_columns(&mut self) {
        self.columns = Column::ALL.into_iter().map(|c| (c, true)).collect();
    }

    /// iotop-c's `1` … `9` keys: hide the column if shown, show it if hidden.
    pub fn toggle_column(&mut self, column: Column, by_default: bool) {
        let shown = self.shows(column, by_default);
        self.columns.insert(column, !shown);
    }

    /// Whether to colour, given the `NO_COLOR` variable: any non-empty value turns colour off
    /// (<https://no-color.org>) unless colour was asked for by name.
    pub fn colored(&self, no_color: Option<&std::ffi::OsStr>) -> bool {
        match self.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => no_color.is_none_or(|v| v.is_empty()),
        }
    }

    /// How amounts are scaled to units.
    pub fn units(&self) -> Units {
        Units {
            si: self.si,
            threshold: self.threshold,
        }
    }

    /// [`Settings::colored`] with this process's `NO_COLOR`.
    pub fn colored_here(&self) -> bool {
        self.colored(std::env::var_os("NO_COLOR").as_deref())
    }
}

/// How amounts are scaled: the base (1024, or 1000 with `--si`) and when to move to the next
/// unit (see [`Threshold`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Units {
    pub si: bool,
    pub threshold: Threshold,
}

impl Units {
    pub fn base(self) -> f64 {
        if self.si {
            1000.0
        } else {
            1024.0
        }
    }
}

/// What the amounts are: iotop-c's `a` key cycles through them in this order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Amounts {
    /// Rates over the last refresh.
    #[default]
    Current,
    /// `-a`: amounts since profiler started (no rate).
    Accumulated,
    /// `-A`: amounts since profiler started, divided by the time since then.
    AverageSinceStart,
}

impl Amounts {
    pub fn next(self) -> Amounts {
        match self {
            Amounts::Current => Amounts::Accumulated,
            Amounts::Accumulated => Amounts::AverageSinceStart,
            Amounts::AverageSinceStart => Amounts::Current,
        }
    }

    /// The session must sum deltas since the start for both of these.
    pub fn since_start(self) -> bool {
        self != Amounts::Current
    }
}

/// How a task that exited is marked in the full-screen view (batch mode prints `<exited>`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExitedMark {
    /// Its row on a grey (inverse) background.
    #[default]
    Background,
    /// `-x`: an `x` in its history where it had no data, the row otherwise plain.
    DeadX,
}

/// What the history column plots. iotop-c's five, and profiler's own default: the column the
/// rows are sorted by (what profiler did before this setting existed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GraphSource {
    #[default]
    #[serde(rename = "sort")]
    SortColumn,
    /// IO> (time waiting for block I/O).
    #[serde(rename = "io")]
    Io,
    /// DISK READ.
    #[serde(rename = "r")]
    Read,
    /// DISK WRITE.
    #[serde(rename = "w")]
    Write,
    /// DISK READ + DISK WRITE.
    #[serde(rename = "rw")]
    ReadWrite,
    /// SWAPIN.
    #[serde(rename = "sw")]
    Swapin,
}

impl GraphSource {
    pub const ALL: [GraphSource; 6] = [
        GraphSource::SortColumn,
        GraphSource::Io,
        GraphSource::Read,
        GraphSource::Write,
        GraphSource::ReadWrite,
        GraphSource::Swapin,
    ];

    /// As `-g` takes it and the config file stores it.
    pub const fn name(self) -> &'static str {
        match self {
            GraphSource::SortColumn => "sort",
            GraphSource::Io => "io",
            GraphSource::Read => "r",
            GraphSource::Write => "w",
            GraphSource::ReadWrite => "rw",
            GraphSource::Swapin => "sw",
        }
    }

    /// The counters summed for the plot; None: the sort column's.
    pub fn counters(self) -> Option<&'static [Counter]> {
        match self {
            GraphSource::SortColumn => None,
            GraphSource::Io => Some(&[Counter::BlkioDelay]),
            GraphSource::Read => Some(&[Counter::ReadBytes]),
            GraphSource::Write => Some(&[Counter::WriteBytes]),
            GraphSource::ReadWrite => Some(&[Counter::ReadBytes, Counter::WriteBytes]),
            GraphSource::Swapin => Some(&[Counter::SwapinDelay]),
        }
    }

    /// iotop-c's `g` key (forward) and `G` (backward).
    pub fn cycle(self, forward: bool) -> GraphSource {
        let at = GraphSource::ALL
            .iter()
            .position(|&g| g == self)
            .expect("every graph source is listed");
        let n = GraphSource::ALL.len();
        GraphSource::ALL[if forward {
            (at + 1) % n
        } else {
            (at + n - 1) % n
        }]
    }
}

impl fmt::Display for GraphSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A `-g` value that is none of the graph sources.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown graph type `{0}` (io, r, w, rw, sw or sort)")]
pub struct UnknownGraphSource(pub String);

impl std::str::FromStr for GraphSource {
    type Err = UnknownGraphSource;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        GraphSource::ALL
            .into_iter()
            .find(|g| g.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownGraphSource(s.to_string()))
    }
}

/// How the full-screen view shows its keys (`-H`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HelpType {
    /// No key hints.
    None,
    /// A window over the table, on `?`/`h`.
    #[default]
    Win,
    /// A line of key hints under the table.
    Inline,
}

/// Characters for the history column and the borders.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Charset {
    #[default]
    Unicode,
    /// For terminals and fonts without the block characters.
    Ascii,
}

/// Whether values are coloured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ColorChoice {
    /// Coloured unless `NO_COLOR` is set and not empty.
    #[default]
    Auto,
    /// `--color`: coloured, `NO_COLOR` or not.
    Always,
    /// `-l/--no-color`.
    Never,
}

/// The colours used when colouring.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Theme {
    /// The eight ANSI colours only, on the terminal's own background: readable on any terminal
    /// that has colour, light or dark.
    #[default]
    Basic,
    /// The 256-colour palette, for gradients in the history column.
    Extended,
}

/// iotop-c's `--threshold 1..10`: an amount moves to the next unit once it reaches
/// `threshold × base` (base 1024, or 1000 with `--si`). profiler's default is 1 (1024 B is
/// `1.00 K`), which is what it always printed; iotop-c's is 2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct Threshold(u8);

impl Threshold {
    pub const MIN: u8 = 1;
    pub const MAX: u8 = 10;

    pub fn new(n: u8) -> Result<Threshold, ThresholdError> {
        if (Threshold::MIN..=Threshold::MAX).contains(&n) {
            Ok(Threshold(n))
        } else {
            Err(ThresholdError(n.to_string()))
        }
    }

    pub const fn get(self) -> u8 {
        self.0
    }

    /// iotop-c's Ctrl-R: 1, 2, … 10, 1.
    pub fn next(self) -> Threshold {
        Threshold(self.0 % Threshold::MAX + 1)
    }
}

impl Default for Threshold {
    fn default() -> Self {
        Threshold(1)
    }
}

/// A `--threshold` outside 1..10.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("the threshold must be a whole number from 1 to 10, not `{0}`")]
pub struct ThresholdError(pub String);

impl std::str::FromStr for Threshold {
    type Err = ThresholdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse::<u8>()
            .map_err(|_| ThresholdError(s.to_string()))
            .and_then(Threshold::new)
    }
}

impl TryFrom<u8> for Threshold {
    type Error = ThresholdError;
    fn try_from(n: u8) -> Result<Self, Self::Error> {
        Threshold::new(n)
    }
}

impl From<Threshold> for u8 {
    fn from(t: Threshold) -> u8 {
        t.0
    }
}

/// A column that can be hidden. The first nine are iotop-c's, with its numbers (`-1` … `-9`,
/// keys `1` … `9`); the rest are profiler's own and have no number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Column {
    /// PID or TID (PROCS for containers).
    Pid,
    /// I/O priority (class/level).
    Prio,
    User,
    /// DISK READ: `read_bytes`.
    Read,
    /// DISK WRITE: `write_bytes`.
    Write,
    /// SWAPIN: `swapin_delay_ns` as a share of the interval.
    Swapin,
    /// IO>: `blkio_delay_ns` as a share of the interval.
    Io,
    /// The history column (iotop-c's GRAPH).
    Graph,
    Command,
    /// profiler's: the task's container.
    Container,
    /// profiler's: read and write syscalls (`syscr`, `syscw`).
    Syscalls,
    /// profiler's: bytes through read/write syscalls (`rchar`, `wchar`).
    Chars,
}

impl Column {
    pub const ALL: [Column; 12] = [
        Column::Pid,
        Column::Prio,
        Column::User,
        Column::Read,
        Column::Write,
        Column::Swapin,
        Column::Io,
        Column::Graph,
        Column::Command,
        Column::Container,
        Column::Syscalls,
        Column::Chars,
    ];

    /// As `--hide-NAME`/`--show-NAME` and the config file spell it.
    pub const fn name(self) -> &'static str {
        match self {
            Column::Pid => "pid",
            Column::Prio => "prio",
            Column::User => "user",
            Column::Read => "read",
            Column::Write => "write",
            Column::Swapin => "swapin",
            Column::Io => "io",
            Column::Graph => "graph",
            Column::Command => "command",
            Column::Container => "container",
            Column::Syscalls => "syscalls",
            Column::Chars => "chars",
        }
    }

    /// iotop-c's number for it (`-N`, key `N`); None for profiler's own columns.
    pub fn iotop_number(self) -> Option<u8> {
        let at = Column::ALL.iter().position(|&c| c == self)?;
        (at < 9).then(|| at as u8 + 1)
    }

    pub fn from_iotop_number(n: u8) -> Option<Column> {
        (1..=9)
            .contains(&n)
            .then(|| Column::ALL[usize::from(n) - 1])
    }

    /// The counters shown in it, none for the columns that show no counter.
    pub fn counters(self) -> &'static [Counter] {
        match self {
            Column::Read => &[Counter::ReadBytes],
            Column::Write => &[Counter::WriteBytes],
            Column::Swapin => &[Counter::SwapinDelay],
            Column::Io => &[Counter::BlkioDelay],
            Column::Syscalls => &[Counter::Syscr, Counter::Syscw],
            Column::Chars => &[Counter::Rchar, Counter::Wchar],
            Column::Pid
            | Column::Prio
            | Column::User
            | Column::Graph
            | Column::Command
            | Column::Container => &[],
        }
    }

    /// The column a counter is shown in; None for counters no column shows.
    pub fn of_counter(counter: Counter) -> Option<Column> {
        Column::ALL
            .into_iter()
            .find(|c| c.counters().contains(&counter))
    }
}

impl fmt::Display for Column {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iotop_numbers_are_iotop_c_s() {
        let numbered: Vec<(u8, &str)> = (1..=9)
            .map(|n| (n, Column::from_iotop_number(n).expect("numbered").name()))
            .collect();
        assert_eq!(
            numbered,
            [
                (1, "pid"),
                (2, "prio"),
                (3, "user"),
                (4, "read"),
                (5, "write"),
                (6, "swapin"),
                (7, "io"),
                (8, "graph"),
                (9, "command")
            ]
        );
        assert_eq!(Column::from_iotop_number(0), None);
        assert_eq!(Column::from_iotop_number(10), None);
        assert_eq!(Column::Syscalls.iotop_number(), None);
        for c in Column::ALL {
            if let Some(n) = c.iotop_number() {
                assert_eq!(Column::from_iotop_number(n), Some(c));
            }
        }
    }

    #[test]
    fn every_shown_counter_has_a_column() {
        for &c in Counter::BATCH.iter().chain(Counter::TABLE) {
            assert!(Column::of_counter(c).is_some(), "{c:?}");
        }
        assert_eq!(Column::of_counter(Counter::CancelledWriteBytes), None);
    }

    #[test]
    fn no_color_is_honoured_unless_colour_is_asked_for() {
        let mut s = Settings::default();
        let set = Some(std::ffi::OsStr::new("1"));
        let empty = Some(std::ffi::OsStr::new(""));
        assert!(s.colored(None));
        assert!(s.colored(empty), "an empty NO_COLOR is no request");
        assert!(!s.colored(set));
        s.color = ColorChoice::Always;
        assert!(s.colored(set));
        s.color = ColorChoice::Never;
        assert!(!s.colored(None));
    }

    #[test]
    fn cycles_come_back() {
        let mut a = Amounts::Current;
        let mut seen = vec![a];
        for _ in 0..3 {
            a = a.next();
            seen.push(a);
        }
        assert_eq!(
            seen,
            [
                Amounts::Current,
                Amounts::Accumulated,
                Amounts::AverageSinceStart,
                Amounts::Current
            ]
        );
        for g in GraphSource::ALL {
            assert_eq!(g.cycle(true).cycle(false), g);
            assert_eq!(g.name().parse::<GraphSource>(), Ok(g));
        }
        assert!("rx".parse::<GraphSource>().is_err());
        let mut t = Threshold::default();
        for _ in 0..10 {
            t = t.next();
        }
        assert_eq!(t, Threshold::default());
        assert!("0".parse::<Threshold>().is_err());
        assert!("11".parse::<Threshold>().is_err());
        assert_eq!("10".parse::<Threshold>().map(Threshold::get), Ok(10));
    }

    #[test]
    fn toggling_a_column_twice_shows_it_again() {
        let mut s = Settings::default();
        assert!(s.shows(Column::Prio, true) && !s.shows(Column::Prio, false));
        s.toggle_column(Column::Prio, true);
        assert!(!s.shows(Column::Prio, true));
        s.toggle_column(Column::Prio, true);
        assert!(s.shows(Column::Prio, true));
        s.toggle_column(Column::Chars, false);
        assert!(s.shows(Column::Chars, false), "shown on request");
        s.toggle_column(Column::Graph, true);
        s.show_all_columns();
        assert!(Column::ALL.iter().all(|&c| s.shows(c, false)));
    }
}
