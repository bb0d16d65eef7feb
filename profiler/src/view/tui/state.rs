//! The state the event loop owns: what the user chose (sort, filters, modes, scroll) and what
//! it learnt along the way (history, I/O priorities, user names). Keys change it here, without
//! touching the terminal, so every transition can be tested.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::path::PathBuf;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use regex::Regex;

mod columns;
mod history;
mod input;
mod prompt;

use super::replay::ReplayKey;
use super::sampler::{IoPrio, Refresh, SamplerCommand};
use crate::counter::Counter;
use crate::model::Row;
use crate::settings::{self, Amounts, Charset, ColorChoice, ExitedMark, HelpType, Settings};
use crate::source::{SourceKind, Unavailable};
use crate::view::ViewOptions;
pub use columns::{Column, Grouping};
pub use history::{History, HISTORY_LEN};
pub use input::IoClass;
pub use prompt::{Input, InputKind};

/// What the table shows when several sources are compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shown {
    /// One source's table (index into the snapshot's views).
    Source(usize),
    /// Every source side by side, for one counter, with the difference.
    Compare,
}

/// The sources in use, as the session described them at start.
#[derive(Clone, Debug, Default)]
pub struct Sources {
    pub kinds: Vec<SourceKind>,
    /// `Session::source_line`: which source answered and why earlier ones did not.
    pub line: String,
    /// `Session::unavailable`: counters a source cannot measure, with the reason and the fix.
    pub unavailable: Vec<(SourceKind, Unavailable)>,
}

impl Sources {
    pub fn compare(&self) -> bool {
        self.kinds.len() > 1
    }

    /// Is `counter` measurable by the source `kind`, as far as the session said at start?
    pub fn measures(&self, kind: SourceKind, counter: Counter) -> bool {
        !self
            .unavailable
            .iter()
            .any(|(k, u)| *k == kind && u.counters.contains(&counter))
    }
}

/// What a key asks of the event loop, besides the state change itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    None,
    Quit,
    Sampler(SamplerCommand),
    /// `W`: write the settings to the config file.
    Save,
    /// `i`: set the I/O priority of a task (every thread of it, for a process row).
    Ionice {
        id: u32,
        process: bool,
        prio: IoPrio,
    },
    /// Ctrl-T: switch `kernel.task_delayacct`.
    DelayAcct,
    /// Ctrl-L: clear the terminal and draw it all again.
    Redraw,
}

/// How much of the table there is and how much fits, for scrolling keys.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Geometry {
    pub rows: usize,
    pub page: usize,
    /// The task on the first row on screen: what `i` offers to ionice.
    pub top: Option<u32>,
}

/// Everything the TUI shows besides the measurements themselves.
#[derive(Clone, Debug)]
pub struct ViewState {
    /// Only, users, containers, kilobytes, accumulated, per-container rows (as asked; a
    /// refresh says what its data is). What [`ViewState::settings`] holds is copied here.
    pub view: ViewOptions,
    /// What iotop-c's keys change and `W` saves; `processes` takes effect at the next refresh.
    pub settings: Settings,
    /// Where `W` writes the settings; None when neither XDG_CONFIG_HOME nor HOME is set.
    pub config_path: Option<PathBuf>,
    /// `NO_COLOR` was set (and not empty) when the view started.
    pub no_color: bool,
    /// What the last key did that needs saying (settings written, ionice refused, …).
    pub status: Option<String>,
    /// `f`'s PID filter: only these processes; empty: all.
    pub pids: Vec<u32>,
    /// Command lines (`c`) by (pid, start time), looked up for the rows on screen.
    pub cmdlines: HashMap<(u32, Option<u64>), String>,
    pub sort: Column,
    pub reverse: bool,
    /// First row on screen.
    pub scroll: usize,
    /// The help window (`h`).
    pub help: bool,
    pub frozen: bool,
    /// Refreshes that arrived while frozen.
    pub behind: u32,
    pub shown: Shown,
    pub filter: Option<Regex>,
    /// What `f` was given (or the `--user` names), for the header.
    pub user_label: Option<String>,
    pub input: Option<Input>,
    pub sources: Sources,
    /// The last refresh failed: why.
    pub error: Option<String>,
    /// One per source, in the snapshot's order.
    pub history: Vec<History>,
    /// I/O priority by TID (PID for process rows), of the rows last on screen.
    pub prio: HashMap<u32, IoPrio>,
    pub users: HashMap<u32, String>,
    /// Showing a recording: where in it, and its keys.
    pub replay: Option<super::replay::Replay>,
}

