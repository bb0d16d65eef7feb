//! The state the event loop owns: what the user chose (sort, filters, modes, scroll) and what
//! it learnt along the way (history, I/O priorities, user names). Keys change it here, without
//! touching the terminal, so every transition can be tested.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::HashMap;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use regex::Regex;

mod history;
mod prompt;

use super::sampler::{IoPrio, Refresh, SamplerCommand};
use crate::counter::{Counter, Unit};
use crate::model::Row;
use crate::sample::Counters;
use crate::source::{SourceKind, Unavailable};
use crate::view::ViewOptions;
pub use history::{History, HISTORY_LEN};
use prompt::{compile_filter, Edit};
pub use prompt::{Input, InputKind};

impl Counter {
    /// What a cell shows, as a number: per second, or the amount in accumulated mode; delays
    /// as a share of the interval either way (as the batch view does).
    pub fn value(self, counters: &Counters, interval_s: f64, accumulated: bool) -> Option<f64> {
        let raw = counters.get(self)? as f64;
        Some(match self.unit() {
            Unit::Nanoseconds if interval_s > 0.0 => raw / 1e9 / interval_s * 100.0,
            Unit::Nanoseconds => 0.0,
            _ if accumulated || interval_s <= 0.0 => raw,
            _ => raw / interval_s,
        })
    }
}

/// What a row of the table is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grouping {
    Threads,
    Processes,
    /// One row per container: the id column counts processes, the command is the label.
    Containers,
}

impl Grouping {
    pub fn of(processes: bool, containers: bool) -> Grouping {
        match (containers, processes) {
            (true, _) => Grouping::Containers,
            (false, true) => Grouping::Processes,
            (false, false) => Grouping::Threads,
        }
    }
}

/// A column of the per-task table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Column {
    Id,
    Prio,
    User,
    Container,
    Counter(Counter),
    History,
    Command,
}

impl Column {
    /// Left to right. Container rows have no user or priority, and their label is in the
    /// command's place.
    pub fn display_order(char_columns: bool, grouping: Grouping) -> Vec<Column> {
        let mut cols = vec![Column::Id];
        if grouping != Grouping::Containers {
            cols.extend([Column::Prio, Column::User, Column::Container]);
        }
        cols.extend(
            Counter::TABLE
                .iter()
                .copied()
                .filter(|c| char_columns || !c.spec().on_request)
                .map(Column::Counter),
        );
        cols.extend([Column::History, Column::Command]);
        cols
    }

    /// What left/right step through: every shown column but the history.
    pub fn sortable(char_columns: bool, grouping: Grouping) -> Vec<Column> {
        Column::display_order(char_columns, grouping)
            .into_iter()
            .filter(|&c| c != Column::History)
            .collect()
    }

    /// As iotop: amounts largest first, names and ids in ascending order.
    pub fn descending_by_default(self) -> bool {
        matches!(self, Column::Counter(_))
    }

    /// The header, and a shorter one for narrow terminals. `grouping` names the id and the
    /// command; `accumulated` drops the per-second of syscall counts.
    pub fn headers(
        self,
        grouping: Grouping,
        accumulated: bool,
    ) -> (Cow<'static, str>, Cow<'static, str>) {
        let id = match grouping {
            Grouping::Threads => "TID",
            Grouping::Processes => "PID",
            Grouping::Containers => "PROCS",
        };
        let (long, short) = match self {
            Column::Id => (id, id),
            Column::Prio => ("PRIO", "PRIO"),
            Column::User => ("USER", "USER"),
            Column::Container => ("CONTAINER", "CONT"),
            Column::Counter(c) => {
                let spec = c.spec();
                // Byte amounts say their rate in each cell; counts of calls in the heading.
                return if spec.unit == Unit::Calls && !accumulated {
                    (
                        format!("{}/s", spec.title).into(),
                        format!("{}/s", spec.short).into(),
                    )
                } else {
                    (spec.title.into(), spec.short.into())
                };
            }
            Column::History => ("HISTORY", "HIST"),
            Column::Command if grouping == Grouping::Containers => ("CONTAINER", "CONTAINER"),
            Column::Command => ("COMMAND", "COMMAND"),
        };
        (long.into(), short.into())
    }

    /// The name the header line uses for the sort key.
    pub fn name(self, grouping: Grouping) -> Cow<'static, str> {
        match self {
            Column::Counter(c) => c.spec().title.into(),
            c => c.headers(grouping, false).0,
        }
    }
}

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
}

/// How much of the table there is and how much fits, for scrolling keys.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Geometry {
    pub rows: usize,
    pub page: usize,
}

