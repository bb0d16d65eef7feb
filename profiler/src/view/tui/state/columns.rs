//! The table's columns as the view state knows them: which exist for a grouping, their order,
//! titles and default sort direction, and what a counter cell holds as a number.

use std::borrow::Cow;

use crate::counter::{Counter, Unit};
use crate::sample::Counters;
use crate::settings::{self, Settings};

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
    /// Left to right, those the settings show. Container rows have no user or priority, and
    /// their label is in the command's place.
    pub fn display_order(settings: &Settings, grouping: Grouping) -> Vec<Column> {
        let mut cols = vec![Column::Id];
        if grouping != Grouping::Containers {
            cols.extend([Column::Prio, Column::User, Column::Container]);
        }
        cols.extend(Counter::TABLE.iter().copied().map(Column::Counter));
        cols.extend([Column::History, Column::Command]);
        cols.retain(|c| settings.shows(c.setting(), c.shown_by_default()));
        cols
    }

    /// The column of the settings (`1` … `9`, `--hide-…`) this one is.
    pub fn setting(self) -> settings::Column {
        match self {
            Column::Id => settings::Column::Pid,
            Column::Prio => settings::Column::Prio,
            Column::User => settings::Column::User,
            Column::Container => settings::Column::Container,
            Column::Counter(c) => {
                settings::Column::of_counter(c).expect("every table counter has a column")
            }
            Column::History => settings::Column::Graph,
            Column::Command => settings::Column::Command,
        }
    }

    /// The full-screen view shows every column but RCHAR and WCHAR unless told otherwise.
    pub fn shown_by_default(self) -> bool {
        !matches!(self, Column::Counter(c) if c.spec().on_request)
    }

    /// What left/right step through: every shown column but the history.
    pub fn sortable(settings: &Settings, grouping: Grouping) -> Vec<Column> {
        Column::display_order(settings, grouping)
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