impl ViewState {
    pub fn new(sources: Sources, view: ViewOptions, processes: bool) -> ViewState {
        let sort = default_sort(&sources);
        let shown = if sources.compare() {
            Shown::Compare
        } else {
            Shown::Source(0)
        };
        let settings = Settings {
            only: view.only,
            processes,
            kilobytes: view.kilobytes,
            amounts: if view.accumulated {
                Amounts::Accumulated
            } else {
                Amounts::Current
            },
            columns: view.columns.clone(),
            full_command: view.full_command,
            hide_exited: view.hide_exited,
            si: view.units.si,
            threshold: view.units.threshold,
            ..Settings::default()
        };
        ViewState {
            view,
            settings,
            config_path: None,
            no_color: false,
            status: None,
            pids: Vec::new(),
            cmdlines: HashMap::new(),
            sort,
            reverse: false,
            scroll: 0,
            help: false,
            frozen: false,
            behind: 0,
            shown,
            filter: None,
            user_label: None,
            input: None,
            history: vec![History::default(); sources.kinds.len().max(1)],
            sources,
            error: None,
            prio: HashMap::new(),
            users: HashMap::new(),
            replay: None,
        }
    }

    /// With the settings given (the config file's and the command line's), and the
    /// environment's config path and `NO_COLOR`.
    pub fn with_settings(
        mut self,
        settings: Settings,
        config_path: Option<PathBuf>,
        no_color: bool,
    ) -> ViewState {
        self.settings = settings;
        self.config_path = config_path;
        self.no_color = no_color;
        self.settings_changed();
        self
    }

    /// The rows asked for (the refresh on screen may still have the previous kind).
    pub fn grouping(&self) -> Grouping {
        Grouping::of(self.settings.processes, self.view.by_container)
    }