/// Everything the TUI shows besides the measurements themselves.
#[derive(Clone, Debug)]
pub struct ViewState {
    /// Only, users, containers, kilobytes, accumulated, per-container rows (as asked; a
    /// refresh says what its data is).
    pub view: ViewOptions,
    /// As asked; takes effect at the next refresh.
    pub processes: bool,
    pub sort: Column,
    pub reverse: bool,
    /// First row on screen.
    pub scroll: usize,
    /// RCHAR and WCHAR columns.
    pub char_columns: bool,
    pub help: bool,
    pub frozen: bool,
    /// Refreshes that arrived while frozen.
    pub behind: u32,
    pub shown: Shown,
    pub filter: Option<Regex>,
    /// What `u` was given (or the `--user` names), for the header.
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
        ViewState {
            view,
            processes,
            sort,
            reverse: false,
            scroll: 0,
            char_columns: false,
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

    /// The rows asked for (the refresh on screen may still have the previous kind).
    pub fn grouping(&self) -> Grouping {
        Grouping::of(self.processes, self.view.by_container)
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
        self.view.shows(row) && self.matches_filter(row)
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
        let cols = Column::sortable(self.char_columns, self.grouping());
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
        if key.modifiers.contains(KeyModifiers::CONTROL)
            && matches!(key.code, KeyCode::Char('c' | 'C'))
        {
            return Action::Quit;
        }
        if let Some(asked) = self.replay.as_mut().and_then(|r| r.on_key(key)) {
            return asked.map_or(Action::None, Action::Sampler);
        }
        if self.input.is_some() {
            return self.on_input_key(key);
        }
        if self.help {
            self.help = false;
            return if key.code == KeyCode::Char('q') {
                Action::Quit
            } else {
                Action::None
            };
        }
        match key.code {
            KeyCode::Char('q' | 'Q') => return Action::Quit,
            KeyCode::Left => self.step_sort(false),
            KeyCode::Right => self.step_sort(true),
            KeyCode::Char('r' | 'R') => self.reverse = !self.reverse,
            KeyCode::Char('o' | 'O') => {
                self.view.only = !self.view.only;
                self.scroll = 0;
            }
            KeyCode::Char('p' | 'P') => {
                self.processes = !self.processes;
                return Action::Sampler(SamplerCommand::Processes(self.processes));
            }
            KeyCode::Char('a' | 'A') => {
                self.view.accumulated = !self.view.accumulated;
                // Rates and amounts do not chart together.
                self.history.iter_mut().for_each(History::clear);
                return Action::Sampler(SamplerCommand::Accumulated(self.view.accumulated));
            }
            KeyCode::Char('c' | 'C') => {
                return Action::Sampler(SamplerCommand::Containers(self.toggle_containers()))
            }
            KeyCode::Char('x' | 'X') => self.toggle_char_columns(),
            KeyCode::Char('?' | 'h' | 'H') => self.help = true,
            KeyCode::Char('f' | 'F') => self.frozen = !self.frozen,
            KeyCode::Char('s' | 'S') if self.sources.compare() => self.next_shown(),
            KeyCode::Char('/') => self.open_prompt(InputKind::Command),
            KeyCode::Char('u' | 'U') => self.open_prompt(InputKind::User),
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

    /// `c`: one row per container, or per task again; returns what the sampler is to group.
    fn toggle_containers(&mut self) -> bool {
        self.view.by_container = !self.view.by_container;
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
        self.view.by_container
    }

    /// `x`: the RCHAR and WCHAR columns; hiding the sort column sorts by DISK WRITE.
    fn toggle_char_columns(&mut self) {
        self.char_columns = !self.char_columns;
        if !self.char_columns && matches!(self.sort, Column::Counter(c) if c.spec().on_request) {
            self.sort = Column::Counter(Counter::WriteBytes);
            self.reverse = false;
        }
    }

    /// `s` in compare mode: the next source's table, then all side by side.
    fn next_shown(&mut self) {
        let n = self.sources.kinds.len();
        self.shown = match self.shown {
            Shown::Compare => Shown::Source(0),
            Shown::Source(i) if i + 1 < n => Shown::Source(i + 1),
            Shown::Source(_) => Shown::Compare,
        };
        self.scroll = 0;
    }

    /// Opens a prompt on what it filters now, the cursor at the end.
    fn open_prompt(&mut self, kind: InputKind) {
        self.input = Some(match kind {
            InputKind::Command => {
                let text = self
                    .filter
                    .as_ref()
                    .map(|re| re.as_str().to_string())
                    .unwrap_or_default();
                Input::new(kind, text, self.filter.clone())
            }
            InputKind::User => Input::new(kind, self.user_label.clone().unwrap_or_default(), None),
        });
    }

    fn on_input_key(&mut self, key: KeyEvent) -> Action {
        let Some(input) = self.input.as_mut() else {
            return Action::None;
        };
        match input.on_key(key) {
            Edit::Cancel => {
                if input.kind == InputKind::Command {
                    self.filter = input.take_before();
                }
                self.input = None;
                return Action::None;
            }
            Edit::Submit => {
                self.submit_input();
                return Action::None;
            }
            Edit::Unchanged => return Action::None,
            Edit::Changed => {}
        }
        if input.kind == InputKind::Command {
            // The filter follows the typing while the pattern is valid; the last valid one stays.
            match compile_filter(input.text()) {
                Ok(re) => {
                    input.error = None;
                    self.filter = re;
                    self.scroll = 0;
                }
                Err(e) => input.error = Some(e),
            }
        } else {
            input.error = None;
        }
        Action::None
    }

    fn submit_input(&mut self) {
        let Some(input) = self.input.as_mut() else {
            return;
        };
        match input.kind {
            InputKind::Command => match compile_filter(input.text()) {
                Ok(re) => {
                    self.filter = re;
                    self.input = None;
                }
                Err(e) => input.error = Some(e),
            },
            InputKind::User => {
                let names: Vec<String> = input
                    .text()
                    .split([',', ' '])
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect();
                match crate::users::resolve_users(&names) {
                    Ok(uids) => {
                        self.view.uids = uids;
                        self.user_label = (!names.is_empty()).then(|| names.join(","));
                        self.input = None;
                    }
                    Err(e) => input.error = Some(e.to_string()),
                }
            }
        }
        self.scroll = 0;
    }

    /// Esc outside a prompt: drop the command and user filters.
    fn filter_cleared(&mut self) {
        self.filter = None;
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
