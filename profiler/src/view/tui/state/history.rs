//! The per-row history behind the HISTORY column: a few refreshes of every counter, kept only
//! for rows that did something lately.

use std::collections::{HashMap, VecDeque};

use crate::counter::{Counter, PerCounter};
use crate::model::{Model, Row};

/// How many refreshes the per-row history keeps.
pub const HISTORY_LEN: usize = 8;

/// Tasks are told apart by (pid, tid); containers by their label, as their pid is a count.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum RowKey {
    Task(u32, Option<u32>),
    Container(String),
}

impl RowKey {
    fn of(row: &Row, containers: bool) -> RowKey {
        if containers {
            RowKey::Container(row.name().to_string())
        } else {
            RowKey::Task(row.pid, row.tid)
        }
    }
}

/// The last [`HISTORY_LEN`] values of every counter of every row that did something lately.
/// Idle rows cost nothing: a row enters at its first non-zero value and leaves when its window
/// is all zeros or it is gone.
#[derive(Clone, Debug, Default)]
pub struct History {
    rows: HashMap<RowKey, VecDeque<PerCounter<f32>>>,
}

impl History {
    /// `containers`: the model's rows are containers (see `model::group_by_container`).
    pub fn record(&mut self, model: &Model, accumulated: bool, containers: bool) {
        let mut seen = HashMap::with_capacity(self.rows.len());
        for row in &model.rows {
            let key = RowKey::of(row, containers);
            // Only what the table can show makes a row busy.
            let values = PerCounter::from_fn(|c| {
                Some(c)
                    .filter(|c| Counter::TABLE.contains(c))
                    .and_then(|c| c.value(&row.delta, model.interval_s, accumulated))
                    .map_or(f32::NAN, |v| v as f32)
            });
            let busy = values.iter().any(|(_, v)| *v > 0.0);
            if let Some(mut window) = self.rows.remove(&key).or_else(|| busy.then(VecDeque::new)) {
                if window.len() == HISTORY_LEN {
                    window.pop_front();
                }
                window.push_back(values);
                if window.iter().any(|w| w.iter().any(|(_, v)| *v > 0.0)) {
                    seen.insert(key, window);
                }
            }
        }
        self.rows = seen;
    }

    /// Oldest first; fewer than [`HISTORY_LEN`] for rows that became busy lately.
    pub fn values(&self, row: &Row, containers: bool, counter: Counter) -> Vec<f32> {
        self.rows
            .get(&RowKey::of(row, containers))
            .map_or_else(Vec::new, |w| w.iter().map(|v| v[counter]).collect())
    }

    pub fn clear(&mut self) {
        self.rows.clear();
    }
}