    /// Whether values are coloured: `l`, `--color`, `-l` and `NO_COLOR`.
    pub fn colored(&self) -> bool {
        match self.settings.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => !self.no_color,
        }
    }

    /// Whether a column is shown by the settings.
    pub fn shows_column(&self, column: Column) -> bool {
        self.settings
            .shows(column.setting(), column.shown_by_default())
    }

    pub fn descending(&self) -> bool {
        self.sort.descending_by_default() != self.reverse
    }

    /// The counter the history and the compare table follow: the sort column's, else DISK WRITE.
    pub fn focus(&self) -> Counter {
        match self.sort {
            Column::Counter(c) => c,
            _ => Counter::WriteBytes,
        }
    }

    /// Takes a refresh in: history, and clears a past sampling error.
    pub fn record(&mut self, refresh: &Refresh) {
        let n = refresh.snapshot.models.len();
        if self.history.len() != n {
            self.history = vec![History::default(); n];
        }
        for (h, v) in self.history.iter_mut().zip(&refresh.snapshot.models) {
            h.record(&v.model, refresh.accumulated, refresh.containers);
        }
        self.error = None;
    }

    /// Does the row pass the filters (only, users, containers, the `/` regex)?
    pub fn shows(&self, row: &Row) -> bool {
        self.view.shows(row)
            && (self.pids.is_empty() || self.pids.contains(&row.pid))
            && self.matches_filter(row)
    }

    /// The `/` regex finds the command or the container label.
    pub fn matches_filter(&self, row: &Row) -> bool {
        self.filter.as_ref().is_none_or(|re| {
            re.is_match(row.name()) || row.container.as_deref().is_some_and(|c| re.is_match(c))
        })
    }

    pub fn user_name(&self, uid: Option<u32>) -> Option<&str> {
        uid.and_then(|u| self.users.get(&u)).map(String::as_str)
    }

    /// The value a counter column sorts by; None for the other columns.
    pub fn sort_value(&self, row: &Row, interval_s: f64, accumulated: bool) -> Option<f64> {
        match self.sort {
            Column::Counter(c) => c.value(&row.delta, interval_s, accumulated),
            _ => None,
        }
    }

    /// Orders items that `label` turns into rows (a compare-mode item joins several) by the sort
    /// column: unmeasured values last either way, then by id. A counter column sorts by
    /// `counter_value`.
    pub fn order_by<T>(
        &self,
        a: &T,
        b: &T,
        label: impl Fn(&T) -> &Row,
        counter_value: impl Fn(&T) -> Option<f64>,
    ) -> Ordering {
        let (ra, rb) = (label(a), label(b));
        let id = |r: &Row| r.id();
        let (va, vb) = match self.sort {
            Column::Counter(_) => (counter_value(a), counter_value(b)),
            _ => (None, None),
        };
        let primary = match self.sort {
            Column::Id | Column::History => Some(id(ra).cmp(&id(rb))),
            Column::Prio => both(
                self.prio_of(ra).map(IoPrio::rank),
                self.prio_of(rb).map(IoPrio::rank),
            ),
            Column::User => both(self.user_name(ra.uid), self.user_name(rb.uid)),
            Column::Container => both(ra.container.as_deref(), rb.container.as_deref()),
            Column::Command => Some(ra.name().cmp(rb.name())),
            Column::Counter(_) => va.zip(vb).map(|(x, y)| x.total_cmp(&y)),
        };
        let has = |r: &Row, v: Option<f64>| match self.sort {
            Column::Prio => self.prio_of(r).is_some(),
            Column::User => self.user_name(r.uid).is_some(),
            Column::Container => r.container.is_some(),
            Column::Counter(_) => v.is_some(),
            _ => true,
        };
        match primary {
            Some(o) if self.descending() => o.reverse(),
            Some(o) => o,
            // Unmeasured goes last whatever the direction.
            None => has(rb, vb).cmp(&has(ra, va)),
        }
        .then_with(|| id(ra).cmp(&id(rb)))
        // Container rows with as many processes: by label, not by the session's order.
        .then_with(|| ra.name().cmp(rb.name()))
    }

    fn prio_of(&self, row: &Row) -> Option<IoPrio> {
        self.prio.get(&row.id()).copied()
    }

    fn step_sort(&mut self, forward: bool) {
        let cols = Column::sortable(&self.settings, self.grouping());
        if cols.is_empty() {
            return;
        }
        let at = cols.iter().position(|&c| c == self.sort).unwrap_or(0);
        let next = if forward {
            (at + 1) % cols.len()
        } else {
            (at + cols.len() - 1) % cols.len()
        };
        self.sort = cols[next];
        self.reverse = false;
    }

    fn scroll_by(&mut self, geometry: Geometry, delta: isize) {
        let last = geometry.rows.saturating_sub(geometry.page.max(1));
        let at = self.scroll.min(last) as isize + delta;
        self.scroll = (at.max(0) as usize).min(last);
    }

    /// One key; `geometry` is the table as last drawn, for scrolling.
    pub fn on_key(&mut self, key: KeyEvent, geometry: Geometry) -> Action {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && matches!(key.code, KeyCode::Char('c' | 'C')) {
            return Action::Quit;
        }
        if self.input.is_some() {
            return self.on_input_key(key);
        }
        if self.replay.is_some() {
            match super::replay::key(key) {
                Some(ReplayKey::Step(n)) => return Action::Sampler(SamplerCommand::Step(n)),
                Some(ReplayKey::AskTime) => {
                    self.open_prompt(InputKind::Time);
                    return Action::None;
                }
                None => {}
            }
        }
        // What a key said is for until the next key.
        self.status = None;
        if self.help {
            self.help = false;
            return if key.code == KeyCode::Char('q') {
                Action::Quit
            } else {
                Action::None
            };
        }
        if ctrl {
            return self.on_ctrl_key(key.code);
        }
        match key.code {
            KeyCode::Char('q' | 'Q') => return Action::Quit,
            KeyCode::Left => self.step_sort(false),
            KeyCode::Right => self.step_sort(true),
            KeyCode::Char('r' | ' ') => self.reverse = !self.reverse,
            KeyCode::Char('o' | 'O') => {
                self.settings.only = !self.settings.only;
                self.settings_changed();
                self.scroll = 0;
            }
            KeyCode::Char('p' | 'P') => {
                self.settings.processes = !self.settings.processes;
                self.view.by_container = false;
                return self.rows_asked();
            }
            KeyCode::Char('v' | 'V') => {
                self.next_grouping();
                return self.rows_asked();
            }
            KeyCode::Char('a' | 'A') => {
                self.settings.amounts = self.settings.amounts.next();
                self.settings_changed();
                // Rates and amounts do not chart together.
                self.history.iter_mut().for_each(History::clear);
                return self.rows_asked();
            }
            KeyCode::Char('w') => self.toggle_column(settings::Column::Chars),
            KeyCode::Char(n @ '1'..='9') => {
                if let Some(c) = settings::Column::from_iotop_number(n as u8 - b'0') {
                    self.toggle_column(c);
                }
            }
            KeyCode::Char('0') => {
                self.settings.show_all_columns();
                self.settings_changed();
            }
            KeyCode::Char('c' | 'C') => {
                self.settings.full_command = !self.settings.full_command;
                self.settings_changed();
            }
            KeyCode::Char('g') => self.settings.graph = self.settings.graph.cycle(true),
            KeyCode::Char('G') => self.settings.graph = self.settings.graph.cycle(false),
            KeyCode::Char('R') => self.settings.reverse_graph = !self.settings.reverse_graph,
            KeyCode::Char('u' | 'U') => {
                self.settings.charset = match self.settings.charset {
                    Charset::Unicode => Charset::Ascii,
                    Charset::Ascii => Charset::Unicode,
                }
            }
            KeyCode::Char('l' | 'L') => {
                self.settings.color = if self.colored() {
                    ColorChoice::Never
                } else {
                    ColorChoice::Always
                }
            }
            KeyCode::Char('x' | 'X') => {
                self.settings.exited = match self.settings.exited {
                    ExitedMark::Background => ExitedMark::DeadX,
                    ExitedMark::DeadX => ExitedMark::Background,
                }
            }
            KeyCode::Char('e' | 'E') => {
                self.settings.hide_exited = !self.settings.hide_exited;
                self.settings_changed();
                self.scroll = 0;
            }
            KeyCode::Char('s' | 'S') => self.frozen = !self.frozen,
            KeyCode::Tab if self.sources.compare() => self.next_shown(),
            KeyCode::Char('?') => {
                self.settings.help = match self.settings.help {
                    HelpType::Inline => HelpType::Win,
                    HelpType::Win | HelpType::None => HelpType::Inline,
                }
            }
            KeyCode::Char('h' | 'H') => self.help = true,
            KeyCode::Char('/') => self.open_prompt(InputKind::Command),
            KeyCode::Char('f' | 'F') => self.open_prompt(InputKind::User),
            KeyCode::Char('i' | 'I') => self.open_ionice(geometry.top),
            KeyCode::Char('W') => return Action::Save,
            KeyCode::Char('D') => {
                self.settings = Settings::default();
                self.settings_changed();
                self.history.iter_mut().for_each(History::clear);
                self.scroll = 0;
                return self.rows_asked();
            }
            KeyCode::Up => self.scroll_by(geometry, -1),
            KeyCode::Down => self.scroll_by(geometry, 1),
            KeyCode::PageUp => self.scroll_by(geometry, -(geometry.page.max(1) as isize)),
            KeyCode::PageDown => self.scroll_by(geometry, geometry.page.max(1) as isize),
            KeyCode::Home => self.scroll = 0,
            KeyCode::End => self.scroll = geometry.rows.saturating_sub(geometry.page.max(1)),
            KeyCode::Esc => self.filter_cleared(),
            _ => {}
        }
        Action::None
    }

    /// iotop-c's Ctrl keys: SI units, the unit threshold, delay accounting, redraw.
    fn on_ctrl_key(&mut self, code: KeyCode) -> Action {
        match code {
            KeyCode::Char('b' | 'B') => {
                self.settings.si = !self.settings.si;
                self.settings_changed();
            }
            KeyCode::Char('r' | 'R') => {
                self.settings.threshold = self.settings.threshold.next();
                self.settings_changed();
                self.status = Some(format!(
                    "unit threshold {}: the next unit from {} times its size",
                    self.settings.threshold.get(),
                    self.settings.threshold.get()
                ));
            }
            KeyCode::Char('t' | 'T') => return Action::DelayAcct,
            KeyCode::Char('l' | 'L') => return Action::Redraw,
            _ => {}
        }
        Action::None
    }

    /// Copies what the settings say into the view options the rows are filtered by.
    pub fn settings_changed(&mut self) {
        let s = &self.settings;
        self.view.only = s.only;
        self.view.kilobytes = s.kilobytes;
        self.view.accumulated = s.amounts == Amounts::Accumulated;
        self.view.columns.clone_from(&s.columns);
        self.view.full_command = s.full_command;
        self.view.hide_exited = s.hide_exited;
        self.view.units = s.units();
        self.keep_sort_shown();
    }

    /// What the sampler is to group and sum from the next refresh, as asked now.
    fn rows_asked(&mut self) -> Action {
        self.scroll = 0;
        if self.view.by_container {
            match self.sort {
                // The label is where the command was.
                Column::Container => self.sort = Column::Command,
                Column::Prio | Column::User => {
                    self.sort = default_sort(&self.sources);
                    self.reverse = false;
                }
                _ => {}
            }
        }
        self.keep_sort_shown();
        Action::Sampler(SamplerCommand::Rows {
            processes: self.settings.processes,
            containers: self.view.by_container,
            amounts: self.settings.amounts,
        })
    }

    /// `v`: threads, processes, containers, threads again.
    fn next_grouping(&mut self) {
        match self.grouping() {
            Grouping::Threads => self.settings.processes = true,
            Grouping::Processes => self.view.by_container = true,
            Grouping::Containers => {
                self.view.by_container = false;
                self.settings.processes = false;
            }
        }
    }

    /// `1` … `9`, `w`: hides the column if shown, shows it if hidden.
    fn toggle_column(&mut self, column: settings::Column) {
        let by_default = column != settings::Column::Chars;
        self.settings.toggle_column(column, by_default);
        self.settings_changed();
    }

    /// A hidden column sorts no more: DISK WRITE does, or the first column left.
    fn keep_sort_shown(&mut self) {
        let cols = Column::sortable(&self.settings, self.grouping());
        if cols.contains(&self.sort) || cols.is_empty() {
            return;
        }
        let write = Column::Counter(Counter::WriteBytes);
        self.sort = if cols.contains(&write) {
            write
        } else {
            cols[0]
        };
        self.reverse = false;
    }

    /// Tab in compare mode: the next source's table, then all side by side.
    fn next_shown(&mut self) {
        let n = self.sources.kinds.len();
        self.shown = match self.shown {
            Shown::Compare => Shown::Source(0),
            Shown::Source(i) if i + 1 < n => Shown::Source(i + 1),
            Shown::Source(_) => Shown::Compare,
        };
        self.scroll = 0;
    }

    /// Esc outside a prompt: drop the command, user and process filters.
    fn filter_cleared(&mut self) {
        self.filter = None;
        self.pids.clear();
        self.view.uids.clear();
        self.user_label = None;
    }
}

/// iotop sorts by IO> first; where the source cannot measure it, by what it can.
fn default_sort(sources: &Sources) -> Column {
    let io_wait = sources
        .kinds
        .first()
        .is_some_and(|&k| sources.measures(k, Counter::BlkioDelay));
    Column::Counter(if io_wait {
        Counter::BlkioDelay
    } else {
        Counter::WriteBytes
    })
}

fn both<T: Ord>(a: Option<T>, b: Option<T>) -> Option<Ordering> {
    Some(a?.cmp(&b?))
}
